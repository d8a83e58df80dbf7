"""Queue trigger: one subscription's sweep in a management-group scope (the timer enqueued it).

Thin: the message goes to `handlers.run_queue_slice`. The host keeps the message invisible while this runs and
makes it visible again if the instance dies; after host.json `maxDequeueCount` failures it moves it to
`<queue>-poison` (see autoheal/fanout.py).
"""

import azure.functions as func

from autoheal import handlers
from autoheal.runtime import get_runtime

bp = func.Blueprint()


@bp.function_name("sweep_slice")
@bp.queue_trigger(arg_name="message", queue_name="%AUTOHEAL_SWEEP_QUEUE%", connection="AzureWebJobsStorage")
def sweep_slice(message: func.QueueMessage) -> None:
    handlers.run_queue_slice(get_runtime(), message.get_body(), dequeue_count=message.dequeue_count or 1)
