"""The emulator refuses and reports what Azure refuses and reports, in Azure's recorded bytes (issue 19 item 3).
Each test names its source; behaviour no source pins down is marked unverified in emulator/README.md."""

from __future__ import annotations

import json

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from emulator import Emulator, fleetgen
from emulator.testing import compute_client

from .conftest import NOW, small_fleet


class Headers:
    """Collects x-ms-ratelimit-remaining-resource of every answer (raw_response_hook)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, pipeline_response) -> None:  # type: ignore[no-untyped-def]
        self.seen.append(pipeline_response.http_response.headers.get("x-ms-ratelimit-remaining-resource", ""))


def _error(caught: pytest.ExceptionInfo[HttpResponseError]) -> dict:  # type: ignore[type-arg]
    response = caught.value.response
    assert response is not None
    return json.loads(response.text())["error"]


# --- bodies read as Compute reads them -------------------------------------------------------------------


def test_a_snake_case_member_is_refused_as_azure_refuses_it(start_emulator):
    """400 InvalidRequestFormat "Cannot parse the request." + InvalidJson "Could not find member ..." (captured in
    hashicorp/terraform-provider-azurerm PR 14437). azure-mgmt-compute sends a dict body verbatim, so a
    snake_case key reaches Compute as an unknown member; nothing changes."""
    emu = start_emulator(small_fleet())
    client = compute_client(emu)
    before = emu.scale_set("rg-app", "web")
    with pytest.raises(HttpResponseError) as caught:
        client.virtual_machine_scale_sets.begin_update(
            "rg-app", "web", {"properties": {"automatic_repairs_policy": {"enabled": False}}}
        )
    assert caught.value.status_code == 400
    error = _error(caught)
    assert (error["code"], error["message"]) == ("InvalidRequestFormat", "Cannot parse the request.")
    [detail] = error["details"]
    assert detail["code"] == "InvalidJson"
    assert detail["message"].startswith(
        "Could not find member 'automatic_repairs_policy' on object of type 'VirtualMachineScaleSetUpdateProperties'. "
        "Path 'properties.automatic_repairs_policy', line 1, position "
    )
    assert emu.scale_set("rg-app", "web") == before


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        ("delete", {"instance_ids": ["1"]}),
        ("set_state", {"serviceName": "AutomaticRepairs", "action": "Suspend", "reason": "x"}),
        ("scale_out", {"capacity": 5, "location": "westeurope"}),
    ],
)
def test_unknown_members_are_refused_on_every_post_body(start_emulator, operation, body):
    emu = start_emulator(small_fleet())
    client = compute_client(emu).virtual_machine_scale_sets
    calls = {
        "delete": lambda: client.begin_delete_instances("rg-app", "web", body),
        "set_state": lambda: client.begin_set_orchestration_service_state("rg-app", "web", body),
        "scale_out": lambda: client.begin_scale_out("rg-app", "web", body),
    }
    with pytest.raises(HttpResponseError) as caught:
        calls[operation]()
    error = _error(caught)
    assert error["code"] == "InvalidRequestFormat"
    assert error["details"][0]["code"] == "InvalidJson"
    unknown = next(key for key in body if key not in {"serviceName", "action", "capacity"})
    assert f"Could not find member '{unknown}'" in error["details"][0]["message"]


def test_member_names_match_case_insensitively_as_json_net_does(start_emulator):
    """Json.NET falls back to a case-insensitive member match (the captured path 'Properties.UpdateGroups[0]...'
    in terraform-provider-azurerm PR 14437 shows Compute reading 'Properties')."""
    emu = start_emulator(small_fleet())
    client = compute_client(emu)
    client.virtual_machine_scale_sets.begin_update("rg-app", "web", {"Tags": {"owner": "me"}}).result()
    assert emu.scale_set("rg-app", "web")["tags"] == {"owner": "me"}


def test_the_string_false_is_read_as_false_and_other_strings_are_refused(start_emulator):
    """Json.NET reads a JSON string into a boolean with bool.TryParse (JamesNK/Newtonsoft.Json
    JsonReader.ReadBooleanString): "false" is false, "yes" is "Could not convert string to boolean"."""
    emu = start_emulator(fleetgen.fleet(fleetgen.scale_set("web", capacity=2, automatic_repairs=True, now=NOW)))
    client = compute_client(emu)
    client.virtual_machine_scale_sets.begin_update(
        "rg-app", "web", {"properties": {"automaticRepairsPolicy": {"enabled": "false"}}}
    ).result()
    assert emu.scale_set("rg-app", "web")["properties"]["automaticRepairsPolicy"]["enabled"] is False
    services = client.virtual_machine_scale_sets.get_instance_view("rg-app", "web").orchestration_services
    assert [s.service_state for s in services] == ["NotRunning"]
    with pytest.raises(HttpResponseError) as caught:
        client.virtual_machine_scale_sets.begin_update(
            "rg-app", "web", {"properties": {"automaticRepairsPolicy": {"enabled": "yes"}}}
        )
    detail = _error(caught)["details"][0]
    assert detail["message"].startswith(
        "Could not convert string to boolean: yes. Path 'properties.automaticRepairsPolicy.enabled'"
    )


# --- instance view -------------------------------------------------------------------------------------------


def test_a_captured_statuses_summary_is_served_as_recorded_until_the_instances_change(start_emulator):
    """A fleet captured from Azure carries Azure's own count, which may not match the captured list (the list is
    paged and taken moments apart): it is served as recorded, and recounted once the platform changes an instance."""
    fleet = fleetgen.fleet(fleetgen.scale_set("web", capacity=2, now=NOW))
    captured = [{"code": "ProvisioningState/succeeded", "count": 5}, {"code": "ProvisioningState/failed", "count": 1}]
    fleet["scaleSets"][0]["instanceView"]["virtualMachine"] = {"statusesSummary": captured}
    emu = start_emulator(fleet)
    client = compute_client(emu)
    view = client.virtual_machine_scale_sets.get_instance_view("rg-app", "web")
    assert [(s.code, s.count) for s in view.virtual_machine.statuses_summary] == [
        ("ProvisioningState/succeeded", 5),
        ("ProvisioningState/failed", 1),
    ]
    client.virtual_machine_scale_sets.begin_delete_instances("rg-app", "web", {"instanceIds": ["1"]}).result()
    view = client.virtual_machine_scale_sets.get_instance_view("rg-app", "web")
    assert [(s.code, s.count) for s in view.virtual_machine.statuses_summary] == [("ProvisioningState/succeeded", 1)]


# --- deletes preempted, scale set marked for deletion ------------------------------------------------------


@pytest.mark.parametrize("delete", ["instances", "vm"])
def test_a_later_scale_set_write_preempts_a_running_delete(start_emulator, delete):
    """kubernetes/autoscaler PR 9505: a DeleteInstances LRO ends OperationPreempted when another write hits the
    scale set (the autoscaler retries it). The instance that was not gone yet stays (unverified)."""
    emu = start_emulator(small_fleet(), lro_polls=40)
    client = compute_client(emu)
    if delete == "instances":
        poller = client.virtual_machine_scale_sets.begin_delete_instances("rg-app", "web", {"instanceIds": ["2"]})
    else:
        poller = client.virtual_machine_scale_set_vms.begin_delete("rg-app", "web", "2")
    client.virtual_machine_scale_sets.begin_update("rg-app", "web", {"tags": {"by": "autoscale"}}).result()
    with pytest.raises(HttpResponseError) as caught:
        poller.result()
    assert caught.value.error.code == "OperationPreempted"
    assert poller.status() == "Canceled"
    vm = client.virtual_machine_scale_set_vms.get("rg-app", "web", "2")
    assert vm.provisioning_state == "Succeeded"


def test_a_running_repair_still_answers_a_scale_set_write_with_409(start_emulator):
    emu = start_emulator(small_fleet(), lro_polls=40)
    client = compute_client(emu)
    client.virtual_machine_scale_set_vms.begin_restart("rg-app", "web", "1")
    with pytest.raises(ResourceExistsError) as caught:
        client.virtual_machine_scale_sets.begin_update("rg-app", "web", {"tags": {"a": "b"}})
    assert caught.value.error.code == "Conflict"


def test_writes_on_a_scale_set_being_deleted_are_refused_as_marked_for_deletion(start_emulator):
    """microsoft/onefuzz PR 511: 409 OperationNotAllowed "Operation 'Update Virtual Machine Scale Set' is not
    allowed on Virtual Machine Scale Set '<name>' since it is marked for deletion. ..."."""
    # The delete lasts 5 s however often it is polled: the SDK's background poller cannot end it before the PATCH.
    emu = start_emulator(small_fleet(), lro_polls=1_000_000, lro_seconds=5)
    client = compute_client(emu)
    deleting = client.virtual_machine_scale_sets.begin_delete("rg-app", "web")
    assert client.virtual_machine_scale_sets.get("rg-app", "web").provisioning_state == "Deleting"
    with pytest.raises(ResourceExistsError) as caught:
        client.virtual_machine_scale_sets.begin_update("rg-app", "web", {"tags": {"a": "b"}})
    assert caught.value.error.code == "OperationNotAllowed"
    assert caught.value.error.message.startswith(
        "Operation 'Update Virtual Machine Scale Set' is not allowed on Virtual Machine Scale Set 'web' since it "
        "is marked for deletion."
    )
    deleting.result()
    with pytest.raises(ResourceNotFoundError):
        client.virtual_machine_scale_sets.get("rg-app", "web")


