"""What every rule reads: the snapshot, the settings, "now", and facts several rules share."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..model import (
    ActionCode,
    Finding,
    FindingCode,
    HealthState,
    Instance,
    ProposedAction,
    ReasonCode,
    ScaleSetSnapshot,
    ServiceState,
    Severity,
    iso,
)
from ..ownership import owner_of
from ..settings import Settings

# The platform's own limits (Microsoft's resilient create/delete and automatic repairs documents).
RESILIENT_CREATE_WINDOW = timedelta(minutes=30)
RESILIENT_CREATE_ATTEMPTS = 5
RESILIENT_DELETE_ATTEMPTS = 5
CREATE_TIMEOUT_CODES = frozenset({"OSProvisioningTimedOut", "VMStartTimedOut"})
# Azure's default when a policy carries no gracePeriod; the longer documented value, so we never act early.
DEFAULT_GRACE_PERIOD = timedelta(minutes=30)
# Below this many running instances "all of them are unhealthy" cannot tell a broken probe from a sick VM.
MIN_INSTANCES_FOR_HEALTH_VERDICT = 2

BAD_HEALTH = (HealthState.UNHEALTHY, HealthState.UNKNOWN)


def minutes(delta: timedelta | None) -> float | None:
    return round(delta.total_seconds() / 60, 1) if delta is not None else None


def norm(value: str | None) -> str:
    """Compare Azure enum strings loosely: 'In Progress', 'InProgress' and 'inprogress' are one."""
    return (value or "").replace(" ", "").lower()


def is_running(instance: Instance) -> bool:
    return (
        instance.has_instance_view
        and not instance.failed
        # the instance view's state stands in when the model field is absent (Microsoft's instance-view samples)
        and norm(instance.provisioning_state or instance.view_provisioning_state) == "succeeded"
        and norm(instance.power_state) in ("running", "")
    )


def last_state_change(instance: Instance) -> datetime | None:
    """Automatic repairs' grace period runs from the instance's latest state change."""
    moments = [m for m in (instance.health_since, instance.provisioning_time) if m is not None]
    return max(moments) if moments else None


def created_at(instance: Instance) -> datetime | None:
    return instance.time_created or instance.provisioning_time


def create_window_start(snapshot: ScaleSetSnapshot, instance: Instance) -> datetime | None:
    """When resilient create's 30-minute window started for `instance`'s scale-out.

    Resilient create retries by deleting the VM and creating another (learn.microsoft.com/azure/
    virtual-machine-scale-sets/resilient-vm-create), so a retry has a new instance id / VM name and a new
    creation time: keying the window to the instance itself would restart the clock on every retry. The
    scale-out is keyed instead to the oldest creation time among the scale set's instances still on the
    create path (Creating, or Failed with a create timeout), which an earlier member of the same scale-out
    holds while it is visible. (A lone chain whose earlier attempts are gone is keyed to its oldest visible
    attempt: ARM exposes no scale-out time to do better without history.)"""
    on_create_path = [
        created_at(i)
        for i in snapshot.instances
        if norm(i.provisioning_state) == "creating" or (i.failed and i.provisioning_error_code in CREATE_TIMEOUT_CODES)
    ]
    moments = [m for m in [*on_create_path, created_at(instance)] if m is not None]
    return min(moments) if moments else None


EXTENSION_SOURCE = "applicationHealthExtension"
PROBE_SOURCE = "loadBalancerProbe"


@dataclass(frozen=True)
class HealthSourceConflict:
    """A health-source setup Azure refuses automatic repairs for, and exactly what to change."""

    code: str  # two-health-sources | flexible-lb-probe
    problem: str
    fix: str


def health_source_conflict(snapshot: ScaleSetSnapshot) -> HealthSourceConflict | None:
    """ "Only one source of health monitoring can be used ... If you have both options enabled, you need to remove
    one" (learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-health-extension);
    Flexible orchestration: "Application health via SLB health probe: not supported" (learn.microsoft.com/azure/
    virtual-machine-scale-sets/virtual-machine-scale-sets-orchestration-modes)."""
    extension = next((h for h in snapshot.health_sources if h.kind == EXTENSION_SOURCE), None)
    probe = next((h for h in snapshot.health_sources if h.kind == PROBE_SOURCE), None)
    if extension is not None and probe is not None:
        return HealthSourceConflict(
            "two-health-sources",
            f"both an Application Health extension ({extension.describe()}) and a {probe.describe()} are "
            "configured, and automatic repairs accept only one health source",
            f"remove one: e.g. drop virtualMachineProfile.networkProfile.healthProbe ({probe.probe_id}) and keep "
            "the extension, which reports from inside each VM",
        )
    if snapshot.is_flexible and probe is not None and extension is None:
        return HealthSourceConflict(
            "flexible-lb-probe",
            f"its only health source is a {probe.describe()}, which Flexible orchestration does not support for "
            "application health",
            "add the Application Health extension (ApplicationHealthLinux or ApplicationHealthWindows, publisher "
            "Microsoft.ManagedServices) to virtualMachineProfile.extensionProfile",
        )
    return None


REPAIRS_STATE_UNREADABLE = "unreadable: Flexible scale sets have no scale-set instance view"


def service_state_evidence(snapshot: ScaleSetSnapshot) -> str | None:
    """The AutomaticRepairs service state for evidence: on Flexible, say plainly that it cannot be read."""
    return snapshot.repairs_service_state if snapshot.instance_view_read else REPAIRS_STATE_UNREADABLE


@dataclass(frozen=True)
class HealthAssessment:
    """Cause 2's verdict, shared by cause 4 (resume would loop) and the repair rules (storm)."""

    misconfigured: bool
    reason: str
    running: int
    healthy: int
    unhealthy: int
    unknown: int
    initializing: int
    not_reported: int
    threshold_percent: int

    @property
    def bad(self) -> int:
        return self.unhealthy + self.unknown

    @property
    def bad_percent(self) -> float:
        return round(100.0 * self.bad / self.running, 1) if self.running else 0.0

    def counts(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "healthy": self.healthy,
            "unhealthy": self.unhealthy,
            "unknown": self.unknown,
            "initializing": self.initializing,
            "notReported": self.not_reported,
            "badPercent": self.bad_percent,
            "stormThresholdPercent": self.threshold_percent,
        }


