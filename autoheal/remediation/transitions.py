"""The remediation life cycle, in one file: the table of allowed moves and every move as a pure function.

A record is advanced by an *event* — `advance(event, record, ...)` — and the result is a `Save` (or None:
nothing changes). Which moves exist is declared in `MOVES` below; the one save path
(`remediation/store.py`) refuses any save whose move is not in the table, then writes it with the ETag it
read (so two workers never both win), its history row and its trace. `docs/architecture.md` shows the
table as `moves_table()` renders it (a test keeps the two equal).

Nothing here reads a clock, talks to Azure or to the ledger: each edge — a crash at a step, a preemption, a
conflict, a lease that expired, an attempt budget spent — is a unit test on plain data
(`tests/unit/test_transitions.py`). `Save.history` says whether the save is a state change worth a
history row (and a trace); quiet saves (checkpoints, a refreshed detail) have neither.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from ..gateway.errors import RETRY_SOON, ErrorClass
from ..model import ActionCode, ReasonCode, iso, parse_time
from ..settings import Settings
from .record import Record, State, Step

# A new episode of the same finding on the same target starts its attempts afresh after this long.
EPISODE_RESET = timedelta(hours=24)
RATE_WINDOW = timedelta(hours=24)
# A preempted or conflicting write is retried soon, not after the action backoff.
RETRY_SOON_AFTER = (timedelta(seconds=30), timedelta(seconds=90))
# Standing refusals (403, quota, a scale set being deleted) are looked at again after this long.
REFUSAL_RECHECK = timedelta(hours=6)


@dataclass(frozen=True)
class Outcome:
    """What an executor reports: the state it reached and why."""

    state: State  # succeeded | verifying | failed | held
    reason: str
    reason_code: str = ""
    error: str = ""
    error_class: ErrorClass | None = None


class Event(StrEnum):
    """What happens to a record."""

    DECIDED = "decided"  # planned (observe mode), held by a guardrail or the rule, or finally failed
    CLAIMED = "claimed"  # a worker takes it: a new action, a resume, a look again, a retry of what is left
    CHECKPOINT = "checkpoint"  # an executor's progress, saved before its next write
    FINISHED = "finished"  # the executor reported its outcome
    EXPIRED = "expired"  # a verification whose effect never showed
    RESOLVED = "resolved"  # the finding went away
    NOTIFIED = "notified"  # the message about its state went out


NEW = "new"  # the "from" of a record not yet in the ledger
_DECIDABLE = (NEW, State.PLANNED, State.HELD, State.FAILED, State.SUCCEEDED, State.RESOLVED)


@dataclass(frozen=True)
class Move:
    event: Event
    sources: tuple[str, ...]
    targets: tuple[str, ...]
    why: str


# The life cycle: every allowed move. `store.RecordStore.save` checks each save against this table.
MOVES: tuple[Move, ...] = (
    Move(Event.DECIDED, _DECIDABLE, (State.PLANNED, State.HELD, State.FAILED), "observe, a hold, a final failure"),
    Move(Event.CLAIMED, _DECIDABLE, (State.RUNNING,), "a worker takes the action under a lease"),
    Move(Event.CLAIMED, (State.RUNNING,), (State.RUNNING,), "resumed after its worker's lease expired"),
    Move(Event.CLAIMED, (State.VERIFYING,), (State.RUNNING,), "look again; pay capacity still owed"),
    Move(Event.CHECKPOINT, (State.RUNNING,), (State.RUNNING,), "progress saved before the next write"),
    Move(
        Event.FINISHED,
        (State.RUNNING,),
        (State.SUCCEEDED, State.VERIFYING, State.FAILED, State.HELD),
        "what the executor reported",
    ),
    Move(
        Event.EXPIRED,
        (State.VERIFYING,),
        (State.FAILED, State.HELD),
        "the effect never showed in time (held: Azure accepted a policy but never shows it)",
    ),
    Move(
        Event.RESOLVED,
        (State.PLANNED, State.HELD, State.FAILED),
        (State.RESOLVED,),
        "the finding went away, or a person cleared a hold",
    ),
    Move(Event.NOTIFIED, (NEW, *State), (), "the notified state recorded; the state stays"),
)


def moves_table() -> str:
    """`MOVES` as the Markdown table the docs show."""
    rows = ["| event | from | to | why |", "| --- | --- | --- | --- |"]
    for move in MOVES:
        targets = ", ".join(move.targets) if move.targets else "the same"
        sources = "any" if move.event is Event.NOTIFIED else ", ".join(move.sources)
        rows.append(f"| {move.event.value} | {sources} | {targets} | {move.why} |")
    return "\n".join(rows)


class IllegalMove(Exception):
    """A save whose move is not in `MOVES`: a bug in the caller, never written."""


def allowed(event: Event, source: str, target: str) -> bool:
    for move in MOVES:
        if move.event is event and source in move.sources:
            if event is Event.NOTIFIED:
                return target == source
            if target in move.targets:
                return True
    return False


@dataclass(frozen=True)
class Save:
    """A record to save, the move it makes, and whether the save is a state change for the history."""

    record: Record
    previous_state: str  # what the history row and the notification call the state before
    history: bool = True
    event: Event | None = None
    source: str = NEW  # the state of the record as read from the ledger (NEW: not there yet)

    def check(self) -> None:
        if self.event is None or not allowed(self.event, self.source, self.record.state.value):
            raise IllegalMove(
                f"{self.record.row_key}: {self.source} -> {self.record.state.value} on "
                f"{self.event.value if self.event else 'no event'} is not in the life cycle (transitions.MOVES)"
            )


def _source(record: Record | None) -> str:
    return NEW if record is None or record.etag is None else record.state.value


def recent_runs(record: Record | None, now: datetime) -> list[str]:
    if record is None:
        return []
    return [r for r in record.runs if (at := parse_time(r)) is not None and now - at < RATE_WINDOW]


def next_attempt_at(attempts: int, settings: Settings, now: datetime) -> datetime:
    return now + settings.backoff_base * (1 << max(0, attempts - 1))


def _soon(now: datetime, rng: random.Random | None) -> datetime:
    low, high = RETRY_SOON_AFTER
    spread = (high - low).total_seconds()
    return now + low + timedelta(seconds=(rng or random).random() * spread)


# -- decisions without a write ------------------------------------------------------------------------------


def decide(
    existing: Record | None,
    base: Record,
    *,
    state: State,
    reason: str,
    reason_code: str,
    now: datetime,
    fields: dict[str, Any],
) -> Save | None:
    """A planned (observe mode), held or finally failed decision. Unchanged decisions save nothing; the same
    decision with a new detail (a later "until" time) is refreshed quietly, without a history row."""
    if (
        existing is not None
        and existing.state is state
        and existing.reason_code == reason_code
        and existing.action == fields.get("action")
        and existing.instance_ids == fields.get("instance_ids")
    ):
        if existing.reason == reason:
            return None
        refreshed = existing.evolve(reason=reason, updated_at=now)
        return Save(refreshed, existing.state.value, False, Event.DECIDED, _source(existing))
    previous = existing.state.value if existing is not None else ""
    changes = dict(fields)
    if existing is not None and state is State.FAILED:
        changes["attempts"] = existing.attempts
    record = base.evolve(state=state, reason=reason, reason_code=reason_code, updated_at=now, **changes)
    return Save(record, previous, True, Event.DECIDED, _source(existing))


def decided_state(*, observe: bool, final: bool) -> State:
    """The state a decision without a write leaves: a final hold fails; observe mode plans; else held."""
    if final:
        return State.FAILED
    return State.PLANNED if observe else State.HELD


# -- starting, resuming and continuing an action ------------------------------------------------------------


def claim(
    existing: Record | None,
    base: Record,
    *,
    action: ActionCode,
    now: datetime,
    settings: Settings,
    run_id: str,
    fields: dict[str, Any],
) -> Save:
    """A worker takes the action: RUNNING under a lease, one more attempt, the run counted for rate budgets.
    Attempts count across holds and successes (a replacement that keeps failing is one episode); they start
    afresh only when the finding went away or the last word on it is a day old."""
    attempts = base.attempts
    if existing is not None and (
        existing.state is State.RESOLVED
        or (existing.updated_at is not None and now - existing.updated_at >= EPISODE_RESET)
    ):
        attempts = 0
    record = base.evolve(
        state=State.RUNNING,
        step=Step.CLAIMED,
        intent={},
        reason=f"{action.value} started",
        reason_code=ReasonCode.NONE.value,
        attempts=attempts + 1,
        lease_until=now + settings.action_lease,
        verify_until=None,
        runs=[*recent_runs(existing, now), iso(now)],
        correlation_id=run_id,
        updated_at=now,
        last_error="",
        next_attempt_at=None,
        capacity_target=None,
        **fields,
    )
    return Save(record, existing.state.value if existing is not None else "", True, Event.CLAIMED, _source(existing))


def resume(record: Record, *, now: datetime, settings: Settings, run_id: str) -> Save | None:
    """Take over a RUNNING record whose worker's lease expired (the worker died or hung): a state change with
    its own history row, so every resume is visible. None while the lease still holds."""
    if record.state is not State.RUNNING:
        return None
    if record.lease_until is not None and now < record.lease_until:
        return None
    lease = iso(record.lease_until, seconds=True) if record.lease_until else "no lease"
    step = record.step.value or "the start"
    resumed = record.evolve(
        lease_until=now + settings.action_lease,
        updated_at=now,
        correlation_id=run_id,
        reason=f"resumed by run {run_id[:12]} after lease {lease} (run {record.correlation_id[:12]}) at step {step}",
        reason_code=ReasonCode.RESUMED.value,
    )
    return Save(resumed, State.RUNNING.value, True, Event.CLAIMED, State.RUNNING.value)


def continue_verifying(record: Record, *, now: datetime, settings: Settings, run_id: str) -> Save | None:
    """Take a VERIFYING record to look again (and, for a replacement, to pay what it owes). Claimed under a
    lease like any run, so only one worker continues it; quiet: no history row for a look."""
    if record.state is not State.VERIFYING:
        return None
    claimed = record.evolve(
        state=State.RUNNING, lease_until=now + settings.action_lease, updated_at=now, correlation_id=run_id
    )
    return Save(claimed, State.VERIFYING.value, False, Event.CLAIMED, State.VERIFYING.value)


def retry_unfinished(record: Record, *, now: datetime, settings: Settings, run_id: str) -> Save | None:
    """A failed replacement half-way through (capacity owed, or raised by a surge): retry its remaining steps
    when its backoff allows. Never given up silently: the attempt budget ends it with a final error."""
    if record.state is not State.FAILED or not record.unfinished:
        return None
    # Capacity owed is paid whatever the attempt budget and the backoff say: a scale set is never left short.
    if record.attempts >= settings.max_attempts and not record.owes_capacity:
        return None
    if record.next_attempt_at is not None and now < record.next_attempt_at and not record.owes_capacity:
        return None
    retried = record.evolve(
        state=State.RUNNING,
        attempts=record.attempts + 1,
        lease_until=now + settings.action_lease,
        updated_at=now,
        correlation_id=run_id,
        reason=f"retrying {record.action} from step {record.step.value}",
        reason_code=ReasonCode.NONE.value,
    )
    return Save(retried, State.FAILED.value, True, Event.CLAIMED, State.FAILED.value)


# -- the end of a run ---------------------------------------------------------------------------------------


def finish(
    record: Record,
    outcome: Outcome,
    *,
    previous_state: str,
    now: datetime,
    settings: Settings,
    rng: random.Random | None = None,
    prior: Record | None = None,
) -> Save:
    """What an executor reported, as the record's next state: success, a look again later, a retry soon
    (preempted, conflict, throttled), a standing refusal a person must lift, or a failure with backoff.
    `prior`: the record before this run's claim; ending where it started, for the same reason (a look
    that found nothing new), is quiet: no history row, no notification. A failure is never quiet."""
    changes: dict[str, Any] = {
        "state": outcome.state,
        "reason": outcome.reason,
        "reason_code": outcome.reason_code,
        "updated_at": now,
        "lease_until": None,
        "next_attempt_at": None,
        "last_error": outcome.error or (outcome.reason if outcome.state is State.FAILED else ""),
    }
    if outcome.state is State.SUCCEEDED:
        changes.update(verify_until=None, intent={})
    elif outcome.state is State.VERIFYING:
        changes["verify_until"] = record.verify_until or now + settings.action_lease
    elif outcome.state is State.FAILED:
        changes.update(_failure(record, outcome, now, settings, rng))
    finished = record.evolve(**changes)
    quiet = (
        prior is not None
        and finished.state is prior.state
        and finished.reason == prior.reason
        and finished.state is not State.FAILED
    )
    return Save(finished, previous_state, not quiet, Event.FINISHED, record.state.value)


def checkpoint(record: Record, step: Step, *, now: datetime, changes: dict[str, Any]) -> Save:
    """An executor's progress (its step and intent), saved before its next write; quiet."""
    moved = record.evolve(step=step, updated_at=now, **changes)
    return Save(moved, record.state.value, False, Event.CHECKPOINT, record.state.value)


