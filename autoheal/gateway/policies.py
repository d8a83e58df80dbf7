"""Metering, pacing and Compute's budget as azure-core pipeline policies, on every client the project builds.

A policy in the SDK's pipeline sees every request the client sends: the gateway's raw reads, the SDK's
typed writes, each long-running operation's status polls and every retry (azure-core runs per-retry
policies after `RetryPolicy`, once per attempt — `azure/core/_pipeline_client.py`, `per_retry_policies`).
So nothing can bypass the meter or the budget by taking another road to ARM. `arm_policies()` is the one
list a client builder passes as `per_retry_policies`.

What a request spends is read from the request itself (`charge_of`: method and path → the documented policy
of Microsoft's "Compute throttling limits" article). Reads wait for the budget's share and floors and, when
the wait would pass the current unit of work's deadline (`DEADLINE`, a module-level ContextVar the sweep
sets), raise `BudgetExhausted` so the scale set is deferred. Writes spend our share of their policy but
neither wait for the floors of reads nor defer: a remediation half done (deleted, not yet restored) is
worse than a slow one, and the guardrails (disruption budget, storm brake) bound how many writes there are.
LRO polls run in the poller's own thread, where no deadline is set: they wait, never defer.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from azure.core.pipeline.policies import HTTPPolicy

from .budget import (
    SCALE_SET_VMS_GET,
    VM_HIGH_COST_GET,
    VM_LOW_COST_GET,
    VMSS_HIGH_COST_GET,
    VMSS_LOW_COST_GET,
    ComputeBudget,
    parse_remaining,
    resource_of,
)

# The monotonic time by which the current unit of work (a sweep's slice) must be done: a read whose budget
# wait would pass it raises BudgetExhausted and the scale set is deferred. Set by the engine per scale set.
DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("autoheal_deadline", default=None)

# ARM refills a principal's reads at about 25 per second (ARM's "Understand how ARM throttles requests").
ARM_READ_REFILL_PER_SECOND = 25.0
MAX_PACING_SECONDS = 5.0  # one slow answer never stalls a sweep for long

# Policies the gateway's writes spend (names as the article titles them). Azure's recordings charge a scale-set PATCH
# and its POST actions to `VMScaleSetActions` (azure-powershell TestVirtualMachineScaleSetRepairsAction 2022,
# TestResiliencyPolicyVMSS 2024, azure-cli test_vmss_set_orchestration_service_state, test_vmss_create_and_modify for
# delete-instances) and an instance's restart to `VMScaleSetVMActions` (azure-sdk-for-net TestVMScaleSetVMOperations;
# tests/recorded/), not to the article's VMSS Update / Scale set VMs Update rows. Neither is in the article's table,
# so our share of them is the budget's default for an unknown policy (the most cautious it has).
VMSS_ACTIONS = "VMSS actions (recorded)"
VMSS_DELETE = "VMSS Delete"
SCALE_SET_VM_ACTIONS = "Scale set VM actions (recorded)"
SCALE_SET_VMS_DELETE = "Scale set VMs Delete"
VM_UPDATE = "VM Update"  # in the article's worked example, not its table (the budget then uses a default)
VM_DELETE = "VM Delete"
GET_OPERATION = "Get Operation"
OTHER_COMPUTE = "Other Compute"  # a Compute call of no known row: still counted and shared, never free


@dataclass(frozen=True)
class Charge:
    """What one request spends: a policy of the table, the call's kind (its learned buckets), read or not."""

    policy: str
    kind: str
    read: bool


# path shape → (policy, kind): what a read spends
_Reads = dict[tuple[str, ...], tuple[str, str | None]]
_SCALE_SET_READS: _Reads = {
    # path shape after .../virtualMachineScaleSets → (policy, kind); `kind` None means the policy's name.
    (): (VMSS_HIGH_COST_GET, None),  # list (subscription or group): high cost
    ("*",): (VMSS_LOW_COST_GET, None),
    ("*", "instanceview"): (VMSS_HIGH_COST_GET, "scale set instance view"),
    # The scale-set VM list is in no row of the documented table: charged as VMSS High Cost Get (unverified).
    ("*", "virtualmachines"): (VMSS_HIGH_COST_GET, "scale set VM list"),
    ("*", "virtualmachines", "*"): (SCALE_SET_VMS_GET, None),
    ("*", "virtualmachines", "*", "instanceview"): (SCALE_SET_VMS_GET, None),
}
_VM_READS: _Reads = {
    (): (VM_HIGH_COST_GET, None),
    ("*",): (VM_LOW_COST_GET, None),
    ("*", "instanceview"): (VM_LOW_COST_GET, None),
}


