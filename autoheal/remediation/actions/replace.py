"""Replace instances: delete (forced), then give the scale set back its capacity (resolution 3).

Every write is preceded by an intent saved in the ledger, so a run that resumes after a crash knows what it
asked Azure for and never asks twice:

    claimed → recorded (capacity to return to) → [surge-intent: below the floor, raise capacity first]
            → delete-intent (the instances, as they looked) → deleting (Azure accepted; wait until gone)
            → restore-intent (capacity owed) → restored (new instances provisioning) → succeeded

On resume at `delete-intent`, an instance that is gone or `Deleting` — or that changed in any way since the
intent — is not deleted again. Capacity owed is a debt: it is paid with prompt, jittered retries when a
concurrent write preempts or conflicts with ours, and a run that cannot pay it leaves the record VERIFYING,
so the next run pays it first. `sku.capacity` is PATCHed to an absolute value (idempotent), never above the
recorded target; if capacity moved for another reason the restore works from the current value and says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...gateway import ArmError
from ...gateway.errors import ErrorClass
from ...model import ActionCode, Instance, ReasonCode, ScaleSetSnapshot
from ..capacity import capacity_floor, restore
from ..record import Step
from ..transitions import Outcome
from .context import ActionContext, failed, fingerprint, is_deleting, succeeded, unchanged, verifying
from .registry import ActionSpec, register

Doomed = Callable[[Instance], bool]


def _failed(instance: Instance) -> bool:
    return instance.failed


def replace(ctx: ActionContext, instance_ids: list[str], still_doomed: Doomed = _failed) -> Outcome:
    snap = ctx.fresh(instance_view=False)
    if ctx.step in (Step.NONE, Step.CLAIMED):
        target = snap.capacity if snap.capacity is not None else len(snap.instances)
        ctx.checkpoint(
            Step.RECORDED,
            capacity_target=target,
            params={**ctx.params, "before": sorted(i.instance_id for i in snap.instances)},
        )
    target = int(ctx.record.capacity_target or 0)
    if ctx.step is Step.RECORDED:
        doomed = [
            i
            for i in instance_ids
            if (inst := snap.instance(i)) is not None and not is_deleting(inst) and still_doomed(inst)
        ]
        if not doomed:
            return succeeded("nothing to replace: the instance(s) are gone or no longer need it")
        current = snap.capacity or 0
        floor = capacity_floor(target, ctx.settings)
        if current - len(doomed) < floor:
            surge = f"capacity {current} - {len(doomed)} < floor {floor}"
            ctx.checkpoint(
                Step.SURGE_INTENT,
                intent={"capacity": current + len(doomed), "doomed": doomed},
                params={**ctx.params, "surge": surge},
            )
        else:
            ctx.checkpoint(Step.DELETE_INTENT, intent=_delete_intent(snap, doomed))
    if ctx.step is Step.SURGE_INTENT:
        wanted = int(ctx.record.intent["capacity"])
        if (snap.capacity or 0) < wanted:
            ctx.write("surge capacity", lambda: ctx.gateway.set_capacity(snap.resource_group, snap.name, wanted))
            snap = ctx.fresh(instance_view=False)
        doomed = [i for i in ctx.record.intent["doomed"] if (inst := snap.instance(i)) and not is_deleting(inst)]
        ctx.checkpoint(Step.DELETE_INTENT, intent=_delete_intent(snap, doomed))
    if ctx.step is Step.DELETE_INTENT:
        _delete_once(ctx, snap)
        snap = ctx.fresh(instance_view=False)
    if ctx.step is Step.DELETING:
        outcome = _wait_until_gone(ctx, snap)
        if outcome is not None:
            return outcome
    if ctx.step is Step.RESTORE_INTENT:
        _pay_debt(ctx)
    stuck = ctx.record.intent.get("stuck") or []
    if stuck:
        return failed(f"the delete of instance(s) {', '.join(stuck)} did not complete; capacity restored")
    return verify_replacement(ctx)


def _delete_intent(snap: ScaleSetSnapshot, doomed: list[str]) -> dict[str, Any]:
    instances = {i: fingerprint(inst) for i in doomed if (inst := snap.instance(i)) is not None}
    return {"instances": instances, "capacityBeforeDelete": snap.capacity or 0}


def _delete_once(ctx: ActionContext, snap: ScaleSetSnapshot) -> None:
    """Delete what the intent names, unless Azure already has it: gone, Deleting, or changed since."""
    intent = ctx.record.intent
    to_delete = []
    for instance_id, seen in (intent.get("instances") or {}).items():
        instance = snap.instance(instance_id)
        if instance is None or is_deleting(instance):
            continue  # our delete (or someone's) was accepted
        if unchanged(instance, seen):
            to_delete.append(instance_id)
    if to_delete:
        try:
            ctx.write(
                f"delete instance(s) {', '.join(to_delete)}",
                lambda: ctx.gateway.delete_instances(snap, to_delete, force=True),
            )
        except ArmError as exc:
            if exc.kind is not ErrorClass.ALREADY_DELETING:
                raise
    ctx.checkpoint(Step.DELETING)


def _wait_until_gone(ctx: ActionContext, snap: ScaleSetSnapshot) -> Outcome | None:
    intent = ctx.record.intent
    ids = list(intent.get("instances") or {})
    latest = [snap]

    def deleting() -> list[str]:
        current = latest[-1]
        return [i for i in ids if (inst := current.instance(i)) is not None and is_deleting(inst)]

    def reread() -> list[str]:
        latest.append(ctx.fresh(instance_view=False))
        return deleting()

    pending = deleting() and ctx.wait_for("capacity owed", reread)
    if pending:
        return verifying(f"waiting for Azure to delete instance(s) {', '.join(pending)}", ReasonCode.WAITING_FOR_DELETE)
    snap = latest[-1]
    gone = [i for i in ids if snap.instance(i) is None]
    stuck = [i for i in ids if snap.instance(i) is not None]
    ctx.checkpoint(Step.RESTORE_INTENT, intent={**intent, "gone": gone, "stuck": stuck})
    return None


def _pay_debt(ctx: ActionContext) -> None:
    intent = ctx.record.intent
    target = int(ctx.record.capacity_target or 0)

    def attempt() -> str:
        snap = ctx.fresh(instance_view=False)
        plan = restore(
            target=target,
            before_delete=int(intent.get("capacityBeforeDelete") or target),
            gone=len(intent.get("gone") or []),
            current=snap.capacity or 0,
        )
        if plan.capacity is not None:
            ctx.gateway.set_capacity(snap.resource_group, snap.name, plan.capacity)
        return plan.note

    note = ctx.write("restore capacity", attempt)
    params = {**ctx.params, "restoreNote": note} if note else ctx.params
    ctx.checkpoint(Step.RESTORED, params=params)


def verify_replacement(ctx: ActionContext) -> Outcome:
    snap = ctx.fresh(instance_view=False)
    before = set(ctx.params.get("before") or [])
    new = [i for i in snap.instances if i.instance_id not in before]
    broken = [i for i in new if i.failed]
    if broken:
        codes = ", ".join(sorted({i.provisioning_error_code or "unknown" for i in broken}))
        ids = ", ".join(i.instance_id for i in broken)
        return failed(f"replacement instance(s) {ids} failed ({codes})", codes)
    pending = [i for i in new if (i.provisioning_state or "").lower() != "succeeded"]
    if pending:
        ids = ", ".join(i.instance_id for i in pending)
        return verifying(f"waiting for new instance(s) {ids} to reach Succeeded")
    ids = ", ".join(i.instance_id for i in new) or "none needed"
    note = ctx.params.get("restoreNote")
    detail = f"; {note}" if note else ""
    return succeeded(f"replaced; capacity back to {snap.capacity} of {ctx.record.capacity_target} (new: {ids}){detail}")


def replace_failed_instances(ctx: ActionContext) -> Outcome:
    return replace(ctx, list(ctx.params.get("instanceIds") or ctx.record.instance_ids))


SPEC = register(
    ActionSpec(
        ActionCode.REPLACE_FAILED_INSTANCES,
        "replace the failed {targets|instances}",
        "replaced the failed {targets|instances}",
        replace_failed_instances,
        disruptive=True,
        removes_instances=True,
    )
)
