"""Guardrails: each answers "may we act?" with a reason when the answer is no.

Anchors: Cluster API MachineHealthCheck (`unhealthyLessThanOrEqualTo` short circuit), medik8s
NodeHealthCheck (`minHealthy`), and Azure's own repairs (at most 5 % of a scale set at a time, one at a
time below 20 instances). Every function is pure: the planner feeds it the snapshot, settings, ledger
records and "now", and records whatever it says.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..diagnosis.context import BAD_HEALTH, is_running, norm
from ..model import ActionCode, ReasonCode, ScaleSetSnapshot, iso, parse_time
from ..ownership import Owner
from ..settings import Settings
from .actions import DISRUPTIVE_ACTIONS
from .record import Record, State
from .transitions import REFUSAL_RECHECK, next_attempt_at, recent_runs  # noqa: F401  (re-exported for callers)

_DISRUPTIVE_CODES = frozenset(a.value for a in DISRUPTIVE_ACTIONS)
TRANSITIONAL_STATES = frozenset({"creating", "updating", "deleting", "migrating"})


@dataclass(frozen=True)
class Hold:
    """A guardrail said no."""

    code: str  # a ReasonCode value: storm-brake, disruption-budget, cooldown, ...
    reason: str
    final: bool = False  # no later run will act either (attempt budget exhausted)
    keep: bool = False  # leave the record as it is (a failed attempt waiting out its backoff stays failed)


def _tag_matches(tags: dict[str, str], tag: tuple[str, str]) -> bool:
    name, value = tag
    for key, actual in tags.items():
        if key.lower() == name.lower():
            return not value or actual.lower() == value.lower()
    return False


def scope(snapshot: ScaleSetSnapshot, settings: Settings) -> Hold | None:
    """Opt-out tag, opt-in requirement, resource-group include/exclude."""
    if settings.opt_out_tag and _tag_matches(snapshot.tags, settings.opt_out_tag):
        name, value = settings.opt_out_tag
        return Hold(ReasonCode.OPT_OUT, f"opted out by tag {name}={value}" if value else f"opted out by tag {name}")
    if settings.opt_in_tag and not _tag_matches(snapshot.tags, settings.opt_in_tag):
        name, value = settings.opt_in_tag
        return Hold(ReasonCode.NOT_OPTED_IN, f"not opted in: tag {name}={value or '*'} required")
    group = snapshot.resource_group.lower()
    if settings.include_resource_groups and group not in {g.lower() for g in settings.include_resource_groups}:
        return Hold(
            ReasonCode.OUT_OF_SCOPE,
            f"resource group {snapshot.resource_group} is not in AUTOHEAL_INCLUDE_RESOURCE_GROUPS",
        )
    if group in {g.lower() for g in settings.exclude_resource_groups}:
        return Hold(
            ReasonCode.OUT_OF_SCOPE, f"resource group {snapshot.resource_group} is in AUTOHEAL_EXCLUDE_RESOURCE_GROUPS"
        )
    return None


def ownership(owner: Owner | None, settings: Settings) -> Hold | None:
    """Hands off scale sets another Azure service owns, unless that owner is opted back in."""
    if owner is None or owner.key in settings.allowed_owners:
        return None
    return Hold(ReasonCode.OWNED_BY_SERVICE.value, owner.describe())


def allowed(action: ActionCode, settings: Settings) -> Hold | None:
    if action.value not in settings.allowed_actions:
        return Hold(ReasonCode.NOT_ALLOWED, f"{action.value} is not in AUTOHEAL_ALLOWED_ACTIONS")
    return None


def unhealthy_share(snapshot: ScaleSetSnapshot) -> tuple[int, int]:
    """(unhealthy, total): Unhealthy/Unknown running instances plus failed ones, over live instances."""
    live = [i for i in snapshot.instances if norm(i.provisioning_state) != "deleting"]
    bad = sum(1 for i in live if i.failed or (is_running(i) and i.health in BAD_HEALTH))
    return bad, len(live)


def storm_brake(snapshot: ScaleSetSnapshot, settings: Settings) -> Hold | None:
    bad, total = unhealthy_share(snapshot)
    threshold = settings.storm_threshold_percent
    if total and 100 * bad > threshold * total:
        return Hold(ReasonCode.STORM_BRAKE, f"storm brake: {bad}/{total} unhealthy > {threshold} %")
    return None


def disruption_budget(snapshot: ScaleSetSnapshot, settings: Settings) -> int:
    """Instances that may be in flight at once: max(1, P % of capacity)."""
    capacity = snapshot.capacity if snapshot.capacity is not None else len(snapshot.instances)
    return max(1, math.floor(capacity * settings.max_disruption_percent / 100))


def in_flight(snapshot: ScaleSetSnapshot, records: list[Record], exclude: Record | None = None) -> int:
    """Instances already being changed: by Azure (transitional states) or by our running records."""
    busy = {i.instance_id for i in snapshot.instances if norm(i.provisioning_state) in TRANSITIONAL_STATES}
    for record in records:
        if record.state.active and record is not exclude and record.action in _DISRUPTIVE_CODES:
            busy.update(record.instance_ids)
    return len(busy)


def cooldown(records: list[Record], settings: Settings, now: datetime, correlation_id: str) -> Hold | None:
    """Quiet time after an instance action on this scale set (from an earlier run)."""
    if settings.cooldown <= timedelta(0):
        return None
    latest: datetime | None = None
    for record in records:
        if record.action not in _DISRUPTIVE_CODES or record.correlation_id == correlation_id:
            continue
        for run in record.runs:
            moment = parse_time(run)
            if moment is not None:
                latest = moment if latest is None or moment > latest else latest
    if latest is not None and now - latest < settings.cooldown:
        until = iso(latest + settings.cooldown, seconds=True)
        return Hold(ReasonCode.COOLDOWN, f"cooldown after the action at {iso(latest, seconds=True)} until {until}")
    return None


def attempt_budget(record: Record | None, settings: Settings, now: datetime) -> Hold | None:
    """Attempts per target with exponential backoff: base x 2^(k-1) after the k-th failure.

    A failed record may have been held since (storm, budget): it keeps its attempts and its backoff.
    """
    if record is None or record.state not in (State.FAILED, State.HELD) or not record.last_error:
        return None
    if record.attempts >= settings.max_attempts:
        last = f"; last error: {record.last_error}" if record.last_error else ""
        return Hold(
            ReasonCode.ATTEMPT_BUDGET,
            f"gave up after {record.attempts} of {settings.max_attempts} attempts{last}",
            final=True,
        )
    if record.next_attempt_at and now < record.next_attempt_at:
        when = iso(record.next_attempt_at, seconds=True)
        return Hold(
            ReasonCode.BACKOFF, f"attempt {record.attempts + 1} of {settings.max_attempts} not before {when}", keep=True
        )
    return None


# Holds that come from Azure's own answer to an attempt (not from a guardrail): asking again every sweep
# would only repeat the refusal, so the record stands until this much time has passed.
AZURE_REFUSALS = frozenset({ReasonCode.FEATURE_NOT_REGISTERED.value, ReasonCode.NEEDS_HEALTH_SOURCE.value})


def azure_refusal(record: Record | None, now: datetime) -> Hold | None:
    if record is None or record.state is not State.HELD or record.reason_code not in AZURE_REFUSALS:
        return None
    if record.updated_at is not None and now - record.updated_at < REFUSAL_RECHECK:
        return Hold(record.reason_code, record.reason, keep=True)
    return None


def resume_budget(record: Record | None, settings: Settings, now: datetime) -> Hold | None:
    runs = recent_runs(record, now)
    if len(runs) >= settings.max_resumes_per_day:
        return Hold(
            ReasonCode.RESUME_BUDGET,
            f"already resumed {len(runs)} time(s) in 24 h "
            f"(AUTOHEAL_MAX_RESUMES_PER_DAY={settings.max_resumes_per_day})",
        )
    return None


class SweepBudget:
    """The cap on actions per sweep across the subscription (shared by the sweep's threads)."""

    def __init__(self, limit: int) -> None:
        self._left = limit
        self._limit = limit
        self._lock = threading.Lock()

    def take(self) -> Hold | None:
        with self._lock:
            if self._left <= 0:
                return Hold(
                    ReasonCode.SWEEP_CAP, f"sweep action cap reached (AUTOHEAL_MAX_ACTIONS_PER_SWEEP={self._limit})"
                )
            self._left -= 1
            return None
