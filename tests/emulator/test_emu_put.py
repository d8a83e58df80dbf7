"""Scale-set PUT (VirtualMachineScaleSets_CreateOrUpdate) through the real SDK's begin_create_or_update (issue 19).

Sources: Microsoft's REST examples (azure-rest-api-specs .../ComputeRP/stable/2025-04-01/examples/
virtualMachineScaleSetExamples/VirtualMachineScaleSet_Create_*.json, copied in tests/reference/compute-examples/:
201 and 200, provisioningState "Creating", no adminPassword in the answer), azure-cli's recorded PUTs
(tests/recorded/cli-vmss-put-*.json: 200 "Updating"-then-Succeeded, Azure-AsyncOperation with the api-version and no
Location, `CreateVMScaleSet3Min;56,CreateVMScaleSet30Min;290,VmssQueuedVMOperations;0`), and the refusals pasted in
public issues (onefuzz PR 511 marked for deletion, PR 614 regional cores quota, terraform-provider-azurerm PR 14437
unknown member, kube-egress-gateway issue 645 missing sku). What no source pins down is marked unverified in
emulator/README.md ("Scale-set PUT")."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.monitor import MonitorManagementClient

from emulator import fleetgen
from emulator.testing import StaticTokenCredential, compute_client

from .conftest import NOW, Raw, small_fleet

EXAMPLES = Path(__file__).resolve().parent.parent / "reference" / "compute-examples" / "virtualMachineScaleSetExamples"


def example_body() -> dict[str, Any]:
    """Microsoft's "Create a scale set with resilient VM deletion" request body, as published."""
    document = json.loads((EXAMPLES / "VirtualMachineScaleSet_Create_WithResilientVMDeletionPolicy.json").read_text())
    return copy.deepcopy(document["parameters"]["parameters"])


