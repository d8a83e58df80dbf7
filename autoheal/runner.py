"""The record runner: for one diagnosed scale set, finish what earlier runs left, plan, claim, run the
executors and save every change of a record (with its history row, its trace and its notification).

The sweep scheduler (`scheduler.py`) decides which scale sets to read and when; `engine.py` reads one
scale set, diagnoses it and hands it here. Every change of state is computed by `remediation/transitions.py`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import telemetry
from .gateway import ArmError, ComputeGateway
from .gateway.errors import ErrorClass, missing_action
from .model import ActionCode, Finding, ReasonCode, ScaleSetSnapshot
from .notify import Change
from .notify.policy import phase
from .ownership import Owner
from .remediation import transitions
from .remediation.actions import ACTIONS, ActionContext
from .remediation.guardrails import SweepBudget
from .remediation.ledger import Ledger, LedgerConflict, LedgerUnavailable
from .remediation.planner import Decision, DecisionKind, plan
from .remediation.record import Record, State
from .remediation.store import RecordStore, ScaleSetClaims
from .remediation.transitions import Event, Outcome, Save
from .settings import Settings

log = telemetry.get_logger("autoheal.engine")


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
    # Records whose last state was never announced (a notification that failed, or a decision that did not
    # change since): the ledger is the outbox, the sweep offers them again.
    outbox: list[Record] = field(default_factory=list)

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


class RecordRunner:
    """Runs the remediation half of an evaluation against the ledger; one per engine, shared by threads."""

    def __init__(
        self,
        settings: Settings,
        gateway: ComputeGateway,
        ledger: Ledger,
        *,
        clock: Callable[[], datetime],
        on_checkpoint: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.gateway = gateway
        self.ledger = ledger
        self.store = RecordStore(ledger)
        self.claims = ScaleSetClaims(ledger, settings.action_lease)
        self.clock = clock
        self.on_checkpoint = on_checkpoint
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.monotonic = monotonic

    def remediate(
        self, result: ScaleSetResult, budget: SweepBudget, correlation_id: str, known: list[Record] | None
    ) -> None:
        """Reconcile what earlier runs left, plan, act and record, for one scale set already diagnosed."""
        assert result.snapshot is not None
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
            applied = self._apply(decision, records.get(decision.key), correlation_id, result, budget)
            if applied is not None:
                records[applied.row_key] = applied
        for key, record in list(records.items()):
            if key in seen:
                continue
            save = transitions.advance(transitions.Event.RESOLVED, record, now=self.clock())
            if save is not None and (resolved := self._save(save, result, None)) is not None:
                records[key] = resolved
        changed = {c.record.row_key for c in result.changes}
        result.outbox = [r for k, r in records.items() if k not in changed and lagging(r)]

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
        self,
        decision: Decision,
        existing: Record | None,
        correlation_id: str,
        result: ScaleSetResult,
        budget: SweepBudget,
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
            state = transitions.decided_state(observe=decision.verdict is DecisionKind.PLAN, final=decision.final)
            if decision.verdict is DecisionKind.HOLD:
                telemetry.record_held(decision.reason_code)
            save = transitions.advance(
                transitions.Event.DECIDED,
                existing,
                base=base,
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
        save = self._claim(decision, existing, base, now, correlation_id, fields)
        if not self._take_scale_set(save.record, now):
            budget.give_back()  # the sweep-cap slot is spent only by a claim that won
            if existing is not None:
                result.records.append(existing)
            return None
        try:
            claimed = self.store.save(save)
        except LedgerConflict:
            retried = self._claim_over_a_budget_hold(decision, now, correlation_id, fields)
            if retried is None:
                log.info("another worker claimed %s on %s first", decision.action.value, decision.finding.scale_set_id)
                budget.give_back()
                self._settle_scale_set(existing or base, now)
                return None
            claimed = retried
        return self._run(claimed, claimed, State.RUNNING.value, decision.finding, result)

    def _claim_over_a_budget_hold(
        self, decision: Decision, now: datetime, correlation_id: str, fields: dict[str, Any]
    ) -> Record | None:
        """Our claim met a record another worker wrote meanwhile. If that worker only held it for the disruption
        budget (it planned before anyone claimed, and counted our own action as in flight), its hold is about
        concurrency that our scale-set claim already settles: claim over it once. Anything else (a run, another
        hold) is the other worker's word and stands. Without this, two workers planning one scale set's two
        findings at once can each stand back for the other and neither acts until the next sweep."""
        fresh = self.ledger.get(decision.finding.scale_set_id, decision.finding.code.value, decision.target)
        if fresh is None or fresh.state.active or fresh.reason_code != ReasonCode.DISRUPTION_BUDGET.value:
            return None
        try:
            return self.store.save(self._claim(decision, fresh, fresh, now, correlation_id, fields))
        except LedgerConflict:
            return None

    def _claim(
        self,
        decision: Decision,
        existing: Record | None,
        base: Record,
        now: datetime,
        correlation_id: str,
        fields: dict[str, Any],
    ) -> Save:
        claim = transitions.advance(
            transitions.Event.CLAIMED,
            existing,
            base=base,
            action=decision.action,
            now=now,
            settings=self.settings,
            run_id=correlation_id,
            fields=fields,
        )
        assert claim is not None  # a decision to act always claims
        return claim

    def _run(
        self, prior: Record, record: Record, previous_state: str, finding: Finding | None, result: ScaleSetResult
    ) -> Record | None:
        """Run (or resume, or continue) an action's executor on a claimed record and record its outcome."""
        spec = ACTIONS[ActionCode(record.action)]
        ctx = ActionContext(
            self.gateway,
            self.store,
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
        finished = transitions.advance(
            transitions.Event.FINISHED,
            ctx.record,
            outcome=outcome,
            previous_state=previous_state,
            now=self.clock(),
            settings=self.settings,
            rng=self.rng,
            prior=prior,
        )
        assert finished is not None  # an outcome always moves the record
        save = finished
        telemetry.record_action(record.action, save.record.state.value)
        return self._save(save, result, finding)

    def _reconcile(self, record: Record, correlation_id: str, result: ScaleSetResult) -> Record | None:
        """Finish what an earlier run left: resume a crashed run, pay capacity owed, verify lagging effects."""
        now = self.clock()
        if record.state is State.RUNNING:
            save = transitions.advance(
                transitions.Event.CLAIMED, record, now=now, settings=self.settings, run_id=correlation_id
            )
            if save is None or not self._take_scale_set(record, now):
                return None  # its worker's lease still holds
            claimed = self._save(save, result, None)
            if claimed is None:
                return None
            log.warning("resuming %s on %s from step %r", record.action, record.scale_set_id, record.step.value)
            return self._run(record, claimed, State.RUNNING.value, None, result)
        if record.state is State.VERIFYING:
            expired = transitions.advance(transitions.Event.EXPIRED, record, now=now, settings=self.settings)
            if expired is not None:
                return self._save(expired, result, None)
            save = transitions.advance(
                transitions.Event.CLAIMED, record, now=now, settings=self.settings, run_id=correlation_id
            )
            if (
                save is None
                or not self._take_scale_set(record, now)
                or (claimed := self._save(save, result, None)) is None
            ):
                return None
            return self._run(record, claimed, State.VERIFYING.value, None, result)
        save = transitions.advance(
            transitions.Event.CLAIMED, record, now=now, settings=self.settings, run_id=correlation_id
        )
        if save is None or not self._take_scale_set(record, now) or (claimed := self._save(save, result, None)) is None:
            return None
        return self._run(record, claimed, State.FAILED.value, None, result)

    # -- one disruptive action per scale set, across workers -----------------------------------------

    def _take_scale_set(self, record: Record, now: datetime) -> bool:
        if not _disruptive(record):
            return True
        if self.claims.take(record, now):
            return True
        log.info("another disruptive action is in flight on %s; %s waits for it", record.scale_set_name, record.row_key)
        return False

    def _settle_scale_set(self, record: Record, now: datetime) -> None:
        if _disruptive(record):
            self.claims.settle(record, now)

    def _save(self, save: Save, result: ScaleSetResult, finding: Finding | None) -> Record | None:
        """Save with the ETag read (a state change also gets its history row) and remember it for notification."""
        try:
            saved = self.store.save(save)
        except LedgerConflict:
            log.info(
                "record %s %s changed under us; leaving it to the other worker",
                save.record.scale_set_id,
                save.record.row_key,
            )
            return None
        result.records = [r for r in result.records if r.row_key != saved.row_key] + [saved]
        if save.event in (Event.FINISHED, Event.EXPIRED):
            self._settle_scale_set(saved, self.clock())
        if not save.history:
            return saved
        if saved.state.value != save.previous_state or saved.state is State.FAILED:
            result.changes.append(Change(saved, save.previous_state, finding))
        return saved


def lagging(record: Record) -> bool:
    """What people last heard of the record is not its state (a resolution only for what they heard of)."""
    if record.state is State.RESOLVED:
        return bool(record.notified_state) and record.notified_state != State.RESOLVED.value
    return phase(record.notified_state) != phase(record.state.value)


def _disruptive(record: Record) -> bool:
    try:
        return ACTIONS[ActionCode(record.action)].disruptive
    except (ValueError, KeyError):
        return False


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
