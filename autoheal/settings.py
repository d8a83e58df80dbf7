"""Every app setting the code reads: name, default, meaning, validation.

`load_settings()` validates all of them at start-up and fails with one message naming each bad setting
and what it accepts. `SETTINGS` is the single table the README and the Bicep consistency check read.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any

import isodate


class SettingsError(ValueError):
    """One or more app settings are invalid; the message names each one and what it accepts."""


@dataclass(frozen=True)
class Setting:
    name: str
    attr: str
    default: str
    parse: Callable[[str], Any]
    meaning: str
    accepts: str


def _duration(low: timedelta | None = None, high: timedelta | None = None) -> Callable[[str], timedelta]:
    def parse(raw: str) -> timedelta:
        value = isodate.parse_duration(raw.strip())
        if not isinstance(value, timedelta):
            raise ValueError("years and months are not accepted")
        if low is not None and value < low:
            raise ValueError("too short")
        if high is not None and value > high:
            raise ValueError("too long")
        return value

    return parse


def _optional_duration(low: timedelta | None = None, high: timedelta | None = None) -> Callable[[str], Any]:
    inner = _duration(low, high)
    return lambda raw: inner(raw) if raw.strip() else None


def _int(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw.strip())
        if not low <= value <= high:
            raise ValueError("out of range")
        return value

    return parse


def _choice(*options: str) -> Callable[[str], str]:
    lookup = {o.lower(): o for o in options}

    def parse(raw: str) -> str:
        return lookup[raw.strip().lower()]

    return parse


def _optional_choice(*options: str) -> Callable[[str], str | None]:
    inner = _choice(*options)
    return lambda raw: inner(raw) if raw.strip() else None


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"true", "1", "yes", "on"}:
        return True
    if lowered in {"false", "0", "no", "off"}:
        return False
    raise ValueError("not a boolean")


def _text(raw: str) -> str:
    return raw.strip()


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _tag(raw: str) -> tuple[str, str] | None:
    """`name=value` (or just `name`, meaning any value)."""
    text = raw.strip()
    if not text:
        return None
    name, sep, value = text.partition("=")
    if not name.strip():
        raise ValueError("empty tag name")
    return (name.strip(), value.strip() if sep else "")


def _https_url(raw: str) -> str:
    text = raw.strip().rstrip("/")
    if not text.lower().startswith("https://"):
        raise ValueError("must be an https:// URL")
    return text


def _uuid_or_empty(raw: str) -> str:
    import uuid

    text = raw.strip()
    if text:
        uuid.UUID(text)
    return text


ACTION_CODES = (
    "enable-automatic-repairs",
    "resume-automatic-repairs",
    "replace-failed-instances",
    "repair-instances",
    "retry-delete",
    "set-grace-period",
    "enable-resilient-vm-create",
    "enable-resilient-vm-delete",
)


def _actions(raw: str) -> tuple[str, ...]:
    items = _csv(raw)
    if not items or items == ("*",):
        return ACTION_CODES
    unknown = [item for item in items if item not in ACTION_CODES]
    if unknown:
        raise ValueError(f"unknown action code(s) {', '.join(unknown)}")
    return items


SETTINGS: tuple[Setting, ...] = (
    # Where to act
    Setting(
        "AZURE_SUBSCRIPTION_ID",
        "subscription_id",
        "",
        _uuid_or_empty,
        "The subscription this deployment watches (one deployment per subscription).",
        "a subscription GUID",
    ),
    Setting(
        "AZURE_CLIENT_ID",
        "client_id",
        "",
        _uuid_or_empty,
        "Client id of the user-assigned managed identity used for ARM, Table Storage and email.",
        "a GUID, or empty for the system identity / developer login",
    ),
    Setting(
        "AUTOHEAL_ARM_ENDPOINT",
        "arm_endpoint",
        "https://management.azure.com",
        _https_url,
        "Azure Resource Manager endpoint (a sovereign cloud, or the local emulator in demos and tests).",
        "an https:// URL",
    ),
    Setting(
        "AUTOHEAL_ARM_CA_BUNDLE",
        "arm_ca_bundle",
        "",
        _text,
        "CA bundle (PEM) to trust for the ARM endpoint; only the local emulator needs it.",
        "a file path, or empty",
    ),
    # Diagnosis thresholds
    Setting(
        "AUTOHEAL_GRACE_MARGIN",
        "grace_margin",
        "PT15M",
        _duration(timedelta(0), timedelta(hours=24)),
        "Extra time past the repairs grace period before an unhealthy instance counts as not repaired.",
        "an ISO 8601 duration from PT0S to PT24H",
    ),
    Setting(
        "AUTOHEAL_STORM_THRESHOLD_PERCENT",
        "storm_threshold_percent",
        "50",
        _int(1, 100),
        "Share of a scale set's instances unhealthy/unknown above which health monitoring is suspect and "
        "no instance action is taken (the storm brake).",
        "an integer 1-100",
    ),
    Setting(
        "AUTOHEAL_DELETE_STUCK_AFTER",
        "delete_stuck_after",
        "PT30M",
        _duration(timedelta(minutes=1), timedelta(days=7)),
        "How long an instance may sit in Deleting (or Failed after a delete) before the delete counts as stuck.",
        "an ISO 8601 duration from PT1M to P7D",
    ),
    Setting(
        "AUTOHEAL_TARGET_GRACE_PERIOD",
        "target_grace_period",
        "",
        _optional_duration(timedelta(minutes=10), timedelta(minutes=90)),
        "If set, the repairs grace period scale sets should have; a different one yields set-grace-period.",
        "empty, or an ISO 8601 duration from PT10M to PT90M",
    ),
    # What enabling automatic repairs sets
    Setting(
        "AUTOHEAL_REPAIR_GRACE_PERIOD",
        "repair_grace_period",
        "PT30M",
        _duration(timedelta(minutes=10), timedelta(minutes=90)),
        "gracePeriod written when automatic repairs are enabled.",
        "an ISO 8601 duration from PT10M to PT90M",
    ),
    Setting(
        "AUTOHEAL_REPAIR_ACTION",
        "repair_action",
        "Replace",
        _choice("Replace", "Reimage", "Restart"),
        "repairAction written when automatic repairs are enabled.",
        "Replace, Reimage or Restart",
    ),
)

_BY_ATTR = {s.attr: s for s in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """Validated settings; defaults live only in `SETTINGS` (see `default_settings()`)."""

    subscription_id: str
    client_id: str
    arm_endpoint: str
    arm_ca_bundle: str
    grace_margin: timedelta
    storm_threshold_percent: int
    delete_stuck_after: timedelta
    target_grace_period: timedelta | None
    repair_grace_period: timedelta
    repair_action: str

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def default_settings(**changes: Any) -> Settings:
    """Every default from the table, optionally overridden (tests, the CLI)."""
    return load_settings({}).replace(**changes)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raise SettingsError naming all the bad ones at once."""
    source = os.environ if env is None else env
    values: dict[str, Any] = {}
    problems: list[str] = []
    for setting in SETTINGS:
        raw = source.get(setting.name)
        raw = setting.default if raw is None else raw
        try:
            values[setting.attr] = setting.parse(raw)
        except (ValueError, KeyError, isodate.ISO8601Error) as exc:
            reason = f" ({exc})" if isinstance(exc, ValueError) and str(exc) else ""
            problems.append(f"{setting.name}={raw!r} is invalid{reason}: expected {setting.accepts}")
    if problems:
        raise SettingsError("invalid app settings: " + "; ".join(problems))
    known = {f.name for f in fields(Settings)}
    missing = set(_BY_ATTR) - known
    if missing:  # pragma: no cover - a programming error caught by the settings tests
        raise RuntimeError(f"settings table and Settings dataclass disagree: {sorted(missing)}")
    return Settings(**values)


def iso_duration(value: timedelta) -> str:
    """timedelta → ISO 8601 as Azure writes it (`PT30M`)."""
    return isodate.duration_isoformat(value)
