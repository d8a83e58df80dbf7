"""The channel registry: each channel builds itself from the settings (`from_settings`), or says it is off.

Adding a channel = a class with `name`, `min_severity`, `max_items`, `render`, `send` and a
`from_settings(settings, options)` classmethod, plus one line in `REGISTRY`. Modules are imported only when
the `Notifier` is built, so an unused channel's SDK is never loaded.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import telemetry

if TYPE_CHECKING:
    from ..settings import Settings

log = telemetry.get_logger("autoheal.notify")

# name → "module:Class" (relative to autoheal.notify); order = send order.
REGISTRY: dict[str, str] = {
    "teams": "teams:TeamsChannel",
    "email-acs": "email:AcsEmailChannel",
    "email-smtp": "email:SmtpChannel",
    "events": "outcome_events:EventGridChannel",
}


@dataclass(frozen=True)
class ChannelOptions:
    """What tests and the demo may override for every channel (production uses the defaults)."""

    ca_bundle: str | None = None  # CA file trusted for the webhook, ACS, SMTP and Event Grid TLS (local sinks)
    timeout: float = 10.0  # seconds per HTTP request / SMTP session
    credential: Any = None  # token credential for ACS and Event Grid (default: managed identity / loopback token)
    session: Any = None  # a requests.Session for the webhook
    email_poll_interval: float = 2.0  # ACS operation polling when the service gives no Retry-After
    email_timeout: float = 60.0  # longest wait for the ACS send operation
    teams_max_items: int = 8  # scale sets shown in full on a Teams card (the rest are counted)
    email_max_items: int = 50  # scale sets shown in full in an e-mail


def channel_class(name: str) -> Any:
    module, _, cls = REGISTRY[name].partition(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), cls)


def build_channels(settings: Settings, options: ChannelOptions) -> list[Any]:
    """Every registered channel that its settings turn on."""
    channels = []
    for name in REGISTRY:
        channel = channel_class(name).from_settings(settings, options)
        if channel is not None:
            channels.append(channel)
    return channels


def email_configured(settings: Settings) -> bool:
    """Shared by the two e-mail channels: both need a sender and recipients (one warning when they are missing)."""
    if not (settings.email_endpoint or settings.smtp_host):
        return False
    if not settings.email_sender or not settings.email_recipients:
        log.warning("e-mail notifications are off: AUTOHEAL_EMAIL_SENDER and AUTOHEAL_EMAIL_RECIPIENTS are both needed")
        return False
    return True
