"""Cause 5: the instance is in its grace period.

Automatic repairs wait `gracePeriod` after an instance's latest state change before repairing it.
While that clock runs (plus our margin) nothing is wrong yet: we say when the platform should act.
Resolution 5 is the setting itself: `ActionCode.SET_GRACE_PERIOD` only when a target is configured and differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..model import ActionCode, Finding, FindingCode, Instance, ProposedAction, ReasonCode, Severity, iso
from ..settings import iso_duration
from . import references
from .context import (
    BAD_HEALTH,
    DEFAULT_GRACE_PERIOD,
    Context,
    last_state_change,
    minutes,
    norm,
    service_state_evidence,
)


@dataclass(frozen=True)
class UnhealthyInstance:
    instance: Instance
    since: datetime | None
    due_at: datetime | None  # when the platform should repair it (since + gracePeriod)
    overdue_at: datetime | None  # when we call it "not repaired" (due + margin)

    def facts(self, ctx: Context) -> dict[str, Any]:
        facts = ctx.instance_facts(self.instance)
        facts.update(
            {
                "stateChangedAt": iso(self.since, seconds=True),
                "unhealthyMinutes": minutes(ctx.now - self.since) if self.since else None,
                "repairDueAt": iso(self.due_at, seconds=True),
            }
        )
        return facts


def grace_period(ctx: Context) -> timedelta:
    return ctx.snapshot.repairs.grace_period_delta or DEFAULT_GRACE_PERIOD


def unhealthy_instances(ctx: Context) -> tuple[list[UnhealthyInstance], list[UnhealthyInstance]]:
    """Unhealthy/Unknown running instances while repairs run: (still within grace + margin, overdue)."""
    if not ctx.repairs_running:
        return [], []
    grace, margin = grace_period(ctx), ctx.settings.grace_margin
    service = ctx.snapshot.repairs_service
    # Repairs that were just enabled or resumed get their own grace period before we call them late.
    service_since = service.last_status_change if service else None
    waiting: list[UnhealthyInstance] = []
    overdue: list[UnhealthyInstance] = []
    for instance in ctx.snapshot.instances:
        if instance.health not in BAD_HEALTH or norm(instance.provisioning_state) != "succeeded":
            continue
        since = last_state_change(instance)
        if since is not None and service_since is not None:
            since = max(since, service_since)
        if since is None:  # no timestamp: we cannot tell how long, so we never call it overdue
            waiting.append(UnhealthyInstance(instance, None, None, None))
            continue
        overdue_at = since + grace + margin
        item = UnhealthyInstance(instance, since, since + grace, overdue_at)
        (overdue if ctx.now >= overdue_at else waiting).append(item)
    return waiting, overdue


def check(ctx: Context) -> list[Finding]:
    waiting, _ = unhealthy_instances(ctx)
    if not waiting:
        return []
    s = ctx.snapshot
    grace = grace_period(ctx)
    target = ctx.settings.target_grace_period
    due = [w.due_at for w in waiting if w.due_at is not None]
    if not due:
        when = "the platform has not reported when their state changed"
    elif max(due) > ctx.now:
        when = f"the platform should repair them by {iso(max(due), seconds=True)}"
    else:
        margin = minutes(ctx.settings.grace_margin)
        when = f"the platform's repair has been due since {iso(min(due), seconds=True)}; allowing a {margin} min margin"
    if target is not None and target != grace:
        action = ProposedAction(
            ActionCode.SET_GRACE_PERIOD,
            reason=f"configured target grace period is {iso_duration(target)}",
            params={"gracePeriod": iso_duration(target), "current": s.repairs.grace_period},
        )
    else:
        action = ProposedAction.none(f"within the grace period; {when}", ReasonCode.GRACE_PERIOD)
    if not s.instance_view_read:
        when += " (if its AutomaticRepairs service runs: a Flexible scale set's service state cannot be read)"
    return [
        Finding(
            code=FindingCode.GRACE_PERIOD,
            severity=Severity.INFO,
            scale_set_id=s.id,
            instance_ids=tuple(w.instance.instance_id for w in waiting),
            summary=(
                f"{len(waiting)} unhealthy instance(s) of {s.name} are within the "
                f"{iso_duration(grace)} grace period; {when}."
            ),
            reference=references.CAUSE_5,
            proposed_action=action,
            evidence={
                "gracePeriod": s.repairs.grace_period or f"{iso_duration(grace)} (Azure default assumed)",
                "graceMarginMinutes": minutes(ctx.settings.grace_margin),
                "serviceState": service_state_evidence(s),
                "instances": [w.facts(ctx) for w in waiting],
            },
        )
    ]
