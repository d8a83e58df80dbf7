"""The one way through: snapshot → diagnose → plan → act → record → notify.

Triggers (timer, Event Grid, CLI, HTTP) only decide *which* scale sets to evaluate. `Engine.evaluate`
is the self-contained unit of work for one scale set (a queue message could carry it); `Engine.sweep`
runs it over many scale sets with bounded concurrency.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from . import telemetry
from .diagnosis import diagnose
from .gateway import ArmError, BudgetExhausted, ComputeGateway
from .gateway.compute import DEADLINE
from .gateway.errors import ErrorClass, missing_action
from .model import ActionCode, Finding, ReasonCode, ScaleSetSnapshot, iso, parse_time
from .notify import Change
from .ownership import Owner, owner_of
from .remediation import transitions
from .remediation.actions import ACTIONS, ActionContext
from .remediation.guardrails import SweepBudget
from .remediation.ledger import Ledger, LedgerConflict, LedgerUnavailable
from .remediation.planner import Decision, DecisionKind, plan
from .remediation.record import SCALE_SET_TARGET, Record, State, scale_set_key
from .remediation.transitions import Outcome, Save
from .resource_ids import segments
from .settings import Settings
from .sources import ComputeInventory, InventorySource, Target

if TYPE_CHECKING:
    from .notify import Notifier

log = telemetry.get_logger("autoheal.engine")

# The rotation's position, in the ledger's status documents: coverage continues across sweeps and crashes.
CURSOR_DOCUMENT = "sweep-cursor"


@dataclass
class ScaleSetResult:
    """What one evaluation saw, decided and did."""

    resource: dict[str, Any]
    snapshot: ScaleSetSnapshot | None = None
    findings: list[Finding] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)  # records decided or changed in this run
    changes: list[Change] = field(default_factory=list)
    error: str | None = None
    transient: bool = False  # the error may go away by itself (throttling, 5xx, the ledger unreachable)
    owner: Owner | None = None  # another Azure service owns this scale set: diagnosed, never changed
    deferred: bool = False  # not read in this sweep (time slice or Compute budget): the next sweep goes on

    @property
    def scale_set_id(self) -> str:
        return str(self.resource.get("id") or "")

    def decisions(self) -> list[dict[str, Any]]:
        """Every decision this evaluation made or changed (actions taken, planned, held, and why)."""
        return [
            {
                "code": r.action,
                "findingCode": r.finding_code,
                "scaleSetId": r.scale_set_id,
                "target": r.target,
                "instanceIds": list(r.instance_ids),
                "state": r.state.value,
                "reason": r.reason,
                "reasonCode": r.reason_code,
                "attempts": r.attempts,
            }
            for r in self.records
        ]


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
        self.on_checkpoint = on_checkpoint
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.monotonic = monotonic
        self.inventory = inventory or ComputeInventory(gateway)  # where the sweep's scale sets come from
        self.progress: Callable[[int, int], None] | None = None  # (done, in scope) after each scale set

    # -- entry points -----------------------------------------------------------------------------------

    def sweep(
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
        started, t0 = self.clock(), time.monotonic()
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
                if stop.is_set() or time.monotonic() >= deadline:
                    stop.set()
                    return ScaleSetResult(resource, deferred=True)
                token = DEADLINE.set(deadline)
                key = scale_set_key(str(resource.get("id") or ""))
                try:
                    result = self.evaluate(
                        resource,
                        budget=budget,
                        correlation_id=correlation_id,
                        records=None if known is None else known.get(key, []),
                        # Resource Graph lags ARM: a suspect is read from ARM before anything is decided on it.
                        refresh=inventory.source == "resource-graph" and key in plan_.suspect_keys,
                    )
                finally:
                    DEADLINE.reset(token)
                if result.deferred:
                    stop.set()
                if self.progress is not None:
                    with done_lock:
                        done[0] += 1
                        self.progress(done[0], len(plan_.order))
                return result

            results = map_concurrently(run, plan_.order, self.settings.sweep_concurrency)
            coverage = self._advance_cursor(cursor, plan_, results, started) if cursor is not None else None
            notified = self._notify(results, trigger, correlation_id)
            duration = time.monotonic() - t0
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
            correlation_id, started, results, duration, arm, notified, suspects=len(plan_.suspects), coverage=coverage
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

    def evaluate(
        self,
        resource: dict[str, Any],
        *,
        budget: SweepBudget | None = None,
        correlation_id: str | None = None,
        records: list[Record] | None = None,
        refresh: bool = False,
    ) -> ScaleSetResult:
        """Snapshot → diagnose → reconcile → plan → act → record for one scale set. `refresh`: read the scale
        set itself from ARM first (its model as Resource Graph showed it may be a minute old)."""
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
            if self.ledger is None:  # diagnose-only use
                return result
            result.owner = self.owner(result.snapshot)
            try:
                self._remediate(result, budget, correlation_id, records)
            except LedgerUnavailable as exc:
                result.error, result.transient = f"ledger unavailable: {exc}", True
                log.error("ledger unavailable while evaluating %s: %s", result.scale_set_id, exc)
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

    # -- the remediation half ---------------------------------------------------------------------------

    def _remediate(
        self, result: ScaleSetResult, budget: SweepBudget, correlation_id: str, known: list[Record] | None
    ) -> None:
        assert self.ledger is not None and result.snapshot is not None
        snapshot = result.snapshot
        records = {r.row_key: r for r in (self.ledger.records_for(snapshot.id) if known is None else known)}
        # What earlier runs left unfinished comes first, capacity owed before anything else.
        pending = [r for r in records.values() if r.state.active or r.unfinished]
        for record in sorted(pending, key=lambda r: not r.owes_capacity):
            updated = self._reconcile(record, correlation_id, result)
            if updated is not None:
                records[updated.row_key] = updated
        decisions = plan(
            snapshot,
            result.findings,
            records,
            self.settings,
            self.clock(),
            budget,
            correlation_id,
            owner=result.owner,
        )
        seen: set[str] = set()
        for decision in decisions:
            seen.add(decision.key)
            applied = self._apply(decision, records.get(decision.key), correlation_id, result)
            if applied is not None:
                records[applied.row_key] = applied
        for key, record in list(records.items()):
            if key in seen:
                continue
            save = transitions.resolve(record, now=self.clock())
            if save is not None and (resolved := self._save(save, result, None)) is not None:
                records[key] = resolved

    def _new_record(self, decision: Decision, correlation_id: str) -> Record:
        now = self.clock()
        return Record(
            scale_set_id=decision.finding.scale_set_id,
            finding_code=decision.finding.code.value,
            target=decision.target,
            created_at=now,
            updated_at=now,
            correlation_id=correlation_id,
            mode=self.settings.mode,
        )

    def _apply(
        self, decision: Decision, existing: Record | None, correlation_id: str, result: ScaleSetResult
    ) -> Record | None:
        if decision.verdict is DecisionKind.BUSY or (decision.keep and existing is not None):
            if existing is not None:
                result.records.append(existing)
            return None
        now = self.clock()
        base = existing or self._new_record(decision, correlation_id)
        fields = {
            "action": decision.action.value,
            "instance_ids": list(decision.instance_ids),
            "params": dict(decision.params),
            "severity": decision.finding.severity.value,
            "summary": decision.finding.summary,
            "mode": self.settings.mode,
        }
        if decision.verdict in (DecisionKind.HOLD, DecisionKind.PLAN):
            state = State.PLANNED if decision.verdict is DecisionKind.PLAN else State.HELD
            if decision.final:
                state = State.FAILED
            if decision.verdict is DecisionKind.HOLD:
                telemetry.record_held(decision.reason_code)
            save = transitions.decide(
                existing,
                base,
                state=state,
                reason=decision.reason,
                reason_code=decision.reason_code,
                now=now,
                fields=fields,
            )
            if save is None:
                if existing is not None:
                    result.records.append(existing)
                return None
            return self._save(save, result, decision.finding)
        save = transitions.claim(
            existing,
            base,
            action=decision.action,
            now=now,
            settings=self.settings,
            run_id=correlation_id,
            fields=fields,
        )
        try:
            claimed = self.ledger.save(save.record, previous_state=save.previous_state)  # type: ignore[union-attr]
        except LedgerConflict:
            log.info("another worker claimed %s on %s first", decision.action.value, decision.finding.scale_set_id)
            return None
        return self._run(claimed, claimed, State.RUNNING.value, decision.finding, result)

    def _run(
        self, prior: Record, record: Record, previous_state: str, finding: Finding | None, result: ScaleSetResult
    ) -> Record | None:
        """Run (or resume, or continue) an action's executor on a claimed record and record its outcome."""
        assert self.ledger is not None
        spec = ACTIONS[ActionCode(record.action)]
        ctx = ActionContext(
            self.gateway,
            self.ledger,
            self.settings,
            record,
            self.clock,
            self.on_checkpoint,
            sleep=self.sleep,
            rng=self.rng,
            monotonic=self.monotonic,
        )
        dims = {
            "scaleSetId": record.scale_set_id,
            "findingCode": record.finding_code,
            "actionCode": record.action,
            "mode": record.mode,
            "correlationId": record.correlation_id,
        }
        with telemetry.span("autoheal.action", **dims):
            try:
                outcome = spec.run(ctx)
            except LedgerConflict:
                log.warning("record %s %s was taken over by another worker", record.scale_set_id, record.row_key)
                return None
            except ArmError as exc:
                outcome = _arm_outcome(record, exc)
            except (LedgerUnavailable, KeyboardInterrupt):
                raise
            except Exception as exc:  # a bug must not leave the record running forever: record it
                log.exception("executor for %s crashed", record.action)
                outcome = Outcome(
                    State.FAILED, f"{record.action} failed unexpectedly", ReasonCode.INTERNAL_ERROR, repr(exc)
                )
        save = transitions.finish(
            ctx.record, outcome, previous_state=previous_state, now=self.clock(), settings=self.settings, rng=self.rng
        )
        quiet = (
            save.record.state is prior.state
            and save.record.reason == prior.reason
            and save.record.state is not State.FAILED
        )
        if quiet:
            save = Save(save.record, save.previous_state, history=False)
        telemetry.record_action(record.action, save.record.state.value)
        return self._save(save, result, finding)

    def _reconcile(self, record: Record, correlation_id: str, result: ScaleSetResult) -> Record | None:
        """Finish what an earlier run left: resume a crashed run, pay capacity owed, verify lagging effects."""
        now = self.clock()
        if record.state is State.RUNNING:
            save = transitions.resume(record, now=now, settings=self.settings, run_id=correlation_id)
            if save is None:
                return None  # its worker's lease still holds
            claimed = self._save(save, result, None)
            if claimed is None:
                return None
            log.warning("resuming %s on %s from step %r", record.action, record.scale_set_id, record.step.value)
            return self._run(record, claimed, State.RUNNING.value, None, result)
        if record.state is State.VERIFYING:
            expired = transitions.verification_expired(record, now=now, settings=self.settings)
            if expired is not None:
                return self._save(expired, result, None)
            save = transitions.continue_verifying(record, now=now, settings=self.settings, run_id=correlation_id)
            if save is None or (claimed := self._save(save, result, None)) is None:
                return None
            return self._run(record, claimed, State.VERIFYING.value, None, result)
        save = transitions.retry_unfinished(record, now=now, settings=self.settings, run_id=correlation_id)
        if save is None or (claimed := self._save(save, result, None)) is None:
            return None
        return self._run(record, claimed, State.FAILED.value, None, result)

    def _save(self, save: Save, result: ScaleSetResult, finding: Finding | None) -> Record | None:
        """Save with the ETag read (a state change also gets its history row) and remember it for notification."""
        assert self.ledger is not None
        try:
            if save.history or save.record.etag is None:
                saved = self.ledger.save(save.record, previous_state=save.previous_state)
            else:
                saved = self.ledger.update(save.record, history=False)
        except LedgerConflict:
            log.info(
                "record %s %s changed under us; leaving it to the other worker",
                save.record.scale_set_id,
                save.record.row_key,
            )
            return None
        result.records = [r for r in result.records if r.row_key != saved.row_key] + [saved]
        if not save.history:
            return saved
        if saved.state.value != save.previous_state or saved.state is State.FAILED:
            result.changes.append(Change(saved, save.previous_state, finding))
        _log_decision(saved, save.previous_state)
        return saved

    # -- notifications ----------------------------------------------------------------------------------

    def _notify(self, results: list[ScaleSetResult], trigger: str, correlation_id: str) -> int:
        if self.notifier is None or self.ledger is None:
            return 0
        changes = [change for r in results for change in r.changes]
        if not changes:
            return 0
        outcome = self.notifier.notify(changes, trigger=trigger, correlation_id=correlation_id, now=self.clock())
        for record in outcome.delivered:
            try:
                self.ledger.update(record, history=False)
            except (LedgerConflict, LedgerUnavailable) as exc:
                # The message went out; at worst it is sent once more after the dedupe window.
                log.warning("could not mark %s %s as notified: %s", record.scale_set_id, record.row_key, exc)
        return len(outcome.delivered)


