"""The emulator's Resource Graph endpoint over raw HTTPS: Microsoft's response shapes, paging, quota, errors,
the rows of each table, the stale view, and the KQL subset's semantics (emulator/kql.py).

Shapes: Azure/azure-rest-api-specs specification/resourcegraph/resource-manager/Microsoft.ResourceGraph/stable/
2024-04-01 (resourcegraph.json; examples/ResourcesFirstPageQuery.json, ResourcesNextPageQuery.json).
Quota: learn.microsoft.com/azure/governance/resource-graph/concepts/guidance-for-throttled-requests.
Errors: ARG's envelope as quoted in Azure/aztfexport#485 (InvalidQuery + ParserFailure) and
Azure/azure-cli-extensions#3325 (RateLimiting).
"""

from __future__ import annotations

import json
import re

import pytest

from emulator import fleetgen, kql
from emulator.resourcegraph import TENANT_ID
from tests.emulator.conftest import NOW, Raw

ARG = "/providers/Microsoft.ResourceGraph/resources"
ARG_API = "2021-03-01"  # what azure-mgmt-resourcegraph 8.0.1 sends
STANDARD_COLUMNS = {
    "id",
    "name",
    "type",
    "tenantId",
    "kind",
    "location",
    "resourceGroup",
    "subscriptionId",
    "managedBy",
    "sku",
    "plan",
    "properties",
    "tags",
    "identity",
    "zones",
    "extendedLocation",
}


def graph_fleet(**resource_graph):
    return fleetgen.fleet(
        fleetgen.scale_set("web", capacity=4, automatic_repairs=True, unhealthy=[1], failed=[2], now=NOW),
        fleetgen.scale_set("jobs", orchestration="Flexible", capacity=3, failed=[0], now=NOW),
        fleetgen.scale_set("aks-nodes", resource_group="MC_rg_aks_westeurope", capacity=2, now=NOW),
        resource_graph=resource_graph or None,
    )


@pytest.fixture
def graph(start_emulator):
    return start_emulator(
        graph_fleet(managedBy={"MC_rg_aks_westeurope": "/subscriptions/x/resourceGroups/rg/providers/aks"})
    )


@pytest.fixture
def post(graph):
    raw = Raw(graph)

    def send(query: str, *, options=None, subscriptions=None, token="Bearer test", api_version=ARG_API):
        body = {"subscriptions": subscriptions or [graph.subscription_id], "query": query}
        if options is not None:
            body["options"] = options
        return raw("POST", ARG, json=body, token=token, api_version=api_version)

    return send


def test_answer_has_microsofts_shape_and_pages_with_a_skip_token(post):
    first = post("computeresources | project id, name | order by id asc", options={"$top": 3, "$skip": 0})
    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"totalRecords", "count", "resultTruncated", "facets", "data", "$skipToken"}
    assert (body["totalRecords"], body["count"], body["resultTruncated"], body["facets"]) == (6, 3, "false", [])
    second = post(
        "computeresources | project id, name | order by id asc", options={"$skipToken": body["$skipToken"]}
    ).json()
    assert "$skipToken" not in second and second["count"] == 3
    ids = [row["id"] for row in body["data"] + second["data"]]
    assert ids == sorted(ids) and len(set(ids)) == 6


def test_default_page_is_100_rows_and_top_is_capped_at_1000(start_emulator):
    emu = start_emulator(fleetgen.fleet(fleetgen.scale_set("big", capacity=150, now=NOW)))
    raw = Raw(emu)
    body = {"subscriptions": [emu.subscription_id], "query": "computeresources | project id"}
    answer = raw("POST", ARG, json=body, api_version=ARG_API).json()
    assert (answer["count"], answer["totalRecords"]) == (100, 150) and answer["$skipToken"]
    too_many = raw("POST", ARG, json={**body, "options": {"$top": 1001}}, api_version=ARG_API)
    assert too_many.status_code == 400


def test_a_result_without_an_id_column_cannot_page_and_is_truncated(post):
    body = post("computeresources | project name", options={"$top": 2}).json()
    assert body["resultTruncated"] == "true" and "$skipToken" not in body and body["count"] == 2


def test_a_skip_token_of_another_query_is_refused(post):
    token = post("computeresources | project id", options={"$top": 1}).json()["$skipToken"]
    answer = post("resources | project id", options={"$skipToken": token})
    assert answer.status_code == 400
    assert answer.json()["error"]["details"][0]["code"] == "InvalidSkipToken"


def test_every_answer_carries_the_quota_headers_and_the_quota_ends_in_ratelimiting(graph, post):
    graph.resource_graph.configure({"quota": 3, "windowSeconds": 30})
    answers = [post("resourcecontainers | project id") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["x-ms-user-quota-remaining"] for a in answers] == ["2", "1", "0", "0"]
    for answer in answers:
        assert re.fullmatch(r"\d\d:\d\d:\d\d", answer.headers["x-ms-user-quota-resets-after"])
    error = answers[-1].json()["error"]
    assert error["code"] == "RateLimiting"
    assert error["message"].startswith("Please provide below info when asking for support")
    assert (
        error["details"][0]["code"] == "RateLimiting"
        and "aka.ms/resourcegraph-throttling" in error["details"][0]["message"]
    )
    # The quota is per user: another identity still has its own.
    assert post("resourcecontainers | project id", token="Bearer someone-else").status_code == 200
    assert graph.stats()["byOperation"]["Resources"] == 5 and graph.stats()["throttled"] == 1


