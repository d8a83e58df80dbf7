"""Dedupe, resolved, digest versus each, severity per channel: through the real channels and sinks."""

from __future__ import annotations

from datetime import timedelta

import pytest

from autoheal.notify import Change, Notifier
from autoheal.remediation.ledger import State
from autoheal.settings import default_settings
from sinks import AcsEmailSink, TeamsWebhookSink

from .conftest import NOW, change, record

HOUR = timedelta(hours=1)


def send(notifier: Notifier, *changes: Change, trigger: str = "sweep", now=NOW):
    return notifier.notify(list(changes), trigger=trigger, correlation_id="corr", now=now)


def test_the_same_state_is_not_resent_within_the_window(teams: TeamsWebhookSink, make_notifier) -> None:
    notifier = make_notifier(teams=teams)  # default window: 6 hours
    first = send(notifier, change(State.HELD))
    [announced] = first.delivered
    again = send(notifier, Change(announced, "held", None), now=NOW + 5 * HOUR)
    assert again.delivered == [] and again.suppressed == 1
    later = send(notifier, Change(announced, "held", None), now=NOW + 6 * HOUR)
    assert len(later.delivered) == 1 and later.delivered[0].notified_at == NOW + 6 * HOUR
    assert len(teams.messages) == 2


def test_a_state_change_is_sent_at_once(teams: TeamsWebhookSink, make_notifier) -> None:
    notifier = make_notifier(teams=teams)
    announced = record(State.RUNNING, notified_state="held", notified_at=NOW - timedelta(minutes=1))
    result = send(notifier, Change(announced, "held", None))
    assert [r.notified_state for r in result.delivered] == ["running"]


def test_running_and_verifying_are_one_acting_phase(teams: TeamsWebhookSink, make_notifier) -> None:
    notifier = make_notifier(teams=teams)
    verifying = record(State.VERIFYING, notified_state="running", notified_at=NOW - timedelta(minutes=1))
    assert send(notifier, Change(verifying, "running", None)).suppressed == 1
    assert teams.messages == []


def test_resolved_closes_the_loop_once(teams: TeamsWebhookSink, make_notifier) -> None:
    notifier = make_notifier(teams=teams)
    resolved = record(State.RESOLVED, notified_state="succeeded", notified_at=NOW - timedelta(minutes=5))
    result = send(notifier, Change(resolved, "succeeded", None))
    [closed] = result.delivered
    assert closed.notified_state == "resolved"
    assert "Resolved: Azure no longer shows the problem." in str(teams.cards[0])
    assert teams.cards[0]["body"][0]["style"] == "good"
    assert send(notifier, Change(closed, "resolved", None), now=NOW + 24 * HOUR).suppressed == 1
    assert len(teams.messages) == 1


def test_resolved_is_silent_when_nothing_was_announced(teams: TeamsWebhookSink, make_notifier) -> None:
    result = send(make_notifier(teams=teams), change(State.RESOLVED, "planned", with_finding=False))
    assert result.delivered == [] and result.suppressed == 1 and teams.messages == []


def test_digest_sends_one_message_listing_everything_new(teams: TeamsWebhookSink, make_notifier) -> None:
    notifier = make_notifier(teams=teams, notify_style="digest")
    result = send(notifier, *(change(name=f"vmss-{n}") for n in range(3)))
    assert len(result.delivered) == 3 and len(teams.messages) == 1
    assert teams.cards[0]["body"][0]["items"][1]["text"] == "3 scale sets: 3 done"


def test_a_digest_shows_the_top_items_and_counts_the_rest(tls, teams: TeamsWebhookSink, sleeps) -> None:
    """One message per sweep, not one per 8 changes: Teams shows `teams_max_items` scale sets in full."""
    settings = default_settings(teams_webhook_url=teams.url, teams_min_severity="info")
    notifier = Notifier.from_settings(settings, ca_bundle=tls.ca_file, teams_max_items=2, sleep=sleeps)
    result = send(notifier, *(change(name=f"vmss-{n}") for n in range(5)))
    assert len(result.delivered) == 5 and len(teams.cards) == 1
    card = teams.cards[0]
    assert card["body"][0]["items"][1]["text"] == "5 scale sets: 5 done"
    names = [c["items"][0]["columns"][0]["items"][0]["text"] for c in card["body"][1:3]]
    assert names == ["**vmss-0** · rg-web", "**vmss-1** · rg-web"]
    assert card["body"][3]["text"].startswith("3 more scale sets (3 done): see 'vmss-autoheal history'")


def test_each_sends_one_message_per_change(teams: TeamsWebhookSink, make_notifier) -> None:
    notifier = make_notifier(teams=teams, notify_style="each")
    result = send(notifier, *(change(name=f"vmss-{n}") for n in range(3)), trigger="event")
    assert len(result.delivered) == 3 and len(teams.messages) == 3
    assert [c["body"][0]["items"][1]["text"] for c in teams.cards] == [
        f"vmss-{n}: automatic repairs are suspended" for n in range(3)
    ]


def test_changes_of_one_record_in_one_run_are_one_message(teams: TeamsWebhookSink, make_notifier) -> None:
    notifier = make_notifier(teams=teams, notify_style="each")
    result = send(notifier, change(State.RUNNING, ""), change(State.SUCCEEDED, "running"))
    assert [r.notified_state for r in result.delivered] == ["succeeded"]
    assert len(teams.messages) == 1


def test_minimum_severity_per_channel(teams: TeamsWebhookSink, acs: AcsEmailSink, make_notifier) -> None:
    notifier = make_notifier(teams=teams, acs=acs, teams_min_severity="warning", email_min_severity="error")
    changes = [change(name=f"vmss-{sev}", severity=sev) for sev in ("info", "warning", "error")]
    result = send(notifier, *changes)
    assert result.suppressed == 1  # info: below both
    assert sorted(r.scale_set_name for r in result.delivered) == ["vmss-error", "vmss-warning"]
    assert teams.cards[0]["body"][0]["items"][1]["text"] == "2 scale sets: 2 done"
    [mail] = acs.sent
    assert mail.subject == "[vmss-autoheal] DONE: vmss-error: automatic repairs are suspended"


def test_a_record_is_delivered_when_any_channel_took_it(teams: TeamsWebhookSink, acs: AcsEmailSink, make_notifier):
    acs.fail_next(10, status=500)
    result = send(make_notifier(teams=teams, acs=acs), change())
    assert len(result.delivered) == 1 and [f.split(":")[0] for f in result.failures] == ["email"]


def test_no_channels_configured_sends_nothing() -> None:
    notifier = Notifier.from_settings(default_settings())
    assert notifier.channels == []
    result = send(notifier, change())
    assert result.delivered == [] and result.failures == [] and result.suppressed == 1


def test_a_bug_in_a_channel_never_reaches_the_caller(teams: TeamsWebhookSink, make_notifier, caplog) -> None:
    notifier = make_notifier(teams=teams)
    notifier.channels[0].send = lambda message: 1 / 0  # type: ignore[method-assign]
    result = send(notifier, change())
    assert result.delivered == [] and "ZeroDivisionError" in result.failures[0]


def test_unknown_override_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="retry_dealys"):
        Notifier.from_settings(default_settings(), retry_dealys=(0,))
