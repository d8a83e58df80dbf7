"""The fault plan: throttling, latency, server errors, one-shot injections and platform failures.

A plan is plain JSON (the fleet file's `faults`, or `Emulator.set_faults`). Random choices use one
seeded generator, so a run with the same plan and the same request sequence fails the same way.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

from .compute_limits import split_bucket_name
from .ratelimit import TokenBucket

# Create timeouts (resilient create retries them) and an extension that fails on every new VM: the replacement
# loop of issue 20 (the error code and message as fleetgen writes them for VMExtensionProvisioningError).
CREATE_TIMEOUT_CODES = {"OSProvisioningTimedOut", "VMStartTimedOut"}
CREATE_FAILURE_CODES = CREATE_TIMEOUT_CODES | {"VMExtensionProvisioningError"}

# Without a throttle section the buckets only count down (ARM's classic hourly allowance).
DEFAULT_READS = (12000, 12000 / 3600)
DEFAULT_WRITES = (1200, 1200 / 3600)
# ARM keeps deletes in their own bucket (learn.microsoft.com/azure/azure-resource-manager/management/
# request-limits-and-throttling: subscription deletes 15,000 per hour in the classic table; the token-bucket
# table gives deletes 200 + 10/s like writes).
DEFAULT_DELETES = (15000, 15000 / 3600)
CONCURRENT_WRITES = ("preempt", "conflict")

_PLAN_KEYS = {
    "seed",
    "latencyMs",
    "serverErrorRate",
    "serverErrorStatus",
    "throttle",
    "createFailures",
    "deleteFailures",
    "unhealthyAfterRepair",
    "injections",
    "computeBuckets",
    "concurrentWrites",
    "coresQuota",
}


@dataclass
class Injection:
    status: int
    code: str
    message: str
    method: str | None = None
    path_contains: str | None = None
    operation: str | None = None
    count: int | None = 1  # None: every matching request
    retry_after: int | None = None

    def matches(self, method: str, path: str, operation: str | None) -> bool:
        if self.count is not None and self.count <= 0:
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        if self.path_contains and self.path_contains.lower() not in path.lower():
            return False
        return not (self.operation and (operation or "").lower() != self.operation.lower())


@dataclass
class CreateFailure:
    scale_set: str
    resource_group: str | None
    code: str
    times: int
    new_instances: int | None  # how many of the next new instances fail; None: all of them
    attempt_seconds: float


@dataclass
class DeleteFailure:
    scale_set: str
    resource_group: str | None
    instances: set[str] | None
    times: int
    code: str
    backoff_seconds: float


@dataclass
class UnhealthyAfterRepair:
    scale_set: str
    resource_group: str | None
    instances: set[str] | None
    times: int | None  # repairs that do not help, per instance; None: never heals


@dataclass
class FaultPlan:
    seed: int = 0
    latency_ms: float = 0.0
    server_error_rate: float = 0.0
    server_error_status: int = 500
    reads: TokenBucket = field(default_factory=lambda: TokenBucket(*DEFAULT_READS, enforce=False))
    writes: TokenBucket = field(default_factory=lambda: TokenBucket(*DEFAULT_WRITES, enforce=False))
    deletes: TokenBucket = field(default_factory=lambda: TokenBucket(*DEFAULT_DELETES, enforce=False))
    create_failures: list[CreateFailure] = field(default_factory=list)
    delete_failures: list[DeleteFailure] = field(default_factory=list)
    unhealthy_after_repair: list[UnhealthyAfterRepair] = field(default_factory=list)
    injections: list[Injection] = field(default_factory=list)
    # bucket name (e.g. HighCostGetVMScaleSetSubscription) -> (remaining tokens, resource id substring or None)
    compute_buckets: dict[str, tuple[float, str | None]] = field(default_factory=dict)
    # a scale-set-wide write during another: "preempt" (Azure: the earlier one ends OperationPreempted) or
    # "conflict" (the emulator's older 409 Conflict)
    concurrent_writes: str = "preempt"
    # Total Regional Cores quota: {"limit": n, "coresPerInstance"?: n, "location"?: region}; None = unlimited
    cores_quota: dict[str, Any] | None = None
    source: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(self.seed)
        # ARM's read/write/delete buckets of the fleet's other subscriptions (ARM limits each subscription on its
        # own: learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling), built
        # on first use from the plan's buckets; the first subscription uses the plan's own (`reads`, ...).
        self._other: dict[tuple[str, str], TokenBucket] = {}

    # --- request-level faults (called by the API pipeline) -------------------------------------------

    def _arm_bucket(self, kind: str) -> TokenBucket:
        return {"reads": self.reads, "writes": self.writes, "deletes": self.deletes}[kind]

    def _bucket_of(self, kind: str, subscription: str | None) -> TokenBucket:
        base = self._arm_bucket(kind)
        if not subscription:
            return base
        key = (subscription.lower(), kind)
        bucket = self._other.get(key)
        if bucket is None:
            bucket = TokenBucket(base.capacity, base.refill, enforce=base.enforce)
            self._other[key] = bucket
        return bucket

    def take_token(self, kind: str, subscription: str | None = None) -> tuple[bool, int, int]:
        """Spend one of ARM's tokens; kind is reads, writes or deletes; `subscription` another subscription's."""
        with self._lock:
            return self._bucket_of(kind, subscription).take()

    def peek_tokens(self, kind: str, subscription: str | None = None) -> int:
        with self._lock:
            return self._bucket_of(kind, subscription).peek()

    def server_error(self) -> bool:
        if self.server_error_rate <= 0:
            return False
        with self._lock:
            return self._random.random() < self.server_error_rate

    def injection_for(self, method: str, path: str, operation: str | None) -> Injection | None:
        with self._lock:
            for injection in self.injections:
                if injection.matches(method, path, operation):
                    if injection.count is not None:
                        injection.count -= 1
                    return injection
        return None

    # --- platform faults (called by the simulated platform, under the fleet lock) ------------------

    def create_failure_for(self, resource_group: str, scale_set: str) -> CreateFailure | None:
        for rule in self.create_failures:
            if _targets(rule.scale_set, rule.resource_group, resource_group, scale_set):
                if rule.new_instances is None:
                    return rule
                if rule.new_instances > 0:
                    rule.new_instances -= 1
                    return rule
        return None

    def delete_failure_for(self, resource_group: str, scale_set: str, instance: str) -> DeleteFailure | None:
        for rule in self.delete_failures:
            if _targets(rule.scale_set, rule.resource_group, resource_group, scale_set) and (
                rule.instances is None or instance.lower() in rule.instances
            ):
                return rule
        return None

    def unhealthy_rule_for(self, resource_group: str, scale_set: str, instance: str) -> UnhealthyAfterRepair | None:
        for rule in self.unhealthy_after_repair:
            if _targets(rule.scale_set, rule.resource_group, resource_group, scale_set) and (
                rule.instances is None or instance.lower() in rule.instances
            ):
                return rule
        return None

    def random_choice(self) -> float:
        with self._lock:
            return self._random.random()


def _targets(rule_set: str, rule_group: str | None, resource_group: str, scale_set: str) -> bool:
    if rule_set != "*" and rule_set.lower() != scale_set.lower():
        return False
    return rule_group is None or rule_group.lower() == resource_group.lower()


def _instances(value: Any) -> set[str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise ValueError("'instances' must be a list of instance ids or VM names")
    return {str(v).lower() for v in value}


def _bucket(spec: Any, default: tuple[float, float]) -> TokenBucket:
    if spec is None:
        return TokenBucket(*default, enforce=False)
    capacity = float(spec.get("capacity", default[0]))
    refill = float(spec.get("refillPerSecond", default[1]))
    return TokenBucket(capacity, refill, enforce=True)


def _cores_quota(rule: Any) -> dict[str, Any] | None:
    if rule is None:
        return None
    if (
        not isinstance(rule, dict)
        or not isinstance(rule.get("limit"), int)
        or set(rule)
        - {
            "limit",
            "coresPerInstance",
            "location",
        }
    ):
        raise ValueError("coresQuota is {'limit': n, 'coresPerInstance'?: n, 'location'?: region}")
    return dict(rule)


def parse_plan(spec: dict[str, Any] | None) -> FaultPlan:
    """Build a FaultPlan from its JSON form; unknown keys are an error (they are usually typos)."""
    spec = dict(spec or {})
    unknown = set(spec) - _PLAN_KEYS
    if unknown:
        raise ValueError(f"unknown fault plan keys: {sorted(unknown)}; known: {sorted(_PLAN_KEYS)}")
    throttle = spec.get("throttle") or {}
    creates = []
    for rule in spec.get("createFailures") or []:
        code = rule.get("code", "OSProvisioningTimedOut")
        if code not in CREATE_FAILURE_CODES:
            raise ValueError(f"createFailures code must be one of {sorted(CREATE_FAILURE_CODES)}")
        creates.append(
            CreateFailure(
                scale_set=rule["scaleSet"],
                resource_group=rule.get("resourceGroup"),
                code=code,
                times=int(rule.get("times", 1)),
                new_instances=rule.get("newInstances"),
                attempt_seconds=float(rule.get("attemptSeconds", 300)),
            )
        )
    deletes = [
        DeleteFailure(
            scale_set=rule["scaleSet"],
            resource_group=rule.get("resourceGroup"),
            instances=_instances(rule.get("instances")),
            times=int(rule.get("times", 1)),
            code=rule.get("code", "InternalExecutionError"),
            backoff_seconds=float(rule.get("backoffSeconds", 60)),
        )
        for rule in spec.get("deleteFailures") or []
    ]
    unhealthy = [
        UnhealthyAfterRepair(
            scale_set=rule["scaleSet"],
            resource_group=rule.get("resourceGroup"),
            instances=_instances(rule.get("instances")),
            times=None if rule.get("times") is None else int(rule["times"]),
        )
        for rule in spec.get("unhealthyAfterRepair") or []
    ]
    injections = [
        Injection(
            status=int(rule.get("status", 500)),
            code=rule.get("code", "InternalServerError"),
            message=rule.get("message") or f"Injected fault: {rule.get('code', 'InternalServerError')}.",
            method=rule.get("method"),
            path_contains=rule.get("pathContains"),
            operation=rule.get("operation"),
            count=None if "count" in rule and rule["count"] is None else int(rule.get("count", 1)),
            retry_after=rule.get("retryAfter"),
        )
        for rule in spec.get("injections") or []
    ]
    compute_buckets: dict[str, tuple[float, str | None]] = {}
    for name, rule in (spec.get("computeBuckets") or {}).items():
        split_bucket_name(name)  # ValueError names the known buckets
        if not isinstance(rule, dict) or "remaining" not in rule:
            raise ValueError(f"computeBuckets.{name} needs {{'remaining': n}} (optional 'resource')")
        compute_buckets[name] = (float(rule["remaining"]), rule.get("resource"))
    concurrent = str(spec.get("concurrentWrites", "preempt"))
    if concurrent not in CONCURRENT_WRITES:
        raise ValueError(f"concurrentWrites must be one of {list(CONCURRENT_WRITES)}")
    return FaultPlan(
        seed=int(spec.get("seed", 0)),
        latency_ms=float(spec.get("latencyMs", 0)),
        server_error_rate=float(spec.get("serverErrorRate", 0)),
        server_error_status=int(spec.get("serverErrorStatus", 500)),
        reads=_bucket(throttle.get("reads"), DEFAULT_READS),
        writes=_bucket(throttle.get("writes"), DEFAULT_WRITES),
        deletes=_bucket(throttle.get("deletes"), DEFAULT_DELETES),
        create_failures=creates,
        delete_failures=deletes,
        unhealthy_after_repair=unhealthy,
        injections=injections,
        compute_buckets=compute_buckets,
        concurrent_writes=concurrent,
        cores_quota=_cores_quota(spec.get("coresQuota")),
        source=spec,
    )
