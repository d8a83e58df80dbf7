"""The emulator's Activity Log (emulator/activitylog.py): writes recorded with the caller the bearer token
names, and `ActivityLogs_List` answered as Microsoft's REST example shapes it (Azure/azure-rest-api-specs
specification/monitor/resource-manager/Microsoft.Insights/Insights/ActivityLogs/examples/2015-04-01/
GetActivityLogsFiltered.json), through the real azure-mgmt-monitor client."""

from __future__ import annotations

from datetime import timedelta

import pytest
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.monitor import MonitorManagementClient

from emulator import Emulator, fleetgen, payloads
from emulator.activitylog import PAGE_SIZE, SET_ORCHESTRATION_SERVICE_STATE, seed, unsigned_jwt
from emulator.testing import StaticTokenCredential
from tests.emulator.conftest import NOW, Raw

VALUES = "/providers/Microsoft.Insights/eventtypes/management/values"
ISO = "%Y-%m-%dT%H:%M:%SZ"


def monitor(emu: Emulator) -> MonitorManagementClient:
    return MonitorManagementClient(
        StaticTokenCredential(), emu.subscription_id, base_url=emu.endpoint, connection_verify=emu.ca_bundle
    )


def compute_as(emu: Emulator, token: str) -> ComputeManagementClient:
    """A Compute client whose bearer token is `token` (a person's or an app's unsigned JWT)."""
    return ComputeManagementClient(
        StaticTokenCredential(token),
        emu.subscription_id,
        base_url=emu.endpoint,
        connection_verify=emu.ca_bundle,
        polling_interval=0,
    )


def window(emu: Emulator, resource_id: str = "", days: int = 90) -> str:
    now = emu.clock.now() + timedelta(seconds=1)  # the format drops the fraction: `le` stays after every event
    text = f"eventTimestamp ge '{(now - timedelta(days=days)):{ISO}}' and eventTimestamp le '{now:{ISO}}'"
    return text + (f" and resourceUri eq '{resource_id}'" if resource_id else "")


def test_a_write_is_recorded_with_the_caller_its_token_names(emu, client):
    web = emu.scale_set("rg-app", "web")["id"]
    as_alice = compute_as(emu, unsigned_jwt(upn="alice@contoso.com", oid="a11ce"))
    as_app = compute_as(emu, unsigned_jwt(appid="c0ffee00-0000-0000-0000-000000000001"))
    body = {"serviceName": "AutomaticRepairs", "action": "Suspend"}
    for sdk in (as_alice, as_app, client):
        sdk.virtual_machine_scale_sets.begin_set_orchestration_service_state("rg-app", "web", body).result()
    events = [e.serialize(keep_readonly=True) for e in monitor(emu).activity_logs.list(filter=window(emu, web))]
    assert [e["operationName"]["value"] for e in events] == [SET_ORCHESTRATION_SERVICE_STATE] * 3
    callers = [e["caller"] for e in reversed(events)]  # newest first
    assert callers[:2] == ["alice@contoso.com", "c0ffee00-0000-0000-0000-000000000001"]
    assert "@" not in callers[2] and len(callers[2]) == 36  # the project's own token: a service principal's id
    alice = events[-1]
    assert alice["claims"]["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"] == "alice@contoso.com"
    assert alice["claims"]["http://schemas.microsoft.com/identity/claims/objectidentifier"] == "a11ce"
    assert alice["status"]["value"] in ("Succeeded", "Accepted")
    assert alice["resourceGroupName"] == "rg-app" and alice["resourceId"] == web
    assert '"action": "Suspend"' in alice["properties"]["requestbody"]
    assert {"eventDataId", "correlationId", "eventTimestamp", "submissionTimestamp", "level", "id"} <= set(alice)


def test_the_filter_narrows_to_one_resource_and_the_window(emu, client):
    web = emu.scale_set("rg-app", "web")["id"]
    emu.activity_log.add(seed(web, "bob@contoso.com", emu.clock.now() - timedelta(days=100)))
    emu.activity_log.add(seed(web.replace("/web", "/other"), "bob@contoso.com", emu.clock.now()))
    emu.activity_log.add(seed(web, "carol@contoso.com", emu.clock.now() - timedelta(days=1)))
    events = list(monitor(emu).activity_logs.list(filter=window(emu, web), select="caller,eventTimestamp"))
    assert [e.caller for e in events] == ["carol@contoso.com"]
    assert events[0].operation_name is None  # $select keeps only what was asked for


