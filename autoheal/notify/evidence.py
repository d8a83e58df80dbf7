"""A finding's evidence as facts a person reads ("Health: 0 of 3 healthy, 3 unhealthy"), never JSON.

The rules write evidence as camelCase JSON-ready values (`Finding.evidence`); the well-known keys get a
sentence of their own, anything else a generic readable form (yes/no, "not set", "a, b", "k v, k v").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ..model import parse_time

MAX_FACTS = 8
MAX_VALUE = 220
MAX_INSTANCES = 3

Facts = tuple[tuple[str, str], ...]


def clip(text: str, limit: int = MAX_VALUE) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def when(value: Any) -> str:
    """'2026-11-23 10:00 UTC' from a datetime or an ISO string; anything else as is."""
    if isinstance(value, str):
        parsed = parse_time(value)
        return parsed.strftime("%Y-%m-%d %H:%M UTC") if parsed else value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return plain(value)


def label(key: str) -> str:
    """'lastStatusChangeTime' → 'Last status change time'."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", key).replace("_", " ").split()
    text = " ".join(w if w.isupper() and len(w) > 1 else w.lower() for w in words)
    return text[:1].upper() + text[1:]


def plain(value: Any) -> str:
    """Any evidence value in words: never 'None', never '{...}'."""
    if value is None or value == "":
        return "not set"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, Mapping):
        parts = [f"{label(str(k)).lower()} {plain(v)}" for k, v in value.items() if v is not None]
        return ", ".join(parts) or "not set"
    if isinstance(value, (list, tuple, set)):
        return ", ".join(plain(v) for v in value) or "none"
    return str(value)


# -- the well-known keys -------------------------------------------------------------------------------------


def _health(h: Mapping[str, Any]) -> str:
    running = h.get("running", 0)
    text = f"{h.get('healthy', 0)} of {running} running instance{'s' if running != 1 else ''} healthy"
    for key, word in (("unhealthy", "unhealthy"), ("unknown", "unknown"), ("initializing", "initializing")):
        if h.get(key):
            text += f", {h[key]} {word}"
    if h.get("notReported"):
        text += f", {h['notReported']} not reporting"
    if h.get("badPercent") is not None and h.get("stormThresholdPercent") is not None:
        text += f" ({h['badPercent']} % bad; storm brake above {h['stormThresholdPercent']} %)"
    return text


def _source(s: Mapping[str, Any]) -> str:
    if s.get("probeId"):
        probe = str(s["probeId"]).rstrip("/").rsplit("/", 1)[-1]
        return f"load balancer probe {probe}"
    kind = "Application Health extension" if "extension" in str(s.get("kind", "")).lower() else str(s.get("kind"))
    endpoint = ":".join(str(s[k]) for k in ("protocol", "port") if s.get(k) is not None)
    if s.get("requestPath"):
        endpoint += str(s["requestPath"])
    return f"{kind} {endpoint}".strip()


def _sources(value: Any) -> str:
    if not value:
        return "none configured (no Application Health extension, no load balancer probe)"
    return "; ".join(_source(s) if isinstance(s, Mapping) else plain(s) for s in value)


def _policy(p: Mapping[str, Any]) -> str:
    if p.get("present") is False:
        return "not set"
    text = "enabled" if p.get("enabled") else "disabled"
    if p.get("gracePeriod"):
        text += f", grace period {p['gracePeriod']}"
    if p.get("repairAction"):
        text += f", repair action {p['repairAction']}"
    return text


def _resiliency(p: Mapping[str, Any]) -> str:
    if p.get("present") is False:
        return "not set"
    parts = []
    for key, name in (
        ("resilientVMCreationPolicy", "resilient create"),
        ("resilientVMDeletionPolicy", "resilient delete"),
    ):
        if key in p:
            parts.append(f"{name} {'on' if p[key] else 'off'}")
    return ", ".join(parts) or plain(p)


