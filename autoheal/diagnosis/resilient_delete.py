"""Resilient delete: the policy is off, or a delete failed / hangs past the platform's retries.

Resilient delete retries a forced delete 5 times with exponential backoff and reports
`resilientVMDeletionStatus` InProgress, then Failed. We retry only what the platform gave up on (or never
tried), and never while its own retries are in progress.
"""

from __future__ import annotations

from ..model import ActionCode, Finding, FindingCode, HeldInstance, ProposedAction, ReasonCode, Severity
from . import references
from .context import Context, minutes, norm, resiliency_policy_off

FEATURE = "ReliableVMDeletion"


def check_disabled(ctx: Context) -> list[Finding]:
    if ctx.snapshot.resiliency.delete_enabled:
        return []
    return [
        resiliency_policy_off(
            ctx,
            code=FindingCode.RESILIENT_DELETE_DISABLED,
            policy="resilientVMDeletionPolicy",
            feature=FEATURE,
            what="failed VM deletes (resilient delete is off)",
            action=ActionCode.ENABLE_RESILIENT_VM_DELETE,
            reference=references.RESILIENT_DELETE,
        )
    ]


def check_failed(ctx: Context) -> list[Finding]:
    s = ctx.snapshot
    stuck = list(ctx.failures.delete_leftovers) + [
        i for i in ctx.failures.stuck_deleting if i not in ctx.failures.delete_leftovers
    ]
    if not stuck:
        return []
    platform_busy = [i for i in stuck if norm(i.resilient_deletion_status) == "inprogress"]
    retry = [i for i in stuck if i not in platform_busy]
    held = tuple(
        HeldInstance(
            i.instance_id,
            "the platform's resilient delete is In Progress on this instance",
            ReasonCode.PLATFORM_RETRYING,
        )
        for i in platform_busy
    )
    action = ProposedAction(ActionCode.RETRY_DELETE, instance_ids=tuple(i.instance_id for i in retry), held=held)
    return [
        Finding(
            code=FindingCode.DELETE_FAILED,
            severity=Severity.ERROR,
            scale_set_id=s.id,
            instance_ids=tuple(i.instance_id for i in stuck),
            summary=f"{len(stuck)} instance(s) of {s.name} are stuck after a delete (failed or deleting too long).",
            reference=references.RESILIENT_DELETE,
            proposed_action=action,
            evidence={
                "instances": [ctx.instance_facts(i) for i in stuck],
                "resilientVMDeletion": s.resiliency.delete_enabled,
                "platformRetrying": [i.instance_id for i in platform_busy],
                "capacity": s.capacity,
                "surplusOverCapacity": ctx.failures.surplus,
                "deleteStuckAfterMinutes": minutes(ctx.settings.delete_stuck_after),
            },
        )
    ]
