"""Rate-limit bookkeeping: ARM's subscription token buckets and Compute's per-policy token buckets."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .compute_limits import (
    DEFAULT_HEADER_FORM,
    LEVELS,
    POLICIES,
    SUBSCRIPTION,
    Charge,
    Limit,
    bucket_name,
    header_entry,
    header_name,
    header_order,
    split_bucket_name,
)


def monotonic() -> float:
    """The buckets' clock: real time (clients wait out Retry-After in real time); a test may replace it."""
    return time.monotonic()


class TokenBucket:
    """ARM-style token bucket in real (monotonic) time, since clients wait out Retry-After in real time."""

    def __init__(self, capacity: float, refill_per_second: float, *, enforce: bool) -> None:
        self.capacity = float(capacity)
        self.refill = float(refill_per_second)
        self.enforce = enforce
        self._tokens = float(capacity)
        self._stamp = monotonic()
        self.lowest = float(capacity)  # the fewest tokens it ever held after a spend (stats)

    def _refill(self) -> None:
        now = monotonic()
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

    def available(self) -> float:
        self._refill()
        return self._tokens

    def spend(self) -> int:
        """Take one token (the caller checked `available()`); returns what is left, whole."""
        self._refill()
        self._tokens = max(0.0, self._tokens - 1)
        self.lowest = min(self.lowest, self._tokens)
        return int(self._tokens)

    def seconds_to_one(self) -> int:
        """Whole seconds until one token is back (Retry-After)."""
        self._refill()
        if self._tokens >= 1:
            return 0
        return max(1, math.ceil((1 - self._tokens) / self.refill)) if self.refill > 0 else 60

    def set_tokens(self, tokens: float) -> None:
        self._refill()
        self._tokens = max(0.0, min(self.capacity, float(tokens)))
        self.lowest = min(self.lowest, self._tokens)


@dataclass
class ComputeVerdict:
    allowed: bool
    header: str  # x-ms-ratelimit-remaining-resource
    retry_after: int = 0
    empty: str | None = None  # the bucket name that was out of tokens
    limit: Limit | None = None
    targets: list[str] = field(default_factory=list)  # the empty buckets as the header names them


