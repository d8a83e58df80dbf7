"""Cause 1: automatic repairs policy isn't correctly enabled in the scale set.

The policy is missing or `enabled: false`, or the `AutomaticRepairs` orchestration service is absent or
`NotRunning`. (`Suspended` is cause 4.) Resolution 1: enable the policy — which Azure refuses without a
health source, so we only propose it when one exists.
"""

from __future__ import annotations

from ..model import ActionCode, Finding, FindingCode, ProposedAction, ReasonCode, ServiceState, Severity
from ..settings import iso_duration
from . import references
from .context import Context, health_source_conflict, norm, service_state_evidence


def check(ctx: Context) -> list[Finding]:
    s = ctx.snapshot
    state = s.repairs_service_state
    if norm(state) == norm(ServiceState.SUSPENDED):
        return []
    if s.repairs.enabled and (norm(state) == norm(ServiceState.RUNNING) or not s.instance_view_read):
        return []
    if not s.repairs.present:
        why = "has no automatic repairs policy"
    elif not s.repairs.enabled:
        why = "has automatic repairs turned off"
    elif state is None:
        why = "has the policy enabled but no AutomaticRepairs orchestration service"
    else:
        why = f"has the policy enabled but the AutomaticRepairs service is {state}"
    evidence = {
        "automaticRepairsPolicy": {
            "present": s.repairs.present,
            "enabled": s.repairs.enabled,
            "gracePeriod": s.repairs.grace_period,
            "repairAction": s.repairs.repair_action,
        },
        "serviceState": service_state_evidence(s),
        "healthSources": [source.to_dict() for source in s.health_sources],
        "health": ctx.health.counts(),
    }
    conflict = health_source_conflict(s)
    if s.service_fabric:
        action = ProposedAction.none(
            "automatic repairs do not support Service Fabric scale sets", ReasonCode.UNSUPPORTED
        )
    elif not s.health_sources:
        action = ProposedAction.none(
            "configure an Application Health extension or LB probe first", ReasonCode.NEEDS_HEALTH_SOURCE
        )
    elif conflict is not None:
        # Azure refuses to enable repairs here; cause 2's finding says which source to remove or add.
        action = ProposedAction.none(f"fix the health source first: {conflict.fix}", conflict.code)
    else:
        action = ProposedAction(
            ActionCode.ENABLE_AUTOMATIC_REPAIRS,
            # An owner's own choices in a disabled policy are kept; the settings fill what is missing.
            params={
                "gracePeriod": s.repairs.grace_period or iso_duration(ctx.settings.repair_grace_period),
                "repairAction": s.repairs.repair_action or ctx.settings.repair_action,
            },
        )
    return [
        Finding(
            code=FindingCode.REPAIRS_DISABLED,
            severity=Severity.WARNING,
            scale_set_id=s.id,
            summary=f"Scale set {s.name} {why}, so unhealthy instances are never repaired.",
            reference=references.CAUSE_1,
            proposed_action=action,
            evidence=evidence,
        )
    ]
