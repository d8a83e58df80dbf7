"""Event Grid trigger: scale-set results and health changes from the subscription's system topics.

The worker's converter (`azure.functions.eventgrid.EventGridEventInConverter`) hands the function an
`azure.functions.EventGridEvent` for Event Grid schema deliveries and an `azure.functions.CloudEvent` for
CloudEvents 1.0 ones (a body with a lower-case `specversion`); the two have different attributes. Both go
back into their own schema's JSON shape for the domain handler, which validates everything.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import azure.functions as func

from autoheal import handlers
from autoheal.runtime import get_runtime

bp = func.Blueprint()


def _when(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


def as_payload(event: Any) -> Any:
    """The trigger's object back into the JSON of its schema (anything else is passed on, to be logged)."""
    if isinstance(event, func.CloudEvent):
        payload = {
            **event.extension_attrs,
            "specversion": event.specversion,
            "id": event.id,
            "source": event.source,
            "type": event.type,
            "subject": event.subject,
            "time": _when(event.time),
            "data": event.get_json(),
        }
        return {k: v for k, v in payload.items() if v is not None}
    if isinstance(event, func.EventGridEvent):
        return {
            "id": event.id,
            "eventType": event.event_type,
            "subject": event.subject,
            "topic": event.topic,
            "eventTime": _when(event.event_time),
            "dataVersion": event.data_version,
            "data": event.get_json(),
        }
    return event


# The annotation names one class because the worker's type check accepts a class, not a Union; at run
# time the converter may equally pass a CloudEvent (and a list, if the host ever hands over a batch).
@bp.function_name("on_resource_event")
@bp.event_grid_trigger(arg_name="event")
def on_resource_event(event: func.EventGridEvent) -> None:
    handler = handlers.event_handler(get_runtime())
    batch = event if isinstance(event, list) else [event]
    handler.handle_all(as_payload(item) for item in batch)
