"""Issue 21 item 6: a bug is an internal error, recorded once, not "ledger unavailable" (which the event path
treats as transient, so Event Grid would redeliver the bug forever)."""

from __future__ import annotations

import logging

from emulator import fleetgen


def test_a_bug_while_remediating_is_a_non_transient_internal_error(make_rig, caplog):
    rig = make_rig(fleetgen.scale_set("a", automatic_repairs=None, resilient_creation=True, resilient_deletion=True))
    engine = rig.engine()
    assert engine.runner is not None

    def buggy(*args, **kwargs):
        raise TypeError("'NoneType' object is not subscriptable")

    engine.runner.remediate = buggy  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="autoheal.engine"):
        result = engine.sweep()
    [scale_set] = result.results
    assert scale_set.error is not None and scale_set.error.startswith("internal error: TypeError")
    assert scale_set.transient is False  # the event path acknowledges it instead of asking for redelivery
    assert sum("internal error" in r.getMessage() for r in caplog.records) == 1  # recorded once
