"""Teams delivery through the real `requests` client to a loopback Workflows webhook."""

from __future__ import annotations

import logging

import pytest

from autoheal.notify.delivery import redact
from autoheal.remediation.ledger import State
from sinks import TeamsWebhookSink

from .adaptive_card import validate_payload
from .conftest import NOW, change


def test_posts_a_card_the_webhook_accepts(teams: TeamsWebhookSink, make_notifier) -> None:
    notifier = make_notifier(teams=teams)
    result = notifier.notify([change(State.SUCCEEDED, "verifying")], trigger="event", correlation_id="c-1", now=NOW)
    assert result.failures == [] and result.suppressed == 0
    assert [r.notified_state for r in result.delivered] == ["succeeded"]
    assert result.delivered[0].notified_at == NOW
    assert len(teams.messages) == 1
    validate_payload(teams.messages[0])
    request = teams.requests[0]
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-autoheal-payload-id"] in teams.cards[0]["body"][-1]["text"]


def test_retries_5xx_with_backoff_then_delivers(teams: TeamsWebhookSink, make_notifier, sleeps) -> None:
    teams.fail_next(2, status=502)
    result = make_notifier(teams=teams).notify([change()], trigger="sweep", correlation_id="c", now=NOW)
    assert result.failures == [] and len(result.delivered) == 1
    assert len(teams.requests) == 3 and len(teams.messages) == 1
    assert sleeps == [0.5, 1.0]


def test_429_waits_for_retry_after(teams: TeamsWebhookSink, make_notifier, sleeps) -> None:
    teams.fail_next(1, status=429, retry_after=7)
    result = make_notifier(teams=teams).notify([change()], trigger="sweep", correlation_id="c", now=NOW)
    assert result.failures == [] and sleeps == [7.0]


def test_gives_up_after_the_retries_logs_the_payload_id_and_never_raises(
    teams: TeamsWebhookSink, make_notifier, sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    teams.fail_next(10, status=503)
    caplog.set_level(logging.INFO, logger="autoheal")
    result = make_notifier(teams=teams).notify([change()], trigger="sweep", correlation_id="c-9", now=NOW)
    assert result.delivered == []
    assert len(teams.requests) == 4 and sleeps == [0.5, 1.0, 2.0]
    [failure] = result.failures
    channel, payload_id, error = failure.split(": ", 2)
    assert channel == "teams" and error.startswith("HTTP 503")
    [logged] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert payload_id in logged.getMessage() and "giving up after 4 attempt(s)" in logged.getMessage()
    assert logged.payloadId == payload_id and logged.channel == "teams" and logged.outcome == "failed"
    assert logged.correlationId == "c-9"


def test_client_errors_are_not_retried(teams: TeamsWebhookSink, make_notifier, sleeps) -> None:
    teams.fail_next(1, status=400)
    result = make_notifier(teams=teams).notify([change()], trigger="sweep", correlation_id="c", now=NOW)
    assert len(teams.requests) == 1 and sleeps == [] and "HTTP 400" in result.failures[0]


def test_once_a_channel_gave_up_later_messages_get_one_try(teams: TeamsWebhookSink, make_notifier, sleeps) -> None:
    teams.fail_next(100, status=500)
    notifier = make_notifier(teams=teams, notify_style="each")
    changes = [change(name=f"vmss-{n}") for n in range(3)]
    result = notifier.notify(changes, trigger="sweep", correlation_id="c", now=NOW)
    assert len(result.failures) == 3
    assert len(teams.requests) == 4 + 1 + 1  # the first message retried 3 times, the others once


def test_the_webhook_url_never_shows(teams: TeamsWebhookSink, make_notifier, debug_logs) -> None:
    """Not in logs (ours or urllib3's debug lines), failures, reprs, even when the endpoint is gone."""
    notifier = make_notifier(teams=teams)
    teams.fail_next(1, status=500)
    ok = notifier.notify([change(name="a")], trigger="sweep", correlation_id="c", now=NOW)
    url, sig = teams.url, teams.signature
    teams.stop()  # connection refused: requests' exception text names the URL
    gone = notifier.notify([change(name="b")], trigger="sweep", correlation_id="c", now=NOW)
    assert ok.failures == [] and len(gone.failures) == 1 and "ConnectionError" in gone.failures[0]
    shown = [debug_logs.text, *(r.getMessage() for r in debug_logs.records), repr(notifier), *gone.failures]
    shown += [repr(ch) for ch in notifier.channels] + [str(vars(ch)) for ch in notifier.channels]
    for text in shown:
        assert sig not in text and url not in text
    assert any("POST ***" in r.getMessage() for r in debug_logs.records if r.name == "urllib3.connectionpool")


def test_redact_masks_signatures_in_any_text() -> None:
    assert (
        redact("https://x.example/a?api-version=1&sig=abc%2Fdef&sv=1")
        == "https://x.example/a?api-version=1&sig=***&sv=1"
    )
