"""The registered functions of `function_app.app`, built once per test session, and a runtime per test."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import pytest

from autoheal.runtime import Runtime, set_runtime
from emulator.fleets import demo
from tests.helpers import EVENT_EXAMPLES
from tests.integration.rig import remediate_settings

SUB = demo.SUBSCRIPTION


@pytest.fixture(scope="session")
def functions() -> dict[str, Any]:
    """`get_functions()` may be called once per app: a second call raises on duplicate names."""
    from tests.helpers import registered_functions

    return registered_functions()


@pytest.fixture
def runtime(demo_emulator, ledger) -> Iterator[Runtime]:
    """The process-wide runtime the functions use, aimed at the emulator and an Azurite ledger (observe)."""
    settings = remediate_settings(demo_emulator, mode="observe")
    rt = Runtime(settings, ledger=ledger, gateway_options={"retry_total": 1, "retry_backoff_factor": 0.01})
    set_runtime(rt)
    yield rt
    set_runtime(None)


def sample(relative: str) -> dict[str, Any]:
    return json.loads((EVENT_EXAMPLES / relative).read_text())


def all_samples() -> list[str]:
    return sorted(str(p.relative_to(EVENT_EXAMPLES)) for p in EVENT_EXAMPLES.rglob("*examples/*/*.json"))


def wire(payload: dict[str, Any]) -> dict[str, Any]:
    """A Microsoft sample as Event Grid puts it on the wire.

    The docs' CloudEvents samples spell `specVersion`; the CloudEvents JSON format has lower-case attribute
    names only (github.com/cloudevents/spec, cloudevents/spec.md "Attribute Naming Convention"), which is
    what Event Grid delivers and what the worker's converter looks for.
    """
    return {("specversion" if k == "specVersion" else k): v for k, v in payload.items()}


def decode(body: bytes | str) -> list[Any]:
    """What the Functions host hands the trigger for one delivery body: the host invokes the function once
    per array element, each decoded by azure-functions' own Event Grid converter (either schema)."""
    from azure.functions.eventgrid import EventGridEventInConverter
    from azure.functions.meta import Datum

    decoded = json.loads(body)
    elements = decoded if isinstance(decoded, list) else [decoded]
    return [
        EventGridEventInConverter.decode(Datum(json.dumps(element), "json"), trigger_metadata={})
        for element in elements
    ]


def to_function_event(payload: dict[str, Any]) -> func.EventGridEvent | func.CloudEvent:
    """The object the worker passes the function for this payload (as delivered on the wire)."""
    (event,) = decode(json.dumps(wire(payload)))
    return event


def retarget(relative: str, resource_id: str, *, operation: str | None = None, event_id: str | None = None) -> dict:
    """A Microsoft sample pointed at one of our scale sets (or VMs)."""
    payload = copy.deepcopy(sample(relative))
    payload["subject"] = resource_id
    payload["id"] = event_id or payload["id"]
    data = payload["data"]
    if "resourceUri" in data:
        data["resourceUri"] = resource_id
        data["operationName"] = operation or "Microsoft.Compute/virtualMachineScaleSets/write"
        data["subscriptionId"] = SUB
    if "resourceInfo" in data:
        data["resourceInfo"]["properties"]["targetResourceId"] = resource_id
        data["resourceInfo"]["id"] = f"{resource_id}/providers/Microsoft.ResourceHealth/availabilityStatuses/current"
    return payload


def scale_set_id(group: str, name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}"
