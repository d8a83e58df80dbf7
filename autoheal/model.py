"""The project's own picture of a scale set: what the gateway reads, what the rules reason about.

Everything here is plain data (frozen dataclasses, no SDK objects), so diagnosis stays a pure function
of a snapshot, the settings and "now".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

AUTOMATIC_REPAIRS = "AutomaticRepairs"


class HealthState(StrEnum):
    """Application health as reported in `instanceView.vmHealth.status.code` (`HealthState/<state>`)."""

    HEALTHY = "Healthy"
    UNHEALTHY = "Unhealthy"
    UNKNOWN = "Unknown"
    INITIALIZING = "Initializing"


class ServiceState(StrEnum):
    """`orchestrationServices[].serviceState` of the scale set instance view."""

    RUNNING = "Running"
    NOT_RUNNING = "NotRunning"
    SUSPENDED = "Suspended"


@dataclass(frozen=True)
class HealthSource:
    """Where automatic repairs gets its health signal from."""

    kind: str  # "applicationHealthExtension" | "loadBalancerProbe"
    extension_type: str | None = None  # ApplicationHealthLinux | ApplicationHealthWindows
    protocol: str | None = None
    port: int | None = None
    request_path: str | None = None
    probe_id: str | None = None
    interval_seconds: int | None = None
    number_of_probes: int | None = None

    def describe(self) -> str:
        if self.kind == "loadBalancerProbe":
            return f"load balancer probe {self.probe_id}"
        target = f"{self.protocol or '?'}:{self.port or '?'}{self.request_path or ''}"
        return f"{self.extension_type or 'Application Health extension'} {target}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for key, value in (
            ("extensionType", self.extension_type),
            ("protocol", self.protocol),
            ("port", self.port),
            ("requestPath", self.request_path),
            ("probeId", self.probe_id),
            ("intervalInSeconds", self.interval_seconds),
            ("numberOfProbes", self.number_of_probes),
        ):
            if value is not None:
                out[key] = value
        return out


@dataclass(frozen=True)
class RepairsPolicy:
    """`properties.automaticRepairsPolicy`; `present` is False when the scale set has none at all."""

    present: bool = False
    enabled: bool = False
    grace_period: str | None = None  # ISO 8601 as Azure returns it, e.g. "PT30M"
    grace_period_delta: timedelta | None = None
    repair_action: str | None = None  # Replace | Reimage | Restart (Azure's default: Replace)

    @property
    def effective_repair_action(self) -> str:
        return self.repair_action or "Replace"


@dataclass(frozen=True)
class OrchestrationService:
    name: str
    state: str
    last_status_change: datetime | None = None
    latest_operation_status: str | None = None  # api-version 2025-04-01 and later; absent in older answers


class Suspender(StrEnum):
    """Who set the AutomaticRepairs service to Suspended, as far as the Activity Log shows it."""

    NO_CALLER = "no-caller"  # no person or app called setOrchestrationServiceState: the platform's own suspension
    PERSON = "person"  # a user (the Activity Log's caller is a UPN)
    PRINCIPAL = "principal"  # another app or managed identity (the caller is an id)
    UNKNOWN = "unknown"  # suspended before the window the Activity Log was read over
    UNREADABLE = "unreadable"  # the Activity Log could not be read (403, throttled, budget spent)


@dataclass(frozen=True)
class Suspension:
    """What the Activity Log says about a suspended AutomaticRepairs service (gateway/activitylog.py).

    `caller` and `at` are the latest setOrchestrationServiceState call on the scale set in the window read
    (`since`); `action` is Suspend / Resume when the log shows the request body, else "". `error` says why
    the log was unreadable."""

    suspender: Suspender
    caller: str = ""
    at: datetime | None = None
    action: str = ""
    since: datetime | None = None
    error: str = ""
    error_code: str = ""

    @property
    def resumable(self) -> bool:
        """Only what no person or app decided may be resumed by the tool."""
        return self.suspender is Suspender.NO_CALLER

    def who(self) -> str:
        """'alice@contoso.com (a person) at 2026-12-01 08:00 UTC' for a reason or a notification."""
        kind = {Suspender.PERSON: "a person", Suspender.PRINCIPAL: "an app or managed identity"}.get(self.suspender)
        when = f" at {self.at.strftime('%Y-%m-%d %H:%M')} UTC" if self.at else ""
        return f"{self.caller} ({kind}){when}" if kind else f"{self.caller}{when}"

    def hold(self) -> tuple[str, str] | None:
        """(reason, reason code) when the tool must not resume: a person's or an app's decision, or who decided
        cannot be read. None when no person or app suspended it (the platform's own suspension)."""
        if self.suspender in (Suspender.PERSON, Suspender.PRINCIPAL):
            return (
                f"suspended by {self.who()}: their decision, not resumed",
                ReasonCode.SUSPENDED_BY_PERSON.value,
            )
        if self.suspender is Suspender.UNKNOWN:
            when = f"since {self.at.strftime('%Y-%m-%d %H:%M')} UTC, " if self.at else ""
            return (
                f"suspended {when}before the Activity Log's window: who did cannot be read; a person decides",
                ReasonCode.SUSPENDER_UNKNOWN.value,
            )
        if self.suspender is Suspender.UNREADABLE:
            return (
                f"could not read the Activity Log to learn who suspended it ({self.error}); not resumed blind",
                ReasonCode.SUSPENDER_UNKNOWN.value,
            )
        return None

    @staticmethod
    def resume_command(scale_set: str, resource_group: str) -> str:
        """What the person runs when their work is done."""
        return (
            f"az vmss set-orchestration-service-state --resource-group {resource_group} --name {scale_set} "
            "--service-name AutomaticRepairs --action Resume"
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"suspender": self.suspender.value, "source": "Activity Log"}
        for key, value in (
            ("caller", self.caller),
            ("at", iso(self.at)),
            ("action", self.action),
            ("since", iso(self.since)),
            ("error", self.error),
            ("errorCode", self.error_code),
        ):
            if value:
                out[key] = value
        return out


@dataclass(frozen=True)
class ResiliencyPolicy:
    """`properties.resiliencyPolicy` (api-version 2023-07-01 and later)."""

    present: bool = False
    create_enabled: bool = False
    delete_enabled: bool = False


@dataclass(frozen=True)
class Instance:
    """One VM of the scale set: a Uniform instance or, in Flexible mode, a Microsoft.Compute VM."""

    instance_id: str  # Uniform: "3"; Flexible: the VM name (what the scale set APIs accept)
    name: str
    resource_id: str
    provisioning_state: str | None = None  # Succeeded | Failed | Creating | Updating | Deleting
    provisioning_error_code: str | None = None  # from ProvisioningState/failed/<code>
    provisioning_message: str | None = None
    provisioning_time: datetime | None = None
    power_state: str | None = None  # running | stopped | deallocated | starting | ...
    health: HealthState | None = None  # None: no health reported (no source, or no instance view)
    health_since: datetime | None = None
    protected_from_scale_set_actions: bool = False
    protected_from_scale_in: bool = False
    resilient_deletion_status: str | None = None  # Enabled | Disabled | InProgress | Failed
    time_created: datetime | None = None
    has_instance_view: bool = True
    # `ProvisioningState/<state>[/<code>]` of the instance view, lower-cased state: Azure may say failed there
    # while `properties.provisioningState` is absent or says otherwise (Microsoft's "List all VMs in a set").
    view_provisioning_state: str | None = None

    @property
    def failed(self) -> bool:
        """Failed by the instance view when it names a provisioning state (it wins), else by the model field."""
        if self.view_provisioning_state:
            return self.view_provisioning_state == "failed"
        return (self.provisioning_state or "").lower() == "failed"

    @property
    def provisioning_disagreement(self) -> str | None:
        """Said in the evidence when the model field and the instance view disagree on failed-or-not."""
        model = (self.provisioning_state or "").lower()
        view = self.view_provisioning_state
        if not view or (model == "failed") == (view == "failed"):
            return None
        return (
            f"properties.provisioningState is {self.provisioning_state or 'absent'} but the instance view says "
            f"ProvisioningState/{view}: the instance view wins"
        )


@dataclass(frozen=True)
class ScaleSetSnapshot:
    """A scale set as read at `read_at`: policy, orchestration service state, health source, instances."""

    id: str
    name: str
    resource_group: str
    subscription_id: str
    location: str
    orchestration_mode: str  # Uniform | Flexible
    capacity: int | None
    provisioning_state: str | None
    read_at: datetime
    tags: dict[str, str] = field(default_factory=dict)
    repairs: RepairsPolicy = field(default_factory=RepairsPolicy)
    orchestration_services: tuple[OrchestrationService, ...] = ()
    resiliency: ResiliencyPolicy = field(default_factory=ResiliencyPolicy)
    health_sources: tuple[HealthSource, ...] = ()
    statuses_summary: dict[str, int] = field(default_factory=dict)
    instances: tuple[Instance, ...] = ()
    service_fabric: bool = False
    # Azure refuses the scale-set instance view for Flexible orchestration: no service state, no summary.
    instance_view_read: bool = True
    managed_by: str = ""  # the resource's own `managedBy`: another service owns it
    # Who suspended AutomaticRepairs (read from the Activity Log only when the service is Suspended); None: not read.
    suspension: Suspension | None = None
    # The scale set's own instance view: `statuses` (code, message, time) and each extension's statusesSummary.
    view_statuses: tuple[dict[str, str], ...] = ()
    extension_summaries: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def failed_status(self) -> dict[str, str] | None:
        """The scale set's own `ProvisioningState/failed[/code]` status (its model failed), if any."""
        for status in self.view_statuses:
            if status.get("code", "").lower().startswith("provisioningstate/failed"):
                return status
        return None

    def failing_extensions(self) -> dict[str, int]:
        """Extension name -> instances on which it failed, from the scale set's extension summaries."""
        out: dict[str, int] = {}
        for name, summary in self.extension_summaries.items():
            bad = sum(n for code, n in summary.items() if code.lower().startswith("provisioningstate/failed"))
            if bad:
                out[name] = bad
        return out

    @property
    def is_flexible(self) -> bool:
        return self.orchestration_mode.lower() == "flexible"

    @property
    def repairs_service(self) -> OrchestrationService | None:
        for service in self.orchestration_services:
            if service.name == AUTOMATIC_REPAIRS:
                return service
        return None

    @property
    def repairs_service_state(self) -> str | None:
        service = self.repairs_service
        return service.state if service else None

    @property
    def health_source(self) -> HealthSource | None:
        return self.health_sources[0] if self.health_sources else None

    def instance(self, instance_id: str) -> Instance | None:
        for inst in self.instances:
            if inst.instance_id == instance_id:
                return inst
        return None

    def health_counts(self) -> dict[str, int]:
        """Instances by health for reports: unknown also counts Initializing and not reported."""
        counts = {"total": len(self.instances), "healthy": 0, "unhealthy": 0, "unknown": 0, "failed": 0}
        for inst in self.instances:
            if inst.health is HealthState.HEALTHY:
                counts["healthy"] += 1
            elif inst.health is HealthState.UNHEALTHY:
                counts["unhealthy"] += 1
            else:
                counts["unknown"] += 1
            if inst.failed:
                counts["failed"] += 1
        return counts


def iso(moment: datetime | None, *, seconds: bool = False) -> str | None:
    """UTC timestamp as ARM writes it (`...Z`); `seconds=True` drops the fraction, for people."""
    if moment is None:
        return None
    if seconds:
        moment = moment.replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 timestamp as ARM writes it (`Z`, offsets, up to 7 fractional digits) → aware UTC."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:  # the common case, fast: Python 3.11 reads `Z` and up to 7 fractional digits itself
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is not None:
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    if "." in text:
        head, _, rest = text.partition(".")
        digits = "".join(ch for ch in rest if ch.isdigit())
        tz = rest[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{tz}" if digits else f"{head}{tz}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


# -- findings ---------------------------------------------------------------------------------------------


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return {"info": 0, "warning": 1, "error": 2}[self.value]


class FindingCode(StrEnum):
    """The contract: tests, the ledger and notifications rely on these names."""

    REPAIRS_DISABLED = "repairs-disabled"
    HEALTH_MONITORING_MISCONFIGURED = "health-monitoring-misconfigured"
    PROVISIONING_FAILED = "provisioning-failed"
    REPAIRS_SUSPENDED = "repairs-suspended"
    GRACE_PERIOD = "grace-period"
    UNHEALTHY_NOT_REPAIRED = "unhealthy-not-repaired"
    RESILIENT_CREATE_DISABLED = "resilient-create-disabled"
    RESILIENT_DELETE_DISABLED = "resilient-delete-disabled"
    CREATE_TIMED_OUT = "create-timed-out"
    DELETE_FAILED = "delete-failed"
    SCALE_SET_FAILED = "scale-set-failed"


class ActionCode(StrEnum):
    NONE = "none"
    ENABLE_AUTOMATIC_REPAIRS = "enable-automatic-repairs"
    RESUME_AUTOMATIC_REPAIRS = "resume-automatic-repairs"
    REPLACE_FAILED_INSTANCES = "replace-failed-instances"
    REPAIR_INSTANCES = "repair-instances"
    RETRY_DELETE = "retry-delete"
    SET_GRACE_PERIOD = "set-grace-period"
    ENABLE_RESILIENT_VM_CREATE = "enable-resilient-vm-create"
    ENABLE_RESILIENT_VM_DELETE = "enable-resilient-vm-delete"


class ReasonCode(StrEnum):
    """Why a record is where it is, as a short code for the ledger, metrics, alerts and notifications.

    Declared once: rules, guardrails, executors and the engine use these names; the README lists them.
    """

    NONE = ""
    # the rule itself says to wait, or that a person must act
    RULE = "rule"
    NEEDS_PERSON = "needs-person"
    NEEDS_HEALTH_SOURCE = "needs-health-source"
    UNSUPPORTED = "unsupported"
    GRACE_PERIOD = "grace-period"
    PLATFORM_RETRYING = "platform-retrying"
    RESILIENT_CREATE_WINDOW = "resilient-create-window"
    RESUME_WOULD_LOOP = "resume-would-loop"
    SUSPENDED_BY_PERSON = "suspended-by-person"  # a person (or another app) suspended repairs: theirs to resume
    SUSPENDER_UNKNOWN = "suspender-unknown"  # the Activity Log is unreadable or older than the suspension
    POLICY_DISABLED = "policy-disabled"
    INSTANCES_UNREADABLE = "instances-unreadable"
    RUNNING_DESPITE_TIMEOUT = "running-despite-timeout"
    RUNNING_AFTER_FAILED_UPDATE = "running-after-failed-update"  # the last operation failed, the VM still runs
    REPLACEMENT_LOOP = "replacement-loop"
    INFORMATIONAL = "informational"  # a preview feature off: said once per sweep, never acted on unasked
    # guardrails
    OPT_OUT = "opt-out"
    NOT_OPTED_IN = "not-opted-in"
    OUT_OF_SCOPE = "out-of-scope"
    OWNED_BY_SERVICE = "owned-by-service"
    NOT_ALLOWED = "not-allowed"
    PROTECTED = "protected"
    STORM_BRAKE = "storm-brake"
    DISRUPTION_BUDGET = "disruption-budget"
    COOLDOWN = "cooldown"
    BACKOFF = "backoff"
    ATTEMPT_BUDGET = "attempt-budget"
    RESUME_BUDGET = "resume-budget"
    SWEEP_CAP = "sweep-cap"
    IN_PROGRESS = "in-progress"
    # Azure's answers
    FEATURE_NOT_REGISTERED = "feature-not-registered"
    AUTHORIZATION_FAILED = "authorization-failed"
    AZURE_REFUSED = "azure-refused"
    PREEMPTED = "preempted"
    CONFLICT = "conflict"
    THROTTLED = "throttled"
    ARM_ERROR = "arm-error"
    STATE_CHANGED = "state-changed"
    # the record's own life
    RESUMED = "resumed"
    CAPACITY_OWED = "capacity-owed"
    WAITING_FOR_DELETE = "waiting-for-delete"
    VERIFY_TIMEOUT = "verify-timeout"
    ACCEPTED_NOT_SHOWN = "accepted-not-shown"  # a policy PATCH Azure accepted whose effect never showed
    RESOLVED = "resolved"
    GONE = "gone"
    INTERNAL_ERROR = "internal-error"


@dataclass(frozen=True)
class HeldInstance:
    """An instance the rule itself keeps out of its action (protected, the platform still retrying, ...)."""

    instance_id: str
    reason: str
    reason_code: str

    def to_dict(self) -> dict[str, Any]:
        return {"instanceId": self.instance_id, "reason": self.reason, "reasonCode": self.reason_code}


@dataclass(frozen=True)
class ProposedAction:
    """What the rule proposes: an action code with its parameters, or `none` with the reason.

    `instance_ids`: the instances to act on now (None: the finding's own); `held`: those the rule keeps out.
    `params` carries the rest the executor needs (repairAction, gracePeriod, targetCapacity, ...).
    """

    code: ActionCode
    reason: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    reason_code: str = ""  # why `none`, as a short code for the ledger and metrics
    instance_ids: tuple[str, ...] | None = None
    held: tuple[HeldInstance, ...] = ()

    @classmethod
    def none(cls, reason: str, reason_code: str) -> ProposedAction:
        return cls(ActionCode.NONE, reason, reason_code=reason_code)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code.value}
        if self.reason:
            out["reason"] = self.reason
        if self.reason_code:
            out["reasonCode"] = self.reason_code
        params = dict(self.params)
        if self.instance_ids is not None:
            params["instanceIds"] = list(self.instance_ids)
            params["heldInstances"] = [held.to_dict() for held in self.held]
        if params:
            out["params"] = params
        return out


@dataclass(frozen=True)
class Finding:
    code: FindingCode
    severity: Severity
    scale_set_id: str
    summary: str
    reference: str
    proposed_action: ProposedAction
    instance_ids: tuple[str, ...] = ()
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code.value,
            "severity": self.severity.value,
            "scaleSetId": self.scale_set_id,
            "instanceIds": list(self.instance_ids),
            "summary": self.summary,
            "evidence": self.evidence,
            "reference": self.reference,
            "proposedAction": self.proposed_action.to_dict(),
        }
