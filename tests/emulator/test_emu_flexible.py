"""Flexible orchestration: instances are Microsoft.Compute/virtualMachines resources, listed with the
scale set filter; Uniform-only APIs answer 400 as Azure does."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from emulator import fleetgen
from emulator.testing import compute_client


def _filter(emu, name: str = "jobs") -> str:
    return f"'virtualMachineScaleSet/id' eq '{emu.scale_set('rg-app', name)['id']}'"


def test_vm_list_with_scale_set_filter_and_instance_view(client, emu):
    vms = list(client.virtual_machines.list("rg-app", filter=_filter(emu), expand="instanceView"))
    assert len(vms) == 3
    assert all(vm.type == "Microsoft.Compute/virtualMachines" for vm in vms)
    assert all(
        vm.id.startswith(
            f"/subscriptions/{emu.subscription_id}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/jobs_"
        )
        for vm in vms
    )
    assert all(vm.virtual_machine_scale_set.id == emu.scale_set("rg-app", "jobs")["id"] for vm in vms)
    assert [vm.instance_view.vm_health.status.code for vm in vms] == ["HealthState/healthy"] * 3


def test_expand_instance_view_needs_the_filter(client, raw):
    with pytest.raises(HttpResponseError) as error:
        list(client.virtual_machines.list("rg-app", expand="instanceView"))
    assert error.value.status_code == 400 and error.value.error.code == "InvalidParameter"
    plain = list(client.virtual_machines.list("rg-app"))
    assert len(plain) == 3 and all(vm.instance_view is None for vm in plain)
    assert raw("GET", raw.sub("/providers/Microsoft.Compute/virtualMachines")).status_code == 200


def test_uniform_only_apis_answer_400_on_flexible(client):
    with pytest.raises(HttpResponseError) as listing:
        list(client.virtual_machine_scale_set_vms.list("rg-app", "jobs"))
    assert listing.value.status_code == 400
    assert listing.value.error.message == (
        "Operation 'VirtualMachineScaleSets.virtualMachines.GET' is not allowed on Virtual Machine Scale Set 'jobs'."
    )
    with pytest.raises(HttpResponseError) as view:
        client.virtual_machine_scale_sets.get_instance_view("rg-app", "jobs")
    assert "'VirtualMachineScaleSets.instanceView.GET' is not allowed" in view.value.error.message
    with pytest.raises(HttpResponseError) as restart:
        client.virtual_machine_scale_sets.begin_restart("rg-app", "jobs", {"instanceIds": ["x"]})
    assert restart.value.status_code == 400


def test_resiliency_view_get_works_with_a_vm_name(client, emu):
    name = emu.instances("rg-app", "jobs")[0]["name"]
    vm = client.virtual_machine_scale_set_vms.get("rg-app", "jobs", name, expand="resiliencyView")
    assert vm.resilient_vm_deletion_status == "Disabled"
    assert vm.name == name


def test_vm_get_instance_view_and_not_found(client, emu):
    name = emu.instances("rg-app", "jobs")[1]["name"]
    vm = client.virtual_machines.get("rg-app", name, expand="instanceView")
    assert vm.instance_view.statuses[0].code == "ProvisioningState/succeeded"
    assert client.virtual_machines.instance_view("rg-app", name).vm_health.status.code == "HealthState/healthy"
    with pytest.raises(ResourceNotFoundError) as error:
        client.virtual_machines.get("rg-app", "jobs_missing")
    assert error.value.error.message.startswith(
        "The Resource 'Microsoft.Compute/virtualMachines/jobs_missing' under resource group 'rg-app' was not found."
    )


@pytest.mark.parametrize("action", ["restart", "reimage", "redeploy"])
def test_vm_actions_heal_an_unhealthy_flexible_vm(start_emulator, action):
    fleet = fleetgen.fleet(fleetgen.scale_set("jobs", orchestration="Flexible", capacity=2, unhealthy=[0]))
    emu = start_emulator(fleet)
    client = compute_client(emu)
    name = emu.instances("rg-app", "jobs")[0]["name"]
    getattr(client.virtual_machines, f"begin_{action}")("rg-app", name).result()
    health = emu.instances("rg-app", "jobs")[0]["properties"]["instanceView"]["vmHealth"]["status"]["code"]
    assert health == "HealthState/healthy"


def test_vm_delete_scale_set_delete_and_scale_out_by_name(client, emu):
    names = [vm["name"] for vm in emu.instances("rg-app", "jobs")]
    client.virtual_machines.begin_delete("rg-app", names[0], force_deletion=True).result()
    client.virtual_machine_scale_sets.begin_delete_instances("rg-app", "jobs", {"instanceIds": [names[1]]}).result()
    assert [vm["name"] for vm in emu.instances("rg-app", "jobs")] == [names[2]]
    assert emu.scale_set("rg-app", "jobs")["sku"]["capacity"] == 1
    client.virtual_machine_scale_sets.begin_scale_out("rg-app", "jobs", {"capacity": 3}).result()
    after = list(client.virtual_machines.list("rg-app", filter=_filter(emu), expand="instanceView"))
    assert len(after) == 3 and len({vm.name for vm in after}) == 3
    assert all(vm.name.startswith("jobs_") for vm in after)
    assert all(vm.provisioning_state == "Succeeded" for vm in after)


def test_flexible_deletion_status_shows_only_in_the_resiliency_view(start_emulator):
    fleet = fleetgen.fleet(fleetgen.scale_set("jobs", orchestration="Flexible", capacity=2, deletion_failed=[1]))
    emu = start_emulator(fleet)
    client = compute_client(emu)
    name = emu.instances("rg-app", "jobs")[1]["name"]
    assert "resilientVMDeletionStatus" not in emu.instances("rg-app", "jobs")[1]["properties"]
    vm = client.virtual_machine_scale_set_vms.get("rg-app", "jobs", name, expand="resiliencyView")
    assert (vm.resilient_vm_deletion_status, vm.provisioning_state) == ("Failed", "Failed")