def notified(record: Record) -> Save:
    """The notifier's copy with `notified_state`/`notified_at` set; the state does not move."""
    return Save(record, record.state.value, False, Event.NOTIFIED, record.state.value)


def _failure(
    record: Record, outcome: Outcome, now: datetime, settings: Settings, rng: random.Random | None
) -> dict[str, Any]:
    kind = outcome.error_class
    if kind in RETRY_SOON:
        if record.owes_capacity:
            # The scale set is owed capacity: keep it a live debt that the next run pays first.
            return {
                "state": State.VERIFYING,
                "reason_code": ReasonCode.CAPACITY_OWED.value,
                "reason": f"capacity restore pending ({kind.value}): {outcome.reason}",
                "verify_until": record.verify_until or now + settings.action_lease,
            }
        # Not our failure: retry soon and do not spend an attempt on it.
        return {
            "reason_code": kind.value,
            "attempts": max(0, record.attempts - 1),
            "next_attempt_at": _soon(now, rng),
        }
    if kind in (ErrorClass.FORBIDDEN, ErrorClass.REFUSED):
        code = ReasonCode.AUTHORIZATION_FAILED if kind is ErrorClass.FORBIDDEN else ReasonCode.AZURE_REFUSED
        return {"reason_code": code.value, "next_attempt_at": now + REFUSAL_RECHECK}
    changes: dict[str, Any] = {"next_attempt_at": next_attempt_at(record.attempts, settings, now)}
    if record.attempts >= settings.max_attempts:
        changes["reason"] = f"{outcome.reason}; gave up after {record.attempts} attempts"
        changes["reason_code"] = ReasonCode.ATTEMPT_BUDGET.value
    return changes


