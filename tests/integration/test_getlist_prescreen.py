"""The suspect stage pre-screened through Resource Graph's GET/LIST API (AUTOHEAL_SUSPECT_PRESCREEN=get-list).

Source: MicrosoftDocs/azure-docs `articles/governance/resource-graph/concepts/azure-resource-graph-get-list-api.md`:
ARM's Compute list paths with `useResourceGraph=true` answer from ARG, seconds fresh, with no Compute bucket spent
and no "VMSS VM health status"; a 422 means "fall back to the resource provider". Resource Graph's query (the
inventory) lags ARM by about a minute, emulated here by pinning a scale set's rows (`resourceGraph.stale`).
"""

from __future__ import annotations

from autoheal.gateway.resourcegraph import ResourceGraphGateway
from autoheal.sources import ResourceGraphInventory
from emulator import fleetgen
from tests.integration.rig import Rig, remediate_settings

RG = "rg-app"


def _healthy(count: int) -> list[dict]:
    return [
        fleetgen.scale_set(f"a{i:02d}", automatic_repairs=True, resilient_creation=True, resilient_deletion=True)
        for i in range(count)
    ]


def _sick(name: str, **extra) -> dict:
    return fleetgen.scale_set(
        name,
        capacity=4,
        automatic_repairs=True,
        resilient_creation=True,
        resilient_deletion=True,
        failed={1: "VMExtensionProvisioningError"},
        **extra,
    )


def _sweep(rig: Rig, *, prescreen: bool = True):
    graph = ResourceGraphGateway(rig.emu.subscription_id, endpoint=rig.emu.endpoint, ca_bundle=rig.emu.ca_bundle)
    try:
        engine = rig.engine()
        inventory = ResourceGraphInventory(graph, rig.gateway, prescreen=prescreen, concurrency=2)
        engine.inventory = inventory
        return engine.sweep(), inventory.prescreen_figures.figures()
    finally:
        graph.close()


def _scale_set_id(emu, name: str) -> str:
    provider = f"/subscriptions/{emu.subscription_id}/resourceGroups/{RG}/providers/Microsoft.Compute"
    return f"{provider}/virtualMachineScaleSets/{name}"


def test_a_suspect_confirmed_by_get_list_is_read_from_compute_and_healed(start_emulator, gateway_for, ledger):
    emu = start_emulator(fleetgen.fleet(*_healthy(4), _sick("z-sick")))
    rig = Rig(emu, gateway_for(emu), ledger, remediate_settings(emu, sweep_concurrency=1))
    result, figures = _sweep(rig)
    assert figures == {"screened": 1, "cleared": 0, "fallbacks": 0}
    assert result.suspects == 1 and result.results[0].scale_set_id.endswith("/z-sick")
    decisions = {d["findingCode"]: d for d in result.results[0].decisions()}
    assert (decisions["provisioning-failed"]["code"], decisions["provisioning-failed"]["state"]) == (
        "replace-failed-instances",
        "succeeded",
    )
    assert all(vm["properties"]["provisioningState"] == "Succeeded" for vm in emu.instances(RG, "z-sick"))
    ops = rig.ops()
    assert ops["ArgGetList_VirtualMachineScaleSetVMs_List"] == 1  # the pre-screen: no Compute token
    assert ops["VirtualMachineScaleSets_Get"] >= 1  # the suspect is still re-read from ARM before acting


def test_a_stale_suspect_is_cleared_and_an_unhealthy_only_instance_is_found_by_the_rotation(
    start_emulator, gateway_for, ledger
):
    """Resource Graph's query still shows instance 1 Failed (a minute old); in ARM it is gone. GET/LIST shows
    nothing wrong, so the scale set waits for the rotation — which reads it from Compute with health and finds
    instance 2 unhealthy, which GET/LIST cannot show."""
    emu = start_emulator(fleetgen.fleet(*_healthy(3), _sick("z-stale", unhealthy=[2])))
    rig = Rig(emu, gateway_for(emu), ledger, remediate_settings(emu, sweep_concurrency=1, mode="observe"))
    emu.resource_graph.pin(_scale_set_id(emu, "z-stale"))  # ARG's query keeps the failed instance
    rig.gateway.delete_instances(rig.gateway.snapshot_by_name(RG, "z-stale"), ["1"])
    assert "1" not in {vm["instanceId"] for vm in emu.instances(RG, "z-stale")}
    rig.emu.reset_stats()

    result, figures = _sweep(rig)
    assert figures == {"screened": 1, "cleared": 1, "fallbacks": 0}
    assert result.suspects == 0
    assert "VirtualMachineScaleSets_Get" not in rig.ops()  # no ARM refresh for a cleared suspect
    stale = next(r for r in result.results if r.scale_set_id.endswith("/z-stale"))
    assert not stale.deferred and stale.error is None  # the rotation read it
    assert any("2" in f.instance_ids for f in stale.findings), [(f.code, f.instance_ids) for f in stale.findings]
    assert stale.snapshot is not None and stale.snapshot.instance("2").health is not None


def test_a_422_falls_back_to_the_resource_provider_and_loses_nothing(start_emulator, gateway_for, ledger):
    fleet = fleetgen.fleet(*_healthy(3), _sick("z-sick"))
    emu = start_emulator(fleet)
    fleet["argGetList"] = {"unprocessable": [_scale_set_id(emu, "z-sick")]}
    emu.load_fleet(fleet)
    rig = Rig(emu, gateway_for(emu), ledger, remediate_settings(emu, sweep_concurrency=1, mode="observe"))
    result, figures = _sweep(rig)
    assert figures == {"screened": 1, "cleared": 0, "fallbacks": 1}
    assert result.suspects == 1 and result.results[0].scale_set_id.endswith("/z-sick")
    assert {f.code.value for f in result.results[0].findings} == {"provisioning-failed"}
    assert rig.ops()["ArgGetList_VirtualMachineScaleSetVMs_List"] == 1


def test_prescreen_off_reads_suspects_from_compute_as_before(start_emulator, gateway_for, ledger):
    emu = start_emulator(fleetgen.fleet(*_healthy(2), _sick("z-sick")))
    rig = Rig(emu, gateway_for(emu), ledger, remediate_settings(emu, sweep_concurrency=1, mode="observe"))
    result, figures = _sweep(rig, prescreen=False)
    assert figures["screened"] == 0 and result.suspects == 1
    assert not any(op.startswith("ArgGetList_") for op in rig.ops())


def test_flexible_suspects_are_screened_through_the_filtered_vm_list(start_emulator, gateway_for, ledger):
    emu = start_emulator(fleetgen.fleet(*_healthy(2), _sick("z-flex", orchestration="Flexible")))
    rig = Rig(emu, gateway_for(emu), ledger, remediate_settings(emu, sweep_concurrency=1, mode="observe"))
    result, figures = _sweep(rig)
    assert figures == {"screened": 1, "cleared": 0, "fallbacks": 0}
    assert result.results[0].scale_set_id.endswith("/z-flex")
    assert rig.ops()["ArgGetList_VirtualMachines_List"] == 1
