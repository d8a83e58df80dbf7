"""Event parsing and classification, on Microsoft's samples and on fuzzed garbage."""

from __future__ import annotations

import copy
import json
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoheal.events import (
    ACCEPTED_EVENT_TYPES,
    MalformedEvent,
    Verdict,
    classify,
    load_events,
    parse_event,
)
from autoheal.handlers import EventHandler
from autoheal.runtime import Runtime
from autoheal.settings import default_settings
from tests.helpers import EVENT_EXAMPLES

SUB = "6f1d3c2a-8b4e-4d7f-9a0c-1e2f3a4b5c6d"
VMSS = f"/subscriptions/{SUB}/resourceGroups/rg-shop/providers/Microsoft.Compute/virtualMachineScaleSets/web"
SAMPLES = sorted(EVENT_EXAMPLES.rglob("*examples/*/*.json"))


def load(path):
    return json.loads(path.read_text())


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_microsoft_samples_parse_and_are_never_ours(path):
    event = parse_event(load(path))
    assert event.id and event.event_type
    verdict = classify(event, SUB)
    assert verdict.verdict in (Verdict.IGNORE, Verdict.REJECT)


def resource_event(event_type="Microsoft.Resources.ResourceWriteFailure", **data):
    payload = load(EVENT_EXAMPLES / "Microsoft.Resources/examples/event-grid-schema/resource_write_failure.json")
    payload["eventType"] = event_type
    payload["data"].update(
        {"resourceUri": VMSS, "operationName": "Microsoft.Compute/virtualMachineScaleSets/write", **data}
    )
    return payload


@pytest.mark.parametrize("event_type", [t for t in ACCEPTED_EVENT_TYPES if t.startswith("Microsoft.Resources.")])
def test_every_resource_event_type_on_a_scale_set_is_evaluated(event_type):
    verdict = classify(parse_event(resource_event(event_type)), SUB)
    assert verdict.verdict is Verdict.EVALUATE
    assert verdict.scale_set_id == VMSS and verdict.scale_set == "web" and verdict.resource_group == "rg-shop"


def test_classification_ignores_status():
    for status in ("Succeeded", "Failed", None):
        assert classify(parse_event(resource_event(status=status)), SUB).verdict is Verdict.EVALUATE


def test_scale_set_vm_operation_in_any_case():
    vm = VMSS.upper().replace(SUB.upper(), SUB) + "/VIRTUALMACHINES/3"
    payload = resource_event(
        resourceUri=vm, operationName="microsoft.compute/virtualmachinescalesets/virtualmachines/delete"
    )
    verdict = classify(parse_event(payload), SUB)
    assert verdict.verdict is Verdict.EVALUATE and verdict.scale_set.lower() == "web"


def test_spacing_in_an_id_is_refused_not_trimmed():
    """ARM names never start or end with whitespace: " web " names no scale set (issue 21), so no evaluation."""
    for resource in (VMSS.replace("/subscriptions/", "/subscriptions/ "), VMSS.replace("/web", "/ web ")):
        verdict = classify(parse_event(resource_event(resourceUri=resource)), SUB)
        assert verdict.verdict is Verdict.REJECT and verdict.code == "id-whitespace", verdict


def test_other_operations_and_subscriptions():
    assert (
        classify(parse_event(resource_event(operationName="Microsoft.Compute/disks/write")), SUB).verdict
        is Verdict.IGNORE
    )
    foreign = resource_event(resourceUri=VMSS.replace(SUB, "00000000-0000-0000-0000-000000000001"))
    assert classify(parse_event(foreign), SUB).verdict is Verdict.REJECT


def test_cloud_event_with_camel_case_spec_version():
    payload = load(EVENT_EXAMPLES / "Microsoft.Resources/examples/cloud-events-schema/resource_write_failure.json")
    assert "specVersion" in payload
    payload["data"].update({"resourceUri": VMSS, "operationName": "Microsoft.Compute/virtualMachineScaleSets/write"})
    event = parse_event(payload)
    assert event.schema == "cloudevents"
    assert classify(event, SUB).verdict is Verdict.EVALUATE


def test_health_event_targets():
    payload = load(
        EVENT_EXAMPLES
        / "Microsoft.ResourceNotifications/examples/event-grid-schema/HealthResources_AvailabilityStatusChanged.json"
    )
    on_instance = copy.deepcopy(payload)
    on_instance["data"]["resourceInfo"]["properties"]["targetResourceId"] = VMSS + "/virtualMachines/7"
    verdict = classify(parse_event(on_instance), SUB)
    assert verdict.verdict is Verdict.EVALUATE and verdict.details == {"availabilityState": "Available"}
    on_vm = copy.deepcopy(payload)
    on_vm["data"]["resourceInfo"]["properties"]["targetResourceId"] = (
        f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/app_1a2b"
    )
    verdict = classify(parse_event(on_vm), SUB)
    assert verdict.verdict is Verdict.LOOKUP_VM and verdict.details["vm"] == "app_1a2b"


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ("just a string", "must be a JSON object"),
        ({"id": "1"}, "neither Event Grid"),
        (
            {"id": "1", "eventType": "Microsoft.Resources.ResourceWriteFailure", "subject": "s", "data": "not json"},
            "data is not JSON",
        ),
        ({"id": 7, "eventType": "x", "subject": "s", "data": {}}, "id must be a string"),
        ({"id": "x" * 10_000, "eventType": "x", "subject": "s", "data": {}}, "characters long"),
        ({"specversion": "1.0", "type": "t", "source": "s", "data": {}}, "missing id"),
    ],
)
def test_malformed_payloads_say_why(payload, why):
    with pytest.raises(MalformedEvent, match=why):
        parse_event(payload)


