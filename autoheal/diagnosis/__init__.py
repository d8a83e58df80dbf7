"""Diagnosis: one rule per documented cause, pure functions of (snapshot, settings, now).

| rule module                    | documented cause         | finding code(s)                             |
| ------------------------------ | ------------------------ | ------------------------------------------- |
| cause1_repairs_disabled        | repairs, cause 1         | repairs-disabled                            |
| cause2_health_monitoring       | repairs, cause 2         | health-monitoring-misconfigured             |
| cause3_provisioning_failed     | repairs, cause 3         | provisioning-failed                         |
| cause4_repairs_suspended       | repairs, cause 4         | repairs-suspended                           |
| cause5_grace_period            | repairs, cause 5         | grace-period                                |
| symptom_unhealthy_not_repaired | repairs, symptoms        | unhealthy-not-repaired                      |
| resilient_create               | resilient create         | resilient-create-disabled, create-timed-out |
| resilient_delete               | resilient delete         | resilient-delete-disabled, delete-failed    |
| scale_set_failed               | scale set instance view  | scale-set-failed                            |
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ..model import Finding, ScaleSetSnapshot
from ..settings import Settings
from . import (
    cause1_repairs_disabled,
    cause2_health_monitoring,
    cause3_provisioning_failed,
    cause4_repairs_suspended,
    cause5_grace_period,
    resilient_create,
    resilient_delete,
    scale_set_failed,
    symptom_unhealthy_not_repaired,
)
from .context import Context, HealthAssessment, assess_health

Rule = Callable[[Context], list[Finding]]

RULES: tuple[Rule, ...] = (
    scale_set_failed.check,
    cause1_repairs_disabled.check,
    cause2_health_monitoring.check,
    cause3_provisioning_failed.check,
    cause4_repairs_suspended.check,
    cause5_grace_period.check,
    symptom_unhealthy_not_repaired.check,
    resilient_create.check_timed_out,
    resilient_delete.check_failed,
    resilient_create.check_disabled,
    resilient_delete.check_disabled,
)


def diagnose(snapshot: ScaleSetSnapshot, settings: Settings, now: datetime) -> list[Finding]:
    """Every finding for one scale set, most severe first (stable order within a severity)."""
    ctx = Context(snapshot, settings, now)
    findings = [finding for rule in RULES for finding in rule(ctx)]
    return sorted(findings, key=lambda f: -f.severity.rank)


__all__ = ["RULES", "Context", "HealthAssessment", "assess_health", "diagnose"]
