"""`sinks.demo_sinks()`: the environment it hands the app works on its own, the files land, nothing stays up."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from autoheal.notify import Notifier
from autoheal.remediation.ledger import State
from autoheal.settings import load_settings
from sinks import demo_sinks

from .adaptive_card import validate_payload
from .conftest import change


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate()}


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


@pytest.mark.parametrize("email", ["acs", "smtp"])
def test_demo_sinks_env_is_all_the_app_needs(tmp_path, monkeypatch, email: str) -> None:
    before = _threads()
    out = tmp_path / "demo-out"
    with demo_sinks(out, email=email) as sinks:
        for name, value in sinks.env.items():
            monkeypatch.setenv(name, value)
        # no ca_bundle override: the clients trust the sinks through REQUESTS_CA_BUNDLE / SSL_CERT_FILE
        notifier = Notifier.from_settings(load_settings(), retry_delays=(), email_poll_interval=0)
        changes = [change(State.SUCCEEDED), change(State.PLANNED, name="vmss-api", mode="observe")]
        result = notifier.notify(changes, trigger="sweep", correlation_id="demo")
        assert result.failures == [] and len(result.delivered) == 2
        ports = [sinks.teams.port, sinks.email.port, sinks.topic.port]
        monkeypatch.undo()
    assert [p.name for p in sinks.files] == [
        "teams-card-01.json",
        "email-01.html",
        "email-01.txt",
        "outcome-events.json",
    ]
    events = json.loads((out / "outcome-events.json").read_text())
    assert [e["type"] for e in events] == ["VmssAutoheal.Remediation.Succeeded", "VmssAutoheal.Remediation.Planned"]
    card = json.loads((out / "teams-card-01.json").read_text())
    validate_payload(
        {
            "type": "message",
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
        }
    )
    html = (out / "email-01.html").read_text()
    assert "Would resume automatic repairs. Nothing was changed (observe mode)." in html
    assert (
        (out / "email-01.txt")
        .read_text()
        .startswith("Subject: [vmss-autoheal] DONE: 2 scale sets: 1 done, 1 would act")
    )
    assert ports and all(_refused(p) for p in ports)
    deadline = time.monotonic() + 60  # a timeout for a slow machine, not a speed bound
    while _threads() - before and time.monotonic() < deadline:  # the SDK's poller thread ends on its own
        time.sleep(0.02)
    assert _threads() - before == set()
