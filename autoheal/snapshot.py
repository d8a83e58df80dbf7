"""ARM JSON → `ScaleSetSnapshot`.

Pure functions over the REST shapes Azure returns (the same shapes as Microsoft's examples in
`tests/reference/`), so they are tested on those payloads directly and on the emulator's answers.
Tolerant by design: a missing instance view or an unexpected code degrades to "unknown", never raises.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import isodate

from .model import (
    HealthSource,
    HealthState,
    Instance,
    OrchestrationService,
    RepairsPolicy,
    ResiliencyPolicy,
    ScaleSetSnapshot,
    parse_time,
)
from .resource_ids import segments

HEALTH_EXTENSION_TYPES = {"applicationhealthlinux", "applicationhealthwindows"}
HEALTH_EXTENSION_PUBLISHER = "microsoft.managedservices"
SERVICE_FABRIC_EXTENSION_TYPES = {"servicefabricnode", "servicefabriclinuxnode", "servicefabricmcnode"}

_HEALTH_CODES = {
    "healthy": HealthState.HEALTHY,
    "unhealthy": HealthState.UNHEALTHY,
    "unknown": HealthState.UNKNOWN,
    "initializing": HealthState.INITIALIZING,
}


def parse_duration(value: Any) -> timedelta | None:
    """ISO 8601 duration such as `PT30M` → timedelta; None when absent or malformed."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = isodate.parse_duration(value.strip())
    except (isodate.ISO8601Error, ValueError):
        return None
    return parsed if isinstance(parsed, timedelta) else None


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def health_sources(resource: Mapping[str, Any]) -> tuple[HealthSource, ...]:
    """The Application Health extension and/or load-balancer probe configured on the scale set model."""
    profile = _get(resource, "properties", "virtualMachineProfile") or {}
    sources: list[HealthSource] = []
    for ext in _get(profile, "extensionProfile", "extensions") or []:
        props = _get(ext, "properties") or {}
        ext_type = str(props.get("type") or "")
        publisher = str(props.get("publisher") or "")
        if ext_type.lower() not in HEALTH_EXTENSION_TYPES:
            continue
        if publisher and publisher.lower() != HEALTH_EXTENSION_PUBLISHER:
            continue
        settings = props.get("settings") or {}
        sources.append(
            HealthSource(
                kind="applicationHealthExtension",
                extension_type=ext_type,
                protocol=(str(settings["protocol"]).lower() if settings.get("protocol") else None),
                port=_as_int(settings.get("port")),
                request_path=settings.get("requestPath"),
                interval_seconds=_as_int(settings.get("intervalInSeconds")),
                number_of_probes=_as_int(settings.get("numberOfProbes")),
            )
        )
    probe_id = _get(profile, "networkProfile", "healthProbe", "id")
    if probe_id:
        sources.append(HealthSource(kind="loadBalancerProbe", probe_id=str(probe_id)))
    return tuple(sources)


def _is_service_fabric(resource: Mapping[str, Any]) -> bool:
    extensions = _get(resource, "properties", "virtualMachineProfile", "extensionProfile", "extensions") or []
    return any(
        str(_get(ext, "properties", "type") or "").lower() in SERVICE_FABRIC_EXTENSION_TYPES for ext in extensions
    )


def repairs_policy(resource: Mapping[str, Any]) -> RepairsPolicy:
    policy = _get(resource, "properties", "automaticRepairsPolicy")
    if not isinstance(policy, Mapping):
        return RepairsPolicy()
    grace = policy.get("gracePeriod")
    return RepairsPolicy(
        present=True,
        enabled=_as_bool(policy.get("enabled")),
        grace_period=grace if isinstance(grace, str) else None,
        grace_period_delta=parse_duration(grace),
        repair_action=policy.get("repairAction") or None,
    )


def resiliency_policy(resource: Mapping[str, Any]) -> ResiliencyPolicy:
    policy = _get(resource, "properties", "resiliencyPolicy")
    if not isinstance(policy, Mapping):
        return ResiliencyPolicy()
    return ResiliencyPolicy(
        present=True,
        create_enabled=_as_bool(_get(policy, "resilientVMCreationPolicy", "enabled")),
        delete_enabled=_as_bool(_get(policy, "resilientVMDeletionPolicy", "enabled")),
    )


