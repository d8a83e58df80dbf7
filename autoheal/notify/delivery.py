"""Delivery plumbing shared by the channels: errors, retry with backoff, and secret redaction.

Secrets (the Teams webhook URL with its `sig=`, the SMTP password) are registered with `register_secret`;
`redact()` removes them from any text we log or return, and a logging filter does the same for the
HTTP libraries' own debug logs (urllib3 logs request URLs, query string included).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

MASK = "***"
MAX_RETRY_AFTER = 60.0  # seconds: a longer Retry-After is capped (a notification must not hold a sweep)
_SIG = re.compile(r"(?i)\b(sig|signature|password)=([^&\s'\"<>]+)")

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_filtered_loggers: set[str] = set()
# Loggers that may print a request URL (the webhook's query string carries its signature).
_HTTP_LOGGERS = (
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.util.retry",
    "requests",
    "azure.core.pipeline.policies.http_logging_policy",
    "azure.core.pipeline.transport",
)


class DeliveryError(Exception):
    """One attempt to deliver a message failed; `retryable` says whether another attempt can help."""

    def __init__(self, message: str, *, retryable: bool = True, retry_after: float | None = None) -> None:
        super().__init__(redact(message))
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True)
class Delivered:
    """What `deliver` reports: sent or not, after how many tries, and the last error."""

    ok: bool
    attempts: int
    error: str = ""


def deliver(
    send: Callable[[], None],
    *,
    delays: Sequence[float],
    sleep: Callable[[float], None],
    on_retry: Callable[[int, DeliveryError, float], None] | None = None,
) -> Delivered:
    """Call `send` until it succeeds, a non-retryable error, or `delays` run out (1 + len(delays) tries).

    Before retry k the wait is max(delays[k], Retry-After) with Retry-After capped at MAX_RETRY_AFTER.
    Never raises: anything unexpected is a final, redacted error.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            send()
            return Delivered(True, attempt)
        except DeliveryError as exc:
            error = exc
        except Exception as exc:  # a bug or an SDK surprise: do not let it reach the remediation
            error = DeliveryError(f"{type(exc).__name__}: {exc}", retryable=False)
        if not error.retryable or attempt > len(delays):
            return Delivered(False, attempt, str(error))
        wait = max(float(delays[attempt - 1]), min(error.retry_after or 0.0, MAX_RETRY_AFTER))
        if on_retry:
            on_retry(attempt, error, wait)
        sleep(wait)


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is treated as 'no hint')."""
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None


# -- secrets ------------------------------------------------------------------------------------------------


def register_secret(value: str) -> None:
    """Never let `value` (and, for a URL, its path+query and signature) reach a log line."""
    if not value:
        return
    variants = {value, quote(value, safe=""), unquote(value)}
    if "://" in value:
        parts = urlsplit(value)
        if parts.query:
            variants |= {parts.query, f"{parts.path}?{parts.query}"}
            for pair in parts.query.split("&"):
                name, _, secret = pair.partition("=")
                if name.lower() in {"sig", "signature"} and secret:
                    variants |= {secret, unquote(secret), quote(unquote(secret), safe="")}
    with _secrets_lock:
        _secrets.update(v for v in variants if len(v) >= 4)
    _install_log_filter()


def redact(text: str) -> str:
    """`text` without any registered secret or `sig=...`-style query value."""
    if not text:
        return text
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return _SIG.sub(lambda m: f"{m.group(1)}={MASK}", text)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message without secrets (attached to the HTTP libraries' loggers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = ()
        return True


def _install_log_filter() -> None:
    with _secrets_lock:
        for name in _HTTP_LOGGERS:
            if name not in _filtered_loggers:
                logging.getLogger(name).addFilter(RedactingFilter())
                _filtered_loggers.add(name)


class Secret:
    """A secret string that shows as `<secret>` in reprs, f-strings and logs; `reveal()` to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register_secret(value)

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__