# Policy PATCHes whose effect is a property Azure may accept and never show (resilient create/delete, issue 20).
ACCEPTED_NOT_SHOWN_ACTIONS = frozenset(
    {ActionCode.ENABLE_RESILIENT_VM_CREATE.value, ActionCode.ENABLE_RESILIENT_VM_DELETE.value}
)


def verification_expired(record: Record, *, now: datetime, settings: Settings) -> Save | None:
    """A VERIFYING record whose effect never showed: a failure with backoff (an unfinished replacement is then
    retried from its step; nothing is deleted twice: the intent says what was already asked)."""
    if record.state is not State.VERIFYING or record.verify_until is None or now < record.verify_until:
        return None
    if record.step is Step.PATCHED and record.action in ACCEPTED_NOT_SHOWN_ACTIONS:
        # Sending the same PATCH again would be accepted and not show again (issue 20): stop after one timeout.
        stopped = record.evolve(
            state=State.HELD,
            reason=f"Azure accepted the change but does not show it ({record.action}); not asked again",
            reason_code=ReasonCode.ACCEPTED_NOT_SHOWN.value,
            updated_at=now,
            verify_until=None,
        )
        return Save(stopped, State.VERIFYING.value, True, Event.EXPIRED, State.VERIFYING.value)
    failed = record.evolve(
        state=State.FAILED,
        reason=f"{record.action} did not show its effect in time ({record.reason})",
        reason_code=ReasonCode.VERIFY_TIMEOUT.value,
        last_error="verification timed out",
        updated_at=now,
        verify_until=None,
        next_attempt_at=next_attempt_at(record.attempts, settings, now),
    )
    return Save(failed, State.VERIFYING.value, True, Event.EXPIRED, State.VERIFYING.value)


