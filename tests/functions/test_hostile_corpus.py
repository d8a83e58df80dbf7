"""Hostile deliveries through the registered Event Grid function in one process, in remediate mode (issue 13).

`HOSTILE_EVENTS=10000` runs the long version (`bench/hostile_events.py` prints the same figures on its own).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from autoheal.gateway import ComputeBudget
from autoheal.runtime import Runtime, set_runtime
from emulator import Emulator
from emulator.fleets import demo
from tests.functions import hostile
from tests.integration.rig import remediate_settings

EVENTS = int(os.environ.get("HOSTILE_EVENTS", "1000"))
SEED = int(os.environ.get("HOSTILE_SEED", "13"))


# Coalescing is off, so the benign events evaluate the demo's few scale sets hundreds of times within seconds:
# far past Compute's per-scale-set buckets (VMSS High Cost Get: 10/min). The budget would pace that correctly
# and take minutes; this test is about crashes, drops and writes, so the emulator's buckets and the budget run
# the same accelerated clock (an Azure minute in 0.1 s).
TIME_SCALE = 600.0


@pytest.fixture
def demo_emulator():
    with Emulator.start(demo.PATH, compute_refill_scale=TIME_SCALE) as emu:
        yield emu


@pytest.fixture
def remediating(demo_emulator, ledger):
    settings = remediate_settings(demo_emulator, event_coalesce_window=timedelta(0))
    assert settings.remediate  # every benign event is fully evaluated (no coalescing) with writes allowed
    budget = ComputeBudget(share=settings.compute_read_share / 100, time_scale=TIME_SCALE)
    runtime = Runtime(settings, ledger=ledger, gateway_options={"retry_total": 0, "budget": budget})
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
