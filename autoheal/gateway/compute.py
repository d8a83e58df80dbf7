"""The one door to Azure Resource Manager (Microsoft.Compute).

Nothing else in the project imports `azure.mgmt.compute`. Reads for a sweep are one subscription-wide
list of scale sets, then per scale set its instance view and one paged instance list with instance
views: `1 + 2N` requests, no per-instance GETs. Reads go through the SDK client's pipeline
(`send_request`: auth, retries honouring `Retry-After`, tracing) and stay REST-shaped JSON, which
`snapshot.py` turns into dataclasses without paying for SDK model construction on 50,000 VMs.
Writes use the SDK's typed long-running operations and block until Azure reports the final state.

Every public method declares the RBAC actions it needs with `@requires(...)`; `REQUIRED_ACTIONS` is
the single list the custom role in `infra/` is checked against.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import quote, urlparse

from ..model import ScaleSetSnapshot, ServiceState
from ..resource_ids import segments
from ..snapshot import parse_scale_set
from .budget import ComputeBudget
from .clients import DEFAULT_ENDPOINT, ArmConnection
from .errors import ErrorClass, classify
from .policies import DEADLINE, ArmMeter, ComputeBudgetPolicy, arm_policies

__all__ = ["DEADLINE", "ArmError", "ArmMeter", "ComputeGateway"]  # DEADLINE and ArmMeter live in policies.py

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.mgmt.compute import ComputeManagementClient

    from .activitylog import ActivityLogGateway

log = logging.getLogger("autoheal.gateway")

# The api-version azure-mgmt-compute 39 sends; raw reads use the same one (a test keeps them equal).
API_VERSION = "2026-04-01"
COMPUTE = "/providers/Microsoft.Compute"
# Microsoft.Resources (resource groups): a different resource provider with its own api-versions.
RESOURCES_API_VERSION = "2021-04-01"
# Resource groups' managedBy (who owns a scale set) changes rarely: listed at most once per this many seconds.
GROUP_OWNERS_TTL = 600.0
# Resource Graph's GET/LIST API: this query parameter on a Compute GET routes it to ARG (list_instances_from_graph).
GET_LIST_FLAG = "useResourceGraph"

REQUIRED_ACTIONS: dict[str, set[str]] = {}
_F = TypeVar("_F", bound=Callable[..., Any])


def requires(*actions: str) -> Callable[[_F], _F]:
    """Record the RBAC actions a gateway method needs (the custom role is checked against these)."""

    def mark(func: _F) -> _F:
        REQUIRED_ACTIONS.setdefault(func.__name__, set()).update(actions)
        return func

    return mark


def all_required_actions() -> set[str]:
    return set().union(*REQUIRED_ACTIONS.values())


class ArmError(Exception):
    """An ARM call that failed, with ARM's error code and whether retrying later can help."""

    def __init__(self, message: str, *, code: str = "Unknown", status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message

    @property
    def kind(self) -> ErrorClass:
        """What the error means for a remediation (retry soon, later, or a person must act)."""
        return classify(self)

    @property
    def preempted(self) -> bool:
        """A later scale-set write cancelled this operation (LRO `Canceled`, code `OperationPreempted`):
        not done, not failed for good: re-read and retry soon (azure-sdk-for-java#1783; cloud-provider-azure
        and kubernetes/autoscaler retry on it)."""
        return self.code == "OperationPreempted"

    @property
    def throttled(self) -> bool:
        """ARM's (SubscriptionRequestsThrottled) or Compute's (OperationNotAllowed/TooManyRequests) 429."""
        return self.status == 429

    @property
    def transient(self) -> bool:
        """Throttling, server faults, a conflicting or preempting operation, or no answer at all."""
        if self.status is None or self.preempted:
            return True
        if self.status in (408, 429) or self.status >= 500:
            return True
        return self.status == 409 and self.code in {"Conflict", "OperationNotAllowed", "RetryableError"}

    @property
    def not_found(self) -> bool:
        return self.status == 404

    def __str__(self) -> str:
        status = f"HTTP {self.status} " if self.status else ""
        return f"{status}{self.code}: {self.message}"


def _q(segment: str) -> str:
    """One URL path segment, percent-encoded as the SDK's own operations do with theirs
    (azure-mgmt-compute `_utils/serialization.py`, `Serializer.url`: `quote(value, safe="")`)."""
    return quote(str(segment), safe="")


def _error_from_http(exc: Exception) -> ArmError:
    """Translate azure-core exceptions (including failed LROs) into ArmError."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    if isinstance(exc, ClientAuthenticationError) and exc.status_code is None:
        # raised by the credential itself, before any request: no token (az login? managed identity?)
        return ArmError(str(exc).splitlines()[0], code="CredentialUnavailable", status=401)
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return ArmError(f"no answer from ARM: {exc}", code="ServiceUnavailable", status=None)
    if isinstance(exc, HttpResponseError):
        status = exc.status_code
        code = getattr(exc.error, "code", None) if exc.error else None
        message = getattr(exc.error, "message", None) if exc.error else None
        if (not code or not message) and exc.response is not None:
            body_code, body_message = _parse_error_body(exc.response)
            code = code or body_code
            message = message or body_message
        return ArmError(message or str(exc), code=code or "Unknown", status=status)
    return ArmError(str(exc), code=type(exc).__name__, status=None)


def _is_flexible(resource: Mapping[str, Any]) -> bool:
    return str((resource.get("properties") or {}).get("orchestrationMode") or "").lower() == "flexible"


def _resilient_delete(resource: Mapping[str, Any]) -> bool:
    policy = ((resource.get("properties") or {}).get("resiliencyPolicy") or {}).get("resilientVMDeletionPolicy") or {}
    return bool(policy.get("enabled"))


def _parse_error_body(response: Any) -> tuple[str | None, str | None]:
    try:
        body = response.json()
    except Exception:
        return None, None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return error.get("code"), error.get("message")
    if isinstance(body, dict) and body.get("status") == "Failed":
        return "OperationFailed", str(body)
    return None, None


class ComputeGateway:
    """Reads snapshots and performs remediation writes for one subscription."""

    def __init__(
        self,
        subscription_id: str,
        *,
        endpoint: str = DEFAULT_ENDPOINT,
        credential: TokenCredential | None = None,
        ca_bundle: str | None = None,
        client_id: str | None = None,
        polling_interval: float | None = None,
        retry_total: int = 6,
        retry_backoff_factor: float = 0.8,
        lro_timeout: float = 1800.0,
        max_connections: int = 32,
        reads_reserve: int = 0,
        budget: ComputeBudget | None = None,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        activity_log: ActivityLogGateway | None = None,
        activity_log_lookback: timedelta | None = None,
    ) -> None:
        self.subscription_id = subscription_id
        # how the client is built (clients.py): the same for every gateway
        self._arm = ArmConnection.of(
            endpoint, credential, client_id, ca_bundle, retry_total, retry_backoff_factor, max_connections
        )
        self.endpoint = self._arm.endpoint
        self.meter = ArmMeter()
        self._polling_interval = polling_interval
        self._lro_timeout = lro_timeout
        self._reads_reserve = reads_reserve
        self._budget_policy = ComputeBudgetPolicy(budget)
        # (monotonic time, {resource group: managedBy}): who owns what, read at most once per TTL per process.
        self._group_owners: tuple[float, dict[str, str]] | None = None
        self._group_owners_lock = threading.Lock()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._sleep = sleep
        self._client: ComputeManagementClient | None = None
        self._client_lock = threading.Lock()
        self._client_id = client_id
        self._activity_log = activity_log
        self._activity_log_lookback = activity_log_lookback

    # -- plumbing ---------------------------------------------------------------------------------------

    @property
    def budget(self) -> ComputeBudget | None:
        """Compute's budget, spent by every request of the client (its pipeline policy); may be swapped."""
        return self._budget_policy.budget

    @budget.setter
    def budget(self, budget: ComputeBudget | None) -> None:
        self._budget_policy.budget = budget

    @property
    def client(self) -> ComputeManagementClient:
        with self._client_lock:
            if self._client is None:
                self._client = self._build_client()
            return self._client

    def _build_client(self) -> ComputeManagementClient:
        from azure.mgmt.compute import ComputeManagementClient

        options: dict[str, Any] = {} if self._polling_interval is None else {"polling_interval": self._polling_interval}
        return self._arm.build(
            ComputeManagementClient,
            self.subscription_id,
            # Pacing, Compute's budget and the meter see every attempt of every call: reads, SDK writes, polls.
            per_retry_policies=arm_policies(
                self.meter, budget=self._budget_policy, reads_reserve=self._reads_reserve, sleep=self._sleep
            ),
            # azure-core caps status retries (429, 5xx) at 3 by default; Compute's 429s can come in runs while a
            # bucket refills, so they get the full retry count (each waits the answer's Retry-After).
            retry_status=self._arm.retry_total,
            **options,
        )

    @property
    def activity_log(self) -> ActivityLogGateway:
        """Who suspended automatic repairs (activitylog.py): built on first need, with this gateway's endpoint,
        credential and request meter; its reads spend a budget of their own."""
        with self._client_lock:
            if self._activity_log is None:
                from .activitylog import DEFAULT_LOOKBACK, ActivityLogGateway

                self._activity_log = ActivityLogGateway(
                    self.subscription_id,
                    # this gateway's endpoint, credential and CA bundle; fewer retries and connections
                    dataclasses.replace(self._arm, retry_total=min(self._arm.retry_total, 3), max_connections=4),
                    client_id=self._client_id,
                    lookback=self._activity_log_lookback or DEFAULT_LOOKBACK,
                    meter=self.meter,
                )
            return self._activity_log

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._activity_log is not None:
            self._activity_log.close()

    def __enter__(self) -> ComputeGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get_json(self, url: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        """One GET through the client's pipeline (pacing, budget and meter are its policies: policies.py)."""
        from azure.core.exceptions import AzureError
        from azure.core.rest import HttpRequest

        query = {"api-version": API_VERSION, **(params or {})} if params is not None else None
        request = HttpRequest("GET", url, params=query)
        try:
            # stream=True: the body is decoded once, here (otherwise azure-core decodes it and we again).
            response = self.client.send_request(request, stream=True)
            try:
                raw = response.read()
            finally:
                response.close()
        except AzureError as exc:
            raise _error_from_http(exc) from exc
        if response.status_code >= 400:
            code, message = _parse_error_body(response)
            raise ArmError(message or f"GET {url} failed", code=code or "Unknown", status=response.status_code)
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise ArmError(f"ARM answered non-JSON to GET {url}", code="InvalidResponse", status=200) from exc
        if not isinstance(body, dict):
            raise ArmError(f"ARM answered an unexpected shape to GET {url}", code="InvalidResponse", status=200)
        return body

    def _paged(self, path: str, params: dict[str, str]) -> Iterator[dict[str, Any]]:
        body = self._get_json(path, params)
        while True:
            yield from (item for item in body.get("value") or [] if isinstance(item, dict))
            next_link = body.get("nextLink")
            if not next_link:
                return
            self._check_next_link(next_link)
            body = self._get_json(next_link, None)

    def _check_next_link(self, next_link: str) -> None:
        # The bearer token goes wherever nextLink points: only ever follow it to the same ARM host.
        ours, theirs = urlparse(self.endpoint), urlparse(next_link)
        if (theirs.scheme, theirs.netloc.lower()) != (ours.scheme, ours.netloc.lower()):
            raise ArmError(f"refusing to follow nextLink to another host: {next_link}", code="InvalidNextLink")

    def _group_path(self, resource_group: str | None = None) -> str:
        # Every path segment is quoted (safe=""): a name from an event can never add "/", "?" or ".." to a URL.
        path = f"/subscriptions/{_q(self.subscription_id)}"
        return f"{path}/resourceGroups/{_q(resource_group)}" if resource_group else path

    def _scale_set_path(self, resource_group: str, name: str) -> str:
        return f"{self._group_path(resource_group)}{COMPUTE}/virtualMachineScaleSets/{_q(name)}"

    def _call(self, describe: str, start: Callable[[], Any]) -> Any:
        """Start an SDK operation (an LRO poller or a plain call) and wait for its final answer."""
        from azure.core.exceptions import AzureError

        try:
            result = start()
            if hasattr(result, "result") and hasattr(result, "done"):  # an LROPoller
                poller, result = result, result.result(timeout=self._lro_timeout)
                if not poller.done():
                    raise ArmError(
                        f"{describe}: still running after {self._lro_timeout:.0f}s", code="OperationTimedOut"
                    )
            return result
        except AzureError as exc:
            error = _error_from_http(exc)
            log.warning("%s failed: %s", describe, error)
            raise error from exc

    # -- reads ------------------------------------------------------------------------------------------

    @requires("Microsoft.Compute/virtualMachineScaleSets/read")
    def list_scale_sets(self, resource_group: str | None = None) -> list[dict[str, Any]]:
        """Every scale set of the subscription (or of one resource group), as ARM JSON."""
        return list(self._paged(f"{self._group_path(resource_group)}{COMPUTE}/virtualMachineScaleSets", {}))

    @requires("Microsoft.Compute/virtualMachineScaleSets/read")
    def get_scale_set(self, resource_group: str, name: str) -> dict[str, Any]:
        return self._get_json(self._scale_set_path(resource_group, name), {})

    @requires("Microsoft.Compute/virtualMachineScaleSets/instanceView/read")
    def get_instance_view(self, resource_group: str, name: str) -> dict[str, Any]:
        return self._get_json(f"{self._scale_set_path(resource_group, name)}/instanceView", {})

    @requires(
        "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read",
        "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/instanceView/read",
        "Microsoft.Compute/virtualMachines/read",
        "Microsoft.Compute/virtualMachines/instanceView/read",
    )
    def list_instances(self, resource: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Instances with their instance views: Uniform through the scale set, Flexible as VMs."""
        ids = segments(str(resource.get("id") or ""))
        resource_group, name = ids["resourcegroups"], ids["virtualmachinescalesets"]
        if _is_flexible(resource):
            path = f"{self._group_path(resource_group)}{COMPUTE}/virtualMachines"
            flt = f"'virtualMachineScaleSet/id' eq '{resource['id']}'"
            return list(self._paged(path, {"$filter": flt, "$expand": "instanceView"}))
        path = f"{self._scale_set_path(resource_group, name)}/virtualMachines"
        return list(self._paged(path, {"$expand": "instanceView"}))

    @requires(
        "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read",
        "Microsoft.Compute/virtualMachines/read",
    )
    def list_instances_from_graph(self, resource: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The same instance list with instance views, answered by Resource Graph's GET/LIST API: the path plus
        `useResourceGraph=true` (learn.microsoft.com/azure/governance/resource-graph/concepts/
        azure-resource-graph-get-list-api). No Compute bucket is spent (ARG's own quota, 4,000 a minute per
        user and subscription; ARM's read bucket still applies), the answer is seconds behind ARM and has NO
        `vmHealth` ("VMSS VM health status isn't currently supported"). A 422 (ARG could not index the
        resource) or any other error raises ArmError: the caller falls back to the resource provider."""
        ids = segments(str(resource.get("id") or ""))
        resource_group, name = ids["resourcegroups"], ids["virtualmachinescalesets"]
        params = {"$expand": "instanceView", GET_LIST_FLAG: "true"}
        if _is_flexible(resource):
            path = f"{self._group_path(resource_group)}{COMPUTE}/virtualMachines"
            params["$filter"] = f"'virtualMachineScaleSet/id' eq '{resource['id']}'"
        else:
            path = f"{self._scale_set_path(resource_group, name)}/virtualMachines"
        return list(self._paged(path, params))

    @requires("Microsoft.Resources/subscriptions/resourceGroups/read")
    def list_resource_groups(self) -> list[dict[str, Any]]:
        """The subscription's resource groups (ARM, not Compute: no Compute throttling budget spent), for
        `managedBy`: the node resource group of an AKS cluster, a Databricks managed group, ..."""
        path = f"/subscriptions/{_q(self.subscription_id)}/resourcegroups"
        return list(self._paged(path, {"api-version": RESOURCES_API_VERSION}))

    @requires("Microsoft.Resources/subscriptions/resourceGroups/read")
    def resource_group_owners(self, ttl: float = GROUP_OWNERS_TTL) -> dict[str, str]:
        """{resource group (lower-cased): managedBy}, from one resource-group list per `ttl` per process (or
        what Resource Graph reported). Unreadable: empty (owners then come from the scale set's own
        managedBy and tags), retried after the TTL."""
        with self._group_owners_lock:
            if self._group_owners is not None and time.monotonic() - self._group_owners[0] < ttl:
                return self._group_owners[1]
            try:
                groups = {
                    str(g.get("name") or "").lower(): str(g.get("managedBy") or "") for g in self.list_resource_groups()
                }
            except ArmError as exc:
                log.warning("could not list resource groups (owners from managedBy): %s", exc)
                groups = {}
            self._group_owners = (time.monotonic(), groups)
            return groups

    @requires()  # no ARM call
    def remember_resource_group_owners(self, groups: Mapping[str, str]) -> None:
        """Owners another read already found (Resource Graph's inventory): no resource-group list needed."""
        with self._group_owners_lock:
            self._group_owners = (time.monotonic(), {k.lower(): v for k, v in groups.items()})

    @requires("Microsoft.Compute/virtualMachines/read")
    def get_virtual_machine(self, resource_group: str, name: str) -> dict[str, Any]:
        """One VM (a Flexible scale set's instance names its scale set in properties.virtualMachineScaleSet)."""
        path = f"{self._group_path(resource_group)}{COMPUTE}/virtualMachines/{_q(name)}"
        return self._get_json(path, {})

    @requires("Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read")
    def get_instance_resiliency(self, resource_group: str, name: str, instance_id: str) -> dict[str, Any]:
        """One instance with `resilientVMDeletionStatus` (works for Flexible too): only for suspects."""
        path = f"{self._scale_set_path(resource_group, name)}/virtualMachines/{_q(instance_id)}"
        return self._get_json(path, {"$expand": "resiliencyView"})

    def snapshot(self, resource: Mapping[str, Any], *, instance_view: bool = True) -> ScaleSetSnapshot:
        """Instance view + instance list of a scale set already read (e.g. from `list_scale_sets`).

        Flexible scale sets have no scale-set instance view (Azure answers 400), so only their VMs are read.
        `instance_view=False` skips it for Uniform too: an executor that only needs capacity and instances
        saves a VMSS High Cost Get token of the scale set's small per-resource bucket (10/min).
        """
        ids = segments(str(resource.get("id") or ""))
        view = None
        if instance_view and not _is_flexible(resource):
            view = self.get_instance_view(ids["resourcegroups"], ids["virtualmachinescalesets"])
        instances = self.list_instances(resource)
        if _is_flexible(resource) and _resilient_delete(resource):
            instances = [self._with_deletion_status(ids, vm) for vm in instances]
        snap = parse_scale_set(resource, view, instances, read_at=self._clock())
        service = snap.repairs_service
        if service is not None and service.state.lower() == ServiceState.SUSPENDED.lower():
            # Suspended by the platform or by a person? Only the Activity Log says (read only for these).
            suspension = self.activity_log.suspension(snap.id, now=snap.read_at, changed_at=service.last_status_change)
            snap = dataclasses.replace(snap, suspension=suspension)
        return snap

    def _with_deletion_status(self, ids: Mapping[str, str], vm: dict[str, Any]) -> dict[str, Any]:
        """A Flexible VM's list entry has no resilientVMDeletionStatus: read it for delete suspects only
        (Failed or Deleting), so a healthy sweep stays at one list call per scale set."""
        state = str((vm.get("properties") or {}).get("provisioningState") or "").lower()
        if state not in ("failed", "deleting"):
            return vm
        try:
            view = self.get_instance_resiliency(ids["resourcegroups"], ids["virtualmachinescalesets"], vm["name"])
        except ArmError as exc:
            if exc.transient:
                raise
            return vm  # gone meanwhile, or not readable: judge it on what the list said
        status = (view.get("properties") or {}).get("resilientVMDeletionStatus")
        if status:
            vm = {**vm, "properties": {**(vm.get("properties") or {}), "resilientVMDeletionStatus": status}}
        return vm

    def snapshot_by_name(self, resource_group: str, name: str, *, instance_view: bool = True) -> ScaleSetSnapshot:
        """A fresh read (re-read before acting): the scale set, its instance view unless skipped, its instances."""
        return self.snapshot(self.get_scale_set(resource_group, name), instance_view=instance_view)

    # -- writes -----------------------------------------------------------------------------------------

    @requires("Microsoft.Compute/virtualMachineScaleSets/write")
    def update_scale_set(self, resource_group: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """PATCH the scale set (LRO) and return the resource as Azure reports it afterwards."""
        result = self._call(
            f"PATCH scale set {resource_group}/{name}",
            lambda: self.client.virtual_machine_scale_sets.begin_update(
                resource_group, name, cast(Any, patch), polling_interval=self._lro_poll()
            ),
        )
        return result.as_dict() if result is not None else {}

    @requires("Microsoft.Compute/virtualMachineScaleSets/setOrchestrationServiceState/action")
    def set_orchestration_service_state(self, resource_group: str, name: str, service: str, action: str) -> None:
        self._call(
            f"{action} {service} on {resource_group}/{name}",
            lambda: self.client.virtual_machine_scale_sets.begin_set_orchestration_service_state(
                resource_group,
                name,
                {"serviceName": service, "action": action},
                polling_interval=self._lro_poll(),
            ),
        )

    @requires(
        "Microsoft.Compute/virtualMachineScaleSets/delete/action",
        "Microsoft.Compute/virtualMachines/delete",
    )
    def delete_instances(self, snapshot: ScaleSetSnapshot, instance_ids: list[str], *, force: bool = True) -> None:
        """Delete instances (forced by default, as the platform's resilient delete does)."""
        if not instance_ids:
            return
        if snapshot.is_flexible:
            for instance_id in instance_ids:
                self._delete_vm(*self._flexible_vm(snapshot, instance_id), force=force)
            return
        self._call(
            f"delete instances {instance_ids} of {snapshot.resource_group}/{snapshot.name}",
            lambda: self.client.virtual_machine_scale_sets.begin_delete_instances(
                snapshot.resource_group,
                snapshot.name,
                {"instanceIds": list(instance_ids)},
                force_deletion=force,
                polling_interval=self._lro_poll(),
            ),
        )

    def _delete_vm(self, resource_group: str, name: str, *, force: bool) -> None:
        self._call(
            f"delete VM {resource_group}/{name}",
            lambda: self.client.virtual_machines.begin_delete(
                resource_group, name, force_deletion=force, polling_interval=self._lro_poll()
            ),
        )

    @requires("Microsoft.Compute/virtualMachineScaleSets/write")
    def set_capacity(self, resource_group: str, name: str, capacity: int) -> None:
        """PATCH `sku.capacity` to an absolute value: the documented way to change a scale set's capacity
        ("Change the capacity of a scale set", the runbook's resolution 3), the one autoscale uses, and
        idempotent, so a run that resumes after a crash can simply send it again."""
        self._call(
            f"set capacity of {resource_group}/{name} to {capacity}",
            lambda: self.client.virtual_machine_scale_sets.begin_update(
                resource_group, name, cast(Any, {"sku": {"capacity": capacity}}), polling_interval=self._lro_poll()
            ),
        )

    @requires(
        "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/restart/action",
        "Microsoft.Compute/virtualMachines/restart/action",
    )
    def restart_instance(self, snapshot: ScaleSetSnapshot, instance_id: str) -> None:
        self._instance_action(snapshot, instance_id, "restart")

    @requires(
        "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/reimage/action",
        "Microsoft.Compute/virtualMachines/reimage/action",
    )
    def reimage_instance(self, snapshot: ScaleSetSnapshot, instance_id: str) -> None:
        self._instance_action(snapshot, instance_id, "reimage")

    @requires(
        "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/redeploy/action",
        "Microsoft.Compute/virtualMachines/redeploy/action",
    )
    def redeploy_instance(self, snapshot: ScaleSetSnapshot, instance_id: str) -> None:
        self._instance_action(snapshot, instance_id, "redeploy")

    def _instance_action(self, snapshot: ScaleSetSnapshot, instance_id: str, verb: str) -> None:
        method = f"begin_{verb}"
        if snapshot.is_flexible:
            vm_group, vm_name = self._flexible_vm(snapshot, instance_id)
            operation = getattr(self.client.virtual_machines, method)
            self._call(
                f"{verb} VM {vm_group}/{vm_name}",
                lambda: operation(vm_group, vm_name, polling_interval=self._lro_poll()),
            )
            return
        operation = getattr(self.client.virtual_machine_scale_set_vms, method)
        self._call(
            f"{verb} instance {instance_id} of {snapshot.resource_group}/{snapshot.name}",
            lambda: operation(snapshot.resource_group, snapshot.name, instance_id, polling_interval=self._lro_poll()),
        )

    def _flexible_vm(self, snapshot: ScaleSetSnapshot, instance_id: str) -> tuple[str, str]:
        # A Flexible instance is a VM that may live in its own resource group: use its id when known.
        instance = snapshot.instance(instance_id)
        if instance and instance.resource_id:
            ids = segments(instance.resource_id)
            if "resourcegroups" in ids and "virtualmachines" in ids:
                return ids["resourcegroups"], ids["virtualmachines"]
        return snapshot.resource_group, instance_id

    def _lro_poll(self) -> float:
        return 30.0 if self._polling_interval is None else self._polling_interval
