"""Findings → decisions: what to do, on which target, or why not (every "no" carries its reason)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from ..model import ActionCode, Finding, ReasonCode, ScaleSetSnapshot
from ..ownership import Owner
from ..settings import Settings
from . import guardrails
from .actions import DISRUPTIVE_ACTIONS, PER_INSTANCE_ACTIONS
from .guardrails import Hold, SweepBudget
from .record import SCALE_SET_TARGET, Record


class DecisionKind(StrEnum):
    ACT = "act"  # remediate mode, every guardrail passed
    PLAN = "plan"  # observe mode: would act
    HOLD = "hold"  # a guardrail or the rule said no
    BUSY = "busy"  # a worker is already on it (its record is running/verifying)


@dataclass(frozen=True)
class Decision:
    finding: Finding
    action: ActionCode
    target: str
    instance_ids: tuple[str, ...]
    verdict: DecisionKind
    reason: str = ""
    reason_code: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    final: bool = False  # a hold no later run will lift (the attempt budget is spent)
    keep: bool = False  # leave the record untouched (a failed attempt waiting out its backoff)

    @property
    def key(self) -> str:
        return f"{self.finding.code.value}|{self.target}"


def _targets(finding: Finding) -> list[tuple[str, tuple[str, ...], dict[str, Any]]]:
    """(target, instance ids, params) of what the rule proposes to act on now."""
    proposed = finding.proposed_action
    params = dict(proposed.params)
    ids = proposed.instance_ids if proposed.instance_ids is not None else finding.instance_ids
    if proposed.code in PER_INSTANCE_ACTIONS:
        return [(i, (i,), {**params, "instanceIds": [i]}) for i in ids]
    if proposed.instance_ids is not None and not ids:
        return []  # every instance is held by the rule itself (see `held`)
    if proposed.instance_ids is not None:
        params["instanceIds"] = list(ids)
    return [(SCALE_SET_TARGET, ids, params)]


def _rule_holds(finding: Finding) -> list[Decision]:
    """Instances the rule itself keeps out of the action (protected, the platform still retrying, ...)."""
    proposed = finding.proposed_action
    return [
        Decision(
            finding,
            proposed.code,
            held.instance_id,
            (held.instance_id,),
            DecisionKind.HOLD,
            held.reason,
            held.reason_code,
        )
        for held in proposed.held
    ]


def plan(
    snapshot: ScaleSetSnapshot,
    findings: list[Finding],
    records: dict[str, Record],
    settings: Settings,
    now: datetime,
    budget: SweepBudget,
    correlation_id: str,
    owner: Owner | None = None,
) -> list[Decision]:
    """Decide, finding by finding (most severe first), under every guardrail."""
    record_list = list(records.values())
    out_of_scope = guardrails.ownership(owner, settings) or guardrails.scope(snapshot, settings)
    brake = guardrails.storm_brake(snapshot, settings)
    cool = guardrails.cooldown(record_list, settings, now, correlation_id)
    allowance = guardrails.disruption_budget(snapshot, settings) - guardrails.in_flight(snapshot, record_list)
    max_in_flight = guardrails.disruption_budget(snapshot, settings)
    decisions: list[Decision] = []

    for finding in findings:
        proposed = finding.proposed_action
        if proposed.code is ActionCode.NONE:
            decisions.append(
                Decision(
                    finding,
                    ActionCode.NONE,
                    SCALE_SET_TARGET,
                    finding.instance_ids,
                    DecisionKind.HOLD,
                    proposed.reason,
                    proposed.reason_code or "rule",
                )
            )
            continue
        decisions.extend(_rule_holds(finding))
        for target, ids, params in _targets(finding):
            key = f"{finding.code.value}|{target}"
            record = records.get(key)
            if record is not None and (record.state.active or record.unfinished):
                decisions.append(
                    Decision(
                        finding,
                        proposed.code,
                        target,
                        ids,
                        DecisionKind.BUSY,
                        "already in progress",
                        ReasonCode.IN_PROGRESS,
                    )
                )
                continue
            hold: Hold | None = (
                out_of_scope
                or guardrails.allowed(proposed.code, settings)
                or guardrails.attempt_budget(record, settings, now)
                or guardrails.azure_refusal(record, now)
            )
            if hold is None and proposed.code is ActionCode.RESUME_AUTOMATIC_REPAIRS:
                hold = guardrails.resume_budget(record, settings, now)
            acting_ids = ids
            if hold is None and proposed.code in DISRUPTIVE_ACTIONS:
                acting_ids = tuple(
                    i for i in ids if not ((inst := snapshot.instance(i)) and inst.protected_from_scale_set_actions)
                )
                if not acting_ids:
                    hold = Hold(ReasonCode.PROTECTED, "protectFromScaleSetActions is set on every target instance")
                else:
                    hold = brake or cool
                if hold is None:
                    if allowance <= 0:
                        hold = Hold(
                            ReasonCode.DISRUPTION_BUDGET,
                            f"disruption budget: {max_in_flight - allowance} in flight, at most {max_in_flight} "
                            f"({settings.max_disruption_percent} % of capacity {snapshot.capacity})",
                        )
                    else:
                        deferred = acting_ids[allowance:]
                        acting_ids = acting_ids[:allowance]
                        allowance -= len(acting_ids)
                        if deferred:
                            params = {**params, "deferredInstanceIds": list(deferred)}
            if hold is None:
                hold = budget.take()
            if hold is not None:
                decisions.append(
                    Decision(
                        finding,
                        proposed.code,
                        target,
                        ids,
                        DecisionKind.HOLD,
                        hold.reason,
                        hold.code,
                        params,
                        final=hold.final,
                        keep=hold.keep,
                    )
                )
                continue
            params = {**params, "instanceIds": list(acting_ids)} if acting_ids else params
            verdict = DecisionKind.ACT if settings.remediate else DecisionKind.PLAN
            reason = "" if verdict is DecisionKind.ACT else f"observe mode: would {proposed.code.value}"
            if params.get("deferredInstanceIds"):
                reason = (reason + "; " if reason else "") + (
                    f"{len(params['deferredInstanceIds'])} more instance(s) wait for the disruption budget"
                )
            decisions.append(Decision(finding, proposed.code, target, acting_ids, verdict, reason, "", params))
    return decisions
