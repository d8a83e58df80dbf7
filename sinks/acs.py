"""A stand-in for the Azure Communication Services e-mail REST API that the real `EmailClient` talks to.

`POST /emails:send?api-version=...` → 202 with `Operation-Location`; `GET /emails/operations/{id}` →
`Running` for the first `polls_before_done` polls, then `Succeeded` (or `Failed` when told to).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from ._https import HttpsSink, Received, Reply, json_reply
from ._tls import LocalTLS

API_VERSIONS = ("2023-03-31", "2024-07-01-preview", "2025-09-01")


@dataclass
class SentEmail:
    operation_id: str
    message: dict[str, Any]
    headers: dict[str, str] = field(repr=False)
    polls: int = 0
    final: str = "Succeeded"

    @property
    def subject(self) -> str:
        return str(self.message["content"]["subject"])

    @property
    def html(self) -> str:
        return str(self.message["content"].get("html", ""))

    @property
    def text(self) -> str:
        return str(self.message["content"].get("plainText", ""))

    @property
    def to(self) -> list[str]:
        return [r["address"] for r in self.message["recipients"].get("to", [])]


class AcsEmailSink(HttpsSink):
    def __init__(self, tls: LocalTLS | None = None, *, polls_before_done: int = 1) -> None:
        super().__init__(tls)
        self.polls_before_done = polls_before_done
        self.sent: list[SentEmail] = []
        self._operations: dict[str, SentEmail] = {}
        self._failures: list[tuple[int, dict[str, str]]] = []
        self._fail_operations = 0
        self._state_lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return self.base_url

    def fail_next(self, count: int, status: int = 503, retry_after: float | None = None) -> None:
        """The next `count` sends are refused with `status`."""
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        with self._state_lock:
            self._failures += [(status, headers)] * count

    def fail_next_operations(self, count: int) -> None:
        """The next `count` accepted sends end with status Failed."""
        with self._state_lock:
            self._fail_operations += count

    def handle(self, request: Received) -> Reply:
        version = request.query.get("api-version", "")
        if version not in API_VERSIONS:
            return _error(400, "UnsupportedApiVersion", f"api-version {version!r} is not supported")
        auth = request.headers.get("authorization", "")
        if not (auth.startswith("Bearer ") or auth.startswith("HMAC-SHA256 ")):
            return _error(401, "Unauthorized", "no credentials")
        if request.method == "POST" and request.path == "/emails:send":
            return self._send(request, version)
        prefix = "/emails/operations/"
        if request.method == "GET" and request.path.startswith(prefix):
            return self._poll(request.path[len(prefix) :], version)
        return _error(404, "NotFound", f"{request.method} {request.path}")

    def _send(self, request: Received, version: str) -> Reply:
        with self._state_lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure:
            status, headers = failure
            return json_reply(status, {"error": {"code": "ServiceUnavailable", "message": "injected"}}, headers)
        try:
            message = request.json()
        except ValueError:
            return _error(400, "InvalidRequest", "body is not JSON")
        problem = _validate(message)
        if problem:
            return _error(400, "InvalidRequest", problem)
        operation_id = request.headers.get("operation-id") or str(uuid.uuid4())
        sent = SentEmail(operation_id, message, dict(request.headers))
        with self._state_lock:
            if self._fail_operations:
                self._fail_operations -= 1
                sent.final = "Failed"
            self._operations[operation_id] = sent
            self.sent.append(sent)
        location = f"{self.base_url}/emails/operations/{operation_id}?api-version={version}"
        return json_reply(
            202,
            {"id": operation_id, "status": "Running"},
            {"Operation-Location": location, "operation-id": operation_id},
        )

    def _poll(self, operation_id: str, version: str) -> Reply:
        with self._state_lock:
            sent = self._operations.get(operation_id)
            if sent is None:
                return _error(404, "NotFound", f"operation {operation_id}")
            sent.polls += 1
            done = sent.polls > self.polls_before_done
        if not done:
            return json_reply(200, {"id": operation_id, "status": "Running"})
        if sent.final == "Failed":
            error = {"code": "EmailDroppedAllRecipientsSuppressed", "message": "all recipients are suppressed"}
            return json_reply(200, {"id": operation_id, "status": "Failed", "error": error})
        return json_reply(200, {"id": operation_id, "status": "Succeeded"})

    @property
    def delivered(self) -> list[SentEmail]:
        return [s for s in self.sent if s.final == "Succeeded" and s.polls > self.polls_before_done]


def _error(status: int, code: str, message: str) -> Reply:
    return json_reply(status, {"error": {"code": code, "message": message}})


def _validate(message: Any) -> str:
    if not isinstance(message, dict):
        return "the message must be an object"
    if not message.get("senderAddress"):
        return "senderAddress is required"
    recipients = message.get("recipients") or {}
    if not any(recipients.get(kind) for kind in ("to", "cc", "bcc")):
        return "at least one recipient is required"
    content = message.get("content") or {}
    if not content.get("subject"):
        return "content.subject is required"
    if not (content.get("plainText") or content.get("html")):
        return "content.plainText or content.html is required"
    return ""