def test_resource_graph_spends_neither_arms_buckets_nor_computes(graph, post):
    graph.set_faults({"throttle": {"reads": {"capacity": 2, "refillPerSecond": 0.01}}})
    for _ in range(4):
        answer = post("resources | project id")
        assert answer.status_code == 200
        assert "x-ms-ratelimit-remaining-subscription-reads" not in answer.headers
        assert "x-ms-ratelimit-remaining-resource" not in answer.headers
    arm = Raw(graph)("GET", Raw(graph).vmss())
    assert arm.status_code == 200 and arm.headers["x-ms-ratelimit-remaining-subscription-reads"] == "1"


def test_a_query_it_cannot_parse_is_a_bad_request_with_arg_details(post):
    answer = post("resources | where (type =~ 'x'")
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "BadRequest"
    assert [d["code"] for d in error["details"]] == ["InvalidQuery", "ParserFailure"]
    assert error["details"][0]["message"].startswith("Query is invalid.")


@pytest.mark.parametrize(
    ("query", "token"),
    [
        ("resources | summarize count() by type", "summarize"),
        ("resources | where tags['team'] == 'x'", "["),
        ("resources | where startswith(name, 'a')", "startswith"),
        ("healthresources | project id", "healthresources"),
        ("resources | limit 3", "limit"),
    ],
)
def test_valid_kql_outside_the_emulated_subset_fails_loudly(post, query, token):
    answer = post(query)
    assert answer.status_code == 400
    detail = answer.json()["error"]["details"][1]
    assert (detail["code"], detail["token"]) == ("EmulatorUnsupported", token)


def test_api_version_is_required_and_checked(post):
    assert post("resources | project id", api_version=None).json()["error"]["code"] == "MissingApiVersionParameter"
    assert post("resources | project id", api_version="2016-01-01").json()["error"]["code"] == (
        "InvalidApiVersionParameter"
    )
    assert post("resources | project id", token=None).status_code == 401


def test_rows_have_args_columns_and_the_model_without_the_instance_view(graph, post):
    scale_sets = post("resources | where type =~ 'microsoft.compute/virtualmachinescalesets'").json()["data"]
    assert {row["name"] for row in scale_sets} == {"web", "jobs", "aks-nodes"}
    for row in scale_sets:
        assert set(row) == STANDARD_COLUMNS
        assert row["type"] == "microsoft.compute/virtualmachinescalesets"
        assert row["tenantId"] == TENANT_ID and row["subscriptionId"] == graph.subscription_id
        assert row["properties"] == graph.scale_set(row["resourceGroup"], row["name"])["properties"]
    uniform = post("computeresources").json()["data"]
    assert {row["type"] for row in uniform} == {"microsoft.compute/virtualmachinescalesets/virtualmachines"}
    assert len(uniform) == 6  # web (4) + aks-nodes (2); Flexible VMs live in `resources`
    flexible = post("resources | where type =~ 'microsoft.compute/virtualmachines'").json()["data"]
    assert len(flexible) == 3
    assert {row["properties"]["virtualMachineScaleSet"]["id"].rsplit("/", 1)[-1] for row in flexible} == {"jobs"}
    for row in uniform + flexible:
        assert "instanceView" not in row["properties"]
        assert row["properties"]["extended"]["instanceView"]["powerState"]["code"].startswith("PowerState/")
    everything = json.dumps(post("resources").json()) + json.dumps(post("computeresources").json())
    assert "vmHealth" not in everything and "orchestrationServices" not in everything


def test_resource_groups_carry_managed_by_from_the_fleet(post):
    query = "resourcecontainers | where type == 'microsoft.resources/subscriptions/resourcegroups'"
    rows = post(query + " | project id, name, type, managedBy | order by name asc").json()["data"]
    assert [r["name"] for r in rows] == ["MC_rg_aks_westeurope", "rg-app"]
    assert rows[0]["type"] == "microsoft.resources/subscriptions/resourcegroups"
    assert rows[0]["managedBy"].endswith("/aks") and rows[1]["managedBy"] == ""


def test_other_subscriptions_see_nothing(post):
    body = post("resources | project id", subscriptions=["00000000-0000-0000-0000-000000000000"]).json()
    assert (body["totalRecords"], body["data"]) == (0, [])


def test_lag_serves_the_fleet_as_it_was_at_the_last_refresh(graph, post, gateway_for):
    graph.clock.freeze()
    graph.resource_graph.configure({"lagSeconds": 60})
    query = "resources | where name =~ 'web' | project id, tags"
    assert post(query).json()["data"][0]["tags"] == {}
    gateway_for(graph).update_scale_set("rg-app", "web", {"tags": {"owner": "ops"}})
    assert graph.scale_set("rg-app", "web")["tags"] == {"owner": "ops"}  # ARM knows at once
    graph.clock.advance(59)
    assert post(query).json()["data"][0]["tags"] == {}  # ARG does not, yet
    graph.clock.advance(1)
    assert post(query).json()["data"][0]["tags"] == {"owner": "ops"}


