"""Small shared helpers for tests (reference payload loading)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REFERENCE = Path(__file__).parent / "reference"
COMPUTE_EXAMPLES = REFERENCE / "compute-examples" / "virtualMachineScaleSetExamples"
EVENT_EXAMPLES = REFERENCE / "eventgrid-events"


def compute_example(name: str, status: str = "200") -> Any:
    """The response body of one of Microsoft's Compute examples."""
    data = json.loads((COMPUTE_EXAMPLES / f"{name}.json").read_text())
    return data["responses"][status]["body"]


_REGISTERED: dict[str, Any] = {}


def registered_functions() -> dict[str, Any]:
    """The registered functions of `function_app.app` by name, read once per process: `get_functions()` may be
    called once per app (a second call raises on duplicate names)."""
    if not _REGISTERED:
        import function_app

        _REGISTERED.update({f.get_function_name(): f for f in function_app.app.get_functions()})
    return dict(_REGISTERED)
