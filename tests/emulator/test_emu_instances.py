"""Uniform scale set instances through the real SDK: list with instance views, get with expands,
instance view, delete (one, several), scale-out with the create delay, restart/reimage/redeploy."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from emulator import fleetgen
from emulator.testing import compute_client

from .conftest import NOW


def test_list_with_instance_view_carries_vm_health_and_deletion_status(client):
    vms = list(client.virtual_machine_scale_set_vms.list("rg-app", "web", expand="instanceView"))
    assert [vm.instance_id for vm in vms] == ["0", "1", "2", "3"]
    assert [vm.instance_view.vm_health.status.code for vm in vms] == [
        "HealthState/healthy",
        "HealthState/unhealthy",
        "HealthState/healthy",
        "HealthState/healthy",
    ]
    assert {vm.resilient_vm_deletion_status for vm in vms} == {"Disabled"}
    assert vms[1].instance_view.vm_health.status.time is not None
    codes = [s.code for s in vms[0].instance_view.statuses]
    assert codes == ["ProvisioningState/succeeded", "PowerState/running"]


def test_list_without_expand_has_no_instance_view_but_keeps_deletion_status(client):
    vms = list(client.virtual_machine_scale_set_vms.list("rg-app", "web"))
    assert vms and all(vm.instance_view is None for vm in vms)
    assert all(vm.resilient_vm_deletion_status == "Disabled" for vm in vms)


def test_instance_list_pages(start_emulator):
    emu = start_emulator(fleetgen.fleet(fleetgen.scale_set("big", capacity=7)), page_size=2)
    vms = list(compute_client(emu).virtual_machine_scale_set_vms.list("rg-app", "big", expand="instanceView"))
    assert len(vms) == 7
    assert emu.stats()["byOperation"]["VirtualMachineScaleSetVMs_List"] == 4


@pytest.mark.parametrize("expand", ["resiliencyView", "ResiliencyView", "RESILIENCYVIEW"])
def test_get_with_resiliency_view_is_case_insensitive(client, expand):
    vm = client.virtual_machine_scale_set_vms.get("rg-app", "web", "1", expand=expand)
    assert vm.resilient_vm_deletion_status == "Disabled"
    # swagger ($expand description): resiliencyView also retrieves the instance view
    assert vm.instance_view is not None


def test_get_plain_and_with_instance_view(client):
    plain = client.virtual_machine_scale_set_vms.get("rg-app", "web", "2")
    assert plain.resilient_vm_deletion_status is None and plain.instance_view is None
    assert plain.name == "web_2" and plain.provisioning_state == "Succeeded"
    viewed = client.virtual_machine_scale_set_vms.get("rg-app", "web", "2", expand="instanceView")
    assert viewed.instance_view.vm_health.status.code == "HealthState/healthy"


def test_get_instance_view(client):
    view = client.virtual_machine_scale_set_vms.get_instance_view("rg-app", "web", "1")
    assert view.vm_health.status.code == "HealthState/unhealthy"
    assert view.vm_agent.vm_agent_version


def test_unknown_and_malformed_instance_ids(client):
    with pytest.raises(ResourceNotFoundError) as missing:
        client.virtual_machine_scale_set_vms.get("rg-app", "web", "42")
    assert missing.value.error.code == "NotFound"
    with pytest.raises(HttpResponseError) as malformed:
        client.virtual_machine_scale_set_vms.get_instance_view("rg-app", "web", "web_1")
    assert malformed.value.status_code == 400
    assert malformed.value.error.message == "Virtual Machine Scale Set VM instanceId must be a number."
    with pytest.raises(HttpResponseError) as batch:
        client.virtual_machine_scale_sets.begin_delete_instances("rg-app", "web", {"instanceIds": ["9"]})
    assert (
        batch.value.error.message
        == "The provided instanceId 9 is not an active Virtual Machine Scale Set VM instanceId."
    )


def test_delete_instances_goes_deleting_then_gone_and_capacity_drops(client, emu):
    poller = client.virtual_machine_scale_sets.begin_delete_instances(
        "rg-app", "web", {"instanceIds": ["1", "3"]}, force_deletion=True
    )
    states = {vm["instanceId"]: vm["properties"]["provisioningState"] for vm in emu.instances("rg-app", "web")}
    assert states == {"0": "Succeeded", "1": "Deleting", "2": "Succeeded", "3": "Deleting"}
    assert poller.result() is None
    assert [vm["instanceId"] for vm in emu.instances("rg-app", "web")] == ["0", "2"]
    assert client.virtual_machine_scale_sets.get("rg-app", "web").sku.capacity == 2


def test_delete_one_instance(client, emu):
    client.virtual_machine_scale_set_vms.begin_delete("rg-app", "web", "0", force_deletion=True).result()
    assert [vm["instanceId"] for vm in emu.instances("rg-app", "web")] == ["1", "2", "3"]
    assert emu.scale_set("rg-app", "web")["sku"]["capacity"] == 3
    # Deleting what is already gone succeeds (204), as ARM does.
    client.virtual_machine_scale_set_vms.begin_delete("rg-app", "web", "0").result()


def test_scale_out_adds_next_instance_ids_that_provision_after_the_create_delay(start_emulator):
    emu = start_emulator(fleetgen.fleet(fleetgen.scale_set("web", capacity=2, now=NOW)), create_delay=90)
    emu.clock.freeze()
    client = compute_client(emu)
    client.virtual_machine_scale_sets.begin_delete_instances("rg-app", "web", {"instanceIds": ["1"]}).result()
    client.virtual_machine_scale_sets.begin_scale_out("rg-app", "web", {"capacity": 3}).result()
    vms = list(client.virtual_machine_scale_set_vms.list("rg-app", "web", expand="instanceView"))
    assert [(vm.instance_id, vm.provisioning_state) for vm in vms] == [
        ("0", "Succeeded"),
        ("2", "Creating"),
        ("3", "Creating"),
    ]
    assert vms[1].instance_view.vm_health.status.code == "HealthState/initializing"
    assert vms[1].instance_view.statuses[0].code == "ProvisioningState/creating"
    emu.clock.advance(90)
    vms = list(client.virtual_machine_scale_set_vms.list("rg-app", "web", expand="instanceView"))
    assert [vm.provisioning_state for vm in vms] == ["Succeeded"] * 3
    assert [vm.instance_view.vm_health.status.code for vm in vms] == ["HealthState/healthy"] * 3
    assert client.virtual_machine_scale_sets.get("rg-app", "web").sku.capacity == 3


def test_scale_out_must_grow_the_scale_set(client):
    with pytest.raises(HttpResponseError) as error:
        client.virtual_machine_scale_sets.begin_scale_out("rg-app", "web", {"capacity": 4})
    assert error.value.status_code == 400 and error.value.error.code == "InvalidParameter"
    assert error.value.error.target == "capacity"


@pytest.mark.parametrize("action", ["restart", "reimage", "redeploy"])
def test_instance_actions_make_an_unhealthy_instance_healthy(client, emu, action):
    getattr(client.virtual_machine_scale_set_vms, f"begin_{action}")("rg-app", "web", "1").result()
    vm = emu.instances("rg-app", "web")[1]
    assert vm["properties"]["instanceView"]["vmHealth"]["status"]["code"] == "HealthState/healthy"
    assert vm["properties"]["provisioningState"] == "Succeeded"
    assert emu.stats()["byOperation"][f"VirtualMachineScaleSetVMs_{action.title()}"] == 1


@pytest.mark.parametrize("action", ["restart", "reimage", "redeploy"])
def test_scale_set_actions_on_chosen_instances(client, emu, action):
    begin = getattr(client.virtual_machine_scale_sets, f"begin_{action}")
    begin("rg-app", "web", {"instanceIds": ["1"]}).result()
    assert emu.instances("rg-app", "web")[1]["properties"]["instanceView"]["vmHealth"]["status"]["code"] == (
        "HealthState/healthy"
    )


def test_reimage_recovers_a_failed_instance(start_emulator):
    emu = start_emulator(fleetgen.fleet(fleetgen.scale_set("web", capacity=2, failed={1: "VMStartTimedOut"})))
    client = compute_client(emu)
    assert client.virtual_machine_scale_set_vms.get("rg-app", "web", "1").provisioning_state == "Failed"
    client.virtual_machine_scale_set_vms.begin_reimage("rg-app", "web", "1").result()
    assert client.virtual_machine_scale_set_vms.get("rg-app", "web", "1").provisioning_state == "Succeeded"


def test_actions_on_an_instance_marked_for_deletion_are_refused(start_emulator):
    emu = start_emulator(fleetgen.fleet(fleetgen.scale_set("web", capacity=2)), lro_polls=10)
    client = compute_client(emu)
    client.virtual_machine_scale_set_vms.begin_delete("rg-app", "web", "1")  # still running
    with pytest.raises(ResourceExistsError) as error:
        client.virtual_machine_scale_set_vms.begin_restart("rg-app", "web", "1")
    assert error.value.error.code == "OperationNotAllowed"
    assert "marked for deletion" in error.value.error.message
