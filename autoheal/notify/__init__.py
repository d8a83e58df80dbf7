"""Notifications: tell people, in the channel they watch, what broke, what was done, and what was held back.

The engine hands over the ledger changes of a sweep or an event:

    result = notifier.notify(changes, trigger="sweep", correlation_id=run_id)
    for record in result.delivered:      # copies with notified_state / notified_at set
        ledger.update(record, history=False)

`notify()` never raises and never blocks a remediation for long: each message is retried with backoff,
then given up on with an error log naming the channel and the payload id.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from .. import telemetry
from ..model import Finding, Severity
from . import policy
from .channels import ChannelOptions, build_channels
from .content import Message, is_note, item_view, notes_of
from .delivery import DeliveryError, deliver, redact

if TYPE_CHECKING:
    from ..remediation.ledger import Record  # moving to remediation/record.py (same fields)
    from ..settings import Settings

__all__ = ["Change", "Channel", "DeliveryError", "Notifier", "NotifyResult"]

log = telemetry.get_logger("autoheal.notify")

DEFAULT_RETRY_DELAYS = (2.0, 8.0, 20.0)  # 4 tries within ~30 s, then give up and log


@dataclass(frozen=True)
class Change:
    record: Record  # the live record after the change
    previous_state: str  # "" when the record is new
    finding: Finding | None  # the finding behind it (evidence, reference), when the run has it


@dataclass(frozen=True)
class NotifyResult:
    delivered: list[Record]  # records whose notified_state/notified_at the engine must persist (updated copies)
    suppressed: int  # deduped or below severity
    failures: list[str]  # "channel: payload id: error" (already logged as errors)


class Channel(Protocol):
    name: str
    min_severity: Severity
    max_items: int

    def render(self, message: Message) -> Any: ...

    def send(self, message: Message) -> None: ...


_OVERRIDES = frozenset(f.name for f in fields(ChannelOptions)) | {"retry_delays", "sleep"}


class Notifier:
    """Applies the notification policy and sends to the configured channels."""

    def __init__(
        self,
        channels: Sequence[Channel] = (),
        *,
        style: str = "digest",
        dedupe_window: timedelta = timedelta(hours=6),
        portal_url: str = "https://portal.azure.com",
        tenant_id: str = "",
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if style not in ("digest", "each"):
            raise ValueError(f"style must be 'digest' or 'each', not {style!r}")
        self.channels = list(channels)
        self.style = style
        self.dedupe_window = dedupe_window
        self.portal_url = portal_url
        self.tenant_id = tenant_id
        self.retry_delays = tuple(float(d) for d in retry_delays)
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"Notifier(channels={self.channels!r}, style={self.style!r}, dedupe_window={self.dedupe_window})"

    # -- construction ----------------------------------------------------------------------------------------------

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> Notifier:
        """One channel per configured registry entry (see `channels.REGISTRY`): Teams when a webhook URL is set;
        e-mail through ACS when an endpoint is set, else SMTP when a host is set (both need a sender and
        recipients); outcome events when an Event Grid topic endpoint is set."""
        unknown = set(overrides) - _OVERRIDES
        if unknown:
            raise TypeError(f"unknown Notifier override(s): {', '.join(sorted(unknown))}")
        option_names = {f.name for f in fields(ChannelOptions)}
        options = ChannelOptions(**{k: v for k, v in overrides.items() if k in option_names})
        return cls(
            build_channels(settings, options),
            style=settings.notify_style,
            dedupe_window=settings.notify_dedupe_window,
            portal_url=settings.portal_url,
            tenant_id=settings.tenant_id,
            retry_delays=overrides.get("retry_delays", DEFAULT_RETRY_DELAYS),
            sleep=overrides.get("sleep", time.sleep),
        )

    # -- the one call ----------------------------------------------------------------------------------------------

    def notify(
        self, changes: list[Change], *, trigger: str, correlation_id: str, now: datetime | None = None
    ) -> NotifyResult:
        """Announce what is new in `changes`; never raises."""
        try:
            with telemetry.span("notify", trigger=trigger, correlationId=correlation_id, changes=len(changes)):
                return self._notify(changes, trigger=trigger, correlation_id=correlation_id, now=now)
        except Exception as exc:  # a bug here must not reach the remediation that called us
            error = redact(f"{type(exc).__name__}: {exc}")
            log.error(
                "notification failed unexpectedly: %s",
                error,
                extra=telemetry.dimensions(correlationId=correlation_id, outcome="failed"),
            )
            return NotifyResult([], 0, [f"notify: -: {error}"])

    def _notify(
        self, changes: list[Change], *, trigger: str, correlation_id: str, now: datetime | None
    ) -> NotifyResult:
        now = now or datetime.now(UTC)
        merged = policy.coalesce(changes)
        due = [c for c in merged if policy.is_due(c, now, self.dedupe_window)]
        suppressed = len(merged) - len(due)
        delivered_keys: set[tuple[str, str, str]] = set()
        wanted_keys: set[tuple[str, str, str]] = set()
        failures: list[str] = []
        for channel in self.channels:
            mine = [c for c in due if policy.wants(channel.min_severity, c)]
            wanted_keys.update(policy.key_of(c) for c in mine)
            channel_down = False
            # informational changes (a preview feature off) ride in one batch as notes, never one message each
            notes = [c for c in mine if is_note(c)]
            batches = policy.batches([c for c in mine if not is_note(c)], style=self.style, max_items=channel.max_items)
            if notes:
                batches = [[*batches[0], *notes], *batches[1:]] if batches else [notes]
            for batch in batches:
                message = self._message(batch, trigger=trigger, correlation_id=correlation_id, now=now)
                # once a channel gave up in this call, later messages get one try each (no backoff)
                outcome = self._send(channel, message, retry=not channel_down)
                if outcome is None:
                    delivered_keys.update(policy.key_of(c) for c in batch)
                else:
                    channel_down = True
                    failures.append(f"{channel.name}: {message.payload_id}: {outcome}")
        suppressed += sum(1 for c in due if policy.key_of(c) not in wanted_keys)
        delivered = [
            c.record.evolve(notified_state=c.record.state.value, notified_at=now)
            for c in due
            if policy.key_of(c) in delivered_keys
        ]
        return NotifyResult(delivered, suppressed, failures)

    def _message(self, batch: list[Change], *, trigger: str, correlation_id: str, now: datetime) -> Message:
        items = [item_view(c, portal_url=self.portal_url, tenant_id=self.tenant_id) for c in batch if not is_note(c)]
        items.sort(key=lambda i: -i.disposition.rank)  # worst outcome first (stable: ledger order otherwise)
        return Message(
            payload_id=uuid.uuid4().hex[:16],
            trigger=trigger,
            correlation_id=correlation_id,
            created_at=now,
            items=tuple(items),
            portal_url=self.portal_url,
            changes=tuple(batch),
            notes=notes_of(batch),
        )

    def _send(self, channel: Channel, message: Message, *, retry: bool) -> str | None:
        """None when delivered, else the (redacted) error after the last attempt."""
        dims = telemetry.dimensions(
            channel=channel.name,
            payloadId=message.payload_id,
            correlationId=message.correlation_id,
            changes=len(message.items),
        )

        def on_retry(attempt: int, error: DeliveryError, wait: float) -> None:
            log.warning(
                "notification to %s (payload %s) failed, attempt %d, retrying in %.1f s: %s",
                channel.name,
                message.payload_id,
                attempt,
                wait,
                error,
                extra=dims,
            )

        with telemetry.span(f"notify {channel.name}", **dims):
            outcome = deliver(
                lambda: channel.send(message),
                delays=self.retry_delays if retry else (),
                sleep=self._sleep,
                on_retry=on_retry,
            )
        if outcome.ok:
            telemetry.record_notification(channel.name, "sent")
            log.info(
                "notification sent to %s: payload %s, %d change(s)",
                channel.name,
                message.payload_id,
                len(message.items),
                extra={**dims, "outcome": "sent"},
            )
            return None
        telemetry.record_notification(channel.name, "failed")
        log.error(
            "notification to %s failed, giving up after %d attempt(s): payload %s: %s",
            channel.name,
            outcome.attempts,
            message.payload_id,
            outcome.error,
            extra={**dims, "outcome": "failed"},
        )
        return outcome.error
