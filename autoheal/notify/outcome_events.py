"""Outcome events: every announced ledger state change as a CloudEvent 1.0 on an Event Grid topic.

Other automation (ServiceNow, PagerDuty, Logic Apps, Azure Monitor) subscribes to the topic without code:
- `type`: `VmssAutoheal.Remediation.<State>` (Planned, Running, Verifying, Succeeded, Failed, Held, Resolved);
- `source`: the scale set's resource id; `subject`: `findings/<code>` (+ `/instances/<id>` for one instance),
  so an Event Grid subscription can filter with `subjectBeginsWith`;
- `id`: stable for one record in one state at one time, so a retried publish is a duplicate a consumer can drop;
- `data`: the ledger record (camelCase JSON), its previous state, and the readable outcome sentence.

Published with `EventGridPublisherClient` (azure-eventgrid) and the managed identity, which needs the
"EventGrid Data Sender" role on the topic (Microsoft: https://learn.microsoft.com/azure/event-grid/
authenticate-with-microsoft-entra-id; CloudEvents schema: https://learn.microsoft.com/azure/event-grid/
cloud-event-schema). Same dedupe and retry policy as Teams and e-mail: the `Notifier` decides what is due and
retries a failed publish; the SDK's own retries are off.
"""

from __future__ import annotations

import hashlib
from dataclasses import fields
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from ..model import Severity, iso
from .content import Message
from .delivery import DeliveryError, parse_retry_after

if TYPE_CHECKING:
    from . import Change

EVENT_TYPE_PREFIX = "VmssAutoheal.Remediation."
# Record fields that are bookkeeping, not part of the outcome a subscriber reads.
_INTERNAL = frozenset({"etag", "lease_until", "runs", "notified_state", "notified_at"})


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    return value


def record_data(change: Change, sentence: str = "") -> dict[str, Any]:
    """The record as the event's `data`: camelCase, ISO times, plus previousState and the outcome sentence."""
    record = change.record
    data: dict[str, Any] = {
        _camel(f.name): _json(getattr(record, f.name)) for f in fields(record) if f.name not in _INTERNAL
    }
    data["previousState"] = change.previous_state
    if sentence:
        data["outcome"] = sentence
    if change.finding is not None:
        data["reference"] = change.finding.reference
    return data


def event_type(state: str) -> str:
    return EVENT_TYPE_PREFIX + state.title()


def event_subject(finding_code: str, target: str) -> str:
    return f"findings/{finding_code}" + (f"/instances/{target}" if target not in ("", "*") else "")


def event_id(change: Change) -> str:
    record = change.record
    stamp = record.updated_at.isoformat() if record.updated_at else ""
    key = "|".join((record.scale_set_id.lower(), record.finding_code, record.target, record.state.value, stamp))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def cloud_events(message: Message) -> list[Any]:
    """One `azure.core.messaging.CloudEvent` per change of the message."""
    from azure.core.messaging import CloudEvent

    sentences = {(i.scale_set_id.lower(), i.finding_code): i.sentence for i in message.items}
    out = []
    for change in message.changes:
        record = change.record
        out.append(
            CloudEvent(
                source=record.scale_set_id,
                type=event_type(record.state.value),
                subject=event_subject(record.finding_code, record.target),
                data=record_data(change, sentences.get((record.scale_set_id.lower(), record.finding_code), "")),
                id=event_id(change),
                time=record.updated_at or message.created_at,
                datacontenttype="application/json",
                extensions={"correlationid": message.correlation_id or "none"},
            )
        )
    return out


class EventGridChannel:
    """Publishes each announced change as a CloudEvent to an Event Grid topic (managed identity)."""

    name = "events"

    def __init__(
        self,
        endpoint: str,
        *,
        min_severity: str = "info",
        credential: Any = None,
        client_id: str = "",
        verify: bool | str = True,
        max_items: int = 100,
    ) -> None:
        self.endpoint = endpoint
        self.min_severity = Severity(min_severity)
        self.max_items = max_items
        self._credential = credential
        self._client_id = client_id
        self._verify = verify
        self._client: Any = None

    def __repr__(self) -> str:
        return f"EventGridChannel(endpoint={self.endpoint!r})"

    @classmethod
    def from_settings(cls, settings: Any, options: Any) -> EventGridChannel | None:
        if not settings.events_endpoint:
            return None
        return cls(
            settings.events_endpoint,
            credential=options.credential,
            client_id=settings.client_id,
            verify=options.ca_bundle or True,
        )

    def _publisher(self) -> Any:
        if self._client is None:
            from azure.core.pipeline.transport import RequestsTransport

            from ..credentials import default_credential

            publisher: Any
            try:
                # azure-eventgrid 4.22.1's public client drops every keyword (retry_total, transport) for a basic
                # (custom) topic before building the basic-tier client it wraps (azure/eventgrid/_patch.py), so
                # the SDK would retry on its own and ignore the CA: build that basic-tier client directly.
                from azure.eventgrid._legacy import EventGridPublisherClient as publisher
            except ImportError:  # pragma: no cover - a later SDK: the public client
                from azure.eventgrid import EventGridPublisherClient as publisher

            credential = self._credential or default_credential(self.endpoint, self._client_id or None)
            transport = RequestsTransport(connection_verify=self._verify)
            # retries are ours (the Notifier's backoff, then an error log), not the SDK's
            self._client = publisher(self.endpoint, credential, retry_total=0, transport=transport)
        return self._client

    def render(self, message: Message) -> list[dict[str, Any]]:
        """The CloudEvents as JSON (what the topic receives), for tests and the demo."""
        return [_to_dict(e) for e in cloud_events(message)]

    def send(self, message: Message) -> None:
        from azure.core.exceptions import AzureError, HttpResponseError

        events = cloud_events(message)
        try:
            # Event Grid takes at most 1 MB per publish: `max_items` records (about 1.5 KB each) per call. A retry
            # after a partial failure repeats the earlier batches with the same ids, which consumers can drop.
            for start in range(0, len(events), max(1, self.max_items)):
                self._publisher().send(events[start : start + max(1, self.max_items)])
        except HttpResponseError as exc:
            status = exc.status_code
            retry_after = None
            if exc.response is not None:
                retry_after = parse_retry_after(getattr(exc.response, "headers", {}).get("Retry-After"))
            raise DeliveryError(
                f"Event Grid HTTP {status} {exc.reason or ''}".strip(),
                retryable=status is None or status in (408, 429) or status >= 500,
                retry_after=retry_after,
            ) from None
        except AzureError as exc:  # no answer (connection, TLS, timeout)
            raise DeliveryError(f"Event Grid {type(exc).__name__}: {exc.message}", retryable=True) from None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _to_dict(event: Any) -> dict[str, Any]:
    out = {
        "specversion": "1.0",
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "subject": event.subject,
        "time": _json(event.time),
        "datacontenttype": event.datacontenttype,
        "data": event.data,
    }
    out.update(event.extensions or {})
    return out
