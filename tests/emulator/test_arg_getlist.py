"""Resource Graph's GET/LIST API in the emulator (emulator/arg_getlist.py), over raw HTTPS.

Source: MicrosoftDocs/azure-docs `articles/governance/resource-graph/concepts/azure-resource-graph-get-list-api.md`
(learn.microsoft.com/azure/governance/resource-graph/concepts/azure-resource-graph-get-list-api): the flag on
ARM's own GET/LIST paths, "4k per minute, user, and subscription" reported in `x-ms-user-quota-remaining` /
`x-ms-user-quota-resets-after`, `apiVersion` in every served resource, "VMSS VM health status isn't currently
supported", extension running states neither, 422 for a resource ARG could not index (fall back to the resource
provider), unsupported requests routed to the resource provider. The 422 error code is unverified.
"""

from __future__ import annotations

import pytest

from emulator import fleetgen
from tests.emulator.conftest import NOW, Raw

FLAG = {"useResourceGraph": "true"}


def getlist_fleet(**options):
    document = fleetgen.fleet(
        fleetgen.scale_set("web", capacity=4, automatic_repairs=True, unhealthy=[1], failed=[2], now=NOW),
        fleetgen.scale_set("jobs", orchestration="Flexible", capacity=3, unhealthy=[0], failed=[1], now=NOW),
    )
    if options:
        document["argGetList"] = options
    return document


@pytest.fixture
def raw(start_emulator) -> Raw:
    return Raw(start_emulator(getlist_fleet()))


def _compute_spent(raw: Raw) -> int:
    stats = raw("GET", "/_emulator/stats", api_version=None).json()
    return sum(level["spent"] for levels in stats["computePolicies"].values() for level in levels.values())


def test_uniform_vm_list_is_served_without_health_or_compute_tokens(raw: Raw) -> None:
    plain = raw("GET", raw.vmss("web", "/virtualMachines"), params={"$expand": "instanceView"})
    flagged = raw("GET", raw.vmss("web", "/virtualMachines"), params={"$expand": "instanceView", **FLAG})
    assert plain.status_code == flagged.status_code == 200
    # Compute's answer carries its bucket header; ARG's carries ARG's quota instead.
    assert "x-ms-ratelimit-remaining-resource" in plain.headers
    assert "x-ms-ratelimit-remaining-resource" not in flagged.headers
    assert int(flagged.headers["x-ms-user-quota-remaining"]) == 4000 - 1
    assert flagged.headers["x-ms-user-quota-resets-after"] == "00:01:00"
    assert "x-ms-resource-graph-request-duration" in flagged.headers
    assert "x-ms-ratelimit-remaining-subscription-reads" in flagged.headers  # ARM's read bucket still applies
    rp = {vm["instanceId"]: vm for vm in plain.json()["value"]}
    arg = {vm["instanceId"]: vm for vm in flagged.json()["value"]}
    assert set(rp) == set(arg)
    assert any("vmHealth" in vm["properties"]["instanceView"] for vm in rp.values())
    for key, vm in arg.items():
        view = vm["properties"]["instanceView"]
        assert "vmHealth" not in view and "extensions" not in view
        assert vm["apiVersion"]
        # Provisioning and power-state statuses are kept.
        assert view["statuses"] == rp[key]["properties"]["instanceView"]["statuses"]
        assert vm["properties"]["provisioningState"] == rp[key]["properties"]["provisioningState"]
    assert arg["2"]["properties"]["provisioningState"] == "Failed"


def test_flexible_vm_list_with_the_scale_set_filter(raw: Raw) -> None:
    scale_set_id = raw.vmss("jobs")
    path = raw.sub("/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines")
    flt = f"'virtualMachineScaleSet/id' eq '{scale_set_id}'"
    answer = raw("GET", path, params={"$filter": flt, "$expand": "instanceView", **FLAG})
    assert answer.status_code == 200
    vms = answer.json()["value"]
    assert len(vms) == 3
    assert all("vmHealth" not in vm["properties"]["instanceView"] for vm in vms)
    assert sorted(vm["properties"]["provisioningState"] for vm in vms).count("Failed") == 1


def test_spends_no_compute_bucket(raw: Raw) -> None:
    raw("GET", raw.vmss("web", "/virtualMachines"), params={"$expand": "instanceView"})
    spent = _compute_spent(raw)
    assert spent > 0  # the resource provider's list charges Compute
    for _ in range(3):
        answer = raw("GET", raw.vmss("web", "/virtualMachines"), params={"$expand": "instanceView", **FLAG})
        assert answer.status_code == 200
    assert _compute_spent(raw) == spent
    operations = raw("GET", "/_emulator/stats", api_version=None).json()["byOperation"]
    assert operations["ArgGetList_VirtualMachineScaleSetVMs_List"] == 3
    assert operations["VirtualMachineScaleSetVMs_List"] == 1


def test_point_get_carries_the_snapshot_timestamp(raw: Raw) -> None:
    answer = raw("GET", raw.vmss("web"), params=FLAG)
    assert answer.status_code == 200
    assert answer.headers["x-ms-arg-snapshot-timestamp"].endswith("Z")
    assert answer.json()["apiVersion"]


def test_api_version_is_required_but_its_value_ignored(raw: Raw) -> None:
    assert raw("GET", raw.vmss("web"), params=FLAG, api_version=None).status_code == 400
    assert raw("GET", raw.vmss("web"), params=FLAG, api_version="2015-06-15").status_code == 200


def test_unsupported_requests_go_to_the_resource_provider(raw: Raw) -> None:
    # The scale set's instance view is not a resource type of ARG's tables: Compute answers (and charges).
    answer = raw("GET", raw.vmss("web", "/instanceView"), params=FLAG)
    assert answer.status_code == 200
    assert "x-ms-ratelimit-remaining-resource" in answer.headers
    assert "x-ms-user-quota-remaining" not in answer.headers


def test_unprocessable_resource_answers_422_and_the_resource_provider_still_serves_it(start_emulator) -> None:
    emu = start_emulator(getlist_fleet())
    raw = Raw(emu)
    emu.load_fleet(getlist_fleet(unprocessable=[raw.vmss("web")]))
    refused = raw("GET", raw.vmss("web", "/virtualMachines"), params={"$expand": "instanceView", **FLAG})
    assert refused.status_code == 422
    assert refused.json()["error"]["code"]
    fallback = raw("GET", raw.vmss("web", "/virtualMachines"), params={"$expand": "instanceView"})
    assert fallback.status_code == 200 and len(fallback.json()["value"]) == 4
    other = raw("GET", raw.vmss("jobs"), params=FLAG)
    assert other.status_code == 200


def test_quota_per_user_and_subscription(start_emulator) -> None:
    raw = Raw(start_emulator(getlist_fleet(quota=2)))
    answers = [raw("GET", raw.vmss("web"), params=FLAG) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[1].headers["x-ms-user-quota-remaining"] == "0"
    assert answers[2].json()["error"]["code"] == "RateLimiting"
    # Another user has a quota of its own.
    assert raw("GET", raw.vmss("web"), params=FLAG, token="Bearer someone-else").status_code == 200


def test_configuration_is_checked(raw: Raw) -> None:
    bad = raw("POST", "/_emulator/arggetlist", api_version=None, json={"quotta": 3})
    assert bad.status_code == 400
    good = raw("POST", "/_emulator/arggetlist", api_version=None, json={"unprocessable": [raw.vmss("jobs")]})
    assert good.status_code == 200 and good.json()["unprocessable"] == [raw.vmss("jobs").lower()]
