"""Conformance against Microsoft's own files in tests/reference/:

1. every Compute example response, served by the emulator's replay mode behind the normal pipeline, is
   deserialized by the real SDK into the right model (key fields spot-checked);
2. the emulator's own answers validate against the OpenAPI definitions (compute-openapi/).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from emulator import Emulator, Exchange, fleetgen
from emulator.testing import compute_client

from .conftest import NOW, Raw

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
EXAMPLES = REFERENCE / "compute-examples" / "virtualMachineScaleSetExamples"
OPENAPI = REFERENCE / "compute-openapi"
SWAGGER = json.loads((OPENAPI / "virtualMachineScaleSet.json").read_text())

PATH_PARAMETERS = {
    "subscriptionId": "subscriptionId",
    "resourceGroupName": "resourceGroupName",
    "vmScaleSetName": "vmScaleSetName",
    "virtualMachineScaleSetName": "vmScaleSetName",
    "instanceId": "instanceId",
}


def _operations_by_example() -> dict[str, tuple[str, str, str]]:
    """example file name -> (HTTP method, path template, operationId), from the swagger's x-ms-examples."""
    found = {}
    for template, operations in SWAGGER["paths"].items():
        for method, operation in operations.items():
            for example in (operation.get("x-ms-examples") or {}).values():
                found[Path(example["$ref"]).name] = (method.upper(), template, operation["operationId"])
    return found


OPERATIONS = _operations_by_example()
EXAMPLE_FILES = sorted(p.name for p in EXAMPLES.glob("*.json"))


def _call(client, operation_id: str, params: dict[str, Any]) -> Any:
    """Invoke the SDK the way a caller would for this operationId (LROs: the initial answer only)."""
    rg = params.get("resourceGroupName")
    name = params.get("vmScaleSetName") or params.get("virtualMachineScaleSetName")
    instance = params.get("instanceId")
    sets, vms = client.virtual_machine_scale_sets, client.virtual_machine_scale_set_vms
    first_page = lambda pager: list(next(iter(pager.by_page())))  # noqa: E731 - examples carry fake nextLinks
    calls = {
        "VirtualMachineScaleSets_Get": lambda: sets.get(rg, name),
        "VirtualMachineScaleSets_GetInstanceView": lambda: sets.get_instance_view(rg, name),
        "VirtualMachineScaleSets_List": lambda: first_page(sets.list(rg)),
        "VirtualMachineScaleSets_ListAll": lambda: first_page(sets.list_all()),
        "VirtualMachineScaleSets_CreateOrUpdate": lambda: sets.begin_create_or_update(
            rg, name, params["parameters"], polling=False
        ).result(),
        "VirtualMachineScaleSets_Update": lambda: sets.begin_update(
            rg, name, params["parameters"], polling=False
        ).result(),
        "VirtualMachineScaleSets_Delete": lambda: sets.begin_delete(
            rg, name, force_deletion=params.get("forceDeletion"), polling=False
        ).result(),
        "VirtualMachineScaleSets_DeleteInstances": lambda: sets.begin_delete_instances(
            rg, name, params["vmInstanceIDs"], force_deletion=params.get("forceDeletion"), polling=False
        ).result(),
        "VirtualMachineScaleSets_Restart": lambda: sets.begin_restart(
            rg, name, params.get("vmInstanceIDs"), polling=False
        ).result(),
        "VirtualMachineScaleSets_Reimage": lambda: sets.begin_reimage(
            rg, name, params.get("vmScaleSetReimageInput"), polling=False
        ).result(),
        "VirtualMachineScaleSets_SetOrchestrationServiceState": lambda: sets.begin_set_orchestration_service_state(
            rg, name, params["parameters"], polling=False
        ).result(),
        "VirtualMachineScaleSetVMs_Get": lambda: vms.get(rg, name, instance, expand=params.get("expand")),
        "VirtualMachineScaleSetVMs_GetInstanceView": lambda: vms.get_instance_view(rg, name, instance),
        "VirtualMachineScaleSetVMs_List": lambda: first_page(vms.list(rg, name)),
        "VirtualMachineScaleSetVMs_Delete": lambda: vms.begin_delete(
            rg, name, instance, force_deletion=params.get("forceDeletion") == "true", polling=False
        ).result(),
        "VirtualMachineScaleSetVMs_Restart": lambda: vms.begin_restart(rg, name, instance, polling=False).result(),
        "VirtualMachineScaleSetVMs_Redeploy": lambda: vms.begin_redeploy(rg, name, instance, polling=False).result(),
        "VirtualMachineScaleSetVMs_Reimage": lambda: vms.begin_reimage(
            rg, name, instance, params.get("vmScaleSetVMReimageInput"), polling=False
        ).result(),
    }
    return calls[operation_id]()


