"""Each remediation end to end: re-read, act through the gateway, verify, record — and Azure refusing it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from autoheal.remediation.ledger import State
from emulator import fleetgen
from tests.integration.rig import actions_by

RG = "rg-app"


def only_action(result, finding, target="*"):
    acts = actions_by(result)
    name = result.results[0].snapshot.name
    return acts[(name, finding, target)]


def test_enable_automatic_repairs(make_rig):
    rig = make_rig(fleetgen.scale_set("a", automatic_repairs=None, resilient_creation=True, resilient_deletion=True))
    action = only_action(rig.sweep(), "repairs-disabled")
    assert (action["code"], action["state"], action["attempts"]) == ("enable-automatic-repairs", "succeeded", 1)
    policy = rig.emu.scale_set(RG, "a")["properties"]["automaticRepairsPolicy"]
    assert policy == {"enabled": True, "gracePeriod": "PT30M", "repairAction": "Replace"}
    assert rig.gateway.snapshot_by_name(RG, "a").repairs_service_state == "Running"
    assert rig.ops()["VirtualMachineScaleSets_Update"] == 1


def test_enable_keeps_the_owners_repair_action(make_rig):
    rig = make_rig(
        fleetgen.scale_set(
            "a", automatic_repairs=False, repair_action="Reimage", resilient_creation=True, resilient_deletion=True
        )
    )
    assert only_action(rig.sweep(), "repairs-disabled")["state"] == "succeeded"
    assert rig.emu.scale_set(RG, "a")["properties"]["automaticRepairsPolicy"]["repairAction"] == "Reimage"


def test_azure_refusing_is_recorded_then_retried_after_backoff(make_rig):
    rig = make_rig(
        fleetgen.scale_set("a", automatic_repairs=None, resilient_creation=True, resilient_deletion=True),
        faults={
            "injections": [{"method": "PATCH", "status": 400, "code": "BadRequest", "message": "not today", "count": 1}]
        },
    )
    action = only_action(rig.sweep(), "repairs-disabled")
    assert (action["state"], action["attempts"], action["reasonCode"]) == ("failed", 1, "arm-error")
    record = rig.record("a", "repairs-disabled")
    assert "BadRequest" in record.last_error and "not today" in record.last_error
    assert record.next_attempt_at - rig.now < timedelta(minutes=10, seconds=5)
    writes = rig.writes()
    rig.sweep()  # inside the backoff: nothing is tried, nothing recorded anew
    assert rig.writes() == writes
    assert rig.record("a", "repairs-disabled").state is State.FAILED
    rig.advance(minutes=10, seconds=1)
    action = only_action(rig.sweep(), "repairs-disabled")
    assert (action["state"], action["attempts"]) == ("succeeded", 2)


def test_resume_suspended_repairs_within_the_daily_budget(make_rig):
    rig = make_rig(
        fleetgen.scale_set(
            "a", automatic_repairs=True, repairs_service="Suspended", resilient_creation=True, resilient_deletion=True
        )
    )
    for attempt in (1, 2):
        action = only_action(rig.sweep(), "repairs-suspended")
        assert action["state"] == "succeeded", attempt
        assert rig.gateway.snapshot_by_name(RG, "a").repairs_service_state == "Running"
        rig.emu.platform_suspends_repairs(RG, "a")  # repairs fail again: the platform suspends them
        rig.advance(minutes=30)
    action = only_action(rig.sweep(), "repairs-suspended")
    assert (action["state"], action["reasonCode"]) == ("held", "resume-budget")
    assert rig.ops()["VirtualMachineScaleSets_SetOrchestrationServiceState"] == 2  # the 2 resumes


@pytest.mark.parametrize("mode", ["Uniform", "Flexible"])
def test_replace_failed_instances_restores_the_recorded_capacity(make_rig, mode):
    rig = make_rig(
        fleetgen.scale_set(
            "a",
            orchestration=mode,
            capacity=4,
            automatic_repairs=True,
            failed={1: "VMExtensionProvisioningError"},
            resilient_creation=True,
            resilient_deletion=True,
        )
    )
    before = {vm["name"] for vm in rig.emu.instances(RG, "a")}
    action = only_action(rig.sweep(), "provisioning-failed")
    assert (action["code"], action["state"]) == ("replace-failed-instances", "succeeded")
    after = rig.emu.instances(RG, "a")
    assert rig.emu.scale_set(RG, "a")["sku"]["capacity"] == 4 and len(after) == 4
    assert all(vm["properties"]["provisioningState"] == "Succeeded" for vm in after)
    assert len({vm["name"] for vm in after} - before) == 1
    record = rig.record("a", "provisioning-failed")
    assert record.capacity_target == 4 and record.step == "restored"
    ops = rig.ops()
    assert ops["VirtualMachineScaleSets_Update"] == 1  # PATCH sku.capacity back to the recorded target
    assert ops.get("VirtualMachineScaleSets_DeleteInstances", 0) + ops.get("VirtualMachines_Delete", 0) == 1


def test_replacement_still_creating_is_verified_by_a_later_run(make_rig):
    rig = make_rig(
        fleetgen.scale_set(
            "a",
            capacity=3,
            automatic_repairs=True,
            failed={0: "VMExtensionProvisioningError"},
            resilient_creation=True,
            resilient_deletion=True,
        ),
        emulator_options={"create_delay": 120},
    )
    rig.emu.clock.freeze()
    action = only_action(rig.sweep(), "provisioning-failed")
    assert action["state"] == "verifying"
    assert "waiting for new instance(s)" in action["reason"]
    rig.emu.clock.advance(121)
    rig.sweep()
    assert rig.record("a", "provisioning-failed").state is State.SUCCEEDED


@pytest.mark.parametrize(
    ("mode", "repair", "operation"),
    [
        ("Uniform", "Restart", "VirtualMachineScaleSetVMs_Restart"),
        ("Uniform", "Reimage", "VirtualMachineScaleSetVMs_Reimage"),
        ("Flexible", "Restart", "VirtualMachines_Restart"),
        ("Flexible", "Reimage", "VirtualMachines_Reimage"),
    ],
)
def test_repair_instances_with_the_policy_action(make_rig, mode, repair, operation):
    rig = make_rig(
        fleetgen.scale_set(
            "a",
            orchestration=mode,
            capacity=4,
            automatic_repairs=True,
            repair_action=repair,
            unhealthy=[2],
            unhealthy_for=7200,
            resilient_creation=True,
            resilient_deletion=True,
        )
    )
    sick = rig.gateway.snapshot_by_name(RG, "a").instances[2].instance_id
    action = only_action(rig.sweep(), "unhealthy-not-repaired", sick)
    assert (action["code"], action["state"]) == ("repair-instances", "succeeded")
    assert rig.ops()[operation] == 1
    assert rig.gateway.snapshot_by_name(RG, "a").instance(sick).health.value == "Healthy"


def test_repair_instances_replace_deletes_and_restores(make_rig):
    rig = make_rig(
        fleetgen.scale_set(
            "a",
            capacity=4,
            automatic_repairs=True,
            unhealthy=[3],
            unhealthy_for=7200,
            resilient_creation=True,
            resilient_deletion=True,
        )
    )
    action = only_action(rig.sweep(), "unhealthy-not-repaired", "3")
    assert action["state"] == "succeeded"
    ids = [vm["instanceId"] for vm in rig.emu.instances(RG, "a")]
    assert "3" not in ids and len(ids) == 4
    assert rig.ops()["VirtualMachineScaleSets_Update"] == 1


def test_retry_delete_removes_what_resilient_delete_gave_up_on(make_rig):
    rig = make_rig(
        fleetgen.scale_set(
            "a",
            capacity=4,
            automatic_repairs=True,
            deletion_failed=[3],
            resilient_creation=True,
            resilient_deletion=True,
        )
    )
    action = only_action(rig.sweep(), "delete-failed", "3")
    assert (action["code"], action["state"]) == ("retry-delete", "succeeded")
    assert "3" not in [vm["instanceId"] for vm in rig.emu.instances(RG, "a")]
    assert "VirtualMachineScaleSets_Update" not in rig.ops()  # a delete leftover is not replaced


def test_set_grace_period_when_a_target_is_configured(make_rig):
    rig = make_rig(
        fleetgen.scale_set(
            "a",
            capacity=3,
            automatic_repairs=True,
            grace_period="PT10M",
            unhealthy=[1],
            unhealthy_for=120,
            resilient_creation=True,
            resilient_deletion=True,
        ),
        target_grace_period=timedelta(minutes=45),
    )
    action = only_action(rig.sweep(), "grace-period")
    assert (action["code"], action["state"]) == ("set-grace-period", "succeeded")
    assert rig.emu.scale_set(RG, "a")["properties"]["automaticRepairsPolicy"]["gracePeriod"] == "PT45M"


def test_enable_resilient_policies_and_unregistered_feature(make_rig):
    rig = make_rig(
        fleetgen.scale_set("a", capacity=2, automatic_repairs=True),
        features=["Microsoft.Compute/ReliableVMDeletion"],
    )
    result = rig.sweep()
    delete = only_action(result, "resilient-delete-disabled")
    create = only_action(result, "resilient-create-disabled")
    assert delete["state"] == "succeeded"
    assert rig.emu.scale_set(RG, "a")["properties"]["resiliencyPolicy"]["resilientVMDeletionPolicy"] == {
        "enabled": True
    }
    assert (create["state"], create["reasonCode"]) == ("held", "feature-not-registered")
    assert (
        'az feature register --namespace "Microsoft.Compute" --name "ResilientVMScaleSetVMCreation"' in create["reason"]
    )
    writes = rig.writes()
    rig.sweep()  # Azure's refusal stands: not asked again every sweep
    assert rig.writes() == writes
