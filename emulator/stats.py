"""The request log: how many ARM calls a run made, by kind and by swagger operationId."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests = 0
            self._reads = 0
            self._writes = 0
            self._throttled = 0
            self._faults = 0
            self._by_operation: dict[str, int] = {}
            self._delayed = 0
            self._peak_delayed = 0

    @contextlib.contextmanager
    def delaying(self) -> Iterator[None]:
        """Count requests waiting out injected latency at once: the peak shows whether requests overlap."""
        with self._lock:
            self._delayed += 1
            self._peak_delayed = max(self._peak_delayed, self._delayed)
        try:
            yield
        finally:
            with self._lock:
                self._delayed -= 1

    def record(self, operation: str | None, *, write: bool, throttled: bool = False, fault: bool = False) -> None:
        with self._lock:
            self._requests += 1
            if write:
                self._writes += 1
            else:
                self._reads += 1
            self._throttled += throttled
            self._faults += fault
            if operation:
                self._by_operation[operation] = self._by_operation.get(operation, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self._requests,
                "reads": self._reads,
                "writes": self._writes,
                "throttled": self._throttled,
                "faultsInjected": self._faults,
                "byOperation": dict(sorted(self._by_operation.items())),
                "peakConcurrentDelayed": self._peak_delayed,
            }
