"""fleetgen: compact, realistic payloads from keywords; the shapes the emulator and tests rely on."""

from __future__ import annotations

from emulator import fleetgen, payloads

from .conftest import NOW


def test_scale_set_entry_shapes():
    entry = fleetgen.scale_set(
        "web", capacity=3, automatic_repairs=True, unhealthy=[0], failed={1: "VMStartTimedOut"}, creating=[2], now=NOW
    )
    resource = entry["resource"]
    assert resource["type"] == "Microsoft.Compute/virtualMachineScaleSets"
    assert resource["properties"]["automaticRepairsPolicy"] == {
        "enabled": True,
        "gracePeriod": "PT10M",
        "repairAction": "Replace",
    }
    assert payloads.has_health_extension(resource) and not payloads.has_health_probe(resource)
    assert entry["instanceView"]["orchestrationServices"] == [
        {"serviceName": "AutomaticRepairs", "serviceState": "Running"}
    ]
    vms = entry["virtualMachines"]
    assert [vm["instanceId"] for vm in vms] == ["0", "1", "2"]
    assert [payloads.health_state(vm) for vm in vms] == ["unhealthy", "unknown", "initializing"]
    assert [payloads.provisioning_code(vm) for vm in vms] == [
        "ProvisioningState/succeeded",
        "ProvisioningState/failed/VMStartTimedOut",
        "ProvisioningState/creating",
    ]
    assert vms[0]["properties"]["instanceView"]["vmHealth"]["status"]["time"] == payloads.iso(
        NOW - payloads.parse_duration("PT1H")
    )


def test_flexible_instances_are_virtual_machines_with_stable_names():
    first = fleetgen.scale_set("jobs", orchestration="Flexible", capacity=2, health="probe", now=NOW)
    again = fleetgen.scale_set("jobs", orchestration="Flexible", capacity=2, health="probe", now=NOW)
    vm = first["virtualMachines"][0]
    assert vm["type"] == "Microsoft.Compute/virtualMachines"
    assert vm["properties"]["virtualMachineScaleSet"]["id"] == first["resource"]["id"]
    assert "vmHealth" not in vm["properties"]["instanceView"]  # no health extension, no vmHealth
    assert [v["name"] for v in first["virtualMachines"]] == [v["name"] for v in again["virtualMachines"]]
    assert first["resource"]["properties"]["virtualMachineProfile"]["networkProfile"]["healthProbe"]["id"]


def test_fleet_document_and_synthetic_fleet_are_deterministic():
    one = fleetgen.synthetic_fleet(20, 5, seed=3, now=NOW)
    two = fleetgen.synthetic_fleet(20, 5, seed=3, now=NOW)
    assert one == two
    assert one["subscriptionId"] == fleetgen.DEFAULT_SUBSCRIPTION_ID
    assert len(one["scaleSets"]) == 20 and all(len(s["virtualMachines"]) == 5 for s in one["scaleSets"])
    modes = {s["resource"]["properties"]["orchestrationMode"] for s in one["scaleSets"]}
    assert modes == {"Uniform", "Flexible"}


def test_payloads_stay_compact():
    import json

    entry = fleetgen.scale_set("vmss-0001", capacity=1, automatic_repairs=True, now=NOW)
    assert len(json.dumps(entry["virtualMachines"][0], separators=(",", ":"))) < 2200
    assert len(json.dumps(entry["resource"], separators=(",", ":"))) < 2000


def test_timestamp_helpers():
    assert payloads.iso(NOW) == "2026-11-23T12:00:00.0000000+00:00"
    assert payloads.parse_time("2026-11-23T12:00:00.1234567+00:00").microsecond == 123456
    assert payloads.parse_time("2026-11-23T12:00:00Z") == NOW
    shifted = payloads.shift_timestamps({"a": ["2026-11-23T12:00:00Z", "not a time"]}, NOW - NOW.replace(hour=11))
    assert shifted == {"a": ["2026-11-23T13:00:00.0000000+00:00", "not a time"]}
    assert payloads.parse_duration("PT1H30M").total_seconds() == 5400
    assert payloads.parse_duration("P") is None
