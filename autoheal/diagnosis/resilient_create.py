"""Resilient create: the policy is off, or a create timed out past the platform's retries.

Resilient create retries OSProvisioningTimedOut / VMStartTimedOut up to 5 times or 30 minutes while the
VM shows `Creating`; after that the VM stays `Failed` and someone has to replace it.
"""

from __future__ import annotations

from ..model import ActionCode, Finding, FindingCode, HealthState, HeldInstance, Instance, ReasonCode, Severity
from . import references
from .cause3_provisioning_failed import replace_action, resilient_create_wait
from .context import (
    CREATE_TIMEOUT_CODES,
    RESILIENT_CREATE_ATTEMPTS,
    RESILIENT_CREATE_WINDOW,
    Context,
    minutes,
    norm,
    resiliency_policy_off,
)

FEATURE = "ResilientVMScaleSetVMCreation"


def check_disabled(ctx: Context) -> list[Finding]:
    if ctx.snapshot.resiliency.create_enabled:
        return []
    return [
        resiliency_policy_off(
            ctx,
            code=FindingCode.RESILIENT_CREATE_DISABLED,
            policy="resilientVMCreationPolicy",
            feature=FEATURE,
            what="VM creates that time out (resilient create is off)",
            action=ActionCode.ENABLE_RESILIENT_VM_CREATE,
            reference=references.RESILIENT_CREATE,
        )
    ]


def running_despite_timeout(instance: Instance) -> bool:
    """A create "timed out" but the VM runs and is not Unhealthy: images without a provisioning agent report
    OSProvisioningTimedOut and still run (issue 20). A person decides; health or power state changes that."""
    return norm(instance.power_state) == "running" and instance.health is not HealthState.UNHEALTHY


def check_timed_out(ctx: Context) -> list[Finding]:
    s = ctx.snapshot
    timed_out = ctx.failures.create_timeouts
    if not timed_out:
        return []
    act, waiting = resilient_create_wait(ctx, timed_out)
    up = [i for i in act if running_despite_timeout(i)]
    act = [i for i in act if i not in up]
    held = tuple(
        HeldInstance(
            i.instance_id,
            f"{i.provisioning_error_code} but the VM is running and its health is "
            f"{i.health.value if i.health else 'not reported'} (agentless images run this way): a person decides; "
            "replaced once health says Unhealthy or the VM stops running",
            ReasonCode.RUNNING_DESPITE_TIMEOUT,
        )
        for i in up
    )
    if s.resiliency.create_enabled:
        platform = (
            f"past resilient create's {RESILIENT_CREATE_ATTEMPTS} attempts / {minutes(RESILIENT_CREATE_WINDOW):.0f} min"
        )
    else:
        platform = "resilient create is off, so the platform did not retry"
    action = replace_action(ctx, act, waiting, held)
    return [
        Finding(
            code=FindingCode.CREATE_TIMED_OUT,
            severity=Severity.ERROR,
            scale_set_id=s.id,
            instance_ids=tuple(i.instance_id for i in timed_out),
            summary=f"{len(timed_out)} instance(s) of {s.name} failed to start in time ({platform}).",
            reference=references.RESILIENT_CREATE,
            proposed_action=action,
            evidence={
                "errorCodes": sorted(CREATE_TIMEOUT_CODES & {i.provisioning_error_code for i in timed_out}),
                "instances": [ctx.instance_facts(i) for i in timed_out],
                "resilientVMCreation": s.resiliency.create_enabled,
                "capacity": s.capacity,
                "waitingForResilientCreate": waiting,
                **({"runningDespiteTimeout": [i.instance_id for i in up]} if up else {}),
            },
        )
    ]
