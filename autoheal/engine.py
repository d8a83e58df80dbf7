"""The one way through: snapshot → diagnose → plan → act → record → notify.

Triggers (timer, Event Grid, CLI, HTTP) only decide *which* scale sets to evaluate. `Engine.evaluate`
is the self-contained unit of work for one scale set (a queue message could carry it); `Engine.sweep`
runs it over many scale sets with bounded concurrency.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from . import telemetry
from .diagnosis import diagnose
from .gateway import ArmError, ComputeGateway
from .model import ActionCode, Finding, ScaleSetSnapshot, iso, parse_resource_id
from .remediation import guardrails
from .remediation.actions import EXECUTORS, VERIFIERS, ActionContext, Outcome
from .remediation.guardrails import SweepBudget
from .remediation.ledger import (
    SCALE_SET_TARGET,
    Ledger,
    LedgerConflict,
    LedgerUnavailable,
    Record,
    State,
    scale_set_key,
)
from .remediation.planner import Decision, Verdict, plan
from .settings import Settings

if TYPE_CHECKING:
    from .notify import Change, Notifier

log = telemetry.get_logger("autoheal.engine")

# A new episode of the same finding on the same target starts its attempts afresh after this long.
EPISODE_RESET = guardrails.RATE_WINDOW


@dataclass(frozen=True)
class Target:
    """Which scale sets to evaluate: a whole subscription, a resource group, or one scale set."""

    resource_group: str | None = None
    scale_set: str | None = None

    @classmethod
    def from_id(cls, scale_set_id: str) -> Target:
        ids = parse_resource_id(scale_set_id)
        return cls(ids.get("resourcegroups"), ids.get("virtualmachinescalesets"))


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

    @property
    def scale_set_id(self) -> str:
        return str(self.resource.get("id") or "")

    def actions(self) -> list[dict[str, Any]]:
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


def list_targets(gateway: ComputeGateway, target: Target) -> list[dict[str, Any]]:
    """The scale-set resources in scope, with as few reads as the target allows."""
    if target.resource_group and target.scale_set:
        try:
            return [gateway.get_scale_set(target.resource_group, target.scale_set)]
        except ArmError as exc:
            if exc.not_found:
                return []
            raise
    resources = gateway.list_scale_sets(target.resource_group)
    if target.scale_set:
        wanted = target.scale_set.lower()
        resources = [r for r in resources if str(r.get("name", "")).lower() == wanted]
    return resources


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
    ) -> None:
        self.settings = settings
        self.gateway = gateway
        self.ledger = ledger
        self.notifier = notifier
        self.clock = clock or (lambda: datetime.now(UTC))
        self.on_checkpoint = on_checkpoint

    # -- entry points -----------------------------------------------------------------------------------

    def sweep(self, target: Target | None = None, *, trigger: str = "sweep", event_id: str = "") -> SweepResult:
        """Evaluate every scale set in scope; one failing scale set never stops the others."""
        correlation_id = uuid.uuid4().hex
        started, t0 = self.clock(), time.monotonic()
        budget = SweepBudget(self.settings.max_actions_per_sweep)
        with telemetry.span(f"autoheal.{trigger}", correlationId=correlation_id, eventId=event_id) as span:
            resources = list_targets(self.gateway, target or Target())
            known = self._preload_records(resources)
            results = map_concurrently(
                lambda resource: self.evaluate(
                    resource,
                    budget=budget,
                    correlation_id=correlation_id,
                    records=None if known is None else known.get(scale_set_key(str(resource.get("id") or "")), []),
                ),
                resources,
                self.settings.sweep_concurrency,
            )
            notified = self._notify(results, trigger, correlation_id)
            duration = time.monotonic() - t0
            arm = self.gateway.meter.snapshot()
            span.set_attribute("scaleSets", len(results))
        telemetry.record_sweep(duration, len(results), self.gateway.meter.requests, arm["throttleWaitSeconds"])
        log.info(
            "%s evaluated %d scale set(s) in %.1fs with %d ARM request(s)",
            trigger,
            len(results),
            duration,
            self.gateway.meter.requests,
        )
        return SweepResult(correlation_id, started, results, duration, arm, notified)

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
    ) -> ScaleSetResult:
        """Snapshot → diagnose → reconcile → plan → act → record for one scale set."""
        correlation_id = correlation_id or uuid.uuid4().hex
        budget = budget or SweepBudget(self.settings.max_actions_per_sweep)
        result = ScaleSetResult(resource)
        with telemetry.span("autoheal.scale_set", scaleSetId=result.scale_set_id, correlationId=correlation_id):
            try:
                result.snapshot = self.gateway.snapshot(resource)
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
            try:
                self._remediate(result, budget, correlation_id, records)
            except LedgerUnavailable as exc:
                result.error, result.transient = f"ledger unavailable: {exc}", True
                log.error("ledger unavailable while evaluating %s: %s", result.scale_set_id, exc)
        return result

    # -- the remediation half ---------------------------------------------------------------------------

    def _remediate(
        self, result: ScaleSetResult, budget: SweepBudget, correlation_id: str, known: list[Record] | None
    ) -> None:
        assert self.ledger is not None and result.snapshot is not None
        snapshot = result.snapshot
        records = {r.row_key: r for r in (self.ledger.records_for(snapshot.id) if known is None else known)}
        for record in [r for r in records.values() if r.state.active or r.unfinished]:
            updated = self._reconcile(record, correlation_id, result)
            if updated is not None:
                records[updated.row_key] = updated
        findings_by_key = {f.code.value: f for f in result.findings}
        decisions = plan(snapshot, result.findings, records, self.settings, self.clock(), budget, correlation_id)
        seen: set[str] = set()
        for decision in decisions:
            seen.add(decision.key)
            record = self._apply(decision, records.get(decision.key), correlation_id, result)
            if record is not None:
                records[record.row_key] = record
        for key, record in list(records.items()):
            if key in seen or record.state in (State.SUCCEEDED, State.RESOLVED) or record.state.active:
                continue
            if record.unfinished:
                continue  # still owes the scale set its capacity: reconciled until done or out of attempts
            resolved = self._transition(
                record,
                result,
                findings_by_key.get(record.finding_code),
                state=State.RESOLVED,
                reason="the finding is gone",
                reason_code="resolved",
                updated_at=self.clock(),
                correlation_id=correlation_id,
            )
            if resolved is not None:
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
        if decision.verdict is Verdict.BUSY or (decision.keep and existing is not None):
            if existing is not None:
                result.records.append(existing)
            return None
        now = self.clock()
        base = existing or self._new_record(decision, correlation_id)
        common = {
            "action": decision.action.value,
            "instance_ids": list(decision.instance_ids),
            "params": dict(decision.params),
            "severity": decision.finding.severity.value,
            "summary": decision.finding.summary,
            "mode": self.settings.mode,
        }
        if decision.verdict in (Verdict.HOLD, Verdict.PLAN):
            state = State.PLANNED if decision.verdict is Verdict.PLAN else State.HELD
            if decision.final:
                state = State.FAILED
            if decision.verdict is Verdict.HOLD:
                telemetry.record_held(decision.reason_code)
            unchanged = (
                existing is not None
                and existing.state is state
                and existing.reason_code == decision.reason_code
                and existing.action == decision.action.value
                and existing.instance_ids == common["instance_ids"]
            )
            if unchanged:
                assert existing is not None
                result.records.append(existing)
                if existing.reason == decision.reason:
                    return None
                # Same decision, new detail (e.g. a later "until" time): refresh quietly, no history row.
                try:
                    fresh = self.ledger.update(existing.evolve(reason=decision.reason, updated_at=now), history=False)  # type: ignore[union-attr]
                except LedgerConflict:
                    return None
                result.records[-1] = fresh
                return fresh
            if existing is not None and decision.final:
                common["attempts"] = existing.attempts
            return self._transition(
                base,
                result,
                decision.finding,
                state=state,
                reason=decision.reason,
                reason_code=decision.reason_code,
                updated_at=now,
                correlation_id=correlation_id,
                **common,
            )
        return self._act(decision, base, existing, correlation_id, result, common)

    def _act(
        self,
        decision: Decision,
        base: Record,
        existing: Record | None,
        correlation_id: str,
        result: ScaleSetResult,
        common: dict[str, Any],
    ) -> Record | None:
        assert self.ledger is not None
        now = self.clock()
        # Attempts count across holds and successes (a replacement that keeps failing is one episode);
        # they start afresh only when the finding went away or the last word on it is a day old.
        attempts = base.attempts
        if existing is not None and (
            existing.state is State.RESOLVED
            or (existing.updated_at is not None and now - existing.updated_at >= EPISODE_RESET)
        ):
            attempts = 0
        claimed = base.evolve(
            state=State.RUNNING,
            step="claimed",
            reason=f"{decision.action.value} started",
            reason_code="",
            attempts=attempts + 1,
            lease_until=now + self.settings.action_lease,
            runs=[*guardrails.recent_runs(existing, now), iso(now)],
            correlation_id=correlation_id,
            updated_at=now,
            last_error="",
            capacity_target=None,
            **common,
        )
        try:
            claimed = self.ledger.save(claimed, previous_state=existing.state.value if existing else "")
        except LedgerConflict:
            log.info("another worker claimed %s on %s first", decision.action.value, decision.finding.scale_set_id)
            return None
        return self._run(claimed, EXECUTORS[decision.action], State.RUNNING.value, decision.finding, result)

    def _run(
        self,
        record: Record,
        executor: Callable[[ActionContext], Outcome],
        previous_state: str,
        finding: Finding | None,
        result: ScaleSetResult,
    ) -> Record | None:
        """Run (or resume, or verify) an executor on a claimed record and record its outcome."""
        assert self.ledger is not None
        ctx = ActionContext(self.gateway, self.ledger, self.settings, record, self.clock, self.on_checkpoint)
        dims = {
            "scaleSetId": record.scale_set_id,
            "findingCode": record.finding_code,
            "actionCode": record.action,
            "mode": record.mode,
            "correlationId": record.correlation_id,
        }
        with telemetry.span("autoheal.action", **dims):
            try:
                outcome = executor(ctx)
            except LedgerConflict:
                log.warning("record %s %s was taken over by another worker", record.scale_set_id, record.row_key)
                return None
            except ArmError as exc:
                outcome = Outcome(State.FAILED, f"Azure refused {record.action}: {exc.code}", "arm-error", str(exc))
            except (LedgerUnavailable, KeyboardInterrupt):
                raise
            except Exception as exc:  # a bug must not leave the record running forever: record it
                log.exception("executor for %s crashed", record.action)
                outcome = Outcome(State.FAILED, f"{record.action} failed unexpectedly", "internal-error", repr(exc))
        now = self.clock()
        current = ctx.record
        changes: dict[str, Any] = {
            "state": outcome.state,
            "reason": outcome.reason,
            "reason_code": outcome.reason_code,
            "updated_at": now,
            # a failure always leaves its error: the attempt budget and backoff key off it
            "last_error": outcome.error or (outcome.reason if outcome.state is State.FAILED else ""),
            "lease_until": None,
            "next_attempt_at": None,
        }
        if outcome.state is State.VERIFYING:
            changes["lease_until"] = now + self.settings.action_lease
        if outcome.state is State.FAILED:
            changes["next_attempt_at"] = guardrails.next_attempt_at(current.attempts, self.settings, now)
            if current.attempts >= self.settings.max_attempts:
                changes["reason"] = f"{outcome.reason}; gave up after {current.attempts} attempts"
                changes["reason_code"] = "attempt-budget"
        telemetry.record_action(record.action, outcome.state.value)
        return self._transition(current, result, finding, previous=previous_state or State.RUNNING.value, **changes)

    def _reconcile(self, record: Record, correlation_id: str, result: ScaleSetResult) -> Record | None:
        """Finish what an earlier run left: verify lagging effects, resume crashed steps."""
        assert self.ledger is not None
        now = self.clock()
        action = ActionCode(record.action)
        if record.state is State.FAILED:  # an unfinished replacement: retry its remaining steps when due
            if guardrails.attempt_budget(record, self.settings, now) is not None:
                return None
            try:
                claimed = self.ledger.save(
                    record.evolve(
                        state=State.RUNNING,
                        attempts=record.attempts + 1,
                        lease_until=now + self.settings.action_lease,
                        updated_at=now,
                        correlation_id=correlation_id,
                        reason=f"resuming {record.action} from step {record.step}",
                        reason_code="",
                    ),
                    previous_state=State.FAILED.value,
                )
            except LedgerConflict:
                return None
            return self._run(claimed, EXECUTORS[action], State.FAILED.value, None, result)
        if record.state is State.RUNNING:
            if record.lease_until is not None and now < record.lease_until:
                return None  # its worker may still be at it
            try:
                claimed = self.ledger.update(
                    record.evolve(
                        lease_until=now + self.settings.action_lease, updated_at=now, correlation_id=correlation_id
                    ),
                    history=False,
                )
            except LedgerConflict:
                return None
            log.warning("resuming %s on %s from step %r", record.action, record.scale_set_id, record.step)
            return self._run(claimed, EXECUTORS[action], State.RUNNING.value, None, result)
        verifier = VERIFIERS.get(action)
        if verifier is None:
            return None
        if record.lease_until is not None and now >= record.lease_until:
            return self._transition(
                record,
                result,
                None,
                state=State.FAILED,
                reason=f"{record.action} did not show its effect in time",
                reason_code="verify-timeout",
                last_error="verification timed out",
                updated_at=now,
                next_attempt_at=guardrails.next_attempt_at(record.attempts, self.settings, now),
            )
        return self._run(record, verifier, State.VERIFYING.value, None, result)

    def _transition(
        self,
        record: Record,
        result: ScaleSetResult,
        finding: Finding | None,
        *,
        previous: str | None = None,
        **changes: Any,
    ) -> Record | None:
        """Save a state change with its history row and remember it for notification."""
        assert self.ledger is not None
        from .notify import Change

        before = previous if previous is not None else (record.state.value if record.etag else "")
        updated = record.evolve(**changes)
        try:
            saved = self.ledger.save(updated, previous_state=before)
        except LedgerConflict:
            log.info(
                "record %s %s changed under us; leaving it to the other worker", record.scale_set_id, record.row_key
            )
            return None
        result.records = [r for r in result.records if r.row_key != saved.row_key] + [saved]
        if saved.state.value != before or saved.state is State.FAILED:
            result.changes.append(Change(saved, before, finding))
        _log_decision(saved, before)
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
