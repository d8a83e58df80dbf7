"""The safety invariants of issue 11, as pure functions of the emulator's journal and the ledger's rows.

Inputs are plain data: the journal document (`emulator/journal.py`), live records and history rows as
read from Table Storage (`harness.LedgerView`). Nothing here talks to a process, so every rule is
unit-tested on hand-written data (`test_invariants.py`).

1. No instance receives two accepted deletes (or restarts, reimages, redeploys): a second accepted
   write of the same kind on the same instance counts as a double unless the earlier one had already
   ended Failed or Canceled when the second was accepted (then it is a legitimate retry).
2. Capacity never below the floor: live instances (neither Deleting nor Failed) >= max(1,
   ceil(floor % x recorded target)) at every point of the capacity timeline once the round started
   (points before any write are the fleet as loaded).
3. Capacity back at the recorded target within one resume: `sku.capacity` and live instances equal the
   target once the resumed run finished and the replacement had its provisioning time.
4. Every live record ends terminal (succeeded, resolved) or names a reason (failed, held, planned,
   verifying with a reason); nothing is left `running`.
6. One disruptive action per scale set at a time: no accepted instance write (delete, restart, reimage,
   redeploy) on one instance while one on another instance of the same scale set is still running in
   Azure (accepted, not yet ended).
5. Every resume is in the history: a record found `running` after a kill has, after the resume, a
   history row whose reason code is `resumed` or whose reason starts with "resumed"/"resuming".
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Write kinds that act on instances, by the swagger operationId's verb.
INSTANCE_KINDS = ("delete", "restart", "reimage", "redeploy")
_KIND = re.compile(r"_(Delete|DeleteInstances|Restart|Reimage|Redeploy)$")
TERMINAL_STATES = frozenset({"succeeded", "resolved"})
_RESUME_REASON = re.compile(r"^\s*resum(ed|ing)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Violation:
    invariant: str  # double-action | below-floor | capacity-short | non-terminal | resume-unrecorded
    detail: str


@dataclass
class RoundFigures:
    """What one round measured; the soak adds these up."""

    doubles: int = 0  # instances with a second accepted delete/restart/reimage/redeploy
    below_floor: int = 0
    short_seconds: float = 0.0  # time sku.capacity stayed below the target
    left_short: bool = False  # capacity not back at the target at the end of the round
    non_terminal: int = 0
    unrecorded_resumes: int = 0
    concurrent: int = 0  # instance writes accepted while another instance's was still in flight
    violations: list[Violation] = field(default_factory=list)


def write_kind(operation_id: str) -> str | None:
    """delete | restart | reimage | redeploy for instance writes; None otherwise."""
    found = _KIND.search(operation_id or "")
    if found is None:
        return None
    verb = found.group(1).lower()
    return "delete" if verb.startswith("delete") else verb


def accepted(write: Mapping[str, Any]) -> bool:
    """Azure took the write on: 2xx with an operation (a 204 delete of what is gone changes nothing)."""
    return 200 <= int(write.get("status") or 0) < 300 and bool(write.get("operation"))


def double_actions(writes: Iterable[Mapping[str, Any]], scale_set: str | None = None) -> list[Violation]:
    """Invariant 1: instances that got a second accepted delete/restart/reimage/redeploy."""
    history: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    found: list[Violation] = []
    for write in sorted(writes, key=lambda w: (w.get("t") or 0, w.get("seq") or 0)):
        kind = write_kind(str(write.get("operationId") or ""))
        if kind is None or not accepted(write) or (scale_set and write.get("scaleSet") != scale_set):
            continue
        for instance in write.get("instanceIds") or []:
            key = (str(write.get("scaleSet")), kind, str(instance).lower())
            earlier = history.setdefault(key, [])
            still_counting = [w for w in earlier if not _ended_unsuccessfully_before(w, float(write.get("t") or 0))]
            if still_counting:
                first = still_counting[0]
                found.append(
                    Violation(
                        "double-action",
                        f"{key[0]} instance {instance}: second accepted {kind} at {write.get('at')} "
                        f"(first at {first.get('at')}, {first.get('outcome')})",
                    )
                )
            earlier.append(write)
    return found


def concurrent_disruptions(writes: Iterable[Mapping[str, Any]], scale_set: str) -> list[Violation]:
    """Invariant 6: an accepted instance write on one instance while one on another instance of the same
    scale set was accepted and had not ended yet (two disruptive actions in flight at once)."""
    ordered = sorted(
        (
            w
            for w in writes
            if w.get("scaleSet") == scale_set and accepted(w) and write_kind(str(w.get("operationId") or ""))
        ),
        key=lambda w: (w.get("t") or 0, w.get("seq") or 0),
    )
    found: list[Violation] = []
    for i, later in enumerate(ordered):
        mine = {str(x).lower() for x in later.get("instanceIds") or []}
        start = float(later.get("t") or 0)
        for earlier in ordered[:i]:
            theirs = {str(x).lower() for x in earlier.get("instanceIds") or []}
            ended = earlier.get("endedT")
            if theirs & mine or (ended is not None and float(ended) <= start):
                continue
            found.append(
                Violation(
                    "concurrent-disruption",
                    f"{scale_set}: {write_kind(str(later.get('operationId')))} of {sorted(mine)} at {later.get('at')} "
                    f"while the one of {sorted(theirs)} accepted at {earlier.get('at')} was still in flight",
                )
            )
            break
    return found


def _ended_unsuccessfully_before(write: Mapping[str, Any], moment: float) -> bool:
    ended = write.get("endedT")
    return write.get("outcome") in {"Failed", "Canceled"} and ended is not None and float(ended) <= moment


def capacity_floor(target: int, floor_percent: int) -> int:
    """The engine's floor: never below this many live instances (at least one)."""
    return max(1, math.ceil(target * floor_percent / 100))


