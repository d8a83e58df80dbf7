"""Local stand-ins for the notification endpoints (tests and `make demo`); never deployed.

- `TeamsWebhookSink`: a loopback HTTPS Teams Workflows webhook (signed URL, stores cards, injectable faults);
- `AcsEmailSink`: the Azure Communication Services e-mail REST API (send + operation polling) for the real
  `EmailClient`;
- `SmtpSink`: an aiosmtpd server with optional STARTTLS and login;
- `EventGridTopicSink`: an Event Grid topic that validates CloudEvents 1.0 and the bearer token;
- `demo_sinks(out_dir)`: Teams + e-mail + outcome events for `make demo`, writing what they received to `out_dir`.

Each is a context manager and leaves nothing running after it exits.
"""

from ._https import Received
from ._tls import LocalTLS
from .acs import AcsEmailSink, SentEmail
from .demo import DemoSinks, demo_sinks
from .eventgrid import EventGridTopicSink
from .smtp import ReceivedMail, SmtpSink
from .teams import TeamsWebhookSink

__all__ = [
    "AcsEmailSink",
    "DemoSinks",
    "EventGridTopicSink",
    "LocalTLS",
    "Received",
    "ReceivedMail",
    "SentEmail",
    "SmtpSink",
    "TeamsWebhookSink",
    "demo_sinks",
]
