"""Guardrails and resilience on the emulator + Azurite: budgets, cooldown, floor, races, crashes, faults."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from autoheal.engine import Engine
from autoheal.gateway import ArmError
from autoheal.remediation.ledger import State
from emulator import fleetgen, payloads
from tests.integration.rig import actions_by

RG = "rg-app"


class SimulatedCrash(BaseException):
    """The process dies: nothing in the engine may catch this."""


def quiet(name, **options):
    """A scale set with nothing wrong but what the test adds."""
    options.setdefault("automatic_repairs", True)
    return fleetgen.scale_set(name, resilient_creation=True, resilient_deletion=True, **options)


def by_state(result):
    out: dict[str, list] = {}
    for (_, finding, target), action in actions_by(result).items():
        out.setdefault(action["state"], []).append((finding, target, action["reasonCode"]))
    return out


def test_disruption_budget_then_cooldown(make_rig):
    rig = make_rig(quiet("a", capacity=10, repair_action="Restart", unhealthy=[2, 5, 7], unhealthy_for=7200))
    first = by_state(rig.sweep())
    assert first["succeeded"] == [("unhealthy-not-repaired", "2", "")]
    assert sorted(first["held"]) == [
        ("unhealthy-not-repaired", "5", "disruption-budget"),
        ("unhealthy-not-repaired", "7", "disruption-budget"),
    ]
    second = by_state(rig.sweep())
    assert sorted(second["held"]) == [
        ("unhealthy-not-repaired", "5", "cooldown"),
        ("unhealthy-not-repaired", "7", "cooldown"),
    ]
    rig.advance(minutes=10, seconds=1)
    third = by_state(rig.sweep())
    assert third["succeeded"] == [("unhealthy-not-repaired", "5", "")]
    assert rig.ops()["VirtualMachineScaleSetVMs_Restart"] == 2


def test_storm_brake_holds_every_instance_action(make_rig):
    rig = make_rig(
        quiet(
            "a",
            capacity=4,
            failed={
                0: "VMExtensionProvisioningError",
                1: "VMExtensionProvisioningError",
                2: "VMExtensionProvisioningError",
            },
        )
    )
    action = actions_by(rig.sweep())[("a", "provisioning-failed", "*")]
    assert (action["state"], action["reason"]) == ("held", "storm brake: 3 failed of 4 instances (75 % > 50 %)")
    assert rig.writes() == 0


def test_capacity_floor_creates_the_replacement_first(make_rig):
    """Issue 20: a 1-instance scale set's failed instance is replaced (resolution 3), created first; one bad
    instance is not a storm (AUTOHEAL_STORM_MIN_INSTANCES=2 by default)."""
    rig = make_rig(quiet("solo", capacity=1, failed={0: "VMExtensionProvisioningError"}))
    action = actions_by(rig.sweep())[("solo", "provisioning-failed", "*")]
    assert action["state"] == "succeeded"
    record = rig.record("solo", "provisioning-failed")
    assert record.params["surge"] == "capacity 1 - 1 < floor 1"
    assert rig.emu.scale_set(RG, "solo")["sku"]["capacity"] == 1
    ops = rig.ops()
    assert ops["VirtualMachineScaleSets_Update"] == 1 and ops["VirtualMachineScaleSets_DeleteInstances"] == 1
    assert [vm["properties"]["provisioningState"] for vm in rig.emu.instances(RG, "solo")] == ["Succeeded"]


@pytest.mark.parametrize(
    ("settings", "tags", "code"),
    [
        ({}, {"autoheal": "off"}, "opt-out"),
        ({"opt_in_tag": ("autoheal", "on")}, {}, "not-opted-in"),
        ({"allowed_actions": ("retry-delete",)}, {}, "not-allowed"),
        ({"exclude_resource_groups": ("rg-app",)}, {}, "out-of-scope"),
    ],
)
def test_scope_holds_change_nothing(make_rig, settings, tags, code):
    rig = make_rig(quiet("a", capacity=4, failed={1: "VMExtensionProvisioningError"}, tags=tags), **settings)
    action = actions_by(rig.sweep())[("a", "provisioning-failed", "*")]
    assert (action["state"], action["reasonCode"]) == ("held", code)
    assert rig.writes() == 0


def test_observe_mode_writes_nothing_to_azure(make_rig):
    rig = make_rig(
        quiet("a", capacity=4, failed={1: "VMExtensionProvisioningError"}, repairs_service="Suspended"),
        quiet("b", automatic_repairs=None),
        mode="observe",
    )
    states = {a["state"] for a in actions_by(rig.sweep()).values()}
    assert states == {"planned"}
    assert rig.writes() == 0


def test_two_sweeps_racing_act_once(make_rig, gateway_for):
    rig = make_rig(quiet("a", capacity=6, failed={4: "VMExtensionProvisioningError"}))
    engines = [rig.engine(gateway=gateway_for(rig.emu)) for _ in range(4)]
    barrier = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def run(engine: Engine) -> None:
        barrier.wait()
        try:
            engine.sweep()
        except BaseException as exc:  # pragma: no cover - surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    ops = rig.ops()
    assert ops["VirtualMachineScaleSets_DeleteInstances"] == 1
    assert ops["VirtualMachineScaleSets_Update"] == 1  # the capacity restore (PATCH sku.capacity)
    assert rig.record("a", "provisioning-failed").state is State.SUCCEEDED


def test_crash_after_the_delete_checkpoint_resumes_without_a_second_delete(make_rig):
    rig = make_rig(quiet("a", capacity=3, failed={2: "VMExtensionProvisioningError"}))

    def crash(step: str) -> None:
        if step == "deleting":
            raise SimulatedCrash

    with pytest.raises(SimulatedCrash):
        rig.engine(on_checkpoint=crash, sweep_concurrency=1).sweep()
    record = rig.record("a", "provisioning-failed")
    assert (record.state, record.step, record.capacity_target) == (State.RUNNING, "deleting", 3)
    assert rig.emu.scale_set(RG, "a")["sku"]["capacity"] == 2

    rig.sweep()  # the dead worker's lease has not expired: nobody touches it
    assert "VirtualMachineScaleSets_Update" not in rig.ops()

    rig.advance(minutes=31)
    rig.sweep()
    record = rig.record("a", "provisioning-failed")
    assert record.state is State.SUCCEEDED
    assert rig.emu.scale_set(RG, "a")["sku"]["capacity"] == 3
    ops = rig.ops()
    assert ops["VirtualMachineScaleSets_DeleteInstances"] == 1 and ops["VirtualMachineScaleSets_Update"] == 1
    resumes = [e for e in rig.ledger.history("a") if e.reason_code == "resumed"]
    assert len(resumes) == 1 and resumes[0].reason.startswith("resumed by run ")


def test_crash_after_azure_accepted_the_delete_never_deletes_twice(make_rig):
    """Issue 11, defect 1: the process dies after Azure accepted the delete of a failed instance but before
    the `deleting` checkpoint, while the delete is still running. The resumed run finds the instance
    Deleting under our intent, waits for it, then restores capacity: one delete, capacity back."""
    rig = make_rig(quiet("a", capacity=3, failed={2: "VMExtensionProvisioningError"}))
    rig.emu.clock.freeze()
    real_delete = rig.gateway.delete_instances

    def accepted_then_dead(snapshot, instance_ids, *, force=True):
        # Azure accepts the delete (202) and the process dies before the LRO ends and before any checkpoint.
        rig.gateway.client.virtual_machine_scale_sets.begin_delete_instances(
            snapshot.resource_group,
            snapshot.name,
            {"instanceIds": list(instance_ids)},
            force_deletion=force,
            polling=False,
        )
        raise SimulatedCrash

    rig.gateway.delete_instances = accepted_then_dead  # type: ignore[method-assign]
    with pytest.raises(SimulatedCrash):
        rig.engine(sweep_concurrency=1).sweep()
    rig.gateway.delete_instances = real_delete  # type: ignore[method-assign]
    record = rig.record("a", "provisioning-failed")
    assert (record.state, record.step) == (State.RUNNING, "delete-intent")
    assert [vm["properties"]["provisioningState"] for vm in rig.emu.instances(RG, "a")][2] == "Deleting"

    rig.offset += timedelta(minutes=31)  # our lease expires; Azure's clock stands still: the delete still runs
    rig.sweep(lro_timeout=timedelta(seconds=10))  # the resumed run waits 10 s for it, then leaves it owed
    record = rig.record("a", "provisioning-failed")
    assert (record.state, record.step, record.reason_code) == (State.VERIFYING, "deleting", "waiting-for-delete")
    assert rig.ops()["VirtualMachineScaleSets_DeleteInstances"] == 1

    rig.advance(minutes=2)  # Azure finishes the delete
    rig.sweep()
    record = rig.record("a", "provisioning-failed")
    assert record.state is State.SUCCEEDED, record.reason
    assert rig.emu.scale_set(RG, "a")["sku"]["capacity"] == 3
    assert rig.ops()["VirtualMachineScaleSets_DeleteInstances"] == 1
    assert any(e.reason_code == "resumed" for e in rig.ledger.history("a"))


def test_a_conflicting_restore_is_retried_within_the_run(make_rig):
    rig = make_rig(
        quiet("a", capacity=3, failed={2: "VMExtensionProvisioningError"}),
        faults={
            "injections": [
                {
                    "method": "PATCH",
                    "pathContains": "virtualMachineScaleSets/a",
                    "status": 409,
                    "code": "Conflict",
                    "count": 2,
                }
            ]
        },
    )
    action = actions_by(rig.sweep())[("a", "provisioning-failed", "*")]
    assert action["state"] == "succeeded"
    assert rig.emu.scale_set(RG, "a")["sku"]["capacity"] == 3
    assert rig.ops()["VirtualMachineScaleSets_DeleteInstances"] == 1


def test_capacity_owed_is_a_debt_the_next_run_pays_first(make_rig):
    """Issue 11, defect 2: the restore keeps conflicting with other writers for longer than the in-run
    retries; the record stays a live debt (not a failure waiting out a 10-minute backoff), and the very next
    run pays it."""
    rig = make_rig(
        quiet("a", capacity=3, failed={2: "VMExtensionProvisioningError"}),
        faults={
            "injections": [
                {
                    "method": "PATCH",
                    "pathContains": "virtualMachineScaleSets/a",
                    "status": 409,
                    "code": "Conflict",
                    "count": 7,
                }
            ]
        },
    )
    rig.sweep()
    record = rig.record("a", "provisioning-failed")
    assert (record.state, record.reason_code) == (State.VERIFYING, "capacity-owed")
    assert rig.emu.scale_set(RG, "a")["sku"]["capacity"] == 2
    rig.sweep()  # no clock advance: the debt does not wait for a backoff
    record = rig.record("a", "provisioning-failed")
    assert record.state is State.SUCCEEDED, record.reason
    assert rig.emu.scale_set(RG, "a")["sku"]["capacity"] == 3
    assert rig.ops()["VirtualMachineScaleSets_DeleteInstances"] == 1


def test_throttling_is_waited_out(make_rig):
    rig = make_rig(
        quiet("a", capacity=3, failed={2: "VMExtensionProvisioningError"}),
        faults={
            "injections": [
                {
                    "method": "GET",
                    "pathContains": "instanceView",
                    "status": 429,
                    "code": "SubscriptionRequestsThrottled",
                    "retryAfter": 1,
                    "count": 1,
                }
            ]
        },
    )
    result = rig.sweep()
    assert result.results[0].error is None
    assert result.arm["throttled"] == 1
    assert actions_by(result)[("a", "provisioning-failed", "*")]["state"] == "succeeded"


def test_server_errors_never_lose_a_finding(make_rig):
    names = [f"s{i}" for i in range(6)]
    rig = make_rig(
        *[quiet(n, capacity=3, failed={1: "VMExtensionProvisioningError"}) for n in names],
        faults={"seed": 3, "serverErrorRate": 0.35},
    )
    rig.gateway._arm.retry_total = 0  # let the faults through instead of retrying them away
    rig.gateway.close()
    evaluated = 0
    for _ in range(6):  # timer ticks: a tick whose list call fails is simply the next tick's work
        try:
            result = rig.sweep()
        except ArmError as exc:
            assert exc.transient
            continue
        for scale_set in result.results:
            if scale_set.error:
                assert "500" in scale_set.error or "ledger" in scale_set.error
                continue  # reported as an unread scale set, evaluated next time
            evaluated += 1
            for action in scale_set.decisions():
                # resolved: the finding went away (a delete left a Failed leftover, now a delete-failed finding)
                assert action["state"] in {"succeeded", "failed", "verifying", "held", "resolved"}, action
        rig.advance(minutes=30)
    assert evaluated > 0
    rig.emu.set_faults({})
    for _ in range(4):
        rig.advance(minutes=30)
        rig.sweep()
    stuck = [
        (r.scale_set_name, r.state, r.step, r.attempts, r.reason)
        for r in rig.ledger.all_records()
        if r.state.active or r.unfinished
    ]
    assert not stuck
    for name in names:
        snap = rig.gateway.snapshot_by_name(RG, name)
        assert [i.provisioning_state for i in snap.instances] == ["Succeeded"] * 3, name


def test_create_faults_that_repeat_are_held_as_a_loop_not_retried(make_rig):
    """Issue 20: every new instance times out the same way, so the replacement's failure is the replaced
    instance's: the next sweep holds the scale set (replacement-loop) instead of spending the attempt budget
    with backoff (attempt-budget itself: test_delete_faults_follow_backoff_and_attempt_limit and the planner's
    unit tests)."""
    entry = fleetgen.scale_set("a", capacity=3, automatic_repairs=True, failed={2: "OSProvisioningTimedOut"})
    payloads.set_power(entry["virtualMachines"][2], "stopped")  # not running: replaced, not held for a person
    rig = make_rig(
        entry,
        faults={
            "createFailures": [{"scaleSet": "a", "code": "OSProvisioningTimedOut", "times": 1, "attemptSeconds": 0}]
        },
        allowed_actions=("replace-failed-instances",),
    )
    assert actions_by(rig.sweep())[("a", "create-timed-out", "*")]["state"] == "failed"
    restores = rig.ops()["VirtualMachineScaleSets_Update"]
    assert restores == 1
    for wait in (11, 21, 41, 81, 300):
        rig.advance(minutes=wait)
        rig.sweep()
        record = rig.record("a", "create-timed-out")
        assert (record.state, record.reason_code, record.attempts) == (State.HELD, "replacement-loop", 1)
    assert rig.ops()["VirtualMachineScaleSets_Update"] == restores


def test_delete_faults_follow_backoff_and_attempt_limit(make_rig):
    rig = make_rig(
        fleetgen.scale_set("a", capacity=4, automatic_repairs=True, deletion_failed=[3]),
        faults={"deleteFailures": [{"scaleSet": "a", "instances": ["3"], "times": 10}]},
        allowed_actions=("retry-delete",),  # no resilient delete: every forced delete is ours
    )
    assert actions_by(rig.sweep())[("a", "delete-failed", "3")]["state"] == "failed"
    for wait in (10, 20, 40, 80):
        rig.advance(minutes=wait, seconds=1)
        rig.sweep()
    final = rig.record("a", "delete-failed", "3")
    assert (final.state, final.attempts, final.reason_code) == (State.FAILED, 5, "attempt-budget")
    assert "InternalExecutionError" in final.last_error
    assert rig.ops()["VirtualMachineScaleSets_DeleteInstances"] == 5


def test_a_node_pool_owned_by_aks_is_diagnosed_and_left_alone(make_rig):
    rig = make_rig(
        fleetgen.scale_set(
            "aks-pool1-12345678-vmss",
            resource_group="MC_rg-aks_prod-aks_westeurope",
            capacity=3,
            failed={1: "VMExtensionProvisioningError"},
            tags={"aks-managed-poolName": "pool1", "aks-managed-orchestrator": "Kubernetes:1.30.3"},
        )
    )
    result = rig.sweep()
    assert {f.code.value for f in result.results[0].findings} >= {"provisioning-failed", "repairs-disabled"}
    owner = result.results[0].owner
    assert owner is not None and (owner.key, owner.name) == ("aks", "prod-aks")
    for action in result.results[0].decisions():
        if action["code"] == "none":
            continue
        assert (action["state"], action["reasonCode"]) == ("held", "owned-by-service"), action
        assert "AKS cluster prod-aks" in action["reason"] and "az aks nodepool" in action["reason"]
    assert rig.writes() == 0


def test_an_owner_can_be_opted_back_in(make_rig):
    rig = make_rig(
        fleetgen.scale_set(
            "aks-pool1-vmss",
            capacity=3,
            automatic_repairs=True,
            resilient_creation=True,
            resilient_deletion=True,
            failed={1: "VMExtensionProvisioningError"},
            tags={"aks-managed-poolName": "pool1"},
        ),
        allowed_owners=("aks",),
    )
    action = actions_by(rig.sweep())[("aks-pool1-vmss", "provisioning-failed", "*")]
    assert action["state"] == "succeeded"
