"""Issue 21: the race the safety harness hunts for, made deterministic. Two workers evaluate one scale set with two
failed instances (two findings), zero cooldown, each planning before either has claimed anything (a barrier after
`plan` holds both there) and each picking a different finding. Record claims cannot stop this: the records differ.
The per-scale-set claim must: one replacement in flight at a time, and the scale set back at its capacity.

The control test turns the scale-set claim off and sees the two replacements collide (Azure, as emulated, then
refuses or preempts one of them: issue 21 saw the same as a 409 on the restore and a scale set left short), so the
first test can fail.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from autoheal import runner
from autoheal.remediation import transitions
from autoheal.remediation.planner import DecisionKind
from autoheal.remediation.record import Record, State
from autoheal.remediation.store import RecordStore, ScaleSetClaims
from emulator import fleetgen
from tests.safety import invariants


def race(make_rig: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[invariants.Violation]]:
    rig = make_rig(
        # The case: one instance failed, another Unhealthy for an hour with repairs Running and repair
        # action Replace; both findings replace an instance (tests/safety/scenarios.py "double" is the same).
        fleetgen.scale_set(
            "web",
            capacity=6,
            failed={1: "VMExtensionProvisioningError"},
            unhealthy=[4],
            unhealthy_for=3600,
            automatic_repairs=True,
            resilient_creation=True,
            resilient_deletion=True,
        ),
        emulator_options={"lro_seconds": 1.5, "lro_polls": 1_000_000},  # a delete stays in flight for 1.5 s
        # polled every 0.5 s: polling without a pause drains the operation's Get Operation bucket (45) within the
        # 1.5 s and waits out the 429's Retry-After instead
        gateway_options={"polling_interval": 0.5},
        cooldown=timedelta(0),
    )
    real_plan = runner.plan
    barrier = threading.Barrier(2, timeout=60)

    def plan_then_wait(snapshot: Any, findings: list[Any], *args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name == "worker-b":  # the other finding first: a different record
            findings = list(reversed(findings))
        decisions = real_plan(snapshot, findings, *args, **kwargs)
        if threading.current_thread().name.startswith("worker-"):
            barrier.wait()  # both have planned; neither has claimed
        return decisions

    monkeypatch.setattr(runner, "plan", plan_then_wait)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            rig.sweep()
        except BaseException as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, name=name) for name in ("worker-a", "worker-b")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert not errors, errors
    monkeypatch.setattr(runner, "plan", real_plan)
    writes = rig.emu.journal()["writes"]
    deletes = [w for w in writes if "delete" in str(w.get("operationId") or "").lower()]
    assert deletes, "the race made no delete at all: nothing was tested"
    # Two disruptive actions at once: both accepted and overlapping, or one refused (409) or preempted by the other.
    collided = [
        invariants.Violation("collision", f"{w.get('operationId')} {w.get('status')} {w.get('outcomeError')}")
        for w in writes
        if w.get("scaleSet") == "rg-app/web"
        and (w.get("status") == 409 or "preempted" in str(w.get("outcomeError") or "").lower())
    ]
    return rig, invariants.concurrent_disruptions(writes, "rg-app/web") + collided


def test_racing_workers_on_two_findings_never_have_two_replacements_in_flight(make_rig, monkeypatch):
    rig, concurrent = race(make_rig, monkeypatch)
    assert concurrent == []
    for _ in range(6):  # later sweeps finish what waited; capacity is never left short
        rig.advance(minutes=10)
        rig.sweep()
    capacity = rig.emu.scale_set("rg-app", "web")["sku"]["capacity"]
    assert capacity == 6


def test_without_the_scale_set_claim_the_race_overlaps(make_rig, monkeypatch):
    """The control: with the claim always granted, both replacements run at once (the harm issue 21 measured)."""
    monkeypatch.setattr(ScaleSetClaims, "take", lambda self, record, now: True)
    _, concurrent = race(make_rig, monkeypatch)
    assert concurrent, "two replacements should have overlapped without the claim"


@pytest.mark.parametrize(
    ("their_hold", "acts"),
    [
        ("disruption-budget", True),  # the other worker only counted our own action as in flight
        ("cooldown", False),  # any other hold is the other worker's word and stands
    ],
)
def test_a_claim_that_meets_another_workers_budget_hold_claims_over_it(make_rig, monkeypatch, their_hold, acts):
    """The interleaving that stalled the race above 1 time in 3 under load, made certain: after this worker planned
    (nothing claimed yet), another worker that planned the same moment writes this finding's record as held, the
    way it holds its second finding for the disruption budget. Our claim then meets that record. A budget hold is
    about concurrency our scale-set claim already settles, so we claim over it once and act; another hold stands."""
    rig = make_rig(
        fleetgen.scale_set("web", capacity=4, failed={1: "VMExtensionProvisioningError"}),
        cooldown=timedelta(0),
    )
    real_plan = runner.plan
    other = RecordStore(rig.ledger)

    def plan_then_the_other_worker_holds(*args: Any, **kwargs: Any) -> Any:
        decisions = real_plan(*args, **kwargs)
        for decision in decisions:
            if decision.verdict is DecisionKind.ACT:
                finding = decision.finding
                held = transitions.advance(
                    transitions.Event.DECIDED,
                    None,
                    base=Record(finding.scale_set_id, finding.code.value, decision.target, mode="remediate"),
                    state=State.HELD,
                    reason=f"held by the other worker ({their_hold})",
                    reason_code=their_hold,
                    now=rig.now,
                    fields={"action": decision.action.value, "instance_ids": list(decision.instance_ids)},
                )
                assert held is not None
                other.save(held)
        return decisions

    monkeypatch.setattr(runner, "plan", plan_then_the_other_worker_holds)
    rig.sweep()
    monkeypatch.setattr(runner, "plan", real_plan)
    deletes = [w for w in rig.emu.journal()["writes"] if "delete" in str(w.get("operationId") or "").lower()]
    record = rig.record("web", "provisioning-failed")
    assert record is not None
    if acts:
        assert len(deletes) == 1, deletes  # the failed instance was replaced, once
        assert record.state in (State.SUCCEEDED, State.VERIFYING), record
    else:
        assert deletes == []
        assert (record.state, record.reason_code) == (State.HELD, their_hold)
