"""The fleet state: plain ARM JSON per scale set and instance, long-running operations, the timeline.

Everything here is guarded by `FleetState.lock`; the API takes it once per request. Time-driven platform
work (an instance finishing creation, a resilient retry, an operation nobody polls) sits on a timeline
keyed by the emulator clock and runs lazily before each request is answered.
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from . import azcli, openapi, payloads
from .clock import Clock
from .compute_limits import DEFAULT_HEADER_FORM, HEADER_FORMS
from .faults import FaultPlan, parse_plan
from .journal import Journal

ALL_FEATURES = ("Microsoft.Compute/ResilientVMScaleSetVMCreation", "Microsoft.Compute/ReliableVMDeletion")
# Completed operations kept for status look-ups; older ones are forgotten.
_KEEP_OPERATIONS = 20000


@dataclass(eq=False)
class Vm:
    """One instance: its ARM payload plus the platform's private bookkeeping."""

    key: str  # instance id (Uniform) or VM name (Flexible)
    payload: dict[str, Any]
    deletion_status: str | None = None  # InProgress | Failed while resilient delete works / gave up
    create_failures_left: int = 0
    create_code: str = "OSProvisioningTimedOut"
    attempt_seconds: float = 300.0
    create_started: datetime | None = None
    create_retries: int = 0
    delete_failures_left: int | None = None  # None until the fault plan was consulted
    delete_code: str = "InternalExecutionError"
    delete_backoff: float = 60.0
    delete_retries: int = 0
    unhealthy_repairs_left: int | None = None  # None until consulted; -1 = repairs never help
    busy: set[str] = field(default_factory=set)  # operations in progress on this instance
    removed: bool = False

    @property
    def provisioning_state(self) -> str:
        return str(self.payload.get("properties", {}).get("provisioningState", "Succeeded"))


@dataclass(eq=False)
class ScaleSet:
    resource: dict[str, Any]
    instance_view: dict[str, Any]
    vms: dict[str, Vm] = field(default_factory=dict)  # lower-cased key -> Vm, in instance order
    next_instance_id: int = 0
    next_position: int = 0  # Flexible VM naming counter
    busy: str | None = None  # scale-set-wide operation in progress (update, scale-out, service state)
    # Fleet option `"hidesResiliencyPolicy": true`: a PATCH of resiliencyPolicy is accepted (200, validated as
    # usual) but the policy never shows on later reads. Modelled on the empty Flexible scale set issue 20 cites
    # ("Azure accepts the PATCH but never shows the policy"); Microsoft's own account of it is unverified.
    hides_resiliency_policy: bool = False
    active: set[str] = field(default_factory=set)  # every operation in progress on this scale set
    # The fleet file's own `instanceView.virtualMachine.statusesSummary` and the instances' provisioning codes
    # it was captured with: served as captured while those are unchanged (platform.instance_view).
    captured_summary: list[Any] | None = None
    captured_codes: tuple[tuple[str, str], ...] = ()
    deleting: str | None = None  # the scale-set delete operation in progress (marked for deletion)

    @property
    def id(self) -> str:
        return str(self.resource["id"])

    @property
    def name(self) -> str:
        return str(self.resource["name"])

    @property
    def resource_group(self) -> str:
        return self.id.split("/")[4]

    @property
    def subscription(self) -> str:
        """The lower-cased subscription id the scale set lives in (a fleet may hold several)."""
        return self.id.split("/")[2].lower()

    @property
    def location(self) -> str:
        return str(self.resource.get("location", "westus"))

    @property
    def flexible(self) -> bool:
        return self.resource.get("properties", {}).get("orchestrationMode") == "Flexible"

    def policy(self, *path: str) -> bool:
        node: Any = self.resource.get("properties", {})
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        return payloads.json_bool(node) if path and path[-1] == "enabled" else bool(node)

    @property
    def resilient_creation(self) -> bool:
        return self.policy("resiliencyPolicy", "resilientVMCreationPolicy", "enabled")

    @property
    def resilient_deletion(self) -> bool:
        return self.policy("resiliencyPolicy", "resilientVMDeletionPolicy", "enabled")

    def refresh_deletion_status(self, vm: Vm) -> None:
        """Keep `resilientVMDeletionStatus` on Uniform instances current (the list always carries it)."""
        if self.flexible:
            return
        vm.payload.setdefault("properties", {})["resilientVMDeletionStatus"] = vm.deletion_status or (
            "Enabled" if self.resilient_deletion else "Disabled"
        )