def assess_health(snapshot: ScaleSetSnapshot, settings: Settings) -> HealthAssessment:
    running = [i for i in snapshot.instances if is_running(i)]
    by_state = {state: sum(1 for i in running if i.health is state) for state in HealthState}
    not_reported = sum(1 for i in running if i.health is None)
    threshold = settings.storm_threshold_percent
    base: dict[str, Any] = {
        "running": len(running),
        "healthy": by_state[HealthState.HEALTHY],
        "unhealthy": by_state[HealthState.UNHEALTHY],
        "unknown": by_state[HealthState.UNKNOWN],
        "initializing": by_state[HealthState.INITIALIZING],
        "not_reported": not_reported,
        "threshold_percent": threshold,
    }
    bad = base["unhealthy"] + base["unknown"]
    if not snapshot.health_sources:
        return HealthAssessment(True, "no Application Health extension and no load-balancer probe", **base)
    if len(running) >= MIN_INSTANCES_FOR_HEALTH_VERDICT:
        if bad == len(running):
            return HealthAssessment(True, f"all {bad} running instances report Unhealthy/Unknown", **base)
        if 100 * bad > threshold * len(running):
            return HealthAssessment(
                True,
                f"{bad} of {len(running)} running instances report Unhealthy/Unknown (more than {threshold} %)",
                **base,
            )
    return HealthAssessment(False, "", **base)


@dataclass(frozen=True)
class FailedInstances:
    """Each failed instance belongs to exactly one finding, so no instance gets two actions."""

    create_timeouts: tuple[Instance, ...] = ()
    delete_leftovers: tuple[Instance, ...] = ()
    stuck_deleting: tuple[Instance, ...] = ()
    other: tuple[Instance, ...] = ()
    surplus: int = 0


def classify_failures(snapshot: ScaleSetSnapshot, settings: Settings, now: datetime) -> FailedInstances:
    deleting = [i for i in snapshot.instances if norm(i.provisioning_state) == "deleting"]
    stuck = tuple(
        i
        for i in deleting
        if i.provisioning_time is not None and now - i.provisioning_time >= settings.delete_stuck_after
    )
    failed = [i for i in snapshot.instances if i.failed]
    # A delete Azure accepted already lowered sku.capacity: failed VMs beyond it are delete leftovers.
    active = len(snapshot.instances) - len(deleting)
    surplus = max(0, active - snapshot.capacity) if snapshot.capacity is not None else 0
    leftovers = [i for i in failed if norm(i.resilient_deletion_status) in ("failed", "inprogress")]
    rest = [i for i in failed if i not in leftovers]
    extra = max(0, surplus - len(leftovers))
    if extra:
        # Prefer instances whose error is not a create timeout: a timeout says the VM was being created.
        ordered = sorted(rest, key=lambda i: (i.provisioning_error_code in CREATE_TIMEOUT_CODES, i.instance_id))
        leftovers += ordered[:extra]
        rest = [i for i in rest if i not in leftovers]
    timeouts = tuple(i for i in rest if i.provisioning_error_code in CREATE_TIMEOUT_CODES)
    other = tuple(i for i in rest if i not in timeouts)
    return FailedInstances(timeouts, tuple(leftovers), stuck, other, surplus)


