"""Azure Functions entry point (Python v2 programming model): one FunctionApp, blueprints from functions/.

App settings are validated here, at start-up, so a bad ARM, guardrail, ledger or trigger setting fails
indexing with one clear message instead of failing every invocation later. A bad notification setting (or
an unresolved Key Vault reference) only turns its channel off: logged at ERROR, shown by `status`.
"""

import azure.functions as func

from autoheal.runtime import start_warmup
from autoheal.settings import load_settings
from functions import events, fanout, status, sweep

load_settings()
# The SDK modules and clients the first event needs, loaded in the background: indexing stays fast and a
# pre-warmed worker's first event starts warm (bench/cold_start.py measures both).
start_warmup()

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(events.bp)
app.register_functions(sweep.bp)
app.register_functions(fanout.bp)
app.register_functions(status.bp)