def _shape(rest: list[str]) -> tuple[str, ...]:
    return tuple(part if part in ("instanceview", "virtualmachines") else "*" for part in rest)


def _scale_set_write(rest: list[str], method: str) -> str | None:
    if len(rest) >= 3 and rest[1] == "virtualmachines":  # one instance: delete, update, or an action
        return SCALE_SET_VMS_DELETE if method == "DELETE" and len(rest) == 3 else SCALE_SET_VM_ACTIONS
    if not rest:
        return None
    # The scale set's own DELETE, and deallocate (recorded: DeleteVMScaleSet, azure-cli 2024), spend VMSS Delete;
    # the PATCH and every other action (delete-instances included, as recorded) VMSS actions.
    deleting = method == "DELETE" or (len(rest) == 2 and rest[1] in ("deallocate", "poweroff"))
    return VMSS_DELETE if deleting else VMSS_ACTIONS


def _vm_write(rest: list[str], method: str) -> str | None:
    if not rest:
        return None
    return VM_DELETE if method == "DELETE" and len(rest) == 1 else VM_UPDATE


_WritePolicy = Callable[[list[str], str], str | None]
# Path segment after Microsoft.Compute → its reads by path shape and the policy its writes spend.
_RESOURCE_KINDS: dict[str, tuple[_Reads, _WritePolicy]] = {
    "virtualmachinescalesets": (_SCALE_SET_READS, _scale_set_write),
    "virtualmachines": (_VM_READS, _vm_write),
}


def _resource_charge(rest: list[str], method: str, reads: _Reads, write_policy: _WritePolicy) -> Charge | None:
    """A scale set's or VM's request (path after the resource type): a read of a known shape or a write; None
    for neither (charged as Other Compute)."""
    if method == "GET":
        found = reads.get(_shape(rest))
        return Charge(found[0], found[1] or found[0], True) if found else None
    policy = write_policy(rest, method)
    return Charge(policy, policy, False) if policy else None


def charge_of(method: str, url: str) -> Charge | None:
    """The Compute policy a request spends, from its method and path; None for anything not Microsoft.Compute
    (resource groups, Resource Graph and its GET/LIST API, Activity Log: their own limits, not Compute's)."""
    parsed = urlparse(url)
    if "useresourcegraph=true" in parsed.query.lower():
        return None  # Resource Graph's GET/LIST API answers it: ARG's quota, no Compute bucket (compute.py)
    parts = [p.lower() for p in parsed.path.split("/") if p]
    try:
        at = parts.index("microsoft.compute")
    except ValueError:
        return None
    if at == 0 or parts[at - 1] != "providers":
        return None
    rest = parts[at + 1 :]
    method = method.upper()
    read = method == "GET"
    kind_of = rest[0] if rest else ""
    if kind_of == "locations" and len(rest) >= 4 and rest[2] == "operations" and read:
        return Charge(GET_OPERATION, GET_OPERATION, True)
    if kind_of in _RESOURCE_KINDS:
        reads, write_policy = _RESOURCE_KINDS[kind_of]
        charge = _resource_charge(rest[1:], method, reads, write_policy)
        if charge is not None:
            return charge
    return Charge(OTHER_COMPUTE, OTHER_COMPUTE, read)


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None


