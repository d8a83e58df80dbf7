"""Fleets of several subscriptions under one management group (issue 22), through the SDK and raw HTTPS.

Sources: Compute buckets are "per resource and per subscription per region"
(learn.microsoft.com/azure/virtual-machines/compute-throttling-limits). Resource Graph's request carries
`subscriptions` or `managementGroups` (QueryRequest, learn.microsoft.com/python/api/azure-mgmt-resourcegraph/
azure.mgmt.resourcegraph.models.queryrequest; `az graph query --management-groups`, learn.microsoft.com/cli/
azure/graph); subscriptions are `resourcecontainers` rows of type 'microsoft.resources/subscriptions' whose
`properties.managementGroupAncestorsChain` names their group (learn.microsoft.com/azure/governance/
management-groups/resource-graph-samples). Paging and quota headers: as in test_resourcegraph.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from azure.mgmt.monitor import MonitorManagementClient

from emulator import fleetgen
from emulator.testing import StaticTokenCredential, compute_client
from tests.emulator.conftest import NOW, Raw

ARG = "/providers/Microsoft.ResourceGraph/resources"
ARG_API = "2021-03-01"
SUB_A = "11111111-1111-4111-8111-111111111111"
SUB_B = "22222222-2222-4222-8222-222222222222"
SUB_C = "33333333-3333-4333-8333-333333333333"
OUTSIDE = "99999999-9999-4999-8999-999999999999"


def three_plus_one(**graph):
    """Three subscriptions in `mg-platform`, each with rg-app/web (same names: ids differ), plus one outside it."""
    parts = {
        sub: [
            fleetgen.scale_set("web", subscription_id=sub, capacity=2, unhealthy=[1], now=NOW),
            fleetgen.scale_set(f"only-{index}", subscription_id=sub, capacity=1, now=NOW),
        ]
        for index, sub in enumerate((SUB_A, SUB_B, SUB_C, OUTSIDE))
    }
    return fleetgen.multi_fleet(
        parts,
        management_group="mg-platform",
        members=[SUB_A, SUB_B, SUB_C],
        display_names={SUB_A: "landing-a"},
        resource_graph=graph or None,
    )


@pytest.fixture
def multi(start_emulator):
    return start_emulator(three_plus_one())


def test_each_subscription_lists_only_its_own_scale_sets(multi):
    assert multi.subscription_ids == [SUB_A, SUB_B, SUB_C, OUTSIDE]
    for index, sub in enumerate(multi.subscription_ids):
        names = sorted(s.name for s in compute_client(multi, subscription_id=sub).virtual_machine_scale_sets.list_all())
        assert names == [f"only-{index}", "web"]
        web = compute_client(multi, subscription_id=sub).virtual_machine_scale_sets.get("rg-app", "web")
        assert web.id.split("/")[2] == sub


def test_a_write_in_one_subscription_leaves_the_same_name_in_another_alone(multi):
    client = compute_client(multi, subscription_id=SUB_B)
    client.virtual_machine_scale_set_vms.begin_delete("rg-app", "web", "1", force_deletion=True).result()
    assert [vm["instanceId"] for vm in multi.instances("rg-app", "web", SUB_B)] == ["0"]
    assert [vm["instanceId"] for vm in multi.instances("rg-app", "web", SUB_A)] == ["0", "1"]
    assert "/subscriptions/" + SUB_B in multi.journal()["writes"][0]["path"]


def test_an_unknown_subscription_is_still_not_found(multi):
    answer = Raw(multi)(
        "GET", "/subscriptions/00000000-0000-4000-8000-000000000000/providers/Microsoft.Compute/virtualMachineScaleSets"
    )
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "SubscriptionNotFound"


def test_compute_buckets_are_per_subscription(start_emulator):
    # Subscription-level HighCostGetVMScaleSet: capacity 1080 x 0.005 = 5 tokens, refilled slowly.
    emu = start_emulator(three_plus_one(), compute_capacity_scale=0.005, compute_refill_scale=0.001)
    raw = Raw(emu)

    def list_all(sub: str) -> int:
        return raw("GET", f"/subscriptions/{sub}/providers/Microsoft.Compute/virtualMachineScaleSets").status_code

    statuses = [list_all(SUB_A) for _ in range(6)]
    assert statuses[:5] == [200] * 5 and statuses[5] == 429
    assert list_all(SUB_B) == 200  # another subscription's bucket is full
    by_sub = emu.stats()["computeBySubscription"]
    assert by_sub[SUB_A]["HighCostGetVMScaleSetSubscription"]["lowestFill"] < 0.2
    assert by_sub[SUB_B]["HighCostGetVMScaleSetSubscription"]["lowestFill"] > 0.7


def _post(emu, body):
    return Raw(emu)("POST", ARG, json=body, api_version=ARG_API)


def test_management_group_query_answers_across_its_subscriptions_only(multi):
    query = "resources | where type =~ 'microsoft.compute/virtualmachinescalesets' | project id, subscriptionId"
    answer = _post(multi, {"managementGroups": ["mg-platform"], "query": query})
    assert answer.status_code == 200
    assert {row["subscriptionId"] for row in answer.json()["data"]} == {SUB_A, SUB_B, SUB_C}
    assert answer.json()["totalRecords"] == 6
    assert answer.headers["x-ms-user-quota-remaining"].isdigit()
    assert answer.headers["x-ms-user-quota-resets-after"].count(":") == 2
    tenant = _post(multi, {"query": query}).json()
    assert tenant["totalRecords"] == 8  # no scope: every subscription of the fleet (tenant scope)
    one = _post(multi, {"subscriptions": [OUTSIDE], "query": query}).json()
    assert {row["subscriptionId"] for row in one["data"]} == {OUTSIDE}


def test_management_group_query_pages_with_a_skip_token(multi):
    query = "computeresources | project id, subscriptionId | order by id asc"
    first = _post(multi, {"managementGroups": ["mg-platform"], "query": query, "options": {"$top": 2}}).json()
    seen = list(first["data"])
    token = first.get("$skipToken")
    while token:
        page = _post(multi, {"managementGroups": ["mg-platform"], "query": query, "options": {"$skipToken": token}})
        seen += page.json()["data"]
        token = page.json().get("$skipToken")
    assert len(seen) == first["totalRecords"] == 9  # 3 subscriptions x (2 + 1 instances)
    assert len({row["id"] for row in seen}) == 9


def test_subscriptions_are_resource_containers_with_their_management_group(multi):
    query = (
        "resourcecontainers | where type == 'microsoft.resources/subscriptions' "
        "| project id, name, subscriptionId, properties | order by id asc"
    )
    rows = _post(multi, {"managementGroups": ["mg-platform"], "query": query}).json()["data"]
    assert [row["subscriptionId"] for row in rows] == [SUB_A, SUB_B, SUB_C]
    assert rows[0]["name"] == "landing-a" and rows[0]["id"] == f"/subscriptions/{SUB_A}"
    assert rows[1]["properties"]["managementGroupAncestorsChain"][0]["name"] == "mg-platform"
    outside = _post(multi, {"subscriptions": [OUTSIDE], "query": query}).json()["data"]
    assert outside[0]["properties"]["managementGroupAncestorsChain"] == []


def test_an_unknown_management_group_is_a_bad_request(multi):
    answer = _post(multi, {"managementGroups": ["mg-nope"], "query": "resources | project id"})
    assert answer.status_code == 400
    assert answer.json()["error"]["details"][0]["code"] == "ManagementGroupNotFound"


def test_the_fleet_document_round_trips_in_the_multi_subscription_shape(multi, start_emulator):
    document = multi.fleet()
    assert document["managementGroup"] == {
        "name": "mg-platform",
        "displayName": "mg-platform",
        "subscriptions": [SUB_A, SUB_B, SUB_C],
    }
    assert [part["subscriptionId"] for part in document["subscriptions"]] == [SUB_A, SUB_B, SUB_C, OUTSIDE]
    again = start_emulator(document)
    assert again.fleet() == document


@pytest.mark.parametrize(
    "document, message",
    [
        ({"subscriptions": []}, "non-empty"),
        ({"subscriptions": [{"scaleSets": []}]}, "subscriptionId"),
        (
            {"subscriptions": [{"subscriptionId": SUB_A}], "managementGroup": {"name": "x", "subscriptions": [SUB_B]}},
            "does not hold",
        ),
        ({"subscriptionId": SUB_A, "subscriptions": [{"subscriptionId": SUB_A}]}, "not both"),
        ({"subscriptions": [{"subscriptionId": SUB_A}, {"subscriptionId": SUB_A.upper()}]}, "duplicate"),
    ],
)
def test_bad_multi_subscription_fleets_are_refused_with_a_clear_error(start_emulator, document, message):
    with pytest.raises(ValueError, match=message):
        start_emulator(document)


def test_arm_read_buckets_are_per_subscription(start_emulator):
    """ARM limits requests per subscription (learn.microsoft.com/azure/azure-resource-manager/management/
    request-limits-and-throttling): one subscription spending its reads leaves another's alone."""
    fleet = three_plus_one()
    fleet["faults"] = {"throttle": {"reads": {"capacity": 3, "refillPerSecond": 0.001}}}
    emu = start_emulator(fleet)
    raw = Raw(emu)

    def read(sub: str) -> int:
        return raw(
            "GET", f"/subscriptions/{sub}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachineScaleSets/web"
        ).status_code

    assert [read(SUB_B) for _ in range(4)] == [200, 200, 200, 429]
    assert read(SUB_C) == 200 and read(SUB_A) == 200


