"""The order a sweep reads scale sets in (issue 12): suspects first, capacity owed first, then the rotation."""

from __future__ import annotations

from autoheal.engine import schedule
from autoheal.remediation.record import Record, State, Step

SUB = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/"


def resource(name: str) -> dict:
    return {"id": SUB + name, "name": name}


def key(name: str) -> str:
    return f"s|rg|{name}"


def names(items: list[dict]) -> list[str]:
    return [r["name"] for r in items]


def test_suspects_come_first_and_capacity_owed_before_them():
    resources = [resource(n) for n in ("a", "b", "c", "d", "e")]
    known = {
        key("d"): [Record(SUB + "d", "provisioning-failed", state=State.VERIFYING, step=Step.RESTORED)],
        key("e"): [Record(SUB + "e", "provisioning-failed", state=State.VERIFYING, step=Step.RESTORE_INTENT)],
        key("a"): [Record(SUB + "a", "repairs-disabled", state=State.HELD)],
    }
    plan = schedule(resources, known, "")
    assert names(plan.suspects) == ["e", "d"]
    assert names(plan.ring) == ["a", "b", "c"]
    assert names(plan.order) == ["e", "d", "a", "b", "c"]


def test_the_rotation_starts_after_the_cursor_and_wraps():
    resources = [resource(n) for n in ("c", "a", "e", "b", "d")]
    assert names(schedule(resources, {}, key("b")).ring) == ["c", "d", "e", "a", "b"]
    assert names(schedule(resources, {}, key("e")).ring) == ["a", "b", "c", "d", "e"]
    # a cursor whose scale set is gone still continues from where it would have been
    assert names(schedule(resources, {}, key("bb")).ring) == ["c", "d", "e", "a", "b"]
