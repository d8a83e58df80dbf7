"""The start-up warm-up (issue 21 item 8): imports what the first event needs, never raises, and leaves a
runtime it cannot build (incomplete settings) to the first invocation, which reports the problem."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
before = set(sys.modules)
import autoheal.runtime as runtime
runtime.start_warmup()
finished = runtime.wait_for_warmup(120)
print(json.dumps({
    "finished": finished,
    "missing": [m for m in runtime.WARM_MODULES if m not in sys.modules],
    "runtime": runtime._current is not None,
    "azureBeforeWarmup": sorted(m for m in before if m.startswith("azure.mgmt")),
}))
"""


def test_the_warm_up_imports_the_event_path_and_never_raises():
    env = {k: v for k, v in os.environ.items() if k != "AZURE_SUBSCRIPTION_ID" and not k.startswith("AUTOHEAL_")}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=True
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report == {"finished": True, "missing": [], "runtime": False, "azureBeforeWarmup": []}, out.stderr
