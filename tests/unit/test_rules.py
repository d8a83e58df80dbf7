"""Every diagnosis rule on plain data: causes, boundaries and the interactions the runbook names."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from autoheal.diagnosis import diagnose
from autoheal.model import FindingCode as C
from autoheal.model import HealthSource, RepairsPolicy, Severity
from autoheal.settings import default_settings
from tests.builders import NOW, healthy, inst, vmss

SETTINGS = default_settings()  # grace margin 15 min, storm threshold 50 %, delete stuck after 30 min


def run(snapshot, **settings):
    findings = diagnose(snapshot, default_settings(**settings), NOW)
    by_code = {f.code: f for f in findings}
    assert len(by_code) == len(findings), "one finding per code per scale set"
    return by_code


def action(finding):
    return finding.proposed_action.code.value


def acted_ids(finding):
    ids = finding.proposed_action.instance_ids
    return None if ids is None else list(ids)


def params(finding):
    """The proposal as the report and the ledger show it (typed fields folded into params)."""
    return finding.proposed_action.to_dict().get("params", {})


def held_of(finding):
    return [held.to_dict() for held in finding.proposed_action.held]


# -- healthy scale sets yield nothing -----------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "source"), [("Uniform", "ext"), ("Uniform", "lb"), ("Flexible", "ext")])
def test_healthy_scale_set_has_no_findings(mode, source):
    assert run(vmss(*healthy(4), mode=mode, source=source)) == {}


def test_zero_instances_healthy_config_has_no_findings():
    assert run(vmss()) == {}


# -- cause 1 ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("repairs", "service", "why"),
    [
        (None, None, "has no automatic repairs policy"),
        (False, "NotRunning", "turned off"),
        (True, None, "no AutomaticRepairs orchestration service"),
        (True, "NotRunning", "service is NotRunning"),
    ],
)
def test_repairs_disabled(repairs, service, why):
    found = run(vmss(*healthy(3), repairs=repairs, service=service))
    finding = found[C.REPAIRS_DISABLED]
    assert why in finding.summary
    assert finding.severity is Severity.WARNING
    assert action(finding) == "enable-automatic-repairs"
    assert finding.proposed_action.params == {"gracePeriod": "PT30M", "repairAction": "Replace"}
    assert set(found) == {C.REPAIRS_DISABLED}


def test_repairs_disabled_without_health_source_proposes_nothing():
    found = run(vmss(*healthy(2), repairs=False, service="NotRunning", source=None))
    finding = found[C.REPAIRS_DISABLED]
    assert action(finding) == "none"
    assert finding.proposed_action.reason == "configure an Application Health extension or LB probe first"
    assert C.HEALTH_MONITORING_MISCONFIGURED in found


def test_repairs_disabled_on_service_fabric_is_explained():
    found = run(vmss(*healthy(2), repairs=None, service=None, service_fabric=True))
    assert "Service Fabric" in found[C.REPAIRS_DISABLED].proposed_action.reason


def test_repair_action_setting_flows_into_the_proposal():
    found = run(vmss(*healthy(2), repairs=None, service=None), repair_action="Reimage")
    assert found[C.REPAIRS_DISABLED].proposed_action.params["repairAction"] == "Reimage"


# -- cause 2 and the storm threshold -----------------------------------------------------------------------


def test_no_health_source():
    found = run(vmss(*healthy(2), source=None))
    finding = found[C.HEALTH_MONITORING_MISCONFIGURED]
    assert action(finding) == "none" and finding.severity is Severity.WARNING
    assert finding.evidence["healthSources"] == []


def test_all_unhealthy_reports_the_probe_and_never_repairs():
    instances = [inst(str(i), health="Unhealthy", since=600) for i in range(4)]
    found = run(vmss(*instances))
    finding = found[C.HEALTH_MONITORING_MISCONFIGURED]
    assert "http:80/healthz" in finding.summary
    assert finding.evidence["health"]["unhealthy"] == 4
    assert finding.evidence["healthSources"][0]["requestPath"] == "/healthz"
    assert action(finding) == "none"
    # the overdue instances are reported, but the repair is held back as a storm
    assert action(found[C.UNHEALTHY_NOT_REPAIRED]) == "none"
    assert "storm" in found[C.UNHEALTHY_NOT_REPAIRED].proposed_action.reason


@pytest.mark.parametrize(
    ("bad", "total", "threshold", "storm"),
    [
        (5, 10, 50, False),  # exactly at the threshold: not more than it
        (6, 10, 50, True),
        (3, 10, 30, False),
        (4, 10, 30, True),
        (1, 2, 50, False),  # one of two: exactly 50 %
        (2, 2, 50, True),  # every instance
        (1, 1, 50, False),  # a single instance never proves a broken probe
        (0, 3, 50, False),
    ],
)
def test_storm_threshold_boundaries(bad, total, threshold, storm):
    instances = [inst(str(i), health="Unhealthy") for i in range(bad)] + healthy(total - bad, start=bad)
    found = run(vmss(*instances), storm_threshold_percent=threshold)
    assert (C.HEALTH_MONITORING_MISCONFIGURED in found) is storm


def test_unknown_counts_as_bad_but_initializing_and_stopped_do_not():
    instances = [
        inst("0", health="Unknown"),
        inst("1", health="Unknown"),
        inst("2", health="Initializing"),
        inst("3", health="Initializing"),
        inst("4", health="Unhealthy", power="deallocated"),
        inst("5"),
    ]
    found = run(vmss(*instances))
    # running: 0,1,2,3,5 → 2 bad of 5 = 40 % → no storm
    assert C.HEALTH_MONITORING_MISCONFIGURED not in found
    instances[5] = inst("5", health="Unknown")
    found = run(vmss(*instances))
    assert found[C.HEALTH_MONITORING_MISCONFIGURED].evidence["health"]["unknown"] == 3


def test_missing_instance_views_are_not_counted():
    instances = [inst(str(i), view=False) for i in range(3)] + [inst("9", health="Unhealthy")]
    found = run(vmss(*instances))
    assert C.HEALTH_MONITORING_MISCONFIGURED not in found


# -- cause 3 ---------------------------------------------------------------------------------------------


def test_provisioning_failed_proposes_replace_with_target_capacity():
    instances = [*healthy(2), inst("7", state="Failed", error="AllocationFailed", health=None)]
    found = run(vmss(*instances, resilient=(False, True)))
    finding = found[C.PROVISIONING_FAILED]
    assert finding.instance_ids == ("7",)
    assert action(finding) == "replace-failed-instances"
    got = params(finding)
    failures = got.pop("failures")
    assert got == {"instanceIds": ["7"], "targetCapacity": 3, "heldInstances": []}
    assert [(f["instanceId"], f["errorCode"]) for f in failures] == [("7", "AllocationFailed")]  # for loop checks
    assert finding.evidence["instances"][0]["errorCode"] == "AllocationFailed"


@pytest.mark.parametrize(("age", "waits"), [(29.9, True), (30, False), (45, False)])
def test_provisioning_failed_waits_for_resilient_create_window(age, waits):
    failed = inst("7", state="Failed", error="AllocationFailed", health=None, created=age)
    found = run(vmss(*healthy(2), failed, resilient=(True, True)))
    finding = found[C.PROVISIONING_FAILED]
    assert action(finding) == "replace-failed-instances"
    assert (acted_ids(finding) == []) is waits
    held = held_of(finding)
    assert bool(held) is waits
    if waits:
        assert held[0]["instanceId"] == "7" and held[0]["reasonCode"] == "resilient-create-window"
        assert "resilient create may still retry" in held[0]["reason"]


def test_failed_in_statuses_summary_but_unreadable_instances():
    found = run(vmss(inst("0", view=False), summary={"ProvisioningState/failed": 1}))
    finding = found[C.PROVISIONING_FAILED]
    assert finding.instance_ids == ()
    assert "could not be identified" in finding.proposed_action.reason


def test_failed_extensions_close_the_evidence_of_both_failed_provisioning_findings():
    """Cause 3 and the scale set's own failure share one evidence block: the extensions the scale set's
    summaries show failed, last, and only when there are some; the unidentifiable-instances finding has none."""
    failed = inst("7", state="Failed", error="VMExtensionProvisioningError", health=None)
    status = {"code": "ProvisioningState/failed/KeyVaultSecretNotFound", "message": "Failed to get secret"}
    extensions = {"CustomScript": {"ProvisioningState/failed/1": 1, "ProvisioningState/succeeded": 2}, "Ok": {}}
    found = run(
        replace(
            vmss(*healthy(2), failed, resilient=(False, True)), view_statuses=(status,), extension_summaries=extensions
        )
    )
    for code in (C.PROVISIONING_FAILED, C.SCALE_SET_FAILED):
        evidence = found[code].evidence
        assert evidence["failingExtensions"] == {"CustomScript": 1}
        assert list(evidence)[-1] == "failingExtensions"
    assert found[C.SCALE_SET_FAILED].evidence["errorCode"] == "KeyVaultSecretNotFound"
    quiet = run(vmss(*healthy(2), failed, resilient=(False, True)))
    assert "failingExtensions" not in quiet[C.PROVISIONING_FAILED].evidence
    unreadable = run(
        replace(vmss(inst("0", view=False), summary={"ProvisioningState/failed": 1}), extension_summaries=extensions)
    )
    assert "failingExtensions" not in unreadable[C.PROVISIONING_FAILED].evidence


def test_failed_instance_is_not_repaired_by_the_unhealthy_rule():
    failed = inst("7", state="Failed", error="AllocationFailed", health="Unhealthy", since=500)
    found = run(vmss(*healthy(3), failed, resilient=(False, True)))
    assert C.UNHEALTHY_NOT_REPAIRED not in found
    assert found[C.PROVISIONING_FAILED].instance_ids == ("7",)


# -- cause 4 ---------------------------------------------------------------------------------------------


def test_repairs_suspended_resumes():
    found = run(vmss(*healthy(3), inst("3", health="Unhealthy"), service="Suspended"))
    finding = found[C.REPAIRS_SUSPENDED]
    assert action(finding) == "resume-automatic-repairs"
    assert finding.severity is Severity.ERROR
    assert C.REPAIRS_DISABLED not in found


def test_repairs_suspended_with_misconfigured_health_does_not_resume():
    instances = [inst(str(i), health="Unhealthy") for i in range(3)]
    found = run(vmss(*instances, service="Suspended"))
    finding = found[C.REPAIRS_SUSPENDED]
    assert action(finding) == "none"
    assert finding.proposed_action.reason.startswith("resuming would loop")
    assert C.HEALTH_MONITORING_MISCONFIGURED in found


def test_repairs_suspended_with_policy_off():
    found = run(vmss(*healthy(2), repairs=False, service="Suspended"))
    assert action(found[C.REPAIRS_SUSPENDED]) == "none"


# -- cause 5 and the symptom -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minutes_unhealthy", "expected"),
    [
        (29.9, C.GRACE_PERIOD),  # younger than the 30 min grace period
        (30, C.GRACE_PERIOD),  # exactly at the grace period: repair due, margin running
        (44.9, C.GRACE_PERIOD),
        (45, C.UNHEALTHY_NOT_REPAIRED),  # exactly at grace + margin
        (300, C.UNHEALTHY_NOT_REPAIRED),
    ],
)
def test_grace_period_boundaries(minutes_unhealthy, expected):
    sick = inst("3", health="Unhealthy", since=minutes_unhealthy, state_since=2000)
    found = run(vmss(*healthy(3), sick))
    assert set(found) == {expected}
    assert found[expected].instance_ids == ("3",)


def test_grace_period_says_when_the_platform_should_act():
    sick = inst("3", health="Unhealthy", since=10, state_since=2000)
    finding = run(vmss(*healthy(3), sick))[C.GRACE_PERIOD]
    assert action(finding) == "none"
    assert "2026-11-23T12:20:00Z" in finding.summary
    assert finding.evidence["instances"][0]["repairDueAt"] == "2026-11-23T12:20:00Z"


def test_grace_runs_from_the_latest_state_change():
    # unhealthy for 3 hours, but the VM was restarted 5 minutes ago: the clock restarted too
    sick = inst("3", health="Unhealthy", since=180, state_since=5)
    assert set(run(vmss(*healthy(3), sick))) == {C.GRACE_PERIOD}


def test_missing_grace_period_assumes_azure_default():
    sick = inst("3", health="Unhealthy", since=40, state_since=2000)
    assert set(run(vmss(*healthy(3), sick, grace=None))) == {C.GRACE_PERIOD}


def test_set_grace_period_only_when_target_differs():
    sick = inst("3", health="Unhealthy", since=10, state_since=2000)
    same = run(vmss(*healthy(3), sick), target_grace_period=timedelta(minutes=30))
    assert action(same[C.GRACE_PERIOD]) == "none"
    other = run(vmss(*healthy(3), sick), target_grace_period=timedelta(minutes=60))
    assert action(other[C.GRACE_PERIOD]) == "set-grace-period"
    assert other[C.GRACE_PERIOD].proposed_action.params == {"gracePeriod": "PT1H", "current": "PT30M"}


@pytest.mark.parametrize("repair_action", ["Replace", "Reimage", "Restart", None])
def test_unhealthy_not_repaired_uses_policy_repair_action(repair_action):
    sick = inst("3", health="Unhealthy", since=120, state_since=2000)
    finding = run(vmss(*healthy(3), sick, action=repair_action))[C.UNHEALTHY_NOT_REPAIRED]
    assert action(finding) == "repair-instances"
    assert params(finding) == {
        "repairAction": repair_action or "Replace",
        "instanceIds": ["3"],
        "heldInstances": [],
    }


def test_single_instance_scale_set_is_repaired():
    finding = run(vmss(inst("0", health="Unhealthy", since=120, state_since=2000)))[C.UNHEALTHY_NOT_REPAIRED]
    assert action(finding) == "repair-instances"


def test_protected_instances_are_reported_not_repaired():
    sick = inst("3", health="Unhealthy", since=120, protected=True)
    sick2 = inst("4", health="Unknown", since=120)
    finding = run(vmss(*healthy(4), sick, sick2))[C.UNHEALTHY_NOT_REPAIRED]
    assert finding.instance_ids == ("3", "4")
    assert acted_ids(finding) == ["4"]
    only_protected = run(vmss(*healthy(4), sick))[C.UNHEALTHY_NOT_REPAIRED]
    assert acted_ids(only_protected) == []
    (held,) = held_of(only_protected)
    assert held == {"instanceId": "3", "reason": "protectFromScaleSetActions is set", "reasonCode": "protected"}


def test_no_grace_findings_when_repairs_not_running():
    sick = inst("3", health="Unhealthy", since=120)
    found = run(vmss(*healthy(3), sick, repairs=False, service="NotRunning"))
    assert set(found) == {C.REPAIRS_DISABLED}


def test_unhealthy_without_timestamp_is_never_overdue():
    sick = inst("3", health="Unhealthy", since=None, state_since=None)
    found = run(vmss(*healthy(3), sick))
    assert set(found) == {C.GRACE_PERIOD}
    assert "has not reported" in found[C.GRACE_PERIOD].summary


# -- resilient create / delete ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("create", "delete", "expected"),
    [
        (False, False, {C.RESILIENT_CREATE_DISABLED, C.RESILIENT_DELETE_DISABLED}),
        (True, False, {C.RESILIENT_DELETE_DISABLED}),
        (False, True, {C.RESILIENT_CREATE_DISABLED}),
        (True, True, set()),
    ],
)
def test_resiliency_disabled(create, delete, expected):
    found = run(vmss(*healthy(2), resilient=(create, delete)), propose_resiliency=True)
    assert set(found) == expected
    for code in expected:
        assert found[code].severity is Severity.INFO
        assert found[code].evidence["minimumApiVersion"] == "2023-07-01"
        assert found[code].evidence["registerCommand"].startswith("az feature register")
    if C.RESILIENT_CREATE_DISABLED in found:
        assert found[C.RESILIENT_CREATE_DISABLED].evidence["featureFlag"].endswith("ResilientVMScaleSetVMCreation")
        assert action(found[C.RESILIENT_CREATE_DISABLED]) == "enable-resilient-vm-create"
    if C.RESILIENT_DELETE_DISABLED in found:
        assert found[C.RESILIENT_DELETE_DISABLED].evidence["featureFlag"].endswith("ReliableVMDeletion")
        assert action(found[C.RESILIENT_DELETE_DISABLED]) == "enable-resilient-vm-delete"


@pytest.mark.parametrize(
    ("snapshot", "settings", "why"),
    [
        (vmss(*healthy(2), resilient=(False, False)), {}, "AUTOHEAL_PROPOSE_RESILIENCY=true"),
        (vmss(resilient=(False, False)), {"propose_resiliency": True}, "no instances"),
        (
            vmss(*healthy(2), resilient=(False, False), tags={"aksEngineVersion": "v0.47.0-aks"}),
            {"propose_resiliency": True},
            "AKS",
        ),
    ],
)
def test_resiliency_off_is_informational_unless_opted_in_for_an_unowned_scale_set_with_instances(
    snapshot, settings, why
):
    """Issue 20: a preview feature off is informational; enabling it is opt-in, never for owned or empty sets."""
    found = run(snapshot, **settings)
    for code in (C.RESILIENT_CREATE_DISABLED, C.RESILIENT_DELETE_DISABLED):
        proposed = found[code].proposed_action
        assert (proposed.code.value, proposed.reason_code) == ("none", "informational")
        assert why in proposed.reason


@pytest.mark.parametrize("code", ["OSProvisioningTimedOut", "VMStartTimedOut"])
def test_create_timed_out_with_resilient_create_off(code):
    failed = inst("5", state="Failed", error=code, health=None, created=10)
    found = run(vmss(*healthy(2), failed, resilient=(False, True)))
    finding = found[C.CREATE_TIMED_OUT]
    assert finding.instance_ids == ("5",)
    assert action(finding) == "replace-failed-instances"
    assert "did not retry" in finding.summary
    assert C.PROVISIONING_FAILED not in found  # one finding per failed instance


@pytest.mark.parametrize(("age", "acts"), [(10, False), (30, True)])
def test_create_timed_out_respects_resilient_create_window(age, acts):
    failed = inst("5", state="Failed", error="OSProvisioningTimedOut", health=None, created=age, power="stopped")
    finding = run(vmss(*healthy(2), failed))[C.CREATE_TIMED_OUT]
    assert action(finding) == "replace-failed-instances"
    assert acted_ids(finding) == (["5"] if acts else [])


def test_delete_failed_by_resilient_status_and_platform_in_progress():
    gave_up = inst("4", state="Failed", error="InternalExecutionError", deletion="Failed", health=None)
    retrying = inst("5", state="Failed", error="InternalExecutionError", deletion="In Progress", health=None)
    found = run(vmss(*healthy(2), gave_up, retrying, capacity=2))
    finding = found[C.DELETE_FAILED]
    assert set(finding.instance_ids) == {"4", "5"}
    assert acted_ids(finding) == ["4"]
    assert finding.evidence["platformRetrying"] == ["5"]
    only_retrying = run(vmss(*healthy(2), retrying, capacity=2))[C.DELETE_FAILED]
    assert acted_ids(only_retrying) == []
    (held,) = held_of(only_retrying)
    assert held["instanceId"] == "5" and held["reasonCode"] == "platform-retrying"
    assert "In Progress" in held["reason"]


def test_delete_failed_by_surplus_over_capacity():
    leftover = inst("4", state="Failed", error="InternalExecutionError", health=None)
    found = run(vmss(*healthy(3), leftover, capacity=3, resilient=(True, False)))
    assert found[C.DELETE_FAILED].instance_ids == ("4",)
    assert C.PROVISIONING_FAILED not in found


@pytest.mark.parametrize(("minutes_deleting", "stuck"), [(29, False), (30, True)])
def test_deleting_too_long(minutes_deleting, stuck):
    deleting = inst("4", state="Deleting", health=None, state_since=minutes_deleting)
    found = run(vmss(*healthy(3), deleting, capacity=3))
    assert (C.DELETE_FAILED in found) is stuck
    if stuck:
        assert action(found[C.DELETE_FAILED]) == "retry-delete"


def test_findings_are_ordered_by_severity():
    failed = inst("5", state="Failed", error="OSProvisioningTimedOut", health=None, created=100)
    findings = diagnose(vmss(*healthy(2), failed, repairs=None, service=None, resilient=(False, False)), SETTINGS, NOW)
    ranks = [f.severity.rank for f in findings]
    assert ranks == sorted(ranks, reverse=True)
    assert {f.code for f in findings} == {
        C.CREATE_TIMED_OUT,
        C.REPAIRS_DISABLED,
        C.RESILIENT_CREATE_DISABLED,
        C.RESILIENT_DELETE_DISABLED,
    }


def test_finding_contract_shape():
    sick = inst("3", health="Unhealthy", since=120)
    finding = run(vmss(*healthy(3), sick))[C.UNHEALTHY_NOT_REPAIRED].to_dict()
    assert set(finding) == {
        "code",
        "severity",
        "scaleSetId",
        "instanceIds",
        "summary",
        "evidence",
        "reference",
        "proposedAction",
    }
    assert finding["reference"].startswith("Troubleshooting")
    import json

    json.dumps(finding)  # evidence is JSON-ready


# -- health sources Azure refuses repairs for ------------------------------------------------------------

EXTENSION = HealthSource("applicationHealthExtension", "ApplicationHealthLinux", "http", 80, "/healthz")
PROBE = HealthSource("loadBalancerProbe", probe_id="/subscriptions/x/.../loadBalancers/lb/probes/http")


@pytest.mark.parametrize(
    ("mode", "sources", "problem", "says"),
    [
        # health-extension doc: only one source; "If you have both ... remove one"
        ("Uniform", (EXTENSION, PROBE), "two-health-sources", "drop virtualMachineProfile.networkProfile.healthProbe"),
        ("Flexible", (EXTENSION, PROBE), "two-health-sources", "remove one"),
        # orchestration-modes doc: Flexible has no application health via an SLB probe
        ("Flexible", (PROBE,), "flexible-lb-probe", "add the Application Health extension"),
    ],
)
@pytest.mark.parametrize("repairs", [True, False])
def test_health_source_conflicts_say_what_to_change_and_never_propose_enabling(mode, sources, problem, says, repairs):
    snapshot = replace(
        vmss(*healthy(3), mode=mode, repairs=repairs, service="Running" if repairs else "NotRunning"),
        health_sources=sources,
    )
    found = run(snapshot)
    finding = found[C.HEALTH_MONITORING_MISCONFIGURED]
    assert finding.evidence["problem"] == problem
    assert says in finding.summary and action(finding) == "none"
    assert finding.proposed_action.reason_code == problem
    if not repairs:
        disabled = found[C.REPAIRS_DISABLED]
        assert action(disabled) == "none" and disabled.proposed_action.reason_code == problem
    assert found and all(action(f) != "enable-automatic-repairs" for f in found.values())


def test_flexible_with_only_an_lb_probe_and_a_uniform_one_is_fine():
    assert C.HEALTH_MONITORING_MISCONFIGURED not in run(vmss(*healthy(3), mode="Uniform", source="lb"))
    assert C.HEALTH_MONITORING_MISCONFIGURED in run(vmss(*healthy(3), mode="Flexible", source="lb"))


# -- resilient create's window follows the scale-out, not the current attempt ------------------------------


@pytest.mark.parametrize(
    ("others", "acts"),
    [
        ((), False),  # only the new attempt (5 min old) is visible: inside the window
        ((inst("3", state="Creating", health=None, created=40),), True),  # the scale-out began 40 min ago
        ((inst("2", state="Failed", error="VMStartTimedOut", health=None, created=35, power="starting"),), True),
        ((inst("2", state="Failed", error="AllocationFailed", health=None, created=35),), False),  # not a retry path
    ],
)
def test_resilient_create_window_is_keyed_to_the_scale_out(others, acts):
    """Resilient create deletes and recreates the VM (new instance id), so the window starts at the oldest
    instance still on the create path, not at the current attempt (learn.microsoft.com/azure/
    virtual-machine-scale-sets/resilient-vm-create)."""
    retry = inst("9", state="Failed", error="OSProvisioningTimedOut", health=None, created=5, power="starting")
    found = run(vmss(*healthy(2), retry, *others))
    finding = found[C.CREATE_TIMED_OUT]
    assert ("9" in acted_ids(finding)) is acts


# -- Flexible: the repairs service state cannot be read ------------------------------------------------------


def test_flexible_findings_say_the_service_state_is_unreadable_never_running():
    snapshot = replace(
        vmss(*healthy(2), inst("5", health="Unhealthy", since=120), mode="Flexible", service=None),
        instance_view_read=False,
        orchestration_services=(),
    )
    finding = run(snapshot)[C.UNHEALTHY_NOT_REPAIRED]
    assert finding.evidence["serviceState"].startswith("unreadable")
    assert "cannot be read" in finding.summary and "Running" not in finding.summary
    waiting = replace(snapshot, instances=(*healthy(2), inst("5", health="Unhealthy", since=10)))
    grace = run(waiting)[C.GRACE_PERIOD]
    assert grace.evidence["serviceState"].startswith("unreadable") and "cannot be read" in grace.summary
    disabled = run(replace(snapshot, repairs=RepairsPolicy(present=True, enabled=False)))[C.REPAIRS_DISABLED]
    assert disabled.evidence["serviceState"].startswith("unreadable")


# -- a create "timed out" but the VM runs (issue 20) -------------------------------------------------------


@pytest.mark.parametrize(
    ("power", "health", "replaced"),
    [
        ("running", None, False),  # agentless image: runs fine, reports nothing
        ("running", "Healthy", False),
        ("running", "Unknown", False),
        ("running", "Unhealthy", True),  # health says it is broken
        ("stopped", None, True),  # not running
        ("starting", None, True),
    ],
)
def test_running_despite_a_create_timeout_is_held_for_a_person(power, health, replaced):
    timed_out = inst("5", state="Failed", error="OSProvisioningTimedOut", health=health, created=40, power=power)
    finding = run(vmss(*healthy(3), timed_out, resilient=(False, True)))[C.CREATE_TIMED_OUT]
    assert acted_ids(finding) == (["5"] if replaced else [])
    held = [h.reason_code for h in finding.proposed_action.held]
    assert held == ([] if replaced else ["running-despite-timeout"])
    assert finding.evidence["instances"][0]["powerState"] == power


# -- the last operation (an update) failed, the VM still runs (kubernetes/autoscaler#5767) ------------------------


@pytest.mark.parametrize(
    ("code", "power", "health", "replaced"),
    [
        ("NetworkingInternalOperationError", "running", "Healthy", False),  # serving: a person retries the update
        ("NetworkingInternalOperationError", "running", None, False),
        ("NetworkingInternalOperationError", "running", "Unhealthy", True),  # health says it is broken
        ("NetworkingInternalOperationError", "stopped", None, True),  # not running
        ("VMExtensionProvisioningError", "running", "Healthy", True),  # a create's failure: cause 3 as written
    ],
)
def test_a_failed_update_on_a_running_vm_is_held_for_a_person(code, power, health, replaced):
    failed = inst("5", state="Failed", error=code, health=health, created=40, power=power)
    finding = run(vmss(*healthy(3), failed, resilient=(False, True)))[C.PROVISIONING_FAILED]
    assert acted_ids(finding) == (["5"] if replaced else [])
    held = [h.reason_code for h in finding.proposed_action.held]
    assert held == ([] if replaced else ["running-after-failed-update"])
    assert finding.evidence.get("runningAfterFailedUpdate", []) == ([] if replaced else ["5"])
