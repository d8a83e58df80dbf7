"""Compute's read budget is shared with the customer's autoscale, AKS and portal: spend a set share, no more.

Microsoft's "Compute throttling limits" article (azure-compute-docs,
`articles/virtual-machines/compute-throttling-limits.md`; learn.microsoft.com/azure/virtual-machines/
compute-throttling-limits) describes token buckets per region, per resource and per subscription, with a
refill per minute and a capacity per policy (the table below). Every Compute answer reports what is left in
`x-ms-ratelimit-remaining-resource: Microsoft.Compute/<policy>;<remaining>,...`.

Two rules keep the tool from ever being the reason a customer's autoscale gets a 429:
1. **Our share.** Per policy, the tool spends at most `share` of the documented subscription refill (and
   bursts at most `share` of its capacity): its own token bucket, sized from the table.
2. **A floor on what is left.** Before a request, every bucket it will spend (learned from the headers of
   earlier answers of the same kind) must stay at or above `(1 - share) x capacity` after it, estimated from
   the last reported remaining plus the refill since. Otherwise the request waits for the refill.

Header policy names in Azure have changed over time (`HighCostGetVMScaleSet3Min` in older answers); a name
not in the table is still honoured: its capacity is learned as the largest remaining seen (+1) and its
refill estimated at a third of that per minute, the ratio every row of the documented table has.
When a wait would pass the caller's deadline, `BudgetExhausted` says so and the work is deferred.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Limit:
    refill_per_minute: float
    capacity: int


@dataclass(frozen=True)
class Policy:
    name: str  # as the article names it
    header: str  # the header's policy base name (the emulator appends Resource / Subscription)
    resource: Limit | None
    subscription: Limit


# The documented table (refill per minute / capacity). The header base names are the emulator's; Azure's exact
# spelling is not documented (see emulator/README.md).
POLICIES: dict[str, Policy] = {
    p.name: p
    for p in (
        Policy("VMSS Low Cost Get", "GetVMScaleSet", Limit(12, 36), Limit(800, 2400)),
        Policy("VMSS High Cost Get", "HighCostGetVMScaleSet", Limit(10, 30), Limit(360, 1080)),
        Policy("VMSS Update", "UpdateVMScaleSet", Limit(4, 12), Limit(500, 1500)),
        Policy("VMSS Delete", "DeleteVMScaleSet", Limit(4, 12), Limit(175, 525)),
        Policy("Scale set VMs Get", "GetVMScaleSetVM", Limit(12, 36), Limit(2000, 6000)),
        Policy("Scale set VMs Update", "UpdateVMScaleSetVM", Limit(4, 12), Limit(500, 1500)),
        Policy("Scale set VMs Delete", "DeleteVMScaleSetVM", Limit(4, 12), Limit(500, 1500)),
        Policy("VM Low Cost Get", "LowCostGetVM", Limit(12, 36), Limit(8000, 24000)),
        Policy("VM High Cost Get", "HighCostGetVM", None, Limit(300, 900)),
        Policy("VM Delete", "DeleteVM", Limit(4, 12), Limit(500, 1500)),
        Policy("Get Operation", "GetOperation", Limit(15, 45), Limit(5000, 15000)),
    )
}
VMSS_LOW_COST_GET = "VMSS Low Cost Get"
VMSS_HIGH_COST_GET = "VMSS High Cost Get"
SCALE_SET_VMS_GET = "Scale set VMs Get"
VM_LOW_COST_GET = "VM Low Cost Get"
VM_HIGH_COST_GET = "VM High Cost Get"

_KNOWN_BUCKETS: dict[str, Limit] = {}
for _policy in POLICIES.values():
    _KNOWN_BUCKETS[f"{_policy.header}Subscription"] = _policy.subscription
    if _policy.resource is not None:
        _KNOWN_BUCKETS[f"{_policy.header}Resource"] = _policy.resource

_ENTRY = re.compile(r"^\s*Microsoft\.Compute/(?P<name>[A-Za-z0-9_.\-]+)\s*;\s*(?P<remaining>-?\d+)\s*$", re.IGNORECASE)
_RESOURCE = re.compile(
    r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/"
    r"(?:virtualMachineScaleSets|virtualMachines)/[^/?]+",
    re.IGNORECASE,
)


def parse_remaining(header: str | None) -> dict[str, int]:
    """`Microsoft.Compute/HighCostGetVMScaleSetSubscription;1079,...` → {name: remaining}; junk is skipped."""
    out: dict[str, int] = {}
    for part in (header or "").split(","):
        found = _ENTRY.match(part)
        if found:
            out[found["name"]] = max(0, int(found["remaining"]))
    return out


def resource_of(url: str) -> str:
    """The scale set or VM a request is about (per-resource buckets are kept per resource), or ''."""
    found = _RESOURCE.search(url)
    return found.group(0).lower() if found else ""


def per_resource(name: str) -> bool:
    return name.lower().endswith("resource")


class BudgetExhausted(Exception):
    """Waiting for the budget would pass the deadline: the work is deferred to the next sweep."""

    def __init__(self, policy: str, wait: float) -> None:
        super().__init__(f"{policy}: the next request would wait {wait:.0f}s for Compute's budget")
        self.policy = policy
        self.wait = wait


@dataclass
class _Bucket:
    """Azure's bucket as last reported: remaining at a moment, refill per second, capacity."""

    remaining: float
    at: float
    capacity: float
    refill: float
    documented: bool
    lowest: float

    def estimate(self, now: float) -> float:
        return min(self.capacity, self.remaining + (now - self.at) * self.refill)


