"""Transport-neutral request and response objects passed between the HTTPS server and the API."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .errors import invalid_request_content


@dataclass
class Request:
    method: str
    raw_path: str  # path as sent (percent-encoded), without the query
    segments: list[str]  # decoded path segments
    query: dict[str, str]  # lower-cased names; ARM treats query names case-insensitively
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""

    @classmethod
    def parse(cls, method: str, target: str, headers: dict[str, str], body: bytes = b"") -> Request:
        split = urlsplit(target)
        raw_path = split.path or "/"
        segments = [unquote(part) for part in raw_path.split("/") if part]
        query = {name.lower(): value for name, value in parse_qsl(split.query, keep_blank_values=True)}
        return cls(method.upper(), raw_path, segments, query, {k.lower(): v for k, v in headers.items()}, body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self, *, required: bool = True) -> Any:
        if not self.body.strip():
            if required:
                raise invalid_request_content("The request body is empty")
            return None
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as error:
            raise invalid_request_content(str(error)) from error


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, document: Any, headers: dict[str, str] | None = None) -> Response:
        body = json.dumps(document, separators=(",", ":")).encode()
        merged = {"Content-Type": "application/json; charset=utf-8"}
        merged.update(headers or {})
        return cls(status, body, merged)

    @classmethod
    def empty(cls, status: int, headers: dict[str, str] | None = None) -> Response:
        return cls(status, b"", dict(headers or {}))
