"""Each remediation declared once: its traits, its wording and its executor. Every other table (the planner's
disruptive and per-instance sets, the notifications' wording) is derived from here."""

from __future__ import annotations

from dataclasses import dataclass

from ...model import ActionCode
from .context import Executor


@dataclass(frozen=True)
class ActionSpec:
    code: ActionCode
    # For people, to do and done: "{targets|fallback}" becomes "instance 2" / "instances 3, 7" / the fallback.
    to_do: str  # "replace the failed {targets|instances}"
    done: str  # "replaced the failed {targets|instances}"
    run: Executor  # resumable: run again from the record's step, it finishes or verifies what is left
    per_instance: bool = False  # one record (attempts, backoff) per instance
    disruptive: bool = False  # takes instances out of service: storm brake, disruption budget, cooldown apply
    removes_instances: bool = False  # once done, its target instances are gone (links show the scale set)
    feature_flag: str | None = None  # Microsoft.Compute feature the subscription must have registered

    @property
    def phrase(self) -> str:
        """The action in a few words, without targets: "replace the failed instances"."""
        return fill(self.to_do, "")


def fill(template: str, targets: str) -> str:
    """'replace the failed {targets|instances}' with the targets, or the fallback after the bar."""
    head, _, rest = template.partition("{")
    if not rest:
        return template
    inner, _, tail = rest.partition("}")
    _, _, fallback = inner.partition("|")
    return f"{head}{targets or fallback or 'instances'}{tail}"


ACTIONS: dict[ActionCode, ActionSpec] = {}


def register(spec: ActionSpec) -> ActionSpec:
    if spec.code in ACTIONS or spec.code is ActionCode.NONE:
        raise ValueError(f"action {spec.code.value} declared twice (or 'none')")
    ACTIONS[spec.code] = spec
    return spec