# --- quota ---------------------------------------------------------------------------------------------------


def test_a_scale_out_past_the_regional_cores_quota_is_refused_in_azures_words(start_emulator):
    """409 OperationNotAllowed "Operation could not be completed as it results in exceeding approved Total Regional
    Cores quota. ... Current Limit: 50, Current Usage: 50, Additional Required: 2 ..." (microsoft/onefuzz PR 614,
    nforgeio/neonKUBE issue 1671): no QuotaExceeded code on this path."""
    fleet = fleetgen.fleet(
        fleetgen.scale_set("web", capacity=3, now=NOW), faults={"coresQuota": {"limit": 8, "coresPerInstance": 2}}
    )
    emu = start_emulator(fleet)
    client = compute_client(emu)
    with pytest.raises(ResourceExistsError) as caught:
        client.virtual_machine_scale_sets.begin_scale_out("rg-app", "web", {"capacity": 5})
    assert caught.value.error.code == "OperationNotAllowed"
    message = caught.value.error.message
    assert "exceeding approved Total Regional Cores quota" in message
    assert "Current Limit: 8, Current Usage: 6, Additional Required: 4, (Minimum) New Limit Required: 10." in message
    client.virtual_machine_scale_sets.begin_scale_out("rg-app", "web", {"capacity": 4}).result()
    assert emu.scale_set("rg-app", "web")["sku"]["capacity"] == 4


