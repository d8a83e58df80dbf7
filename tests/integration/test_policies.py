"""Meter, pacing and Compute's budget as pipeline policies (autoheal/gateway/policies.py): SDK writes, LRO
polls and every client are counted and budgeted, not only the gateway's raw reads (issue 21 item 4)."""

from __future__ import annotations

import time

import pytest

from autoheal.gateway import DEADLINE, BudgetExhausted, ComputeBudget
from autoheal.gateway import policies as p
from autoheal.gateway.budget import VMSS_LOW_COST_GET
from emulator import fleetgen

RG = "rg-app"


@pytest.fixture
def emu(start_emulator):
    return start_emulator(fleetgen.fleet(fleetgen.scale_set("web", capacity=3, automatic_repairs=True)))


def test_sdk_writes_and_their_polls_are_metered_and_budgeted(emu, gateway_for):
    gateway = gateway_for(emu, budget=ComputeBudget(share=0.25))
    gateway.update_scale_set(RG, "web", {"tags": {"a": "b"}})
    snap = gateway.snapshot_by_name(RG, "web", instance_view=False)
    gateway.delete_instances(snap, [snap.instances[-1].instance_id])
    spent = gateway.budget.figures()["spent"]
    assert spent[p.VMSS_ACTIONS] == 2  # the PATCH and delete-instances, as Azure's recordings charge them
    polls = emu.stats()["byOperation"].get("LongRunningOperation_Status", 0)
    assert polls >= 2 and spent[p.GET_OPERATION] == polls  # every poll of both operations
    assert spent[VMSS_LOW_COST_GET] >= 1  # the read, as before
    meter = gateway.meter.figures()
    assert meter["writes"] == 2 and meter["reads"] == emu.stats()["reads"]
    # the write's answers taught the budget their buckets too (the figures show how low they went)
    assert any(name.startswith("VMScaleSetActions") for name in gateway.budget.figures()["buckets"])


def test_a_read_past_the_deadline_defers_but_a_write_waits(emu, gateway_for):
    slept: list[float] = []
    budget = ComputeBudget(share=0.001, sleep=slept.append)  # 0.1 %: a burst of one or two tokens, then waits
    gateway = gateway_for(emu, budget=budget)
    token = DEADLINE.set(time.monotonic())  # no time left at all
    try:
        with pytest.raises(BudgetExhausted):
            for _ in range(5):
                gateway.get_scale_set(RG, "web")
        for _ in range(3):
            gateway.update_scale_set(RG, "web", {"tags": {"n": "1"}})
    finally:
        DEADLINE.reset(token)
    assert budget.figures()["deferred"] == 1
    assert emu.stats()["byOperation"]["VirtualMachineScaleSets_Update"] == 3  # no write deferred ...
    assert slept, "... but our share of VMSS actions made the later ones wait"


def test_resource_graph_requests_cross_the_meter_policy(emu, graph_for):
    graph = graph_for(emu)
    rows = list(graph.query("resources | where type =~ 'microsoft.compute/virtualmachinescalesets' | project id"))
    assert len(rows) == 1
    assert graph.wire.requests == graph.meter.pages == 1