class ComputeThrottle:
    """Compute's token buckets, keyed by (subscription, region, policy, level, resource); in real (monotonic) time
    because clients wait out Retry-After in real time. `refill_scale`/`capacity_scale` speed tests up;
    the defaults (1.0) are Azure's numbers."""

    def __init__(self, *, refill_scale: float = 1.0, capacity_scale: float = 1.0) -> None:
        if refill_scale <= 0 or capacity_scale <= 0:
            raise ValueError("compute refill/capacity scale must be positive")
        self.refill_scale = refill_scale
        self.capacity_scale = capacity_scale
        self._lock = threading.Lock()
        # (subscription, region, bucket name, resource): Compute limits "the number of API requests made per
        # resource and per subscription per region per minute" (learn.microsoft.com/azure/virtual-machines/
        # compute-throttling-limits), so one subscription's sweep never drains another's buckets.
        self._buckets: dict[tuple[str, str, str, str], TokenBucket] = {}
        self._presets: dict[str, tuple[float, str | None]] = {}
        self._preset_source: object = None
        self.reset_counters()

    def reset_counters(self) -> None:
        self._spent: dict[str, int] = {}
        self._throttled: dict[str, int] = {}

    def reset(self) -> None:
        """Forget every bucket (a new fleet is a new world); presets stay until the next plan."""
        with self._lock:
            self._buckets = {}
            self.reset_counters()

    def preset(self, source: object, presets: dict[str, tuple[float, str | None]]) -> None:
        """Pre-drain buckets from the fault plan's `computeBuckets` (applied once per plan object):
        existing matching buckets drop to `remaining` now, new ones start there while the plan stands."""
        with self._lock:
            if source is self._preset_source:
                return
            self._preset_source = source
            self._presets = dict(presets)
            for (_, _, name, resource), bucket in self._buckets.items():
                found = self._presets.get(name)
                if found and _resource_matches(found[1], resource):
                    bucket.set_tokens(found[0])

    def _bucket(self, subscription: str, region: str, name: str, resource: str, limit: Limit) -> TokenBucket:
        key = (subscription, region, name, resource)
        bucket = self._buckets.get(key)
        if bucket is None:
            capacity = max(1.0, limit.capacity * self.capacity_scale)
            bucket = TokenBucket(capacity, limit.refill_per_minute / 60 * self.refill_scale, enforce=True)
            found = self._presets.get(name)
            if found and _resource_matches(found[1], resource):
                bucket.set_tokens(found[0])
            self._buckets[key] = bucket
        return bucket

    def charge(
        self,
        charge: Charge,
        region: str,
        resource: str,
        form: str = DEFAULT_HEADER_FORM,
        subscription: str = "",
    ) -> ComputeVerdict:
        """Spend one token in each of the charge's buckets (its policy's, then the recorded extras'), or none
        when any is empty (then 429). The header is written in `form` (compute_limits.HEADER_FORMS)."""
        spends = [(POLICIES[charge.policy], header_order(charge.levels, form, charge.policy))]
        spends += [(POLICIES[extra], header_order(LEVELS, form, extra)) for extra in charge.extra]
        with self._lock:
            buckets = []
            for policy, levels in spends:
                for level in levels:
                    limit = policy.limit(level)
                    if limit is None:
                        continue
                    name = bucket_name(policy.name, level)
                    key = "" if level == SUBSCRIPTION else resource
                    buckets.append(
                        (policy.name, name, level, limit, self._bucket(subscription.lower(), region, name, key, limit))
                    )
            empty = [entry for entry in buckets if entry[4].available() < 1]
            if empty:
                policy_name, name, _, limit, _ = max(empty, key=lambda entry: entry[4].seconds_to_one())
                self._throttled[policy_name] = self._throttled.get(policy_name, 0) + 1
                header = ",".join(header_entry(p, lv, b.peek(), form) for p, _, lv, _, b in buckets)
                retry = max(entry[4].seconds_to_one() for entry in empty)
                names = [header_name(p, lv, form) for p, _, lv, _, _ in empty]
                return ComputeVerdict(False, header, retry, name, limit, names)
            parts = []
            for policy_name, name, level, _, bucket in buckets:
                parts.append(header_entry(policy_name, level, bucket.spend(), form))
                self._spent[name] = self._spent.get(name, 0) + 1
            return ComputeVerdict(True, ",".join(parts))

    def snapshot(self) -> dict[str, Any]:
        """computePolicies: per policy and level, tokens spent and the lowest remaining of its buckets;
        computeThrottled: 429s per policy."""
        with self._lock:
            remaining: dict[str, int] = {}
            counts: dict[str, int] = {}
            by_subscription: dict[str, dict[str, dict[str, float]]] = {}
            for (subscription, _, name, _), bucket in self._buckets.items():
                left = bucket.peek()
                remaining[name] = min(remaining.get(name, left), left)
                counts[name] = counts.get(name, 0) + 1
                # the lowest fill (fewest tokens ever left / capacity) per subscription and bucket name, across
                # regions and resources
                fill = round(bucket.lowest / bucket.capacity, 4)
                entry = by_subscription.setdefault(subscription, {}).setdefault(name, {"lowestFill": 1.0})
                entry["lowestFill"] = min(entry["lowestFill"], fill)
            policies: dict[str, dict[str, dict[str, int]]] = {}
            for name in sorted(set(self._spent) | set(remaining)):
                policy, level = split_bucket_name(name)
                policies.setdefault(policy, {})[level] = {
                    "spent": self._spent.get(name, 0),
                    "remaining": remaining.get(name, 0),
                    "buckets": counts.get(name, 0),
                }
            return {
                "computePolicies": policies,
                "computeThrottled": dict(sorted(self._throttled.items())),
                "computeBySubscription": {k: by_subscription[k] for k in sorted(by_subscription)},
            }


def _resource_matches(pattern: str | None, resource: str) -> bool:
    return pattern is None or pattern.lower() in resource.lower()
