"""A stand-in for a Teams Workflows webhook ("When a Teams webhook request is received").

It checks what Workflows checks (the signed URL, a JSON message with attachments), stores what it
accepted, answers 202, and can be told to fail the next N requests (5xx, or 429 with Retry-After).
"""

from __future__ import annotations

import secrets
import threading
import uuid
from typing import Any

from ._https import HttpsSink, Received, Reply, json_reply
from ._tls import LocalTLS

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"


class TeamsWebhookSink(HttpsSink):
    def __init__(self, tls: LocalTLS | None = None) -> None:
        super().__init__(tls)
        self.workflow_id = uuid.uuid4().hex
        self.signature = secrets.token_urlsafe(32)  # the secret part of the URL
        self.messages: list[dict[str, Any]] = []
        self._failures: list[tuple[int, dict[str, str]]] = []
        self._fail_lock = threading.Lock()

    @property
    def path(self) -> str:
        return f"/workflows/{self.workflow_id}/triggers/manual/paths/invoke"

    @property
    def url(self) -> str:
        """The signed webhook URL (a secret, like the real one)."""
        return (
            f"{self.base_url}{self.path}?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0"
            f"&sig={self.signature}"
        )

    @property
    def cards(self) -> list[dict[str, Any]]:
        """The Adaptive Cards of the accepted messages, in order."""
        return [a["content"] for m in self.messages for a in m.get("attachments", [])]

    def fail_next(self, count: int, status: int = 500, retry_after: float | None = None) -> None:
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        with self._fail_lock:
            self._failures += [(status, headers)] * count

    def handle(self, request: Received) -> Reply:
        if request.method != "POST" or request.path != self.path:
            return json_reply(404, {"error": {"code": "WorkflowNotFound", "message": "no such workflow"}})
        if request.query.get("sig") != self.signature:
            return json_reply(401, {"error": {"code": "DirectApiAuthorizationRequired", "message": "bad signature"}})
        with self._fail_lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure:
            status, headers = failure
            return json_reply(status, {"error": {"code": "InjectedFault", "message": f"injected {status}"}}, headers)
        if not request.headers.get("content-type", "").startswith("application/json"):
            return json_reply(415, {"error": {"code": "UnsupportedMediaType", "message": "JSON expected"}})
        try:
            body = request.json()
        except ValueError:
            return json_reply(400, {"error": {"code": "InvalidJson", "message": "body is not JSON"}})
        attachments = body.get("attachments") if isinstance(body, dict) else None
        if body.get("type") != "message" or not attachments:
            return json_reply(400, {"error": {"code": "InvalidPayload", "message": "a message with attachments"}})
        if any(
            a.get("contentType") != CARD_CONTENT_TYPE or not isinstance(a.get("content"), dict) for a in attachments
        ):
            return json_reply(400, {"error": {"code": "InvalidPayload", "message": "Adaptive Card attachments"}})
        self.messages.append(body)
        return 202, {}, b""
