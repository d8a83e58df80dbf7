"""Cause 2: health monitoring isn't correctly configured in the scale set.

No health source at all, or every running instance (or more than the storm threshold) reports
Unhealthy/Unknown. Resolution 2 is for a person: make the application answer the probe. We report the
probe and the counts and never propose a mass repair (it would not fix a probe).
"""

from __future__ import annotations

from ..model import Finding, FindingCode, ProposedAction, Severity
from . import references
from .context import Context


def check(ctx: Context) -> list[Finding]:
    s, health = ctx.snapshot, ctx.health
    if not health.misconfigured:
        return []
    sources = [source.to_dict() for source in s.health_sources]
    if not s.health_sources:
        summary = (
            f"Scale set {s.name} has no health source (Application Health extension or load-balancer probe), "
            "so automatic repairs cannot work."
        )
        reason = "configure an Application Health extension or a load-balancer health probe"
        severity = Severity.WARNING
    else:
        probe = "; ".join(source.describe() for source in s.health_sources)
        summary = f"Scale set {s.name}: {health.reason}; the health probe ({probe}) is probably misconfigured."
        reason = (
            f"make the application answer 2xx (or accept TCP) on {probe}; "
            "repairing every instance would not fix a probe"
        )
        severity = Severity.ERROR
    return [
        Finding(
            code=FindingCode.HEALTH_MONITORING_MISCONFIGURED,
            severity=severity,
            scale_set_id=s.id,
            summary=summary,
            reference=references.CAUSE_2,
            proposed_action=ProposedAction.none(reason, "needs-person"),
            evidence={"healthSources": sources, "health": health.counts(), "verdict": health.reason},
        )
    ]
