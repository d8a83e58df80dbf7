"""Who hears about what: coalescing, dedupe, severity per channel, digest versus one message per change.

Pure functions over `Change`s; the ledger record carries what was last announced (`notified_state`,
`notified_at`), so dedupe survives restarts and works across workers without a second store.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ..model import Severity
from .content import severity_of

if TYPE_CHECKING:
    from . import Change

# Announcement phases: running and verifying are both "acting" (one message, not two).
_PHASE = {"running": "acting", "verifying": "acting"}


def phase(state: str) -> str:
    return _PHASE.get(state, state)


def key_of(change: Change) -> tuple[str, str, str]:
    record = change.record
    return record.scale_set_id.lower(), record.finding_code, record.target


def coalesce(changes: Sequence[Change]) -> list[Change]:
    """One change per finding and target: the latest record, the earliest previous state, any finding."""
    from . import Change

    merged: dict[tuple[str, str, str], Change] = {}
    for change in changes:
        key = key_of(change)
        first = merged.get(key)
        if first is None:
            merged[key] = change
            continue
        merged[key] = Change(
            record=change.record,
            previous_state=first.previous_state,
            finding=change.finding or first.finding,
        )
    return list(merged.values())


def is_due(change: Change, now: datetime, window: timedelta) -> bool:
    """Should this change be announced now?

    - a state (phase) not announced yet: yes;
    - the same state announced less than `window` ago: no (dedupe); after the window: yes, as a reminder;
    - `resolved` closes the loop once, and only for something that was announced before.
    """
    record = change.record
    state = record.state.value
    announced = record.notified_state
    if state == "resolved":
        return bool(announced) and announced != "resolved"
    if phase(announced) != phase(state):
        return True
    if record.notified_at is None:
        return True
    return now - record.notified_at >= window


def wants(min_severity: Severity, change: Change) -> bool:
    return severity_of(change.record.severity).rank >= min_severity.rank


def batches(changes: Sequence[Change], *, style: str, max_items: int) -> list[list[Change]]:
    """digest: one message for everything (the channel shows the worst `max_items` scale sets in full and
    counts the rest, so a busy sweep is one message, not many); each: one message per change."""
    if not changes:
        return []
    if style != "digest":
        return [[c] for c in changes]
    return [list(changes)]
