"""The one resource-id parser, as a table: what is accepted, what is rejected and why (issue 13 item 2)."""

from __future__ import annotations

import pytest

from autoheal.resource_ids import IdProblem, InvalidResourceId, parse, segments

SUB = "6f1d3c2a-8b4e-4d7f-9a0c-1e2f3a4b5c6d"
BASE = f"/subscriptions/{SUB}/resourceGroups/rg-shop/providers/Microsoft.Compute"
VMSS = f"{BASE}/virtualMachineScaleSets/web"


@pytest.mark.parametrize(
    ("resource_id", "expected"),
    [
        (VMSS, ("virtualMachineScaleSets", "rg-shop", "web", "")),
        (VMSS + "/virtualMachines/3", ("virtualMachineScaleSets", "rg-shop", "web", "3")),
        (VMSS + "/virtualMachines/3/networkInterfaces/nic0", ("virtualMachineScaleSets", "rg-shop", "web", "3")),
        (VMSS.upper().replace(SUB.upper(), SUB), ("virtualMachineScaleSets", "RG-SHOP", "WEB", "")),
        (f"{BASE}/virtualMachines/app_1a2b", ("virtualMachines", "rg-shop", "app_1a2b", "")),
        (VMSS.replace("rg-shop", "rg.(prod)_1"), ("virtualMachineScaleSets", "rg.(prod)_1", "web", "")),
        (VMSS + "/", ("virtualMachineScaleSets", "rg-shop", "web", "")),
    ],
)
def test_accepted(resource_id, expected):
    parsed = parse(resource_id, subscription_id=SUB)
    assert (parsed.type, parsed.resource_group, parsed.name, parsed.child) == expected


@pytest.mark.parametrize(
    ("resource_id", "problem"),
    [
        (None, IdProblem.NOT_A_STRING),
        (42, IdProblem.NOT_A_STRING),
        ("x" * 2000, IdProblem.TOO_LONG),
        ("subscriptions/x", IdProblem.NOT_AN_ID),
        (f"/subscriptions/{SUB}/resourceGroups/rg", IdProblem.NOT_AN_ID),
        (
            f"/tenants/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web",
            IdProblem.NOT_AN_ID,
        ),
        (VMSS + "/virtualMachines/../../../virtualMachineScaleSets/other", IdProblem.DOT_SEGMENT),
        (VMSS.replace("/web", "/./web"), IdProblem.DOT_SEGMENT),
        (VMSS.replace("/providers", "//providers"), IdProblem.EMPTY_SEGMENT),
        (VMSS.replace("/web", "/we%2Fb"), IdProblem.ENCODED),
        (VMSS.replace("/web", "/%2e%2e"), IdProblem.ENCODED),
        (VMSS + "?api-version=1", IdProblem.BAD_CHARACTER),
        (VMSS + "#x", IdProblem.BAD_CHARACTER),
        (VMSS.replace("/web", "/w\x00eb"), IdProblem.BAD_CHARACTER),
        (VMSS.replace("/web", "/w\\eb"), IdProblem.BAD_CHARACTER),
        (VMSS.replace("/web", "/we b"), IdProblem.WHITESPACE),
        # refused, not trimmed: ARM names never start or end with whitespace (issue 21)
        (VMSS.replace("/web", "/ web "), IdProblem.WHITESPACE),
        (VMSS.replace("/web", "/web\t"), IdProblem.BAD_CHARACTER),
        (VMSS.replace("/web", "/web\u00a0"), IdProblem.WHITESPACE),
        (VMSS.replace("/web", "/web\u0085"), IdProblem.BAD_CHARACTER),  # C1 control (next line)
        (VMSS.replace("rg-shop", " rg-shop"), IdProblem.WHITESPACE),
        (VMSS.replace("/resourceGroups", " /resourceGroups"), IdProblem.WHITESPACE),
        (" " + VMSS, IdProblem.WHITESPACE),
        (VMSS + "\n", IdProblem.BAD_CHARACTER),
        (VMSS.replace(SUB, "{subscription-id}"), IdProblem.BAD_SUBSCRIPTION),
        (VMSS.replace(SUB, "00000000-0000-0000-0000-000000000001"), IdProblem.FOREIGN_SUBSCRIPTION),
        (VMSS.replace("Microsoft.Compute", "Microsoft.Storage"), IdProblem.WRONG_PROVIDER),
        (f"{BASE}/disks/d1", IdProblem.WRONG_PROVIDER),
        (VMSS.replace("/web", "/" + "w" * 65), IdProblem.BAD_NAME),
        (VMSS.replace("/web", "/wéb"), IdProblem.BAD_NAME),
        (VMSS.replace("/web", "/-web;rm"), IdProblem.BAD_NAME),
        (VMSS.replace("rg-shop", "r" * 91), IdProblem.BAD_NAME),
        (VMSS.replace("rg-shop", "rg."), IdProblem.BAD_NAME),
        (VMSS + "/virtualMachines/3;drop", IdProblem.BAD_NAME),
    ],
)
def test_rejected_with_a_reason(resource_id, problem):
    with pytest.raises(InvalidResourceId) as caught:
        parse(resource_id, subscription_id=SUB)
    assert caught.value.problem is problem and str(caught.value)


def test_canonical_form_and_scale_set_of_an_instance():
    parsed = parse(VMSS + "/virtualMachines/3", subscription_id=SUB)
    assert parsed.scale_set_id == VMSS
    assert str(parsed) == VMSS + "/virtualMachines/3"
    assert parse(f"{BASE}/virtualMachines/vm1").scale_set_id == ""


def test_lenient_segments_for_trusted_ids():
    assert segments(VMSS + "/virtualMachines/3") == {
        "subscriptions": SUB,
        "resourcegroups": "rg-shop",
        "provider": "Microsoft.Compute",
        "virtualmachinescalesets": "web",
        "virtualmachines": "3",
    }


def test_gateway_quotes_every_path_segment():
    """Names reach URLs only percent-encoded: no "/", "?", "#" or ".." can change which resource is addressed."""
    from autoheal.gateway import ComputeGateway

    gateway = ComputeGateway(SUB, endpoint="https://management.example")
    assert gateway._scale_set_path("rg/../x", "web?a=1#f") == (
        f"/subscriptions/{SUB}/resourceGroups/rg%2F..%2Fx/providers/Microsoft.Compute/virtualMachineScaleSets/web%3Fa%3D1%23f"
    )
    assert gateway._group_path(None) == f"/subscriptions/{SUB}"
