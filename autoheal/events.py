"""Event Grid / CloudEvents payload → the scale set to evaluate, or the reason to leave the event alone.

Pure: no I/O. Classifies by event type, never by `data.status` (Microsoft's own failure samples carry
`"status": "Succeeded"`). The event types and operation filter below are the contract with `infra/`
(the event subscriptions are checked against them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from . import resource_ids
from .resource_ids import IdProblem, InvalidResourceId, ResourceId

RESOURCE_EVENT_TYPES = (
    "Microsoft.Resources.ResourceWriteSuccess",
    "Microsoft.Resources.ResourceWriteFailure",
    "Microsoft.Resources.ResourceActionSuccess",
    "Microsoft.Resources.ResourceActionFailure",
    "Microsoft.Resources.ResourceDeleteSuccess",
    "Microsoft.Resources.ResourceDeleteFailure",
)
# Failures of a Flexible scale set's own VMs (`Microsoft.Compute/virtualMachines/*`): mapped to their scale set.
VM_FAILURE_EVENT_TYPES = (
    "Microsoft.Resources.ResourceWriteFailure",
    "Microsoft.Resources.ResourceActionFailure",
    "Microsoft.Resources.ResourceDeleteFailure",
)
HEALTH_EVENT_TYPES = (
    "Microsoft.ResourceNotifications.HealthResources.AvailabilityStatusChanged",
    "Microsoft.ResourceNotifications.HealthResources.ResourceAnnotated",
)
ACCEPTED_EVENT_TYPES = RESOURCE_EVENT_TYPES + HEALTH_EVENT_TYPES
# `data.operationName` of Microsoft.Resources events we act on (scale sets and their VMs).
SCALE_SET_OPERATION_PREFIX = "Microsoft.Compute/virtualMachineScaleSets/"
# ... and of VM failures (a third event subscription, failures only: `infra/main.bicep`).
VM_OPERATION_PREFIX = "Microsoft.Compute/virtualMachines/"
# Health events we look at: scale-set VMs, and VMs (a Flexible scale set's instances are plain VMs).
HEALTH_TARGET_TYPE_PREFIX = "Microsoft.Compute/virtualMachine"

MAX_ID_LENGTH = 2048  # ARM ids are far shorter; anything longer is not a resource id
MAX_EVENT_ID_LENGTH = 512


class Reason(StrEnum):
    """Reason codes of events left alone (log dimension `reasonCode`, counter `autoheal.events.dropped`).

    Rejected resource ids add the codes of `autoheal.resource_ids.IdProblem`.
    """

    MALFORMED = "malformed"
    NOT_HANDLED_TYPE = "event-type-not-handled"
    NOT_COMPUTE_OPERATION = "operation-not-scale-set"
    VM_SUCCESS = "vm-operation-succeeded"
    ID_MISMATCH = "id-does-not-match-operation"
    HEALTH_NOT_VM = "health-target-not-a-vm"
    NOT_A_MEMBER = "vm-not-in-a-scale-set"
    VM_UNREADABLE = "vm-unreadable"
    DUPLICATE = "duplicate"
    COALESCED = "coalesced"
    GONE = "scale-set-gone"
    ARM_REFUSED = "arm-refused"
    EVALUATION_FAILED = "evaluation-failed"


class MalformedEvent(ValueError):
    """The payload is not an event we can read; logged with the reason, never retried."""

    code = Reason.MALFORMED.value


class Verdict(StrEnum):
    EVALUATE = "evaluate"  # a scale set to evaluate
    LOOKUP_VM = "lookup-vm"  # a VM's health changed or it failed: evaluate its scale set (Flexible)
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
    code: str = ""  # reason code of an IGNORE / REJECT
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
        model: CloudEvent[Any] = CloudEvent.from_dict(normalized)
    except Exception as exc:
        raise MalformedEvent(f"not a CloudEvent: {exc}") from exc
    return Event(
        id=_text(model.id, "id", limit=MAX_EVENT_ID_LENGTH),
        event_type=_text(model.type, "type"),
        subject=_text(model.subject, "subject", required=False),
        data=_data(model.data),
        schema="cloudevents",
    )


def classify(event: Event, subscription_id: str) -> Classification:
    """Which scale set this event is about (or why we leave it alone)."""
    if event.event_type in RESOURCE_EVENT_TYPES:
        return _classify_resource_event(event, subscription_id)
    if event.event_type in HEALTH_EVENT_TYPES:
        return _classify_health_event(event, subscription_id)
    return _leave(Verdict.IGNORE, Reason.NOT_HANDLED_TYPE, f"event type {event.event_type[:200]} is not handled", event)


def _leave(verdict: Verdict, code: str, reason: str, event: Event) -> Classification:
    return Classification(verdict, reason, event, code=str(code))


def _resource(value: Any, event: Event, subscription_id: str, what: str) -> ResourceId | Classification:
    """A validated id, or the REJECT that says why not (logged with the reason code)."""
    try:
        return resource_ids.parse(value, subscription_id=subscription_id)
    except InvalidResourceId as exc:
        shown = value[:200] if isinstance(value, str) else type(value).__name__
        return _leave(Verdict.REJECT, exc.problem, f"{what} {shown!r} rejected: {exc}", event)


def _classify_resource_event(event: Event, subscription_id: str) -> Classification:
    operation = event.data.get("operationName")
    if not isinstance(operation, str):
        return _leave(Verdict.IGNORE, Reason.NOT_COMPUTE_OPERATION, "data.operationName is missing", event)
    lowered = operation.lower()
    if lowered.startswith(VM_OPERATION_PREFIX.lower()):
        if event.event_type not in VM_FAILURE_EVENT_TYPES:
            return _leave(Verdict.IGNORE, Reason.VM_SUCCESS, f"{operation[:200]} succeeded on a VM", event)
    elif not lowered.startswith(SCALE_SET_OPERATION_PREFIX.lower()):
        return _leave(
            Verdict.IGNORE, Reason.NOT_COMPUTE_OPERATION, f"operation {operation[:200]!r} is not a scale-set one", event
        )
    resource = event.data.get("resourceUri") or event.subject
    parsed = _resource(resource, event, subscription_id, "data.resourceUri")
    if isinstance(parsed, Classification):
        return parsed
    if lowered.startswith(VM_OPERATION_PREFIX.lower()):
        if parsed.is_scale_set:
            return _leave(Verdict.REJECT, Reason.ID_MISMATCH, f"a VM operation on scale-set id {parsed}", event)
        return Classification(
            Verdict.LOOKUP_VM,
            f"{event.event_type.rsplit('.', 1)[-1]} on VM {parsed.name}: evaluate its scale set if it has one",
            event,
            resource_group=parsed.resource_group,
            vm_id=str(parsed),
            details={"vm": parsed.name, "operation": operation},
        )
    if not parsed.is_scale_set:
        return _leave(Verdict.REJECT, Reason.ID_MISMATCH, f"a scale-set operation on VM id {parsed}", event)
    return _scale_set(event, parsed, operation=operation)


def _classify_health_event(event: Event, subscription_id: str) -> Classification:
    info = event.data.get("resourceInfo")
    props = info.get("properties") if isinstance(info, Mapping) else None
    target = props.get("targetResourceId") if isinstance(props, Mapping) else None
    if not isinstance(target, str) or not target or len(target) > MAX_ID_LENGTH:
        raise MalformedEvent("data.resourceInfo.properties.targetResourceId is missing")
    state = props.get("availabilityState") if isinstance(props, Mapping) else None
    state = state[:64] if isinstance(state, str) else ""
    parsed = _resource(target, event, subscription_id, "targetResourceId")
    if isinstance(parsed, Classification):
        if parsed.code == IdProblem.WRONG_PROVIDER:  # the health topic covers every resource type
            return _leave(Verdict.IGNORE, Reason.HEALTH_NOT_VM, f"health event for {target[:200]}, not a VM", event)
        return parsed
    if parsed.is_scale_set:
        return _scale_set(event, parsed, availabilityState=state)
    return Classification(
        Verdict.LOOKUP_VM,
        "health of a VM changed: evaluate its scale set if it belongs to one",
        event,
        resource_group=parsed.resource_group,
        vm_id=str(parsed),
        details={"availabilityState": state, "vm": parsed.name},
    )


def _scale_set(event: Event, parsed: ResourceId, **details: str) -> Classification:
    return Classification(
        Verdict.EVALUATE,
        f"{event.event_type.rsplit('.', 1)[-1]} on scale set {parsed.name}",
        event,
        scale_set_id=parsed.scale_set_id,
        resource_group=parsed.resource_group,
        scale_set=parsed.name,
        details={k: v for k, v in details.items() if v},
    )
