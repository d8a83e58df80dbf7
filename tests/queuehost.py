"""A stand-in for the Azure Functions host's queue listener, over Azurite's real Queue service (tests, bench).

What it mimics (learn.microsoft.com/azure/azure-functions/functions-bindings-storage-queue-trigger, "Poison
messages"; host.json `extensions.queues`): a message is received with a visibility timeout (invisible to other
listeners while the function runs), the registered function is invoked with a real `azure.functions` queue
message (id, body, dequeueCount, pop receipt), the message is deleted when the function returns, left to come
back when it raises (or when this listener dies), and moved to `<queue>-poison` once its dequeue count reaches
`max_dequeue_count`, with a log line. It does not renew the visibility of a long invocation as the host does:
the visibility timeout given must exceed the slice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import azure.functions as func
from azure.core.exceptions import ResourceNotFoundError
from azure.functions.queue import QueueMessage
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

log = logging.getLogger("tests.queuehost")


class QueueHost:
    def __init__(
        self,
        connection_string: str,
        queue: str,
        invoke: Callable[[func.QueueMessage], Any],
        *,
        visibility_timeout: int = 30,
        max_dequeue_count: int = 5,
    ) -> None:
        def client(name: str) -> QueueClient:
            return QueueClient.from_connection_string(
                connection_string,
                name,
                message_encode_policy=TextBase64EncodePolicy(),
                message_decode_policy=TextBase64DecodePolicy(),
            )

        self.queue = client(queue)
        self.poison = client(f"{queue}-poison")
        self.invoke = invoke
        self.visibility_timeout = visibility_timeout
        self.max_dequeue_count = max_dequeue_count
        self.processed = 0
        self.failed = 0
        self.poisoned = 0
        self.dequeue_counts: list[int] = []  # of each message taken

    def run_once(self) -> str:
        """Take one message: "processed", "failed" (it comes back), "poisoned", or "empty"."""
        try:
            received = self.queue.receive_message(visibility_timeout=self.visibility_timeout)
        except ResourceNotFoundError:  # not created yet (the timer creates it on its first tick)
            return "empty"
        if received is None:
            return "empty"
        body = str(received.content)
        self.dequeue_counts.append(int(received.dequeue_count or 0))
        message = QueueMessage(
            id=received.id,
            body=body.encode(),
            dequeue_count=received.dequeue_count,
            pop_receipt=received.pop_receipt,
        )
        try:
            self.invoke(message)
        except Exception as exc:
            if (received.dequeue_count or 0) >= self.max_dequeue_count:
                self.poison.send_message(body)
                self.queue.delete_message(received.id, received.pop_receipt)
                log.error(
                    "message %s failed %d times: moved to the poison queue (%s)",
                    received.id,
                    received.dequeue_count,
                    exc,
                )
                self.poisoned += 1
                return "poisoned"
            # the host's visibilityTimeout between retries: the message comes back at once here
            self.queue.update_message(received.id, received.pop_receipt, visibility_timeout=0)
            self.failed += 1
            return "failed"
        self.queue.delete_message(received.id, received.pop_receipt)
        self.processed += 1
        return "processed"

    def drain(self, *, idle_seconds: float = 0.5, timeout: float = 120.0) -> int:
        """Process until the queue stays empty for `idle_seconds`; returns how many were processed."""
        deadline = time.monotonic() + timeout
        idle_since: float | None = None
        start = self.processed
        while time.monotonic() < deadline:
            if self.run_once() == "empty":
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= idle_seconds:
                    break
                time.sleep(0.05)
            else:
                idle_since = None
        return self.processed - start

    def close(self) -> None:
        self.queue.close()
        self.poison.close()