class Answers:
    """Every HTTP answer the SDK sees (raw_response_hook): status, headers, JSON body."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, dict[str, str], Any]] = []

    def __call__(self, pipeline_response) -> None:  # type: ignore[no-untyped-def]
        response = pipeline_response.http_response
        content = response.read()  # an LRO's first answer is streamed: read it before looking
        self.seen.append((response.status_code, dict(response.headers), json.loads(content) if content else None))


def model_of(raw: Raw, name: str = "web") -> dict[str, Any]:
    """What a GET shows, as the body of a PUT (az vmss update's way: GET, change, PUT)."""
    return raw("GET", raw.vmss(name)).json()


# --- create and update ----------------------------------------------------------------------------------------


def test_a_new_scale_set_answers_201_creating_then_succeeds_with_its_instances(start_emulator):
    emu = start_emulator(small_fleet())
    client = compute_client(emu)
    answers = Answers()
    poller = client.virtual_machine_scale_sets.begin_create_or_update(
        "rg-app", "fresh", example_body(), raw_response_hook=answers
    )
    status, headers, body = answers.seen[0]
    assert status == 201
    assert body["properties"]["provisioningState"] == "Creating"
    assert "api-version=" in headers["Azure-AsyncOperation"] and "Location" not in headers
    created = poller.result()
    assert created.provisioning_state == "Succeeded"
    assert created.sku.capacity == 3 and created.unique_id and created.time_created is not None
    assert created.resiliency_policy.resilient_vm_deletion_policy.enabled is True
    assert len(list(client.virtual_machine_scale_set_vms.list("rg-app", "fresh"))) == 3
    stored = emu.scale_set("rg-app", "fresh")
    assert stored["id"].endswith("/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachineScaleSets/fresh")
    assert "adminPassword" not in stored["properties"]["virtualMachineProfile"]["osProfile"]  # never echoed


def test_a_put_of_an_existing_scale_set_answers_200_updating_and_changes_capacity(start_emulator):
    emu = start_emulator(small_fleet())
    client, raw = compute_client(emu), Raw(emu)
    model = model_of(raw)
    model["sku"]["capacity"] = 6
    model["tags"] = {"team": "web"}
    answers = Answers()
    poller = client.virtual_machine_scale_sets.begin_create_or_update("rg-app", "web", model, raw_response_hook=answers)
    status, _, body = answers.seen[0]
    assert (status, body["properties"]["provisioningState"]) == (200, "Updating")
    assert body["etag"] != model["etag"]
    assert poller.result().provisioning_state == "Succeeded"
    assert emu.scale_set("rg-app", "web")["tags"] == {"team": "web"}
    assert len(list(client.virtual_machine_scale_set_vms.list("rg-app", "web"))) == 6

    model = model_of(raw)
    model["sku"]["capacity"] = 2
    client.virtual_machine_scale_sets.begin_create_or_update("rg-app", "web", model).result()
    ids = sorted(int(vm.instance_id) for vm in client.virtual_machine_scale_set_vms.list("rg-app", "web"))
    assert ids == [0, 1]  # the default scale-in policy removes the highest instance ids


def test_profile_members_a_put_omits_are_kept_as_azure_kept_them(start_emulator):
    """cli-vmss-put-enable-repairs.json: az's PUT omits storageProfile.imageReference; Azure's answer keeps it."""
    emu = start_emulator(small_fleet())
    raw = Raw(emu)
    model = model_of(raw)
    image = model["properties"]["virtualMachineProfile"]["storageProfile"].pop("imageReference")
    compute_client(emu).virtual_machine_scale_sets.begin_create_or_update("rg-app", "web", model).result()
    kept = emu.scale_set("rg-app", "web")["properties"]["virtualMachineProfile"]["storageProfile"]
    assert kept["imageReference"] == image


def test_a_sku_without_capacity_keeps_the_current_capacity(start_emulator):
    """Unverified: the swagger makes sku.capacity optional; the emulator keeps the current count when it is absent."""
    emu = start_emulator(small_fleet())
    raw = Raw(emu)
    model = model_of(raw)
    del model["sku"]["capacity"]
    compute_client(emu).virtual_machine_scale_sets.begin_create_or_update("rg-app", "web", model).result()
    assert emu.scale_set("rg-app", "web")["sku"]["capacity"] == 4
    assert len(raw("GET", raw.vmss("web", "/virtualMachines")).json()["value"]) == 4


def test_a_put_is_recorded_in_the_activity_log(start_emulator):
    emu = start_emulator(small_fleet())
    compute_client(emu).virtual_machine_scale_sets.begin_create_or_update("rg-app", "fresh", example_body()).result()
    resource_id = emu.scale_set("rg-app", "fresh")["id"]
    monitor = MonitorManagementClient(
        StaticTokenCredential(), emu.subscription_id, base_url=emu.endpoint, connection_verify=emu.ca_bundle
    )
    start = (emu.clock.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    events = list(monitor.activity_logs.list(filter=f"eventTimestamp ge '{start}' and resourceUri eq '{resource_id}'"))
    assert [e.operation_name.value for e in events] == ["Microsoft.Compute/virtualMachineScaleSets/write"]


# --- refusals -------------------------------------------------------------------------------------------------


def test_a_put_past_the_regional_cores_quota_is_refused_and_changes_nothing(start_emulator):
    """409 OperationNotAllowed "... exceeding approved Total Regional Cores quota ..." (microsoft/onefuzz PR 614: a
    scale-set PUT); the emulator's coresQuota, as for PATCH and scale-out."""
    fleet = fleetgen.fleet(
        fleetgen.scale_set("web", capacity=3, now=NOW), faults={"coresQuota": {"limit": 8, "coresPerInstance": 2}}
    )
    emu = start_emulator(fleet)
    client, raw = compute_client(emu), Raw(emu)
    body = {**example_body(), "location": emu.scale_set("rg-app", "web")["location"]}  # the quota is per region
    with pytest.raises(ResourceExistsError) as caught:
        client.virtual_machine_scale_sets.begin_create_or_update("rg-app", "fresh", body)
    assert caught.value.error.code == "OperationNotAllowed"
    assert "Current Limit: 8, Current Usage: 6, Additional Required: 6, (Minimum) New Limit Required: 12." in (
        caught.value.error.message
    )
    with pytest.raises(ResourceNotFoundError):
        client.virtual_machine_scale_sets.get("rg-app", "fresh")
    model = model_of(raw)
    model["sku"]["capacity"] = 5
    with pytest.raises(ResourceExistsError):
        client.virtual_machine_scale_sets.begin_create_or_update("rg-app", "web", model)
    assert emu.scale_set("rg-app", "web")["sku"]["capacity"] == 3
    model["sku"]["capacity"] = 4  # 6 + 2 cores: within the limit
    client.virtual_machine_scale_sets.begin_create_or_update("rg-app", "web", model).result()
    assert emu.scale_set("rg-app", "web")["sku"]["capacity"] == 4


def test_a_put_on_a_scale_set_being_deleted_is_refused_as_marked_for_deletion(start_emulator):
    """microsoft/onefuzz PR 511 (a PUT): 409 OperationNotAllowed "Operation 'Update Virtual Machine Scale Set' is not
    allowed on Virtual Machine Scale Set '<name>' since it is marked for deletion. ..."."""
    emu = start_emulator(small_fleet(), lro_polls=1_000_000, lro_seconds=5)
    client, raw = compute_client(emu), Raw(emu)
    model = model_of(raw)
    deleting = client.virtual_machine_scale_sets.begin_delete("rg-app", "web")
    with pytest.raises(ResourceExistsError) as caught:
        client.virtual_machine_scale_sets.begin_create_or_update("rg-app", "web", model)
    assert caught.value.error.code == "OperationNotAllowed"
    assert caught.value.error.message.startswith(
        "Operation 'Update Virtual Machine Scale Set' is not allowed on Virtual Machine Scale Set 'web' since it "
        "is marked for deletion."
    )
    deleting.result()


def test_an_unknown_member_is_refused_as_compute_refuses_it(start_emulator):
    """hashicorp/terraform-provider-azurerm PR 14437: a scale-set PUT with a member the type lacks answers 400
    InvalidRequestFormat / InvalidJson "Could not find member ..."; the SDK sends a dict body verbatim."""
    emu = start_emulator(small_fleet())
    client = compute_client(emu)
    body = example_body()
    body["properties"]["virtual_machine_profile"] = body["properties"].pop("virtualMachineProfile")
    with pytest.raises(HttpResponseError) as caught:
        client.virtual_machine_scale_sets.begin_create_or_update("rg-app", "fresh", body)
    assert caught.value.status_code == 400
    error = caught.value.error
    assert error.code == "InvalidRequestFormat"
    assert error.details[0].message.startswith(
        "Could not find member 'virtual_machine_profile' on object of type 'VirtualMachineScaleSetProperties'. "
        "Path 'properties.virtual_machine_profile'"
    )
    with pytest.raises(ResourceNotFoundError):
        client.virtual_machine_scale_sets.get("rg-app", "fresh")


def test_a_put_without_sku_or_in_another_region_is_refused(start_emulator):
    """Azure/kube-egress-gateway issue 645: 400 InvalidParameter "Required parameter 'sku' is missing (null)."
    target sku. Another region: ARM's InvalidResourceLocation wording (fortinetsolutions/Azure-Templates issue 8)."""
    emu = start_emulator(small_fleet())
    client, raw = compute_client(emu), Raw(emu)
    model = model_of(raw)
    without_sku = {k: v for k, v in model.items() if k != "sku"}
    with pytest.raises(HttpResponseError) as caught:
        client.virtual_machine_scale_sets.begin_create_or_update("rg-app", "web", without_sku)
    assert (caught.value.status_code, caught.value.error.code) == (400, "InvalidParameter")
    assert caught.value.error.target == "sku"
    with pytest.raises(HttpResponseError) as caught:
        client.virtual_machine_scale_sets.begin_create_or_update("rg-app", "web", {**model, "location": "eastus"})
    assert caught.value.error.code == "InvalidResourceLocation"
    assert emu.scale_set("rg-app", "web")["location"] == model["location"]


def test_if_match_and_if_none_match_answer_412_as_arm_does(start_emulator):
    emu = start_emulator(small_fleet())
    client, raw = compute_client(emu), Raw(emu)
    model = model_of(raw)
    sets = client.virtual_machine_scale_sets
    cases = [
        ("web", '"7"', MatchConditions.IfNotModified),  # a stale etag
        ("web", None, MatchConditions.IfMissing),  # If-None-Match: * on an existing scale set
        ("ghost", None, MatchConditions.IfPresent),  # If-Match: * on a missing one
    ]
    for name, etag, condition in cases:
        with pytest.raises(HttpResponseError) as caught:
            sets.begin_create_or_update("rg-app", name, model, etag=etag, match_condition=condition)
        assert (caught.value.status_code, caught.value.error.code) == (412, "PreconditionFailed"), name
    with pytest.raises(ResourceNotFoundError):
        sets.get("rg-app", "ghost")
    current = sets.get("rg-app", "web").etag
    sets.begin_create_or_update(
        "rg-app", "web", model, etag=current, match_condition=MatchConditions.IfNotModified
    ).result()
    sets.begin_create_or_update("rg-app", "new", example_body(), match_condition=MatchConditions.IfMissing).result()


# --- throttling header, preemption ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        (
            "windowed",  # as recorded: CreateVMScaleSet3Min;56,CreateVMScaleSet30Min;290,VmssQueuedVMOperations;0
            "Microsoft.Compute/CreateVMScaleSet3Min;59,Microsoft.Compute/CreateVMScaleSet30Min;299,"
            "Microsoft.Compute/VmssQueuedVMOperations;0",
        ),
        (
            "table",  # the 2024 recordings' naming applied to this stem (no 2024 PUT recorded: unverified)
            "Microsoft.Compute/CreateVMScaleSetSubscriptionMaximum;299,Microsoft.Compute/CreateVMScaleSetResource;59,"
            "Microsoft.Compute/VmssQueuedVMOperations;0",
        ),
        (
            "repeated",
            "Microsoft.Compute/CreateVMScaleSet;59,Microsoft.Compute/CreateVMScaleSet;299,"
            "Microsoft.Compute/VmssQueuedVMOperations;0",
        ),
    ],
)
def test_a_put_spends_the_create_vmss_bucket_in_the_fleets_header_form(start_emulator, form, expected):
    fleet = small_fleet()
    fleet["rateLimitHeaderForm"] = form
    emu = start_emulator(fleet)
    answers = Answers()
    compute_client(emu).virtual_machine_scale_sets.begin_create_or_update(
        "rg-app", "web", model_of(Raw(emu)), raw_response_hook=answers
    )
    assert answers.seen[0][1]["x-ms-ratelimit-remaining-resource"] == expected


def test_a_put_preempts_a_running_instance_delete_as_a_patch_does(start_emulator):
    """kubernetes/autoscaler PR 9505: a DeleteInstances LRO ends OperationPreempted when another scale-set write
    arrives; the PUT goes through the PATCH's write path, so it preempts the same way."""
    emu = start_emulator(small_fleet(), lro_polls=40)
    client, raw = compute_client(emu), Raw(emu)
    model = model_of(raw)
    poller = client.virtual_machine_scale_sets.begin_delete_instances("rg-app", "web", {"instanceIds": ["2"]})
    client.virtual_machine_scale_sets.begin_create_or_update("rg-app", "web", model).result()
    with pytest.raises(HttpResponseError) as caught:
        poller.result()
    assert caught.value.error.code == "OperationPreempted"
    assert client.virtual_machine_scale_set_vms.get("rg-app", "web", "2").provisioning_state == "Succeeded"
