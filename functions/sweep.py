"""Timer trigger: the sweep over every scale set of the subscription, or (management-group scope) one queue
message per subscription for functions/fanout.py."""

import logging

import azure.functions as func

from autoheal import handlers
from autoheal.runtime import get_runtime

bp = func.Blueprint()


@bp.function_name("sweep")
@bp.timer_trigger(arg_name="timer", schedule="%AUTOHEAL_SWEEP_SCHEDULE%", run_on_startup=False, use_monitor=True)
def sweep(timer: func.TimerRequest) -> None:
    if timer.past_due:
        logging.getLogger("autoheal.sweep").info("the sweep timer is past due; sweeping now")
    handlers.run_timer(get_runtime())
