"""Fleet files written from the `az` CLI (issue 19 item 4): az prints the SDK model with `properties` flattened
into the top level, `null` for what is unset and a `resourceGroup` of its own (Azure/azure-cli issue 4296 shows
`az vmss show --instance-id` printing instanceId, instanceView, latestModelApplied, licenseType, location,
name side by side; MicrosoftDocs/azure-docs virtual-machine-scale-sets-instance-ids.md shows
`az vmss list-instances` printing instanceId, latestModelApplied, location, name). The samples below are
Microsoft's REST examples (tests/reference/compute-examples: VirtualMachineScaleSet_Get.json,
VirtualMachineScaleSetVM_Get_InstanceViewAutoPlacedOnDedicatedHostGroup.json) printed the way az prints
them. The loader converts them; a payload with nothing readable is refused in one line."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from emulator import Emulator
from emulator.testing import compute_client

SUB = "6f1d3c2a-8b4e-4d7f-9a0c-1e2f3a4b5c6d"
VMSS_ID = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachineScaleSets/web"

AZ_VMSS_SHOW: dict[str, Any] = {
    "additionalCapabilities": None,
    "automaticRepairsPolicy": {"enabled": True, "gracePeriod": "PT30M", "repairAction": "Replace"},
    "doNotRunExtensionsOnOverprovisionedVMs": False,
    "etag": '"1"',
    "extendedLocation": None,
    "hostGroup": None,
    "id": VMSS_ID,
    "identity": None,
    "location": "westeurope",
    "name": "web",
    "orchestrationMode": "Uniform",
    "overprovision": True,
    "plan": None,
    "platformFaultDomainCount": 1,
    "provisioningState": "Succeeded",
    "resourceGroup": "rg-app",
    "sku": {"capacity": 2, "name": "Standard_D1_v2", "tier": "Standard"},
    "singlePlacementGroup": True,
    "tags": {},
    "timeCreated": "2026-11-20T09:00:00.0000000+00:00",
    "type": "Microsoft.Compute/virtualMachineScaleSets",
    "uniqueId": "b9e23088-6ffc-46e0-9e02-b0a6eeef47db",
    "upgradePolicy": {"mode": "Manual"},
    "virtualMachineProfile": {
        "extensionProfile": {
            "extensions": [
                {
                    "name": "HealthExtension",
                    "properties": {
                        "publisher": "Microsoft.ManagedServices",
                        "type": "ApplicationHealthLinux",
                        "typeHandlerVersion": "2.0",
                        "settings": {"protocol": "http", "port": 80, "requestPath": "/"},
                    },
                }
            ]
        },
        "storageProfile": {"osDisk": {"caching": "ReadWrite", "createOption": "FromImage"}},
    },
    "zones": None,
}


def _az_instance(instance_id: str, state: str, code: str, health: str) -> dict[str, Any]:
    """One entry of `az vmss list-instances --expand instanceView` (flattened, nulls printed)."""
    return {
        "additionalCapabilities": None,
        "availabilitySet": None,
        "diagnosticsProfile": None,
        "etag": '"1"',
        "hardwareProfile": None,
        "id": f"{VMSS_ID}/virtualMachines/{instance_id}",
        "instanceId": instance_id,
        "instanceView": {
            "platformFaultDomain": 0,
            "platformUpdateDomain": 0,
            "statuses": [
                {"code": code, "displayStatus": f"Provisioning {state.lower()}", "level": "Info", "time": None},
                {"code": "PowerState/running", "displayStatus": "VM running", "level": "Info"},
            ],
            "vmHealth": {"status": {"code": f"HealthState/{health}", "level": "Info"}},
        },
        "latestModelApplied": True,
        "licenseType": None,
        "location": "westeurope",
        "name": f"web_{instance_id}",
        "plan": None,
        "protectionPolicy": None,
        "provisioningState": state,
        "resourceGroup": "rg-app",
        "resources": None,
        "sku": {"capacity": None, "name": "Standard_D1_v2", "tier": "Standard"},
        "tags": None,
        "type": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines",
        "vmId": f"0000000{instance_id}-1111-2222-3333-444444444444",
        "zones": None,
    }


def _fleet(resource: dict[str, Any], instances: list[dict[str, Any]]) -> dict[str, Any]:
    return {"subscriptionId": SUB, "scaleSets": [{"resource": resource, "virtualMachines": instances}]}


AZ_INSTANCES = [
    _az_instance("0", "Succeeded", "ProvisioningState/succeeded", "healthy"),
    _az_instance("1", "Failed", "ProvisioningState/failed/VMExtensionProvisioningError", "unhealthy"),
]


def test_az_output_is_converted_on_load_and_the_sdk_reads_it(start_emulator):
    emu = start_emulator(_fleet(copy.deepcopy(AZ_VMSS_SHOW), copy.deepcopy(AZ_INSTANCES)))
    client = compute_client(emu)
    vmss = client.virtual_machine_scale_sets.get("rg-app", "web")
    assert vmss.automatic_repairs_policy.grace_period == "PT30M"
    assert vmss.orchestration_mode == "Uniform"
    served = emu.scale_set("rg-app", "web")
    assert "resourceGroup" not in served and "orchestrationMode" not in served
    assert served["properties"]["uniqueId"] == AZ_VMSS_SHOW["uniqueId"]
    listed = {
        vm.instance_id: vm for vm in client.virtual_machine_scale_set_vms.list("rg-app", "web", expand="instanceView")
    }
    assert listed["1"].provisioning_state == "Failed"
    assert listed["1"].instance_view.statuses[0].code == "ProvisioningState/failed/VMExtensionProvisioningError"


def test_the_project_sees_the_failed_instance_of_an_az_written_fleet(start_emulator, gateway_for):
    """Before the conversion this fleet loaded and the parser read nothing: instance 1 was invisible."""
    emu = start_emulator(_fleet(copy.deepcopy(AZ_VMSS_SHOW), copy.deepcopy(AZ_INSTANCES)))
    snapshot = gateway_for(emu).snapshot_by_name("rg-app", "web")
    assert snapshot.repairs.enabled is True
    failed = [i for i in snapshot.instances if i.failed]
    assert [(i.instance_id, i.provisioning_error_code) for i in failed] == [("1", "VMExtensionProvisioningError")]


def test_a_flexible_vm_from_az_vm_list_is_converted(start_emulator):
    resource = copy.deepcopy(AZ_VMSS_SHOW)
    resource["orchestrationMode"] = "Flexible"
    vm = {
        "id": f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/web_1a2b3c4d",
        "name": "web_1a2b3c4d",
        "location": "westeurope",
        "resourceGroup": "rg-app",
        "powerState": "VM running",  # az vm list -d
        "provisioningState": "Succeeded",
        "virtualMachineScaleSet": {"id": VMSS_ID},
        "type": "Microsoft.Compute/virtualMachines",
    }
    emu = start_emulator(_fleet(resource, [vm]))
    [served] = emu.instances("rg-app", "web")
    assert (served["properties"]["provisioningState"], served["properties"]["virtualMachineScaleSet"]) == (
        "Succeeded",
        {"id": VMSS_ID},
    )
    assert "powerState" not in served and "resourceGroup" not in served


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda fleet: fleet["scaleSets"][0].update(resource={"id": VMSS_ID, "location": "westeurope"}),
            f"fleet: scale set {VMSS_ID} has no readable fields",
        ),
        (
            lambda fleet: fleet["scaleSets"][0]["virtualMachines"].append({"instanceId": "7", "name": "web_7"}),
            f"fleet: instance 7 of {VMSS_ID} has no readable fields",
        ),
        (
            lambda fleet: fleet["scaleSets"][0]["resource"].update(properties={"upgradePolicy": {"mode": "Manual"}}),
            "mixes ARM's 'properties' with az-style top-level members",
        ),
    ],
)
def test_an_unreadable_payload_is_refused_in_one_line(mutate, message):
    fleet = _fleet(copy.deepcopy(AZ_VMSS_SHOW), copy.deepcopy(AZ_INSTANCES))
    mutate(fleet)
    with pytest.raises(ValueError) as caught:
        Emulator.start(fleet)
    assert str(caught.value).startswith("fleet: ") and message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_command_line_names_the_problem(tmp_path):
    """`python -m emulator --fleet` on an unreadable file exits 2 with the one line on stderr."""
    import json
    import subprocess
    import sys

    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(_fleet({"id": VMSS_ID, "location": "westeurope"}, [])))
    done = subprocess.run(
        [sys.executable, "-m", "emulator", "--fleet", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.strip().startswith(f"error: fleet: scale set {VMSS_ID} has no readable fields")
