"""The remediation record: one finding on one target, what was decided and done, and where it stands.

A record moves through `State`s; while an action runs it also walks through `Step`s. Before any write to
Azure the record carries an *intent* (which instances the write will touch and how they looked), saved in
the ledger with an ETag claim: a run that resumes after a crash reads the intent and never repeats a write
Azure already accepted. `ledger.py` stores records in Table Storage; `transitions.py` holds every change of
state as a pure function.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from ..model import iso
from ..resource_ids import segments

SCALE_SET_TARGET = "*"


class State(StrEnum):
    PLANNED = "planned"  # observe mode: what would be done
    RUNNING = "running"  # claimed by a worker (lease), steps under way
    VERIFYING = "verifying"  # the write is done, Azure has not shown the whole result yet
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    HELD = "held"  # a guardrail or the rule itself said no; `reason` says why
    RESOLVED = "resolved"  # the finding went away

    @property
    def active(self) -> bool:
        return self in (State.RUNNING, State.VERIFYING)


class Step(StrEnum):
    """Where an action stands between its writes. `*_INTENT` steps are saved *before* the write they name."""

    NONE = ""
    CLAIMED = "claimed"
    RECORDED = "recorded"  # the capacity to come back to is recorded
    SURGE_INTENT = "surge-intent"  # below the floor: raise capacity first (PATCH sku.capacity, idempotent)
    DELETE_INTENT = "delete-intent"  # about to delete these instances (intent lists them as they were)
    DELETING = "deleting"  # Azure accepted the delete; waiting for the instances to be gone
    RESTORE_INTENT = "restore-intent"  # instances gone: capacity owed to the scale set
    RESTORED = "restored"  # capacity is back; waiting for the new instances to provision
    REQUEST_INTENT = "request-intent"  # about to restart/reimage/delete one instance
    REQUESTED = "requested"
    PATCH_INTENT = "patch-intent"  # about to PATCH a scale-set policy (idempotent)
    PATCHED = "patched"
    RESUME_INTENT = "resume-intent"  # about to resume the AutomaticRepairs service
    RESUMED = "resumed"

    @classmethod
    def parse(cls, raw: str) -> Step:
        """Steps as stored; names written by the first version of the ledger map onto today's steps."""
        try:
            return cls(raw)
        except ValueError:
            return _LEGACY_STEPS.get(raw, cls.NONE)


_LEGACY_STEPS = {
    "surged": Step.DELETE_INTENT,
    "delete-next": Step.DELETE_INTENT,
    "deleted": Step.RESTORE_INTENT,
}

# Steps after which stopping would leave the scale set short of capacity (or above it after a surge): the
# record must be driven to the end, whatever happens to the finding that started it.
UNFINISHED_STEPS = frozenset({Step.RECORDED, Step.SURGE_INTENT, Step.DELETE_INTENT, Step.DELETING, Step.RESTORE_INTENT})
# Steps at which the scale set may be owed capacity: paid first, retried within seconds, never left to backoff.
DEBT_STEPS = frozenset({Step.DELETE_INTENT, Step.DELETING, Step.RESTORE_INTENT})


def scale_set_key(scale_set_id: str) -> str:
    ids = segments(scale_set_id)
    return "|".join(
        (ids.get("subscriptions", ""), ids.get("resourcegroups", ""), ids.get("virtualmachinescalesets", ""))
    ).lower()


@dataclass
class Record:
    """The live state of one finding on one target: what was decided, done, and when to try again."""

    scale_set_id: str
    finding_code: str
    target: str = SCALE_SET_TARGET
    action: str = "none"
    state: State = State.PLANNED
    reason: str = ""
    reason_code: str = ""  # a `ReasonCode` value: short machine code of `reason` for metrics/KQL
    severity: str = "info"
    summary: str = ""
    instance_ids: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str = ""
    capacity_target: int | None = None
    step: Step = Step.NONE
    intent: dict[str, Any] = field(default_factory=dict)  # what the next (unconfirmed) write touches
    mode: str = "observe"
    correlation_id: str = ""
    lease_until: datetime | None = None  # RUNNING: the worker's lease
    verify_until: datetime | None = None  # VERIFYING: when waiting for Azure's result becomes a failure
    runs: list[str] = field(default_factory=list)  # ISO times of recent executions (rate budgets)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    notified_state: str = ""
    notified_at: datetime | None = None
    etag: str | None = None

    @property
    def partition_key(self) -> str:
        return scale_set_key(self.scale_set_id)

    @property
    def row_key(self) -> str:
        return f"{self.finding_code}|{self.target}"

    @property
    def scale_set_name(self) -> str:
        return segments(self.scale_set_id).get("virtualmachinescalesets", "")

    @property
    def resource_group(self) -> str:
        return segments(self.scale_set_id).get("resourcegroups", "")

    @property
    def unfinished(self) -> bool:
        """Half-way through a replacement: must be driven to the end, even after a failure and even when the
        finding that started it has gone."""
        return self.step in UNFINISHED_STEPS and self.state in (State.RUNNING, State.FAILED, State.VERIFYING)

    @property
    def owes_capacity(self) -> bool:
        """Instances deleted (or being deleted) and capacity not yet restored."""
        return self.step in DEBT_STEPS and self.state in (State.RUNNING, State.FAILED, State.VERIFYING)

    def evolve(self, **changes: Any) -> Record:
        return replace(self, **changes)


@dataclass(frozen=True)
class HistoryEntry:
    """One history row: a state change of a record, with its reason."""

    at: datetime
    scale_set_id: str
    finding_code: str
    target: str
    action: str
    state: str
    previous_state: str
    reason: str
    reason_code: str
    attempts: int
    instance_ids: tuple[str, ...]
    mode: str
    correlation_id: str
    severity: str
    summary: str
    last_error: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": iso(self.at),
            "scaleSetId": self.scale_set_id,
            "findingCode": self.finding_code,
            "target": self.target,
            "action": self.action,
            "state": self.state,
            "previousState": self.previous_state,
            "reason": self.reason,
            "reasonCode": self.reason_code,
            "attempts": self.attempts,
            "instanceIds": list(self.instance_ids),
            "mode": self.mode,
            "correlationId": self.correlation_id,
            "severity": self.severity,
            "summary": self.summary,
            "lastError": self.last_error,
        }
