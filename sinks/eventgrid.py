"""A stand-in for an Event Grid custom topic receiving CloudEvents 1.0, for the real `EventGridPublisherClient`.

What it checks, and where that comes from:
- `POST /api/events` with `Content-Type: application/cloudevents-batch+json` and a JSON array of events: the
  Event Grid CloudEvents schema (https://learn.microsoft.com/azure/event-grid/cloud-event-schema) and the
  azure-eventgrid client (azure/eventgrid/_legacy/_publisher_client.py sends that content type);
- `Authorization: Bearer <token>` (Microsoft Entra ID, the managed identity); a key or SAS header
  (`aeg-sas-key`, `aeg-sas-token`) is refused here because the app must never use one
  (https://learn.microsoft.com/azure/event-grid/authenticate-with-microsoft-entra-id);
- every event has the CloudEvents 1.0 required attributes `specversion` ("1.0"), `id`, `source`, `type`
  (non-empty strings), optional `subject`/`datacontenttype` strings and an RFC 3339 `time`; extension
  names are lower-case letters and digits (CloudEvents spec v1.0.2, "Attribute Naming Convention",
  github.com/cloudevents/spec cloudevents/spec.md);
- an event is at most 1 MB (Event Grid quotas; unverified here whether the limit counts the batch or each
  event: the stand-in checks each event and the batch against 1 MB).
Accepted events are stored; the answer is 200 with an empty body, as Event Grid answers a publish.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime
from typing import Any

from ._https import HttpsSink, Received, Reply, json_reply
from ._tls import LocalTLS

CONTENT_TYPE = "application/cloudevents-batch+json"
MAX_BYTES = 1024 * 1024
_REQUIRED = ("id", "source", "type")
_OPTIONAL_STRINGS = ("subject", "datacontenttype", "dataschema")
_EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")
_KNOWN = {"specversion", "data", "data_base64", "time", *_REQUIRED, *_OPTIONAL_STRINGS}


def problems(event: Any) -> list[str]:
    """What makes `event` not a CloudEvent 1.0 (empty when it is one)."""
    if not isinstance(event, dict):
        return ["an event must be a JSON object"]
    found = []
    if event.get("specversion") != "1.0":
        found.append(f"specversion must be '1.0', not {event.get('specversion')!r}")
    for name in _REQUIRED:
        if not isinstance(event.get(name), str) or not event[name]:
            found.append(f"{name} must be a non-empty string")
    for name in _OPTIONAL_STRINGS:
        if name in event and not isinstance(event[name], str):
            found.append(f"{name} must be a string")
    if "time" in event:
        try:
            datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00"))
        except ValueError:
            found.append(f"time is not RFC 3339: {event['time']!r}")
    for name in set(event) - _KNOWN:
        if not _EXTENSION_NAME.match(name):
            found.append(f"extension attribute {name!r} must be 1-20 lower-case letters or digits")
    if len(json.dumps(event).encode()) > MAX_BYTES:
        found.append("an event is larger than 1 MB")
    return found


class EventGridTopicSink(HttpsSink):
    def __init__(self, tls: LocalTLS | None = None, *, expected_token: str | None = None) -> None:
        super().__init__(tls)
        self.expected_token = expected_token  # None: any bearer token (the app's loopback static token)
        self.events: list[dict[str, Any]] = []
        self._failures: list[tuple[int, dict[str, str]]] = []
        self._lock_events = threading.Lock()

    @property
    def endpoint(self) -> str:
        """What AUTOHEAL_EVENTS_ENDPOINT is set to (a topic's endpoint ends in /api/events)."""
        return f"{self.base_url}/api/events"

    def fail_next(self, count: int, status: int = 503, retry_after: float | None = None) -> None:
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        with self._lock_events:
            self._failures += [(status, headers)] * count

    def handle(self, request: Received) -> Reply:
        if request.method != "POST" or request.path != "/api/events":
            return json_reply(404, {"error": {"code": "NotFound", "message": "POST /api/events"}})
        if "aeg-sas-key" in request.headers or "aeg-sas-token" in request.headers:
            return json_reply(
                401, {"error": {"code": "Unauthorized", "message": "keys are not accepted: use Entra ID"}}
            )
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or not token or (self.expected_token is not None and token != self.expected_token):
            return json_reply(401, {"error": {"code": "Unauthorized", "message": "a bearer token is required"}})
        with self._lock_events:
            failure = self._failures.pop(0) if self._failures else None
        if failure:
            status, headers = failure
            return json_reply(status, {"error": {"code": "InjectedFault", "message": f"injected {status}"}}, headers)
        if not request.headers.get("content-type", "").startswith(CONTENT_TYPE):
            return json_reply(400, {"error": {"code": "BadRequest", "message": f"Content-Type {CONTENT_TYPE}"}})
        if len(request.body) > MAX_BYTES:
            return json_reply(413, {"error": {"code": "RequestEntityTooLarge", "message": "batch above 1 MB"}})
        try:
            batch = request.json()
        except ValueError:
            return json_reply(400, {"error": {"code": "BadRequest", "message": "body is not JSON"}})
        if not isinstance(batch, list) or not batch:
            return json_reply(400, {"error": {"code": "BadRequest", "message": "a non-empty JSON array of events"}})
        found = [f"event {n}: {p}" for n, event in enumerate(batch) for p in problems(event)]
        if found:
            return json_reply(400, {"error": {"code": "BadRequest", "message": "; ".join(found)}})
        with self._lock_events:
            self.events.extend(batch)
        return 200, {}, b""
