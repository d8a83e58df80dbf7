"""A queue worker process (crash test, bench): the function app's registered queue trigger behind `QueueHost`,
taking messages until it is killed. Settings come from the environment, as in Azure; `QUEUEHOST_VISIBILITY`
(seconds) is how long a taken message stays invisible, which must exceed a slice."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.queuehost import QueueHost


def main() -> int:
    import function_app

    registered = {f.get_function_name(): f for f in function_app.app.get_functions()}
    invoke = registered["sweep_slice"].get_user_function()
    host = QueueHost(
        os.environ["AzureWebJobsStorage"],  # noqa: SIM112 (the Functions host's own setting name)
        os.environ["AUTOHEAL_SWEEP_QUEUE"],
        invoke,
        visibility_timeout=int(os.environ.get("QUEUEHOST_VISIBILITY", "30")),
    )
    print("ready", flush=True)
    idle_exit = float(os.environ.get("QUEUEHOST_IDLE_EXIT", "0"))  # 0: run until killed
    idle_since = time.monotonic()
    while True:
        outcome = host.run_once()
        if outcome != "empty":
            print(outcome, flush=True)
            idle_since = time.monotonic()
        elif idle_exit and time.monotonic() - idle_since > idle_exit:
            print(f"done {host.processed}", flush=True)
            return 0
        else:
            time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main())