def test_many_events_are_paged_with_next_link(emu):
    web = emu.scale_set("rg-app", "web")["id"]
    for i in range(PAGE_SIZE + 5):
        emu.activity_log.add(seed(web, f"user{i}@contoso.com", emu.clock.now() - timedelta(minutes=i)))
    raw = Raw(emu)
    first = raw("GET", raw.sub(VALUES), api_version="2015-04-01", params={"$filter": window(emu, web)}).json()
    assert len(first["value"]) == PAGE_SIZE and first["nextLink"].startswith(emu.endpoint)
    events = list(monitor(emu).activity_logs.list(filter=window(emu, web)))
    assert len(events) == PAGE_SIZE + 5 and events[0].caller == "user0@contoso.com"


@pytest.mark.parametrize(
    ("params", "api_version", "status", "code"),
    [
        ({}, "2015-04-01", 400, "BadRequest"),  # "$filter … requires at least the start date/time"
        ({"$filter": "resourceUri eq 'x'"}, "2015-04-01", 400, "BadRequest"),
        ({"$filter": "eventTimestamp ge '2026-11-01T00:00:00Z' or x"}, "2015-04-01", 400, "BadRequest"),
        ({"$filter": "eventTimestamp ge '2026-11-01T00:00:00Z'"}, "2026-04-01", 400, "InvalidApiVersionParameter"),
    ],
)
def test_what_the_list_api_refuses(emu, params, api_version, status, code):
    raw = Raw(emu)
    answer = raw("GET", raw.sub(VALUES), api_version=api_version, params=params)
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code)
    assert raw("GET", raw.sub(VALUES), api_version="2015-04-01", token=None, params=params).status_code == 401


def test_a_fleet_seeds_its_activity_log_and_its_times_move_with_captured_at(start_emulator):
    entry = fleetgen.scale_set("web", automatic_repairs=True, repairs_service="Suspended", now=NOW)
    document = fleetgen.fleet(entry, captured_at=NOW)
    document["activityLog"] = [seed(entry["resource"]["id"], "alice@contoso.com", NOW - timedelta(days=2))]
    emu = start_emulator(document)
    (alice,) = emu.activity_log.events()
    age = emu.clock.now() - payloads.parse_time(alice["eventTimestamp"])
    assert timedelta(days=2) <= age < timedelta(days=2, minutes=5)
    assert alice["caller"] == "alice@contoso.com" and alice["status"]["value"] == "Succeeded"


def test_each_subscription_of_a_three_subscription_fleet_lists_its_own_seeded_events(start_emulator):
    """The list is per subscription (learn.microsoft.com/rest/api/monitor/activity-logs/list: "the Activity Logs
    for the subscription" in the path): a fleet's one `activityLog` is split by the subscription each event's
    resourceId names, and each subscription answers only its own."""
    subs = ["11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"]
    subs.append("33333333-3333-4333-8333-333333333333")
    entries = {sub: fleetgen.scale_set("web", subscription_id=sub, now=NOW) for sub in subs}
    document = fleetgen.multi_fleet({sub: [entry] for sub, entry in entries.items()}, management_group="mg-x")
    document["capturedAt"] = payloads.iso(NOW)
    document["activityLog"] = [
        seed(entries[sub]["resource"]["id"], f"user{i}@contoso.com", NOW - timedelta(days=i + 1))
        for i, sub in enumerate(subs)
    ]
    emu = start_emulator(document)
    for i, sub in enumerate(subs):
        client = MonitorManagementClient(
            StaticTokenCredential(), sub, base_url=emu.endpoint, connection_verify=emu.ca_bundle
        )
        events = [e.serialize(keep_readonly=True) for e in client.activity_logs.list(filter=window(emu))]
        assert [(e["caller"], e["subscriptionId"]) for e in events] == [(f"user{i}@contoso.com", sub)]
        assert events[0]["resourceId"] == entries[sub]["resource"]["id"]
        assert [e["caller"] for e in emu.activity_log.events(sub)] == [f"user{i}@contoso.com"]


def test_a_seed_naming_a_subscription_outside_the_fleet_is_refused(start_emulator):
    entry = fleetgen.scale_set("web", now=NOW)
    document = fleetgen.fleet(entry, captured_at=NOW)
    elsewhere = entry["resource"]["id"].replace(
        entry["resource"]["id"].split("/")[2], "99999999-9999-4999-8999-999999999999"
    )
    document["activityLog"] = [seed(elsewhere, "alice@contoso.com", NOW - timedelta(days=1))]
    with pytest.raises(ValueError, match="99999999-9999-4999-8999-999999999999, which is not in the fleet"):
        start_emulator(document)