def test_a_pinned_scale_set_stays_as_it_was(start_emulator, gateway_for):
    emu = start_emulator(graph_fleet())
    web_id = emu.scale_set("rg-app", "web")["id"]
    emu.resource_graph.configure({"stale": [web_id]})
    gateway = gateway_for(emu)
    gateway.delete_instances(gateway.snapshot_by_name("rg-app", "web"), ["2"])
    assert "2" not in [vm["instanceId"] for vm in emu.instances("rg-app", "web")]
    raw = Raw(emu)
    body = {"subscriptions": [emu.subscription_id], "query": "computeresources | where name =~ 'web_2' | project id"}
    assert raw("POST", ARG, json=body, api_version=ARG_API).json()["count"] == 1  # ARG still shows it
    emu.resource_graph.configure({"unstale": [web_id]})
    assert raw("POST", ARG, json=body, api_version=ARG_API).json()["count"] == 0


def test_stale_in_the_fleet_file_and_the_control_endpoint(start_emulator):
    fleet = graph_fleet()
    web_id = fleet["scaleSets"][0]["resource"]["id"]
    emu = start_emulator({**fleet, "resourceGraph": {"stale": [web_id], "lagSeconds": 5}})
    raw = Raw(emu)
    described = raw("GET", "/_emulator/resourcegraph", api_version=None).json()
    assert described["stale"] == [web_id.lower()] and described["lagSeconds"] == 5
    changed = raw("POST", "/_emulator/resourcegraph", api_version=None, json={"lagSeconds": 0, "quota": 20})
    assert changed.json()["lagSeconds"] == 0 and changed.json()["quota"] == 20
    assert raw("POST", "/_emulator/resourcegraph", api_version=None, json={"bogus": 1}).status_code == 400


# --- the KQL subset --------------------------------------------------------------------------------------

ROWS = [
    {"id": "b", "name": "Web", "properties": {"state": "Failed", "n": None}},
    {"id": "a", "name": "web", "properties": {"state": "Succeeded"}},
    {"id": "c", "name": "api", "properties": {}},
]


@pytest.mark.parametrize(
    ("where", "ids"),
    [
        ("name == 'web'", ["a"]),  # case-sensitive
        ("name =~ 'WEB'", ["b", "a"]),  # case-insensitive
        ("name != 'web'", ["b", "c"]),
        ("name !~ 'web'", ["c"]),
        ("name in ('Web', 'api')", ["b", "c"]),
        ("name in~ ('WEB')", ["b", "a"]),
        ("name !in~ ('WEB')", ["c"]),
        ("isnotempty(properties.state)", ["b", "a"]),
        ("isempty(properties.state)", ["c"]),
        ("isnull(properties.n)", ["b", "a", "c"]),
        ("tostring(properties.missing) == ''", ["b", "a", "c"]),
        ("name =~ 'web' and properties.state =~ 'failed'", ["b"]),
        ("name == 'api' or properties.state == 'Succeeded'", ["a", "c"]),
        ("not(name =~ 'web')", ["c"]),
        ("(name == 'api' or name == 'web') and isnotempty(properties.state)", ["a"]),
    ],
)
def test_where_follows_kql_semantics(where, ids):
    assert [row["id"] for row in kql.parse(f"resources | where {where}").run(ROWS)] == ids


def test_order_by_is_descending_unless_asc_and_project_extend_name_columns():
    query = kql.parse(
        "Resources | extend state = tostring(properties.state) | project id, s = tolower(state) | order by id"
    )
    assert query.table == "resources"
    assert query.run(ROWS) == [{"id": "c", "s": ""}, {"id": "b", "s": "failed"}, {"id": "a", "s": "succeeded"}]
    assert [r["id"] for r in kql.parse("resources | sort by id asc").run(ROWS)] == ["a", "b", "c"]


@pytest.mark.parametrize(
    "text",
    ["", "resources |", "resources | where", "resources | project", "resources | where name =", "| where x"],
)
def test_incomplete_queries_are_parser_failures(text):
    with pytest.raises(kql.QueryError) as caught:
        kql.parse(text)
    assert caught.value.code == "ParserFailure"


def test_a_new_fleet_brings_its_own_resource_graph_settings(graph):
    raw = Raw(graph)
    graph.resource_graph.configure({"quota": 2, "lagSeconds": 30})
    loaded = raw("POST", "/_emulator/fleet", api_version=None, json=graph_fleet(lagSeconds=7))
    assert loaded.status_code == 200
    settings = raw("GET", "/_emulator/resourcegraph", api_version=None).json()
    assert (settings["quota"], settings["lagSeconds"], settings["managedBy"]) == (15, 7, {})
    refused = raw("POST", "/_emulator/fleet", api_version=None, json=graph_fleet(stale=["/no/such/scale/set"]))
    assert refused.status_code == 400 and "no scale set" in refused.json()["error"]["message"]
