"""One executor per remediation: re-read, act through the gateway, verify, report an Outcome.

Executors are step-aware: each write is followed by a checkpoint in the ledger, so a run that crashed
between two steps is resumed from the last checkpoint by a later run (e.g. the delete happened but the
capacity was not restored yet: restore, do not delete again).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..gateway import ArmError, ComputeGateway
from ..model import AUTOMATIC_REPAIRS, ActionCode, ScaleSetSnapshot, ServiceState
from ..settings import Settings
from .guardrails import capacity_floor
from .ledger import Ledger, Record, State

FEATURE_FLAGS = {
    ActionCode.ENABLE_RESILIENT_VM_CREATE: "ResilientVMScaleSetVMCreation",
    ActionCode.ENABLE_RESILIENT_VM_DELETE: "ReliableVMDeletion",
}


@dataclass(frozen=True)
class Outcome:
    state: State  # succeeded | verifying | failed | held
    reason: str
    reason_code: str = ""
    error: str = ""


@dataclass
class ActionContext:
    gateway: ComputeGateway
    ledger: Ledger
    settings: Settings
    record: Record
    clock: Callable[[], datetime]
    on_checkpoint: Callable[[str], None] | None = None
    reads: list[ScaleSetSnapshot] = field(default_factory=list)

    @property
    def params(self) -> dict[str, Any]:
        return self.record.params

    def fresh(self) -> ScaleSetSnapshot:
        """Re-read the scale set: never act on what an earlier read said."""
        snap = self.gateway.snapshot_by_name(self.record.resource_group, self.record.scale_set_name)
        self.reads.append(snap)
        return snap

    def checkpoint(self, step: str, **changes: Any) -> None:
        """Persist progress before the next write (ETag: if somebody took the record over, stop here)."""
        self.record = self.ledger.update(
            self.record.evolve(step=step, updated_at=self.clock(), **changes), history=False
        )
        if self.on_checkpoint is not None:
            self.on_checkpoint(step)


Executor = Callable[[ActionContext], Outcome]


def _succeeded(reason: str) -> Outcome:
    return Outcome(State.SUCCEEDED, reason)


# -- scale-set settings ------------------------------------------------------------------------------------


def _repairs_on(snap: ScaleSetSnapshot) -> bool:
    """Enabled and Running (a Flexible scale set shows no service state: the policy is all we can see)."""
    if not snap.repairs.enabled:
        return False
    return snap.repairs_service_state == ServiceState.RUNNING or not snap.instance_view_read


def enable_automatic_repairs(ctx: ActionContext) -> Outcome:
    snap = ctx.fresh()
    if _repairs_on(snap):
        return _succeeded("automatic repairs already enabled and running")
    if not snap.health_sources:
        return Outcome(
            State.HELD, "no health source: Azure refuses automatic repairs without one", "needs-health-source"
        )
    # Keep what the owner chose (Azure only lets repairAction change by disabling the policy first);
    # the re-read wins over the plan if the policy changed since the diagnosis.
    policy = {
        "enabled": True,
        "gracePeriod": snap.repairs.grace_period or ctx.params.get("gracePeriod") or "PT30M",
        "repairAction": snap.repairs.repair_action or ctx.params.get("repairAction") or "Replace",
    }
    if ctx.record.step != "patched":
        ctx.gateway.update_scale_set(snap.resource_group, snap.name, {"properties": {"automaticRepairsPolicy": policy}})
        ctx.checkpoint("patched")
    after = ctx.fresh()
    if _repairs_on(after):
        return _succeeded(f"enabled automatic repairs ({policy['gracePeriod']}, {policy['repairAction']})")
    return Outcome(State.VERIFYING, f"policy written; AutomaticRepairs service is {after.repairs_service_state}")


def resume_automatic_repairs(ctx: ActionContext) -> Outcome:
    snap = ctx.fresh()
    state = snap.repairs_service_state
    if state == ServiceState.RUNNING:
        return _succeeded("automatic repairs already running")
    if state != ServiceState.SUSPENDED and ctx.record.step != "resumed":
        return Outcome(State.HELD, f"AutomaticRepairs is {state}, not Suspended: nothing to resume", "state-changed")
    if ctx.record.step != "resumed":
        ctx.gateway.set_orchestration_service_state(snap.resource_group, snap.name, AUTOMATIC_REPAIRS, "Resume")
        ctx.checkpoint("resumed")
    after = ctx.fresh()
    if after.repairs_service_state == ServiceState.RUNNING:
        return _succeeded("resumed automatic repairs")
    return Outcome(State.VERIFYING, f"resume requested; AutomaticRepairs is {after.repairs_service_state}")


def set_grace_period(ctx: ActionContext) -> Outcome:
    snap = ctx.fresh()
    wanted = ctx.params["gracePeriod"]
    if snap.repairs.grace_period == wanted:
        return _succeeded(f"grace period already {wanted}")
    policy: dict[str, Any] = {"enabled": snap.repairs.enabled, "gracePeriod": wanted}
    if snap.repairs.repair_action:
        policy["repairAction"] = snap.repairs.repair_action
    ctx.gateway.update_scale_set(snap.resource_group, snap.name, {"properties": {"automaticRepairsPolicy": policy}})
    ctx.checkpoint("patched")
    after = ctx.fresh()
    if after.repairs.grace_period == wanted:
        return _succeeded(f"grace period set to {wanted} (was {snap.repairs.grace_period})")
    return Outcome(State.FAILED, f"grace period still {after.repairs.grace_period}", error="not applied")


def _enable_resiliency(ctx: ActionContext, policy_name: str, action: ActionCode) -> Outcome:
    snap = ctx.fresh()
    already = snap.resiliency.create_enabled if action is ActionCode.ENABLE_RESILIENT_VM_CREATE else None
    if action is ActionCode.ENABLE_RESILIENT_VM_DELETE:
        already = snap.resiliency.delete_enabled
    if already:
        return _succeeded(f"{policy_name} already enabled")
    patch = {"properties": {"resiliencyPolicy": {policy_name: {"enabled": True}}}}
    flag = FEATURE_FLAGS[action]
    try:
        ctx.gateway.update_scale_set(snap.resource_group, snap.name, patch)
    except ArmError as exc:
        if exc.status == 400 and (flag.lower() in exc.message.lower() or "not registered" in exc.message.lower()):
            command = f'az feature register --namespace "Microsoft.Compute" --name "{flag}"'
            return Outcome(
                State.HELD,
                f"feature Microsoft.Compute/{flag} is not registered for this subscription: run `{command}`, then "
                f"`az provider register -n Microsoft.Compute`",
                "feature-not-registered",
                error=str(exc),
            )
        raise
    ctx.checkpoint("patched")
    return _succeeded(f"enabled {policy_name}")


def enable_resilient_vm_create(ctx: ActionContext) -> Outcome:
    return _enable_resiliency(ctx, "resilientVMCreationPolicy", ActionCode.ENABLE_RESILIENT_VM_CREATE)


def enable_resilient_vm_delete(ctx: ActionContext) -> Outcome:
    return _enable_resiliency(ctx, "resilientVMDeletionPolicy", ActionCode.ENABLE_RESILIENT_VM_DELETE)


# -- instances ---------------------------------------------------------------------------------------------


def _replace(ctx: ActionContext, instance_ids: list[str]) -> Outcome:
    """Delete (forced) then restore the capacity recorded before the delete, never above it.

    Below the capacity floor the replacement is created first (surge), so the scale set never shrinks
    under the floor while we work.
    """
    snap = ctx.fresh()
    if ctx.record.step in ("", "claimed"):
        target = snap.capacity if snap.capacity is not None else len(snap.instances)
        ctx.checkpoint(
            "recorded",
            capacity_target=target,
            params={**ctx.params, "before": sorted(i.instance_id for i in snap.instances)},
        )
    target = int(ctx.record.capacity_target or 0)
    doomed = [i for i in instance_ids if snap.instance(i) is not None]
    if ctx.record.step == "recorded":
        floor = capacity_floor(snap, ctx.settings)
        current = snap.capacity or 0
        if doomed and current - len(doomed) < floor:
            ctx.gateway.scale_out(snap.resource_group, snap.name, current + len(doomed))
            ctx.checkpoint(
                "surged", params={**ctx.params, "surge": f"capacity {current} - {len(doomed)} < floor {floor}"}
            )
        else:
            ctx.checkpoint("delete-next")
    if ctx.record.step in ("surged", "delete-next"):
        if doomed:
            ctx.gateway.delete_instances(ctx.fresh() if ctx.record.step == "surged" else snap, doomed, force=True)
        ctx.checkpoint("deleted")
    if ctx.record.step == "deleted":
        now_snap = ctx.fresh()
        if (now_snap.capacity or 0) < target:
            ctx.gateway.scale_out(now_snap.resource_group, now_snap.name, target)
        ctx.checkpoint("restored")
    return verify_replacement(ctx)


def verify_replacement(ctx: ActionContext) -> Outcome:
    snap = ctx.fresh()
    before = set(ctx.params.get("before") or [])
    new = [i for i in snap.instances if i.instance_id not in before]
    failed = [i for i in new if i.failed]
    if failed:
        codes = ", ".join(sorted({i.provisioning_error_code or "unknown" for i in failed}))
        ids = ", ".join(i.instance_id for i in failed)
        return Outcome(State.FAILED, f"replacement instance(s) {ids} failed ({codes})", error=codes)
    pending = [i for i in new if (i.provisioning_state or "").lower() != "succeeded"]
    if pending or (snap.capacity or 0) < int(ctx.record.capacity_target or 0):
        ids = ", ".join(i.instance_id for i in pending) or "-"
        return Outcome(State.VERIFYING, f"waiting for new instance(s) {ids} to reach Succeeded")
    ids = ", ".join(i.instance_id for i in new) or "none needed"
    return _succeeded(f"replaced; capacity back to {ctx.record.capacity_target} (new: {ids})")


def replace_failed_instances(ctx: ActionContext) -> Outcome:
    return _replace(ctx, list(ctx.params.get("instanceIds") or ctx.record.instance_ids))


def repair_instances(ctx: ActionContext) -> Outcome:
    """The scale set's own repairAction on one instance: Restart, Reimage, or Replace."""
    repair = str(ctx.params.get("repairAction") or "Replace")
    instance_id = ctx.record.target
    if repair == "Replace":
        return _replace(ctx, [instance_id])
    snap = ctx.fresh()
    if snap.instance(instance_id) is None:
        return _succeeded(f"instance {instance_id} no longer exists")
    if ctx.record.step != "requested":
        operation = ctx.gateway.reimage_instance if repair == "Reimage" else ctx.gateway.restart_instance
        operation(snap, instance_id)
        ctx.checkpoint("requested")
    return verify_instance_operation(ctx)


