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

What Azure really sends (captures in tests/recorded/, sources in its index) comes in three forms. Microsoft's 2024
azure-cli recordings name the table's rows: `HighCostGetVMScaleSetSubscriptionMaximum;1074,
HighCostGetVMScaleSetResource;29` (the VMSS High Cost Get row is 1,080 per subscription, 30 per scale set): those are
taken as the table says. Older answers (2019-2023) name a window, `HighCostGetVMScaleSet3Min;174,
HighCostGetVMScaleSet30Min;891`, and Microsoft's 2024 throttling article
(SupportArticles-docs `troubleshooting-throttling-errors.md`) shows the same numbers with the window stripped and the
same name twice, `DeleteVMScaleSet;107,DeleteVMScaleSet;587`. Each entry is its own bucket (a repeated name is keyed
by its position), and a request waits for the tightest. What is learned from an entry is never more optimistic
than Microsoft's table for its policy stem (`HighCostGetVMScaleSet` is "VMSS High Cost Get"): capacity is the largest
remaining seen (+1), at most the table's; refill is capacity / window per minute (a 30-minute bucket of ~900 refills
~30 a minute), and without a window the longest Azure uses (30 minutes), at most the table's refill. A stem the table
does not have (`VMScaleSetActions`, `CreateVMScaleSet`, `VMScaleSetBatchedVMRequests5Min`) is learned the same way
and marked undocumented. `VmssQueuedVMOperations` is a count of queued operations, not tokens (Microsoft's own
recordings show `;0` on accepted writes), so it is never waited on. The emulator's `<stem>Subscription` name maps
to the subscription row like `...SubscriptionMaximum`.
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
    stems: tuple[str, ...] = ()  # other stems Azure's captured headers use for this policy


# The documented table (refill per minute / capacity). `header` is the stem the emulator used; `stems` the ones
# Azure's captured headers use for the same policy (VM GET answers `LowCostGet3Min`, VM list `HighCostGet3Min`,
# VMSS VM list `VMScaleSetVMViews3Min`; sources in tests/recorded/index.json and headers.json).
POLICIES: dict[str, Policy] = {
    p.name: p
    for p in (
        Policy("VMSS Low Cost Get", "GetVMScaleSet", Limit(12, 36), Limit(800, 2400)),
        Policy("VMSS High Cost Get", "HighCostGetVMScaleSet", Limit(10, 30), Limit(360, 1080)),
        Policy("VMSS Update", "UpdateVMScaleSet", Limit(4, 12), Limit(500, 1500)),
        Policy("VMSS Delete", "DeleteVMScaleSet", Limit(4, 12), Limit(175, 525)),
        Policy("Scale set VMs Get", "GetVMScaleSetVM", Limit(12, 36), Limit(2000, 6000), ("VMScaleSetVMViews",)),
        Policy("Scale set VMs Update", "UpdateVMScaleSetVM", Limit(4, 12), Limit(500, 1500)),
        Policy("Scale set VMs Delete", "DeleteVMScaleSetVM", Limit(4, 12), Limit(500, 1500)),
        Policy("VM Low Cost Get", "LowCostGetVM", Limit(12, 36), Limit(8000, 24000), ("LowCostGet",)),
        Policy("VM High Cost Get", "HighCostGetVM", None, Limit(300, 900), ("HighCostGet",)),
        Policy("VM Delete", "DeleteVM", Limit(4, 12), Limit(500, 1500)),
        Policy("Get Operation", "GetOperation", Limit(15, 45), Limit(5000, 15000)),
    )
}
VMSS_LOW_COST_GET = "VMSS Low Cost Get"
VMSS_HIGH_COST_GET = "VMSS High Cost Get"
SCALE_SET_VMS_GET = "Scale set VMs Get"
VM_LOW_COST_GET = "VM Low Cost Get"
VM_HIGH_COST_GET = "VM High Cost Get"

_BY_STEM: dict[str, Policy] = {}
for _policy in POLICIES.values():
    for _stem in (_policy.header, *_policy.stems):
        _BY_STEM[_stem.lower()] = _policy

# Not token buckets: a count of operations queued on the scale set (`;0` on accepted writes in Microsoft's
# azure-cli recordings), so never a reason to wait.
NOT_TOKENS = frozenset({"vmssqueuedvmoperations"})
# Without a window in the name (the 2024 article's form) assume the longest window Azure uses: the slowest refill.
LONGEST_WINDOW_MINUTES = 30

_ENTRY = re.compile(r"^\s*Microsoft\.Compute/(?P<name>[A-Za-z0-9_.\-]+)\s*;\s*(?P<remaining>-?\d+)\s*$", re.IGNORECASE)
_WINDOW = re.compile(r"^(?P<stem>[A-Za-z_.\-]+?)(?P<minutes>\d+)Min$", re.IGNORECASE)
# 2024 recordings (azure-cli test_vmss_create_and_modify.yaml): `HighCostGetVMScaleSetSubscriptionMaximum;1074,
# HighCostGetVMScaleSetResource;29`: the table's subscription and per-resource rows by name.
_SCOPE = re.compile(r"^(?P<stem>[A-Za-z_.\-]+?)(?P<scope>SubscriptionMaximum|Subscription|Resource)$", re.IGNORECASE)
_RESOURCE = re.compile(
    r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/"
    r"(?:virtualMachineScaleSets|virtualMachines)/[^/?]+",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Reading:
    """One entry of `x-ms-ratelimit-remaining-resource`: one bucket as Azure reports it."""

    name: str  # as sent, e.g. HighCostGetVMScaleSet30Min
    key: str  # the bucket's key: the name, `#2`, `#3`... for a repeated name's later entries
    stem: str  # the name without its window or emulator suffix
    window_minutes: int | None
    remaining: int
    policy: str | None  # the documented policy the stem belongs to, if any
    scope: str  # "window" (windowed or bare), "subscription" / "resource" (`...SubscriptionMaximum`, `...Resource`)
    long_window: bool = True  # the subscription's long bucket (30Min, or the last of a repeated name)

    @property
    def tokens(self) -> bool:
        return self.name.lower() not in NOT_TOKENS


def parse_readings(header: str | None) -> list[Reading]:
    """Every `Microsoft.Compute/<name>;<remaining>` entry, in order; junk entries are skipped."""
    found: list[tuple[str, int]] = []
    for part in (header or "").split(","):
        entry = _ENTRY.match(part)
        if entry:
            found.append((entry["name"], max(0, int(entry["remaining"]))))
    totals: dict[str, int] = {}
    for name, _ in found:
        totals[name.lower()] = totals.get(name.lower(), 0) + 1
    out: list[Reading] = []
    seen: dict[str, int] = {}
    for name, remaining in found:
        position = seen[name.lower()] = seen.get(name.lower(), 0) + 1
        total = totals[name.lower()]
        # a repeated name's entries are told apart by position among however many came (`#1/2`, `#2/2`): a
        # name that comes once in one answer (a list's single bucket) is not mistaken for the first of two
        key = name if total == 1 else f"{name}#{position}/{total}"
        stem, window, scope = name, None, "window"
        scoped = _SCOPE.match(name)
        windowed = _WINDOW.match(name)
        if scoped:
            stem = scoped["stem"]
            scope = "resource" if scoped["scope"].lower() == "resource" else "subscription"
        elif windowed:
            stem, window = windowed["stem"], int(windowed["minutes"])
        # the long window: 30 minutes, or (no window named) the last of a repeated name, as in every capture
        long_window = window >= LONGEST_WINDOW_MINUTES if window is not None else position == total
        policy = _BY_STEM.get(stem.lower())
        out.append(Reading(name, key, stem, window, remaining, policy.name if policy else None, scope, long_window))
    return out


def parse_remaining(header: str | None) -> dict[str, int]:
    """`Microsoft.Compute/HighCostGetVMScaleSet3Min;174,...` → {name: remaining}; a repeated name keeps its lowest."""
    out: dict[str, int] = {}
    for reading in parse_readings(header):
        out[reading.name] = min(reading.remaining, out.get(reading.name, reading.remaining))
    return out


def learned_limit(reading: Reading, capacity_seen: float) -> tuple[Limit, bool]:
    """What a bucket is taken to be (capacity, refill per minute) and whether its policy is documented.

    `capacity_seen` is the largest remaining seen + 1. Never more optimistic than Microsoft's table for a known
    stem: the refill is at most capacity / window and at most the table's; the long bucket's capacity is at least
    the table's (a bucket first seen half drained must not pass for a full small one: the floor we keep under it
    is the documented one). A short window's capacity is what Azure reported (its capacity is not documented)."""
    policy = POLICIES.get(reading.policy or "")
    if policy is not None and reading.scope != "window":
        row = policy.resource if reading.scope == "resource" else policy.subscription
        if row is not None:
            return row, True  # the name states the table's row: take it as documented
    window = reading.window_minutes or LONGEST_WINDOW_MINUTES
    capacity = max(1.0, capacity_seen)
    if policy is None:
        return Limit(capacity / window, int(capacity)), False
    table = policy.subscription
    if reading.long_window:
        capacity = max(capacity, float(table.capacity))
    return Limit(min(capacity / window, table.refill_per_minute), int(capacity)), True


def resource_of(url: str) -> str:
    """The scale set or VM a request is about (per-resource buckets are kept per resource), or ''."""
    found = _RESOURCE.search(url)
    return found.group(0).lower() if found else ""


def per_resource(name: str) -> bool:
    """`<stem>Resource` buckets are kept per scale set / VM; windowed and `...SubscriptionMaximum` ones are not."""
    return name.split("#", 1)[0].lower().endswith("resource")


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
    seen: float = 0.0  # the largest remaining reported (+1)
    policy: str | None = None

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
        readings = [r for r in parse_readings(header) if r.tokens]
        if not readings:
            return
        resource = resource_of(url)
        with self._lock:
            now = self.monotonic()
            if kind is not None:
                self._kinds.setdefault(kind, set()).update(r.key for r in readings)
            for reading in readings:
                key = (reading.key, resource if per_resource(reading.name) else "")
                bucket = self._buckets.get(key)
                seen = max(float(reading.remaining) + 1, bucket.seen if bucket else 0.0)
                limit, documented = learned_limit(reading, seen)
                left = float(reading.remaining)
                lowest = min(left, bucket.lowest) if bucket else left
                self._buckets[key] = _Bucket(
                    left,
                    now,
                    float(limit.capacity),
                    limit.refill_per_minute / 60 * self.time_scale,
                    documented,
                    lowest,
                    seen,
                    reading.policy,
                )

    # -- figures ------------------------------------------------------------------------------------------

    def figures(self) -> dict[str, Any]:
        """Tokens we spent per policy, seconds waited, deferrals, and per bucket the lowest level seen as a
        share of its capacity (subscription-level buckets; per-resource ones summarised by their worst)."""
        with self._lock:
            buckets: dict[str, dict[str, Any]] = {}
            for (name, resource), bucket in self._buckets.items():
                low = round(min(bucket.lowest, bucket.capacity) / bucket.capacity, 3) if bucket.capacity else None
                entry = buckets.get(name)
                if entry is None or (low is not None and low < entry["lowestShareLeft"]):
                    buckets[name] = {
                        "lowestShareLeft": low,
                        "capacity": int(bucket.capacity),
                        "refillPerMinute": round(bucket.refill * 60 / self.time_scale, 3),
                        "documented": bucket.documented,
                        "policy": bucket.policy,
                        "perResource": bool(resource),
                    }
            return {
                "share": self.share,
                "spent": dict(sorted(self.spent.items())),
                "waitedSeconds": round(self.waited, 3),
                "deferred": self.deferred,
                "buckets": dict(sorted(buckets.items())),
            }
