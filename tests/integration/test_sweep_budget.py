"""A sweep that fits in Compute's budget (issue 12): it defers what does not fit instead of draining the
customer's buckets, and the next sweep goes on from the cursor kept in the ledger."""

from __future__ import annotations

import pytest

from autoheal.gateway import ComputeBudget
from autoheal.gateway.budget import VMSS_HIGH_COST_GET
from emulator import fleetgen
from tests.integration.rig import Rig, remediate_settings

# Azure's two recorded forms of x-ms-ratelimit-remaining-resource (emulator/README.md, "Header forms"): every
# budget test runs against both.
HEADER_FORMS = ("windowed", "repeated")


@pytest.fixture(params=HEADER_FORMS)
def start_emulator(request, start_emulator):
    """The shared fixture, with the emulator writing Compute's headers in one of Azure's forms."""

    def start(fleet=None, **options):
        return start_emulator(fleet, rate_limit_header_form=request.param, **options)

    return start


def make(start_emulator, gateway_for, ledger, count: int, **settings):
    emu = start_emulator(
        fleetgen.fleet(*[fleetgen.scale_set(f"s{i:02d}", automatic_repairs=True) for i in range(count)])
    )
    return Rig(emu, gateway_for(emu), ledger, remediate_settings(emu, sweep_concurrency=1, **settings))


def test_a_drained_share_defers_the_rest_and_the_next_sweep_continues(start_emulator, gateway_for, ledger):
    rig = make(start_emulator, gateway_for, ledger, 8, mode="observe")
    # 1 % of VMSS High Cost Get: a burst of 10 tokens; a Uniform scale set's health read costs 2
    rig.gateway.budget = ComputeBudget(share=0.01)
    first = rig.engine().sweep(slice_seconds=2)
    read = [r.scale_set_id.rsplit("/", 1)[-1] for r in first.results if not r.deferred]
    deferred = [r for r in first.results if r.deferred]
    assert read and deferred, (read, len(deferred))
    assert all(r.error is None for r in first.results)
    assert first.arm["throttled"] == 0
    assert first.coverage is not None and first.coverage["readLastSweep"] == len(read)
    assert first.arm["compute"]["deferred"] >= 1

    rig.gateway.budget = ComputeBudget(share=0.01)  # the next tick, the share refilled
    second = rig.engine().sweep(slice_seconds=2)
    again = [r.scale_set_id.rsplit("/", 1)[-1] for r in second.results if not r.deferred]
    assert again and not set(again) & set(read), "the rotation went on from the cursor"
    assert again[0] == f"s{len(read):02d}"


def test_every_scale_set_is_read_when_the_budget_allows_and_a_lap_is_recorded(start_emulator, gateway_for, ledger):
    rig = make(start_emulator, gateway_for, ledger, 5, mode="observe")
    rig.gateway.budget = ComputeBudget(share=0.25)
    result = rig.engine().sweep()
    assert not any(r.deferred for r in result.results)
    assert result.coverage["position"] == 0 and result.coverage["lastLapSeconds"] is not None
    assert result.arm["compute"]["spent"][VMSS_HIGH_COST_GET] == 1 + 2 * 5  # the list, then view + VMs each


def test_a_suspect_resource_graph_shows_is_read_first_from_arm(start_emulator, gateway_for, graph_for, ledger):
    """Issue 12: the inventory comes from Resource Graph (no Compute list call); a scale set with a failed
    instance there is a suspect, read from ARM (the scale set itself too: ARG lags) before the rotation."""
    healthy = [
        fleetgen.scale_set(f"a{i:02d}", automatic_repairs=True, resilient_creation=True, resilient_deletion=True)
        for i in range(6)
    ]
    sick = fleetgen.scale_set(
        "z-sick",
        automatic_repairs=True,
        resilient_creation=True,
        resilient_deletion=True,
        failed={1: "VMExtensionProvisioningError"},
    )
    emu = start_emulator(fleetgen.fleet(*healthy, sick))
    rig = Rig(emu, gateway_for(emu), ledger, remediate_settings(emu, sweep_concurrency=1, mode="observe"))
    result = engine_with(rig, graph_for(emu)).sweep()
    assert result.arm["inventory"] == "resource-graph" and result.suspects == 1
    assert result.results[0].scale_set_id.endswith("/z-sick")  # first, though last in the ring's order
    assert {f.code.value for f in result.results[0].findings} == {"provisioning-failed"}
    ops = emu.stats()["byOperation"]
    assert "VirtualMachineScaleSets_ListAll" not in ops
    assert ops["VirtualMachineScaleSets_Get"] == 1  # only the suspect is re-read from ARM
    assert result.arm["resourceGraph"]["queries"] == 4


# Issue 19: the parser takes `HighCostGetVMScaleSet30Min;790` (or the repeated form's last entry) as the long bucket
# of VMSS High Cost Get, whose floor is the documented 75 % of 1,080, not 75 % of the 791 seen first.
def test_nearly_empty_compute_buckets_make_the_sweep_defer_not_get_429s(start_emulator, gateway_for, graph_for, ledger):
    """Issue 12: others have drained VMSS High Cost Get below our floor; the sweep waits within its slice, then
    defers the rest, and never gets a 429."""
    emu = start_emulator(
        fleetgen.fleet(
            *[fleetgen.scale_set(f"s{i:02d}", automatic_repairs=True) for i in range(5)],
            faults={"computeBuckets": {"HighCostGetVMScaleSetSubscription": {"remaining": 790}}},
        )
    )
    rig = Rig(emu, gateway_for(emu), ledger, remediate_settings(emu, sweep_concurrency=1, mode="observe"))
    rig.gateway.budget = ComputeBudget(share=0.25)
    result = engine_with(rig, graph_for(emu)).sweep(slice_seconds=3)
    # the first answer tells the budget where the bucket stands; from then on it waits for the refill
    read = [r for r in result.results if not r.deferred]
    assert len(read) <= 1 and len(result.results) - len(read) >= 4, [r.deferred for r in result.results]
    assert result.arm["throttled"] == 0 and emu.stats()["computeThrottled"] == {}
    assert result.arm["compute"]["deferred"] >= 1


def engine_with(rig, graph):
    from autoheal.sources import ResourceGraphInventory

    engine = rig.engine()
    engine.inventory = ResourceGraphInventory(graph, rig.gateway)
    return engine
