"""Planner and guardrails on plain data: every "no" has its reason.

Findings are built directly (tests/builders.py), as a rule would hand them over: no test here runs the rules."""

from __future__ import annotations

from datetime import timedelta

import pytest

from autoheal.model import FindingCode as C
from autoheal.model import ReasonCode
from autoheal.remediation.guardrails import SweepBudget, next_attempt_at
from autoheal.remediation.ledger import Record, State
from autoheal.remediation.planner import DecisionKind, plan
from autoheal.settings import default_settings
from tests.builders import NOW, ago, healthy, inst, no_action, repair_overdue, replace_failed, resume_repairs, vmss

REMEDIATE = default_settings(mode="remediate")


def decide(snapshot, *findings, settings=REMEDIATE, records=(), budget=None, correlation="run-2"):
    by_key = {r.row_key: r for r in records}
    return plan(snapshot, list(findings), by_key, settings, NOW, budget or SweepBudget(100), correlation)


def only(decisions, code):
    found = [d for d in decisions if d.finding.code is code]
    assert found, f"no decision for {code}"
    return found


def failed(iid, **kw):
    return inst(iid, state="Failed", error="AllocationFailed", health=None, **kw)


def overdue(iid, **kw):
    return inst(iid, health="Unhealthy", since=120, state_since=2000, **kw)


def record(snapshot, finding, target="*", **kw):
    return Record(scale_set_id=snapshot.id, finding_code=finding.value, target=target, **kw)


def test_observe_mode_plans_and_says_would():
    snap = vmss(*healthy(9), failed("9"), resilient=(False, True))
    (decision,) = only(decide(snap, replace_failed(snap, "9"), settings=default_settings()), C.PROVISIONING_FAILED)
    assert decision.verdict is DecisionKind.PLAN
    assert decision.reason == "observe mode: would replace-failed-instances"


def test_remediate_mode_acts():
    snap = vmss(*healthy(9), failed("9"), resilient=(False, True))
    (decision,) = only(decide(snap, replace_failed(snap, "9")), C.PROVISIONING_FAILED)
    assert decision.verdict is DecisionKind.ACT
    assert decision.params["instanceIds"] == ["9"]
    assert decision.params["targetCapacity"] == 10


def test_rule_none_is_held_with_its_reason_code():
    snap = vmss(*healthy(2), repairs=False, service="NotRunning", source=None)
    rule = no_action(snap, C.REPAIRS_DISABLED, "no health source to repair by", ReasonCode.NEEDS_HEALTH_SOURCE)
    (decision,) = only(decide(snap, rule), C.REPAIRS_DISABLED)
    assert decision.verdict is DecisionKind.HOLD
    assert (decision.reason, decision.reason_code) == ("no health source to repair by", "needs-health-source")


@pytest.mark.parametrize(
    ("tags", "settings", "code"),
    [
        ({"autoheal": "off"}, {}, "opt-out"),
        ({"AutoHeal": "OFF"}, {}, "opt-out"),
        ({}, {"opt_in_tag": ("autoheal", "on")}, "not-opted-in"),
        ({}, {"include_resource_groups": ("prod",)}, "out-of-scope"),
        ({}, {"exclude_resource_groups": ("RG",)}, "out-of-scope"),
        ({}, {"allowed_actions": ("retry-delete",)}, "not-allowed"),
    ],
)
def test_scope_and_allow_list_hold(tags, settings, code):
    snap = vmss(*healthy(9), failed("9"), resilient=(False, True), tags=tags)
    (decision,) = only(
        decide(snap, replace_failed(snap, "9"), settings=REMEDIATE.replace(**settings)), C.PROVISIONING_FAILED
    )
    assert (decision.verdict, decision.reason_code) == (DecisionKind.HOLD, code)


def test_opted_in_scale_set_acts():
    snap = vmss(*healthy(9), failed("9"), resilient=(False, True), tags={"autoheal": "on"})
    settings = REMEDIATE.replace(opt_in_tag=("autoheal", "on"))
    assert (
        only(decide(snap, replace_failed(snap, "9"), settings=settings), C.PROVISIONING_FAILED)[0].verdict
        is DecisionKind.ACT
    )


