"""The Functions entry points invoked with real azure.functions objects, on the emulator + Azurite."""

from __future__ import annotations

import json
import logging

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from autoheal.gateway import ArmError
from autoheal.runtime import set_runtime
from tests.functions.conftest import (
    SUB,
    all_samples,
    decode,
    retarget,
    sample,
    scale_set_id,
    to_function_event,
    wire,
)

RESOURCE_FAILURE = "Microsoft.Resources/examples/event-grid-schema/resource_write_failure.json"
RESOURCE_FAILURE_CE = "Microsoft.Resources/examples/cloud-events-schema/resource_write_failure.json"
ACTION_FAILURE = "Microsoft.Resources/examples/event-grid-schema/resource_action_failure.json"
DELETE_FAILURE = "Microsoft.Resources/examples/event-grid-schema/resource_delete_failure.json"
HEALTH = "Microsoft.ResourceNotifications/examples/event-grid-schema/HealthResources_AvailabilityStatusChanged.json"
HEALTH_CE = (
    "Microsoft.ResourceNotifications/examples/cloud-events-schema/HealthResources_AvailabilityStatusChanged.json"
)
ANNOTATED = "Microsoft.ResourceNotifications/examples/event-grid-schema/HealthResources_ResourceAnnotated.json"


def test_the_app_registers_four_functions(functions):
    assert set(functions) == {"on_resource_event", "sweep", "sweep_slice", "status"}
    bindings = {name: [b.type for b in f.get_bindings()] for name, f in functions.items()}
    assert bindings["on_resource_event"] == ["eventGridTrigger"]
    assert bindings["sweep"] == ["timerTrigger"]
    assert bindings["sweep_slice"] == ["queueTrigger"]
    queue = functions["sweep_slice"].get_bindings()[0]
    assert queue.queue_name == "%AUTOHEAL_SWEEP_QUEUE%" and queue.connection == "AzureWebJobsStorage"
    assert set(bindings["status"]) == {"httpTrigger", "http"}
    timer = functions["sweep"].get_bindings()[0]
    assert timer.schedule == "%AUTOHEAL_SWEEP_SCHEDULE%" and timer.run_on_startup is False


@pytest.mark.parametrize("relative", all_samples())
def test_every_microsoft_sample_is_handled_without_arm_calls(functions, runtime, demo_emulator, caplog, relative):
    """Microsoft's samples name storage accounts, event hubs and placeholder subscriptions: never ours."""
    caplog.set_level(logging.DEBUG, logger="autoheal")
    demo_emulator.reset_stats()
    functions["on_resource_event"].get_user_function()(to_function_event(sample(relative)))
    assert demo_emulator.stats()["requests"] == 0
    dropped = [r for r in caplog.records if "dropped (" in r.getMessage()]
    assert len(dropped) == 1 and getattr(dropped[0], "reasonCode", "")
    assert "(ignored, " in dropped[0].getMessage() or "(rejected, " in dropped[0].getMessage()


@pytest.mark.parametrize("relative", [RESOURCE_FAILURE, RESOURCE_FAILURE_CE])
def test_write_failure_on_a_scale_set_evaluates_it(functions, runtime, demo_emulator, relative):
    target = scale_set_id("rg-platform", "render-farm")
    event = retarget(relative, target)
    assert event["data"]["status"] == "Succeeded"  # Microsoft's failure sample: classify by type, not status
    demo_emulator.reset_stats()
    functions["on_resource_event"].get_user_function()(to_function_event(event))
    ops = demo_emulator.stats()["byOperation"]
    assert ops == {
        "VirtualMachineScaleSets_Get": 1,
        "VirtualMachineScaleSets_GetInstanceView": 1,
        "VirtualMachineScaleSetVMs_List": 1,
        "ResourceGroups_List": 1,  # who owns the scale set (ARM's read bucket; cached for ten minutes)
    }
    records = runtime.ledger.records_for(target)
    assert {(r.finding_code, r.state.value, r.action) for r in records} == {
        ("provisioning-failed", "planned", "replace-failed-instances")
    }


def test_action_failure_on_a_scale_set_vm_evaluates_its_scale_set(functions, runtime, demo_emulator):
    vm = scale_set_id("rg-data", "etl-workers") + "/virtualMachines/3"
    event = retarget(ACTION_FAILURE, vm, operation="Microsoft.Compute/virtualMachineScaleSets/virtualMachines/delete")
    functions["on_resource_event"].get_user_function()(to_function_event(event))
    codes = {(r.finding_code, r.target) for r in runtime.ledger.records_for(scale_set_id("rg-data", "etl-workers"))}
    assert ("delete-failed", "3") in codes and ("delete-failed", "4") in codes


