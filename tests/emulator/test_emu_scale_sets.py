"""Scale sets through the real SDK: listing and paging, get, PATCH as an LRO, instance view,
orchestration service state, and the platform rules Azure enforces on automatic repairs."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from emulator import fleetgen
from emulator.testing import compute_client

from .conftest import NOW, Raw, small_fleet


def test_list_all_and_by_resource_group_page_through_absolute_next_links(start_emulator):
    fleet = fleetgen.fleet(
        *[fleetgen.scale_set(f"s{i}", resource_group="rg-a" if i < 5 else "rg-b", capacity=1) for i in range(7)]
    )
    emu = start_emulator(fleet, page_size=2)
    client = compute_client(emu)

    assert [s.name for s in client.virtual_machine_scale_sets.list_all()] == [f"s{i}" for i in range(7)]
    assert [s.name for s in client.virtual_machine_scale_sets.list("rg-a")] == [f"s{i}" for i in range(5)]
    assert emu.stats()["byOperation"] == {"VirtualMachineScaleSets_List": 3, "VirtualMachineScaleSets_ListAll": 4}

    raw = Raw(emu)
    first = raw("GET", raw.sub("/providers/Microsoft.Compute/virtualMachineScaleSets")).json()
    assert len(first["value"]) == 2
    assert first["nextLink"].startswith(emu.endpoint + "/subscriptions/")
    assert "api-version=2026-04-01" in first["nextLink"] and "$skiptoken=" in first["nextLink"]


def test_get_returns_the_fleet_payload(client, emu):
    scale_set = client.virtual_machine_scale_sets.get("rg-app", "web")
    assert scale_set.id == emu.scale_set("rg-app", "web")["id"]
    assert scale_set.sku.capacity == 4
    assert scale_set.orchestration_mode == "Uniform"
    assert scale_set.automatic_repairs_policy.grace_period == "PT10M"
    extension = scale_set.virtual_machine_profile.extension_profile.extensions[0]
    assert (extension.properties.publisher, extension.properties.type) == (
        "Microsoft.ManagedServices",
        "ApplicationHealthLinux",
    )


def test_not_found_errors_use_arm_wording(client):
    with pytest.raises(ResourceNotFoundError) as missing:
        client.virtual_machine_scale_sets.get("rg-app", "nope")
    assert missing.value.error.code == "ResourceNotFound"
    assert missing.value.error.message.startswith(
        "The Resource 'Microsoft.Compute/virtualMachineScaleSets/nope' under resource group 'rg-app' was not found."
    )
    with pytest.raises(ResourceNotFoundError) as group:
        client.virtual_machine_scale_sets.get("rg-missing", "web")
    assert group.value.error.code == "ResourceGroupNotFound"
    assert group.value.error.message == "Resource group 'rg-missing' could not be found."


def test_unknown_subscription_is_subscription_not_found(emu):
    other = compute_client(emu, subscription_id="00000000-0000-0000-0000-000000000000")
    with pytest.raises(ResourceNotFoundError) as error:
        list(other.virtual_machine_scale_sets.list_all())
    assert error.value.error.code == "SubscriptionNotFound"


def test_update_is_a_long_running_operation_with_merge_semantics(client, emu, raw):
    result = client.virtual_machine_scale_sets.begin_update(
        "rg-app", "web", {"tags": {"owner": "sre"}, "properties": {"automaticRepairsPolicy": {"gracePeriod": "PT30M"}}}
    ).result()
    assert result.provisioning_state == "Succeeded"
    assert result.tags == {"owner": "sre"}
    policy = result.automatic_repairs_policy
    assert (policy.enabled, policy.grace_period, policy.repair_action) == (True, "PT30M", "Replace")
    assert emu.scale_set("rg-app", "web")["etag"] == '"2"'
    # Initial 200 + one InProgress poll + Succeeded poll + final GET of the resource.
    ops = emu.stats()["byOperation"]
    assert ops["VirtualMachineScaleSets_Update"] == 1
    assert ops["LongRunningOperation_Status"] == 2
    assert ops["VirtualMachineScaleSets_Get"] == 1


def test_update_answers_200_updating_with_an_async_operation_monitor(raw, emu):
    response = raw("PATCH", raw.vmss(), json={"properties": {"automaticRepairsPolicy": {"gracePeriod": "PT20M"}}})
    assert response.status_code == 200
    assert response.json()["properties"]["provisioningState"] == "Updating"
    monitor = response.headers["Azure-AsyncOperation"]
    assert (
        f"/subscriptions/{emu.subscription_id}/providers/Microsoft.Compute/locations/westeurope/operations/" in monitor
    )
    first = raw("GET", monitor, api_version=None).json()
    assert first["status"] == "InProgress" and "startTime" in first and "name" in first
    second = raw("GET", monitor, api_version=None).json()
    assert second["status"] == "Succeeded" and "endTime" in second
    assert raw("GET", raw.vmss()).json()["properties"]["provisioningState"] == "Succeeded"


def test_capacity_update_scales_out_and_in(client, emu):
    client.virtual_machine_scale_sets.begin_update("rg-app", "web", {"sku": {"capacity": 6}}).result()
    assert [vm["instanceId"] for vm in emu.instances("rg-app", "web")] == ["0", "1", "2", "3", "4", "5"]
    client.virtual_machine_scale_sets.begin_update("rg-app", "web", {"sku": {"capacity": 3}}).result()
    assert [vm["instanceId"] for vm in emu.instances("rg-app", "web")] == ["0", "1", "2"]
    assert emu.scale_set("rg-app", "web")["sku"]["capacity"] == 3


def test_enabling_repairs_without_health_source_fails_like_azure(start_emulator):
    emu = start_emulator(fleetgen.fleet(fleetgen.scale_set("bare", health=None, automatic_repairs=None)))
    client = compute_client(emu)
    with pytest.raises(HttpResponseError) as error:
        client.virtual_machine_scale_sets.begin_update(
            "rg-app", "bare", {"properties": {"automaticRepairsPolicy": {"enabled": True}}}
        )
    assert error.value.status_code == 400
    assert error.value.error.code == "BadRequest"
    assert error.value.error.message == (
        "Automatic repairs not supported for this Virtual Machine Scale Set because a health probe or health "
        "extension was not provided."
    )
    # A load balancer probe is a health source too.
    emu.load_fleet(fleetgen.fleet(fleetgen.scale_set("lb", health="probe", automatic_repairs=False)))
    result = client.virtual_machine_scale_sets.begin_update(
        "rg-app", "lb", {"properties": {"automaticRepairsPolicy": {"enabled": True}}}
    ).result()
    assert result.automatic_repairs_policy.enabled is True
    services = client.virtual_machine_scale_sets.get_instance_view("rg-app", "lb").orchestration_services
    assert [(s.service_name, s.service_state) for s in services] == [("AutomaticRepairs", "Running")]


@pytest.mark.parametrize("grace", ["PT5M", "PT91M", "PT2H", "soon"])
def test_grace_period_outside_10_to_90_minutes_is_invalid(client, grace):
    with pytest.raises(HttpResponseError) as error:
        client.virtual_machine_scale_sets.begin_update(
            "rg-app", "web", {"properties": {"automaticRepairsPolicy": {"gracePeriod": grace}}}
        )
    assert error.value.status_code == 400
    assert error.value.error.code == "InvalidParameter"
    assert error.value.error.target == "automaticRepairsPolicy.gracePeriod"


def test_repair_action_changes_only_through_disable_then_enable(client):
    update = client.virtual_machine_scale_sets.begin_update
    with pytest.raises(HttpResponseError) as error:
        update("rg-app", "web", {"properties": {"automaticRepairsPolicy": {"repairAction": "Reimage"}}})
    assert error.value.status_code == 400 and "Disable automatic repairs" in error.value.error.message
    update("rg-app", "web", {"properties": {"automaticRepairsPolicy": {"enabled": False}}}).result()
    result = update(
        "rg-app", "web", {"properties": {"automaticRepairsPolicy": {"enabled": True, "repairAction": "Reimage"}}}
    ).result()
    assert result.automatic_repairs_policy.repair_action == "Reimage"


def test_disabling_repairs_stops_the_service_and_resume_is_refused(client):
    client.virtual_machine_scale_sets.begin_update(
        "rg-app", "web", {"properties": {"automaticRepairsPolicy": {"enabled": False}}}
    ).result()
    services = client.virtual_machine_scale_sets.get_instance_view("rg-app", "web").orchestration_services
    assert services[0].service_state == "NotRunning"
    with pytest.raises(ResourceExistsError) as error:  # the SDK maps 409 to ResourceExistsError
        client.virtual_machine_scale_sets.begin_set_orchestration_service_state(
            "rg-app", "web", {"serviceName": "AutomaticRepairs", "action": "Resume"}
        )
    assert error.value.error.code == "OperationNotAllowed"


def test_suspend_and_resume_the_automatic_repairs_service(client, raw):
    begin = client.virtual_machine_scale_sets.begin_set_orchestration_service_state
    begin("rg-app", "web", {"serviceName": "AutomaticRepairs", "action": "Suspend"}).result()
    view = client.virtual_machine_scale_sets.get_instance_view("rg-app", "web")
    assert view.orchestration_services[0].service_state == "Suspended"
    begin("rg-app", "web", {"serviceName": "AutomaticRepairs", "action": "Resume"}).result()
    view = client.virtual_machine_scale_sets.get_instance_view("rg-app", "web")
    assert view.orchestration_services[0].service_state == "Running"

    accepted = raw(
        "POST",
        raw.vmss(suffix="/setOrchestrationServiceState"),
        json={"serviceName": "AutomaticRepairs", "action": "Suspend"},
    )
    assert accepted.status_code == 202 and accepted.content == b""
    location = accepted.headers["Location"]
    assert "monitor=true" in location and "Azure-AsyncOperation" in accepted.headers
    assert raw("GET", location, api_version=None).status_code == 202
    assert raw("GET", location, api_version=None).status_code == 200


def test_service_state_input_is_validated(client):
    with pytest.raises(HttpResponseError) as error:
        client.virtual_machine_scale_sets.begin_set_orchestration_service_state(
            "rg-app", "web", {"serviceName": "AutomaticRepairs", "action": "Pause"}
        )
    assert error.value.status_code == 400 and error.value.error.target == "action"


def test_resiliency_policy_needs_the_registered_feature(start_emulator):
    fleet = fleetgen.fleet(
        fleetgen.scale_set("web"), registered_features=["Microsoft.Compute/ResilientVMScaleSetVMCreation"]
    )
    client = compute_client(start_emulator(fleet))
    result = client.virtual_machine_scale_sets.begin_update(
        "rg-app", "web", {"properties": {"resiliencyPolicy": {"resilientVMCreationPolicy": {"enabled": True}}}}
    ).result()
    assert result.resiliency_policy.resilient_vm_creation_policy.enabled is True
    with pytest.raises(HttpResponseError) as error:
        client.virtual_machine_scale_sets.begin_update(
            "rg-app", "web", {"properties": {"resiliencyPolicy": {"resilientVMDeletionPolicy": {"enabled": True}}}}
        )
    assert error.value.error.code == "InvalidParameter"
    assert "Microsoft.Compute/ReliableVMDeletion" in error.value.error.message
    assert "not enabled for this subscription" in error.value.error.message


def test_enabling_resilient_deletion_shows_on_every_instance(client):
    client.virtual_machine_scale_sets.begin_update(
        "rg-app", "web", {"properties": {"resiliencyPolicy": {"resilientVMDeletionPolicy": {"enabled": True}}}}
    ).result()
    statuses = {vm.resilient_vm_deletion_status for vm in client.virtual_machine_scale_set_vms.list("rg-app", "web")}
    assert statuses == {"Enabled"}


def test_writes_conflict_while_an_operation_is_in_progress_when_the_plan_says_conflict(start_emulator):
    # concurrentWrites "conflict": the older behaviour (the default, "preempt", is in test_fidelity.py)
    emu = start_emulator(small_fleet(concurrentWrites="conflict"), lro_polls=50)
    client = compute_client(emu)
    client.virtual_machine_scale_sets.begin_update("rg-app", "web", {"tags": {"a": "b"}})  # not awaited
    with pytest.raises(ResourceExistsError) as error:
        client.virtual_machine_scale_sets.begin_update("rg-app", "web", {"tags": {"c": "d"}})
    assert error.value.status_code == 409 and error.value.error.code == "Conflict"
    # An operation nobody polls still ends on the emulator clock.
    emu.clock.advance(61)
    client.virtual_machine_scale_sets.begin_update("rg-app", "web", {"tags": {"c": "d"}}, polling=False)


def test_if_match_with_a_stale_etag_is_refused(client):
    from azure.core import MatchConditions

    with pytest.raises(HttpResponseError) as error:
        client.virtual_machine_scale_sets.begin_update(
            "rg-app", "web", {"tags": {}}, etag='"7"', match_condition=MatchConditions.IfNotModified
        )
    assert error.value.status_code == 412


def test_instance_view_recounts_statuses_after_changes(start_emulator):
    fleet = fleetgen.fleet(fleetgen.scale_set("web", capacity=4, failed={3: "OSProvisioningTimedOut"}, now=NOW))
    emu = start_emulator(fleet, create_delay=120)
    emu.clock.freeze()
    client = compute_client(emu)

    def summary() -> dict[str, int]:
        view = client.virtual_machine_scale_sets.get_instance_view("rg-app", "web")
        return {s.code: s.count for s in view.virtual_machine.statuses_summary}

    assert summary() == {"ProvisioningState/succeeded": 3, "ProvisioningState/failed/OSProvisioningTimedOut": 1}
    client.virtual_machine_scale_sets.begin_delete_instances("rg-app", "web", {"instanceIds": ["3"]}).result()
    client.virtual_machine_scale_sets.begin_scale_out("rg-app", "web", {"capacity": 5}).result()
    assert summary() == {"ProvisioningState/succeeded": 3, "ProvisioningState/creating": 2}
    emu.clock.advance(120)
    assert summary() == {"ProvisioningState/succeeded": 5}


def test_scale_set_writes_wait_for_instance_operations_but_instances_repair_in_parallel(start_emulator):
    emu = start_emulator(small_fleet(), lro_polls=50)
    client = compute_client(emu)
    client.virtual_machine_scale_set_vms.begin_restart("rg-app", "web", "1")  # still running
    client.virtual_machine_scale_set_vms.begin_restart("rg-app", "web", "2")  # another instance: fine
    with pytest.raises(ResourceExistsError):
        client.virtual_machine_scale_set_vms.begin_reimage("rg-app", "web", "1")  # same instance
    with pytest.raises(ResourceExistsError):
        client.virtual_machine_scale_sets.begin_update("rg-app", "web", {"tags": {}})
    with pytest.raises(ResourceExistsError):
        client.virtual_machine_scale_sets.begin_scale_out("rg-app", "web", {"capacity": 5})
