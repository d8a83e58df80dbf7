"""Fixtures for the notification tests: local sinks (one CA per session) and plain-data changes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from autoheal.model import ActionCode, Finding, FindingCode, ProposedAction, Severity
from autoheal.notify import Change, Notifier
from autoheal.notify.content import Message

try:  # the record type is moving to remediation/record.py (same fields)
    from autoheal.remediation.record import Record, State  # type: ignore[import-not-found]
except ImportError:
    from autoheal.remediation.ledger import Record, State
from autoheal.settings import default_settings
from sinks import AcsEmailSink, EventGridTopicSink, LocalTLS, SmtpSink, TeamsWebhookSink
from tests.builders import NOW, SUB

REFERENCE = (
    "Troubleshooting 'VMSS instances aren't repaired', cause 4 / resolution 4: resume automatic repairs "
    "(https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-automatic-instance-repairs)"
)


def scale_set(name: str = "vmss-web", rg: str = "rg-web") -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}"


def finding(
    code: FindingCode = FindingCode.REPAIRS_SUSPENDED,
    severity: Severity = Severity.ERROR,
    name: str = "vmss-web",
    action: ActionCode = ActionCode.RESUME_AUTOMATIC_REPAIRS,
    instance_ids: tuple[str, ...] = (),
) -> Finding:
    return Finding(
        code=code,
        severity=severity,
        scale_set_id=scale_set(name),
        summary="Automatic repairs are suspended since 2026-11-23T10:00:00Z",
        reference=REFERENCE,
        proposed_action=ProposedAction(action),
        instance_ids=instance_ids,
        evidence={"serviceName": "AutomaticRepairs", "serviceState": "Suspended", "policy": {"enabled": True}},
    )


def record(
    state: State = State.SUCCEEDED,
    *,
    name: str = "vmss-web",
    code: str = "repairs-suspended",
    target: str = "*",
    action: str = "resume-automatic-repairs",
    severity: str = "error",
    mode: str = "remediate",
    notified_state: str = "",
    notified_at: datetime | None = None,
    **extra: Any,
) -> Record:
    return Record(
        scale_set_id=scale_set(name),
        finding_code=code,
        target=target,
        action=action,
        state=state,
        severity=severity,
        summary=extra.pop("summary", "Automatic repairs are suspended since 2026-11-23T10:00:00Z"),
        mode=mode,
        attempts=extra.pop("attempts", 1),
        notified_state=notified_state,
        notified_at=notified_at,
        updated_at=NOW,
        **extra,
    )


def change(state: State = State.SUCCEEDED, previous: str = "", *, with_finding: bool = True, **kw: Any) -> Change:
    rec = record(state, **kw)
    found = finding(name=kw.get("name", "vmss-web")) if with_finding else None
    return Change(rec, previous, found)


def message(*changes: Change, trigger: str = "sweep") -> Message:
    from autoheal.notify.content import item_view

    return Message(
        payload_id="p-0123456789",
        trigger=trigger,
        correlation_id="corr-42",
        created_at=NOW,
        items=tuple(item_view(c, portal_url="https://portal.azure.com") for c in changes),
        portal_url="https://portal.azure.com",
        changes=changes,
    )


class Sleeps(list[float]):
    """A sleep function that records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(scope="session")
def tls() -> Iterator[LocalTLS]:
    with LocalTLS() as local:
        yield local


@pytest.fixture
def teams(tls: LocalTLS) -> Iterator[TeamsWebhookSink]:
    with TeamsWebhookSink(tls) as sink:
        yield sink


@pytest.fixture
def acs(tls: LocalTLS) -> Iterator[AcsEmailSink]:
    with AcsEmailSink(tls) as sink:
        yield sink


@pytest.fixture
def topic(tls: LocalTLS) -> Iterator[EventGridTopicSink]:
    with EventGridTopicSink(tls) as sink:
        yield sink


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_notifier(tls: LocalTLS, sleeps: Sleeps):
    """Notifier.from_settings with test-speed retries: make_notifier(teams=, acs=, smtp=, topic=sink, **settings)."""

    def make(
        *,
        teams: TeamsWebhookSink | None = None,
        acs: AcsEmailSink | None = None,
        smtp: SmtpSink | None = None,
        topic: EventGridTopicSink | None = None,
        retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0),
        **settings: Any,
    ) -> Notifier:
        values: dict[str, Any] = {"teams_min_severity": "info", "email_min_severity": "info"}
        if teams is not None:
            values["teams_webhook_url"] = teams.url
        if acs is not None or smtp is not None:
            values.update(email_sender="DoNotReply@contoso.azurecomm.net", email_recipients=("oncall@contoso.example",))
        if acs is not None:
            values["email_endpoint"] = acs.endpoint
        if topic is not None:
            values["events_endpoint"] = topic.endpoint
        if smtp is not None:
            values.update(smtp_host=smtp.host, smtp_port=smtp.port, smtp_starttls=smtp.starttls)
            if smtp.username:
                values.update(smtp_username=smtp.username, smtp_password=smtp._password)
        values.update(settings)
        return Notifier.from_settings(
            default_settings(**values),
            ca_bundle=tls.ca_file,
            retry_delays=retry_delays,
            sleep=sleeps,
            email_poll_interval=0,
            timeout=5,
        )

    return make


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


__all__ = ["NOW", "Record", "Sleeps", "State", "change", "finding", "message", "record", "scale_set", "timedelta"]
