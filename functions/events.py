"""Event Grid trigger: scale-set results and health changes from the subscription's system topics."""

import azure.functions as func

from autoheal import handlers
from autoheal.runtime import get_runtime

bp = func.Blueprint()


def as_payload(event: func.EventGridEvent) -> dict:
    """The trigger's object back into the Event Grid schema the domain handler reads."""
    return {
        "id": event.id,
        "eventType": event.event_type,
        "subject": event.subject,
        "topic": event.topic,
        "eventTime": event.event_time.isoformat() if event.event_time else None,
        "dataVersion": event.data_version,
        "data": event.get_json(),
    }


@bp.function_name("on_resource_event")
@bp.event_grid_trigger(arg_name="event")
def on_resource_event(event: func.EventGridEvent) -> None:
    runtime = get_runtime()
    handlers.event_handler(runtime).handle(as_payload(event))
