"""The sweep of a management group, fanned out on a Storage Queue: one message per subscription.

The timer enqueues one `SliceMessage` per subscription in scope; the queue-triggered function runs that
subscription's sweep (its own Compute budget and ledger partition). Azure Functions scales the queue trigger
out across instances, so there is no scheduler of our own. What the platform guarantees, and this relies on
(learn.microsoft.com/azure/azure-functions/functions-bindings-storage-queue-trigger, "Poison messages" and
"Peek lock"; host.json `extensions.queues`, learn.microsoft.com/azure/azure-functions/functions-bindings-
storage-queue#host-json):

* a message being processed is invisible to other instances; the host keeps it so while the function runs,
  and when an instance dies the message becomes visible again and another instance takes it (its
  `dequeueCount` goes up; azure-webjobs-sdk#2624 describes the crash case, #1040 the 10-minute visibility a
  message keeps when its host dies);
* after `maxDequeueCount` failed deliveries (host.json; 5 by default) the host moves the message to
  `<queue>-poison`;
* messages are base64 text by default (`messageEncoding`), so they are sent base64-encoded here.

A message is idempotent: the ledger already refuses a second action on a target in flight, and a slice
records the tick it finished, so a redelivered message of a finished tick is acknowledged without a sweep.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient

    from .settings import Settings

MESSAGE_VERSION = 1
# host.json extensions.queues.maxDequeueCount: a slice that failed this often is a poison message.
MAX_DEQUEUE_COUNT = 5
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class BadSliceMessage(ValueError):
    """A queue message that is not a slice: it cannot succeed, so it ends in the poison queue (never lost)."""


@dataclass(frozen=True)
class SliceMessage:
    """One subscription's share of one timer tick."""

    subscription_id: str
    management_group: str
    tick: str  # the timer tick that enqueued it: a redelivery of a finished tick does nothing
    enqueued_at: str
    name: str = ""  # the subscription's display name (for logs and notifications)

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": MESSAGE_VERSION,
                "subscriptionId": self.subscription_id,
                "managementGroup": self.management_group,
                "tick": self.tick,
                "enqueuedAt": self.enqueued_at,
                "name": self.name,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> SliceMessage:
        try:
            document = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadSliceMessage(f"not JSON: {str(exc)[:120]}") from exc
        if not isinstance(document, dict):
            raise BadSliceMessage("not a JSON object")
        if document.get("version") != MESSAGE_VERSION:
            raise BadSliceMessage(f"version {document.get('version')!r} is not {MESSAGE_VERSION}")
        subscription = str(document.get("subscriptionId") or "")
        if not _GUID.match(subscription):
            raise BadSliceMessage(f"subscriptionId {subscription[:60]!r} is not a GUID")
        tick = str(document.get("tick") or "")
        if not tick:
            raise BadSliceMessage("no tick")
        return cls(
            subscription_id=subscription.lower(),
            management_group=str(document.get("managementGroup") or ""),
            tick=tick,
            enqueued_at=str(document.get("enqueuedAt") or ""),
            name=str(document.get("name") or ""),
        )


def new_tick(now: datetime | None = None) -> str:
    """A timer tick's id: its time (sortable) and a random part (two ticks in one second stay apart)."""
    moment = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{moment}-{uuid.uuid4().hex[:8]}"


class SweepQueue:
    """The Storage Queue of slice messages (and its poison queue), through azure-storage-queue."""

    def __init__(self, client: QueueClient, poison: QueueClient) -> None:
        self.client = client
        self.poison = poison

    @property
    def name(self) -> str:
        return str(self.client.queue_name)

    @classmethod
    def from_connection_string(cls, connection_string: str, queue: str) -> SweepQueue:
        from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

        def build(name: str) -> QueueClient:
            return QueueClient.from_connection_string(
                connection_string,
                name,
                message_encode_policy=TextBase64EncodePolicy(),
                message_decode_policy=TextBase64DecodePolicy(),
            )

        return cls(build(queue), build(f"{queue}-poison"))

    @classmethod
    def from_settings(cls, settings: Settings) -> SweepQueue:
        """AzureWebJobsStorage: a connection string locally (Azurite), the managed identity in Azure (the queue
        endpoint of AzureWebJobsStorage__accountName, as the Functions host's own identity-based connection)."""
        if settings.storage_connection_string:
            return cls.from_connection_string(settings.storage_connection_string, settings.sweep_queue)
        if not settings.storage_account_name:
            raise ValueError(
                "no queue storage configured: set AzureWebJobsStorage (Azurite) or AzureWebJobsStorage__accountName"
            )
        from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

        from .credentials import default_credential

        endpoint = f"https://{settings.storage_account_name}.queue.core.windows.net"
        credential = default_credential(endpoint, settings.client_id or None)

        def build(name: str) -> QueueClient:
            return QueueClient(
                endpoint,
                name,
                credential=credential,
                message_encode_policy=TextBase64EncodePolicy(),
                message_decode_policy=TextBase64DecodePolicy(),
            )

        return cls(build(settings.sweep_queue), build(f"{settings.sweep_queue}-poison"))

    def ensure(self) -> None:
        """Create the queue and its poison queue when missing (the host creates the poison queue itself too)."""
        from azure.core.exceptions import ResourceExistsError

        for client in (self.client, self.poison):
            with contextlib.suppress(ResourceExistsError):
                client.create_queue()

    def enqueue(self, messages: Iterable[SliceMessage]) -> int:
        sent = 0
        for message in messages:
            self.client.send_message(message.to_json())
            sent += 1
        return sent

    def depth(self) -> dict[str, int]:
        """Approximate message counts of the queue and its poison queue (for status and tests)."""
        return {
            "queued": int(self.client.get_queue_properties().approximate_message_count or 0),
            "poison": int(self.poison.get_queue_properties().approximate_message_count or 0),
        }

    def close(self) -> None:
        self.client.close()
        self.poison.close()


def describe(messages: list[SliceMessage]) -> dict[str, Any]:
    """What a tick enqueued, for the status endpoint."""
    return {
        "tick": messages[0].tick if messages else "",
        "enqueuedAt": messages[0].enqueued_at if messages else "",
        "subscriptions": [{"subscriptionId": m.subscription_id, "name": m.name} for m in messages],
    }
