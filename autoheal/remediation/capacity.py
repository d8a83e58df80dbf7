"""Capacity arithmetic for replacements: the floor a replacement never goes below, and what is owed.

Resolution 3 of Microsoft's troubleshooting article: delete the failed instance, then change the scale set's
capacity. Between the two the scale set is owed the deleted instances. Capacity goes back to the value
recorded before the delete and never above it (autoscale keeps its say); if someone else changed it in the
meantime, the restore works from the current value instead and says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..settings import Settings


def capacity_floor(capacity: int, settings: Settings) -> int:
    """The fewest instances a replacement may leave: the floor percentage of capacity, at least one."""
    return max(1, math.ceil(capacity * settings.capacity_floor_percent / 100))


@dataclass(frozen=True)
class Restore:
    """What to PATCH `sku.capacity` to (None: nothing owed any more) and a note when capacity moved."""

    capacity: int | None
    note: str = ""


def restore(*, target: int, before_delete: int, gone: int, current: int) -> Restore:
    """After `gone` instances left a scale set whose capacity was `before_delete` (recorded `target`).

    Expected now: `before_delete - gone`. Owed: what brings that back to the target (zero after a surge,
    which raised capacity first). If capacity is not what we expect, someone else (autoscale, a person, Azure)
    changed it: work from the current value, never above the target.
    """
    expected = before_delete - gone
    owed = max(0, target - expected)
    if current >= target or owed == 0:
        note = "" if current == expected else f"capacity is {current} (expected {expected}): nothing owed"
        return Restore(None, note)
    wanted = min(target, current + owed)
    note = ""
    if current != expected:
        note = (
            f"capacity changed since the delete (expected {expected}, found {current}): "
            f"restoring from the current value to {wanted}"
        )
    if wanted <= current:
        return Restore(None, note)
    return Restore(wanted, note)
