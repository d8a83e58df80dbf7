"""Issue 11, crashes: a real `vmss-autoheal sweep --apply` process SIGKILLed at seeded kill points of a
delete-and-restore action (slow real-time LROs, as in Azure), its lease expired, resumed once; then the
invariants are checked on the emulator's write journal and the ledger (tests/safety/invariants.py).

The rounds run once per module (seeded); each test checks one invariant over all of them. Logs of every
process stay under pytest's tmp directory (`crash0/round-NNN/`). More rounds: `make soak`.
"""

from __future__ import annotations

import pytest

from tests.safety.harness import Harness, Round

SEED = 20261130
ROUNDS = [
    ("failed", "accepted-delete"),
    ("solo", "accepted-delete"),
    ("unhealthy", "random-time"),
    ("failed", "between-writes"),
    ("unhealthy", "between-writes"),
]


@pytest.fixture(scope="module")
def crash_rounds(azurite, tmp_path_factory) -> list[Round]:
    with Harness(azurite, seed=SEED, workdir=tmp_path_factory.mktemp("crash"), prefix="c") as harness:
        return [harness.crash_round(kind, kill) for kind, kill in ROUNDS]


def violations(rounds: list[Round], invariant: str) -> str:
    found = [f"{r.describe()}" for r in rounds if any(v.invariant == invariant for v in r.violations)]
    return "\n".join(found)


def test_every_round_was_killed_at_its_kill_point_and_resumed(crash_rounds):
    for round_ in crash_rounds:
        assert (round_.kills, round_.resumes) == (1, 1), round_.describe()
        assert round_.kill_note == "point", round_.describe()
        assert round_.processes[0].killed and round_.processes[0].process.returncode == -9
    # the defect-1 kill point leaves a running record behind: the resume has to take it over
    assert all(r.resumed_rows for r in crash_rounds if r.kill_mode == "accepted-delete")


def test_no_instance_is_deleted_twice_after_a_crash(crash_rounds):
    assert not violations(crash_rounds, "double-action")


def test_capacity_never_below_the_floor(crash_rounds):
    assert not violations(crash_rounds, "below-floor")


def test_capacity_back_at_the_target_within_one_resume(crash_rounds):
    assert not violations(crash_rounds, "capacity-short")


def test_every_record_ends_terminal_or_with_a_reason(crash_rounds):
    assert not violations(crash_rounds, "non-terminal")


def test_every_resume_is_in_the_history(crash_rounds):
    assert not violations(crash_rounds, "resume-unrecorded")