@dataclass(eq=False)
class Operation:
    """A long-running operation, answered at .../locations/{location}/operations/{id}."""

    id: str
    location: str
    started: datetime
    polls_left: int
    finish: Callable[[datetime], dict[str, str] | None]
    scale_set: ScaleSet
    instances: tuple[Vm, ...] = ()
    scale_set_wide: bool = False
    status: str = "InProgress"
    ended: datetime | None = None
    error: dict[str, str] | None = None
    cancel: Callable[[datetime], None] | None = None  # undoes request-time marks when preempted
    kind: str = ""  # "delete" for instance deletes (preemptible by a later scale-set write), else the action

    def status_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"startTime": payloads.iso(self.started), "status": self.status, "name": self.id}
        if self.ended is not None:
            body["endTime"] = payloads.iso(self.ended)
        if self.error:
            body["error"] = self.error
        return body


class FleetState:
    def __init__(
        self,
        clock: Clock,
        *,
        page_size: int = 100,
        create_delay: float = 0.0,
        lro_polls: int = 1,
        lro_seconds: float = 60.0,
    ) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.page_size = page_size
        self.create_delay = create_delay
        self.lro_polls = lro_polls
        self.lro_seconds = lro_seconds
        self.subscription_id = ""  # the first (or only) subscription: what single-subscription callers mean
        # Every subscription of the fleet, lower-cased -> as written, in fleet order (issue 22).
        self.subscriptions: dict[str, str] = {}
        self.display_names: dict[str, str] = {}  # lower-cased subscription -> displayName
        # {"name", "displayName", "subscriptions": [lower-cased ids]} when the fleet declares one, else None
        self.management_group: dict[str, Any] | None = None
        self.registered_features: dict[str, str] = {}  # the first subscription's: lower-cased -> as written
        self.features: dict[str, dict[str, str]] = {}  # per lower-cased subscription
        # Keys below start with the lower-cased subscription id: names repeat across subscriptions.
        self.resource_groups: dict[tuple[str, str], str] = {}  # (subscription, lower-cased name) -> name
        # (subscription, lower-cased name) -> {location?, managedBy?, tags?} from the resourceGroups objects
        self.resource_group_info: dict[tuple[str, str], dict[str, Any]] = {}
        self.scale_sets: dict[tuple[str, str, str], ScaleSet] = {}
        self.flexible_vms: dict[tuple[str, str, str], tuple[ScaleSet, Vm]] = {}
        self.operations: dict[str, Operation] = {}
        self.faults: FaultPlan = parse_plan(None)
        self.rate_limit_header_form = DEFAULT_HEADER_FORM  # the fleet's `rateLimitHeaderForm`
        self._timeline: list[tuple[datetime, int, Callable[[datetime], None]]] = []
        self._sequence = itertools.count()
        self.journal = Journal(self)  # write journal + capacity timeline (safety tests)

    # --- loading -----------------------------------------------------------------------------------

    def load(self, fleet: dict[str, Any] | str | Path | None) -> None:
        """Replace the whole fleet (and its fault plan) with a fleet document or file."""
        with payloads.bulk_allocation(keep=True):
            self._load(_read_fleet(fleet))

    def _load(self, document: dict[str, Any]) -> None:
        with self.lock:
            now = self.clock.now()
            parts = _subscription_documents(document)
            captured = document.get("capturedAt")
            if captured:
                # A captured fleet keeps its ages: every timestamp moves by (now - capturedAt).
                delta = now - payloads.parse_time(captured)
                for part in parts:
                    part["scaleSets"] = payloads.shift_timestamps(part.get("scaleSets", []), delta)
            self.subscription_id = str(parts[0]["subscriptionId"])
            self.subscriptions = {}
            self.display_names = {}
            self.features = {}
            self.resource_groups = {}
            self.resource_group_info = {}
            self.scale_sets = {}
            self.flexible_vms = {}
            self.operations = {}
            self._timeline = []
            for part in parts:
                subscription = str(part["subscriptionId"])
                key = subscription.lower()
                if key in self.subscriptions:
                    raise ValueError(f"fleet: duplicate subscription {subscription}")
                self.subscriptions[key] = subscription
                self.display_names[key] = str(part.get("displayName") or subscription)
                features = part.get("registeredFeatures", document.get("registeredFeatures"))
                self.features[key] = {f.lower(): f for f in (ALL_FEATURES if features is None else features)}
                for entry in part.get("resourceGroups", []):
                    self._add_resource_group(entry, key)
                for entry in part.get("scaleSets", []):
                    self._add_scale_set(entry, key)
            self.registered_features = self.features[self.subscription_id.lower()]
            self.management_group = _management_group(document.get("managementGroup"), self.subscriptions)
            self.faults = parse_plan(document.get("faults"))
            form = document.get("rateLimitHeaderForm", DEFAULT_HEADER_FORM)
            if form not in HEADER_FORMS:
                raise ValueError(f"fleet: 'rateLimitHeaderForm' must be one of {list(HEADER_FORMS)}, not {form!r}")
            self.rate_limit_header_form = form
            self.journal.reset()

    def _add_resource_group(self, entry: str | dict[str, Any], subscription: str) -> None:
        """A name, or {"name", "location"?, "managedBy"?, "tags"?} (a group owned by AKS and the like)."""
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
            raise ValueError("fleet: resourceGroups[] entries are names or objects with a 'name'")
        unknown = set(entry) - {"name", "location", "managedBy", "tags"}
        if unknown:
            raise ValueError(f"fleet: unknown resource group keys {sorted(unknown)}")
        self.resource_groups[(subscription, entry["name"].lower())] = entry["name"]
        self.resource_group_info[(subscription, entry["name"].lower())] = dict(entry)

    def resource_group_payload(self, name: str, subscription: str | None = None) -> dict[str, Any]:
        """A resource group as ARM's Resources API answers it (ResourceGroups_Get): id, name, type,
        location, managedBy and tags when set, properties.provisioningState."""
        sub = (subscription or self.subscription_id).lower()
        key = (sub, name.lower())
        real = self.resource_groups.get(key, name)
        info = self.resource_group_info.get(key, {})
        location = info.get("location") or next(
            (s.location for (s_sub, group, _), s in self.scale_sets.items() if (s_sub, group) == key), "westeurope"
        )
        payload: dict[str, Any] = {
            "id": f"/subscriptions/{self.subscriptions.get(sub, sub)}/resourceGroups/{real}",
            "name": real,
            "type": "Microsoft.Resources/resourceGroups",
            "location": location,
        }
        if info.get("managedBy"):
            payload["managedBy"] = info["managedBy"]
        if info.get("tags"):
            payload["tags"] = dict(info["tags"])
        payload["properties"] = {"provisioningState": "Succeeded"}
        return payload

    def _add_scale_set(self, entry: dict[str, Any], subscription: str) -> None:
        resource = entry.get("resource")
        if not isinstance(resource, dict) or "id" not in resource:
            raise ValueError("fleet: every scaleSets[] entry needs a 'resource' with an 'id'")
        # az's flattened output (az vmss show / list-instances, az vm list) becomes ARM's shape; a payload with
        # nothing readable is refused in one line (azcli.py).
        resource = azcli.arm_shape(resource, "scale set", f"scale set {resource['id']}")
        resource = openapi.normalize("VirtualMachineScaleSet", resource)  # "false" is false, as Azure stores it
        flexible = (resource.get("properties") or {}).get("orchestrationMode") == "Flexible"
        entry = {
            **entry,
            "virtualMachines": [
                azcli.arm_shape(
                    payload,
                    "vm" if flexible else "instance",
                    f"{'VM' if flexible else 'instance'} {_label(payload, index)} of {resource['id']}",
                )
                for index, payload in enumerate(entry.get("virtualMachines") or [])
            ],
        }
        parts = resource["id"].split("/")
        if len(parts) != 9 or parts[1].lower() != "subscriptions" or parts[3].lower() != "resourcegroups":
            raise ValueError(f"fleet: not a scale set id: {resource['id']}")
        if parts[2].lower() != subscription:
            raise ValueError(f"fleet: {resource['id']} is not in subscription {self.subscriptions[subscription]}")
        resource.setdefault("name", parts[8])
        resource.setdefault("type", "Microsoft.Compute/virtualMachineScaleSets")
        resource.setdefault("properties", {}).setdefault("provisioningState", "Succeeded")
        scale_set = ScaleSet(
            resource=resource,
            instance_view=entry.get("instanceView") or {},
            hides_resiliency_policy=bool(entry.get("hidesResiliencyPolicy")),
        )
        key = (subscription, scale_set.resource_group.lower(), scale_set.name.lower())
        if key in self.scale_sets:
            raise ValueError(f"fleet: duplicate scale set {resource['id']}")
        self.scale_sets[key] = scale_set
        self.resource_groups.setdefault((subscription, scale_set.resource_group.lower()), scale_set.resource_group)
        for payload in entry.get("virtualMachines", []):
            if scale_set.flexible:
                vm_key = str(payload.get("name") or payload["id"].rsplit("/", 1)[-1])
            else:
                vm_key = str(payload.get("instanceId") or payload["id"].rsplit("/", 1)[-1])
                if vm_key.isdigit():
                    scale_set.next_instance_id = max(scale_set.next_instance_id, int(vm_key) + 1)
            status = payload.get("properties", {}).get("resilientVMDeletionStatus")
            if scale_set.flexible:
                # Not a virtualMachines property: it only seeds what the resiliencyView GET reports.
                payload.get("properties", {}).pop("resilientVMDeletionStatus", None)
            vm = Vm(key=vm_key, payload=payload, deletion_status=status if status in {"InProgress", "Failed"} else None)
            self.add_vm(scale_set, vm)
        scale_set.next_position = len(scale_set.vms)
        summary = (scale_set.instance_view.get("virtualMachine") or {}).get("statusesSummary")
        if isinstance(summary, list) and summary:  # fleetgen writes [] for "recount it"
            scale_set.captured_summary = summary
            scale_set.captured_codes = instance_codes(scale_set)

    def add_scale_set(self, scale_set: ScaleSet) -> None:
        """A scale set created by a PUT (its resource group exists: the request was routed)."""
        key = (scale_set.subscription, scale_set.resource_group.lower(), scale_set.name.lower())
        self.scale_sets[key] = scale_set

    def add_vm(self, scale_set: ScaleSet, vm: Vm) -> None:
        scale_set.vms[vm.key.lower()] = vm
        scale_set.refresh_deletion_status(vm)
        if scale_set.flexible:
            self.flexible_vms[(scale_set.subscription, scale_set.resource_group.lower(), vm.key.lower())] = (
                scale_set,
                vm,
            )

    def remove_scale_set(self, scale_set: ScaleSet) -> None:
        for vm in list(scale_set.vms.values()):
            self.remove_vm(scale_set, vm)
        self.scale_sets.pop((scale_set.subscription, scale_set.resource_group.lower(), scale_set.name.lower()), None)

    def remove_vm(self, scale_set: ScaleSet, vm: Vm) -> None:
        vm.removed = True
        scale_set.vms.pop(vm.key.lower(), None)
        if scale_set.flexible:
            self.flexible_vms.pop((scale_set.subscription, scale_set.resource_group.lower(), vm.key.lower()), None)

    def set_faults(self, plan: dict[str, Any] | FaultPlan | None) -> None:
        with self.lock:
            self.faults = plan if isinstance(plan, FaultPlan) else parse_plan(plan)

    # --- look-ups ----------------------------------------------------------------------------------

    def _sub(self, subscription: str | None) -> str:
        return (subscription or self.subscription_id).lower()

    def has_subscription(self, subscription: str) -> bool:
        return subscription.lower() in self.subscriptions

    def has_resource_group(self, resource_group: str, subscription: str | None = None) -> bool:
        return (self._sub(subscription), resource_group.lower()) in self.resource_groups

    def resource_group_names(self, subscription: str | None = None) -> list[str]:
        sub = self._sub(subscription)
        return [name for (s, _), name in self.resource_groups.items() if s == sub]

    def find_scale_set(self, resource_group: str, name: str, subscription: str | None = None) -> ScaleSet | None:
        return self.scale_sets.get((self._sub(subscription), resource_group.lower(), name.lower()))

    def find_vm(self, resource_group: str, name: str, subscription: str | None = None) -> tuple[ScaleSet, Vm] | None:
        """A Flexible scale set's VM by resource group and VM name."""
        return self.flexible_vms.get((self._sub(subscription), resource_group.lower(), name.lower()))

    def find_scale_set_by_id(self, resource_id: str) -> ScaleSet | None:
        parts = resource_id.strip().split("/")
        if len(parts) != 9 or parts[2].lower() not in self.subscriptions:
            return None
        return self.find_scale_set(parts[4], parts[8], parts[2])

    def scale_sets_in(self, resource_group: str | None = None, subscription: str | None = None) -> list[ScaleSet]:
        sub = self._sub(subscription)
        rg = resource_group.lower() if resource_group is not None else None
        return [s for (s_sub, group, _), s in self.scale_sets.items() if s_sub == sub and rg in (None, group)]

    # --- timeline ----------------------------------------------------------------------------------

    def schedule(self, due: datetime, action: Callable[[datetime], None]) -> None:
        heapq.heappush(self._timeline, (due, next(self._sequence), action))

    def run_due(self) -> datetime:
        """Run every timeline event that is due; each gets its own due time (events chain correctly
        when a test moves the clock a long way at once). Returns the current emulator time."""
        now = self.clock.now()
        while self._timeline and self._timeline[0][0] <= now:
            due, _, action = heapq.heappop(self._timeline)
            action(due)
            self.journal.platform_event(due)
        return now

    # --- long-running operations -------------------------------------------------------------------

    def start_operation(
        self,
        scale_set: ScaleSet,
        finish: Callable[[datetime], dict[str, str] | None],
        *,
        instances: tuple[Vm, ...] = (),
        scale_set_wide: bool = False,
        cancel: Callable[[datetime], None] | None = None,
        kind: str = "",
    ) -> Operation:
        now = self.clock.now()
        operation = Operation(
            id=str(uuid.uuid4()),
            location=scale_set.location.replace(" ", "").lower(),
            started=now,
            polls_left=self.lro_polls,
            finish=finish,
            scale_set=scale_set,
            instances=instances,
            scale_set_wide=scale_set_wide,
            cancel=cancel,
            kind=kind,
        )
        for vm in instances:
            vm.busy.add(operation.id)
        if scale_set_wide:
            scale_set.busy = operation.id
        scale_set.active.add(operation.id)
        self.operations[operation.id] = operation
        if len(self.operations) > _KEEP_OPERATIONS:
            for old_id in list(itertools.islice(self.operations, len(self.operations) - _KEEP_OPERATIONS)):
                if self.operations[old_id].status != "InProgress":
                    del self.operations[old_id]
        # An operation nobody polls still ends, `lro_seconds` later on the emulator clock.
        self.schedule(now + timedelta(seconds=self.lro_seconds), lambda at: self.complete(operation, at))
        return operation

    def _release(self, operation: Operation) -> None:
        for vm in operation.instances:
            vm.busy.discard(operation.id)
        if operation.scale_set.busy == operation.id:
            operation.scale_set.busy = None
        operation.scale_set.active.discard(operation.id)

    def preempt(self, operation: Operation, at: datetime) -> None:
        """A later scale-set-wide write cancels this one: it ends `Canceled` with `OperationPreempted`
        (the status body azure-sdk-for-java#1783 quotes; the message is cloud-provider-azure's
        `consts.OperationPreemptedErrorMessage`). Its `finish` never runs; `cancel` undoes its marks."""
        if operation.status != "InProgress":
            return
        self._release(operation)
        if operation.cancel is not None:
            operation.cancel(at)
        operation.ended = at
        operation.status = "Canceled"
        operation.error = {
            "code": "OperationPreempted",
            "message": "Operation execution has been preempted by a more recent operation.",
        }
        self.journal.operation_ended(operation)

    def complete(self, operation: Operation, at: datetime) -> None:
        if operation.status != "InProgress":
            return
        self._release(operation)
        error = operation.finish(at)
        operation.ended = at
        operation.status = "Failed" if error else "Succeeded"
        operation.error = error
        self.journal.operation_ended(operation)

    def poll(self, operation_id: str) -> Operation | None:
        operation = self.operations.get(operation_id)
        if operation is None or operation.status != "InProgress":
            return operation
        if operation.polls_left <= 0:
            self.complete(operation, self.clock.now())
        else:
            operation.polls_left -= 1
        return operation

    # --- export ------------------------------------------------------------------------------------

    def document(self) -> dict[str, Any]:
        """The current fleet as a fleet document (a deep copy): the single-subscription shape for a fleet of
        one subscription without a management group, the multi-subscription shape otherwise."""
        with self.lock:
            self.run_due()
            parts = []
            for key, subscription in self.subscriptions.items():
                scale_sets = [
                    {
                        "resource": s.resource,
                        "instanceView": s.instance_view,
                        "virtualMachines": [vm.payload for vm in s.vms.values()],
                        **({"hidesResiliencyPolicy": True} if s.hides_resiliency_policy else {}),
                    }
                    for (sub, _, _), s in self.scale_sets.items()
                    if sub == key
                ]
                groups = sorted((group, name) for (sub, group), name in self.resource_groups.items() if sub == key)
                part: dict[str, Any] = {
                    "subscriptionId": subscription,
                    "registeredFeatures": sorted(self.features[key].values()),
                    "resourceGroups": [
                        self.resource_group_info[(key, group)]
                        if len(self.resource_group_info.get((key, group), {})) > 1
                        else name
                        for group, name in groups
                    ],
                    "scaleSets": scale_sets,
                }
                if self.display_names.get(key, subscription) != subscription:
                    part["displayName"] = self.display_names[key]
                parts.append(part)
            if len(parts) == 1 and self.management_group is None:
                document: dict[str, Any] = parts[0]
            else:
                document = {"subscriptions": parts}
                if self.management_group is not None:
                    group = dict(self.management_group)
                    group["subscriptions"] = [self.subscriptions[s] for s in group["subscriptions"]]
                    document["managementGroup"] = group
            document["rateLimitHeaderForm"] = self.rate_limit_header_form
            return json.loads(json.dumps(document))


