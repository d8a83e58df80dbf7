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
from autoheal.remediation.store import ScaleSetClaims
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