def _instance(i: Mapping[str, Any]) -> str:
    name = str(i.get("name") or i.get("instanceId") or "?")
    state = i.get("provisioningState")
    code = i.get("errorCode")
    text = name
    details = [
        str(state) if state else "",
        f"{code}" if code else "",
        f"health {i['health']}" if i.get("health") else "",
    ]
    details = [d for d in details if d]
    if details:
        text += f" ({', '.join(details)})"
    since = i.get("stateChangedAt") or i.get("healthSince") or i.get("stateSince")
    if since:
        text += f" since {when(since)}"
    if i.get("repairDueAt"):
        text += f", repair due {when(i['repairDueAt'])}"
    if i.get("resilientVMDeletionStatus"):
        text += f", resilient delete {i['resilientVMDeletionStatus']}"
    return text


def _instances(value: Any) -> str:
    items = list(value or [])
    if not items:
        return "none"
    shown = "; ".join(_instance(i) if isinstance(i, Mapping) else plain(i) for i in items[:MAX_INSTANCES])
    more = len(items) - MAX_INSTANCES
    return shown + (f"; and {more} more" if more > 0 else "")


def _summary(value: Any) -> str:
    if not isinstance(value, Mapping) or not value:
        return plain(value)
    return ", ".join(f"{count} {str(code).removeprefix('ProvisioningState/')}" for code, count in value.items())


def _suspended_by(value: Any) -> str:
    """The Activity Log's answer to "who suspended repairs", in words."""
    if not isinstance(value, Mapping):
        return plain(value)
    kind = str(value.get("suspender") or "")
    at = f" at {when(value['at'])}" if value.get("at") else ""
    if kind == "person":
        return f"{value.get('caller')} (a person){at}, per the Activity Log"
    if kind == "principal":
        return f"{value.get('caller')} (an app or managed identity){at}, per the Activity Log"
    if kind == "no-caller":
        return "no person or app, per the Activity Log" + (
            f" since {when(value['since'])}" if value.get("since") else ""
        )
    if kind == "unknown":
        return "cannot be read: suspended before the Activity Log's window"
    return f"cannot be read: {value.get('error') or 'the Activity Log was not read'}"


_KNOWN: dict[str, tuple[str, Callable[[Any], str]]] = {
    "suspendedBy": ("Suspended by", _suspended_by),
    "health": ("Health", lambda v: _health(v) if isinstance(v, Mapping) else plain(v)),
    "healthSources": ("Health source", _sources),
    "automaticRepairsPolicy": ("Repairs policy", lambda v: _policy(v) if isinstance(v, Mapping) else plain(v)),
    "resiliencyPolicy": ("Resiliency policy", lambda v: _resiliency(v) if isinstance(v, Mapping) else plain(v)),
    "serviceState": ("Repairs service", lambda v: plain(v) if v else "absent"),
    "instances": ("Instances", _instances),
    "statusesSummary": ("Provisioning states", _summary),
    "lastStatusChangeTime": ("Service state since", when),
    "verdict": ("Why", plain),
    "resumeWith": ("Resume when done", plain),
    "registerCommand": ("Register the feature", plain),
    "platformRetrying": ("Azure still retrying", lambda v: plain(v) if v else "none"),
    "graceMarginMinutes": ("Grace margin", lambda v: f"{v} min"),
    "deleteStuckAfterMinutes": ("Delete counts as stuck after", lambda v: f"{v} min"),
    "resilientVMCreation": ("Resilient create", lambda v: "on" if v else "off"),
    "resilientVMDeletion": ("Resilient delete", lambda v: "on" if v else "off"),
    "waitingForResilientCreate": ("Azure still retrying the create", lambda v: plain(v) if v else "none"),
}
_SKIP = {"serviceName"}  # always "AutomaticRepairs": says nothing


def readable(evidence: Mapping[str, Any] | None, limit: int = MAX_FACTS) -> Facts:
    """The first `limit` evidence entries as (label, sentence) pairs."""
    facts: list[tuple[str, str]] = []
    for key, value in (evidence or {}).items():
        if key in _SKIP:
            continue
        name, render = _KNOWN.get(key, (label(key), plain))
        try:
            text = render(value)
        except Exception:  # odd evidence must not cost the notification: fall back to the generic form
            text = plain(value)
        facts.append((name, clip(text)))
        if len(facts) >= limit:
            break
    return tuple(facts)
