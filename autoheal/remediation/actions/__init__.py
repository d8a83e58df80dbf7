"""One executor per remediation, each declared once with its traits and wording (`registry.ACTIONS`; the
codes are `model.ActionCode`): `repairs` (the repairs policy, resume, the grace period), `replace` (forced
delete, then `sku.capacity` back), `instances` (the scale set's repairAction on one instance, a forced retry
of a delete), `resiliency` (resilient create and delete policies).

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
