"""Plain-data builders for rule and planner tests: snapshots and findings without any ARM or SDK in sight."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from autoheal.model import (
    ActionCode,
    Finding,
    FindingCode,
    HealthSource,
    HealthState,
    Instance,
    OrchestrationService,
    ProposedAction,
    RepairsPolicy,
    ResiliencyPolicy,
    ScaleSetSnapshot,
    Severity,
    Suspender,
    Suspension,
)
from autoheal.snapshot import parse_duration

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SUB = "00000000-0000-0000-0000-000000000001"


def ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


def inst(
    instance_id: str = "0",
    *,
    health: str | None = "Healthy",
    since: float | None = 600,
    state: str = "Succeeded",
    power: str | None = "running",
    error: str | None = None,
    created: float | None = 1000,
    state_since: float | None = 1000,
    protected: bool = False,
    deletion: str | None = None,
    view: bool = True,
) -> Instance:
    return Instance(
        instance_id=instance_id,
        name=f"vm_{instance_id}",
        resource_id=f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web/virtualMachines/{instance_id}",
        provisioning_state=state,
        provisioning_error_code=error,
        provisioning_time=ago(state_since) if state_since is not None else None,
        power_state=power if view else None,
        health=HealthState(health) if (health and view) else None,
        health_since=ago(since) if (since is not None and health and view) else None,
        protected_from_scale_set_actions=protected,
        resilient_deletion_status=deletion,
        time_created=ago(created) if created is not None else None,
        has_instance_view=view,
    )


def vmss(
    *instances: Instance,
    repairs: bool | None = True,
    grace: str | None = "PT30M",
    action: str | None = None,
    service: str | None = "Running",
    source: str | None = "ext",
    resilient: tuple[bool, bool] = (True, True),
    capacity: int | None = None,
    mode: str = "Uniform",
    summary: dict[str, int] | None = None,
    service_fabric: bool = False,
    name: str = "web",
    tags: dict[str, str] | None = None,
    resource_group: str = "rg",
    suspension: Suspension | str | None = "platform",
) -> ScaleSetSnapshot:
    """`suspension`: what the gateway read from the Activity Log for a Suspended service; "platform" (the
    default) is "no person or app suspended it", None is "not read"."""
    sources: tuple[HealthSource, ...] = ()
    if source == "ext":
        sources = (HealthSource("applicationHealthExtension", "ApplicationHealthLinux", "http", 80, "/healthz"),)
    elif source == "lb":
        sources = (HealthSource("loadBalancerProbe", probe_id="/subscriptions/x/.../probes/http"),)
    policy = (
        RepairsPolicy()
        if repairs is None
        else RepairsPolicy(True, repairs, grace, parse_duration(grace) if grace else None, action)
    )
    flexible = mode == "Flexible"  # Azure has no scale-set instance view for Flexible: no service state
    services = (OrchestrationService("AutomaticRepairs", service),) if service and not flexible else ()
    read = None
    if services and (service or "").lower() == "suspended":
        platform = Suspension(Suspender.NO_CALLER, since=NOW - timedelta(days=90))
        read = platform if suspension == "platform" else suspension if not isinstance(suspension, str) else None
    return ScaleSetSnapshot(
        id=f"/subscriptions/{SUB}/resourceGroups/{resource_group}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}",
        name=name,
        resource_group=resource_group,
        tags=dict(tags or {}),
        subscription_id=SUB,
        location="westeurope",
        orchestration_mode=mode,
        capacity=len(instances) if capacity is None else capacity,
        provisioning_state="Succeeded",
        read_at=NOW,
        repairs=policy,
        orchestration_services=services,
        resiliency=ResiliencyPolicy(True, *resilient),
        health_sources=sources,
        statuses_summary=summary or {},
        instances=tuple(instances),
        service_fabric=service_fabric,
        instance_view_read=not flexible,
        suspension=read,
    )


def healthy(n: int, start: int = 0) -> list[Instance]:
    return [inst(str(i)) for i in range(start, start + n)]


# -- findings as a rule hands them to the planner (what the planner reads: code, ids, the proposal) -----------


def finding(
    snapshot: ScaleSetSnapshot,
    code: FindingCode,
    proposal: ProposedAction,
    instance_ids: tuple[str, ...] = (),
    severity: Severity = Severity.ERROR,
) -> Finding:
    return Finding(
        code=code,
        severity=severity,
        scale_set_id=snapshot.id,
        summary=f"{code.value} on {snapshot.name}",
        reference="https://learn.microsoft.com/azure/virtual-machine-scale-sets/",
        proposed_action=proposal,
        instance_ids=instance_ids,
    )


def replace_failed(snapshot: ScaleSetSnapshot, *instance_ids: str) -> Finding:
    """Cause 3's proposal: replace these failed instances at the scale set's capacity, each one's failure kept."""
    failures = [
        {"instanceId": i, "errorCode": found.provisioning_error_code}
        for i in instance_ids
        if (found := snapshot.instance(i)) is not None
    ]
    proposal = ProposedAction(
        ActionCode.REPLACE_FAILED_INSTANCES,
        params={"targetCapacity": snapshot.capacity, "failures": failures},
        instance_ids=instance_ids,
    )
    return finding(snapshot, FindingCode.PROVISIONING_FAILED, proposal, instance_ids)


def repair_overdue(snapshot: ScaleSetSnapshot, *instance_ids: str) -> Finding:
    """The unhealthy-not-repaired proposal: the scale set's own repair action on each overdue instance."""
    proposal = ProposedAction(
        ActionCode.REPAIR_INSTANCES,
        params={"repairAction": snapshot.repairs.effective_repair_action},
        instance_ids=instance_ids,
    )
    return finding(snapshot, FindingCode.UNHEALTHY_NOT_REPAIRED, proposal, instance_ids)


def resume_repairs(snapshot: ScaleSetSnapshot) -> Finding:
    """Cause 4's proposal: resume the suspended AutomaticRepairs service."""
    proposal = ProposedAction(
        ActionCode.RESUME_AUTOMATIC_REPAIRS, params={"serviceName": "AutomaticRepairs", "action": "Resume"}
    )
    return finding(snapshot, FindingCode.REPAIRS_SUSPENDED, proposal)


def no_action(snapshot: ScaleSetSnapshot, code: FindingCode, reason: str, reason_code: str) -> Finding:
    """A rule that proposes nothing, with its reason."""
    return finding(snapshot, code, ProposedAction.none(reason, reason_code))
