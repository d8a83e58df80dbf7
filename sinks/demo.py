"""Sinks for `make demo`: a Teams webhook receiver, an e-mail endpoint and an Event Grid topic, and what they
received on disk."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._tls import LocalTLS
from .acs import AcsEmailSink
from .eventgrid import EventGridTopicSink
from .smtp import SmtpSink
from .teams import TeamsWebhookSink

DEMO_SENDER = "DoNotReply@demo.azurecomm.net"
DEMO_RECIPIENTS = "oncall@contoso.example"
DEMO_TENANT = "8f2b6c1e-3d4a-4e5f-9a8b-7c6d5e4f3a2b"  # made up, like the emulator's subscription: portal links


@dataclass
class DemoSinks:
    """What `demo_sinks()` yields: the environment for the app, the running sinks, and (after exit) the files."""

    env: dict[str, str]
    teams: TeamsWebhookSink
    email: AcsEmailSink | SmtpSink
    out_dir: Path
    topic: EventGridTopicSink | None = None
    files: list[Path] = field(default_factory=list)

    def write(self) -> list[Path]:
        """Write what the sinks received so far: teams-card-NN.json, email-NN.html, email-NN.txt and
        outcome-events.json (the CloudEvents the topic accepted, in order)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for old in [*self.out_dir.glob("teams-card-*.json"), *self.out_dir.glob("email-*.*")]:
            old.unlink()
        (self.out_dir / "outcome-events.json").unlink(missing_ok=True)
        files: list[Path] = []
        for n, card in enumerate(self.teams.cards, 1):
            path = self.out_dir / f"teams-card-{n:02d}.json"
            path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
            files.append(path)
        for n, (subject, html, text) in enumerate(_emails(self.email), 1):
            html_path = self.out_dir / f"email-{n:02d}.html"
            html_path.write_text(html)
            text_path = self.out_dir / f"email-{n:02d}.txt"
            text_path.write_text(f"Subject: {subject}\n\n{text}\n")
            files += [html_path, text_path]
        if self.topic is not None and self.topic.events:
            path = self.out_dir / "outcome-events.json"
            path.write_text(json.dumps(self.topic.events, indent=2, ensure_ascii=False) + "\n")
            files.append(path)
        self.files = files
        return files


def _emails(sink: AcsEmailSink | SmtpSink) -> list[tuple[str, str, str]]:
    if isinstance(sink, AcsEmailSink):
        return [(s.subject, s.html, s.text) for s in sink.sent]
    return [(m.subject, m.html, m.text) for m in sink.messages]


@contextlib.contextmanager
def demo_sinks(out_dir: str | Path, *, email: str = "acs", min_severity: str | None = "info") -> Iterator[DemoSinks]:
    """Start a Teams Workflows stand-in, an e-mail endpoint (`email="acs"` or `"smtp"`) and an Event Grid topic
    on loopback.

    Yields `DemoSinks` whose `env` holds the app settings that point the app at them, plus the trust the
    HTTP clients need for the sinks' private CA:

    - `REQUESTS_CA_BUNDLE` (and `SSL_CERT_FILE`): a bundle of the public roots plus the sinks' CA. `requests`
      (the webhook) and azure-core's requests transport (`EmailClient`) read REQUESTS_CA_BUNDLE when no
      explicit `connection_verify` is given; `ssl.create_default_context()` (SMTP STARTTLS) reads SSL_CERT_FILE.
      Clients with their own explicit CA (the ARM emulator's `connection_verify`) are unaffected.

    Apply `env` only while the block runs (e.g. `unittest.mock.patch.dict(os.environ, sinks.env)`): the CA
    files are deleted on exit. On exit the received cards, e-mails and events are written to `out_dir`
    (`sinks.files` lists them).
    """
    if email not in ("acs", "smtp"):
        raise ValueError("email must be 'acs' or 'smtp'")
    out = Path(out_dir)
    with contextlib.ExitStack() as stack:
        tls = stack.enter_context(LocalTLS())
        bundle = tls.bundle_with_public_roots(tls.directory / "bundle.pem")
        teams = stack.enter_context(TeamsWebhookSink(tls))
        topic = stack.enter_context(EventGridTopicSink(tls))
        env = {
            "AUTOHEAL_TEAMS_WEBHOOK_URL": teams.url,
            "AUTOHEAL_EVENTS_ENDPOINT": topic.endpoint,
            "AZURE_TENANT_ID": DEMO_TENANT,
            "AUTOHEAL_EMAIL_SENDER": DEMO_SENDER,
            "AUTOHEAL_EMAIL_RECIPIENTS": DEMO_RECIPIENTS,
            "REQUESTS_CA_BUNDLE": bundle,
            "SSL_CERT_FILE": bundle,
        }
        mail: Any
        if email == "acs":
            mail = stack.enter_context(AcsEmailSink(tls))
            env["AUTOHEAL_EMAIL_ENDPOINT"] = mail.endpoint
        else:
            mail = stack.enter_context(SmtpSink(starttls=True, username="autoheal", password="demo-only", tls=tls))
            env.update(
                AUTOHEAL_SMTP_HOST=mail.host,
                AUTOHEAL_SMTP_PORT=str(mail.port),
                AUTOHEAL_SMTP_STARTTLS="true",
                AUTOHEAL_SMTP_USERNAME="autoheal",
                AUTOHEAL_SMTP_PASSWORD="demo-only",
            )
        if min_severity:
            env["AUTOHEAL_TEAMS_MIN_SEVERITY"] = min_severity
            env["AUTOHEAL_EMAIL_MIN_SEVERITY"] = min_severity
        sinks = DemoSinks(env=env, teams=teams, email=mail, out_dir=out, topic=topic)
        try:
            yield sinks
        finally:
            sinks.write()