@dataclass
class _Share:
    """Our own allowance for one policy: `share` of the documented subscription refill and capacity."""

    tokens: float
    capacity: float
    refill: float
    at: float

    def level(self, now: float) -> float:
        return min(self.capacity, self.tokens + (now - self.at) * self.refill)


@dataclass
class ComputeBudget:
    share: float = 0.25
    # Refill rates multiplied by this (1 in Azure). The benchmark runs the emulator's buckets accelerated
    # (`--compute-refill-scale`) and tells the budget the same factor, so an Azure hour takes a minute.
    time_scale: float = 1.0
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _buckets: dict[tuple[str, str], _Bucket] = field(default_factory=dict, repr=False)
    _shares: dict[str, _Share] = field(default_factory=dict, repr=False)
    _kinds: dict[str, set[str]] = field(default_factory=dict, repr=False)  # call → header names it spends
    spent: dict[str, int] = field(default_factory=dict)
    waited: float = 0.0
    deferred: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.share <= 1:
            raise ValueError("share must be in (0, 1]")

    # -- before a request ---------------------------------------------------------------------------------

    def acquire(
        self, policy: str, resource: str = "", *, deadline: float | None = None, kind: str | None = None
    ) -> float:
        """Wait until one request of `policy` fits our share and every floor; return the seconds waited.
        `kind` names the call (its buckets are learned from earlier answers to the same call); default: policy."""
        with self._lock:
            now = self.monotonic()
            wait = self._wait(policy, kind or policy, resource, now)
            if deadline is not None and now + wait > deadline:
                self.deferred += 1
                raise BudgetExhausted(policy, wait)
            self._take(policy, now + wait)
            self.spent[policy] = self.spent.get(policy, 0) + 1
            self.waited += wait
        if wait > 0:
            self.sleep(wait)
        return wait

    def _share(self, policy: str, now: float) -> _Share:
        share = self._shares.get(policy)
        if share is None:
            limit = POLICIES[policy].subscription if policy in POLICIES else Limit(60, 180)
            capacity = max(1.0, limit.capacity * self.share)
            refill = limit.refill_per_minute * self.share / 60 * self.time_scale
            share = self._shares[policy] = _Share(capacity, capacity, refill, now)
        return share

    def _wait(self, policy: str, kind: str, resource: str, now: float) -> float:
        share = self._share(policy, now)
        level = share.level(now)
        wait = 0.0 if level >= 1 else (1 - level) / share.refill
        for name in self._kinds.get(kind, ()):
            bucket = self._buckets.get((name, resource if per_resource(name) else ""))
            if bucket is None:
                continue
            floor = (1 - self.share) * bucket.capacity
            # Azure's bucket must still hold `floor` after our token (and at least the token itself); a full
            # bucket always lends one, however small the share.
            need = min(max(floor + 1, 1.0), bucket.capacity)
            level = bucket.estimate(now + wait)
            if level < need and bucket.refill > 0:
                wait += (need - level) / bucket.refill
        return wait

    def _take(self, policy: str, at: float) -> None:
        share = self._shares[policy]
        share.tokens = share.level(at) - 1
        share.at = at

    # -- after an answer ----------------------------------------------------------------------------------

    def observe(self, header: str | None, url: str = "", kind: str | None = None) -> None:
        """Record what a Compute answer says is left (`x-ms-ratelimit-remaining-resource`)."""
        remaining = parse_remaining(header)
        if not remaining:
            return
        resource = resource_of(url)
        with self._lock:
            now = self.monotonic()
            if kind is not None:
                self._kinds.setdefault(kind, set()).update(remaining)
            for name, left in remaining.items():
                key = (name, resource if per_resource(name) else "")
                known = _KNOWN_BUCKETS.get(name)
                bucket = self._buckets.get(key)
                if known is not None:
                    capacity, refill, documented = float(known.capacity), known.refill_per_minute / 60, True
                else:
                    learned = max(float(left) + 1, bucket.capacity if bucket else 0.0)
                    capacity, refill, documented = learned, learned / 3 / 60, False
                refill *= self.time_scale
                lowest = min(float(left), bucket.lowest) if bucket else float(left)
                self._buckets[key] = _Bucket(float(left), now, capacity, refill, documented, lowest)

    # -- figures ------------------------------------------------------------------------------------------

    def figures(self) -> dict[str, Any]:
        """Tokens we spent per policy, seconds waited, deferrals, and per bucket the lowest level seen as a
        share of its capacity (subscription-level buckets; per-resource ones summarised by their worst)."""
        with self._lock:
            buckets: dict[str, dict[str, Any]] = {}
            for (name, resource), bucket in self._buckets.items():
                low = round(bucket.lowest / bucket.capacity, 3) if bucket.capacity else None
                entry = buckets.get(name)
                if entry is None or (low is not None and low < entry["lowestShareLeft"]):
                    buckets[name] = {
                        "lowestShareLeft": low,
                        "capacity": int(bucket.capacity),
                        "documented": bucket.documented,
                        "perResource": bool(resource),
                    }
            return {
                "share": self.share,
                "spent": dict(sorted(self.spent.items())),
                "waitedSeconds": round(self.waited, 3),
                "deferred": self.deferred,
                "buckets": dict(sorted(buckets.items())),
            }