# What the project relies on, per example: model attributes read from the SDK's deserialized result.
SPOT_CHECKS: dict[str, Any] = {
    "VirtualMachineScaleSet_Get.json": lambda r: (
        r.sku.capacity == 4 and r.upgrade_policy.mode == "Automatic" and r.time_created.year == 2021
    ),
    "VirtualMachineScaleSet_GetInstanceView_MaximumSet_Gen.json": lambda r: (
        [(s.service_name, s.service_state) for s in r.orchestration_services]
        == [("AutomaticRepairs", "NotRunning"), ("AutomaticZoneRebalancing", "Running")]
        and r.virtual_machine.statuses_summary[0].count == 21
        and r.statuses[0].time.year == 2021
    ),
    "VirtualMachineScaleSet_Create_WithAutomaticRepairs.json": lambda r: (
        r.automatic_repairs_policy.enabled is True and r.automatic_repairs_policy.grace_period == "PT10M"
    ),
    "VirtualMachineScaleSet_Create_WithResilientVMCreationPolicy.json": lambda r: (
        r.resiliency_policy.resilient_vm_creation_policy.enabled is True
    ),
    "VirtualMachineScaleSet_Create_WithResilientVMDeletionPolicy.json": lambda r: (
        r.resiliency_policy.resilient_vm_deletion_policy.enabled is True
    ),
    "VirtualMachineScaleSet_Update_MaximumSet_Gen.json": lambda r: (
        r.automatic_repairs_policy.grace_period == "PT30M" and r.orchestration_mode == "Uniform"
    ),
    "VirtualMachineScaleSetVM_List_WithResiliencyView.json": lambda r: (
        [vm.resilient_vm_deletion_status for vm in r] == ["Enabled", "Enabled"]
        and r[1].tags["FailForResilientVMDeletionAtDiskDetach"] == "true"
    ),
    "VirtualMachineScaleSetVM_List_MaximumSet_Gen.json": lambda r: (
        r[0].instance_view.vm_health.status.code == "aaaaaaaaaaaaaaaaaaaaaaa"
        and r[0].instance_view.vm_health.status.level == "Info"
    ),
    "VirtualMachineScaleSetVM_Get_WithResilientVMDeletionStatus.json": lambda r: (
        r.resilient_vm_deletion_status == "Enabled" and r.instance_id == "1"
    ),
    "VirtualMachineScaleSetVM_Get_InstanceViewAutoPlacedOnDedicatedHostGroup.json": lambda r: (
        r.vm_agent.statuses[0].code == "ProvisioningState/Unavailable"
        and r.statuses[1].code == "PowerState/running"
        and r.assigned_host.endswith("/hosts/myHost")
    ),
    "VirtualMachineScaleSet_ListAll_MinimumSet_Gen.json": lambda r: r[0].location == "westus",
    "VirtualMachineScaleSet_List_MinimumSet_Gen.json": lambda r: len(r) == 2 and r[0].location == "eastus",
}