def test_storm_brake_holds_instance_actions_with_counts():
    snap = vmss(*healthy(4), *[failed(str(i)) for i in range(4, 10)], resilient=(False, True))
    (decision,) = only(decide(snap, replace_failed(snap, *map(str, range(4, 10)))), C.PROVISIONING_FAILED)
    assert decision.verdict is DecisionKind.HOLD
    assert decision.reason == "storm brake: 6 failed of 10 instances (60 % > 50 %)"


def test_one_bad_instance_is_not_a_storm():
    """Issue 20: a 1-instance scale set's failed instance is 1/1 > 50 % but one instance is not a storm."""
    snap = vmss(failed("0"), resilient=(False, True))
    (decision,) = only(decide(snap, replace_failed(snap, "0")), C.PROVISIONING_FAILED)
    assert decision.verdict is DecisionKind.ACT
    one_is_enough = REMEDIATE.replace(storm_min_instances=1)
    (held,) = only(decide(snap, replace_failed(snap, "0"), settings=one_is_enough), C.PROVISIONING_FAILED)
    assert (held.verdict, held.reason) == (DecisionKind.HOLD, "storm brake: 1 failed of 1 instances (100 % > 50 %)")


def test_storm_brake_at_exactly_the_threshold_lets_one_through():
    snap = vmss(*healthy(5), *[failed(str(i)) for i in range(5, 10)], resilient=(False, True))
    half = REMEDIATE.replace(max_disruption_percent=50)
    (decision,) = only(
        decide(snap, replace_failed(snap, *map(str, range(5, 10))), settings=half), C.PROVISIONING_FAILED
    )
    assert decision.verdict is DecisionKind.ACT
    assert decision.params["instanceIds"] == ["5", "6", "7", "8", "9"]


@pytest.mark.parametrize(("percent", "acting"), [(10, 1), (20, 2), (30, 3)])
def test_disruption_budget_per_instance(percent, acting):
    snap = vmss(*healthy(7), overdue("7"), overdue("8"), overdue("9"))
    settings = REMEDIATE.replace(max_disruption_percent=percent)
    decisions = only(decide(snap, repair_overdue(snap, "7", "8", "9"), settings=settings), C.UNHEALTHY_NOT_REPAIRED)
    assert [d.verdict for d in decisions].count(DecisionKind.ACT) == acting
    held = [d for d in decisions if d.verdict is DecisionKind.HOLD]
    assert len(held) == 3 - acting and all(d.reason_code == "disruption-budget" for d in held)
    if held:
        assert "at most" in held[0].reason and f"{percent} % of capacity 10" in held[0].reason


def test_disruption_budget_counts_instances_azure_is_changing():
    snap = vmss(*healthy(8), inst("8", state="Creating", health=None), overdue("9"))
    (decision,) = only(decide(snap, repair_overdue(snap, "9")), C.UNHEALTHY_NOT_REPAIRED)
    assert (decision.verdict, decision.reason_code) == (DecisionKind.HOLD, "disruption-budget")


def test_replace_defers_what_the_budget_does_not_allow():
    snap = vmss(*healthy(7), failed("7"), failed("8"), failed("9"), resilient=(False, True), capacity=10)
    (decision,) = only(decide(snap, replace_failed(snap, "7", "8", "9")), C.PROVISIONING_FAILED)
    assert decision.verdict is DecisionKind.ACT
    assert decision.params["instanceIds"] == ["7"]
    assert decision.params["deferredInstanceIds"] == ["8", "9"]


def test_protected_failed_instance_is_held():
    snap = vmss(*healthy(9), failed("9", protected=True), resilient=(False, True))
    (decision,) = only(decide(snap, replace_failed(snap, "9")), C.PROVISIONING_FAILED)
    assert (decision.verdict, decision.reason_code) == (DecisionKind.HOLD, "protected")


