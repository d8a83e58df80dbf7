"""Issue 11, races: three `vmss-autoheal handle-event --apply` processes on the same ResourceWriteFailure
event (at-least-once delivery) plus one `sweep --apply`, all at once, on a scale set with a failed
instance and, in two of the rounds, a second finding whose fix writes the whole scale set (a PATCH that
conflicts with the replacement's delete or scale-out). Invariants from the journal and the ledger.

The rounds run once per module (seeded); each test checks one invariant over all of them. A last round
makes the collision deterministic: another actor PATCHes the scale set the moment the replacement's
delete ends, so the restore of capacity meets a write that is not ours. More rounds: `make soak`.
"""

from __future__ import annotations

import pytest

from tests.safety.harness import Harness, Round

SEED = 4411
EXTRAS = ("repairs-off", "resilient-delete-off", "none")


@pytest.fixture(scope="module")
def race_rounds(azurite, tmp_path_factory) -> list[Round]:
    with Harness(azurite, seed=SEED, workdir=tmp_path_factory.mktemp("race"), prefix="x") as harness:
        return [harness.race_round(workers=3, extra=extra) for extra in EXTRAS]


def violations(rounds: list[Round], invariant: str) -> str:
    return "\n".join(r.describe() for r in rounds if any(v.invariant == invariant for v in r.violations))


def test_every_worker_ran_to_the_end(race_rounds):
    for round_ in race_rounds:
        assert len(round_.processes) == 4
        assert [p.process.returncode for p in round_.processes] == [0, 0, 0, 0], round_.describe()


def test_one_delete_per_instance_however_many_workers(race_rounds):
    assert not violations(race_rounds, "double-action")


def test_capacity_never_below_the_floor(race_rounds):
    assert not violations(race_rounds, "below-floor")


def test_capacity_not_left_short_after_a_race(race_rounds):
    assert not violations(race_rounds, "capacity-short")


@pytest.fixture(scope="module")
def collision(azurite, tmp_path_factory) -> Round:
    with Harness(azurite, seed=SEED, workdir=tmp_path_factory.mktemp("collision"), prefix="i") as harness:
        return harness.interloper_round("failed")


def test_the_other_writer_did_collide_with_the_replacement(collision):
    assert collision.interference == [200], collision.describe()
    assert collision.processes[0].process.returncode == 0


def test_capacity_debt_is_paid_when_the_restore_meets_another_write(collision):
    assert not violations([collision], "capacity-short")


def test_a_collision_deletes_nothing_twice_and_leaves_reasons(collision):
    assert not violations([collision], "double-action")
    assert not violations([collision], "non-terminal")


def test_every_record_ends_terminal_or_with_a_reason(race_rounds):
    assert not violations(race_rounds, "non-terminal")
