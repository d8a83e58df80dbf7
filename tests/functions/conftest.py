"""The registered functions of `function_app.app`, built once per test session, and a runtime per test."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import azure.functions as func
import pytest

from autoheal.runtime import Runtime, set_runtime
from emulator import Emulator
from emulator.fleets import demo
from tests.helpers import EVENT_EXAMPLES
from tests.integration.rig import remediate_settings

SUB = demo.SUBSCRIPTION


@pytest.fixture(scope="session")
def functions() -> dict[str, Any]:
    """`get_functions()` may be called once per app: a second call raises on duplicate names."""
    import function_app

    return {f.get_function_name(): f for f in function_app.app.get_functions()}


@pytest.fixture
def demo_emulator() -> Iterator[Emulator]:
    with Emulator.start(demo.PATH) as emu:
        yield emu


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


def to_function_event(payload: dict[str, Any]) -> func.EventGridEvent:
    """What the Functions host hands the trigger, for either schema."""
    cloud = any(k.lower() == "specversion" for k in payload)
    when = payload.get("time" if cloud else "eventTime")
    return func.EventGridEvent(
        id=payload["id"],
        data=payload.get("data"),
        topic=payload.get("source" if cloud else "topic") or "",
        subject=payload.get("subject") or "",
        event_type=payload.get("type" if cloud else "eventType"),
        event_time=datetime.fromisoformat(when[:26].replace("Z", "")) if when else None,
        data_version=payload.get("dataVersion") or "",
    )


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
