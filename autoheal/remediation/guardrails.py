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
from typing import Any

from ..diagnosis.context import BAD_HEALTH, is_running, norm
from ..model import ActionCode, Finding, ReasonCode, ScaleSetSnapshot, iso, parse_time
from ..ownership import Owner
from ..settings import Settings
from .actions import DISRUPTIVE_ACTIONS
from .record import SCALE_SET_TARGET, Record, State
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
    params: dict[str, Any] | None = None  # facts the record keeps with the hold (a loop's two failures)


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


def bad_instances(snapshot: ScaleSetSnapshot) -> tuple[int, int, int]:
    """(failed, unhealthy, live): failed instances and Unhealthy/Unknown running ones, counted apart."""
    live = [i for i in snapshot.instances if norm(i.provisioning_state) != "deleting"]
    failed = sum(1 for i in live if i.failed)
    unhealthy = sum(1 for i in live if not i.failed and is_running(i) and i.health in BAD_HEALTH)
    return failed, unhealthy, len(live)


def storm_brake(snapshot: ScaleSetSnapshot, settings: Settings) -> Hold | None:
    """A storm is several instances: at least `storm_min_instances` bad ones and more than the percentage."""
    failed, unhealthy, total = bad_instances(snapshot)
    bad = failed + unhealthy
    threshold = settings.storm_threshold_percent
    if total and bad >= settings.storm_min_instances and 100 * bad > threshold * total:
        parts = [f"{n} {word}" for n, word in ((failed, "failed"), (unhealthy, "unhealthy")) if n]
        share = round(100 * bad / total, 1)
        return Hold(
            ReasonCode.STORM_BRAKE,
            f"storm brake: {' and '.join(parts)} of {total} instances ({share:g} % > {threshold} %)",
        )
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
    if record is not None and record.state is State.HELD and record.reason_code == ReasonCode.ACCEPTED_NOT_SHOWN:
        return Hold(record.reason_code, record.reason, keep=True)  # stands until the finding goes (resolved)
    if record is None or record.state is not State.HELD or record.reason_code not in AZURE_REFUSALS:
        return None
    if record.updated_at is not None and now - record.updated_at < REFUSAL_RECHECK:
        return Hold(record.reason_code, record.reason, keep=True)
    return None


# -- loops: replacing (or repairing) again will not help -----------------------------------------------------

# A person clears a loop hold with `vmss-autoheal clear` (the record becomes RESOLVED with this reason code):
# the next failure gets one more replacement, and the loop is held again if that one fails the same way.
CLEARED = "cleared"


def _loop_active(record: Record) -> bool:
    return record.state is State.HELD and record.reason_code == ReasonCode.REPLACEMENT_LOOP.value


def replacement_loop(
    finding: Finding, target: str, record: Record | None, snapshot: ScaleSetSnapshot, settings: Settings, now: datetime
) -> Hold | None:
    """Hold when a replacement's new instance fails with the error code of the instance it replaced, or a repaired
    instance is unhealthy again, within `loop_window` of that action; the hold stands (whatever the window)
    until a person clears it or the failure stops (the finding goes away and the record is resolved)."""
    if record is None or record.reason_code == CLEARED:
        return None
    held = _loop_active(record)
    if not held:
        recent = record.updated_at is not None and now - record.updated_at <= settings.loop_window
        acted = record.attempts > 0 and record.state in (State.SUCCEEDED, State.FAILED, State.RESOLVED)
        if not (recent and acted and record.action == finding.proposed_action.code.value):
            return None
    if finding.proposed_action.code is ActionCode.REPLACE_FAILED_INSTANCES and target == SCALE_SET_TARGET:
        return _replaced_again(finding, record, snapshot, held)
    if finding.proposed_action.code is ActionCode.REPAIR_INSTANCES and target != SCALE_SET_TARGET:
        if not held and record.state is State.FAILED:
            return None  # the repair itself failed (Azure said no): backoff and the attempt budget handle that
        return _unhealthy_again(target, record, snapshot, held)
    return None


def _replaced_again(finding: Finding, record: Record, snapshot: ScaleSetSnapshot, held: bool) -> Hold | None:
    loop = record.params.get("loop") if held else None
    replaced = list((loop or {}).get("replaced") or record.params.get("failures") or [])
    codes = {str(f.get("errorCode")) for f in replaced if isinstance(f, dict) and f.get("errorCode")}
    before = set(record.params.get("before") or []) | {str(f.get("instanceId")) for f in replaced}
    if not codes or not record.params.get("before"):
        return None  # the earlier run never reached the delete: nothing was replaced yet
    again = []
    for instance_id in finding.instance_ids:
        instance = snapshot.instance(instance_id)
        if instance is not None and instance_id not in before and instance.provisioning_error_code in codes:
            again.append(instance)
    if not again:
        return None
    code = sorted({str(i.provisioning_error_code) for i in again})[0]
    facts = [
        {
            k: v
            for k, v in (
                ("instanceId", i.instance_id),
                ("name", i.name),
                ("provisioningState", "Failed"),
                ("errorCode", i.provisioning_error_code),
                ("message", i.provisioning_message),
                ("powerState", i.power_state),
                ("stateSince", iso(i.provisioning_time, seconds=True)),
            )
            if v is not None
        }
        for i in again
    ]
    return Hold(
        ReasonCode.REPLACEMENT_LOOP,
        f"every new instance fails with {code}: replacing will not help — look at the extension or image "
        "(`vmss-autoheal clear` lets it try once more)",
        params={"loop": {"errorCode": code, "replaced": replaced, "again": facts}, "before": sorted(before)},
    )


def _unhealthy_again(target: str, record: Record, snapshot: ScaleSetSnapshot, held: bool) -> Hold | None:
    instance = snapshot.instance(target)
    if instance is None or instance.health not in BAD_HEALTH:
        return None
    loop = record.params.get("loop") if held else None
    repaired_at = (loop or {}).get("repairedAt") or iso(record.updated_at, seconds=True)
    return Hold(
        ReasonCode.REPLACEMENT_LOOP,
        f"instance {target} is {instance.health.value if instance.health else 'unhealthy'} again after its repair "
        f"at {repaired_at}: repairing will not help — look at the application or image "
        "(`vmss-autoheal clear` lets it try once more)",
        params={"loop": {"repairedAt": repaired_at, "repair": record.reason, "health": str(instance.health)}},
    )


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

    def give_back(self) -> None:
        """A slot taken for a claim another worker won: the cap counts actions this sweep took, not tries."""
        with self._lock:
            self._left = min(self._limit, self._left + 1)
