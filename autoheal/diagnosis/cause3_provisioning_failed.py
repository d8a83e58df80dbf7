"""Cause 3: instance is marked unhealthy due to a provisioning failure.

`ProvisioningState/failed` in the instance view's statusesSummary; automatic repairs never handle it.
Resolution 3: delete the failed instance and add a new one (`ActionCode.REPLACE_FAILED_INSTANCES`). Create
timeouts (`create-timed-out`) and delete leftovers (`delete-failed`) have their own rules.
"""

from __future__ import annotations

from typing import Any

from ..model import (
    ActionCode,
    Finding,
    FindingCode,
    HealthState,
    HeldInstance,
    Instance,
    ProposedAction,
    ReasonCode,
    Severity,
    iso,
)
from . import references
from .context import RESILIENT_CREATE_WINDOW, Context, create_window_start, failed_provisioning, norm

# A VM's provisioning state is its *last* operation's. Codes of a failed update, not of a failed create: on a VM
# that still runs, the failure says nothing about the VM serving. kubernetes/autoscaler#5767 (2023): concurrent
# network-profile updates of running scale-set VMs failed with NetworkingInternalOperationError, and treating
# them as failed removed serving VMs; the fix there acts only when the VM is not running. Extend from evidence.
FAILED_UPDATE_CODES = frozenset({"NetworkingInternalOperationError"})


def running_after_failed_update(instance: Instance) -> bool:
    """The last update failed but the VM runs and is not Unhealthy: a person retries the update (or reapplies);
    replaced once health says Unhealthy or the VM stops running."""
    return (
        instance.provisioning_error_code in FAILED_UPDATE_CODES
        and norm(instance.power_state) == "running"
        and instance.health is not HealthState.UNHEALTHY
    )


def resilient_create_wait(ctx: Context, instances: tuple[Instance, ...]) -> tuple[list[Instance], list[dict[str, Any]]]:
    """Split instances into those to replace now and those resilient create may still retry."""
    if not ctx.snapshot.resiliency.create_enabled:
        return list(instances), []
    act, waiting = [], []
    for instance in instances:
        born = create_window_start(ctx.snapshot, instance)  # the scale-out's clock, not this attempt's
        if born is not None and ctx.now - born < RESILIENT_CREATE_WINDOW:
            waiting.append(
                {"instanceId": instance.instance_id, "retriesUntil": iso(born + RESILIENT_CREATE_WINDOW, seconds=True)}
            )
        else:
            act.append(instance)
    return act, waiting


def replace_action(
    ctx: Context, act: list[Instance], waiting: list[dict[str, Any]], extra_held: tuple[HeldInstance, ...] = ()
) -> ProposedAction:
    held = (
        tuple(
            HeldInstance(
                str(w["instanceId"]),
                f"wait: resilient create may still retry (30 min / 5 attempts) until {w['retriesUntil']}",
                ReasonCode.RESILIENT_CREATE_WINDOW,
            )
            for w in waiting
        )
        + extra_held
    )
    return ProposedAction(
        ActionCode.REPLACE_FAILED_INSTANCES,
        # what each replaced instance failed with: a later failure of its replacement is compared to it (loops)
        params={"targetCapacity": ctx.snapshot.capacity, "failures": [ctx.instance_facts(i) for i in act]},
        instance_ids=tuple(i.instance_id for i in act),
        held=held,
    )


def check(ctx: Context) -> list[Finding]:
    s = ctx.snapshot
    failed = ctx.failures.other
    summary_failed = sum(
        n for code, n in s.statuses_summary.items() if code.lower().startswith("provisioningstate/failed")
    )
    if not failed:
        unread = [i for i in s.instances if not i.has_instance_view]
        if summary_failed and (unread or not s.instances):
            return [
                Finding(
                    code=FindingCode.PROVISIONING_FAILED,
                    severity=Severity.ERROR,
                    scale_set_id=s.id,
                    summary=f"Scale set {s.name} reports {summary_failed} instance(s) with failed provisioning.",
                    reference=references.CAUSE_3,
                    proposed_action=ProposedAction.none(
                        "the failed instances could not be identified (instance views missing)",
                        ReasonCode.INSTANCES_UNREADABLE,
                    ),
                    evidence={"statusesSummary": dict(s.statuses_summary)},
                )
            ]
        return []
    up = [i for i in failed if running_after_failed_update(i)]
    act, waiting = resilient_create_wait(ctx, tuple(i for i in failed if i not in up))
    held = tuple(
        HeldInstance(
            i.instance_id,
            f"{i.provisioning_error_code}: the VM's last operation (an update) failed, but the VM is running and its "
            f"health is {i.health.value if i.health else 'not reported'}: a person retries the update or reapplies; "
            "replaced once health says Unhealthy or the VM stops running",
            ReasonCode.RUNNING_AFTER_FAILED_UPDATE,
        )
        for i in up
    )
    codes = sorted({i.provisioning_error_code or "unknown" for i in failed})
    return [
        failed_provisioning(
            ctx,
            code=FindingCode.PROVISIONING_FAILED,
            instance_ids=tuple(i.instance_id for i in failed),
            summary=(
                f"Scale set {s.name} has {len(failed)} instance(s) that failed provisioning ({', '.join(codes)}); "
                "automatic repairs do not handle provisioning failures."
            ),
            reference=references.CAUSE_3,
            proposed_action=replace_action(ctx, act, waiting, held),
            evidence={
                "statusesSummary": dict(s.statuses_summary),
                "instances": [ctx.instance_facts(i) for i in failed],
                "capacity": s.capacity,
                "resilientVMCreation": s.resiliency.create_enabled,
                "waitingForResilientCreate": waiting,
                **({"runningAfterFailedUpdate": [i.instance_id for i in up]} if up else {}),
            },
        )
    ]
