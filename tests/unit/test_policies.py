"""Which Compute policy a request spends, read from the request itself (autoheal/gateway/policies.py): plain data.

Rows of Microsoft's "Compute throttling limits" article (learn.microsoft.com/azure/virtual-machines/
compute-throttling-limits); the choices the article leaves open follow emulator/compute_limits.py (marked
unverified there).
"""

from __future__ import annotations

import pytest

from autoheal.gateway import budget
from autoheal.gateway import policies as p

ARM = "https://management.azure.com"
SUB = "/subscriptions/s"
VMSS = f"{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets"
VMS = f"{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines"


@pytest.mark.parametrize(
    ("method", "path", "policy", "kind", "read"),
    [
        ("GET", f"{SUB}/providers/Microsoft.Compute/virtualMachineScaleSets", budget.VMSS_HIGH_COST_GET, None, True),
        ("GET", VMSS, budget.VMSS_HIGH_COST_GET, None, True),
        ("GET", f"{VMSS}/web", budget.VMSS_LOW_COST_GET, None, True),
        ("GET", f"{VMSS}/web/instanceView", budget.VMSS_HIGH_COST_GET, "scale set instance view", True),
        ("GET", f"{VMSS}/web/virtualMachines", budget.VMSS_HIGH_COST_GET, "scale set VM list", True),
        ("get", f"{VMSS}/WEB/VirtualMachines/3", budget.SCALE_SET_VMS_GET, None, True),
        ("GET", VMS, budget.VM_HIGH_COST_GET, None, True),
        ("GET", f"{VMS}/vm1", budget.VM_LOW_COST_GET, None, True),
        ("GET", f"{SUB}/providers/Microsoft.Compute/locations/westeurope/operations/op1", p.GET_OPERATION, None, True),
        # as Azure's recordings charge them (tests/recorded/: ps-flexible-resiliency-patch, cli-osstate-suspend-post,
        # cli2024-delete-instances-post, cli2024-deallocate-post, net-vmss-vm-restart-post)
        ("PATCH", f"{VMSS}/web", p.VMSS_ACTIONS, None, False),
        ("POST", f"{VMSS}/web/setOrchestrationServiceState", p.VMSS_ACTIONS, None, False),
        ("POST", f"{VMSS}/web/delete", p.VMSS_ACTIONS, None, False),
        ("POST", f"{VMSS}/web/deallocate", p.VMSS_DELETE, None, False),
        ("DELETE", f"{VMSS}/web", p.VMSS_DELETE, None, False),
        ("POST", f"{VMSS}/web/virtualMachines/3/reimage", p.SCALE_SET_VM_ACTIONS, None, False),
        ("DELETE", f"{VMSS}/web/virtualMachines/3", p.SCALE_SET_VMS_DELETE, None, False),
        ("DELETE", f"{VMS}/vm1", p.VM_DELETE, None, False),
        ("POST", f"{VMS}/vm1/restart", p.VM_UPDATE, None, False),
        ("GET", f"{SUB}/providers/Microsoft.Compute/skus", p.OTHER_COMPUTE, None, True),
    ],
)
def test_compute_requests_spend_their_documented_policy(method, path, policy, kind, read):
    charge = p.charge_of(method, f"{ARM}{path}?api-version=2026-04-01&$skiptoken=x")
    assert charge == p.Charge(policy, kind or policy, read)


@pytest.mark.parametrize(
    "path",
    [
        f"{SUB}/resourcegroups",
        "/providers/Microsoft.ResourceGraph/resources",
        f"{SUB}/providers/Microsoft.Insights/eventtypes/management/values",
        "/Microsoft.Compute/virtualMachineScaleSets",  # no providers/ segment: not an ARM provider path
    ],
)
def test_other_providers_spend_no_compute_policy(path):
    assert p.charge_of("GET", f"{ARM}{path}") is None


def test_resource_graph_get_list_spends_no_compute_policy():
    """`useResourceGraph=true` routes a Compute GET to Resource Graph (learn.microsoft.com/azure/governance/
    resource-graph/concepts/azure-resource-graph-get-list-api): ARG's quota, not Compute's buckets."""
    url = f"{ARM}{VMSS}/web/virtualMachines?api-version=1&$expand=instanceView&useResourceGraph=true"
    assert p.charge_of("GET", url) is None


def test_policy_list_for_a_client():
    meter = p.ArmMeter()
    assert [type(x) for x in p.arm_policies()] == []
    assert [type(x) for x in p.arm_policies(meter)] == [p.MeterPolicy]
    listed = p.arm_policies(meter, budget=budget.ComputeBudget(), reads_reserve=10)
    assert [type(x) for x in listed] == [p.PacingPolicy, p.ComputeBudgetPolicy, p.MeterPolicy]
    kept = p.ComputeBudgetPolicy(None)  # a gateway keeps its policy to swap the budget later
    assert p.arm_policies(budget=kept) == [kept]