@pytest.mark.parametrize("example", EXAMPLE_FILES)
def test_sdk_deserializes_microsofts_examples(example):
    document = json.loads((EXAMPLES / example).read_text())
    method, template, operation_id = OPERATIONS[example]
    params = document["parameters"]
    path = template
    for name, value in params.items():
        if name in PATH_PARAMETERS:
            path = path.replace("{" + PATH_PARAMETERS[name] + "}", str(value))
    path = path.replace("{virtualMachineScaleSetName}", str(params.get("virtualMachineScaleSetName", "")))
    status = "200" if "200" in document["responses"] else min(document["responses"])
    body = (document["responses"][status] or {}).get("body")
    exchange = Exchange(method, path, int(status), body, operation_id=operation_id)
    with Emulator.replay([exchange], subscription_id=params["subscriptionId"]) as emu:
        client = compute_client(emu, subscription_id=params["subscriptionId"])
        result = _call(client, operation_id, params)
        assert emu.stats()["byOperation"] == {operation_id: 1}
    if body is None or (body == {} and result is None):
        assert result is None
        return
    as_rest = [item.as_dict() for item in result] if isinstance(result, list) else result.as_dict()
    expected = body["value"] if isinstance(result, list) else body
    assert as_rest == expected  # nothing lost or renamed on the way through the SDK
    if example in SPOT_CHECKS:
        assert SPOT_CHECKS[example](result)


# --- 2. the emulator's answers against the OpenAPI definitions ------------------------------------------

BASE = "https://specs.local/specification/compute/resource-manager/Microsoft.Compute/ComputeRP/stable/2025-04-01/"


def _stub(refs: set[str]) -> dict:
    # Files that were not copied resolve to permissive stubs ({} accepts anything): virtualMachine.json
    # (VirtualMachineHealthStatus, VirtualMachineIdentity, ...) and common-types (Resource, SubResource,
    # CloudError). Everything defined in the two copied files is checked for real.
    return {"definitions": {name: {} for name in sorted(refs)}}


# `x-ms-enum` with modelAsString=true is an open set in Azure's contract (vmSize, for instance, lists only
# old sizes): such enums are dropped, except the ones the emulator itself produces and the project reads.
STRICT_ENUMS = {"resilientVMDeletionStatus", "OrchestrationServiceState", "OrchestrationServiceNames", "RepairAction"}


def _open_enums(node: Any) -> Any:
    if isinstance(node, dict):
        x_enum = node.get("x-ms-enum") or {}
        node = {key: _open_enums(value) for key, value in node.items()}
        if x_enum.get("modelAsString") and x_enum.get("name") not in STRICT_ENUMS:
            node.pop("enum", None)
        return node
    if isinstance(node, list):
        return [_open_enums(item) for item in node]
    return node


def _registry() -> Registry:
    texts = {name: (OPENAPI / name).read_text() for name in ("virtualMachineScaleSet.json", "computeRPCommon.json")}
    vm_refs: set[str] = set()
    common_refs: set[str] = set()
    for text in texts.values():
        for chunk in text.split('"$ref": "')[1:]:
            ref = chunk.split('"', 1)[0]
            if ref.startswith("./virtualMachine.json#/definitions/"):
                vm_refs.add(ref.rsplit("/", 1)[1])
            elif "common-types/v1/common.json#/definitions/" in ref:
                common_refs.add(ref.rsplit("/", 1)[1])
    documents = {BASE + name: _open_enums(json.loads(text)) for name, text in texts.items()}
    documents[BASE + "virtualMachine.json"] = _stub(vm_refs)
    documents[urljoin(BASE, "../../../common-types/v1/common.json")] = _stub(common_refs)
    return Registry().with_resources(
        (uri, Resource.from_contents(doc, default_specification=DRAFT4)) for uri, doc in documents.items()
    )


REGISTRY = _registry()


def _validate(document: Any, definition: str, file: str = "virtualMachineScaleSet.json") -> None:
    schema = {"$ref": f"{BASE}{file}#/definitions/{definition}"}
    jsonschema.Draft4Validator(schema, registry=REGISTRY).validate(document)


