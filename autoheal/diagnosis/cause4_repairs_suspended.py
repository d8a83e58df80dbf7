"""Cause 4: the automatic repairs service is suspended.

The `AutomaticRepairs` service reads `Suspended`. The instance view does not say why: the platform suspends
it after repeated failed repairs, and a person (or an app) may suspend it on purpose (`az vmss
set-orchestration-service-state --action Suspend`). The gateway reads who did from the Activity Log
(`snapshot.suspension`, gateway/activitylog.py). Resolution 4 (resume with setOrchestrationServiceState) is
proposed only when no person or app suspended it; a person's decision is held for them with their name and
the time, and so is a suspension whose author cannot be read. Health monitoring that is suspect blocks a
resume as before: resuming would only repair, fail and suspend again.
"""

from __future__ import annotations

from ..model import (
    ActionCode,
    Finding,
    FindingCode,
    ProposedAction,
    ReasonCode,
    ServiceState,
    Severity,
    Suspender,
    Suspension,
    iso,
)
from . import references
from .context import Context, norm


def _summary(name: str, service_since: str | None, suspension: Suspension | None) -> str:
    """What the data shows, and nothing it does not: the state, since when, and who, when the log says."""
    text = f"Automatic repairs on scale set {name} are suspended (serviceState Suspended"
    text += f" since {service_since.replace('T', ' ').rstrip('Z')} UTC)" if service_since else ")"
    if suspension is None:
        return text + "; who suspended them was not read."
    if suspension.suspender in (Suspender.PERSON, Suspender.PRINCIPAL):
        return text + f"; suspended by {suspension.who()}."
    if suspension.suspender is Suspender.NO_CALLER:
        since = f" since {suspension.since:%Y-%m-%d}" if suspension.since else ""
        return text + f"; the Activity Log shows no person or app suspending them{since}."
    if suspension.suspender is Suspender.UNKNOWN:
        return text + "; suspended before the Activity Log's window: who did cannot be read."
    return text + "; the Activity Log could not be read to learn who suspended them."


def check(ctx: Context) -> list[Finding]:
    s, health = ctx.snapshot, ctx.health
    service = s.repairs_service
    if service is None or norm(service.state) != norm(ServiceState.SUSPENDED):
        return []
    suspension = s.suspension
    hold = (
        suspension.hold()
        if suspension is not None
        else (
            "who suspended automatic repairs was not read from the Activity Log; not resumed blind",
            ReasonCode.SUSPENDER_UNKNOWN.value,
        )
    )
    if hold is not None:
        action = ProposedAction.none(hold[0], hold[1])
    elif health.misconfigured:
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
    evidence: dict[str, object] = {
        "serviceName": service.name,
        "serviceState": service.state,
        "suspendedBy": suspension.to_dict() if suspension is not None else None,
        "lastStatusChangeTime": iso(service.last_status_change, seconds=True),
        "automaticRepairsPolicy": {
            "enabled": s.repairs.enabled,
            "gracePeriod": s.repairs.grace_period,
        },
        "health": health.counts(),
    }
    if service.latest_operation_status:
        evidence["latestOperationStatus"] = service.latest_operation_status
    if suspension is None:
        del evidence["suspendedBy"]
    if hold is not None:
        evidence["resumeWith"] = Suspension.resume_command(s.name, s.resource_group)
    return [
        Finding(
            code=FindingCode.REPAIRS_SUSPENDED,
            severity=Severity.ERROR,
            scale_set_id=s.id,
            summary=_summary(s.name, iso(service.last_status_change, seconds=True), suspension),
            reference=references.CAUSE_4,
            proposed_action=action,
            evidence=evidence,
        )
    ]