def verify_instance_operation(ctx: ActionContext) -> Outcome:
    instance = ctx.fresh().instance(ctx.record.target)
    repair = ctx.params.get("repairAction", "repair")
    if instance is None:
        return _succeeded(f"instance {ctx.record.target} no longer exists")
    if instance.failed:
        return Outcome(State.FAILED, f"{repair} left the instance Failed", error=instance.provisioning_error_code or "")
    if (instance.provisioning_state or "").lower() == "succeeded":
        return _succeeded(f"{repair.lower()} of instance {instance.instance_id} completed; its grace period restarts")
    return Outcome(State.VERIFYING, f"{repair} requested; instance is {instance.provisioning_state}")


def retry_delete(ctx: ActionContext) -> Outcome:
    instance_id = ctx.record.target
    snap = ctx.fresh()
    if snap.instance(instance_id) is None:
        return _succeeded(f"instance {instance_id} is gone")
    ctx.gateway.delete_instances(snap, [instance_id], force=True)
    ctx.checkpoint("requested")
    return verify_deleted(ctx)


def verify_deleted(ctx: ActionContext) -> Outcome:
    instance = ctx.fresh().instance(ctx.record.target)
    if instance is None:
        return _succeeded(f"forced delete of instance {ctx.record.target} completed")
    if (instance.provisioning_state or "").lower() == "deleting":
        return Outcome(State.VERIFYING, "forced delete accepted; instance still Deleting")
    return Outcome(
        State.FAILED,
        f"instance still {instance.provisioning_state} after the forced delete",
        error=instance.provisioning_error_code or "",
    )