def resolve(record: Record, *, now: datetime) -> Save | None:
    """The finding went away: close the record, unless it still owes the scale set something."""
    if record.state in (State.SUCCEEDED, State.RESOLVED) or record.state.active or record.unfinished:
        return None
    resolved = record.evolve(
        state=State.RESOLVED, reason="the finding is gone", reason_code=ReasonCode.RESOLVED.value, updated_at=now
    )
    return Save(resolved, record.state.value, True, Event.RESOLVED, record.state.value)


def clear(record: Record, *, now: datetime, reason_code: str, reason: str) -> Save | None:
    """A person cleared a hold (`vmss-autoheal clear`): the record is resolved and the next failure is judged anew."""
    if record.state is not State.HELD:
        return None
    cleared = record.evolve(state=State.RESOLVED, reason_code=reason_code, reason=reason, updated_at=now)
    return Save(cleared, record.state.value, True, Event.RESOLVED, record.state.value)


def advance(event: Event, record: Record | None, /, **kwargs: Any) -> Save | None:
    """Advance `record` by `event`: the one entry to the life cycle (each event's function is below)."""
    if event is Event.DECIDED:
        return decide(record, **kwargs)
    if event is Event.CLAIMED:
        if "action" in kwargs:  # a decision to act
            return claim(record, **kwargs)
        assert record is not None
        take = {State.RUNNING: resume, State.VERIFYING: continue_verifying}.get(record.state, retry_unfinished)
        return take(record, **kwargs)
    assert record is not None
    if event is Event.CHECKPOINT:
        return checkpoint(record, **kwargs)
    if event is Event.FINISHED:
        return finish(record, **kwargs)
    if event is Event.EXPIRED:
        return verification_expired(record, **kwargs)
    if event is Event.RESOLVED:
        return resolve(record, **kwargs)
    return notified(record)