@dataclass(frozen=True)
class Context:
    snapshot: ScaleSetSnapshot
    settings: Settings
    now: datetime
    health: HealthAssessment = field(init=False)
    failures: FailedInstances = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "health", assess_health(self.snapshot, self.settings))
        object.__setattr__(self, "failures", classify_failures(self.snapshot, self.settings, self.now))

    @property
    def repairs_running(self) -> bool:
        """Policy enabled and the service Running (Flexible: the state cannot be read, so the policy decides)."""
        s = self.snapshot
        if not s.instance_view_read:
            return s.repairs.enabled
        return s.repairs.enabled and norm(s.repairs_service_state) == norm(ServiceState.RUNNING)

    def instance_facts(self, instance: Instance) -> dict[str, Any]:
        facts: dict[str, Any] = {"instanceId": instance.instance_id, "name": instance.name}
        for key, value in (
            ("provisioningState", "Failed" if instance.failed else instance.provisioning_state),
            ("errorCode", instance.provisioning_error_code),
            ("message", instance.provisioning_message),
            ("powerState", instance.power_state or ("unknown" if instance.has_instance_view else "not read")),
            ("provisioningStateSource", instance.provisioning_disagreement),
            ("health", instance.health.value if instance.health else None),
            ("healthSince", iso(instance.health_since, seconds=True)),
            ("stateSince", iso(instance.provisioning_time, seconds=True)),
            ("timeCreated", iso(instance.time_created, seconds=True)),
            ("resilientVMDeletionStatus", instance.resilient_deletion_status),
        ):
            if value is not None:
                facts[key] = value
        if instance.protected_from_scale_set_actions:
            facts["protectFromScaleSetActions"] = True
        return facts


def failed_provisioning(
    ctx: Context,
    *,
    code: FindingCode,
    summary: str,
    reference: str,
    proposed_action: ProposedAction,
    evidence: dict[str, Any],
    instance_ids: tuple[str, ...] = (),
) -> Finding:
    """An error finding for failed provisioning (cause 3's instances, the scale set's own model), its evidence
    closed by the extensions the scale set's summaries show failed, when any: often the failure's reason."""
    s = ctx.snapshot
    failing = s.failing_extensions()
    return Finding(
        code=code,
        severity=Severity.ERROR,
        scale_set_id=s.id,
        instance_ids=instance_ids,
        summary=summary,
        reference=reference,
        proposed_action=proposed_action,
        evidence={**evidence, "failingExtensions": failing} if failing else evidence,
    )


# Both resiliency policies need api-version 2023-07-01 and their feature registered (resilient create/delete doc).
RESILIENCY_MIN_API_VERSION = "2023-07-01"


def resiliency_policy_off(
    ctx: Context, *, code: FindingCode, policy: str, feature: str, what: str, action: ActionCode, reference: str
) -> Finding:
    """The finding for a resiliency policy that is off: resilient create and resilient delete share it."""
    s = ctx.snapshot
    return Finding(
        code=code,
        severity=Severity.INFO,
        scale_set_id=s.id,
        summary=f"Scale set {s.name} does not retry {what}.",
        reference=reference,
        proposed_action=_resiliency_proposal(ctx, action),
        evidence={
            "resiliencyPolicy": {"present": s.resiliency.present, policy: False},
            "featureFlag": f"Microsoft.Compute/{feature}",
            "registerCommand": f'az feature register --namespace "Microsoft.Compute" --name "{feature}"',
            "minimumApiVersion": RESILIENCY_MIN_API_VERSION,
        },
    )


def _resiliency_proposal(ctx: Context, action: ActionCode) -> ProposedAction:
    """Resilient create/delete are preview features: off is informational. Enabling them is proposed only when
    AUTOHEAL_PROPOSE_RESILIENCY is on, and never for a scale set another service owns (as far as the scale set
    itself shows: tags, managedBy, node resource group names; the planner's ownership guardrail also reads the
    resource group's managedBy) or one without instances (nothing to retry; and Azure may accept the PATCH
    without showing the policy, as on a recorded empty Flexible scale set)."""
    s = ctx.snapshot
    owner = owner_of(
        resource_group=s.resource_group, tags=s.tags, managed_by=s.managed_by, service_fabric=s.service_fabric
    )
    if not ctx.settings.propose_resiliency:
        why = "informational: a preview feature; set AUTOHEAL_PROPOSE_RESILIENCY=true to have it enabled"
    elif owner is not None:
        why = f"informational: {owner.describe()}"
    elif not s.instances:
        why = "informational: the scale set has no instances, nothing to retry"
    else:
        return ProposedAction(action)
    return ProposedAction.none(why, ReasonCode.INFORMATIONAL)