def orchestration_services(instance_view: Mapping[str, Any] | None) -> tuple[OrchestrationService, ...]:
    services = []
    for item in _get(instance_view, "orchestrationServices") or []:
        if not isinstance(item, Mapping) or not item.get("serviceName"):
            continue
        services.append(
            OrchestrationService(
                name=str(item["serviceName"]),
                state=str(item.get("serviceState") or ""),
                last_status_change=parse_time(item.get("lastStatusChangeTime")),
                latest_operation_status=str(item.get("latestOperationStatus") or "") or None,
            )
        )
    return tuple(services)


def statuses_summary(instance_view: Mapping[str, Any] | None) -> dict[str, int]:
    summary: dict[str, int] = {}
    for item in _get(instance_view, "virtualMachine", "statusesSummary") or []:
        code = _get(item, "code")
        count = _as_int(_get(item, "count"))
        if isinstance(code, str) and count is not None:
            summary[code] = summary.get(code, 0) + count
    return summary


def parse_health(instance_view: Mapping[str, Any] | None) -> tuple[HealthState | None, datetime | None]:
    status = _get(instance_view, "vmHealth", "status")
    if not isinstance(status, Mapping):
        return None, None
    code = str(status.get("code") or "")
    state = code.split("/", 1)[1] if code.lower().startswith("healthstate/") else ""
    return _HEALTH_CODES.get(state.lower(), HealthState.UNKNOWN), parse_time(status.get("time"))


def parse_instance(vm: Mapping[str, Any], *, flexible: bool) -> Instance:
    props = vm.get("properties") or {}
    view = props.get("instanceView")
    name = str(vm.get("name") or "")
    instance_id = name if flexible else str(vm.get("instanceId") or name.rsplit("_", 1)[-1])
    error_code = message = None
    provisioning_time = None
    power_state = None
    for status in _get(view, "statuses") or []:
        code = str(_get(status, "code") or "")
        lowered = code.lower()
        if lowered.startswith("provisioningstate/"):
            provisioning_time = parse_time(_get(status, "time"))
            parts = code.split("/")
            if len(parts) > 2 and parts[1].lower() == "failed":
                error_code = "/".join(parts[2:])
                message = _get(status, "message")
            elif parts[1:2] and parts[1].lower() == "failed":
                message = _get(status, "message")
        elif lowered.startswith("powerstate/"):
            power_state = code.split("/", 1)[1]
    health, health_since = parse_health(view)
    protection = props.get("protectionPolicy") or {}
    return Instance(
        instance_id=instance_id,
        name=name,
        resource_id=str(vm.get("id") or ""),
        provisioning_state=props.get("provisioningState"),
        provisioning_error_code=error_code,
        provisioning_message=message if isinstance(message, str) else None,
        provisioning_time=provisioning_time,
        power_state=power_state,
        health=health,
        health_since=health_since,
        protected_from_scale_set_actions=_as_bool(protection.get("protectFromScaleSetActions")),
        protected_from_scale_in=_as_bool(protection.get("protectFromScaleIn")),
        resilient_deletion_status=props.get("resilientVMDeletionStatus"),
        time_created=parse_time(props.get("timeCreated")),
        has_instance_view=isinstance(view, Mapping),
    )


def parse_scale_set(
    resource: Mapping[str, Any],
    instance_view: Mapping[str, Any] | None,
    virtual_machines: Iterable[Mapping[str, Any]],
    *,
    read_at: datetime,
) -> ScaleSetSnapshot:
    resource_id = str(resource.get("id") or "")
    ids = segments(resource_id)
    props = resource.get("properties") or {}
    mode = str(props.get("orchestrationMode") or "Uniform")
    flexible = mode.lower() == "flexible"
    sku = resource.get("sku") or {}
    return ScaleSetSnapshot(
        id=resource_id,
        name=str(resource.get("name") or ids.get("virtualmachinescalesets", "")),
        resource_group=ids.get("resourcegroups", ""),
        subscription_id=ids.get("subscriptions", ""),
        location=str(resource.get("location") or ""),
        orchestration_mode=mode,
        capacity=_as_int(sku.get("capacity")),
        provisioning_state=props.get("provisioningState"),
        read_at=read_at,
        tags={str(k): str(v) for k, v in (resource.get("tags") or {}).items()},
        repairs=repairs_policy(resource),
        orchestration_services=orchestration_services(instance_view),
        resiliency=resiliency_policy(resource),
        health_sources=health_sources(resource),
        statuses_summary=statuses_summary(instance_view),
        instances=tuple(parse_instance(vm, flexible=flexible) for vm in virtual_machines),
        service_fabric=_is_service_fabric(resource),
        instance_view_read=instance_view is not None,
        managed_by=str(resource.get("managedBy") or ""),
    )
