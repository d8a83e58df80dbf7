"""Replay mode: answer fixed request paths with recorded responses (e.g. Microsoft's x-ms-examples),
behind the same pipeline (auth, api-version, headers), so a test can check what the SDK makes of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from .errors import ArmError
from .messages import Request, Response
from .routes import Route


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str  # decoded path, e.g. /subscriptions/{subscription-id}/resourceGroups/rg/...
    status: int
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()
    operation_id: str = "Replay"


def _key(method: str, segments: list[str]) -> tuple[str, tuple[str, ...]]:
    return method.upper(), tuple(s.lower() for s in segments)


class ReplayBackend:
    def __init__(self, exchanges: list[Exchange]) -> None:
        self._exchanges = {_key(e.method, [unquote(p) for p in e.path.split("/") if p]): e for e in exchanges}

    def resolve(self, method: str, segments: list[str]) -> tuple[Route, dict[str, str]]:
        exchange = self._exchanges.get(_key(method, segments))
        if exchange is None:
            raise ArmError(404, "InvalidResourceType", f"No recorded response for {method} /{'/'.join(segments)}.")
        return Route(method, (), exchange.operation_id, "replay"), {"key": "/".join(segments)}

    def call(self, route: Route, params: dict[str, str], request: Request) -> Response:
        exchange = self._exchanges[_key(request.method, request.segments)]
        headers = dict(exchange.headers)
        if exchange.body is None:
            return Response.empty(exchange.status, headers)
        return Response.json(exchange.status, exchange.body, headers)
