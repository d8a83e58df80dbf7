"""Each remediation declared once: its traits and its executor. Every other table is derived from here."""

from __future__ import annotations

from dataclasses import dataclass

from ...model import ActionCode
from .context import Executor


@dataclass(frozen=True)
class ActionSpec:
    code: ActionCode
    phrase: str  # for people: "replace the failed instances"
    run: Executor  # resumable: run again from the record's step, it finishes or verifies what is left
    per_instance: bool = False  # one record (attempts, backoff) per instance
    disruptive: bool = False  # takes instances out of service: storm brake, disruption budget, cooldown apply
    feature_flag: str | None = None  # Microsoft.Compute feature the subscription must have registered


ACTIONS: dict[ActionCode, ActionSpec] = {}


def register(spec: ActionSpec) -> ActionSpec:
    if spec.code in ACTIONS or spec.code is ActionCode.NONE:
        raise ValueError(f"action {spec.code.value} declared twice (or 'none')")
    ACTIONS[spec.code] = spec
    return spec
