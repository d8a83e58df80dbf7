"""The sweep scheduler: which scale sets a sweep reads, in what order, within what slice and budget.

Suspects first (capacity owed, unfinished ledger work, what Resource Graph or an event flagged), then the
rotation from the cursor the last sweep left in the ledger. Each scale set is one call of `evaluate`
(the engine: read, diagnose, hand to the record runner) with the sweep's deadline passed along; the
changes of every evaluation are notified once at the end.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from . import telemetry
from .gateway import ComputeGateway
from .model import iso, parse_time
from .notify import Change
from .remediation.guardrails import SweepBudget
from .remediation.ledger import Ledger, LedgerConflict, LedgerUnavailable
from .remediation.record import Record, scale_set_key
from .remediation.store import RecordStore
from .remediation.transitions import notified
from .runner import ScaleSetResult
from .settings import Settings
from .sources import InventorySource, Target

if TYPE_CHECKING:
    from .notify import Notifier

log = telemetry.get_logger("autoheal.engine")

# The rotation's position, in the ledger's status documents: coverage continues across sweeps and crashes.
CURSOR_DOCUMENT = "sweep-cursor"


class Evaluate(Protocol):
    def __call__(
        self,
        resource: dict[str, Any],
        *,
        budget: SweepBudget | None = ...,
        correlation_id: str | None = ...,
        records: list[Record] | None = ...,
        refresh: bool = ...,
        deadline: float | None = ...,
    ) -> ScaleSetResult: ...


@dataclass
class SweepResult:
    correlation_id: str
    started_at: datetime
    results: list[ScaleSetResult]
    duration_s: float
    arm: dict[str, Any]
    notified: int = 0
    error: str | None = None
    suspects: int = 0
    coverage: dict[str, Any] | None = None
    notify_failures: int = 0  # messages not delivered (and delivered ones not marked): offered again next run
    history_failures: int = 0  # history rows that could not be appended (the records themselves were saved)


@dataclass(frozen=True)
class Schedule:
    """The order a sweep reads scale sets in: suspects first (capacity owed first), then the rotation."""

    suspects: list[dict[str, Any]]
    ring: list[dict[str, Any]]

    @property
    def order(self) -> list[dict[str, Any]]:
        return [*self.suspects, *self.ring]

    @property
    def suspect_keys(self) -> set[str]:
        return {scale_set_key(str(r.get("id") or "")) for r in self.suspects}


def schedule(
    resources: list[dict[str, Any]], known: dict[str, list[Record]], cursor: str, flagged: set[str] | None = None
) -> Schedule:
    """Suspects (capacity owed, then unfinished ledger work, then what Resource Graph or an event flagged)
    first; then every other scale set in key order starting just after `cursor` and wrapping around: least
    recently read first, across sweeps and crashes."""
    suspects: list[tuple[int, str, dict[str, Any]]] = []
    ring: list[tuple[str, dict[str, Any]]] = []
    for resource in resources:
        key = scale_set_key(str(resource.get("id") or ""))
        records = known.get(key, [])
        if _owes(records):
            suspects.append((0, key, resource))
        elif any(r.state.active or r.unfinished for r in records):
            suspects.append((1, key, resource))
        elif flagged and key in flagged:
            suspects.append((2, key, resource))
        else:
            ring.append((key, resource))
    ring.sort(key=lambda item: item[0])
    start = next((i for i, (key, _) in enumerate(ring) if key > cursor), 0) if cursor else 0
    rotated = ring[start:] + ring[:start]
    return Schedule([r for _, _, r in sorted(suspects, key=lambda s: (s[0], s[1]))], [r for _, r in rotated])


def map_concurrently(func: Callable[[Any], Any], items: list[Any], concurrency: int) -> list[Any]:
    """`func` over `items` with at most `concurrency` threads, results in order."""
    if concurrency <= 1 or len(items) <= 1:
        return [func(item) for item in items]
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="autoheal") as pool:
        return list(pool.map(func, items))


class Sweeper:
    """One sweep over the scale sets in scope; built per sweep by the engine with what it injects."""

    def __init__(
        self,
        settings: Settings,
        gateway: ComputeGateway,
        ledger: Ledger | None,
        inventory: InventorySource,
        evaluate: Evaluate,
        *,
        notifier: Notifier | None,
        clock: Callable[[], datetime],
        monotonic: Callable[[], float],
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.settings = settings
        self.gateway = gateway
        self.ledger = ledger
        self.inventory = inventory
        self.evaluate = evaluate
        self.notifier = notifier
        self.clock = clock
        self.monotonic = monotonic
        self.progress = progress

    def run(
        self,
        target: Target | None = None,
        *,
        trigger: str = "sweep",
        event_id: str = "",
        slice_seconds: float | None = None,
    ) -> SweepResult:
        """Evaluate the scale sets in scope, within Compute's budget and a time slice.

        Order: scale sets owed capacity, then the rest with unfinished work (suspects), then the rotation —
        from the cursor the last sweep left in the ledger, around the ring of scale sets — so that coverage
        continues across sweeps and crashes. What does not fit in the slice or the budget is deferred, not
        failed: the next tick goes on from the new cursor. One failing scale set never stops the others.
        """
        correlation_id = uuid.uuid4().hex
        started, t0 = self.clock(), self.monotonic()
        whole_subscription = target is None or (target.resource_group is None and target.scale_set is None)
        budget = SweepBudget(self.settings.max_actions_per_sweep)
        deadline = t0 + (self.settings.sweep_slice.total_seconds() if slice_seconds is None else slice_seconds)
        with telemetry.span(f"autoheal.{trigger}", correlationId=correlation_id, eventId=event_id) as span:
            inventory = self.inventory.read(target or Target(), whole_subscription)
            resources = inventory.resources
            known = self._preload_records(resources)
            cursor = self._load_cursor() if whole_subscription else None
            flagged = inventory.flagged(known or {})
            plan_ = schedule(resources, known or {}, cursor.get("cursor", "") if cursor else "", flagged)
            stop = threading.Event()
            done = [0]
            done_lock = threading.Lock()

            def run(resource: dict[str, Any]) -> ScaleSetResult:
                if stop.is_set() or self.monotonic() >= deadline:
                    stop.set()
                    return ScaleSetResult(resource, deferred=True)
                key = scale_set_key(str(resource.get("id") or ""))
                result = self.evaluate(
                    resource,
                    budget=budget,
                    correlation_id=correlation_id,
                    records=None if known is None else known.get(key, []),
                    # Resource Graph lags ARM: a suspect is read from ARM before anything is decided on it.
                    refresh=inventory.source == "resource-graph" and key in plan_.suspect_keys,
                    deadline=deadline,
                )
                if result.deferred:
                    stop.set()
                if self.progress is not None:
                    with done_lock:
                        done[0] += 1
                        self.progress(done[0], len(plan_.order))
                return result

            results = map_concurrently(run, plan_.order, self.settings.sweep_concurrency)
            coverage = self._advance_cursor(cursor, plan_, results, started) if cursor is not None else None
            notified, notify_failures = self._notify(results, trigger, correlation_id)
            duration = self.monotonic() - t0
            arm = self.gateway.meter.figures()
            if self.gateway.budget is not None:
                arm["compute"] = self.gateway.budget.figures()
            arm["inventory"] = inventory.source
            graph = self.inventory.figures() if inventory.source == "resource-graph" else None
            if graph is not None:
                arm["resourceGraph"] = graph
            span.set_attribute("scaleSets", len(results))
        telemetry.record_sweep(duration, len(results), self.gateway.meter.requests, arm["throttleWaitSeconds"])
        deferred = sum(1 for r in results if r.deferred)
        log.info(
            "%s evaluated %d scale set(s) (%d deferred to the next sweep) in %.1fs with %d ARM request(s)",
            trigger,
            len(results) - deferred,
            deferred,
            duration,
            self.gateway.meter.requests,
        )
        return SweepResult(
            correlation_id,
            started,
            results,
            duration,
            arm,
            notified,
            suspects=len(plan_.suspects),
            coverage=coverage,
            notify_failures=notify_failures,
        )

    def _load_cursor(self) -> dict[str, Any]:
        if self.ledger is None:
            return {}
        try:
            return self.ledger.load_status(CURSOR_DOCUMENT) or {}
        except LedgerUnavailable as exc:
            log.warning("could not read the sweep cursor; starting the rotation at the beginning: %s", exc)
            return {}

    def _advance_cursor(
        self, cursor: dict[str, Any], plan_: Schedule, results: list[ScaleSetResult], started: datetime
    ) -> dict[str, Any]:
        """Move the rotation past what this sweep read; a lap is complete when it passes the ring's end."""
        done = {r.scale_set_id.lower() for r in results if not r.deferred}
        read = 0
        for resource in plan_.ring:
            if str(resource.get("id") or "").lower() not in done:
                break
            read += 1
        ring = len(plan_.ring)
        lap_started = str(cursor.get("lapStartedAt") or iso(started))
        position = int(cursor.get("position") or 0) + read
        document: dict[str, Any] = {
            "cursor": scale_set_key(str(plan_.ring[read - 1].get("id") or "")) if read else cursor.get("cursor", ""),
            "position": position,
            "ringSize": ring,
            "lapStartedAt": lap_started,
            "lastLapSeconds": cursor.get("lastLapSeconds"),
            "readLastSweep": read,
            "sweepsPerLap": math.ceil(ring / read) if read else None,
        }
        if ring and position >= ring:  # every scale set had its health read since the lap started
            began = parse_time(lap_started) or started
            lap = (started - began).total_seconds()
            document.update(position=0, lapStartedAt=iso(self.clock()), lastLapSeconds=round(max(lap, 0.0), 1))
        if self.ledger is not None:
            try:
                self.ledger.save_status(CURSOR_DOCUMENT, document)
            except LedgerUnavailable as exc:
                log.warning("could not save the sweep cursor (the next sweep re-reads some scale sets): %s", exc)
        return document

    def _preload_records(self, resources: list[dict[str, Any]]) -> dict[str, list[Record]] | None:
        """For a many-scale-set sweep, one ledger query instead of one per scale set."""
        if self.ledger is None or len(resources) < 2:
            return None
        try:
            return self.ledger.records_by_scale_set(self.gateway.subscription_id)
        except LedgerUnavailable as exc:
            log.error("ledger unavailable at the start of the sweep: %s", exc)
            return None

    def _notify(self, results: list[ScaleSetResult], trigger: str, correlation_id: str) -> tuple[int, int]:
        """Announce this sweep's changes and whatever the ledger says was never announced (a message that
        failed, a decision unchanged since). Returns (delivered, failures); failures are counted in the
        metric `autoheal.failures` and offered again next run, because the records stay unannounced."""
        if self.notifier is None or self.ledger is None:
            return 0, 0
        changes = [change for r in results for change in r.changes]
        changes += [Change(record, record.notified_state, None) for r in results for record in r.outbox]
        if not changes:
            return 0, 0
        outcome = self.notifier.notify(changes, trigger=trigger, correlation_id=correlation_id, now=self.clock())
        failures = len(outcome.failures)
        store = RecordStore(self.ledger)
        for record in outcome.delivered:
            try:
                store.save(notified(record))
            except (LedgerConflict, LedgerUnavailable) as exc:
                # The message went out; at worst it is sent once more after the dedupe window.
                failures += 1
                telemetry.record_failure("notified-mark")
                log.warning("could not mark %s %s as notified: %s", record.scale_set_id, record.row_key, exc)
        for _ in outcome.failures:
            telemetry.record_failure("notification")
        return len(outcome.delivered), failures


def _owes(records: list[Record]) -> bool:
    return any(r.owes_capacity for r in records)
