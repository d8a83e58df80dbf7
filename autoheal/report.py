"""The `diagnose` report: a stable JSON contract and a table for people."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from .model import Finding, ScaleSetSnapshot, parse_resource_id


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


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
            "serviceState": snapshot.repairs_service_state,
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
        entry["actions"] = list(actions)
    return entry


def error_entry(resource: Mapping[str, Any], error: str) -> dict[str, Any]:
    ids = parse_resource_id(str(resource.get("id") or ""))
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
        for finding in entry.get("findings", []):
            action = finding["proposedAction"]
            targets = (action.get("params") or {}).get("instanceIds")
            acting_on = f" [{', '.join(targets)}]" if targets else ""
            proposed = (
                f"{action['code']}{acting_on}" if action["code"] != "none" else f"none ({action.get('reason', '')})"
            )
            ids = f" [{', '.join(finding['instanceIds'])}]" if finding.get("instanceIds") else ""
            lines.append(f"    {finding['severity'].upper():7} {finding['code']}{ids}: {finding['summary']}")
            lines.append(f"            -> {proposed}")
        for action in entry.get("actions", []):
            if action["code"] == "none":
                continue
            ids = f" [{', '.join(action['instanceIds'])}]" if action.get("instanceIds") else ""
            label = {"succeeded": "DONE", "planned": "WOULD", "held": "HELD", "failed": "FAILED"}.get(
                action["state"], action["state"].upper()
            )
            detail = f": {action['reason']}" if action.get("reason") else ""
            lines.append(f"    {label:7} {action['code']}{ids} (attempt {action['attempts']}){detail}")
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
