"""Helpers that read and change plain ARM JSON payloads (scale sets, instances, instance views)."""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

HEALTH_EXTENSION_TYPES = {"applicationhealthlinux", "applicationhealthwindows"}
HEALTH_EXTENSION_PUBLISHER = "microsoft.managedservices"

# Compute writes times with 7 fractional digits and an explicit offset.
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$")

_HEALTH_STATUS = {
    "healthy": ("HealthState/healthy", "Info", "The VM is healthy"),
    "unhealthy": ("HealthState/unhealthy", "Warning", "The VM is unhealthy"),
    "initializing": ("HealthState/initializing", "Info", "The VM health is initializing"),
    "unknown": ("HealthState/unknown", "Warning", "The VM health is unknown"),
}

_PROVISIONING_DISPLAY = {
    "succeeded": ("Info", "Provisioning succeeded"),
    "creating": ("Info", "Creating"),
    "updating": ("Info", "Updating"),
    "deleting": ("Info", "Deleting"),
    "failed": ("Error", "Provisioning failed"),
}

_POWER_DISPLAY = {
    "running": "VM running",
    "starting": "VM starting",
    "stopped": "VM stopped",
    "deallocating": "VM deallocating",
    "deallocated": "VM deallocated",
}


@contextmanager
def bulk_allocation(*, keep: bool = False) -> Iterator[None]:
    """Pause the cyclic GC while building big JSON trees (they hold no cycles). With `keep`, the result is
    long-lived fleet state: freeze it out of future collections, which would otherwise walk millions of
    dicts (gc.freeze is process-wide; only cyclic garbage alive at that moment is never reclaimed)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if keep:
            gc.freeze()
        if was_enabled:
            gc.enable()


@lru_cache(maxsize=4096)
def iso(moment: datetime) -> str:
    """Compute's timestamp style: 2026-11-23T10:00:00.1234567+00:00."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0+00:00"


def parse_time(value: str) -> datetime:
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Python 3.11 accepts at most 6 fractional digits; Azure writes 7.
    text = re.sub(r"\.(\d{6})\d+", r".\1", text)
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def shift_timestamps(node: Any, delta: timedelta) -> Any:
    """Return a copy of `node` with every ISO 8601 timestamp string moved by `delta`."""
    if isinstance(node, dict):
        return {key: shift_timestamps(value, delta) for key, value in node.items()}
    if isinstance(node, list):
        return [shift_timestamps(value, delta) for value in node]
    if isinstance(node, str) and _TIMESTAMP.match(node):
        return iso(parse_time(node) + delta)
    return node


def status(code: str, level: str, display: str, moment: datetime | None, message: str | None = None) -> dict:
    entry: dict[str, Any] = {"code": code, "level": level, "displayStatus": display}
    if message:
        entry["message"] = message
    if moment is not None:
        entry["time"] = iso(moment)
    return entry


def properties(payload: dict) -> dict:
    return payload.setdefault("properties", {})


def instance_view(vm: dict) -> dict:
    return properties(vm).setdefault("instanceView", {})


def provisioning_code(vm: dict) -> str:
    """The instance's `ProvisioningState/...` status code (e.g. `ProvisioningState/failed/OSProvisioningTimedOut`)."""
    props = vm.get("properties", {})
    for entry in props.get("instanceView", {}).get("statuses", []) or []:
        code = entry.get("code", "")
        if code.startswith("ProvisioningState/"):
            return code
    return "ProvisioningState/" + str(props.get("provisioningState", "Succeeded")).lower()


def set_provisioning(
    vm: dict, state: str, moment: datetime, *, error_code: str | None = None, message: str | None = None
) -> None:
    """Set `properties.provisioningState` and the matching instance-view status."""
    properties(vm)["provisioningState"] = state
    lowered = state.lower()
    level, display = _PROVISIONING_DISPLAY.get(lowered, ("Info", state))
    code = f"ProvisioningState/{lowered}" + (f"/{error_code}" if error_code else "")
    statuses = instance_view(vm).setdefault("statuses", [])
    statuses[:] = [s for s in statuses if not str(s.get("code", "")).startswith("ProvisioningState/")]
    statuses.insert(0, status(code, level, display, moment, message))