@pytest.mark.parametrize(
    ("resource", "code"),
    [
        ("x" * 5000, "id-too-long"),
        ("/subscriptions/x/resourceGroups/y", "id-not-arm"),
        (VMSS + "/virtualMachines/../../../virtualMachineScaleSets/other", "id-dot-segment"),
        (VMSS.replace("/web", "/we%2Fb"), "id-encoded-character"),
        (VMSS.replace("/providers", "//providers"), "id-empty-segment"),
        (VMSS.replace("Microsoft.Compute", "Microsoft.Storage"), "id-wrong-provider"),
        (VMSS.replace(SUB, "00000000-0000-0000-0000-000000000001"), "id-foreign-subscription"),
        (VMSS.replace("/web", "/" + "w" * 65), "id-bad-name"),
        (
            f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
            "id-does-not-match-operation",
        ),
    ],
)
def test_hostile_resource_ids_are_rejected_with_a_reason_code(resource, code):
    """Issue 13 item 2: a traversal id was classified as scale set `web` and remediated."""
    verdict = classify(parse_event(resource_event(resourceUri=resource)), SUB)
    assert verdict.verdict is Verdict.REJECT and verdict.code == code, verdict


@pytest.mark.parametrize(
    "event_type",
    [
        "Microsoft.Resources.ResourceWriteFailure",
        "Microsoft.Resources.ResourceActionFailure",
        "Microsoft.Resources.ResourceDeleteFailure",
    ],
)
def test_flexible_vm_failures_look_up_their_scale_set(event_type):
    vm = f"/subscriptions/{SUB}/resourceGroups/rg-vms/providers/Microsoft.Compute/virtualMachines/web_ab12cd"
    payload = resource_event(event_type, resourceUri=vm, operationName="Microsoft.Compute/virtualMachines/write")
    verdict = classify(parse_event(payload), SUB)
    assert verdict.verdict is Verdict.LOOKUP_VM
    assert verdict.details["vm"] == "web_ab12cd" and verdict.resource_group == "rg-vms"


def test_vm_successes_are_ignored_with_a_reason_code():
    vm = f"/subscriptions/{SUB}/resourceGroups/rg-vms/providers/Microsoft.Compute/virtualMachines/web_ab12cd"
    payload = resource_event(
        "Microsoft.Resources.ResourceWriteSuccess",
        resourceUri=vm,
        operationName="Microsoft.Compute/virtualMachines/write",
    )
    verdict = classify(parse_event(payload), SUB)
    assert (verdict.verdict, verdict.code) == (Verdict.IGNORE, "vm-operation-succeeded")


def test_load_events_accepts_one_or_many():
    one = json.dumps(resource_event())
    assert len(load_events(one)) == 1
    assert len(load_events(f"[{one},{one}]")) == 2
    with pytest.raises(MalformedEvent, match="not JSON"):
        load_events(b"\xff\xfe{")
    with pytest.raises(MalformedEvent):
        load_events("42")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
field_names = st.sampled_from(
    [
        "id",
        "eventType",
        "subject",
        "data",
        "topic",
        "eventTime",
        "dataVersion",
        "specversion",
        "specVersion",
        "type",
        "source",
        "time",
    ]
)
event_like = st.dictionaries(field_names, json_values | st.text(max_size=3000), max_size=8)
data_like = st.fixed_dictionaries(
    {
        "id": st.text(min_size=1, max_size=40),
        "eventType": st.sampled_from(ACCEPTED_EVENT_TYPES),
        "subject": st.text(max_size=100),
        "eventTime": st.just("2026-11-23T00:00:00Z"),
        "dataVersion": st.just("2"),
        "data": st.dictionaries(
            st.sampled_from(["resourceUri", "operationName", "resourceInfo", "status"]),
            json_values | st.text(max_size=300),
            max_size=4,
        ),
    }
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.one_of(json_values, event_like, data_like))
def test_fuzzed_payloads_never_escape_the_handler(payload, caplog):
    """No exception escapes; every dropped event is logged with its reason."""
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="autoheal")
    handler = EventHandler(Runtime(default_settings(subscription_id=SUB)))
    outcome = handler.handle(payload)
    assert outcome.status in {"malformed", "ignored", "rejected"}, outcome
    assert outcome.reason and outcome.code
    assert any(
        f"({outcome.status}, {outcome.code})" in r.getMessage() and getattr(r, "reasonCode", "") == outcome.code
        for r in caplog.records
    )


def test_the_membership_memory_expires_and_stays_bounded():
    from autoheal.handlers import ExpiringMap

    now = [0.0]
    memo = ExpiringMap(3, lambda: now[0])
    memo.put("a", 1, 10)
    assert memo.get("a") == 1 and memo.get("b") is None
    now[0] = 10.0
    assert memo.get("a") is None  # expired at its TTL
    for key in "bcde":
        memo.put(key, key, 60)
    assert len(memo) == 3 and memo.get("b") is None and memo.get("e") == "e"  # the oldest went first