@dataclass
class ArmMeter:
    """Counts what crossed the wire (every attempt, retries and LRO polls included)."""

    reads: int = 0
    writes: int = 0
    throttled: int = 0
    throttle_wait_seconds: float = 0.0
    pacing_seconds: float = 0.0
    remaining_reads: int | None = None
    remaining_writes: int | None = None
    # Compute's buckets as last reported (x-ms-ratelimit-remaining-resource), e.g. {"GetVMScaleSetResource": 35}
    remaining_compute: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def requests(self) -> int:
        return self.reads + self.writes

    def on_response(self, pipeline_response: Any) -> None:
        request = pipeline_response.http_request
        response = pipeline_response.http_response
        headers = response.headers
        with self._lock:
            if request.method.upper() == "GET":
                self.reads += 1
            else:
                self.writes += 1
            reads = _int_header(headers, "x-ms-ratelimit-remaining-subscription-reads")
            writes = _int_header(headers, "x-ms-ratelimit-remaining-subscription-writes")
            if reads is not None:
                self.remaining_reads = reads
            if writes is not None:
                self.remaining_writes = writes
            self.remaining_compute.update(parse_remaining(headers.get("x-ms-ratelimit-remaining-resource")))
            if response.status_code == 429:
                self.throttled += 1
                self.throttle_wait_seconds += float(_int_header(headers, "Retry-After") or 0)

    def add_pacing(self, seconds: float) -> None:
        with self._lock:
            self.pacing_seconds += seconds

    def figures(self) -> dict[str, Any]:
        with self._lock:
            return {
                "reads": self.reads,
                "writes": self.writes,
                "throttled": self.throttled,
                "throttleWaitSeconds": self.throttle_wait_seconds,
                "pacingSeconds": round(self.pacing_seconds, 3),
                "remainingReads": self.remaining_reads,
                "remainingWrites": self.remaining_writes,
                "remainingCompute": dict(self.remaining_compute),
            }


class MeterPolicy(HTTPPolicy):  # type: ignore[type-arg]
    """Every answer (each attempt) counted and its rate-limit headers kept."""

    def __init__(self, meter: ArmMeter) -> None:
        super().__init__()
        self.meter = meter

    def send(self, request: Any) -> Any:
        response = self.next.send(request)
        self.meter.on_response(response)
        return response


class PacingPolicy(HTTPPolicy):  # type: ignore[type-arg]
    """Slow reads down before ARM throttles them: below the reserve of subscription reads left (as the meter
    last saw it), wait for ARM's refill, (reserve - remaining) / 25 s, capped."""

    def __init__(self, meter: ArmMeter, reserve: int, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__()
        self.meter = meter
        self.reserve = reserve
        self.sleep = sleep

    def send(self, request: Any) -> Any:
        remaining = self.meter.remaining_reads
        if request.http_request.method.upper() == "GET" and remaining is not None and remaining < self.reserve:
            wait = min(MAX_PACING_SECONDS, (self.reserve - remaining) / ARM_READ_REFILL_PER_SECOND)
            self.meter.add_pacing(wait)
            self.sleep(wait)
        return self.next.send(request)


class ComputeBudgetPolicy(HTTPPolicy):  # type: ignore[type-arg]
    """Compute's budget (autoheal/gateway/budget.py) before each attempt, its headers learned after. The
    budget may be swapped (or be None: counted nowhere) after the client is built."""

    def __init__(self, budget: ComputeBudget | None) -> None:
        super().__init__()
        self.budget = budget

    def send(self, request: Any) -> Any:
        http_request = request.http_request
        url = str(http_request.url)
        charge = charge_of(http_request.method, url)
        budget = self.budget
        if charge is None or budget is None:
            return self.next.send(request)
        resource = resource_of(url)
        if charge.read:
            budget.acquire(charge.policy, resource, deadline=DEADLINE.get(), kind=charge.kind)
        else:
            # A kind no answer is learned under: our share only, no floors, no deadline (see the module doc).
            budget.acquire(charge.policy, resource, kind=f"{charge.kind} (write)")
        response = self.next.send(request)
        header = response.http_response.headers.get("x-ms-ratelimit-remaining-resource")
        budget.observe(header, url, charge.kind if charge.read else None)
        return response


def arm_policies(
    meter: ArmMeter | None = None,
    *,
    budget: ComputeBudget | ComputeBudgetPolicy | None = None,
    reads_reserve: int = 0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[HTTPPolicy]:  # type: ignore[type-arg]
    """The per-retry policies for any ARM client the project builds (pass as `per_retry_policies`):
    pacing and the meter when a meter is given, Compute's budget when one is given (a ComputeBudgetPolicy
    the caller keeps lets it swap the budget later)."""
    policies: list[HTTPPolicy] = []  # type: ignore[type-arg]
    if meter is not None and reads_reserve > 0:
        policies.append(PacingPolicy(meter, reads_reserve, sleep))
    if budget is not None:
        policies.append(budget if isinstance(budget, ComputeBudgetPolicy) else ComputeBudgetPolicy(budget))
    if meter is not None:
        policies.append(MeterPolicy(meter))
    return policies