def _owes(records: list[Record]) -> bool:
    return any(r.owes_capacity for r in records)


def _arm_outcome(record: Record, exc: ArmError) -> Outcome:
    """Azure's answer to a write, as an outcome the transitions understand (see gateway/errors.py)."""
    kind = exc.kind
    if kind is ErrorClass.FORBIDDEN:
        action = missing_action(exc.message) or "an action of the remediator role"
        reason = (
            f"Azure refused {record.action} ({exc.code}): the identity lacks {action}; grant it (the "
            "remediator role in infra/) or opt this scale set out"
        )
    elif kind is ErrorClass.PREEMPTED:
        reason = f"Azure preempted {record.action}: a later write on the scale set cancelled it"
    elif kind is ErrorClass.REFUSED:
        reason = f"Azure refused {record.action}: {exc.code}: {exc.message}"
    else:
        reason = f"Azure refused {record.action}: {exc.code}"
    return Outcome(State.FAILED, reason, ReasonCode.ARM_ERROR, str(exc), kind)


_LEVELS = {State.FAILED: logging.ERROR, State.HELD: logging.INFO, State.PLANNED: logging.INFO}


def _log_decision(record: Record, previous: str) -> None:
    """Every state change of a record is one "remediation ..." trace with the dimensions alerts query."""
    what = record.action if record.action != "none" else "no action"
    telemetry.log_decision(
        log,
        _LEVELS.get(record.state, logging.INFO),
        f"remediation {what} on {record.scale_set_name} ({record.finding_code}): "
        f"{previous or 'new'} -> {record.state.value}: {record.reason}",
        scaleSetId=record.scale_set_id,
        findingCode=record.finding_code,
        actionCode=record.action,
        outcome=record.state.value,
        reasonCode=record.reason_code,
        mode=record.mode,
        correlationId=record.correlation_id,
    )


__all__ = ["SCALE_SET_TARGET", "Engine", "ScaleSetResult", "SweepResult", "Target", "map_concurrently"]
