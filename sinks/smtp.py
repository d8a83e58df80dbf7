"""A local SMTP server (aiosmtpd) with optional STARTTLS and login, storing the messages it accepted."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Self

from ._tls import LocalTLS


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage = field(repr=False)
    tls: bool = False
    login: str = ""

    @property
    def subject(self) -> str:
        return " ".join(str(self.message["Subject"]).split())  # unfolded, as a mail client shows it

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        return "" if body is None else str(body.get_content())

    @property
    def html(self) -> str:
        return self.part("html")

    @property
    def text(self) -> str:
        return self.part("plain")


class SmtpSink:
    """`with SmtpSink(starttls=True, username="u", password="p") as smtp:` → smtp.host, smtp.port, smtp.messages."""

    def __init__(
        self,
        *,
        starttls: bool = False,
        username: str = "",
        password: str = "",
        tls: LocalTLS | None = None,
    ) -> None:
        self.starttls = starttls
        self.username = username
        self._password = password
        self._own_tls = tls is None and starttls
        self.tls = tls or (LocalTLS() if starttls else None)
        self.host = "127.0.0.1"
        self.port = 0
        self.messages: list[ReceivedMail] = []
        self.logins: list[str] = []
        self._failures: list[str] = []
        self._lock = threading.Lock()
        self._controller: Any = None

    @property
    def ca_file(self) -> str | None:
        return self.tls.ca_file if self.tls else None

    def fail_next(self, count: int, reply: str = "451 4.3.0 Try again later") -> None:
        with self._lock:
            self._failures += [reply] * count

    def start(self) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                with sink._lock:
                    failure = sink._failures.pop(0) if sink._failures else None
                if failure:
                    return failure
                parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
                auth = getattr(session, "auth_data", None)
                login = auth.decode() if isinstance(auth, bytes) else ""
                mail = ReceivedMail(
                    mail_from=envelope.mail_from,
                    rcpt_tos=tuple(envelope.rcpt_tos),
                    message=parsed,  # type: ignore[arg-type]
                    tls=session.ssl is not None,
                    login=login,
                )
                with sink._lock:
                    sink.messages.append(mail)
                return "250 2.0.0 Message accepted for delivery"

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
            if not isinstance(auth_data, LoginPassword):
                return AuthResult(success=False, handled=False)
            ok = auth_data.login.decode() == sink.username and auth_data.password.decode() == sink._password
            if ok:
                with sink._lock:
                    sink.logins.append(sink.username)
            return AuthResult(success=ok, handled=False, auth_data=auth_data.login if ok else None)

        kwargs: dict[str, Any] = {}
        if self.starttls and self.tls is not None:
            kwargs.update(tls_context=self.tls.server_context(), require_starttls=True)
        if self.username:
            kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=self.starttls)
        self.port = _free_port()
        self._controller = Controller(
            Handler(), hostname=self.host, port=self.port, server_hostname="localhost", ready_timeout=5.0, **kwargs
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        if self._own_tls and self.tls is not None:
            self.tls.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
