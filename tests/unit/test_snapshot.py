"""ARM JSON → snapshot, on Microsoft's own example payloads and on edge cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from autoheal.model import HealthState, parse_time
from autoheal.snapshot import parse_duration, parse_instance, parse_scale_set
from tests.builders import NOW
from tests.helpers import compute_example


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-11-30T12:58:26.526Z", datetime(2021, 11, 30, 12, 58, 26, 526000, tzinfo=UTC)),
        ("2021-11-30T12:58:26.5260000+00:00", datetime(2021, 11, 30, 12, 58, 26, 526000, tzinfo=UTC)),
        ("2021-11-30T14:58:26+02:00", datetime(2021, 11, 30, 12, 58, 26, tzinfo=UTC)),
        ("2021-11-30T12:58:26", datetime(2021, 11, 30, 12, 58, 26, tzinfo=UTC)),
        ("not a time", None),
        ("", None),
        (None, None),
        (42, None),
    ],
)
def test_parse_time(text, expected):
    assert parse_time(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("PT30M", timedelta(minutes=30)), ("PT1H30M", timedelta(minutes=90)), ("30", None), (None, None)],
)
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


def test_scale_set_get_example_has_no_policies():
    resource = compute_example("VirtualMachineScaleSet_Get")
    snap = parse_scale_set(resource, {}, [], read_at=NOW)
    assert snap.name == resource["name"]
    assert snap.capacity == 4
    assert snap.orchestration_mode == "Uniform"
    assert not snap.repairs.present and not snap.repairs.enabled
    assert not snap.resiliency.present
    assert snap.health_sources == ()
    assert snap.repairs_service is None


def test_automatic_repairs_example():
    resource = compute_example("VirtualMachineScaleSet_Create_WithAutomaticRepairs")
    snap = parse_scale_set(resource, None, [], read_at=NOW)
    assert snap.repairs.enabled
    assert snap.repairs.grace_period == "PT10M"
    assert snap.repairs.grace_period_delta == timedelta(minutes=10)
    assert snap.repairs.repair_action is None
    assert snap.repairs.effective_repair_action == "Replace"


def test_update_example_reads_health_probe():
    resource = compute_example("VirtualMachineScaleSet_Update_MaximumSet_Gen")
    snap = parse_scale_set(resource, None, [], read_at=NOW)
    kinds = [s.kind for s in snap.health_sources]
    assert "loadBalancerProbe" in kinds
    probe = next(s for s in snap.health_sources if s.kind == "loadBalancerProbe")
    assert probe.probe_id.endswith("/disks/disk123")
    # The example's extension has a placeholder type, not an Application Health extension.
    assert "applicationHealthExtension" not in kinds


@pytest.mark.parametrize(
    ("example", "create", "delete"),
    [
        ("VirtualMachineScaleSet_Create_WithResilientVMCreationPolicy", True, False),
        ("VirtualMachineScaleSet_Create_WithResilientVMDeletionPolicy", False, True),
    ],
)
def test_resiliency_examples(example, create, delete):
    snap = parse_scale_set(compute_example(example), None, [], read_at=NOW)
    assert snap.resiliency.present
    assert (snap.resiliency.create_enabled, snap.resiliency.delete_enabled) == (create, delete)


def test_instance_view_example_orchestration_services():
    resource = compute_example("VirtualMachineScaleSet_Get")
    view = compute_example("VirtualMachineScaleSet_GetInstanceView_MaximumSet_Gen")
    snap = parse_scale_set(resource, view, [], read_at=NOW)
    assert snap.repairs_service_state == "NotRunning"
    rebalancing = next(s for s in snap.orchestration_services if s.name == "AutomaticZoneRebalancing")
    assert rebalancing.state == "Running"
    assert rebalancing.last_status_change == datetime(2025, 7, 9, 13, 26, 28, 360000, tzinfo=UTC)
    assert snap.statuses_summary == {"aa": 21}


def test_vm_list_examples():
    vms = compute_example("VirtualMachineScaleSetVM_List_WithResiliencyView")["value"]
    instances = [parse_instance(vm, flexible=False) for vm in vms]
    assert [i.instance_id for i in instances] == [vm["instanceId"] for vm in vms]
    assert {i.resilient_deletion_status for i in instances} == {"Enabled"}
    assert all(i.provisioning_state == "Succeeded" for i in instances)

    maxset = compute_example("VirtualMachineScaleSetVM_List_MaximumSet_Gen")["value"][0]
    inst = parse_instance(maxset, flexible=False)
    # Microsoft's generated sample has a placeholder health code: read as Unknown, never as Healthy.
    assert inst.health is HealthState.UNKNOWN
    assert inst.health_since == datetime(2021, 11, 30, 12, 58, 26, 522000, tzinfo=UTC)
    assert inst.protected_from_scale_set_actions and inst.protected_from_scale_in


def test_minimal_vm_without_instance_view():
    vm = compute_example("VirtualMachineScaleSetVM_List_MinimumSet_Gen")["value"][0]
    inst = parse_instance(vm, flexible=False)
    assert not inst.has_instance_view
    assert inst.health is None and inst.provisioning_state is None


def _vm(code: str, health: str | None = "HealthState/healthy", state: str = "Succeeded") -> dict:
    view: dict = {
        "statuses": [
            {
                "code": code,
                "level": "Error",
                "message": "OS Provisioning did not finish",
                "time": "2026-11-23T10:00:00Z",
            },
            {"code": "PowerState/running"},
        ]
    }
    if health:
        view["vmHealth"] = {"status": {"code": health, "time": "2026-11-23T11:00:00Z"}}
    return {
        "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/web_ab12",
        "name": "web_ab12",
        "properties": {"provisioningState": state, "instanceView": view},
    }


def test_failed_provisioning_code_and_flexible_instance_id():
    inst = parse_instance(_vm("ProvisioningState/failed/OSProvisioningTimedOut", state="Failed"), flexible=True)
    assert inst.instance_id == "web_ab12"
    assert inst.failed
    assert inst.provisioning_error_code == "OSProvisioningTimedOut"
    assert inst.provisioning_message == "OS Provisioning did not finish"
    assert inst.provisioning_time == datetime(2026, 11, 23, 10, tzinfo=UTC)
    assert inst.power_state == "running"


@pytest.mark.parametrize(
    ("code", "state"),
    [
        ("HealthState/healthy", HealthState.HEALTHY),
        ("HealthState/Unhealthy", HealthState.UNHEALTHY),
        ("HealthState/unknown", HealthState.UNKNOWN),
        ("HealthState/initializing", HealthState.INITIALIZING),
        ("Something/else", HealthState.UNKNOWN),
    ],
)
def test_health_codes(code, state):
    assert parse_instance(_vm("ProvisioningState/succeeded", health=code), flexible=False).health is state


def test_extension_health_source_settings():
    resource = {
        "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web",
        "name": "web",
        "properties": {
            "virtualMachineProfile": {
                "extensionProfile": {
                    "extensions": [
                        {
                            "name": "HealthExtension",
                            "properties": {
                                "publisher": "Microsoft.ManagedServices",
                                "type": "ApplicationHealthLinux",
                                "settings": {"protocol": "HTTP", "port": "8080", "requestPath": "/healthz"},
                            },
                        },
                        {"name": "sf", "properties": {"type": "ServiceFabricLinuxNode"}},
                    ]
                }
            }
        },
    }
    snap = parse_scale_set(resource, None, [], read_at=NOW)
    (source,) = snap.health_sources
    assert (source.protocol, source.port, source.request_path) == ("http", 8080, "/healthz")
    assert source.describe() == "ApplicationHealthLinux http:8080/healthz"
    assert snap.service_fabric
    assert snap.resource_group == "rg" and snap.subscription_id == "s"


def test_both_health_sources_are_read_and_the_service_time_is_optional():
    """Both sources are kept (the rules report "remove one"); `lastStatusChangeTime` is not documented for
    AutomaticRepairs, so a service without it still parses (its time is None, nothing depends on it)."""
    resource = {
        "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web",
        "name": "web",
        "properties": {
            "virtualMachineProfile": {
                "networkProfile": {"healthProbe": {"id": "/subscriptions/s/.../loadBalancers/lb/probes/http"}},
                "extensionProfile": {
                    "extensions": [
                        {
                            "name": "HealthExtension",
                            "properties": {"publisher": "Microsoft.ManagedServices", "type": "ApplicationHealthLinux"},
                        }
                    ]
                },
            }
        },
    }
    view = {"orchestrationServices": [{"serviceName": "AutomaticRepairs", "serviceState": "Running"}]}
    snap = parse_scale_set(resource, view, [], read_at=NOW)
    assert {source.kind for source in snap.health_sources} == {"applicationHealthExtension", "loadBalancerProbe"}
    assert snap.repairs_service_state == "Running" and snap.repairs_service.last_status_change is None
