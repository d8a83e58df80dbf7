"""Who suspended automatic repairs (gateway/activitylog.py's reading of the Activity Log) and what cause 4 does
with it: a person's or an app's suspension is held for them, named with the time; the tool resumes only what
no person or app suspended; a log it cannot read is never resumed blind. Plain data; the emulator end of it
is in tests/integration/test_suspension.py."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from autoheal.diagnosis import diagnose
from autoheal.gateway.activitylog import OPERATION, ActivityLogBudget, token_ids, who_suspended
from autoheal.model import FindingCode as C
from autoheal.model import OrchestrationService, ReasonCode, Suspender, Suspension
from autoheal.settings import default_settings
from emulator.activitylog import unsigned_jwt
from tests.builders import NOW, healthy, inst, vmss

SINCE = NOW - timedelta(days=90)
ALICE_AT = NOW - timedelta(days=2)


def call(caller: str, at, *, action: str | None = "Suspend", status: str = "Succeeded", claims=None, op=OPERATION):
    """An event shaped as ActivityLogs_List answers (GetActivityLogsFiltered.json)."""
    properties = {"statusCode": "OK"}
    if action:
        properties["requestbody"] = json.dumps({"serviceName": "AutomaticRepairs", "action": action})
    return {
        "caller": caller,
        "claims": claims or {},
        "eventTimestamp": at.isoformat().replace("+00:00", "Z"),
        "operationName": {"value": op, "localizedValue": op},
        "status": {"value": status, "localizedValue": status},
        "properties": properties,
    }


def read(*events, own=frozenset(), changed_at=None):
    return who_suspended(list(events), since=SINCE, own_ids=set(own), changed_at=changed_at)


# -- reading the Activity Log ----------------------------------------------------------------------------


def test_a_person_who_suspended_is_named_with_the_time():
    found = read(call("alice@contoso.com", ALICE_AT))
    assert (found.suspender, found.caller, found.at, found.action) == (
        Suspender.PERSON,
        "alice@contoso.com",
        ALICE_AT,
        "Suspend",
    )
    assert not found.resumable
    assert found.who() == f"alice@contoso.com (a person) at {ALICE_AT:%Y-%m-%d %H:%M} UTC"


def test_an_app_or_identity_that_suspended_is_another_principal():
    app = "3f6b1c1e-1b2a-4d0e-9a34-000000000042"
    found = read(call(app, ALICE_AT, action=None, claims={"appid": app}))
    assert found.suspender is Suspender.PRINCIPAL and found.caller == app and not found.resumable


def test_the_latest_call_decides_and_a_later_resume_means_the_platform_suspended_since():
    resumed = call("bob@contoso.com", NOW - timedelta(hours=3), action="Resume")
    found = read(call("alice@contoso.com", ALICE_AT), resumed)
    assert found.suspender is Suspender.NO_CALLER and found.resumable
    assert found.caller == "bob@contoso.com" and found.action == "Resume"


def test_our_own_resume_is_recognised_without_a_request_body():
    ours = "11111111-2222-3333-4444-555555555555"
    found = read(call(ours, NOW - timedelta(hours=1), action=None, claims={"appid": ours}), own={ours})
    assert found.suspender is Suspender.NO_CALLER


def test_the_platform_s_own_call_and_no_call_at_all_are_resumable():
    assert read(call("Microsoft.Compute", NOW - timedelta(hours=1), action=None)).suspender is Suspender.NO_CALLER
    assert read().suspender is Suspender.NO_CALLER
    assert read(call("", NOW - timedelta(hours=1), action=None)).resumable


def test_failed_calls_and_other_operations_are_not_decisions():
    failed = call("alice@contoso.com", ALICE_AT, status="Failed")
    write = call("carol@contoso.com", ALICE_AT, op="Microsoft.Compute/virtualMachineScaleSets/write")
    assert read(failed, write).suspender is Suspender.NO_CALLER


def test_a_suspension_older_than_the_window_read_has_no_readable_author():
    found = read(changed_at=SINCE - timedelta(days=3))
    assert found.suspender is Suspender.UNKNOWN and not found.resumable
    assert read(changed_at=NOW - timedelta(days=3)).suspender is Suspender.NO_CALLER


def test_our_token_names_the_ids_the_activity_log_shows_for_us():
    token = unsigned_jwt(appid="AAA", oid="bbb", upn="svc@contoso.com")
    assert token_ids(token) == {"aaa", "bbb", "svc@contoso.com"}
    assert token_ids("emulator-token") == set()


def test_the_read_budget_refuses_what_would_pass_the_deadline():
    now = [0.0]
    slept: list[float] = []
    budget = ActivityLogBudget(6, 2, monotonic=lambda: now[0], sleep=slept.append)
    assert budget.acquire(deadline=1.0) and budget.acquire(deadline=1.0)
    assert not budget.acquire(deadline=1.0)  # the next token is 10 s away
    assert budget.acquire(deadline=20.0) and slept == [pytest.approx(10.0)]
    assert budget.figures() == {"perMinute": 6, "spent": 3, "refused": 1}


# -- cause 4 with what the log said -----------------------------------------------------------------------


def suspended(suspension, **options):
    snap = vmss(*healthy(3), inst("3", health="Unhealthy"), service="Suspended", suspension=suspension, **options)
    (finding,) = [f for f in diagnose(snap, default_settings(), NOW) if f.code is C.REPAIRS_SUSPENDED]
    return finding


def test_a_person_s_suspension_is_held_for_them_and_says_only_what_the_data_shows():
    finding = suspended(Suspension(Suspender.PERSON, caller="alice@contoso.com", at=ALICE_AT, action="Suspend"))
    proposed = finding.proposed_action
    assert proposed.code.value == "none"
    assert proposed.reason_code == ReasonCode.SUSPENDED_BY_PERSON
    assert f"suspended by alice@contoso.com (a person) at {ALICE_AT:%Y-%m-%d %H:%M} UTC" in proposed.reason
    assert (
        proposed.reason
        == f"suspended by alice@contoso.com (a person) at {ALICE_AT:%Y-%m-%d %H:%M} UTC: their decision, not resumed"
    )
    assert finding.evidence["resumeWith"].startswith(
        "az vmss set-orchestration-service-state --resource-group rg --name web"
    )
    assert "repeated failed repairs" not in finding.summary
    assert finding.summary.startswith("Automatic repairs on scale set web are suspended (serviceState Suspended)")
    assert "alice@contoso.com" in finding.summary
    assert finding.evidence["suspendedBy"]["caller"] == "alice@contoso.com"
    assert finding.evidence["suspendedBy"]["suspender"] == "person"


def test_what_no_person_suspended_is_resumed_as_before():
    finding = suspended("platform")
    assert finding.proposed_action.code.value == "resume-automatic-repairs"
    assert "; the Activity Log shows no person or app suspending them since 2026-08-25." in finding.summary


@pytest.mark.parametrize(
    ("suspension", "words"),
    [
        (Suspension(Suspender.UNREADABLE, error="HTTP 403 AuthorizationFailed: no", error_code="x"), "HTTP 403"),
        (Suspension(Suspender.UNKNOWN, at=SINCE - timedelta(days=1), since=SINCE), "cannot be read"),
        (None, "not read"),
    ],
)
def test_an_unreadable_or_too_old_log_is_never_resumed_blind(suspension, words):
    proposed = suspended(suspension).proposed_action
    assert proposed.code.value == "none"
    assert proposed.reason_code == ReasonCode.SUSPENDER_UNKNOWN
    assert words in proposed.reason


def test_the_finding_carries_the_service_s_own_times_when_azure_gives_them():
    snap = vmss(*healthy(3), service="Suspended")
    changed = NOW - timedelta(hours=5)
    service = OrchestrationService("AutomaticRepairs", "Suspended", changed, "Succeeded")
    snap = replace(snap, orchestration_services=(service,))
    (finding,) = [f for f in diagnose(snap, default_settings(), NOW) if f.code is C.REPAIRS_SUSPENDED]
    assert finding.evidence["latestOperationStatus"] == "Succeeded"
    assert finding.evidence["lastStatusChangeTime"] == "2026-11-23T07:00:00Z"
    assert "(serviceState Suspended since 2026-11-23 07:00:00 UTC)" in finding.summary


def test_the_notification_names_who_suspended_in_words():
    from autoheal.notify.evidence import readable

    finding = suspended(Suspension(Suspender.PERSON, caller="alice@contoso.com", at=ALICE_AT, action="Suspend"))
    facts = dict(readable(finding.evidence))
    assert facts["Suspended by"].startswith("alice@contoso.com (a person) at ")
    assert facts["Suspended by"].endswith("per the Activity Log")
    unreadable = suspended(Suspension(Suspender.UNREADABLE, error="HTTP 403 AuthorizationFailed: no access"))
    assert (
        dict(readable(unreadable.evidence))["Suspended by"] == "cannot be read: HTTP 403 AuthorizationFailed: no access"
    )


def test_importing_the_function_app_does_not_import_the_monitor_client():
    """Cold start: azure-mgmt-monitor is imported only when a suspended scale set needs the Activity Log."""
    import subprocess
    import sys
    from pathlib import Path

    code = "import sys, function_app; print(sorted(m for m in sys.modules if m.startswith('azure.mgmt.monitor')))"
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
