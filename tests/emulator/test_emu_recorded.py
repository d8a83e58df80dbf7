"""Emulator conformance with recorded Azure traffic (issue 19 item 2): each recording's own GET bodies become the
emulator's fleet, the recorded requests are replayed, and the answers are compared with what Azure sent
(status, error code, header names and their format, JSON key paths). Every difference is either fixed in the
emulator or listed below as deliberate, with its reason; emulator/README.md ("Conformance with recorded
traffic") carries the same list. A new difference fails the test."""

from __future__ import annotations

from collections import Counter

import pytest

from .recorded_replay import Difference, Recorded, Replayer, build_fleets, parse

corpus = pytest.importorskip("tests.recorded.corpus", reason="the recorded corpus (tests/recorded/) is not here")

# (operationId, kind, detail) → why the emulator differs on purpose.
DELIBERATE: dict[tuple[str, str, str], str] = {}


@pytest.fixture(scope="module")
def recordings() -> list[Recorded]:
    return [parse(name, exchange) for name, exchange in corpus.exchanges()]


def test_the_corpus_has_exchanges_the_emulator_answers(recordings):
    answered = [rec for rec in recordings if rec.operation]
    assert len(answered) >= 20, Counter(rec.operation or "(not emulated)" for rec in recordings)


def test_every_difference_from_the_recordings_is_deliberate(recordings, start_emulator):
    fleets = build_fleets(recordings)
    emu = start_emulator(None, lro_polls=0)
    replayer = Replayer(emu, fleets)
    found: list[Difference] = []
    try:
        for rec in recordings:
            if rec.operation:
                found.extend(replayer.replay(rec))
    finally:
        replayer.close()
    unexplained = sorted({d.key() for d in found} - set(DELIBERATE))
    assert not unexplained, "\n".join(f"{op} {kind}: {detail}" for op, kind, detail in unexplained)
    stale = sorted(set(DELIBERATE) - {d.key() for d in found})
    assert not stale, f"listed as deliberate but no longer seen: {stale}"
