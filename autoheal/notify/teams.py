"""Microsoft Teams through a Workflows webhook ("When a Teams webhook request is received").

The Office 365 connectors (`webhook.office.com`) are retired; a Workflows flow accepts
`{"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
"content": <Adaptive Card>}]}` and answers 202. The URL carries its own signature (`sig=`): it is a
secret, registered for redaction and never put in a repr, a log line or an error.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from ..model import Severity
from .content import MORE_HINT, PRODUCT, ItemView, Message, ScaleSetView
from .delivery import DeliveryError, Secret, parse_retry_after, redact
from .evidence import MAX_FACTS

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
# Teams renders Adaptive Cards up to 1.5 ("Teams is also limited to version 1.5",
# https://learn.microsoft.com/microsoft-copilot-studio/guidance/adaptive-cards-overview); 1.4 keeps older mobile
# clients safe and has everything used here (Action.ToggleVisibility and fontType are 1.2, ColumnSet 1.0).
CARD_VERSION = "1.4"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
# "The message size limit is 28 KB" (https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/
# how-to/add-incoming-webhook); Workflows' Teams connector says "about 28 KB", above which the post fails with
# "Request Entity too large" (https://learn.microsoft.com/connectors/teams/, known issues). Read as decimal KB.
MAX_PAYLOAD_BYTES = 28_000
COLOR_BY_STYLE = {"attention": "Attention", "warning": "Warning", "accent": "Accent", "good": "Good"}


# -- the card -------------------------------------------------------------------------------------------------


def _text(text: str, **props: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **props}


def _facts(pairs: tuple[tuple[str, str], ...], **props: Any) -> dict[str, Any]:
    return {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in pairs], **props}


def _links(item: ItemView) -> dict[str, Any]:
    links = item.links
    doc = f"[Microsoft: {links.doc_label}]({links.doc_url})" if links.doc_url else ""
    portal = f"[{links.portal_label}]({links.portal_url})"
    return _text(" · ".join(x for x in (doc, portal) if x), size="Small", spacing="Small")


def _card_facts(item: ItemView) -> tuple[tuple[str, str], ...]:
    """The block is headed by the scale set already: its fact row would only repeat it."""
    return tuple((k, v) for k, v in item.facts if k != "Scale set")


def _detail(item: ItemView, *, evidence: int, facts: bool) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = [
        _text(f"**{item.problem[:1].upper() + item.problem[1:]}**", size="Small", spacing="Medium")
    ]
    if facts:
        body.append(_facts(_card_facts(item), spacing="Small"))
        body.append(_links(item))
    if evidence and item.evidence:
        body.append(_facts(item.evidence[:evidence], spacing="Small"))
    body.append(_text(item.links.az_command, fontType="Monospace", size="Small", spacing="Small", isSubtle=True))
    return body


def _scale_set(group: ScaleSetView, index: int, *, evidence: int, expanded: bool) -> dict[str, Any]:
    """One scale set: its name, one line per change, and a 'Details' toggle that unfolds the rest.

    `expanded` (a card about one scale set): the facts and links show at once; the evidence and the `az`
    command stay folded. In a digest everything but the lines is folded."""
    detail_id = f"details-{index}"
    title = "Evidence" if expanded else "Details"
    toggle = {"type": "Action.ToggleVisibility", "title": title, "targetElements": [detail_id]}
    # the name and the toggle share a row: a digest of 8 scale sets stays one screen tall
    name_row = {
        "type": "ColumnSet",
        "columns": [
            {
                "type": "Column",
                "width": "stretch",
                "verticalContentAlignment": "Center",
                "items": [
                    _text(f"**{group.name}** · {group.resource_group}", color=COLOR_BY_STYLE[group.disposition.style])
                ],
            },
            {"type": "Column", "width": "auto", "items": [{"type": "ActionSet", "actions": [toggle]}]},
        ],
    }
    items: list[dict[str, Any]] = [name_row]
    items += [_text(item.line, spacing="None", size="Small") for item in group.items]
    details: list[dict[str, Any]] = []
    for item in group.items:
        if expanded:
            items += [_facts(_card_facts(item), spacing="Small"), _links(item)]
        details += _detail(item, evidence=evidence, facts=not expanded)
    items.append({"type": "Container", "id": detail_id, "isVisible": False, "items": details})
    return {"type": "Container", "separator": True, "spacing": "Medium", "items": items}


def build_card(message: Message, *, max_scale_sets: int = 8, evidence: int = MAX_FACTS) -> dict[str, Any]:
    """The Adaptive Card of a message: a header in the colour of the worst outcome, a compact summary, one
    block per scale set (top `max_scale_sets`, worst first) with its details folded away."""
    groups = message.scale_sets
    shown = groups[: max(1, max_scale_sets)]
    header = [
        _text(f"{message.heading} · {PRODUCT}", weight="Bolder", size="Small", color=COLOR_BY_STYLE[message.style]),
        _text((message.title), weight="Bolder", size="Medium", spacing="None"),
        _text((message.subtitle), isSubtle=True, spacing="None", size="Small"),
    ]
    body: list[dict[str, Any]] = [{"type": "Container", "style": message.style, "bleed": True, "items": header}]
    body += [_text(f"Also: {note}.", size="Small", spacing="Small") for note in message.notes if groups]
    expanded = len(groups) == 1
    body += [_scale_set(group, n, evidence=evidence, expanded=expanded) for n, group in enumerate(shown, 1)]
    hidden = len(groups) - len(shown)
    if hidden > 0:
        body.append(
            _text(
                f"{hidden} more scale set{'s' if hidden != 1 else ''} ({_counts_of(groups[len(shown) :])}): "
                f"{(MORE_HINT)}.",
                separator=True,
                spacing="Medium",
                size="Small",
            )
        )
    body.append(_text((message.footer), isSubtle=True, size="Small", spacing="Medium"))
    card: dict[str, Any] = {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "msteams": {"width": "Full"},
        "fallbackText": f"{message.heading}: {message.title}",
        "speak": f"{message.heading}: {message.title}",
        "body": body,
    }
    return card


def _counts_of(groups: list[ScaleSetView]) -> str:
    counts: dict[Any, int] = {}
    for group in groups:
        for item in group.items:
            counts[item.disposition] = counts.get(item.disposition, 0) + 1
    return ", ".join(d.count(counts[d]) for d in sorted(counts, key=lambda d: -d.rank))


def _wrap(card: dict[str, Any], summary: str) -> dict[str, Any]:
    return {
        "type": "message",
        "summary": summary,
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}],
    }


def payload_size(payload: dict[str, Any]) -> int:
    """Bytes on the wire, as `requests` serializes `json=` (ASCII-escaped JSON)."""
    return len(json.dumps(payload).encode("utf-8"))


def build_payload(message: Message, *, max_scale_sets: int = 8) -> dict[str, Any]:
    """What the Workflows webhook receives: a message with the card as its one attachment, shrunk until it
    fits Teams' size limit: fewer evidence facts per finding first (8, 4, 2, none), then fewer scale sets in
    full (halved each round; the rest are counted)."""
    summary = f"{message.heading}: {message.title}"
    count = max(1, max_scale_sets)
    while True:
        for evidence in (MAX_FACTS, 4, 2, 0):
            payload = _wrap(build_card(message, max_scale_sets=count, evidence=evidence), summary)
            if payload_size(payload) <= MAX_PAYLOAD_BYTES:
                return payload
        if count == 1:
            raise ValueError(f"a one-scale-set card is above {MAX_PAYLOAD_BYTES} bytes")  # a bug: clip() bounds it
        count = max(1, count // 2)


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

    @classmethod
    def from_settings(cls, settings: Any, options: Any) -> TeamsChannel | None:
        if not settings.teams_webhook_url:
            return None
        return cls(
            settings.teams_webhook_url,
            min_severity=settings.teams_min_severity,
            verify=options.ca_bundle or True,
            timeout=options.timeout,
            max_items=options.teams_max_items,
            session=options.session,
        )

    def render(self, message: Message) -> dict[str, Any]:
        return build_payload(message, max_scale_sets=self.max_items)

    def send(self, message: Message) -> None:
        import requests  # azure-core depends on it; imported here to keep module import cheap

        payload = self.render(message)
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