def set_power(vm: dict, power: str, moment: datetime | None = None) -> None:
    statuses = instance_view(vm).setdefault("statuses", [])
    statuses[:] = [s for s in statuses if not str(s.get("code", "")).startswith("PowerState/")]
    statuses.append(status(f"PowerState/{power}", "Info", _POWER_DISPLAY.get(power, power), moment))


def set_health(vm: dict, health: str, moment: datetime) -> None:
    code, level, display = _HEALTH_STATUS[health.lower()]
    instance_view(vm)["vmHealth"] = {"status": status(code, level, display, moment)}


def health_state(vm: dict) -> str | None:
    """`healthy`, `unhealthy`, `initializing`, `unknown`, or None when no health source reports."""
    code = vm.get("properties", {}).get("instanceView", {}).get("vmHealth", {}).get("status", {}).get("code")
    if not code:
        return None
    return str(code).split("/", 1)[-1].lower()


def has_health_extension(scale_set: dict) -> bool:
    profile = scale_set.get("properties", {}).get("virtualMachineProfile") or {}
    for extension in (profile.get("extensionProfile") or {}).get("extensions") or []:
        ext_props = extension.get("properties") or {}
        if (
            str(ext_props.get("type", "")).lower() in HEALTH_EXTENSION_TYPES
            and str(ext_props.get("publisher", "")).lower() == HEALTH_EXTENSION_PUBLISHER
        ):
            return True
    return False


def health_extension(scale_set: dict) -> dict | None:
    profile = scale_set.get("properties", {}).get("virtualMachineProfile") or {}
    for extension in (profile.get("extensionProfile") or {}).get("extensions") or []:
        ext_props = extension.get("properties") or {}
        if (
            str(ext_props.get("type", "")).lower() in HEALTH_EXTENSION_TYPES
            and str(ext_props.get("publisher", "")).lower() == HEALTH_EXTENSION_PUBLISHER
        ):
            return ext_props
    return None


def has_rich_health_states(scale_set: dict) -> bool:
    """Rich Health States (Healthy, Unhealthy, Initializing, Unknown) vs Binary (Healthy, Unhealthy):
    learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-health-extension
    ("Initializing state isn't available" with binary states). Which setting selects rich states is
    unverified here: the emulator takes `typeHandlerVersion` 2.x (the doc's rich-states examples) or a
    truthy `enableRichHealthStates` / `richHealthStates` setting."""
    ext = health_extension(scale_set)
    if ext is None:
        return False
    settings = ext.get("settings") or {}
    if settings.get("enableRichHealthStates") or settings.get("richHealthStates"):
        return True
    major = str(ext.get("typeHandlerVersion") or "1").split(".", 1)[0]
    return major.isdigit() and int(major) >= 2


def has_health_probe(scale_set: dict) -> bool:
    profile = scale_set.get("properties", {}).get("virtualMachineProfile") or {}
    probe = (profile.get("networkProfile") or {}).get("healthProbe") or {}
    return bool(probe.get("id"))


def merge_patch(target: dict, patch: dict) -> dict:
    """ARM PATCH merge: objects merge recursively, arrays and scalars replace, null removes."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge_patch(target[key], value)
        else:
            target[key] = _copy_json(value)
    return target


def _copy_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value


_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$", re.IGNORECASE)


def parse_duration(value: str) -> timedelta | None:
    """ISO 8601 durations of the form Azure uses for grace periods (PT30M, PT1H30M)."""
    match = _DURATION.match(value or "")
    if not match or value.upper() in {"P", "PT"}:
        return None
    days, hours, minutes, seconds = match.groups()
    return timedelta(days=int(days or 0), hours=int(hours or 0), minutes=int(minutes or 0), seconds=float(seconds or 0))


def json_bool(value: Any) -> bool:
    """A boolean as Compute reads it (Json.NET, see openapi.py): true/false, a number (non-zero = true), or the
    string "true"/"false" in any case; anything else (None, other strings) reads as not set, so False.
    A fleet file may carry `"enabled": "false"`, which plain truthiness would take for true."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return False