def test_health_event_for_a_scale_set_vm(functions, runtime, demo_emulator):
    vm = scale_set_id("rg-platform", "queue-workers") + "/virtualMachines/2"
    functions["on_resource_event"].get_user_function()(to_function_event(retarget(HEALTH, vm)))
    records = runtime.ledger.records_for(scale_set_id("rg-platform", "queue-workers"))
    assert {(r.finding_code, r.target) for r in records} >= {("unhealthy-not-repaired", "2")}


@pytest.mark.parametrize("relative", [HEALTH, HEALTH_CE, ANNOTATED])
def test_health_event_for_a_flexible_instance_finds_its_scale_set(functions, runtime, demo_emulator, relative):
    flex = next(
        vm
        for vm in demo_emulator.instances("rg-data", "ingest-flex")
        if vm["properties"]["provisioningState"] == "Failed"
    )
    demo_emulator.reset_stats()
    functions["on_resource_event"].get_user_function()(to_function_event(retarget(relative, flex["id"])))
    ops = demo_emulator.stats()["byOperation"]
    assert ops["VirtualMachines_Get"] == 1 and ops["VirtualMachines_List"] == 1
    records = runtime.ledger.records_for(scale_set_id("rg-data", "ingest-flex"))
    assert "create-timed-out" in {r.finding_code for r in records}


def test_health_event_for_a_standalone_vm_is_not_evaluated(functions, runtime, demo_emulator, caplog):
    vm = f"/subscriptions/{SUB}/resourceGroups/rg-data/providers/Microsoft.Compute/virtualMachines/not-in-a-scale-set"
    functions["on_resource_event"].get_user_function()(to_function_event(retarget(HEALTH, vm)))
    assert demo_emulator.stats()["byOperation"] == {"VirtualMachines_Get": 1}
    assert runtime.ledger.all_records() == []


def test_foreign_subscription_is_rejected_and_logged(functions, runtime, demo_emulator, caplog):
    other = scale_set_id("rg-shop", "checkout-api").replace(SUB, "11111111-2222-3333-4444-555555555555")
    caplog.set_level(logging.WARNING, logger="autoheal")
    functions["on_resource_event"].get_user_function()(to_function_event(retarget(RESOURCE_FAILURE, other)))
    assert demo_emulator.stats()["requests"] == 0
    assert any(
        "(rejected, id-foreign-subscription)" in r.getMessage() and "11111111" in r.getMessage() for r in caplog.records
    )


def test_redelivered_event_is_handled_once(functions, runtime, demo_emulator):
    event = retarget(DELETE_FAILURE, scale_set_id("rg-shop", "search-indexer"), event_id="redelivered-1")
    handler = functions["on_resource_event"].get_user_function()
    handler(to_function_event(event))
    reads = demo_emulator.stats()["reads"]
    handler(to_function_event(event))
    assert demo_emulator.stats()["reads"] == reads


def test_burst_for_one_scale_set_is_coalesced(functions, runtime, demo_emulator):
    handler = functions["on_resource_event"].get_user_function()
    target = scale_set_id("rg-shop", "cache-nodes")
    for n in range(5):  # a scale-out writes many events for the same scale set
        handler(to_function_event(retarget(RESOURCE_FAILURE, target, event_id=f"burst-{n}")))
    assert demo_emulator.stats()["byOperation"]["VirtualMachineScaleSets_Get"] == 1


def test_a_burst_about_one_vm_reads_its_membership_once(functions, runtime, demo_emulator, caplog):
    """Issue 21 item 7: a Flexible VM's scale set (and a VM that is not found) is remembered for a while, so a
    burst of events about one VM reads it once instead of once per event."""
    caplog.set_level(logging.INFO, logger="autoheal")
    handler = functions["on_resource_event"].get_user_function()
    flex = demo_emulator.instances("rg-data", "ingest-flex")[0]["id"]
    missing = f"/subscriptions/{SUB}/resourceGroups/rg-data/providers/Microsoft.Compute/virtualMachines/gone-vm"
    demo_emulator.reset_stats()
    for n in range(4):
        handler(to_function_event(retarget(HEALTH, flex, event_id=f"flex-{n}")))
        handler(to_function_event(retarget(HEALTH, missing, event_id=f"gone-{n}")))
    assert demo_emulator.stats()["byOperation"]["VirtualMachines_Get"] == 2  # one per VM, not one per event
    dropped = [r.getMessage() for r in caplog.records if "gone-" in r.getMessage()]
    assert len(dropped) == 4 and all("(not-a-member, vm-unreadable)" in m for m in dropped), dropped


