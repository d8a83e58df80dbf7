"""The runbook's symptom: instances stay Unhealthy and are not repaired although repairs are Running.

An instance Unhealthy (or Unknown) longer than gracePeriod + our margin. We propose the scale set's own
repairAction, which the guardrails then cap (storm brake, disruption budget, protection).
"""

from __future__ import annotations

from ..model import ActionCode, Finding, FindingCode, HeldInstance, ProposedAction, ReasonCode, Severity
from . import references
from .cause5_grace_period import grace_period, unhealthy_instances
from .context import Context, minutes, service_state_evidence


def check(ctx: Context) -> list[Finding]:
    _, overdue = unhealthy_instances(ctx)
    if not overdue:
        return []
    s, health = ctx.snapshot, ctx.health
    repair_action = s.repairs.effective_repair_action
    eligible = [o.instance.instance_id for o in overdue if not o.instance.protected_from_scale_set_actions]
    if health.misconfigured:
        action = ProposedAction.none(
            f"storm: health monitoring is suspect ({health.reason}); no mass repair", ReasonCode.STORM_BRAKE
        )
    else:
        held = tuple(
            HeldInstance(o.instance.instance_id, "protectFromScaleSetActions is set", ReasonCode.PROTECTED)
            for o in overdue
            if o.instance.protected_from_scale_set_actions
        )
        action = ProposedAction(
            ActionCode.REPAIR_INSTANCES,
            params={"repairAction": repair_action},
            instance_ids=tuple(eligible),
            held=held,
        )
    return [
        Finding(
            code=FindingCode.UNHEALTHY_NOT_REPAIRED,
            severity=Severity.WARNING,
            scale_set_id=s.id,
            instance_ids=tuple(o.instance.instance_id for o in overdue),
            summary=(
                f"{len(overdue)} instance(s) of {s.name} have been unhealthy past the grace period and margin "
                f"({minutes(grace_period(ctx) + ctx.settings.grace_margin)} min) but were not repaired"
                + (
                    "; the AutomaticRepairs service state of a Flexible scale set cannot be read."
                    if not s.instance_view_read
                    else "."
                )
            ),
            reference=references.SYMPTOM,
            proposed_action=action,
            evidence={
                "repairAction": repair_action,
                "gracePeriod": s.repairs.grace_period,
                "serviceState": service_state_evidence(s),
                "health": health.counts(),
                "instances": [o.facts(ctx) for o in overdue],
            },
        )
    ]
