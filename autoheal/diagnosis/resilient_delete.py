"""Resilient delete: the policy is off, or a delete failed / hangs past the platform's retries.

Resilient delete retries a forced delete 5 times with exponential backoff and reports
`resilientVMDeletionStatus` InProgress, then Failed. We retry only what the platform gave up on (or never
tried), and never while its own retries are in progress.
"""

from __future__ import annotations

from ..model import ActionCode, Finding, FindingCode, ProposedAction, Severity
from . import references
from .context import Context, minutes, norm

FEATURE = "ReliableVMDeletion"
MIN_API_VERSION = "2023-07-01"


def check_disabled(ctx: Context) -> list[Finding]:
    s = ctx.snapshot
    if s.resiliency.delete_enabled:
        return []
    return [
        Finding(
            code=FindingCode.RESILIENT_DELETE_DISABLED,
            severity=Severity.INFO,
            scale_set_id=s.id,
            summary=f"Scale set {s.name} does not retry failed VM deletes (resilient delete is off).",
            reference=references.RESILIENT_DELETE,
            proposed_action=ProposedAction(ActionCode.ENABLE_RESILIENT_VM_DELETE),
            evidence={
                "resiliencyPolicy": {"present": s.resiliency.present, "resilientVMDeletionPolicy": False},
                "featureFlag": f"Microsoft.Compute/{FEATURE}",
                "registerCommand": f'az feature register --namespace "Microsoft.Compute" --name "{FEATURE}"',
                "minimumApiVersion": MIN_API_VERSION,
            },
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
    held = [
        {
            "instanceId": i.instance_id,
            "reason": "the platform's resilient delete is In Progress on this instance",
            "reasonCode": "platform-retrying",
        }
        for i in platform_busy
    ]
    action = ProposedAction(
        ActionCode.RETRY_DELETE, params={"instanceIds": [i.instance_id for i in retry], "heldInstances": held}
    )
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
