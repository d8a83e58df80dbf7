"""The record's state machine on plain data: every edge a crash, a preemption, a conflict, an expired lease
or a spent attempt budget can take (issue 11). No Azure, no ledger, no clock."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from autoheal.gateway.errors import ErrorClass
from autoheal.model import ActionCode
from autoheal.remediation import transitions
from autoheal.remediation.record import Record, State, Step
from autoheal.remediation.transitions import Outcome
from autoheal.settings import default_settings

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
SETTINGS = default_settings()
VMSS = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web"
FIELDS = {"action": "replace-failed-instances", "instance_ids": ["2"], "params": {}, "mode": "remediate"}


def record(**changes) -> Record:
    base = Record(VMSS, "provisioning-failed", action="replace-failed-instances", etag='"1"', updated_at=NOW)
    return base.evolve(**changes)


def claim(existing: Record | None = None, now: datetime = NOW) -> Record:
    save = transitions.claim(
        existing,
        existing or record(etag=None),
        action=ActionCode.REPLACE_FAILED_INSTANCES,
        now=now,
        settings=SETTINGS,
        run_id="run-b",
        fields=FIELDS,
    )
    return save.record


def test_claim_takes_a_lease_counts_the_attempt_and_the_run():
    claimed = claim(record(state=State.HELD, attempts=2, runs=["2026-11-30T02:00:00Z"]))
    assert (claimed.state, claimed.step, claimed.attempts) == (State.RUNNING, Step.CLAIMED, 3)
    assert claimed.lease_until == NOW + SETTINGS.action_lease
    assert claimed.runs == ["2026-11-30T02:00:00Z", "2026-11-30T03:00:00Z"]
    assert claimed.intent == {} and claimed.correlation_id == "run-b"


@pytest.mark.parametrize(
    ("existing", "attempts"),
    [
        (record(state=State.RESOLVED, attempts=4), 1),  # the finding went away: a new episode
        (record(state=State.FAILED, attempts=4, updated_at=NOW - timedelta(days=2)), 1),  # a day-old last word
        (record(state=State.FAILED, attempts=4), 5),  # the same episode: attempts keep counting
    ],
)
def test_attempts_start_afresh_only_for_a_new_episode(existing, attempts):
    assert claim(existing).attempts == attempts


def test_resume_waits_for_the_lease_then_leaves_a_history_row():
    running = record(state=State.RUNNING, step=Step.DELETE_INTENT, lease_until=NOW + timedelta(minutes=5))
    assert transitions.resume(running, now=NOW, settings=SETTINGS, run_id="run-b") is None
    save = transitions.resume(running, now=NOW + timedelta(minutes=6), settings=SETTINGS, run_id="run-b")
    assert save is not None and save.history and save.previous_state == "running"
    assert save.record.reason_code == "resumed" and save.record.reason.startswith("resumed by run run-b")
    assert "delete-intent" in save.record.reason
    assert save.record.step is Step.DELETE_INTENT  # the intent survives: the executor reads it
    assert save.record.lease_until == NOW + timedelta(minutes=6) + SETTINGS.action_lease


def test_only_running_records_are_resumed():
    assert transitions.resume(record(state=State.VERIFYING), now=NOW, settings=SETTINGS, run_id="r") is None


def test_continuing_verification_is_a_quiet_claim():
    verifying = record(state=State.VERIFYING, step=Step.DELETING, verify_until=NOW + timedelta(minutes=20))
    save = transitions.continue_verifying(verifying, now=NOW, settings=SETTINGS, run_id="run-c")
    assert save is not None and not save.history
    assert (save.record.state, save.record.verify_until) == (State.RUNNING, NOW + timedelta(minutes=20))


def test_an_expired_verification_fails_with_backoff():
    verifying = record(state=State.VERIFYING, attempts=1, verify_until=NOW - timedelta(seconds=1), reason="waiting")
    save = transitions.verification_expired(verifying, now=NOW, settings=SETTINGS)
    assert save is not None and save.record.state is State.FAILED
    assert save.record.reason_code == "verify-timeout" and "waiting" in save.record.reason
    assert save.record.next_attempt_at == NOW + SETTINGS.backoff_base
    fresh = record(state=State.VERIFYING, verify_until=NOW + timedelta(seconds=1))
    assert transitions.verification_expired(fresh, now=NOW, settings=SETTINGS) is None


def finish(before: Record, outcome: Outcome, seed: int = 1) -> Record:
    return transitions.finish(
        before, outcome, previous_state="running", now=NOW, settings=SETTINGS, rng=random.Random(seed)
    ).record


def test_success_clears_lease_intent_and_error():
    done = finish(
        record(state=State.RUNNING, lease_until=NOW, intent={"capacity": 3}, last_error="x"),
        Outcome(State.SUCCEEDED, "replaced"),
    )
    assert (done.state, done.lease_until, done.intent, done.last_error) == (State.SUCCEEDED, None, {}, "")


def test_verifying_keeps_its_first_deadline():
    first = finish(record(state=State.RUNNING), Outcome(State.VERIFYING, "waiting"))
    assert first.verify_until == NOW + SETTINGS.action_lease
    again = finish(first.evolve(verify_until=NOW + timedelta(minutes=3)), Outcome(State.VERIFYING, "waiting"))
    assert again.verify_until == NOW + timedelta(minutes=3)


@pytest.mark.parametrize("kind", [ErrorClass.PREEMPTED, ErrorClass.CONFLICT, ErrorClass.THROTTLED])
def test_preemption_while_capacity_is_owed_stays_a_live_debt(kind):
    owing = record(state=State.RUNNING, step=Step.RESTORE_INTENT, attempts=1)
    after = finish(owing, Outcome(State.FAILED, "restore capacity", error="409", error_class=kind))
    assert (after.state, after.reason_code) == (State.VERIFYING, "capacity-owed")
    assert after.next_attempt_at is None  # no backoff: the next run pays it
    assert after.attempts == 1


@pytest.mark.parametrize("kind", [ErrorClass.PREEMPTED, ErrorClass.CONFLICT])
def test_preemption_elsewhere_is_retried_soon_without_spending_an_attempt(kind):
    before = record(state=State.RUNNING, step=Step.PATCH_INTENT, attempts=2)
    after = finish(before, Outcome(State.FAILED, "preempted", error_class=kind))
    assert after.state is State.FAILED and after.reason_code == kind.value
    assert after.attempts == 1
    assert timedelta(seconds=30) <= after.next_attempt_at - NOW <= timedelta(seconds=90)


@pytest.mark.parametrize(
    ("kind", "code"), [(ErrorClass.FORBIDDEN, "authorization-failed"), (ErrorClass.REFUSED, "azure-refused")]
)
def test_standing_refusals_wait_for_a_person_not_the_backoff(kind, code):
    after = finish(record(state=State.RUNNING, attempts=1), Outcome(State.FAILED, "no", error_class=kind))
    assert (after.state, after.reason_code) == (State.FAILED, code)
    assert after.next_attempt_at == NOW + transitions.REFUSAL_RECHECK


def test_failures_back_off_exponentially_and_end_at_the_attempt_budget():
    after = finish(record(state=State.RUNNING, attempts=3), Outcome(State.FAILED, "boom", error_class=None))
    assert after.next_attempt_at == NOW + SETTINGS.backoff_base * 4
    last = finish(record(state=State.RUNNING, attempts=SETTINGS.max_attempts), Outcome(State.FAILED, "boom"))
    assert last.reason_code == "attempt-budget" and "gave up after 5 attempts" in last.reason


def test_unfinished_replacements_are_retried_when_due_and_within_budget():
    # surge-intent: unfinished (capacity may be above the target) but nothing deleted yet, nothing owed
    failed = record(state=State.FAILED, step=Step.SURGE_INTENT, attempts=2, next_attempt_at=NOW + timedelta(minutes=1))
    assert transitions.retry_unfinished(failed, now=NOW, settings=SETTINGS, run_id="r") is None
    due = transitions.retry_unfinished(failed, now=NOW + timedelta(minutes=2), settings=SETTINGS, run_id="r")
    assert due is not None and (due.record.state, due.record.attempts) == (State.RUNNING, 3)
    spent = failed.evolve(attempts=SETTINGS.max_attempts, next_attempt_at=None)
    assert transitions.retry_unfinished(spent, now=NOW, settings=SETTINGS, run_id="r") is None
    finished = failed.evolve(step=Step.RESTORED, next_attempt_at=None)
    assert transitions.retry_unfinished(finished, now=NOW, settings=SETTINGS, run_id="r") is None


def test_capacity_owed_is_paid_whatever_the_backoff_and_the_attempt_budget_say():
    """A final sweep always pays what is still owed: instances deleted, capacity not back."""
    owed = record(
        state=State.FAILED,
        step=Step.RESTORE_INTENT,
        attempts=SETTINGS.max_attempts,
        next_attempt_at=NOW + timedelta(hours=1),
    )
    save = transitions.retry_unfinished(owed, now=NOW, settings=SETTINGS, run_id="r")
    assert save is not None and save.record.state is State.RUNNING


def test_a_record_that_owes_capacity_is_never_resolved():
    owing = record(state=State.FAILED, step=Step.RESTORE_INTENT)
    assert owing.owes_capacity and transitions.resolve(owing, now=NOW) is None
    held = record(state=State.HELD, reason_code="storm-brake")
    save = transitions.resolve(held, now=NOW)
    assert save is not None and (save.record.state, save.previous_state) == (State.RESOLVED, "held")
    assert transitions.resolve(record(state=State.SUCCEEDED), now=NOW) is None


def test_an_unchanged_decision_saves_nothing_and_a_new_detail_is_quiet():
    held = record(state=State.HELD, reason="cooldown until 03:10", reason_code="cooldown", **FIELDS)
    same = transitions.decide(
        held, held, state=State.HELD, reason=held.reason, reason_code="cooldown", now=NOW, fields=FIELDS
    )
    assert same is None
    later = transitions.decide(
        held, held, state=State.HELD, reason="cooldown until 03:20", reason_code="cooldown", now=NOW, fields=FIELDS
    )
    assert later is not None and not later.history and later.record.reason == "cooldown until 03:20"
    brake = transitions.decide(
        held, held, state=State.HELD, reason="storm", reason_code="storm-brake", now=NOW, fields=FIELDS
    )
    assert brake is not None and brake.history and brake.previous_state == "held"


def test_legacy_steps_map_onto_intents():
    assert Step.parse("deleted") is Step.RESTORE_INTENT
    assert Step.parse("delete-next") is Step.DELETE_INTENT
    assert Step.parse("surged") is Step.DELETE_INTENT
    assert Step.parse("no-such-step") is Step.NONE


def test_every_action_code_is_declared_once_with_an_executor():
    from autoheal.remediation.actions import ACTIONS
    from autoheal.settings import ACTION_CODES

    codes = {code for code in ActionCode if code is not ActionCode.NONE}
    assert set(ACTIONS) == codes
    assert set(ACTION_CODES) == {code.value for code in codes}
    for spec in ACTIONS.values():
        assert callable(spec.run) and spec.phrase


# -- the life cycle as data (issue 21) ----------------------------------------------------------------------


def test_the_docs_show_the_table_of_moves_the_code_declares():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "architecture.md").read_text()
    shown = doc.split("<!-- moves:begin -->", 1)[1].split("<!-- moves:end -->", 1)[0].strip()
    assert shown == transitions.moves_table()


def test_every_function_of_the_life_cycle_makes_a_move_in_the_table():
    held = record(state=State.HELD)
    saves = [
        transitions.advance(
            transitions.Event.DECIDED,
            None,
            base=record(etag=None),
            state=State.HELD,
            reason="r",
            reason_code="c",
            now=NOW,
            fields=FIELDS,
        ),
        transitions.advance(
            transitions.Event.CLAIMED,
            held,
            base=held,
            action=ActionCode.REPLACE_FAILED_INSTANCES,
            now=NOW,
            settings=SETTINGS,
            run_id="r",
            fields=FIELDS,
        ),
        transitions.advance(
            transitions.Event.CLAIMED, record(state=State.RUNNING), now=NOW, settings=SETTINGS, run_id="r"
        ),
        transitions.advance(
            transitions.Event.CLAIMED, record(state=State.VERIFYING), now=NOW, settings=SETTINGS, run_id="r"
        ),
        transitions.advance(
            transitions.Event.CHECKPOINT, record(state=State.RUNNING), step=Step.RECORDED, now=NOW, changes={}
        ),
        transitions.advance(
            transitions.Event.FINISHED,
            record(state=State.RUNNING),
            outcome=Outcome(State.SUCCEEDED, "ok"),
            previous_state="running",
            now=NOW,
            settings=SETTINGS,
        ),
        transitions.advance(
            transitions.Event.EXPIRED, record(state=State.VERIFYING, verify_until=NOW), now=NOW, settings=SETTINGS
        ),
        transitions.advance(transitions.Event.RESOLVED, held, now=NOW),
        transitions.advance(transitions.Event.NOTIFIED, held),
    ]
    assert len(saves) == 9 and all(s is not None for s in saves)
    for save in saves:
        save.check()  # raises IllegalMove if the move is not in the table
    assert {s.event for s in saves} == set(transitions.Event)


@pytest.mark.parametrize(
    ("event", "source", "target"),
    [
        ("finished", "held", "succeeded"),  # only a claimed (running) record finishes
        ("resolved", "running", "resolved"),  # a running record is never resolved under its worker
        ("checkpoint", "verifying", "verifying"),  # checkpoints belong to a claimed run
        ("notified", "held", "running"),  # marking a notification never moves the state
        ("claimed", "succeeded", "held"),
    ],
)
def test_a_move_outside_the_table_is_refused(event, source, target):
    save = transitions.Save(record(state=State(target)), source, event=transitions.Event(event), source=source)
    with pytest.raises(transitions.IllegalMove):
        save.check()


def test_every_ledger_write_goes_through_the_one_save_path():
    """Nothing in the package writes a live record but `remediation/store.py` (the ledger itself, and the CLI's
    in-memory ledger that overrides the writes, aside): a call of create/update/save/append_history on
    anything but the store is a save that skipped the table, the history row or the trace."""
    import ast
    from pathlib import Path

    package = Path(__file__).resolve().parents[2] / "autoheal"
    allowed = {package / "remediation" / "store.py", package / "remediation" / "ledger.py"}
    writes = {"create", "update", "save", "append_history", "_append_history"}
    offenders = []
    files = sorted(package.rglob("*.py"))
    assert files
    for path in files:
        if path in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in writes:
                receiver = ast.unparse(node.func.value)
                if "store" not in receiver.lower() and ("ledger" in receiver.lower() or "backing" in receiver):
                    offenders.append(f"{path.relative_to(package)}:{node.lineno}: {ast.unparse(node.func)}")
    assert not offenders, offenders
