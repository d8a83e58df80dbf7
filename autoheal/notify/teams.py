"""Microsoft Teams through a Workflows webhook ("When a Teams webhook request is received").

The Office 365 connectors (`webhook.office.com`) are retired; a Workflows flow accepts
`{"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
"content": <Adaptive Card>}]}` and answers 202. The URL carries its own signature (`sig=`): it is a
secret, registered for redaction and never put in a repr, a log line or an error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ..model import Severity
from .content import Message
from .delivery import DeliveryError, Secret, parse_retry_after, redact

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_VERSION = "1.4"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
COLOR_BY_STYLE = {"attention": "Attention", "warning": "Warning", "accent": "Accent", "good": "Good"}


# -- the card -------------------------------------------------------------------------------------------------


def _text(text: str, **props: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **props}


def _facts(pairs: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    return {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in pairs]}


def _open(title: str, url: str) -> dict[str, Any]:
    return {"type": "Action.OpenUrl", "title": title, "url": url}


def _item_actions(item: Any) -> list[dict[str, Any]]:
    actions = [_open("Open in Azure portal", item.portal_url)]
    if item.reference_url:
        actions.append(_open("Documented fix", item.reference_url))
    return actions


def _item_body(item: Any, *, with_title: bool) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = []
    if with_title:
        body.append(_text(item.title, weight="Bolder", color=COLOR_BY_STYLE[item.style]))
    body.append(_text(item.headline, weight="Bolder" if not with_title else "Default"))
    body.append(_facts(item.facts))
    if item.evidence:
        body.append(_text("Evidence", weight="Bolder", spacing="Medium", size="Small"))
        body.append(_facts(item.evidence))
    if item.reference_text:
        reference = f"[{item.reference_text}]({item.reference_url})" if item.reference_url else item.reference_text
        body.append(_text(f"Documented fix: {reference}", size="Small", spacing="Medium"))
    return body


def build_card(message: Message) -> dict[str, Any]:
    """The Adaptive Card (1.4) of a message: header in the severity colour, facts, evidence, links."""
    header_lines = [_text(message.title, weight="Bolder", size="Medium")]
    subtitle = message.subtitle
    header_lines.append(_text(subtitle, isSubtle=True, spacing="None", size="Small"))
    body: list[dict[str, Any]] = [{"type": "Container", "style": message.style, "bleed": True, "items": header_lines}]
    if message.digest:
        for item in message.items:
            items = _item_body(item, with_title=True)
            items.append({"type": "ActionSet", "actions": _item_actions(item)})
            body.append({"type": "Container", "separator": True, "spacing": "Medium", "items": items})
        actions = [
            _open(
                "Scale sets in Azure portal",
                f"{message.portal_url.rstrip('/')}/#browse/Microsoft.Compute%2FvirtualMachineScaleSets",
            )
        ]
    else:
        item = message.items[0]
        body += _item_body(item, with_title=False)
        actions = _item_actions(item)
    body.append(_text(message.footer, isSubtle=True, size="Small", spacing="Medium"))
    return {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "msteams": {"width": "Full"},
        "fallbackText": message.title,
        "speak": message.title,
        "body": body,
        "actions": actions,
    }


def build_payload(message: Message) -> dict[str, Any]:
    """What the Workflows webhook receives: a message with the card as its one attachment."""
    return {
        "type": "message",
        "summary": message.title,
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": build_card(message)}],
    }


# -- the channel -------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _no_http_instrumentation() -> Iterator[None]:
    """Keep OpenTelemetry's requests/urllib3 instrumentation from recording the signed URL as a dependency."""
    try:
        from opentelemetry import context
        from opentelemetry.context import _SUPPRESS_HTTP_INSTRUMENTATION_KEY
    except ImportError:  # pragma: no cover - the API is a dependency
        yield
        return
    token = context.attach(context.set_value(_SUPPRESS_HTTP_INSTRUMENTATION_KEY, True))
    try:
        yield
    finally:
        context.detach(token)


class TeamsChannel:
    """POSTs one Adaptive Card message per `send()` to a Teams Workflows webhook."""

    name = "teams"

    def __init__(
        self,
        webhook_url: str | Secret,
        *,
        min_severity: str = "warning",
        verify: bool | str = True,
        timeout: float = 10.0,
        max_items: int = 8,
        session: Any = None,
    ) -> None:
        self._url = webhook_url if isinstance(webhook_url, Secret) else Secret(webhook_url)
        self.min_severity = Severity(min_severity)
        self.max_items = max_items
        self._verify = verify
        self._timeout = timeout
        self._session = session

    def __repr__(self) -> str:
        return f"TeamsChannel(webhook=<secret>, min_severity={self.min_severity.value!r})"

    def render(self, message: Message) -> dict[str, Any]:
        return build_payload(message)

    def send(self, message: Message) -> None:
        import requests  # azure-core depends on it; imported here to keep module import cheap

        payload = build_payload(message)
        session = self._session or requests
        try:
            with _no_http_instrumentation():
                response = session.post(
                    self._url.reveal(),
                    json=payload,
                    timeout=self._timeout,
                    verify=self._verify,
                    headers={"User-Agent": "vmss-autoheal", "X-Autoheal-Payload-Id": message.payload_id},
                )
        except requests.RequestException as exc:
            # requests puts the URL (with its signature) in the message: keep only the class and a redacted cause
            raise DeliveryError(f"{type(exc).__name__}: {redact(str(exc))}", retryable=True) from None
        status = response.status_code
        if 200 <= status < 300:
            return
        detail = redact(" ".join(response.text.split())[:200]) if response.text else ""
        raise DeliveryError(
            f"HTTP {status}{f': {detail}' if detail else ''}",
            retryable=status in (408, 429) or status >= 500,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
