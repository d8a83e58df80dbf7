"""E-mail: Azure Communication Services (managed identity), or SMTP for shops without ACS.

Both send the same HTML and plain-text bodies, rendered from the same views as the Teams card.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from html import escape
from typing import Any

from ..model import Severity
from .channels import email_configured
from .content import HEX_BY_STYLE, MORE_HINT, PRODUCT, ItemView, Message, ScaleSetView
from .delivery import DeliveryError, Secret, parse_retry_after, redact

PAYLOAD_HEADER = "X-Autoheal-Payload-Id"
CORRELATION_HEADER = "X-Autoheal-Correlation-Id"


# -- rendering ----------------------------------------------------------------------------------------------------


def subject(message: Message) -> str:
    """'[vmss-autoheal] FAILED: 3 scale sets: 1 failed, 2 done' — the worst outcome first, never 'changes'."""
    return f"[{PRODUCT}] {message.heading}: {message.title}"


_MUTED = "#605e5c"


def _table(pairs: tuple[tuple[str, str], ...]) -> str:
    # valign/nowrap attributes instead of repeated inline styles: a digest of 50 items stays small
    rows = "".join(
        f'<tr><td valign="top" nowrap style="color:{_MUTED};padding-right:10px">{escape(k)}</td>'
        f'<td valign="top">{escape(v)}</td></tr>'
        for k, v in pairs
    )
    return f'<table role="presentation" cellpadding="1" cellspacing="0" style="font-size:13px">{rows}</table>'


def _link(text: str, url: str) -> str:
    return f'<a href="{escape(url, quote=True)}" style="color:#0f6cbd">{escape(text)}</a>'


def _detail_html(item: ItemView) -> str:
    links = item.links
    doc = _link(f"Microsoft: {links.doc_label}", links.doc_url) if links.doc_url else ""
    portal = _link(links.portal_label, links.portal_url)
    problem = f"{item.scale_set_name}: {item.problem}"
    return (
        f'<p style="margin:10px 0 2px;font-size:13px;font-weight:600">{escape(problem)}</p>'
        f"{_table(item.facts + item.evidence)}"
        f'<p style="margin:4px 0;font-size:13px">{" · ".join(x for x in (doc, portal) if x)}</p>'
        f'<p style="margin:2px 0 8px;font-size:12px;font-family:Consolas,Menlo,monospace;color:{_MUTED}">'
        f"{escape(links.az_command)}</p>"
    )


def _scale_set_html(group: ScaleSetView) -> str:
    colour = HEX_BY_STYLE.get(group.disposition.style, _MUTED)
    lines = "".join(f'<li style="margin:2px 0">{escape(item.line)}</li>' for item in group.items)
    return (
        f'<div style="border-left:4px solid {colour};padding:2px 0 2px 10px;margin:12px 0">'
        f'<p style="margin:0;font-size:15px"><b>{escape(group.name)}</b> '
        f'<span style="color:{_MUTED}">· {escape(group.resource_group)} · {escape(group.disposition.one)}</span></p>'
        f'<ul style="margin:4px 0;padding-left:18px;font-size:14px">{lines}</ul></div>'
    )


# Gmail clips an HTML body above about 102 KB behind "View entire message" (unverified against a Google
# document; the figure every deliverability guide quotes, e.g. spamresource.com, 2022-01).
MAX_HTML_BYTES = 95_000


def _html(message: Message, shown: list[ScaleSetView], detailed: int) -> str:
    colour = HEX_BY_STYLE[message.style]
    summary = "\n".join(_scale_set_html(g) for g in shown)
    details = "\n".join(_detail_html(i) for g in shown[:detailed] for i in g.items)
    hidden = len(message.scale_sets) - len(shown)
    notes = [f"Also: {note}." for note in message.notes if message.items]
    if hidden > 0:
        notes.append(f"{hidden} more scale set{'s' if hidden != 1 else ''}: {MORE_HINT}.")
    if len(shown) > detailed:
        notes.append(f"Details of the first {detailed} scale sets; the others: {MORE_HINT}.")
    more = "".join(f'<p style="font-size:13px">{escape(n)}</p>' for n in notes)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width">'
        f"<title>{escape(message.title)}</title></head>\n"
        '<body style="margin:0;padding:12px;font-family:Segoe UI,Helvetica,Arial,sans-serif;color:#242424">\n'
        '<div style="max-width:720px">\n'
        f'<div style="border-top:6px solid {colour};padding:8px 0 4px">'
        f'<p style="margin:0;font-size:12px;font-weight:700;color:{colour}">{escape(message.heading)} · {PRODUCT}</p>'
        f'<h2 style="margin:2px 0;font-size:19px">{escape(message.title)}</h2>'
        f'<p style="margin:0;color:{_MUTED};font-size:13px">{escape(message.subtitle)}</p></div>\n'
        f"{summary}\n{more}\n"
        f'<h3 style="margin:20px 0 4px;font-size:14px;border-top:1px solid #e1dfdd;padding-top:10px">Details</h3>\n'
        f"{details}\n"
        f'<p style="color:#8a8886;font-size:12px;border-top:1px solid #e1dfdd;padding-top:8px">'
        f"{escape(message.footer)}</p>\n</div>\n</body></html>\n"
    )


def render_html(message: Message, max_scale_sets: int = 50) -> str:
    """Inline styles only, no images, scripts, stylesheets or remote fonts: it renders the same in Outlook,
    Gmail and Apple Mail, and nothing is fetched when it is opened. Above MAX_HTML_BYTES, the details of
    fewer scale sets are printed (their summary lines stay), then fewer scale sets."""
    shown = message.scale_sets[: max(1, max_scale_sets)]
    detailed = len(shown)
    while True:
        html = _html(message, shown, detailed)
        if len(html.encode()) <= MAX_HTML_BYTES or (detailed == 0 and len(shown) == 1):
            return html
        if detailed > 0:
            detailed //= 2
        else:
            shown = shown[: max(1, len(shown) // 2)]


def render_email(message: Message, max_scale_sets: int = 50) -> tuple[str, str, str]:
    """(subject, html, plain text) of a message."""
    return subject(message), render_html(message, max_scale_sets), message.text(max_scale_sets)


def _validate(sender: str, recipients: tuple[str, ...]) -> None:
    if not sender or not recipients:
        raise ValueError("e-mail needs a sender address and at least one recipient")


# -- Azure Communication Services ---------------------------------------------------------------------------------


class AcsEmailChannel:
    """`EmailClient(endpoint, credential).begin_send(message)`, waiting for the operation to finish."""

    name = "email"

    def __init__(
        self,
        endpoint: str,
        sender: str,
        recipients: tuple[str, ...] | list[str],
        *,
        min_severity: str = "error",
        credential: Any = None,
        client_id: str = "",
        verify: bool | str = True,
        poll_interval: float = 2.0,
        timeout: float = 60.0,
        max_items: int = 50,
    ) -> None:
        _validate(sender, tuple(recipients))
        self.endpoint = endpoint
        self.sender = sender
        self.recipients = tuple(recipients)
        self.min_severity = Severity(min_severity)
        self.max_items = max_items
        self._credential = credential
        self._client_id = client_id
        self._verify = verify
        self._poll_interval = poll_interval
        self._timeout = timeout
        self._client: Any = None

    def __repr__(self) -> str:
        return f"AcsEmailChannel(endpoint={self.endpoint!r}, recipients={len(self.recipients)})"

    @classmethod
    def from_settings(cls, settings: Any, options: Any) -> AcsEmailChannel | None:
        if not settings.email_endpoint or not email_configured(settings):
            return None
        return cls(
            settings.email_endpoint,
            settings.email_sender,
            settings.email_recipients,
            min_severity=settings.email_min_severity,
            credential=options.credential,
            client_id=settings.client_id,
            verify=options.ca_bundle or True,
            poll_interval=options.email_poll_interval,
            timeout=options.email_timeout,
            max_items=options.email_max_items,
        )

    def _email_client(self) -> Any:
        if self._client is None:
            from azure.communication.email import EmailClient

            from ..credentials import default_credential

            credential = self._credential or default_credential(self.endpoint, self._client_id or None)
            # retries are ours (backoff, give up, log): the SDK's own policy would retry for minutes
            self._client = EmailClient(
                self.endpoint,
                credential,
                retry_total=0,
                connection_verify=self._verify,
                polling_interval=self._poll_interval,
            )
        return self._client

    def render(self, message: Message) -> dict[str, Any]:
        title, html, text = render_email(message, self.max_items)
        return {
            "senderAddress": self.sender,
            "recipients": {"to": [{"address": address} for address in self.recipients]},
            "content": {"subject": title, "plainText": text, "html": html},
            "headers": {PAYLOAD_HEADER: message.payload_id, CORRELATION_HEADER: message.correlation_id or "-"},
            "userEngagementTrackingDisabled": True,
        }

    def send(self, message: Message) -> None:
        from azure.core.exceptions import AzureError, HttpResponseError

        body = self.render(message)
        try:
            poller = self._email_client().begin_send(body)
            result = poller.result(timeout=self._timeout)
        except HttpResponseError as exc:
            status = exc.status_code
            code = getattr(getattr(exc, "error", None), "code", None) or exc.reason or ""
            if status is not None and 200 <= status < 300:  # the operation itself reported Failed/Canceled
                raise DeliveryError(f"ACS operation failed: {exc.message}", retryable=False) from None
            retryable = status is None or status in (408, 429) or status >= 500
            retry_after = None
            if exc.response is not None:
                retry_after = parse_retry_after(getattr(exc.response, "headers", {}).get("Retry-After"))
            raise DeliveryError(
                f"ACS HTTP {status} {code}".strip(), retryable=retryable, retry_after=retry_after
            ) from None
        except AzureError as exc:  # no answer (connection, TLS, timeout)
            raise DeliveryError(f"ACS {type(exc).__name__}: {exc.message}", retryable=True) from None
        if not poller.done():
            # Accepted (202) but not finished in time: do not send it again (that would duplicate it).
            return
        status = (result or {}).get("status", "")
        if str(status).lower() != "succeeded":
            error = (result or {}).get("error") or {}
            raise DeliveryError(
                f"ACS operation {status or 'unknown'}: {error.get('code', '')} {error.get('message', '')}".strip(),
                retryable=False,
            )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


# -- SMTP -----------------------------------------------------------------------------------------------------------


class SmtpChannel:
    """SMTP with STARTTLS (or implicit TLS on port 465) and optional login."""

    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        recipients: tuple[str, ...] | list[str],
        *,
        starttls: bool = True,
        username: str = "",
        password: str | Secret = "",
        min_severity: str = "error",
        ca_bundle: str | None = None,
        timeout: float = 10.0,
        max_items: int = 50,
    ) -> None:
        _validate(sender, tuple(recipients))
        self.host = host
        self.port = port
        self.sender = sender
        self.recipients = tuple(recipients)
        self.starttls = starttls
        self.username = username
        self._password = password if isinstance(password, Secret) else Secret(password)
        self.min_severity = Severity(min_severity)
        self.max_items = max_items
        self._ca_bundle = ca_bundle
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"SmtpChannel(host={self.host!r}, port={self.port}, starttls={self.starttls}, password=<secret>)"

    @classmethod
    def from_settings(cls, settings: Any, options: Any) -> SmtpChannel | None:
        """SMTP only when no ACS endpoint is set (ACS wins when both are)."""
        if settings.email_endpoint or not settings.smtp_host or not email_configured(settings):
            return None
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            settings.email_sender,
            settings.email_recipients,
            starttls=settings.smtp_starttls,
            username=settings.smtp_username,
            password=settings.smtp_password,
            min_severity=settings.email_min_severity,
            ca_bundle=options.ca_bundle,
            timeout=options.timeout,
            max_items=options.email_max_items,
        )

    def render(self, message: Message) -> EmailMessage:
        title, html, text = render_email(message, self.max_items)
        mail = EmailMessage()
        mail["Subject"] = title
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.recipients)
        mail["Date"] = formatdate(localtime=False, usegmt=True)
        mail["Message-ID"] = make_msgid(idstring=message.payload_id, domain=self.sender.rpartition("@")[2] or None)
        mail[PAYLOAD_HEADER] = message.payload_id
        mail[CORRELATION_HEADER] = message.correlation_id or "-"
        mail.set_content(text)
        mail.add_alternative(html, subtype="html")
        return mail

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self._ca_bundle) if self._ca_bundle else ssl.create_default_context()

    def send(self, message: Message) -> None:
        mail = self.render(message)
        try:
            if self.port == 465:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self._timeout, context=self._tls())
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self._timeout)
            with smtp:
                smtp.ehlo()
                if self.starttls and self.port != 465:
                    smtp.starttls(context=self._tls())
                    smtp.ehlo()
                if self.username:
                    smtp.login(self.username, self._password.reveal())
                smtp.send_message(mail)
        except smtplib.SMTPResponseException as exc:
            # 4xx: try again later; 5xx (bad credentials, refused sender): retrying will not help
            raise DeliveryError(
                f"SMTP {exc.smtp_code} {_decode(exc.smtp_error)}", retryable=400 <= exc.smtp_code < 500
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"SMTP recipients refused: {sorted(exc.recipients)}", retryable=False) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP {type(exc).__name__}: {exc}", retryable=True) from None


def _decode(value: Any) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return redact(" ".join(text.split())[:200])