EXECUTORS: dict[ActionCode, Executor] = {
    ActionCode.ENABLE_AUTOMATIC_REPAIRS: enable_automatic_repairs,
    ActionCode.RESUME_AUTOMATIC_REPAIRS: resume_automatic_repairs,
    ActionCode.REPLACE_FAILED_INSTANCES: replace_failed_instances,
    ActionCode.REPAIR_INSTANCES: repair_instances,
    ActionCode.RETRY_DELETE: retry_delete,
    ActionCode.SET_GRACE_PERIOD: set_grace_period,
    ActionCode.ENABLE_RESILIENT_VM_CREATE: enable_resilient_vm_create,
    ActionCode.ENABLE_RESILIENT_VM_DELETE: enable_resilient_vm_delete,
}

# What a `verifying` record re-checks on a later run (actions whose write finished but whose effect lags).
VERIFIERS: dict[ActionCode, Executor] = {
    ActionCode.ENABLE_AUTOMATIC_REPAIRS: enable_automatic_repairs,
    ActionCode.RESUME_AUTOMATIC_REPAIRS: resume_automatic_repairs,
    ActionCode.REPLACE_FAILED_INSTANCES: verify_replacement,
    ActionCode.REPAIR_INSTANCES: lambda ctx: (
        verify_replacement(ctx)
        if ctx.params.get("repairAction", "Replace") == "Replace"
        else verify_instance_operation(ctx)
    ),
    ActionCode.RETRY_DELETE: verify_deleted,
}
