"""The demo fleet: observe changes nothing, remediate heals what the guardrails allow, twice is once."""

from __future__ import annotations

import pytest

from autoheal.diagnosis import diagnose
from emulator import Emulator
from emulator.fleets import demo
from tests.integration.rig import Rig, actions_by, remediate_settings


@pytest.fixture
def rig(ledger, gateway_for):
    with Emulator.start(demo.PATH) as emu:
        yield Rig(emu, gateway_for(emu), ledger, remediate_settings(emu))


def states(result):
    return {key: (a["code"], a["state"], a["reasonCode"]) for key, a in actions_by(result).items()}


def test_observe_mode_changes_nothing_and_records_every_decision(rig):
    result = rig.sweep(mode="observe")
    assert rig.writes() == 0
    got = states(result)
    assert got[("render-farm", "provisioning-failed", "*")] == ("replace-failed-instances", "planned", "")
    assert got[("search-indexer", "repairs-suspended", "*")] == ("resume-automatic-repairs", "planned", "")
    assert got[("checkout-api", "unhealthy-not-repaired", "*")] == ("none", "held", "storm-brake")
    assert got[("ml-training", "provisioning-failed", "*")] == ("replace-failed-instances", "held", "opt-out")
    planned = [a for a in actions_by(result).values() if a["state"] == "planned"]
    assert planned and all(a["reason"].startswith("observe mode: would ") for a in planned)
    history = rig.ledger.history(limit=500)
    assert len(history) == sum(len(r.records) for r in result.results)
    # the same observation again: no ARM writes, no new history rows
    rig.sweep(mode="observe")
    assert rig.writes() == 0
    assert len(rig.ledger.history(limit=500)) == len(history)


def test_remediate_heals_the_fleet_and_explains_what_it_held(rig):
    first = rig.sweep()
    got = states(first)
    etl = "etl-workers"
    flex_failed = next(k[2] for k in got if k[0] == "ingest-flex" and k[1] == "create-timed-out")
    expected = {
        ("batch-jobs", "repairs-disabled", "*"): ("enable-automatic-repairs", "succeeded", ""),
        ("batch-jobs", "resilient-delete-disabled", "*"): ("enable-resilient-vm-delete", "succeeded", ""),
        ("batch-jobs", "resilient-create-disabled", "*"): (
            "enable-resilient-vm-create",
            "held",
            "feature-not-registered",
        ),
        ("legacy-app", "repairs-disabled", "*"): ("none", "held", "needs-health-source"),
        ("legacy-app", "health-monitoring-misconfigured", "*"): ("none", "held", "needs-person"),
        ("legacy-app", "resilient-delete-disabled", "*"): ("enable-resilient-vm-delete", "succeeded", ""),
        ("checkout-api", "health-monitoring-misconfigured", "*"): ("none", "held", "needs-person"),
        ("checkout-api", "unhealthy-not-repaired", "*"): ("none", "held", "storm-brake"),
        ("render-farm", "provisioning-failed", "*"): ("replace-failed-instances", "succeeded", ""),
        ("search-indexer", "repairs-suspended", "*"): ("resume-automatic-repairs", "succeeded", ""),
        ("cache-nodes", "grace-period", "*"): ("none", "held", "grace-period"),
        ("queue-workers", "unhealthy-not-repaired", "2"): ("repair-instances", "succeeded", ""),
        ("queue-workers", "unhealthy-not-repaired", "4"): ("repair-instances", "held", "protected"),
        ("ingest-flex", "create-timed-out", "*"): ("replace-failed-instances", "succeeded", ""),
        ("ingest-flex", "resilient-create-disabled", "*"): (
            "enable-resilient-vm-create",
            "held",
            "feature-not-registered",
        ),
        (etl, "delete-failed", "3"): ("retry-delete", "succeeded", ""),
        (etl, "delete-failed", "4"): ("retry-delete", "held", "platform-retrying"),
        ("ml-training", "provisioning-failed", "*"): ("replace-failed-instances", "held", "opt-out"),
        # suspended by alice@contoso.com (the fleet's Activity Log): hers to resume
        ("reports-api", "repairs-suspended", "*"): ("none", "held", "suspended-by-person"),
        # an AKS node pool: diagnosed, never changed (its node resource group is managed by the cluster)
        ("aks-pool1-38517204-vmss", "provisioning-failed", "*"): (
            "replace-failed-instances",
            "held",
            "owned-by-service",
        ),
        ("aks-pool1-38517204-vmss", "repairs-disabled", "*"): ("enable-automatic-repairs", "held", "owned-by-service"),
    }
    del flex_failed
    assert got == expected
    held = actions_by(first)[("batch-jobs", "resilient-create-disabled", "*")]
    assert (
        'az feature register --namespace "Microsoft.Compute" --name "ResilientVMScaleSetVMCreation"' in held["reason"]
    )
    ops = rig.ops()
    assert ops["VirtualMachineScaleSetVMs_Reimage"] == 1  # queue-workers repairs with its own repairAction
    assert ops["VirtualMachineScaleSets_SetOrchestrationServiceState"] == 1

    # Azure now shows the fleet healed, except what needs a person or is held back on purpose.
    left = {}
    for entry in rig.gateway.list_scale_sets():
        snap = rig.gateway.snapshot(entry)
        codes = {f.code.value for f in diagnose(snap, rig.settings, rig.now)}
        if codes:
            left[snap.name] = codes
    assert left == {
        "batch-jobs": {"resilient-create-disabled"},
        "legacy-app": {"repairs-disabled", "health-monitoring-misconfigured"},
        "checkout-api": {"health-monitoring-misconfigured", "unhealthy-not-repaired"},
        "cache-nodes": {"grace-period"},
        "search-indexer": {"grace-period"},  # resumed: the platform gets its grace period to repair
        "queue-workers": {"unhealthy-not-repaired"},  # instance 4 is protected: reported, never touched
        "ingest-flex": {"resilient-create-disabled"},
        "etl-workers": {"delete-failed"},  # the platform is still retrying instance 4
        "ml-training": {"provisioning-failed"},  # autoheal=off
        "reports-api": {"repairs-suspended"},  # alice suspended them: still hers to resume
        "aks-pool1-38517204-vmss": {"provisioning-failed", "repairs-disabled"},  # AKS's to repair
    }
    capacities = {
        name: rig.emu.scale_set(rg, name)["sku"]["capacity"]
        for rg, name in [("rg-platform", "render-farm"), ("rg-data", "ingest-flex")]
    }
    assert capacities == {"render-farm": 4, "ingest-flex": 3}

    # The same sweep again acts on nothing: no ARM write. Its only new record is what our resume changed:
    # search-indexer's unhealthy instance is now inside the platform's fresh grace period.
    writes = rig.writes()
    seen = {(e.scale_set_id, e.finding_code, e.target, e.state, e.at) for e in rig.ledger.history(limit=500)}
    rig.sweep()
    assert rig.writes() == writes
    new = [
        e
        for e in rig.ledger.history(limit=500)
        if (e.scale_set_id, e.finding_code, e.target, e.state, e.at) not in seen
    ]
    assert [(e.scale_set_id.rsplit("/", 1)[-1], e.finding_code, e.action, e.state) for e in new] == [
        ("search-indexer", "grace-period", "none", "held")
    ]
    # and a third sweep finds a steady state: nothing written anywhere
    count = len(rig.ledger.history(limit=500))
    rig.sweep()
    assert rig.writes() == writes
    assert len(rig.ledger.history(limit=500)) == count
