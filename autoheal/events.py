"""Event Grid / CloudEvents payload → the scale set to evaluate, or the reason to leave the event alone.

Pure: no I/O. Classifies by event type, never by `data.status` (Microsoft's own failure samples carry
`"status": "Succeeded"`). The event types and operation filter below are the contract with `infra/`
(the event subscriptions are checked against them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

RESOURCE_EVENT_TYPES = (
    "Microsoft.Resources.ResourceWriteSuccess",
    "Microsoft.Resources.ResourceWriteFailure",
    "Microsoft.Resources.ResourceActionSuccess",
    "Microsoft.Resources.ResourceActionFailure",
    "Microsoft.Resources.ResourceDeleteSuccess",
    "Microsoft.Resources.ResourceDeleteFailure",
)
HEALTH_EVENT_TYPES = (
    "Microsoft.ResourceNotifications.HealthResources.AvailabilityStatusChanged",
    "Microsoft.ResourceNotifications.HealthResources.ResourceAnnotated",
)
ACCEPTED_EVENT_TYPES = RESOURCE_EVENT_TYPES + HEALTH_EVENT_TYPES
# `data.operationName` of Microsoft.Resources events we act on (scale sets and their VMs).
SCALE_SET_OPERATION_PREFIX = "Microsoft.Compute/virtualMachineScaleSets/"
# Health events we look at: scale-set VMs, and VMs (a Flexible scale set's instances are plain VMs).
HEALTH_TARGET_TYPE_PREFIX = "Microsoft.Compute/virtualMachine"

MAX_ID_LENGTH = 2048  # ARM ids are far shorter; anything longer is not a resource id
MAX_EVENT_ID_LENGTH = 512

_SCALE_SET = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Compute"
    r"/virtualMachineScaleSets/(?P<name>[^/]+)(?:/.*)?$",
    re.IGNORECASE,
)
_VIRTUAL_MACHINE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Compute"
    r"/virtualMachines/(?P<name>[^/]+)(?:/.*)?$",
    re.IGNORECASE,
)


class MalformedEvent(ValueError):
    """The payload is not an event we can read; logged with the reason, never retried."""


class Verdict(StrEnum):
    EVALUATE = "evaluate"  # a scale set to evaluate
    LOOKUP_VM = "lookup-vm"  # a VM's health changed: evaluate its scale set if it belongs to one (Flexible)
    IGNORE = "ignore"  # not ours (debug log)
    REJECT = "reject"  # another subscription (warning)


@dataclass(frozen=True)
class Event:
    id: str
    event_type: str
    subject: str
    data: Mapping[str, Any]
    schema: str  # eventgrid | cloudevents


@dataclass(frozen=True)
class Classification:
    verdict: Verdict
    reason: str
    event: Event
    scale_set_id: str = ""
    resource_group: str = ""
    scale_set: str = ""
    vm_id: str = ""
    details: dict[str, str] = field(default_factory=dict)


def load_events(raw: bytes | str) -> list[Any]:
    """A request body or file: one event or an array of events (as Event Grid delivers them)."""
    try:
        decoded = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedEvent(f"not JSON: {exc}") from exc
    if isinstance(decoded, list):
        return decoded
    if isinstance(decoded, dict):
        return [decoded]
    raise MalformedEvent(f"expected an event object or an array of events, got {type(decoded).__name__}")


def parse_event(payload: Any) -> Event:
    """Either schema, through azure-eventgrid / azure-core's own models."""
    if not isinstance(payload, Mapping):
        raise MalformedEvent(f"an event must be a JSON object, got {type(payload).__name__}")
    keys = {str(k).lower() for k in payload}
    if "specversion" in keys:
        return _cloud_event(payload)
    if "eventtype" in keys:
        return _event_grid_event(payload)
    raise MalformedEvent("neither Event Grid (eventType) nor CloudEvents (specversion) schema")


def _text(value: Any, name: str, *, limit: int = MAX_ID_LENGTH, required: bool = True) -> str:
    if value is None or value == "":
        if required:
            raise MalformedEvent(f"missing {name}")
        return ""
    if not isinstance(value, str):
        raise MalformedEvent(f"{name} must be a string, got {type(value).__name__}")
    if len(value) > limit:
        raise MalformedEvent(f"{name} is {len(value)} characters long (limit {limit})")
    return value


def _data(value: Any) -> Mapping[str, Any]:
    if isinstance(value, (bytes, str)):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise MalformedEvent("data is not JSON") from exc
    if not isinstance(value, Mapping):
        raise MalformedEvent(f"data must be an object, got {type(value).__name__}")
    return value


