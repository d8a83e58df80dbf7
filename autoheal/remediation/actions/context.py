"""What an executor works with: the gateway, its claimed record, checkpoints, and prompt retries."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from ...gateway import ArmError, ComputeGateway
from ...gateway.errors import RETRY_SOON
from ...model import Instance, ScaleSetSnapshot, iso
from ...settings import Settings
from ..record import Record, State, Step
from ..store import RecordStore
from ..transitions import Outcome, checkpoint

log = logging.getLogger("autoheal.actions")

# Preempted or conflicting writes are retried within about a minute (jittered), not after the backoff.
RETRY_SOON_DELAYS = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
RETRY_SOON_BUDGET = 60.0

T = TypeVar("T")


@dataclass
class ActionContext:
    gateway: ComputeGateway
    store: RecordStore  # the one save path: checkpoints are moves of the life cycle like any other
    settings: Settings
    record: Record
    clock: Callable[[], datetime]
    on_checkpoint: Callable[[str], None] | None = None
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    monotonic: Callable[[], float] = time.monotonic
    reads: list[ScaleSetSnapshot] = field(default_factory=list)

    @property
    def params(self) -> dict[str, Any]:
        return self.record.params

    @property
    def step(self) -> Step:
        return self.record.step

    def fresh(self, *, instance_view: bool = True) -> ScaleSetSnapshot:
        """Re-read the scale set from ARM: never act on what an earlier read (or Resource Graph) said.
        Instance actions skip the scale-set instance view (they need capacity and instances only)."""
        snap = self.gateway.snapshot_by_name(
            self.record.resource_group, self.record.scale_set_name, instance_view=instance_view
        )
        self.reads.append(snap)
        return snap

    def checkpoint(self, step: Step, **changes: Any) -> None:
        """Persist progress before the next write (ETag: if somebody took the record over, stop here)."""
        self.record = self.store.save(checkpoint(self.record, step, now=self.clock(), changes=changes))
        if self.on_checkpoint is not None:
            self.on_checkpoint(step.value)

    def write(self, describe: str, call: Callable[[], T]) -> T:
        """A write that a concurrent one may preempt or conflict with: retried within about a minute, with
        jitter; any other error (and the last retry-soon one) goes to the caller."""
        waited = 0.0
        for delay in (*RETRY_SOON_DELAYS, None):
            try:
                return call()
            except ArmError as exc:
                if exc.kind not in RETRY_SOON or delay is None:
                    raise
                pause = delay * (0.5 + self.rng.random())
                if waited + pause > RETRY_SOON_BUDGET:
                    raise
                log.info("%s: %s; retrying in %.1fs", describe, exc.kind.value, pause)
                self.sleep(pause)
                waited += pause
        raise AssertionError("unreachable")  # pragma: no cover

    def wait_for(self, describe: str, pending: Callable[[], list[str]]) -> list[str]:
        """Re-read until `pending()` is empty or the wait bound (the LRO timeout, capped by the lease) passes:
        a run that owes capacity waits for Azure's delete rather than leaving the scale set short until the
        next sweep. Returns what is still pending."""
        bound = min(self.settings.lro_timeout, self.settings.action_lease / 2).total_seconds()
        interval = max(1.0, float(self.settings.lro_poll_seconds))
        deadline = self.monotonic() + bound
        left = pending()
        while left and self.monotonic() + interval < deadline:
            log.info("%s: waiting for %s", describe, ", ".join(left))
            self.sleep(interval)
            left = pending()
        return left


def fingerprint(instance: Instance) -> dict[str, Any]:
    """How an instance looked when we decided to write to it: if Azure changed it since, the write landed
    (or something else happened to it) and must not be sent again."""
    return {
        "state": instance.provisioning_state,
        "since": iso(instance.provisioning_time),
        "power": instance.power_state,
    }


def unchanged(instance: Instance, seen: dict[str, Any] | None) -> bool:
    return seen is not None and fingerprint(instance) == seen


def is_deleting(instance: Instance) -> bool:
    return (instance.provisioning_state or "").lower() == "deleting"


def succeeded(reason: str) -> Outcome:
    return Outcome(State.SUCCEEDED, reason)


def verifying(reason: str, reason_code: str = "") -> Outcome:
    return Outcome(State.VERIFYING, reason, reason_code)


def held(reason: str, reason_code: str, error: str = "") -> Outcome:
    return Outcome(State.HELD, reason, reason_code, error)


def failed(reason: str, error: str = "") -> Outcome:
    return Outcome(State.FAILED, reason, error=error or reason)


Executor = Callable[[ActionContext], Outcome]