def test_transient_arm_failure_raises_so_event_grid_redelivers(functions, runtime, demo_emulator):
    demo_emulator.set_faults(
        {
            "injections": [
                {
                    "method": "GET",
                    "pathContains": "search-indexer",
                    "status": 503,
                    "code": "ServiceUnavailable",
                    "count": 10,
                }
            ]
        }
    )
    event = retarget(RESOURCE_FAILURE, scale_set_id("rg-shop", "search-indexer"), event_id="transient-1")
    handler = functions["on_resource_event"].get_user_function()
    with pytest.raises(ArmError) as caught:
        handler(to_function_event(event))
    assert caught.value.transient
    demo_emulator.set_faults({})
    handler(to_function_event(event))  # the redelivery is evaluated, not dropped as a duplicate
    assert runtime.ledger.records_for(scale_set_id("rg-shop", "search-indexer"))


def test_timer_sweeps_every_scale_set_and_status_reports_it(functions, runtime, demo_emulator):
    functions["sweep"].get_user_function()(TimerRequest(past_due=False))
    assert demo_emulator.stats()["writes"] == 0  # observe mode
    request = func.HttpRequest(method="GET", url="/api/status", params={"limit": "5"}, body=b"")
    response = functions["status"].get_user_function()(request)
    assert response.status_code == 200 and response.mimetype == "application/json"
    body = json.loads(response.get_body())
    assert body["mode"] == "observe"
    assert body["lastSweep"]["scaleSets"] == 15
    assert body["lastSweep"]["findings"]["provisioning-failed"] == 4
    assert len(body["records"]) == 5
    bad = functions["status"].get_user_function()(
        func.HttpRequest(method="GET", url="/api/status", params={"limit": "x"}, body=b"")
    )
    assert bad.status_code == 400


def test_invalid_settings_fail_at_first_use_with_a_clear_message(functions, monkeypatch):
    from autoheal.settings import SettingsError

    set_runtime(None)
    monkeypatch.setenv("AUTOHEAL_MODE", "yolo")
    with pytest.raises(SettingsError, match=r"AUTOHEAL_MODE='yolo' is invalid: expected observe or remediate"):
        functions["sweep"].get_user_function()(TimerRequest(past_due=False))


def test_event_on_an_unreadable_scale_set_is_logged_not_redelivered(functions, runtime, demo_emulator, caplog):
    demo_emulator.set_faults(
        {
            "injections": [
                {
                    "method": "GET",
                    "pathContains": "render-farm/instanceView",
                    "status": 403,
                    "code": "AuthorizationFailed",
                    "count": 5,
                }
            ]
        }
    )
    caplog.set_level(logging.ERROR, logger="autoheal")
    event = retarget(RESOURCE_FAILURE, scale_set_id("rg-platform", "render-farm"), event_id="forbidden-1")
    functions["on_resource_event"].get_user_function()(to_function_event(event))  # returns: no redelivery
    assert any("AuthorizationFailed" in r.getMessage() for r in caplog.records)
    assert runtime.ledger.records_for(scale_set_id("rg-platform", "render-farm")) == []


def test_the_worker_hands_cloud_events_as_cloud_event_objects(functions, runtime, demo_emulator):
    """Issue 13 item 1: every CloudEvents delivery crashed the function (it read `event_type`, `topic`)."""
    target = scale_set_id("rg-platform", "render-farm")
    event = to_function_event(retarget(RESOURCE_FAILURE_CE, target, event_id="ce-1"))
    assert isinstance(event, func.CloudEvent) and not hasattr(event, "event_type")
    functions["on_resource_event"].get_user_function()(event)
    assert {r.finding_code for r in runtime.ledger.records_for(target)} == {"provisioning-failed"}


def test_a_batch_delivery_of_both_schemas(functions, runtime, demo_emulator, caplog):
    """One raw body of several events: the host invokes the function per element; a list is accepted too."""
    caplog.set_level(logging.INFO, logger="autoheal")
    events = [
        retarget(RESOURCE_FAILURE, scale_set_id("rg-platform", "render-farm"), event_id="b-1"),
        retarget(DELETE_FAILURE, scale_set_id("rg-data", "etl-workers"), event_id="b-2"),
        {"id": "b-3", "eventType": "Microsoft.Storage.BlobCreated", "subject": "x", "data": {}, "dataVersion": "1"},
    ]
    decoded = decode(json.dumps(events))
    assert [type(e).__name__ for e in decoded] == ["EventGridEvent"] * 3
    for event in decoded:
        functions["on_resource_event"].get_user_function()(event)
    cloud = decode(
        json.dumps([wire(retarget(HEALTH_CE, scale_set_id("rg-platform", "queue-workers") + "/virtualMachines/2"))])
    )
    functions["on_resource_event"].get_user_function()(cloud)  # a list of objects
    assert runtime.ledger.records_for(scale_set_id("rg-platform", "render-farm"))
    assert runtime.ledger.records_for(scale_set_id("rg-data", "etl-workers"))
    assert runtime.ledger.records_for(scale_set_id("rg-platform", "queue-workers"))
    assert any("event b-3 dropped (ignored, event-type-not-handled)" in r.getMessage() for r in caplog.records)


