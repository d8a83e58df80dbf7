"""One instance at a time: the scale set's own repairAction on an unhealthy instance (Restart, Reimage, or
Replace), and a forced retry of a delete the platform gave up on. Each request is preceded by an intent
(the instance as it looked); a resumed run that finds the instance changed does not ask again."""

from __future__ import annotations

from ...diagnosis.context import BAD_HEALTH
from ...gateway import ArmError
from ...gateway.errors import ErrorClass
from ...model import ActionCode, Instance
from ..record import Step
from ..transitions import Outcome
from .context import ActionContext, failed, fingerprint, is_deleting, succeeded, unchanged, verifying
from .registry import ActionSpec, register
from .replace import replace


def _still_unhealthy(instance: Instance) -> bool:
    """The diagnosis' own test, on the fresh read: an instance that no longer reports a health state (None)
    gives no evidence for a disruptive action, so it is left alone; a later sweep sees it again."""
    return instance.failed or instance.health in BAD_HEALTH


def repair_instances(ctx: ActionContext) -> Outcome:
    """The scale set's own repairAction on one instance: Restart, Reimage, or Replace."""
    repair = str(ctx.params.get("repairAction") or "Replace")
    instance_id = ctx.record.target
    if repair == "Replace":
        return replace(ctx, [instance_id], still_doomed=_still_unhealthy)
    snap = ctx.fresh(instance_view=False)
    instance = snap.instance(instance_id)
    if instance is None:
        return succeeded(f"instance {instance_id} no longer exists")
    if ctx.step not in (Step.REQUEST_INTENT, Step.REQUESTED):
        if not _still_unhealthy(instance):
            return succeeded(f"instance {instance_id} no longer reports bad health: nothing to do")
        ctx.checkpoint(Step.REQUEST_INTENT, intent={"instance": instance_id, "seen": fingerprint(instance)})
    if ctx.step is Step.REQUEST_INTENT:
        if unchanged(instance, ctx.record.intent.get("seen")):
            operation = ctx.gateway.reimage_instance if repair == "Reimage" else ctx.gateway.restart_instance
            ctx.write(f"{repair.lower()} instance {instance_id}", lambda: operation(snap, instance_id))
        ctx.checkpoint(Step.REQUESTED)
    return verify_instance_operation(ctx)


def verify_instance_operation(ctx: ActionContext) -> Outcome:
    instance = ctx.fresh(instance_view=False).instance(ctx.record.target)
    repair = str(ctx.params.get("repairAction", "repair"))
    if instance is None:
        return succeeded(f"instance {ctx.record.target} no longer exists")
    if instance.failed:
        return failed(f"{repair} left the instance Failed", instance.provisioning_error_code or "")
    if (instance.provisioning_state or "").lower() == "succeeded":
        return succeeded(f"{repair.lower()} of instance {instance.instance_id} completed; its grace period restarts")
    return verifying(f"{repair} requested; instance is {instance.provisioning_state}")


def retry_delete(ctx: ActionContext) -> Outcome:
    instance_id = ctx.record.target
    snap = ctx.fresh(instance_view=False)
    instance = snap.instance(instance_id)
    if instance is None:
        return succeeded(f"instance {instance_id} is gone")
    if ctx.step not in (Step.REQUEST_INTENT, Step.REQUESTED):
        ctx.checkpoint(Step.REQUEST_INTENT, intent={"instance": instance_id, "seen": fingerprint(instance)})
    if ctx.step is Step.REQUEST_INTENT:
        if unchanged(instance, ctx.record.intent.get("seen")) and not is_deleting(instance):
            try:
                ctx.write(
                    f"forced delete of instance {instance_id}",
                    lambda: ctx.gateway.delete_instances(snap, [instance_id], force=True),
                )
            except ArmError as exc:
                if exc.kind is not ErrorClass.ALREADY_DELETING:
                    raise
        ctx.checkpoint(Step.REQUESTED)
    return verify_deleted(ctx)


def verify_deleted(ctx: ActionContext) -> Outcome:
    instance = ctx.fresh(instance_view=False).instance(ctx.record.target)
    if instance is None:
        return succeeded(f"forced delete of instance {ctx.record.target} completed")
    if is_deleting(instance):
        return verifying("forced delete accepted; instance still Deleting")
    return failed(
        f"instance still {instance.provisioning_state} after the forced delete", instance.provisioning_error_code or ""
    )


REPAIR = register(
    ActionSpec(
        ActionCode.REPAIR_INSTANCES,
        "repair the unhealthy {targets|instances}",
        "repaired the unhealthy {targets|instances}",
        repair_instances,
        per_instance=True,
        disruptive=True,
    )
)
RETRY_DELETE = register(
    ActionSpec(
        ActionCode.RETRY_DELETE,
        "delete {targets|the stuck instances} again",
        "deleted {targets|the stuck instances}",
        retry_delete,
        per_instance=True,
        disruptive=True,
        removes_instances=True,
    )
)
