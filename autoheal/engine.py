"""The one way through: snapshot → diagnose → plan → act → record → notify.

Triggers (timer, Event Grid, CLI, HTTP) only decide *which* scale sets to evaluate. `Engine.evaluate`
is the self-contained unit of work for one scale set (a queue message could carry it): it reads and
diagnoses the scale set and hands it to the record runner (`runner.py`). `Engine.sweep` runs it over
many scale sets through the sweep scheduler (`scheduler.py`). Clocks (wall and monotonic), sleep and
randomness are injected here once and passed down.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from . import telemetry
from .diagnosis import diagnose
from .gateway import ArmError, BudgetExhausted, ComputeGateway
from .gateway.compute import DEADLINE
from .model import ScaleSetSnapshot
from .ownership import Owner, owner_of
from .remediation.guardrails import SweepBudget
from .remediation.ledger import Ledger, LedgerUnavailable
from .remediation.record import SCALE_SET_TARGET, Record
from .resource_ids import segments
from .runner import RecordRunner, ScaleSetResult
from .scheduler import CURSOR_DOCUMENT, Schedule, Sweeper, SweepResult, map_concurrently, schedule
from .settings import Settings
from .sources import ComputeInventory, InventorySource, Target

if TYPE_CHECKING:
    from .notify import Notifier

log = telemetry.get_logger("autoheal.engine")


class Engine:
    """Evaluates scale sets for one subscription; every decision lands in the ledger."""

    def __init__(
        self,
        settings: Settings,
        gateway: ComputeGateway,
        ledger: Ledger | None,
        *,
        notifier: Notifier | None = None,
        clock: Callable[[], datetime] | None = None,
        on_checkpoint: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        inventory: InventorySource | None = None,
    ) -> None:
        self.settings = settings
        self.gateway = gateway
        self.ledger = ledger
        self.notifier = notifier
        self.clock = clock or (lambda: datetime.now(UTC))
        self.rng = rng or random.Random()
        self.monotonic = monotonic
        self.inventory = inventory or ComputeInventory(gateway)  # where the sweep's scale sets come from
        self.progress: Callable[[int, int], None] | None = None  # (done, in scope) after each scale set
        self.runner = (
            None
            if ledger is None
            else RecordRunner(
                settings,
                gateway,
                ledger,
                clock=self.clock,
                on_checkpoint=on_checkpoint,
                sleep=sleep,
                rng=self.rng,
                monotonic=monotonic,
            )
        )

    # -- entry points -----------------------------------------------------------------------------------

    def sweep(
        self,
        target: Target | None = None,
        *,
        trigger: str = "sweep",
        event_id: str = "",
        slice_seconds: float | None = None,
    ) -> SweepResult:
        """Evaluate the scale sets in scope, within Compute's budget and a time slice (see scheduler.py)."""
        sweeper = Sweeper(
            self.settings,
            self.gateway,
            self.ledger,
            self.inventory,
            self.evaluate,
            notifier=self.notifier,
            clock=self.clock,
            monotonic=self.monotonic,
            progress=self.progress,
        )
        before = self.runner.store.history_failures if self.runner is not None else 0
        result = sweeper.run(target, trigger=trigger, event_id=event_id, slice_seconds=slice_seconds)
        if self.runner is not None:
            result.history_failures = self.runner.store.history_failures - before
        return result

    def evaluate(
        self,
        resource: dict[str, Any],
        *,
        budget: SweepBudget | None = None,
        correlation_id: str | None = None,
        records: list[Record] | None = None,
        refresh: bool = False,
        deadline: float | None = None,
    ) -> ScaleSetResult:
        """Snapshot → diagnose → reconcile → plan → act → record for one scale set. `refresh`: read the scale
        set itself from ARM first (its model as Resource Graph showed it may be a minute old). `deadline`: the
        monotonic time by which this unit of work must end (a read whose budget wait would pass it defers
        the scale set)."""
        token = DEADLINE.set(deadline)
        try:
            return self._evaluate(resource, budget, correlation_id, records, refresh)
        finally:
            DEADLINE.reset(token)

    def _evaluate(
        self,
        resource: dict[str, Any],
        budget: SweepBudget | None,
        correlation_id: str | None,
        records: list[Record] | None,
        refresh: bool,
    ) -> ScaleSetResult:
        correlation_id = correlation_id or uuid.uuid4().hex
        budget = budget or SweepBudget(self.settings.max_actions_per_sweep)
        result = ScaleSetResult(resource)
        with telemetry.span("autoheal.scale_set", scaleSetId=result.scale_set_id, correlationId=correlation_id):
            try:
                if refresh:
                    ids = segments(result.scale_set_id)
                    resource = self.gateway.get_scale_set(ids["resourcegroups"], ids["virtualmachinescalesets"])
                    result.resource = resource
                result.snapshot = self.gateway.snapshot(resource)
            except BudgetExhausted as exc:
                result.deferred = True
                log.info("deferred %s to the next sweep: %s", result.scale_set_id, exc)
                return result
            except ArmError as exc:
                result.error, result.transient = str(exc), exc.transient
                log.warning("could not read scale set %s: %s", result.scale_set_id, exc)
                return result
            now = self.clock()
            result.findings = diagnose(result.snapshot, self.settings, now)
            telemetry.record_instances(result.snapshot.id, result.snapshot.health_counts())
            for finding in result.findings:
                telemetry.record_finding(finding.code.value, finding.severity.value)
            if self.runner is None:  # diagnose-only use
                return result
            result.owner = self.owner(result.snapshot)
            try:
                self.runner.remediate(result, budget, correlation_id, records)
            except LedgerUnavailable as exc:
                result.error, result.transient = f"ledger unavailable: {exc}", True
                log.error("ledger unavailable while evaluating %s: %s", result.scale_set_id, exc)
            except Exception as exc:  # a bug: recorded once and not retried (redelivery would repeat it)
                result.error, result.transient = f"internal error: {type(exc).__name__}: {exc}", False
                telemetry.record_failure("internal")
                log.exception("internal error while evaluating %s", result.scale_set_id)
        return result

    # -- who owns a scale set -----------------------------------------------------------------------------

    def owner(self, snapshot: ScaleSetSnapshot) -> Owner | None:
        groups = self.gateway.resource_group_owners()
        return owner_of(
            resource_group=snapshot.resource_group,
            tags=snapshot.tags,
            managed_by=snapshot.managed_by,
            group_managed_by=groups.get(snapshot.resource_group.lower(), ""),
            service_fabric=snapshot.service_fabric,
        )


__all__ = [
    "CURSOR_DOCUMENT",
    "SCALE_SET_TARGET",
    "Engine",
    "ScaleSetResult",
    "Schedule",
    "SweepResult",
    "Target",
    "map_concurrently",
    "schedule",
]