def test_each_subscription_has_its_own_activity_log(multi):
    """ActivityLogs_List is per subscription (learn.microsoft.com/rest/api/monitor/activity-logs/list): a write in
    one subscription shows in that subscription's list only; a subscription outside the fleet is not found."""
    for sub in (SUB_A, SUB_C):  # the same names in each: only the subscription tells the writes apart
        vms = compute_client(multi, subscription_id=sub).virtual_machine_scale_set_vms
        vms.begin_delete("rg-app", "web", "1", force_deletion=True).result()
    since = f"eventTimestamp ge '{(multi.clock.now() - timedelta(days=1)):%Y-%m-%dT%H:%M:%SZ}'"
    for sub, expected in ((SUB_A, 1), (SUB_B, 0), (SUB_C, 1), (OUTSIDE, 0)):
        client = MonitorManagementClient(
            StaticTokenCredential(), sub, base_url=multi.endpoint, connection_verify=multi.ca_bundle
        )
        events = list(client.activity_logs.list(filter=since))
        web = f"/subscriptions/{sub}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachineScaleSets/web"
        assert [(e.resource_id.lower(), e.subscription_id) for e in events] == [
            (f"{web}/virtualMachines/1".lower(), sub)
        ] * expected, sub
    values = "/providers/Microsoft.Insights/eventtypes/management/values"
    answer = Raw(multi)(
        "GET",
        f"/subscriptions/00000000-0000-4000-8000-000000000000{values}",
        api_version="2015-04-01",
        params={"$filter": since},
    )
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "SubscriptionNotFound"
