"""Hostile deliveries through the registered Event Grid function in one process, in remediate mode (issue 13).

`HOSTILE_EVENTS=10000` runs the long version (`bench/hostile_events.py` prints the same figures on its own).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from autoheal.runtime import Runtime, set_runtime
from tests.functions import hostile
from tests.integration.rig import remediate_settings

EVENTS = int(os.environ.get("HOSTILE_EVENTS", "1000"))
SEED = int(os.environ.get("HOSTILE_SEED", "13"))


@pytest.fixture
def remediating(demo_emulator, ledger):
    settings = remediate_settings(demo_emulator, event_coalesce_window=timedelta(0))
    assert settings.remediate  # every benign event is fully evaluated (no coalescing) with writes allowed
    runtime = Runtime(settings, ledger=ledger, gateway_options={"retry_total": 0})
    set_runtime(runtime)
    yield runtime
    set_runtime(None)


def test_hostile_corpus_no_crash_no_silent_drop_no_write(functions, remediating, demo_emulator, capsys):
    figures = hostile.run(
        functions["on_resource_event"].get_user_function(), demo_emulator.stats, hostile.corpus(SEED, EVENTS)
    )
    with capsys.disabled():
        print(f"\nhostile corpus (seed {SEED}): {figures.summary()}")
    assert figures.events >= EVENTS
    assert figures.crashes == 0, figures.examples
    assert figures.unexplained_drops == 0, figures.examples
    assert figures.arm_writes == 0
    assert figures.evaluated > 0  # the benign part of the corpus is still evaluated
    rejected = sum(n for key, n in figures.outcomes.items() if key.startswith("rejected:id-"))
    assert rejected > EVENTS // 10
