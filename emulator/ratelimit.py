"""Rate-limit bookkeeping: ARM's subscription token buckets and Compute's per-policy windows."""

from __future__ import annotations

import math
import threading
import time


class TokenBucket:
    """ARM-style token bucket in real (monotonic) time, since clients wait out Retry-After in real time."""

    def __init__(self, capacity: float, refill_per_second: float, *, enforce: bool) -> None:
        self.capacity = float(capacity)
        self.refill = float(refill_per_second)
        self.enforce = enforce
        self._tokens = float(capacity)
        self._stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.refill)
        self._stamp = now

    def take(self) -> tuple[bool, int, int]:
        """Spend one token: (allowed, remaining, retry_after_seconds)."""
        self._refill()
        if self._tokens >= 1:
            self._tokens -= 1
            return True, int(self._tokens), 0
        if not self.enforce:
            return True, 0, 0
        wait = (1 - self._tokens) / self.refill if self.refill > 0 else 60
        return False, 0, max(1, math.ceil(wait))

    def peek(self) -> int:
        self._refill()
        return int(self._tokens)


# Compute's throttling policies (name: window seconds, allowance). The emulator reports them in
# x-ms-ratelimit-remaining-resource but never enforces them; the fault plan's buckets do the throttling.
COMPUTE_POLICIES: dict[str, tuple[int, int]] = {
    "HighCostGetVMScaleSet3Min": (180, 200),
    "HighCostGetVMScaleSet30Min": (1800, 1000),
    "GetVMScaleSet3Min": (180, 2000),
    "GetVMScaleSet30Min": (1800, 15000),
    "GetVMScaleSetVM3Min": (180, 1000),
    "GetVMScaleSetVM30Min": (1800, 5000),
    "VMScaleSetVMViews3Min": (180, 5000),
    "VMScaleSetActions3Min": (180, 200),
    "VMScaleSetActions30Min": (1800, 1200),
    "CreateVMScaleSet3Min": (180, 60),
    "CreateVMScaleSet30Min": (1800, 300),
    "VMScaleSetBatchedVMRequests5Min": (300, 1200),
    "LowCostGet3Min": (180, 4000),
    "LowCostGet30Min": (1800, 32000),
    "HighCostGet3Min": (180, 140),
    "HighCostGet30Min": (1800, 700),
    "UpdateVM3Min": (180, 240),
    "UpdateVM30Min": (1800, 1200),
    "DeleteVM3Min": (180, 240),
    "DeleteVM30Min": (1800, 1200),
    "GetOperationStatus3Min": (180, 1200),
    "GetOperationStatus30Min": (1800, 15000),
}


class ComputePolicies:
    """Fixed-window counters per Compute policy; `spend` returns the header value."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}

    def spend(self, names: tuple[str, ...]) -> str:
        now = time.monotonic()
        parts = []
        with self._lock:
            for name in names:
                window, allowance = COMPUTE_POLICIES[name]
                started, used = self._windows.get(name, (now, 0))
                if now - started >= window:
                    started, used = now, 0
                used += 1
                self._windows[name] = (started, used)
                parts.append(f"Microsoft.Compute/{name};{max(0, allowance - used)}")
        return ",".join(parts)
