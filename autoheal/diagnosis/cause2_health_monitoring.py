"""Cause 2: health monitoring isn't correctly configured in the scale set.

No health source at all, two health sources (repairs accept one), a Flexible scale set whose only source is a
load-balancer probe (not supported there), or every running instance (or more than the storm threshold)
reports Unhealthy/Unknown. Resolution 2 is for a person: make the application answer the probe. We report the
probe and the counts and never propose a mass repair (it would not fix a probe).
"""

from __future__ import annotations

from ..model import Finding, FindingCode, ProposedAction, ReasonCode, Severity
from . import references
from .context import Context, health_source_conflict


def check(ctx: Context) -> list[Finding]:
    s, health = ctx.snapshot, ctx.health
    sources = [source.to_dict() for source in s.health_sources]
    conflict = health_source_conflict(s)
    if conflict is not None:
        return [
            Finding(
                code=FindingCode.HEALTH_MONITORING_MISCONFIGURED,
                severity=Severity.WARNING,
                scale_set_id=s.id,
                summary=f"Scale set {s.name}: {conflict.problem}; {conflict.fix}.",
                reference=references.CAUSE_2,
                proposed_action=ProposedAction.none(conflict.fix, conflict.code),
                evidence={
                    "healthSources": sources,
                    "problem": conflict.code,
                    "health": health.counts(),
                    "verdict": health.reason or None,
                },
            )
        ]
    if not health.misconfigured:
        return []
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
            proposed_action=ProposedAction.none(reason, ReasonCode.NEEDS_PERSON),
            evidence={"healthSources": sources, "health": health.counts(), "verdict": health.reason},
        )
    ]