def below_floor(points: list[Mapping[str, Any]], floor: int, since: float) -> list[Violation]:
    """Invariant 2: timeline points (from `since`) with fewer live instances than the floor."""
    return [
        Violation("below-floor", f"{p.get('at')}: {p.get('live')} live < floor {floor} ({p.get('cause')})")
        for p in points
        if float(p.get("t") or 0) >= since and int(p.get("live") or 0) < floor
    ]


def short_seconds(points: list[Mapping[str, Any]], target: int, until: float) -> float:
    """How long `sku.capacity` stayed below `target` up to `until` (a step function over the points)."""
    total = 0.0
    for point, following in zip(points, [*points[1:], None], strict=True):
        start = float(point.get("t") or 0)
        end = until if following is None else float(following.get("t") or 0)
        if int(point.get("capacity") or 0) < target and end > start:
            total += min(end, until) - start
    return max(0.0, total)


def capacity_restored(points: list[Mapping[str, Any]], target: int, *, replaced: bool = True) -> Violation | None:
    """Invariant 3, on the last point: `sku.capacity` back at the target, and the live instances too
    (`replaced`), or at least as many live instances as at the start (a race in which every worker
    was refused may leave the failed instance in place, but must not leave the scale set shorter)."""
    if not points:
        return Violation("capacity-short", "no capacity timeline for the scale set")
    first, last = points[0], points[-1]
    live_needed = target if replaced else int(first.get("live") or 0)
    if int(last.get("capacity") or 0) >= target and int(last.get("live") or 0) >= live_needed:
        return None
    return Violation(
        "capacity-short",
        f"capacity {last.get('capacity')}, {last.get('live')} live at the end; target {target}, "
        f"{live_needed} live needed ({last.get('at')})",
    )


def non_terminal(records: Iterable[Mapping[str, Any]]) -> list[Violation]:
    """Invariant 4: records left running, or in any other non-terminal state without a reason."""
    found = []
    for record in records:
        state = str(record.get("state") or "").lower()
        if state in TERMINAL_STATES:
            continue
        if state == "running" or not str(record.get("reason") or "").strip():
            found.append(
                Violation(
                    "non-terminal",
                    f"{record.get('rowKey')}: {state or 'no state'} ({record.get('reason') or 'no reason'})",
                )
            )
    return found


def is_resume_row(row: Mapping[str, Any]) -> bool:
    code = str(row.get("reasonCode") or "").lower()
    return code in {"resumed", "resume"} or bool(_RESUME_REASON.match(str(row.get("reason") or "")))


def unrecorded_resumes(resumed: Iterable[str], history: Iterable[Mapping[str, Any]], since: float) -> list[Violation]:
    """Invariant 5: every row key left `running` by a killed run has a resume row in the history after
    `since` (the kill)."""
    rows = [r for r in history if float(r.get("t") or 0) >= since and is_resume_row(r)]
    found = []
    for row_key in resumed:
        finding, _, target = row_key.partition("|")
        if not any(r.get("findingCode") == finding and str(r.get("target")) == target for r in rows):
            found.append(Violation("resume-unrecorded", f"{row_key}: taken over without a history row"))
    return found
