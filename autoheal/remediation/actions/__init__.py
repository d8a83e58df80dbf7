"""One executor per remediation, each declared once with its traits (`registry.ACTIONS`).

| action code                 | module        | what it does                                              |
| --------------------------- | ------------- | --------------------------------------------------------- |
| enable-automatic-repairs    | repairs       | PATCH automaticRepairsPolicy (cause 1)                    |
| resume-automatic-repairs    | repairs       | setOrchestrationServiceState Resume (cause 4)             |
| set-grace-period            | repairs       | PATCH automaticRepairsPolicy.gracePeriod (cause 5)        |
| replace-failed-instances    | replace       | forced delete, then PATCH sku.capacity back (cause 3)     |
| repair-instances            | instances     | the scale set's repairAction on one instance             |
| retry-delete                | instances     | forced delete of what resilient delete gave up on         |
| enable-resilient-vm-create  | resiliency    | PATCH resiliencyPolicy.resilientVMCreationPolicy          |
| enable-resilient-vm-delete  | resiliency    | PATCH resiliencyPolicy.resilientVMDeletionPolicy          |

Executors are resumable: run again on a record, one continues from the record's step (and its intent) and
either finishes, verifies, or reports why not.
"""

from __future__ import annotations

from . import instances, repairs, replace, resiliency  # noqa: F401  (each registers its actions)
from .context import ActionContext, Executor
from .registry import ACTIONS, ActionSpec

# Take instances out of service: the storm brake, disruption budget and cooldown limit these.
DISRUPTIVE_ACTIONS = frozenset(code for code, spec in ACTIONS.items() if spec.disruptive)
# One record (attempts, backoff) per instance.
PER_INSTANCE_ACTIONS = frozenset(code for code, spec in ACTIONS.items() if spec.per_instance)


__all__ = [
    "ACTIONS",
    "DISRUPTIVE_ACTIONS",
    "PER_INSTANCE_ACTIONS",
    "ActionContext",
    "ActionSpec",
    "Executor",
]