@pytest.mark.parametrize(("minutes_ago", "held"), [(5, True), (9.9, True), (10, False)])
def test_cooldown_after_an_earlier_action(minutes_ago, held):
    snap = vmss(*healthy(9), overdue("9"))
    earlier = record(
        snap,
        C.DELETE_FAILED,
        "4",
        action="retry-delete",
        state=State.SUCCEEDED,
        runs=[ago(minutes_ago).isoformat()],
        correlation_id="run-1",
    )
    (decision,) = only(decide(snap, repair_overdue(snap, "9"), records=[earlier]), C.UNHEALTHY_NOT_REPAIRED)
    assert (decision.reason_code == "cooldown") is held


def test_attempt_budget_and_backoff():
    snap = vmss(*healthy(9), overdue("9"))
    base = dict(action="repair-instances", state=State.FAILED, last_error="boom")
    spent = record(snap, C.UNHEALTHY_NOT_REPAIRED, "9", attempts=5, **base)
    (decision,) = only(decide(snap, repair_overdue(snap, "9"), records=[spent]), C.UNHEALTHY_NOT_REPAIRED)
    assert (decision.verdict, decision.reason_code, decision.final) == (DecisionKind.HOLD, "attempt-budget", True)
    assert decision.reason == "gave up after 5 of 5 attempts; last error: boom"
    waiting = record(
        snap, C.UNHEALTHY_NOT_REPAIRED, "9", attempts=2, next_attempt_at=NOW + timedelta(minutes=1), **base
    )
    (decision,) = only(decide(snap, repair_overdue(snap, "9"), records=[waiting]), C.UNHEALTHY_NOT_REPAIRED)
    assert decision.reason_code == "backoff" and "attempt 3 of 5" in decision.reason
    due = record(snap, C.UNHEALTHY_NOT_REPAIRED, "9", attempts=2, next_attempt_at=NOW, **base)
    assert (
        only(decide(snap, repair_overdue(snap, "9"), records=[due]), C.UNHEALTHY_NOT_REPAIRED)[0].verdict
        is DecisionKind.ACT
    )


def test_backoff_doubles_from_the_base():
    settings = default_settings()
    assert [next_attempt_at(k, settings, NOW) - NOW for k in (1, 2, 3, 4)] == [
        timedelta(minutes=m) for m in (10, 20, 40, 80)
    ]


def test_resume_budget_per_day():
    snap = vmss(*healthy(3), service="Suspended")
    runs = [ago(60).isoformat(), ago(600).isoformat()]
    twice = record(snap, C.REPAIRS_SUSPENDED, action="resume-automatic-repairs", state=State.SUCCEEDED, runs=runs)
    (decision,) = only(decide(snap, resume_repairs(snap), records=[twice]), C.REPAIRS_SUSPENDED)
    assert decision.reason_code == "resume-budget"
    old = record(
        snap,
        C.REPAIRS_SUSPENDED,
        action="resume-automatic-repairs",
        state=State.SUCCEEDED,
        runs=[ago(24 * 60 + 1).isoformat()] * 2,
    )
    assert only(decide(snap, resume_repairs(snap), records=[old]), C.REPAIRS_SUSPENDED)[0].verdict is DecisionKind.ACT


def test_sweep_cap_is_shared():
    budget = SweepBudget(1)
    first = vmss(*healthy(9), failed("9"), resilient=(False, True), name="a")
    second = vmss(*healthy(9), failed("9"), resilient=(False, True), name="b")
    assert (
        only(decide(first, replace_failed(first, "9"), budget=budget), C.PROVISIONING_FAILED)[0].verdict
        is DecisionKind.ACT
    )
    (held,) = only(decide(second, replace_failed(second, "9"), budget=budget), C.PROVISIONING_FAILED)
    assert (held.verdict, held.reason_code) == (DecisionKind.HOLD, "sweep-cap")


def test_running_record_is_busy_not_repeated():
    snap = vmss(*healthy(9), failed("9"), resilient=(False, True))
    running = record(snap, C.PROVISIONING_FAILED, action="replace-failed-instances", state=State.RUNNING)
    (decision,) = only(decide(snap, replace_failed(snap, "9"), records=[running]), C.PROVISIONING_FAILED)
    assert decision.verdict is DecisionKind.BUSY