def test_camel_case_spec_version_is_dropped_with_a_reason(functions, runtime, demo_emulator, caplog):
    """The converter only knows lower-case `specversion`: a camel-case body arrives as an EventGridEvent
    without an event type. It is logged as malformed, not a crash."""
    caplog.set_level(logging.WARNING, logger="autoheal")
    body = json.dumps(retarget(RESOURCE_FAILURE_CE, scale_set_id("rg-platform", "render-farm"), event_id="camel-1"))
    (event,) = decode(body)
    assert isinstance(event, func.EventGridEvent) and event.event_type is None
    functions["on_resource_event"].get_user_function()(event)
    assert demo_emulator.stats()["requests"] == 0
    assert any("camel-1 dropped (malformed, malformed)" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("relative", [RESOURCE_FAILURE, RESOURCE_FAILURE_CE, ACTION_FAILURE, DELETE_FAILURE])
def test_a_flexible_vm_failure_evaluates_its_scale_set(functions, runtime, demo_emulator, relative):
    """Issue 13 item 4: failures of a Flexible scale set's own VMs were ignored until the next sweep."""
    flex = next(
        vm
        for vm in demo_emulator.instances("rg-data", "ingest-flex")
        if vm["properties"]["provisioningState"] == "Failed"
    )
    event = retarget(relative, flex["id"], operation="Microsoft.Compute/virtualMachines/write")
    demo_emulator.reset_stats()
    functions["on_resource_event"].get_user_function()(to_function_event(event))
    ops = demo_emulator.stats()["byOperation"]
    assert ops["VirtualMachines_Get"] == 1
    records = runtime.ledger.records_for(scale_set_id("rg-data", "ingest-flex"))
    assert "create-timed-out" in {r.finding_code for r in records}


def test_a_vm_success_is_dropped_without_arm_calls(functions, runtime, demo_emulator, caplog):
    caplog.set_level(logging.INFO, logger="autoheal")
    vm = f"/subscriptions/{SUB}/resourceGroups/rg-data/providers/Microsoft.Compute/virtualMachines/x1"
    event = retarget(
        "Microsoft.Resources/examples/event-grid-schema/resource_write_success.json",
        vm,
        operation="Microsoft.Compute/virtualMachines/write",
        event_id="vm-ok",
    )
    functions["on_resource_event"].get_user_function()(to_function_event(event))
    assert demo_emulator.stats()["requests"] == 0
    assert any("vm-ok dropped (ignored, vm-operation-succeeded)" in r.getMessage() for r in caplog.records)


def test_a_traversal_id_is_rejected_not_remediated(functions, runtime, demo_emulator, caplog):
    """Issue 13 item 2: `.../web/virtualMachines/../../../virtualMachineScaleSets/other` was treated as `web`."""
    caplog.set_level(logging.WARNING, logger="autoheal")
    sneaky = scale_set_id("rg-shop", "checkout-api") + "/virtualMachines/../../../virtualMachineScaleSets/render-farm"
    functions["on_resource_event"].get_user_function()(to_function_event(retarget(RESOURCE_FAILURE, sneaky)))
    assert demo_emulator.stats()["requests"] == 0
    assert any("(rejected, id-dot-segment)" in r.getMessage() for r in caplog.records)


def test_an_unresolved_key_vault_reference_turns_teams_off_and_status_says_so(functions, runtime, monkeypatch):
    """Issue 13 item 5: App Service passes `@Microsoft.KeyVault(...)` literally when it cannot resolve it."""
    from autoheal.runtime import Runtime, get_runtime

    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", SUB)
    monkeypatch.setenv(
        "AUTOHEAL_TEAMS_WEBHOOK_URL", "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/t/)"
    )
    set_runtime(None)
    started = get_runtime()  # no SettingsError: detection and remediation still start
    assert started.settings.teams_webhook_url == "" and started.notifier.channels == []
    set_runtime(Runtime(started.settings, ledger=runtime.ledger))
    response = functions["status"].get_user_function()(
        func.HttpRequest(method="GET", url="/api/status", params={}, body=b"")
    )
    problems = json.loads(response.get_body())["settingsProblems"]
    assert len(problems) == 1 and problems[0].startswith("teams notifications are off: AUTOHEAL_TEAMS_WEBHOOK_URL=")
    assert "unresolved Key Vault reference" in problems[0] and "kv.vault" not in problems[0]
