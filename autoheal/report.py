"""The `diagnose` report: a stable JSON contract and a table for people."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from .model import Finding, ScaleSetSnapshot, iso
from .resource_ids import segments


def scale_set_entry(
    snapshot: ScaleSetSnapshot,
    findings: Iterable[Finding] = (),
    actions: Iterable[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    repairs = snapshot.repairs
    entry = {
        "id": snapshot.id,
        "name": snapshot.name,
        "resourceGroup": snapshot.resource_group,
        "location": snapshot.location,
        "capacity": snapshot.capacity,
        "orchestrationMode": snapshot.orchestration_mode,
        "automaticRepairs": {
            "policyPresent": repairs.present,
            "enabled": repairs.enabled,
            "gracePeriod": repairs.grace_period,
            "repairAction": repairs.repair_action,
            # Flexible: Azure has no scale-set instance view, so the state is unknown (never "absent"/"Running").
            "serviceState": snapshot.repairs_service_state if snapshot.instance_view_read else "unreadable",
        },
        "healthSources": [source.to_dict() for source in snapshot.health_sources],
        "resiliency": {
            "policyPresent": snapshot.resiliency.present,
            "resilientVMCreation": snapshot.resiliency.create_enabled,
            "resilientVMDeletion": snapshot.resiliency.delete_enabled,
        },
        "statusesSummary": dict(snapshot.statuses_summary),
        "instances": snapshot.health_counts(),
        "findings": [finding.to_dict() for finding in findings],
    }
    if actions is not None:
        entry["actions"] = [dict(action) for action in actions]
    return entry


def error_entry(resource: Mapping[str, Any], error: str) -> dict[str, Any]:
    ids = segments(str(resource.get("id") or ""))
    return {
        "id": resource.get("id"),
        "name": resource.get("name") or ids.get("virtualmachinescalesets"),
        "resourceGroup": ids.get("resourcegroups"),
        "error": error,
    }


def build_report(
    subscription_id: str,
    scanned_at: datetime,
    entries: Iterable[Mapping[str, Any]],
    arm_requests: int,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "subscriptionId": subscription_id,
        "scannedAt": iso(scanned_at),
        "scaleSets": list(entries),
        "armRequests": arm_requests,
        **extra,
    }


def _proposal(action: Mapping[str, Any]) -> str:
    if action["code"] == "none":
        return f"none ({action.get('reason', '')})"
    targets = (action.get("params") or {}).get("instanceIds")
    return f"{action['code']} [{', '.join(targets)}]" if targets else action["code"]


_LABELS = {"succeeded": "DONE", "planned": "WOULD", "held": "HELD", "failed": "FAILED", "verifying": "VERIFY"}


def _action_line(action: Mapping[str, Any]) -> str:
    label = _LABELS.get(action["state"], action["state"].upper())
    what = action["code"] if action["code"] != "none" else "no action"
    ids = f" [{', '.join(action['instanceIds'])}]" if action.get("instanceIds") and action["code"] != "none" else ""
    attempt = f" (attempt {action['attempts']})" if action.get("attempts") else ""
    detail = f": {action['reason']}" if action.get("reason") else ""
    return f"            -> {label} {what}{ids}{attempt}{detail}"


def render_table(report: Mapping[str, Any]) -> str:
    """One row per scale set (what was read), then its findings indented below it."""
    header = ("SCALE SET", "RG", "MODE", "CAP", "REPAIRS", "SERVICE", "HEALTH", "H/U/?/F")
    rows: list[tuple[str, ...]] = []
    extra: dict[int, list[str]] = {}
    for entry in report.get("scaleSets", []):
        if "error" in entry:
            rows.append((entry.get("name", "?"), entry.get("resourceGroup", "?"), "-", "-", "-", "-", "-", "-"))
            extra[len(rows) - 1] = [f"    ! could not read: {entry['error']}"]
            continue
        repairs = entry["automaticRepairs"]
        counts = entry["instances"]
        sources = entry.get("healthSources") or []
        health = ",".join("ext" if s["kind"] == "applicationHealthExtension" else "lb" for s in sources) or "none"
        if not repairs["policyPresent"]:
            policy = "absent"
        elif repairs["enabled"]:
            policy = f"on {repairs['gracePeriod'] or ''} {repairs['repairAction'] or 'Replace'}".strip()
        else:
            policy = "off"
        rows.append(
            (
                entry["name"],
                entry["resourceGroup"],
                entry["orchestrationMode"],
                str(entry["capacity"] if entry["capacity"] is not None else "-"),
                policy,
                repairs["serviceState"] or "absent",
                health,
                f"{counts['healthy']}/{counts['unhealthy']}/{counts['unknown']}/{counts['failed']}",
            )
        )
        lines = []
        actions = entry.get("actions")
        for finding in entry.get("findings", []):
            ids = f" [{', '.join(finding['instanceIds'])}]" if finding.get("instanceIds") else ""
            lines.append(f"    {finding['severity'].upper():7} {finding['code']}{ids}: {finding['summary']}")
            if actions is None:  # diagnose: what the rule proposes
                lines.append(f"            -> {_proposal(finding['proposedAction'])}")
                continue
            # sweep: what was decided and done about it
            lines.extend(_action_line(a) for a in actions if a["findingCode"] == finding["code"])
        codes = {f["code"] for f in entry.get("findings", [])}
        for action in actions or []:
            if action["findingCode"] not in codes:  # finished from an earlier run (verified, resumed, resolved)
                lines.append(f"    EARLIER {action['findingCode']}:")
                lines.append(_action_line(action))
        if lines:
            extra[len(rows) - 1] = lines
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    for index, row in enumerate(rows):
        out.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
        out.extend(extra.get(index, []))
    scanned = report.get("scannedAt")
    out.append("")
    out.append(
        f"{len(rows)} scale set(s) in subscription {report.get('subscriptionId')} at {scanned}; "
        f"{report.get('armRequests')} ARM request(s)"
    )
    return "\n".join(out)
