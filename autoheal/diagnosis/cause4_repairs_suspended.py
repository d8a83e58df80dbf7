"""Cause 4: automatic repairs have been suspended after too many failed repairs.

The `AutomaticRepairs` service is `Suspended`. Resolution 4: resume it with setOrchestrationServiceState
— unless health monitoring is misconfigured, when resuming would only repair, fail and suspend again.
"""

from __future__ import annotations

from ..model import ActionCode, Finding, FindingCode, ProposedAction, ReasonCode, ServiceState, Severity, iso
from . import references
from .context import Context, norm


def check(ctx: Context) -> list[Finding]:
    s, health = ctx.snapshot, ctx.health
    service = s.repairs_service
    if service is None or norm(service.state) != norm(ServiceState.SUSPENDED):
        return []
    if health.misconfigured:
        action = ProposedAction.none(
            f"resuming would loop: health monitoring is suspect ({health.reason}); fix the probe first",
            ReasonCode.RESUME_WOULD_LOOP,
        )
    elif not s.repairs.enabled:
        action = ProposedAction.none(
            "the automatic repairs policy is disabled; Azure resumes only an enabled policy", ReasonCode.POLICY_DISABLED
        )
    else:
        action = ProposedAction(
            ActionCode.RESUME_AUTOMATIC_REPAIRS, params={"serviceName": service.name, "action": "Resume"}
        )
    return [
        Finding(
            code=FindingCode.REPAIRS_SUSPENDED,
            severity=Severity.ERROR,
            scale_set_id=s.id,
            summary=f"Automatic repairs on scale set {s.name} are suspended after repeated failed repairs.",
            reference=references.CAUSE_4,
            proposed_action=action,
            evidence={
                "serviceName": service.name,
                "serviceState": service.state,
                "lastStatusChangeTime": iso(service.last_status_change, seconds=True),
                "automaticRepairsPolicy": {
                    "enabled": s.repairs.enabled,
                    "gracePeriod": s.repairs.grace_period,
                },
                "health": health.counts(),
            },
        )
    ]