def test_a_failed_attempt_held_meanwhile_keeps_its_budget():
    """Held by the storm brake after failures: the attempts and the backoff still count afterwards."""
    snap = vmss(*healthy(9), overdue("9"))
    base = dict(action="repair-instances", state=State.HELD, reason_code="storm-brake", last_error="boom")
    spent = record(snap, C.UNHEALTHY_NOT_REPAIRED, "9", attempts=5, **base)
    (decision,) = only(decide(snap, repair_overdue(snap, "9"), records=[spent]), C.UNHEALTHY_NOT_REPAIRED)
    assert (decision.reason_code, decision.final) == ("attempt-budget", True)
    waiting = record(
        snap, C.UNHEALTHY_NOT_REPAIRED, "9", attempts=1, next_attempt_at=NOW + timedelta(minutes=5), **base
    )
    (decision,) = only(decide(snap, repair_overdue(snap, "9"), records=[waiting]), C.UNHEALTHY_NOT_REPAIRED)
    assert decision.reason_code == "backoff" and decision.keep
    never_tried = record(
        snap, C.UNHEALTHY_NOT_REPAIRED, "9", action="repair-instances", state=State.HELD, reason_code="cooldown"
    )
    assert (
        only(decide(snap, repair_overdue(snap, "9"), records=[never_tried]), C.UNHEALTHY_NOT_REPAIRED)[0].verdict
        is DecisionKind.ACT
    )


@pytest.mark.parametrize(
    ("state", "hours_ago", "loop"),
    [(State.SUCCEEDED, 2, True), (State.SUCCEEDED, 30, False), (State.FAILED, 2, False)],
)
def test_repaired_instance_unhealthy_again_within_the_window_is_a_loop(state, hours_ago, loop):
    """Issue 20: a repair that succeeded, and the same instance overdue again within AUTOHEAL_LOOP_WINDOW (P1D):
    repairing again will not help. A repair Azure refused (failed) is the attempt budget's business."""
    snap = vmss(*healthy(9), overdue("9"))
    earlier = record(
        snap,
        C.UNHEALTHY_NOT_REPAIRED,
        "9",
        action="repair-instances",
        state=state,
        attempts=1,
        reason="restarted",
        updated_at=NOW - timedelta(hours=hours_ago),
        runs=[ago(hours_ago * 60).isoformat()],
        correlation_id="run-1",
        last_error="boom" if state is State.FAILED else "",
    )
    (decision,) = only(decide(snap, repair_overdue(snap, "9"), records=[earlier]), C.UNHEALTHY_NOT_REPAIRED)
    assert (decision.reason_code == "replacement-loop") is loop
    if loop:
        assert decision.reason.startswith("instance 9 is Unhealthy again after its repair at ")
        assert decision.params["loop"]["repair"] == "restarted"


def test_replacement_failing_with_another_code_is_not_a_loop():
    snap = vmss(*healthy(9), inst("10", state="Failed", error="AllocationFailed", health=None))
    earlier = record(
        snap,
        C.PROVISIONING_FAILED,
        action="replace-failed-instances",
        state=State.FAILED,
        attempts=1,
        last_error="x",
        updated_at=NOW - timedelta(hours=1),
        params={"before": [str(i) for i in range(9)], "failures": [{"instanceId": "3", "errorCode": "Other"}]},
    )
    decisions = only(decide(snap, replace_failed(snap, "10"), records=[earlier]), C.PROVISIONING_FAILED)
    assert all(d.reason_code != "replacement-loop" for d in decisions)
    same = earlier.evolve(
        params={
            "before": [str(i) for i in range(9)],
            "failures": [{"instanceId": "3", "errorCode": "AllocationFailed"}],
        }
    )
    (decision,) = only(decide(snap, replace_failed(snap, "10"), records=[same]), C.PROVISIONING_FAILED)
    assert decision.reason_code == "replacement-loop"
    assert decision.reason.startswith("every new instance fails with AllocationFailed: replacing will not help")
