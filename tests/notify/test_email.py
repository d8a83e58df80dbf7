"""E-mail through the real `EmailClient` (against a local ACS stand-in) and through smtplib (aiosmtpd)."""

from __future__ import annotations

import pytest

from autoheal.remediation.ledger import State
from sinks import AcsEmailSink, LocalTLS, SmtpSink

from .conftest import change


def test_acs_send_is_polled_to_succeeded(acs: AcsEmailSink, make_notifier) -> None:
    acs.polls_before_done = 2
    result = make_notifier(acs=acs).notify([change(State.FAILED, "running")], trigger="sweep", correlation_id="c-7")
    assert result.failures == [] and [r.notified_state for r in result.delivered] == ["failed"]
    [sent] = acs.sent
    assert sent.polls == 3  # Running, Running, Succeeded
    assert sent.to == ["oncall@contoso.example"]
    assert sent.message["senderAddress"] == "DoNotReply@contoso.azurecomm.net"
    assert sent.subject == "[vmss-autoheal] FAILED: vmss-web: automatic repairs are suspended"
    expected = "Failed: could not resume automatic repairs after 1 attempt."
    assert expected in sent.text and expected in sent.html
    assert sent.html.startswith("<!DOCTYPE html>")
    assert sent.message["headers"]["X-Autoheal-Correlation-Id"] == "c-7"
    assert sent.headers["authorization"].startswith("Bearer ")  # a token credential, as with the managed identity
    send, *polls = acs.requests
    assert (send.method, send.path, send.query["api-version"]) == ("POST", "/emails:send", "2025-09-01")
    assert {p.path for p in polls} == {f"/emails/operations/{sent.operation_id}"}


def test_acs_throttling_is_retried(acs: AcsEmailSink, make_notifier, sleeps) -> None:
    acs.fail_next(1, status=429, retry_after=3)
    result = make_notifier(acs=acs).notify([change()], trigger="sweep", correlation_id="c")
    assert result.failures == [] and len(acs.delivered) == 1 and sleeps == [3.0]


def test_acs_operation_failed_is_reported_not_resent(acs: AcsEmailSink, make_notifier, sleeps) -> None:
    acs.fail_next_operations(1)
    result = make_notifier(acs=acs).notify([change()], trigger="sweep", correlation_id="c")
    assert result.delivered == [] and len(acs.sent) == 1 and sleeps == []
    assert result.failures[0].startswith("email: ") and "ACS operation failed" in result.failures[0]


def test_smtp_plain(smtp: SmtpSink, make_notifier) -> None:
    held = change(State.HELD, reason="an instance action 4 min ago", reason_code="cooldown")
    result = make_notifier(smtp=smtp).notify([held], trigger="event", correlation_id="c")
    assert result.failures == [] and len(result.delivered) == 1
    [mail] = smtp.messages
    assert mail.rcpt_tos == ("oncall@contoso.example",) and not mail.tls
    assert mail.subject == "[vmss-autoheal] HELD BACK: vmss-web: automatic repairs are suspended"
    expected = "Held back for now, will resume automatic repairs later. An instance action 4 min ago."
    assert expected in mail.text and expected in mail.html
    assert mail.message["X-Autoheal-Payload-Id"] in mail.text


def test_smtp_starttls_and_login_keep_the_password_out_of_logs(tls: LocalTLS, make_notifier, debug_logs) -> None:
    password = "s3cret-smtp-passw0rd"
    with SmtpSink(starttls=True, username="autoheal", password=password, tls=tls) as server:
        notifier = make_notifier(smtp=server)
        result = notifier.notify([change()], trigger="sweep", correlation_id="c")
        assert result.failures == []
        [mail] = server.messages
        assert mail.tls and server.logins == ["autoheal"]
        server._password = "rotated"  # now the login fails (535): not retried, reported without the password
        failed = notifier.notify([change(name="other")], trigger="sweep", correlation_id="c")
    assert failed.delivered == [] and "SMTP 535" in failed.failures[0]
    for text in [debug_logs.text, repr(notifier), *failed.failures]:
        assert password not in text


def test_smtp_4xx_is_retried(smtp: SmtpSink, make_notifier, sleeps) -> None:
    smtp.fail_next(1)
    result = make_notifier(smtp=smtp).notify([change()], trigger="sweep", correlation_id="c")
    assert result.failures == [] and len(smtp.messages) == 1 and sleeps == [0.5]


def test_acs_wins_over_smtp_when_both_are_set(acs: AcsEmailSink, smtp: SmtpSink, make_notifier) -> None:
    notifier = make_notifier(acs=acs, smtp=smtp)
    notifier.notify([change()], trigger="sweep", correlation_id="c")
    assert len(acs.sent) == 1 and smtp.messages == []


@pytest.mark.parametrize("missing", ["email_sender", "email_recipients"])
def test_email_needs_sender_and_recipients(acs: AcsEmailSink, make_notifier, missing: str) -> None:
    notifier = make_notifier(acs=acs, **{missing: "" if missing == "email_sender" else ()})
    assert notifier.channels == []
