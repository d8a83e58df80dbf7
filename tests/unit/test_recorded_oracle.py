"""Azure's recorded bytes are the oracle (issue 19): the snapshot parser and diagnosis, the budget's header parser
and the error classifier run on every recorded exchange in tests/recorded/ (sources in its index.json)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from autoheal.diagnosis import diagnose
from autoheal.gateway.budget import (
    LONGEST_WINDOW_MINUTES,
    POLICIES,
    ComputeBudget,
    learned_limit,
    parse_readings,
    parse_remaining,
)
from autoheal.gateway.errors import ErrorClass, classify, from_body, missing_action
from autoheal.model import FindingCode as C
from autoheal.model import HealthState, parse_time
from autoheal.settings import default_settings
from autoheal.snapshot import parse_instance, parse_scale_set
from tests.recorded import corpus

NOW = datetime(2026, 12, 3, tzinfo=UTC)
ENTRY = re.compile(r"^\s*Microsoft\.Compute/[^;]+;-?\d+\s*$")


def test_the_corpus_is_whole_and_every_file_has_a_source():
    entries = corpus.entries()
    assert len(entries) >= 35
    for entry in entries:
        assert entry.source.get("url") or (entry.source.get("repo") and entry.source.get("commit")), entry.name
        assert {"method", "url", "headers", "body"} <= set(entry.request), entry.name
        assert {"status", "headers", "body"} <= set(entry.response), entry.name
    for category in ("vmss-get", "instance-view", "orchestration-suspended", "lro", "error-429", "error-403"):
        assert corpus.by_category(category), category


# -- the snapshot parser and diagnosis on every recorded scale set --------------------------------------------

# Expected findings, written by reading each payload; the field each rests on is named.
NO_RESILIENCY = {C.RESILIENT_CREATE_DISABLED, C.RESILIENT_DELETE_DISABLED}  # properties.resiliencyPolicy absent
EXPECTED: dict[str, tuple[set[C], str]] = {
    "cli-vmss-get-uniform-health-extension": (
        {C.REPAIRS_DISABLED} | NO_RESILIENCY,
        "properties.automaticRepairsPolicy absent (the ApplicationHealthLinux extension is the health source)",
    ),
    "cli-vmss-get-before-repairs-update": (
        {C.REPAIRS_DISABLED} | NO_RESILIENCY,
        "properties.automaticRepairsPolicy absent, read just before the PUT that enables it",
    ),
    "cli-vmss-get-no-health-source": (
        {C.REPAIRS_DISABLED, C.HEALTH_MONITORING_MISCONFIGURED} | NO_RESILIENCY,
        "no virtualMachineProfile.extensionProfile and no networkProfile.healthProbe: no health source at all",
    ),
    "cli-vmss-put-add-health-extension": (
        {C.REPAIRS_DISABLED} | NO_RESILIENCY,
        "extensionProfile now holds ApplicationHealthLinux (http:80 /); automaticRepairsPolicy still absent",
    ),
    "cli-vmss-put-enable-repairs": (
        NO_RESILIENCY,
        "properties.automaticRepairsPolicy {enabled: true, gracePeriod: PT30M, repairAction: Replace}",
    ),
    "cli-vmss-get-repairs-enabled": (
        NO_RESILIENCY,
        "properties.automaticRepairsPolicy {enabled: true, gracePeriod: PT30M, repairAction: Replace}",
    ),
    "net-vmss-get-repairs-lb-probe": (
        NO_RESILIENCY,
        "automaticRepairsPolicy {enabled: true, gracePeriod: PT10M, repairAction: Replace}; the health source is "
        "networkProfile.healthProbe (a load-balancer probe on a Uniform scale set, which repairs accept)",
    ),
    "ps-flexible-put-create": (
        {C.REPAIRS_DISABLED, C.HEALTH_MONITORING_MISCONFIGURED} | NO_RESILIENCY,
        "orchestrationMode Flexible with a whole virtualMachineProfile whose only extensions are "
        "AntimalwareConfiguration and GenevaMonitoring (no ApplicationHealth*), no networkProfile.healthProbe, "
        "no automaticRepairsPolicy",
    ),
    "ps-flexible-resiliency-patch": (
        {C.REPAIRS_DISABLED, C.HEALTH_MONITORING_MISCONFIGURED} | NO_RESILIENCY,
        "the PATCH's answer: the same empty Flexible scale set, still without resiliencyPolicy",
    ),
    "ps-vmss-get-repairs-disabled-restart": (
        {C.REPAIRS_DISABLED} | NO_RESILIENCY,
        "automaticRepairsPolicy {enabled: false, gracePeriod: PT30M, repairAction: Restart}: present but off; "
        "networkProfile.healthProbe is the health source",
    ),
    "ps-flexible-resiliency-get": (
        {C.REPAIRS_DISABLED, C.HEALTH_MONITORING_MISCONFIGURED} | NO_RESILIENCY,
        "orchestrationMode Flexible with no sku, no virtualMachineProfile and no automaticRepairsPolicy; the PUT asked "
        "for resiliencyPolicy enabled but Azure's answer carries none, so both resilient policies read as off",
    ),
}


@pytest.mark.parametrize("entry", corpus.scale_sets(), ids=lambda e: e.name)
def test_every_recorded_scale_set_parses_and_is_diagnosed_as_read(entry):
    body = entry.response["body"]
    snapshot = parse_scale_set(body, None, [], read_at=NOW)
    props = body["properties"]
    assert snapshot.orchestration_mode == props.get("orchestrationMode", "Uniform")
    assert snapshot.capacity == (body.get("sku") or {}).get("capacity")  # an empty Flexible scale set has no sku
    repairs = props.get("automaticRepairsPolicy") or {}
    assert snapshot.repairs.enabled is bool(repairs.get("enabled"))
    assert (snapshot.repairs.grace_period, snapshot.repairs.repair_action) == (
        repairs.get("gracePeriod"),
        repairs.get("repairAction"),
    )  # Replace, Restart: as recorded, even while the policy is off
    resiliency = props.get("resiliencyPolicy") or {}
    assert snapshot.resiliency.present is ("resiliencyPolicy" in props)
    create, delete = (resiliency.get(k) or {} for k in ("resilientVMCreationPolicy", "resilientVMDeletionPolicy"))
    assert snapshot.resiliency.create_enabled is bool(create.get("enabled"))
    assert snapshot.resiliency.delete_enabled is bool(delete.get("enabled"))
    profile = props.get("virtualMachineProfile") or {}  # absent on a Flexible scale set created without one
    extensions = (profile.get("extensionProfile") or {}).get("extensions") or []
    assert {s.extension_type for s in snapshot.health_sources} >= {
        e["properties"]["type"] for e in extensions if "ApplicationHealth" in e["properties"]["type"]
    }
    expected, field = EXPECTED[entry.name]
    found = {f.code for f in diagnose(snapshot, default_settings(), NOW)}
    assert found == expected, field


@pytest.mark.parametrize("entry", corpus.by_category("instance-view"), ids=lambda e: e.name)
def test_every_recorded_instance_view_reads_its_orchestration_services_and_summary(entry):
    view = entry.response["body"]
    repairs_on = next(e for e in corpus.scale_sets() if e.name == "cli-vmss-get-repairs-enabled").response["body"]
    snapshot = parse_scale_set(repairs_on, view, [], read_at=NOW)
    recorded = {s["serviceName"]: s["serviceState"] for s in view.get("orchestrationServices") or []}
    assert {s.name: s.state for s in snapshot.orchestration_services} == recorded
    summary = {s["code"]: s["count"] for s in (view.get("virtualMachine") or {}).get("statusesSummary") or []}
    assert snapshot.statuses_summary == summary
    findings = {f.code for f in diagnose(snapshot, default_settings(), NOW)}
    # orchestrationServices[AutomaticRepairs].serviceState: Suspended is cause 4, Running is not
    assert (C.REPAIRS_SUSPENDED in findings) is (recorded.get("AutomaticRepairs") == "Suspended")


# Each recorded instance view read with the scale set recorded beside it (same id); the field each rests on is named.
PAIRED: dict[str, tuple[set[C], str]] = {
    "net-instance-view-repairs-running": (NO_RESILIENCY, "orchestrationServices[AutomaticRepairs] Running"),
    "net-instance-view-repairs-suspended": (
        {C.REPAIRS_SUSPENDED} | NO_RESILIENCY,
        "orchestrationServices[AutomaticRepairs] Suspended while automaticRepairsPolicy.enabled is true",
    ),
    "net-instance-view-repairs-resumed": (NO_RESILIENCY, "orchestrationServices[AutomaticRepairs] Running again"),
}


@pytest.mark.parametrize("name", sorted(PAIRED))
def test_a_recorded_instance_view_with_its_own_scale_set(name):
    (view,) = [e for e in corpus.by_category("instance-view") if e.name == name]
    scale_set_id = view.request["url"].split("/instanceView")[0].removeprefix("https://management.azure.com")
    (own,) = [e for e in corpus.scale_sets() if e.response["body"]["id"].lower() == scale_set_id.lower()]
    snapshot = parse_scale_set(own.response["body"], view.response["body"], [], read_at=NOW)
    expected, field = PAIRED[name]
    assert {f.code for f in diagnose(snapshot, default_settings(), NOW)} == expected, field


# -- a recorded scale-set VM list with instance views (azure-sdk-for-net TestVMScaleSetVMOperations) -------------


def test_the_recorded_vm_list_with_instance_views_parses_as_recorded():
    """`$expand=instanceView&$select=instanceView`: items without name, two running instances, no vmHealth."""
    (listing,) = corpus.by_category("instance-list-with-views")
    items = listing.response["body"]["value"]
    instances = [parse_instance(vm, flexible=False) for vm in items]
    assert [i.instance_id for i in instances] == [vm["instanceId"] for vm in items] == ["0", "1"]
    for instance, vm in zip(instances, items, strict=True):
        statuses = {s["code"]: s for s in vm["properties"]["instanceView"]["statuses"]}
        assert instance.provisioning_state == vm["properties"]["provisioningState"] == "Succeeded"
        assert instance.view_provisioning_state == "succeeded" and instance.provisioning_error_code is None
        assert instance.power_state == "running"  # statuses[PowerState/running]
        assert instance.provisioning_time == parse_time(statuses["ProvisioningState/succeeded"]["time"])
        assert instance.health is None  # no vmHealth: the scale set has no Application Health extension
        assert instance.has_instance_view and instance.name == ""  # $select leaves no name


def test_the_recorded_instance_view_of_one_vm_reads_as_its_list_item():
    vm = next(e for e in corpus.entries() if e.name == "net-vmss-vm-get").response["body"]
    view = next(e for e in corpus.entries() if e.name == "net-vmss-vm-instance-view").response["body"]
    (listing,) = corpus.by_category("instance-list-with-views")
    whole = {**vm, "properties": {**vm["properties"], "instanceView": view}}  # the two recorded answers joined
    one, listed = (
        parse_instance(whole, flexible=False),
        parse_instance(listing.response["body"]["value"][0], flexible=False),
    )
    fields = (
        "instance_id",
        "provisioning_state",
        "view_provisioning_state",
        "power_state",
        "health",
        "provisioning_time",
    )
    assert [getattr(one, f) for f in fields] == [getattr(listed, f) for f in fields]
    assert one.name == "vmss1073_0"


def test_healthy_recorded_instances_give_no_instance_finding():
    """Expected absence: the two recorded running instances (another recorded scale set's) put under the recorded
    repairs-enabled scale set read with its Running view give no provisioning or health finding."""
    own = next(e for e in corpus.scale_sets() if e.name == "net-vmss-get-repairs-lb-probe").response["body"]
    view = next(e for e in corpus.entries() if e.name == "net-instance-view-repairs-running").response["body"]
    (listing,) = corpus.by_category("instance-list-with-views")
    snapshot = parse_scale_set(own, view, listing.response["body"]["value"], read_at=NOW)
    assert len(snapshot.instances) == 2
    assert {f.code for f in diagnose(snapshot, default_settings(), NOW)} == NO_RESILIENCY


# -- instance-view fragments pasted in public issues (tests/recorded/fragments.json) ----------------------------
# No Microsoft recording of a scale-set VM list with vmHealth or a Failed code was found: each fragment is put in
# one composed VM (name, id, instanceId made up; statuses or vmHealth verbatim) of the recorded scale set
# net-vmss-get-repairs-lb-probe (repairs enabled, PT10M) read with its recorded Running instance view.


def _recorded_fleet_with(fragment: dict[str, object]) -> tuple[dict[C, str], object]:
    own = next(e for e in corpus.scale_sets() if e.name == "net-vmss-get-repairs-lb-probe").response["body"]
    view = next(e for e in corpus.entries() if e.name == "net-instance-view-repairs-running").response["body"]
    codes = fragment.get("statusCodes") or ["ProvisioningState/succeeded", "PowerState/running"]
    instance_view: dict[str, object] = {"statuses": [{"code": c} for c in codes]}
    instance_view.update(fragment.get("instanceView") or {})  # type: ignore[arg-type]
    failed = any(str(c).lower().startswith("provisioningstate/failed") for c in codes)
    vm = {
        "name": "vmss7777_0",
        "instanceId": "0",
        "id": own["id"] + "/virtualMachines/0",
        "properties": {"provisioningState": "Failed" if failed else "Succeeded", "instanceView": instance_view},
    }
    snapshot = parse_scale_set(own, view, [vm], read_at=NOW)
    return {f.code: f.summary for f in diagnose(snapshot, default_settings(), NOW)}, snapshot


def test_the_pasted_vmhealth_reads_unhealthy_and_is_called_not_repaired():
    fragment = corpus.fragments()["vmhealth-unhealthy"]
    found, snapshot = _recorded_fleet_with(fragment)
    (instance,) = snapshot.instances  # type: ignore[attr-defined]
    assert instance.health is HealthState.UNHEALTHY  # vmHealth.status.code HealthState/unhealthy
    assert instance.health_since == datetime(2020, 6, 25, 21, 4, 48, tzinfo=UTC)  # its time, -07:00 read as UTC
    # unhealthy since 2020 while repairs run (Running, PT10M): far past the grace period and margin
    assert set(found) == {C.UNHEALTHY_NOT_REPAIRED} | NO_RESILIENCY


@pytest.mark.parametrize(
    ("name", "code", "finding"),
    [
        ("failed-os-provisioning-timed-out-running", "OSProvisioningTimedOut", C.CREATE_TIMED_OUT),
        ("failed-networking-internal-running", "NetworkingInternalOperationError", C.PROVISIONING_FAILED),
    ],
)
def test_a_pasted_failed_provisioning_code_is_read_and_named(name, code, finding):
    found, snapshot = _recorded_fleet_with(corpus.fragments()[name])
    (instance,) = snapshot.instances  # type: ignore[attr-defined]
    assert instance.provisioning_error_code == code  # ProvisioningState/failed/<code>
    assert instance.power_state == "running"  # PowerState/running beside it
    assert set(found) == {finding} | NO_RESILIENCY
    if finding is C.PROVISIONING_FAILED:
        assert code in found[finding]  # the finding names the recorded code


# -- the budget's header parser on every recorded header value -------------------------------------------------


def _values() -> list[tuple[str, str]]:
    return list(corpus.ratelimit_values())


@pytest.mark.parametrize(("where", "value"), _values(), ids=[w for w, _ in _values()])
def test_every_recorded_header_value_parses_into_one_reading_per_entry(where, value):
    readings = parse_readings(value)
    assert len(readings) == len([p for p in value.split(",") if ENTRY.match(p)]) > 0
    assert len({r.key for r in readings}) == len(readings)  # a repeated name is a separate bucket
    lowest: dict[str, int] = {}
    for r in readings:
        lowest[r.name] = min(r.remaining, lowest.get(r.name, r.remaining))
    assert parse_remaining(value) == lowest  # the lowest remaining wins in the {name: remaining} view


@pytest.mark.parametrize(("where", "value"), _values(), ids=[w for w, _ in _values()])
def test_what_the_budget_learns_is_never_more_optimistic_than_microsofts_table(where, value):
    for reading in parse_readings(value):
        limit, documented = learned_limit(reading, reading.remaining + 1)
        if reading.scope == "window":  # never faster than the window allows
            window = reading.window_minutes or LONGEST_WINDOW_MINUTES
            assert limit.refill_per_minute <= limit.capacity / window + 1e-9
        if reading.policy is not None:
            table = POLICIES[reading.policy].subscription
            row = POLICIES[reading.policy].resource if reading.scope == "resource" else table
            assert documented
            assert limit.refill_per_minute <= (row or table).refill_per_minute  # never refills faster
            if reading.scope == "window" and reading.long_window:
                assert limit.capacity >= table.capacity  # the floor under it is at least the documented one
            if reading.scope != "window" and row is not None:
                assert (limit.capacity, limit.refill_per_minute) == (row.capacity, row.refill_per_minute)
        else:
            assert not documented  # unknown stems are learned only from what Azure reported


@pytest.mark.parametrize(("where", "value"), _values(), ids=[w for w, _ in _values()])
def test_the_budget_observes_every_recorded_value_without_error(where, value):
    budget = ComputeBudget(share=0.25, monotonic=lambda: 0.0, sleep=lambda _: None)
    budget.observe(value, "", "call")
    buckets = budget.figures()["buckets"]
    tokens = [r for r in parse_readings(value) if r.tokens]
    assert set(buckets) == {r.key for r in tokens}
    for reading in tokens:
        bucket = buckets[reading.key]
        if reading.policy is not None:
            table = POLICIES[reading.policy].subscription
            assert bucket["refillPerMinute"] <= table.refill_per_minute
            assert bucket["capacity"] >= min(reading.remaining + 1, table.capacity)


def test_recorded_windows_are_recognised():
    windows = {r.window_minutes for _, v in _values() for r in parse_readings(v)}
    assert {3, 30, 5} <= windows
    stems = {r.policy for _, v in _values() for r in parse_readings(v)}
    assert {"VMSS High Cost Get", "VMSS Low Cost Get", "Get Operation", "VMSS Delete"} <= stems


# -- the error classifier on every recorded error body -----------------------------------------------------------

EXPECTED_CLASS = {
    "error-409-vmss-marked-for-deletion": ErrorClass.REFUSED,  # the scale set itself is being deleted
    "error-409-vm-marked-for-deletion": ErrorClass.ALREADY_DELETING,
    "error-409-quota": ErrorClass.REFUSED,
    "error-409-concurrent": ErrorClass.CONFLICT,
    "error-403": ErrorClass.FORBIDDEN,
    "error-404": ErrorClass.NOT_FOUND,
    "error-400": ErrorClass.REJECTED,
    "error-429": ErrorClass.THROTTLED,
}


def _expected_class(entry: corpus.Entry) -> ErrorClass:
    (category,) = [c for c in entry.categories if c in EXPECTED_CLASS]
    return EXPECTED_CLASS[category]


@pytest.mark.parametrize("entry", corpus.errors(), ids=lambda e: e.name)
def test_every_recorded_error_body_is_classified(entry):
    error = from_body(entry.response["status"], entry.response["body"])
    assert error.code and error.message
    assert classify(error) is _expected_class(entry)
    if error.status == 403:
        action = missing_action(error.message)
        assert action is None or action.startswith("Microsoft.")


@pytest.mark.parametrize("entry", corpus.by_category("error-429"), ids=lambda e: e.name)
def test_computes_429_body_is_throttled_even_without_the_status(entry):
    """A long-running operation's status body carries no HTTP 429: the body's own words must say throttled."""
    error = from_body(None, entry.response["body"])
    assert error.detail_codes and set(error.detail_codes) == {"TooManyRequests"}
    assert classify(error) is ErrorClass.THROTTLED


@pytest.mark.parametrize("entry", corpus.by_category("lro-failed"), ids=lambda e: e.name)
def test_an_operation_that_ended_failed_is_retried_later_not_refused(entry):
    """A long-running operation's status body `{"status": "Failed", "error": {...}}` (no HTTP error status):
    the platform's own failure (OSProvisioningTimedOut, VMExtensionProvisioningTimeout) may pass on retry."""
    body = entry.response["body"]
    assert body["status"] == "Failed"
    error = from_body(None, body)
    assert error.code == body["error"]["code"] and error.detail_codes
    assert classify(error) is ErrorClass.TRANSIENT
