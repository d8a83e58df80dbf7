"""A tiny threaded HTTPS server on a free loopback port that hands each request to a Python function."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from ._tls import LocalTLS

log = logging.getLogger("sinks")


@dataclass(frozen=True)
class Received:
    """One request as the sink saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes = field(repr=False)

    def json(self) -> Any:
        return json.loads(self.body or b"null")


Reply = tuple[int, dict[str, str], bytes]


def json_reply(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Reply:
    data = b"" if body is None else json.dumps(body).encode()
    out = {"Content-Type": "application/json"} if data else {}
    return status, {**out, **(headers or {})}, data


class HttpsSink:
    """Base of the HTTPS sinks: start/stop (also as a context manager), `base_url`, `ca_file`, `requests`."""

    def __init__(self, tls: LocalTLS | None = None) -> None:
        self._own_tls = tls is None
        self.tls = tls or LocalTLS()
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # subclasses answer requests
    def handle(self, request: Received) -> Reply:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the sink is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> str:
        return self.tls.ca_file

    def start(self) -> None:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: nothing lingers after stop()

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Received(
                    method=self.command,
                    path=parts.path,
                    query={k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                with sink._lock:
                    sink.requests.append(request)
                try:
                    status, headers, body = sink.handle(request)
                except Exception:  # a bug in a sink must show up as a 500, not hang the client
                    log.exception("sink failed on %s %s", request.method, request.path)
                    status, headers, body = 500, {}, b""
                log.debug("%s %s -> %d", request.method, request.path, status)  # path only: no query string
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body:
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the default logs the request line, query string (a webhook signature) included

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.socket = self.tls.server_context().wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=type(self).__name__, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._own_tls:
            self.tls.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
