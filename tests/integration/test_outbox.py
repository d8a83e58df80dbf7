"""Issue 21: the ledger is the outbox. A record whose message failed (or whose decision did not change
since, so no change would announce it) is offered again at the next run; the failure is counted in the
sweep result."""

from __future__ import annotations

from typing import Any

from autoheal.model import Severity
from autoheal.notify import Notifier
from emulator import fleetgen


class FlakyChannel:
    """A notification channel (the notifier's own protocol, not an Azure client) that is down until told."""

    name = "flaky"
    min_severity = Severity.INFO
    max_items = 50

    def __init__(self) -> None:
        self.up = False
        self.sent: list[Any] = []

    def render(self, message: Any) -> Any:
        return message

    def send(self, message: Any) -> None:
        if not self.up:
            raise ConnectionError("channel down")
        self.sent.append(message)


def test_a_failed_notification_is_offered_again_at_the_next_run(make_rig):
    rig = make_rig(fleetgen.scale_set("a", automatic_repairs=None, resilient_creation=True, resilient_deletion=True))
    channel = FlakyChannel()
    notifier = Notifier([channel], retry_delays=())
    first = rig.sweep(notifier=notifier)
    assert first.notify_failures >= 1 and first.notified == 0
    record = rig.record("a", "repairs-disabled")
    assert record is not None and record.notified_state == ""
    channel.up = True
    second = rig.sweep(notifier=notifier)
    assert not any(r.changes for r in second.results)  # nothing changed: only the outbox announces it
    assert second.notified >= 1 and second.notify_failures == 0 and channel.sent
    record = rig.record("a", "repairs-disabled")
    assert record is not None and record.notified_state == record.state.value
    third = rig.sweep(notifier=notifier)
    assert third.notified == 0  # announced: not offered again