def _event_grid_event(payload: Mapping[str, Any]) -> Event:
    from azure.eventgrid import EventGridEvent

    for name in ("id", "eventType", "subject"):
        _text(payload.get(name), name, limit=MAX_EVENT_ID_LENGTH if name == "id" else MAX_ID_LENGTH)
    try:
        model = EventGridEvent.from_dict(dict(payload))
    except Exception as exc:
        raise MalformedEvent(f"not an Event Grid event: {exc}") from exc
    return Event(
        id=_text(model.id, "id", limit=MAX_EVENT_ID_LENGTH),
        event_type=_text(model.event_type, "eventType"),
        subject=_text(model.subject, "subject"),
        data=_data(model.data),
        schema="eventgrid",
    )


def _cloud_event(payload: Mapping[str, Any]) -> Event:
    from azure.core.messaging import CloudEvent

    # Microsoft's own samples spell it both `specversion` and `specVersion`.
    normalized = {("specversion" if str(k).lower() == "specversion" else k): v for k, v in payload.items()}
    for name in ("id", "type", "source"):
        _text(normalized.get(name), name, limit=MAX_EVENT_ID_LENGTH if name == "id" else MAX_ID_LENGTH)
    try:
        model = CloudEvent.from_dict(normalized)
    except Exception as exc:
        raise MalformedEvent(f"not a CloudEvent: {exc}") from exc
    return Event(
        id=_text(model.id, "id", limit=MAX_EVENT_ID_LENGTH),
        event_type=_text(model.type, "type"),
        subject=_text(model.subject, "subject", required=False),
        data=_data(model.data),
        schema="cloudevents",
    )


def _clean(resource_id: str) -> str:
    # Microsoft's samples contain stray spaces inside ids ("{subscription-id} /resourceGroups").
    return "".join(resource_id.split())


def classify(event: Event, subscription_id: str) -> Classification:
    """Which scale set this event is about (or why we leave it alone)."""
    if event.event_type in RESOURCE_EVENT_TYPES:
        return _classify_resource_event(event, subscription_id)
    if event.event_type in HEALTH_EVENT_TYPES:
        return _classify_health_event(event, subscription_id)
    return Classification(Verdict.IGNORE, f"event type {event.event_type} is not handled", event)


def _classify_resource_event(event: Event, subscription_id: str) -> Classification:
    operation = event.data.get("operationName")
    if not isinstance(operation, str) or not operation.lower().startswith(SCALE_SET_OPERATION_PREFIX.lower()):
        return Classification(Verdict.IGNORE, f"operation {operation!r} is not a scale-set operation", event)
    resource = event.data.get("resourceUri") or event.subject
    if not isinstance(resource, str) or len(resource) > MAX_ID_LENGTH:
        raise MalformedEvent("data.resourceUri is missing or not a resource id")
    match = _SCALE_SET.match(_clean(resource))
    if match is None:
        raise MalformedEvent(f"data.resourceUri is not a scale-set resource id: {resource[:200]!r}")
    return _scale_set(event, match, subscription_id, operation=operation)


def _classify_health_event(event: Event, subscription_id: str) -> Classification:
    info = event.data.get("resourceInfo")
    props = info.get("properties") if isinstance(info, Mapping) else None
    target = props.get("targetResourceId") if isinstance(props, Mapping) else None
    if not isinstance(target, str) or not target or len(target) > MAX_ID_LENGTH:
        raise MalformedEvent("data.resourceInfo.properties.targetResourceId is missing")
    target = _clean(target)
    state = str(props.get("availabilityState") or "") if isinstance(props, Mapping) else ""
    match = _SCALE_SET.match(target)
    if match is not None:
        return _scale_set(event, match, subscription_id, availabilityState=state)
    vm = _VIRTUAL_MACHINE.match(target)
    if vm is None:
        return Classification(Verdict.IGNORE, f"health event for {target[:200]}, not a virtual machine", event)
    if vm["sub"].lower() != subscription_id.lower():
        return Classification(Verdict.REJECT, f"event for subscription {vm['sub'][:64]}, not {subscription_id}", event)
    return Classification(
        Verdict.LOOKUP_VM,
        "health of a VM changed: evaluate its scale set if it belongs to one",
        event,
        resource_group=vm["rg"],
        vm_id=target,
        details={"availabilityState": state, "vm": vm["name"]},
    )


def _scale_set(event: Event, match: re.Match[str], subscription_id: str, **details: str) -> Classification:
    if match["sub"].lower() != subscription_id.lower():
        return Classification(
            Verdict.REJECT, f"event for subscription {match['sub'][:64]}, not {subscription_id}", event
        )
    scale_set_id = (
        f"/subscriptions/{match['sub']}/resourceGroups/{match['rg']}"
        f"/providers/Microsoft.Compute/virtualMachineScaleSets/{match['name']}"
    )
    return Classification(
        Verdict.EVALUATE,
        f"{event.event_type.rsplit('.', 1)[-1]} on scale set {match['name']}",
        event,
        scale_set_id=scale_set_id,
        resource_group=match["rg"],
        scale_set=match["name"],
        details={k: v for k, v in details.items() if v},
    )
