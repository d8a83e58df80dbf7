"""Automatic repairs: enable the policy (cause 1), resume the suspended service (cause 4), set the grace
period (cause 5). Scale-set PATCHes are idempotent, so a resumed run may send them again safely."""

from __future__ import annotations

from typing import Any

from ...model import AUTOMATIC_REPAIRS, ActionCode, ReasonCode, ScaleSetSnapshot, ServiceState
from ..record import Step
from ..transitions import Outcome
from .context import ActionContext, failed, held, succeeded, verifying
from .registry import ActionSpec, register


def _repairs_on(snap: ScaleSetSnapshot) -> bool:
    """Enabled and Running (a Flexible scale set shows no service state: the policy is all we can see)."""
    if not snap.repairs.enabled:
        return False
    return snap.repairs_service_state == ServiceState.RUNNING or not snap.instance_view_read


def _patch_policy(ctx: ActionContext, snap: ScaleSetSnapshot, policy: dict[str, Any], describe: str) -> None:
    """Intent, PATCH automaticRepairsPolicy (idempotent: a resumed run may send it again), checkpoint."""
    ctx.checkpoint(Step.PATCH_INTENT, intent={"policy": policy})
    ctx.write(
        describe,
        lambda: ctx.gateway.update_scale_set(
            snap.resource_group, snap.name, {"properties": {"automaticRepairsPolicy": policy}}
        ),
    )
    ctx.checkpoint(Step.PATCHED)


def enable_automatic_repairs(ctx: ActionContext) -> Outcome:
    snap = ctx.fresh()
    if _repairs_on(snap):
        return succeeded("automatic repairs already enabled and running")
    policy: dict[str, Any] = ctx.record.intent.get("policy") or {}
    if ctx.step is not Step.PATCHED:
        if not snap.health_sources:
            return held("no health source: Azure refuses automatic repairs without one", ReasonCode.NEEDS_HEALTH_SOURCE)
        # Keep what the owner chose (Azure only lets repairAction change by disabling the policy first); the
        # re-read wins over the plan if the policy changed since the diagnosis.
        policy = {
            "enabled": True,
            "gracePeriod": snap.repairs.grace_period or ctx.params.get("gracePeriod") or "PT30M",
            "repairAction": snap.repairs.repair_action or ctx.params.get("repairAction") or "Replace",
        }
        _patch_policy(ctx, snap, policy, "enable automatic repairs")
    after = ctx.fresh()
    if _repairs_on(after):
        grace, action = policy.get("gracePeriod", "?"), policy.get("repairAction", "?")
        return succeeded(f"enabled automatic repairs ({grace}, {action})")
    return verifying(f"policy written; AutomaticRepairs service is {after.repairs_service_state}")


def resume_automatic_repairs(ctx: ActionContext) -> Outcome:
    snap = ctx.fresh()
    state = snap.repairs_service_state
    if state == ServiceState.RUNNING:
        return succeeded("automatic repairs already running")
    if ctx.step is not Step.RESUMED:
        if state != ServiceState.SUSPENDED:
            return held(f"AutomaticRepairs is {state}, not Suspended: nothing to resume", ReasonCode.STATE_CHANGED)
        # The re-read asked the Activity Log again: a person may have suspended it since the diagnosis.
        hold = (
            snap.suspension.hold()
            if snap.suspension is not None
            else ("who suspended automatic repairs was not read; not resumed blind", ReasonCode.SUSPENDER_UNKNOWN)
        )
        if hold is not None:
            return held(*hold)
        ctx.checkpoint(Step.RESUME_INTENT)
        ctx.write(
            "resume automatic repairs",
            lambda: ctx.gateway.set_orchestration_service_state(
                snap.resource_group, snap.name, AUTOMATIC_REPAIRS, "Resume"
            ),
        )
        ctx.checkpoint(Step.RESUMED)
    after = ctx.fresh()
    if after.repairs_service_state == ServiceState.RUNNING:
        return succeeded("resumed automatic repairs")
    return verifying(f"resume requested; AutomaticRepairs is {after.repairs_service_state}")


def set_grace_period(ctx: ActionContext) -> Outcome:
    snap = ctx.fresh()
    wanted = str(ctx.params["gracePeriod"])
    if snap.repairs.grace_period == wanted:
        return succeeded(f"grace period is {wanted}")
    if ctx.step is Step.PATCHED:
        return failed(f"grace period still {snap.repairs.grace_period}", "not applied")
    policy: dict[str, Any] = {"enabled": snap.repairs.enabled, "gracePeriod": wanted}
    if snap.repairs.repair_action:
        policy["repairAction"] = snap.repairs.repair_action
    _patch_policy(ctx, snap, policy, "set the grace period")
    after = ctx.fresh()
    if after.repairs.grace_period == wanted:
        return succeeded(f"grace period set to {wanted} (was {snap.repairs.grace_period})")
    return failed(f"grace period still {after.repairs.grace_period}", "not applied")


ENABLE = register(
    ActionSpec(
        ActionCode.ENABLE_AUTOMATIC_REPAIRS,
        "enable automatic repairs",
        "enabled automatic repairs",
        enable_automatic_repairs,
    )
)
RESUME = register(
    ActionSpec(
        ActionCode.RESUME_AUTOMATIC_REPAIRS,
        "resume automatic repairs",
        "resumed automatic repairs",
        resume_automatic_repairs,
    )
)
GRACE = register(
    ActionSpec(
        ActionCode.SET_GRACE_PERIOD, "set the repair grace period", "set the repair grace period", set_grace_period
    )
)