def test_the_validator_really_checks():
    with pytest.raises(jsonschema.ValidationError):
        _validate({"serviceName": "AutomaticRepairs", "serviceState": "Paused"}, "OrchestrationServiceSummary")
    with pytest.raises(jsonschema.ValidationError):
        _validate({"properties": {"resilientVMDeletionStatus": "Maybe"}}, "VirtualMachineScaleSetVM")
    with pytest.raises(jsonschema.ValidationError):  # a closed enum (modelAsString=false)
        _validate({"code": "x", "level": "Fatal"}, "InstanceViewStatus", "computeRPCommon.json")
    with pytest.raises(jsonschema.ValidationError):
        _validate({"sku": {"capacity": "four"}}, "VirtualMachineScaleSet")


def test_emulator_answers_match_the_openapi_definitions(start_emulator):
    fleet = fleetgen.fleet(
        fleetgen.scale_set(
            "web",
            capacity=6,
            automatic_repairs=True,
            resilient_deletion=True,
            unhealthy=[1],
            failed={2: "OSProvisioningTimedOut"},
            creating=[3],
            deletion_failed=[4],
            unknown=[5],
            now=NOW,
        ),
        fleetgen.scale_set("jobs", orchestration="Flexible", capacity=2, health="probe", now=NOW),
    )
    emu = start_emulator(fleet, page_size=4)
    raw = Raw(emu)
    get = lambda path, **params: raw("GET", path, params=params).json()  # noqa: E731

    _validate(get(raw.vmss()), "VirtualMachineScaleSet")
    _validate(
        get(raw.sub("/providers/Microsoft.Compute/virtualMachineScaleSets")), "VirtualMachineScaleSetListWithLinkResult"
    )
    _validate(
        get(raw.sub("/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachineScaleSets")),
        "VirtualMachineScaleSetListResult",
    )
    _validate(get(raw.vmss(suffix="/instanceView")), "VirtualMachineScaleSetInstanceView")
    page = get(raw.vmss(suffix="/virtualMachines"), **{"$expand": "instanceView"})
    assert "nextLink" in page
    _validate(page, "VirtualMachineScaleSetVMListResult")
    _validate(raw("GET", page["nextLink"], api_version=None).json(), "VirtualMachineScaleSetVMListResult")
    for expand in ("instanceView", "resiliencyView"):
        _validate(get(raw.vmss(suffix="/virtualMachines/4"), **{"$expand": expand}), "VirtualMachineScaleSetVM")
    _validate(get(raw.vmss(suffix="/virtualMachines/1/instanceView")), "VirtualMachineScaleSetVMInstanceView")
    patched = raw("PATCH", raw.vmss(), json={"properties": {"automaticRepairsPolicy": {"gracePeriod": "PT45M"}}})
    _validate(patched.json(), "VirtualMachineScaleSet")

    # Flexible VMs are Microsoft.Compute/virtualMachines (virtualMachine.json was not copied): check the
    # parts the copied files define.
    jobs_id = emu.scale_set("rg-app", "jobs")["id"]
    vms = get(
        raw.sub("/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines"),
        **{"$filter": f"'virtualMachineScaleSet/id' eq '{jobs_id}'", "$expand": "instanceView"},
    )["value"]
    assert len(vms) == 2
    for vm in vms:
        props = vm["properties"]
        _validate(props["hardwareProfile"], "HardwareProfile", "computeRPCommon.json")
        _validate(props["storageProfile"], "StorageProfile", "computeRPCommon.json")
        _validate(props["osProfile"], "OSProfile", "computeRPCommon.json")
        _validate(props["networkProfile"], "NetworkProfile", "computeRPCommon.json")
        for status in props["instanceView"]["statuses"]:
            _validate(status, "InstanceViewStatus", "computeRPCommon.json")
    flexible = get(raw.vmss("jobs", "/virtualMachines/" + vms[0]["name"]), **{"$expand": "resiliencyView"})
    _validate(flexible, "VirtualMachineScaleSetVM")