def _label(payload: Any, index: int) -> str:
    if isinstance(payload, dict):
        for key in ("instanceId", "name", "id"):
            if payload.get(key):
                return str(payload[key])
    return f"#{index}"


def instance_codes(scale_set: ScaleSet) -> tuple[tuple[str, str], ...]:
    """(instance key, provisioning status code) of every instance, in order: what a summary counts."""
    return tuple((vm.key, payloads.provisioning_code(vm.payload)) for vm in scale_set.vms.values())


def _read_fleet(fleet: dict[str, Any] | str | Path | None) -> dict[str, Any]:
    if fleet is None:
        return {"subscriptionId": "6f1d3c2a-8b4e-4d7f-9a0c-1e2f3a4b5c6d", "scaleSets": []}
    if isinstance(fleet, str | Path):
        return json.loads(Path(fleet).read_text(encoding="utf-8"))
    # A JSON round trip is the fastest deep copy, and the caller's dict stays untouched.
    return json.loads(json.dumps(fleet))


_SUBSCRIPTION_KEYS = {"subscriptionId", "displayName", "registeredFeatures", "resourceGroups", "scaleSets"}


def _subscription_documents(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The fleet's subscriptions as single-subscription parts. Two shapes (shared contract, issue 22):
    today's `{"subscriptionId", "scaleSets", ...}`, or `{"managementGroup"?, "subscriptions": [{"subscriptionId",
    "scaleSets", "resourceGroups"?, "registeredFeatures"?, "displayName"?}, ...]}`."""
    many = document.get("subscriptions")
    if many is None:
        if not document.get("subscriptionId"):
            raise ValueError("fleet: 'subscriptionId' is required")
        return [document]
    if document.get("subscriptionId") or document.get("scaleSets"):
        raise ValueError("fleet: give either 'subscriptionId' and 'scaleSets' or 'subscriptions', not both")
    if not isinstance(many, list) or not many:
        raise ValueError("fleet: 'subscriptions' must be a non-empty list")
    for part in many:
        if not isinstance(part, dict) or not part.get("subscriptionId"):
            raise ValueError("fleet: every subscriptions[] entry needs a 'subscriptionId'")
        unknown = set(part) - _SUBSCRIPTION_KEYS
        if unknown:
            raise ValueError(f"fleet: unknown subscriptions[] keys {sorted(unknown)}")
    return many


def _management_group(entry: Any, subscriptions: dict[str, str]) -> dict[str, Any] | None:
    """`{"name", "displayName"?, "subscriptions": [...]}`: the fleet's one management group. Subscriptions of the
    fleet it does not list sit outside it (another management group), as a sweep's scope test needs."""
    if entry is None:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
        raise ValueError("fleet: 'managementGroup' needs a 'name'")
    unknown = set(entry) - {"name", "displayName", "subscriptions"}
    if unknown:
        raise ValueError(f"fleet: unknown managementGroup keys {sorted(unknown)}")
    members = entry.get("subscriptions", list(subscriptions.values()))
    if not isinstance(members, list):
        raise ValueError("fleet: managementGroup.subscriptions must be a list of subscription ids")
    missing = [str(m) for m in members if str(m).lower() not in subscriptions]
    if missing:
        raise ValueError(f"fleet: managementGroup lists subscriptions the fleet does not hold: {missing}")
    return {
        "name": entry["name"],
        "displayName": str(entry.get("displayName") or entry["name"]),
        "subscriptions": [str(m).lower() for m in members],
    }
