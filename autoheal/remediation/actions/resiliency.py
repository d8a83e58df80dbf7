"""Resilient create and delete: turn the scale set's resiliency policies on (api-version >= 2023-07-01;
each needs its Microsoft.Compute feature registered for the subscription)."""

from __future__ import annotations

from ...diagnosis.resilient_create import FEATURE as CREATE_FEATURE
from ...diagnosis.resilient_delete import FEATURE as DELETE_FEATURE
from ...gateway import ArmError
from ...model import ActionCode, ReasonCode
from ..record import Step
from ..transitions import Outcome
from .context import ActionContext, held, succeeded
from .registry import ActionSpec, register


def _enable(ctx: ActionContext, policy_name: str, flag: str) -> Outcome:
    snap = ctx.fresh()
    already = snap.resiliency.create_enabled if policy_name == "resilientVMCreationPolicy" else None
    if policy_name == "resilientVMDeletionPolicy":
        already = snap.resiliency.delete_enabled
    if already:
        return succeeded(f"{policy_name} enabled")
    patch = {"properties": {"resiliencyPolicy": {policy_name: {"enabled": True}}}}
    ctx.checkpoint(Step.PATCH_INTENT, intent={"patch": patch})
    try:
        ctx.write(f"enable {policy_name}", lambda: ctx.gateway.update_scale_set(snap.resource_group, snap.name, patch))
    except ArmError as exc:
        if exc.status == 400 and (flag.lower() in exc.message.lower() or "not registered" in exc.message.lower()):
            command = f'az feature register --namespace "Microsoft.Compute" --name "{flag}"'
            return held(
                f"feature Microsoft.Compute/{flag} is not registered for this subscription: run `{command}`, then "
                f"`az provider register -n Microsoft.Compute`",
                ReasonCode.FEATURE_NOT_REGISTERED,
                error=str(exc),
            )
        raise
    ctx.checkpoint(Step.PATCHED)
    return succeeded(f"enabled {policy_name}")


def enable_resilient_vm_create(ctx: ActionContext) -> Outcome:
    return _enable(ctx, "resilientVMCreationPolicy", CREATE_FEATURE)


def enable_resilient_vm_delete(ctx: ActionContext) -> Outcome:
    return _enable(ctx, "resilientVMDeletionPolicy", DELETE_FEATURE)


CREATE = register(
    ActionSpec(
        ActionCode.ENABLE_RESILIENT_VM_CREATE,
        "enable resilient VM create",
        "enabled resilient VM create",
        enable_resilient_vm_create,
        feature_flag=CREATE_FEATURE,
    )
)
DELETE = register(
    ActionSpec(
        ActionCode.ENABLE_RESILIENT_VM_DELETE,
        "enable resilient VM delete",
        "enabled resilient VM delete",
        enable_resilient_vm_delete,
        feature_flag=DELETE_FEATURE,
    )
)
