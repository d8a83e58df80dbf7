"""The inventory through the real azure-mgmt-resourcegraph client over HTTPS against the emulator: paging,
quota pacing, a 429 honoured, the stale view, errors, and the demo fleet's suspects."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

import emulator
from autoheal import inventory
from autoheal.gateway import ArmError, all_required_actions
from autoheal.gateway.resourcegraph import API_VERSION
from emulator import fleetgen

DEMO_FLEET = Path(emulator.__file__).parent / "fleets" / "demo.json"


def small_fleet():
    return fleetgen.fleet(
        fleetgen.scale_set("web", capacity=4, automatic_repairs=True, unhealthy=[1], failed=[2], tags={"team": "a"}),
        fleetgen.scale_set("jobs", orchestration="Flexible", capacity=3, failed=[0], resilient_deletion=True),
        fleetgen.scale_set("aks-nodes", resource_group="MC_rg_aks_westeurope", capacity=2),
        resource_graph={"managedBy": {"MC_rg_aks_westeurope": "/subscriptions/s/resourceGroups/rg/aks"}},
    )


def test_api_version_is_the_sdks_and_the_query_declares_its_rbac(start_emulator, graph_for):
    gateway = graph_for(start_emulator(small_fleet()))
    assert gateway.api_version == API_VERSION
    assert "Microsoft.ResourceGraph/resources/read" in all_required_actions()


def test_scale_set_rows_stand_in_for_the_arm_resource(start_emulator, graph_for, gateway_for):
    emu = start_emulator(small_fleet())
    rows = {row.name: row for row in inventory.read_scale_sets(graph_for(emu))}
    assert sorted(rows) == ["aks-nodes", "jobs", "web"]
    web = rows["web"]
    assert (web.capacity, web.orchestration_mode, web.tags, web.repairs.enabled) == (4, "Uniform", {"team": "a"}, True)
    assert rows["jobs"].is_flexible and rows["jobs"].resiliency.delete_enabled
    # The Compute gateway takes the ARG row's resource as it takes ARM's: the same snapshot.
    compute = gateway_for(emu)
    for row in rows.values():
        arm = emu.scale_set(row.resource_group, row.name)
        assert row.resource == {k: v for k, v in arm.items() if k != "etag" and v not in ({}, None)}
        from_arg = compute.snapshot(row.resource)
        from_arm = compute.snapshot(compute.get_scale_set(row.resource_group, row.name))
        assert dataclasses.replace(from_arg, read_at=from_arm.read_at) == from_arm


def test_suspects_and_managed_resource_groups(start_emulator, graph_for):
    emu = start_emulator(small_fleet())
    gateway = graph_for(emu)
    suspects = inventory.read_suspects(gateway)
    by_name = {key.rsplit("/", 1)[-1]: group for key, group in suspects.items()}
    assert sorted(by_name) == ["jobs", "web"]
    assert [(s.instance_id, s.provisioning_state, s.flexible) for s in by_name["web"]] == [("2", "Failed", False)]
    (flexible,) = by_name["jobs"]
    assert flexible.flexible and flexible.provisioning_state == "Failed" and flexible.instance_id.startswith("jobs_")
    assert flexible.time_created is not None
    assert inventory.read_managed_resource_groups(gateway) == {
        "mc_rg_aks_westeurope": "/subscriptions/s/resourceGroups/rg/aks"
    }
    assert gateway.meter.figures()["queries"] == 3 and emu.stats()["byOperation"] == {"Resources": 3}


def test_the_demo_fleets_suspects_are_all_found(start_emulator, graph_for):
    document = json.loads(DEMO_FLEET.read_text(encoding="utf-8"))
    expected = set()
    for entry in document["scaleSets"]:
        flexible = entry["resource"]["properties"].get("orchestrationMode") == "Flexible"
        for vm in entry["virtualMachines"]:
            if vm["properties"]["provisioningState"] != "Succeeded":
                key = vm["name"] if flexible else vm["instanceId"]
                expected.add((entry["resource"]["id"].lower(), key, vm["properties"]["provisioningState"]))
    assert len(expected) >= 5  # the demo seeds Uniform and Flexible failures
    suspects = inventory.read_suspects(graph_for(start_emulator(DEMO_FLEET)))
    found = {(s.scale_set_key, s.instance_id, s.provisioning_state) for group in suspects.values() for s in group}
    assert found == expected


def test_pages_stream_across_thousands_of_rows(start_emulator, graph_for):
    # 28 scale sets x 100 Failed instances: 2,800 suspects, three pages of at most 1,000.
    fleet = fleetgen.fleet(*[fleetgen.scale_set(f"s{i:02d}", capacity=100, failed=range(100)) for i in range(28)])
    emu = start_emulator(fleet)
    gateway = graph_for(emu)
    rows = gateway.query(inventory.UNIFORM_SUSPECTS_QUERY)
    next(rows)
    assert emu.stats()["byOperation"]["Resources"] == 1  # one page fetched for the first row, no more
    ids = [row["id"] for row in rows]
    assert len(ids) == 2799 and len(set(ids)) == 2799
    meter = gateway.meter.figures()
    assert (meter["queries"], meter["pages"], meter["rows"]) == (1, 3, 2800)
    grouped = inventory.suspects_by_scale_set(gateway.query(inventory.UNIFORM_SUSPECTS_QUERY))
    assert len(grouped) == 28 and all(len(group) == 100 for group in grouped.values())


def test_a_tiny_quota_is_paced_and_never_throttled(start_emulator, graph_for):
    emu = start_emulator(small_fleet())
    emu.resource_graph.configure({"quota": 3, "windowSeconds": 1})
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the gateway's own pacing, recorded (and really waited: the quota is real)
        waits.append(seconds)
        time.sleep(seconds)

    gateway = graph_for(emu, sleep=sleep)
    for _ in range(7):
        # the two resource groups and, since issue 22, the subscription itself (a resourcecontainers row in ARG)
        assert len(list(gateway.query("resourcecontainers | project id, name"))) == 3
    meter = gateway.meter.figures()
    assert emu.stats()["throttled"] == 0 and meter["throttled"] == 0
    # 7 queries on a quota of 3 a window: the gateway paced before the 4th and the 7th, never hitting a 429.
    assert len(waits) >= 2 and meter["pacingSeconds"] == pytest.approx(sum(waits), abs=0.01)


def test_a_429_is_honoured_by_arg_headers(start_emulator, graph_for):
    emu = start_emulator(small_fleet())
    emu.resource_graph.configure({"quota": 1, "windowSeconds": 1})
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    # One identity, two gateways: the second knows nothing of the quota the first spent.
    first, second = graph_for(emu), graph_for(emu, sleep=sleep)
    list(first.query("resourcecontainers | project id"))
    # two resource groups and the subscription (a resourcecontainers row too)
    assert len(list(second.query("resourcecontainers | project id"))) == 3
    assert second.meter.figures()["throttled"] == 1 and emu.stats()["throttled"] == 1
    assert waits == [1.0]  # x-ms-user-quota-resets-after: 00:00:01


def test_throttling_that_does_not_end_is_a_transient_arm_error(start_emulator, graph_for):
    emu = start_emulator(small_fleet())
    emu.resource_graph.configure({"quota": 1, "windowSeconds": 60})
    list(graph_for(emu).query("resourcecontainers | project id"))
    impatient = graph_for(emu, throttle_retries=1, sleep=lambda seconds: None)
    with pytest.raises(ArmError) as caught:
        list(impatient.query("resourcecontainers | project id"))
    assert (caught.value.code, caught.value.status, caught.value.transient) == ("RateLimiting", 429, True)
    assert impatient.meter.figures()["throttled"] == 2


def test_a_query_outside_the_subset_is_a_clear_error(start_emulator, graph_for):
    gateway = graph_for(start_emulator(small_fleet()))
    with pytest.raises(ArmError) as caught:
        list(gateway.query("resources | summarize count() by type"))
    error = caught.value
    assert (error.code, error.status, error.transient) == ("InvalidQuery", 400, False)
    assert "summarize" in error.message and "Query is invalid" in error.message


def test_an_unpageable_result_is_an_error_not_a_silent_truncation(start_emulator, graph_for):
    gateway = graph_for(start_emulator(small_fleet()), page_size=2)
    with pytest.raises(ArmError) as caught:
        list(gateway.query("computeresources | project name"))
    assert caught.value.code == "ResultTruncated"


def test_a_stale_view_shows_what_arm_no_longer_has(start_emulator, graph_for, gateway_for):
    emu = start_emulator(small_fleet())
    emu.clock.freeze()
    emu.resource_graph.configure({"lagSeconds": 60})
    graph = graph_for(emu)
    assert "2" in [s.instance_id for group in inventory.read_suspects(graph).values() for s in group]
    compute = gateway_for(emu)
    compute.delete_instances(compute.snapshot_by_name("rg-app", "web"), ["2"])
    stale = inventory.read_suspects(graph)
    assert [s.instance_id for s in stale[next(k for k in stale if k.endswith("/web"))]] == ["2"]
    # ARM is the truth before any write: the authoritative read no longer has the instance.
    assert "2" not in [i.instance_id for i in compute.snapshot_by_name("rg-app", "web").instances]
    emu.clock.advance(60)
    assert not any(k.endswith("/web") for k in inventory.read_suspects(graph))


def test_a_server_error_is_retried_and_one_that_persists_is_transient(start_emulator, graph_for):
    emu = start_emulator(small_fleet())
    arg = {"method": "POST", "operation": "Resources", "status": 503, "code": "ServiceUnavailable", "message": "x"}
    emu.set_faults({"injections": [{**arg, "count": 1}]})
    gateway = graph_for(emu, retry_backoff_factor=0.01)
    assert (
        len(list(gateway.query("resourcecontainers | project id"))) == 3
    )  # azure-core retried the POST (two groups and the subscription)
    assert emu.stats()["faultsInjected"] == 1 and emu.stats()["byOperation"]["Resources"] == 2
    emu.set_faults({"injections": [{**arg, "status": 500, "code": "InternalServerError", "count": None}]})
    with pytest.raises(ArmError) as caught:
        list(graph_for(emu, retry_total=1, retry_backoff_factor=0.01).query("resourcecontainers | project id"))
    assert (caught.value.status, caught.value.code, caught.value.transient) == (500, "InternalServerError", True)


def test_a_quota_reserve_leaves_room_for_another_caller(start_emulator, graph_for):
    emu = start_emulator(small_fleet())
    emu.resource_graph.configure({"quota": 3, "windowSeconds": 1})
    sweep, event = graph_for(emu, quota_reserve=1), graph_for(emu)
    for _ in range(2):
        list(sweep.query("resourcecontainers | project id"))
    list(event.query("resourcecontainers | project id"))  # the slot the sweep left free
    list(sweep.query("resourcecontainers | project id"))  # waits for the next window instead of a 429
    assert sweep.meter.figures()["pacingSeconds"] > 0 and emu.stats()["throttled"] == 0
