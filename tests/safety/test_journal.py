"""The emulator's write journal (emulator/journal.py): the ground truth the crash and race tests check.

Real SDK calls over HTTPS against the in-process emulator; the journal is read through the Python API and
the `/_emulator/journal` control endpoint."""

from __future__ import annotations

import pytest
import requests

from emulator import Emulator, fleetgen
from emulator.testing import compute_client

RG = "rg-app"


@pytest.fixture
def emu(start_emulator) -> Emulator:
    return start_emulator(
        fleetgen.fleet(fleetgen.scale_set("web", capacity=4, failed={2: "VMExtensionProvisioningError"})),
        lro_polls=1,
    )


def test_an_accepted_delete_is_journaled_with_its_instances_outcome_and_capacity(emu):
    client = compute_client(emu)
    client.virtual_machine_scale_sets.begin_delete_instances(
        RG, "web", {"instanceIds": ["2"]}, force_deletion=True
    ).result()
    journal = emu.journal()
    (write,) = journal["writes"]
    assert write["operationId"] == "VirtualMachineScaleSets_DeleteInstances"
    assert (write["method"], write["status"], write["scaleSet"]) == ("POST", 202, "rg-app/web")
    assert write["instanceIds"] == ["2"]
    assert write["operation"] and write["outcome"] == "Succeeded"
    assert write["endedT"] >= write["t"]
    points = journal["capacity"]["rg-app/web"]
    # baseline: capacity 4, instance 2 Failed (not live); then Deleting; then gone and capacity 3
    assert [(p["capacity"], p["live"]) for p in points] == [(4, 3), (3, 3)]
    assert points[0]["cause"] == "baseline"


def test_a_refused_write_is_journaled_with_its_error_and_no_operation(start_emulator):
    emu = start_emulator(
        fleetgen.fleet(fleetgen.scale_set("web", capacity=4, failed={2: "VMExtensionProvisioningError"})),
        lro_polls=1000,
        lro_seconds=600,
    )
    base = f"{emu.endpoint}/subscriptions/{emu.subscription_id}/resourceGroups/{RG}"
    base += "/providers/Microsoft.Compute/virtualMachineScaleSets/web"
    options = {"params": {"api-version": "2026-04-01"}, "headers": {"Authorization": "Bearer t"}}
    accepted = requests.post(base + "/restart", json={"instanceIds": ["2"]}, verify=emu.ca_bundle, **options)
    # a scale-set-wide write while a repair runs: 409 Conflict (a running delete would be preempted instead)
    refused = requests.post(base + "/scaleOut", json={"capacity": 5}, verify=emu.ca_bundle, **options)
    assert (accepted.status_code, refused.status_code) == (202, 409)
    writes = emu.journal()["writes"]
    assert [(w["status"], w["outcome"]) for w in writes] == [(202, "InProgress"), (409, None)]
    assert (writes[1]["operationId"], writes[1]["errorCode"], writes[1]["operation"]) == (
        "VirtualMachineScaleSets_ScaleOut",
        "Conflict",
        None,
    )
    emu.clock.advance(601)
    assert emu.journal()["writes"][0]["outcome"] == "Succeeded"


def test_scale_out_then_creation_shows_in_the_capacity_timeline(start_emulator):
    emu = start_emulator(fleetgen.fleet(fleetgen.scale_set("web", capacity=2)), create_delay=30.0)
    emu.clock.freeze()
    compute_client(emu).virtual_machine_scale_sets.begin_scale_out(RG, "web", {"capacity": 3}).result()
    emu.clock.advance(31)
    points = emu.journal()["capacity"]["rg-app/web"]
    assert [(p["capacity"], p["live"], p["succeeded"]) for p in points] == [(2, 2, 2), (3, 3, 2), (3, 3, 3)]
    assert points[-1]["cause"] == "platform"


def test_control_endpoints_serve_and_reset_the_journal(emu):
    compute_client(emu).virtual_machine_scale_sets.begin_restart(RG, "web", {"instanceIds": ["0", "1"]}).result()
    url = emu.endpoint + "/_emulator/"
    served = requests.get(url + "journal", verify=emu.ca_bundle, timeout=10).json()
    assert [(w["operationId"], w["instanceIds"]) for w in served["writes"]] == [
        ("VirtualMachineScaleSets_Restart", ["0", "1"])
    ]
    assert requests.post(url + "reset-journal", verify=emu.ca_bundle, timeout=10).json() == {"reset": True}
    after = emu.journal()
    assert after["writes"] == []
    assert [p["cause"] for p in after["capacity"]["rg-app/web"]] == ["baseline"]


def test_a_flexible_vm_delete_is_journaled_under_its_scale_set(start_emulator):
    emu = start_emulator(fleetgen.fleet(fleetgen.scale_set("jobs", orchestration="Flexible", capacity=2)))
    vm = emu.instances(RG, "jobs")[0]["name"]
    compute_client(emu).virtual_machines.begin_delete(RG, vm, force_deletion=True).result()
    journal = emu.journal()
    (write,) = journal["writes"]
    assert (write["operationId"], write["scaleSet"], write["instanceIds"], write["outcome"]) == (
        "VirtualMachines_Delete",
        "rg-app/jobs",
        [vm],
        "Succeeded",
    )
    # Deleting (not live), then gone with the capacity
    assert [(p["capacity"], p["live"]) for p in journal["capacity"]["rg-app/jobs"]] == [(2, 2), (2, 1), (1, 1)]