# --- Compute's 429 and its headers ----------------------------------------------------------------------------


def test_computes_429_carries_the_window_target_and_innererror(start_emulator):
    """microsoft/AzureTRE issue 2777: details[TooManyRequests, target: the window], innererror
    internalErrorCode TooManyRequestsReceived."""
    emu = start_emulator(
        small_fleet(),
        rate_limit_header_form="windowed",
    )
    emu.set_faults({"computeBuckets": {"GetVMScaleSetResource": {"remaining": 0}}})
    client = compute_client(emu)
    with pytest.raises(HttpResponseError) as caught:
        client.virtual_machine_scale_sets.get("rg-app", "web", retry_total=0)
    assert caught.value.status_code == 429
    error = _error(caught)
    assert error["code"] == "OperationNotAllowed"
    assert error["innererror"] == {"internalErrorCode": "TooManyRequestsReceived"}
    [detail] = error["details"]
    assert (detail["code"], detail["target"]) == ("TooManyRequests", "GetVMScaleSet3Min")
    assert json.loads(detail["message"])["operationGroup"] == "GetVMScaleSet3Min"


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ("table", "Microsoft.Compute/GetVMScaleSetSubscriptionMaximum;2399,Microsoft.Compute/GetVMScaleSetResource;35"),
        ("windowed", "Microsoft.Compute/GetVMScaleSet3Min;35,Microsoft.Compute/GetVMScaleSet30Min;2399"),
        ("repeated", "Microsoft.Compute/GetVMScaleSet;35,Microsoft.Compute/GetVMScaleSet;2399"),
    ],
)
def test_the_header_form_is_chosen_per_fleet(start_emulator, form, expected):
    """The table's rows as Microsoft's 2024 azure-cli recordings name them (HighCostGetVMScaleSetSubscriptionMaximum;
    1074,HighCostGetVMScaleSetResource;29), the older windowed names (giantswarm/azure-operator PR 741:
    HighCostGetVMScaleSet3Min;107,HighCostGetVMScaleSet30Min;827), or the 2024 article's repeated name
    (DeleteVMScaleSet;107, DeleteVMScaleSet;587); selected by the fleet's rateLimitHeaderForm."""
    fleet = small_fleet()
    fleet["rateLimitHeaderForm"] = form
    emu = start_emulator(fleet)
    headers = Headers()
    compute_client(emu).virtual_machine_scale_sets.get("rg-app", "web", raw_response_hook=headers)
    assert headers.seen[0] == expected


def test_the_start_option_overrides_the_fleet_and_junk_is_refused(start_emulator):
    fleet = small_fleet()
    fleet["rateLimitHeaderForm"] = "windowed"
    emu = start_emulator(fleet, rate_limit_header_form="repeated")
    headers = Headers()
    compute_client(emu).virtual_machine_scale_sets.list_all(raw_response_hook=headers).next()
    assert headers.seen[0] == "Microsoft.Compute/HighCostGetVMScaleSet;1079"
    fleet["rateLimitHeaderForm"] = "Windowed"
    with pytest.raises(ValueError, match="rateLimitHeaderForm"):
        Emulator.start(fleet)


def test_a_fleet_files_string_boolean_is_served_as_azure_stores_it(start_emulator, gateway_for):
    """Azure stores what Json.NET read ("false" → false) and answers with a JSON boolean, so a fleet file's
    `"enabled": "false"` is served as false and the project reads repairs as disabled."""
    fleet = fleetgen.fleet(fleetgen.scale_set("web", capacity=2, automatic_repairs=True, now=NOW))
    fleet["scaleSets"][0]["resource"]["properties"]["automaticRepairsPolicy"]["enabled"] = "false"
    emu = start_emulator(fleet)
    assert emu.scale_set("rg-app", "web")["properties"]["automaticRepairsPolicy"]["enabled"] is False
    snapshot = gateway_for(emu).snapshot_by_name("rg-app", "web")
    assert snapshot.repairs.enabled is False
