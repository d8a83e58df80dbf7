"""The simulated platform: what Azure does when a scale set or instance is changed.

Callers hold `FleetState.lock`. Validation raises `ArmError` in Azure's wording before anything
changes; accepted writes return the `Operation` whose completion finishes the work.
"""

from __future__ import annotations

import copy
import re
from datetime import datetime, timedelta
from typing import Any

from . import fleetgen, payloads
from .errors import ArmError, bad_request, concurrent_conflict, invalid_parameter
from .faults import CREATE_TIMEOUT_CODES
from .state import FleetState, Operation, ScaleSet, Vm, instance_codes

GRACE_MIN = timedelta(minutes=10)
GRACE_MAX = timedelta(minutes=90)
REPAIR_ACTIONS = {"replace": "Replace", "reimage": "Reimage", "restart": "Restart"}
RESILIENT_RETRIES = 5
RESILIENT_CREATE_WINDOW = timedelta(minutes=30)
FEATURE_CREATION = "Microsoft.Compute/ResilientVMScaleSetVMCreation"
FEATURE_DELETION = "Microsoft.Compute/ReliableVMDeletion"
INSTANCE_ACTIONS = ("restart", "reimage", "redeploy")


class Platform:
    def __init__(self, state: FleetState) -> None:
        self.state = state

    # --- scale set model ---------------------------------------------------------------------------

    def update(self, scale_set: ScaleSet, patch: dict[str, Any], if_match: str | None) -> Operation:
        """PATCH a scale set (merge semantics) after Azure's validation of the repair and resiliency
        policies; enabling/disabling automatic repairs moves the AutomaticRepairs service."""
        if not isinstance(patch, dict):
            raise ArmError(
                400, "InvalidRequestContent", "The request content was invalid and could not be deserialized."
            )
        _check_conditions(scale_set, if_match, None)
        merged = copy.deepcopy(scale_set.resource)
        props_patch = patch.get("properties") or {}
        if not isinstance(props_patch, dict):
            raise invalid_parameter("The value of parameter 'properties' is invalid.", target="properties")
        payloads.merge_patch(merged.setdefault("properties", {}), props_patch)
        if "sku" in patch and isinstance(patch["sku"], dict):
            payloads.merge_patch(merged.setdefault("sku", {}), patch["sku"])
        if "tags" in patch:
            merged["tags"] = dict(patch["tags"] or {})
        return self._write(scale_set, scale_set.resource, merged, props_patch)

    def create_or_update(
        self,
        subscription: str,
        resource_group: str,
        name: str,
        body: Any,
        *,
        if_match: str | None,
        if_none_match: str | None,
    ) -> tuple[ScaleSet, Operation, bool]:
        """PUT a scale set (VirtualMachineScaleSets_CreateOrUpdate): the body is the whole model. An existing scale
        set answers 200 and goes `Updating`; a new one answers 201 and goes `Creating` (Microsoft's REST examples
        azure-rest-api-specs .../ComputeRP/stable/2025-04-01/examples/virtualMachineScaleSetExamples/
        VirtualMachineScaleSet_Create_*.json: 200 and 201 bodies with provisioningState "Creating"; the recorded
        update, tests/recorded/cli-vmss-put-*.json: 200). Both go through the PATCH's write path: the same
        validation, quota check, preemption and capacity changes. Returns (scale set, operation, created)."""
        if not isinstance(body, dict):
            raise ArmError(
                400, "InvalidRequestContent", "The request content was invalid and could not be deserialized."
            )
        existing = self.state.find_scale_set(resource_group, name, subscription)
        _check_conditions(existing, if_match, if_none_match)
        location = body.get("location")
        if not isinstance(location, str) or not location.strip():
            # ARM's refusal of a tracked resource without a location (code and wording unverified).
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        if not isinstance(body.get("sku"), dict):
            # Azure/kube-egress-gateway issue 645: a PUT of an existing scale set without sku answers 400
            # InvalidParameter "Required parameter 'sku' is missing (null)." target "sku".
            raise invalid_parameter("Required parameter 'sku' is missing (null).", target="sku")
        properties = body.get("properties") or {}
        if not isinstance(properties, dict):
            raise invalid_parameter("The value of parameter 'properties' is invalid.", target="properties")
        if existing is not None:
            if _region(location) != _region(existing.location):
                # ARM's wording for a resource PUT in another region than it lives in (fortinetsolutions/
                # Azure-Templates issue 8; MicrosoftDocs/azure-docs issue 70422); the status is unverified.
                raise ArmError(
                    409,
                    "InvalidResourceLocation",
                    f"The resource '{existing.name}' already exists in location '{existing.location}' in resource "
                    f"group '{existing.resource_group}'. A resource with the same name cannot be created in location "
                    f"'{location}'. Please select a new resource name.",
                )
            model = _put_model(body, existing.resource, existing.id, existing.name)
            return existing, self._write(existing, existing.resource, model, properties), False
        sub = self.state.subscriptions.get(subscription.lower(), subscription)
        group = self.state.resource_groups.get((subscription.lower(), resource_group.lower()), resource_group)
        resource_id = fleetgen.scale_set_id(sub, group, name)
        now = self.state.clock.now()
        born = {
            "properties": {
                "uniqueId": fleetgen.stable_uuid(resource_id.lower(), "uniqueId", payloads.iso(now)),
                "timeCreated": payloads.iso(now),
            },
            "sku": {"capacity": 0},
        }
        model = _put_model(body, born, resource_id, name)
        created = ScaleSet(resource=model, instance_view={})
        return created, self._write(created, {"sku": {"capacity": 0}}, model, properties, creating=True), True

    def _write(
        self,
        scale_set: ScaleSet,
        current: dict[str, Any],
        merged: dict[str, Any],
        changes: dict[str, Any],
        *,
        creating: bool = False,
    ) -> Operation:
        """The one scale-set model write (PATCH and PUT): `current` is the model before (a stub when creating),
        `merged` the model after, `changes` the properties the client sent. Validates, checks the cores quota,
        preempts what a scale-set write preempts (_claim), then changes the model and the instances."""
        old_repairs = current.get("properties", {}).get("automaticRepairsPolicy") or {}
        new_repairs = merged.setdefault("properties", {}).get("automaticRepairsPolicy") or {}
        if payloads.json_bool(new_repairs.get("enabled")) and not new_repairs.get("gracePeriod"):
            new_repairs["gracePeriod"] = "PT10M"  # Azure's default since the minimum became 10 minutes
        if payloads.json_bool(new_repairs.get("enabled")) and "automaticRepairsPolicy" in changes:
            # Azure answers an enabling write with the default action shown (cli-vmss-put-enable-repairs.json: the
            # body sends {enabled, gracePeriod}, the answer has repairAction "Replace").
            new_repairs.setdefault("repairAction", "Replace")
        if "automaticRepairsPolicy" in changes:
            self._validate_repairs(scale_set, old_repairs, new_repairs, changes["automaticRepairsPolicy"] or {}, merged)
        if "resiliencyPolicy" in changes:
            self._validate_resiliency(scale_set, changes["resiliencyPolicy"] or {})
            if scale_set.hides_resiliency_policy:  # accepted, never shown (fleet option; see ScaleSet)
                previous = current.get("properties", {}).get("resiliencyPolicy")
                if previous is None:
                    merged["properties"].pop("resiliencyPolicy", None)
                else:
                    merged["properties"]["resiliencyPolicy"] = copy.deepcopy(previous)
        old_capacity = int(current.get("sku", {}).get("capacity", len(scale_set.vms)))
        new_capacity = merged.get("sku", {}).get("capacity", old_capacity)
        if not isinstance(new_capacity, int) or isinstance(new_capacity, bool) or new_capacity < 0:
            raise invalid_parameter(
                f"The value '{new_capacity}' of parameter 'sku.capacity' is invalid.", target="sku.capacity"
            )
        if isinstance(merged.get("sku"), dict):  # a PUT's sku without capacity keeps the current one
            merged["sku"]["capacity"] = new_capacity
        if new_capacity > old_capacity:
            self._check_cores_quota(scale_set, new_capacity - old_capacity)
        self._claim(scale_set)
        if creating:
            self.state.add_scale_set(scale_set)

        now = self.state.clock.now()
        was_enabled, enabled = (
            payloads.json_bool(old_repairs.get("enabled")),
            payloads.json_bool(new_repairs.get("enabled")),
        )
        old_deletion = scale_set.resilient_deletion
        etag = str(current.get("etag", '"0"' if creating else '"1"')).strip('"')
        merged["etag"] = f'"{int(etag) + 1 if etag.isdigit() else 2}"'
        merged["properties"]["provisioningState"] = "Creating" if creating else "Updating"
        scale_set.resource = merged
        if enabled != was_enabled:
            self._set_service_state(scale_set, "Running" if enabled else "NotRunning", now)
        if scale_set.resilient_deletion != old_deletion:
            for vm in scale_set.vms.values():
                scale_set.refresh_deletion_status(vm)
        victims: tuple[Vm, ...] = ()
        if new_capacity > old_capacity:
            self._create_instances(scale_set, new_capacity - old_capacity, now)
        elif new_capacity < old_capacity:
            victims = self._scale_in_victims(scale_set, old_capacity - new_capacity)
            for vm in victims:
                self._mark_deleting(scale_set, vm, now)

        def finish(at: datetime) -> dict[str, str] | None:
            scale_set.resource["properties"]["provisioningState"] = "Succeeded"
            errors = [self._attempt_delete(scale_set, vm, at, adjust_capacity=False) for vm in victims]
            return next((e for e in errors if e), None)

        def cancel(at: datetime) -> None:
            # Preempted: the model change stays (the later write merged onto it); scale-in deletes that had
            # not happened yet do not happen (unverified: Azure's exact instance outcome is not documented).
            for vm in victims:
                if not vm.removed and vm.provisioning_state.lower() == "deleting":
                    payloads.set_provisioning(vm.payload, "Succeeded", at)
                    payloads.set_power(vm.payload, "running", at)

        return self.state.start_operation(scale_set, finish, instances=victims, scale_set_wide=True, cancel=cancel)

    def _validate_repairs(self, scale_set: ScaleSet, old: dict, new: dict, patch: dict, merged: dict) -> None:
        if "gracePeriod" in patch or (payloads.json_bool(new.get("enabled")) and new.get("gracePeriod")):
            grace = payloads.parse_duration(str(new.get("gracePeriod", "")))
            if grace is None or not GRACE_MIN <= grace <= GRACE_MAX:
                raise invalid_parameter(
                    f"The value '{new.get('gracePeriod')}' of parameter 'automaticRepairsPolicy.gracePeriod' is "
                    "invalid. The grace period must be an ISO 8601 duration between PT10M and PT90M.",
                    target="automaticRepairsPolicy.gracePeriod",
                )
        action = str(new.get("repairAction") or "Replace")
        if action.lower() not in REPAIR_ACTIONS:
            raise invalid_parameter(
                f"The value '{action}' of parameter 'automaticRepairsPolicy.repairAction' is invalid. "
                "Allowed values are 'Replace', 'Reimage' and 'Restart'.",
                target="automaticRepairsPolicy.repairAction",
            )
        old_action = str(old.get("repairAction") or "Replace")
        if (
            payloads.json_bool(old.get("enabled"))
            and payloads.json_bool(new.get("enabled"))
            and old_action.lower() != action.lower()
        ):
            raise invalid_parameter(
                f"Changing 'automaticRepairsPolicy.repairAction' from '{old_action}' to '{action}' is not "
                "allowed while automatic repairs are enabled. Disable automatic repairs, then enable them "
                "again with the new repair action.",
                target="automaticRepairsPolicy.repairAction",
            )
        extension, probe = payloads.has_health_extension(merged), payloads.has_health_probe(merged)
        if payloads.json_bool(new.get("enabled")) and not (extension or probe):
            raise bad_request(
                "Automatic repairs not supported for this Virtual Machine Scale Set because a health probe "
                "or health extension was not provided."
            )
        if payloads.json_bool(new.get("enabled")) and extension and probe:
            # "Only one source of health monitoring can be used ... If you have both options enabled, you need
            # to remove one before using orchestration services like Instance Repairs" (learn.microsoft.com/
            # azure/virtual-machine-scale-sets/virtual-machine-scale-sets-health-extension). The refusal's
            # code and wording are the emulator's (unverified).
            raise bad_request(
                "Automatic repairs not supported for this Virtual Machine Scale Set because both an Application "
                "Health extension and a load balancer health probe are configured. Only one health source can "
                "be used: remove one of them."
            )
        if payloads.json_bool(new.get("enabled")) and probe and not extension and scale_set.flexible:
            # Flexible orchestration: "Application health via SLB health probe: Not supported" (learn.microsoft.com/
            # azure/virtual-machine-scale-sets/virtual-machine-scale-sets-orchestration-modes); wording unverified.
            raise bad_request(
                "Automatic repairs not supported for this Virtual Machine Scale Set because Flexible orchestration "
                "does not support load balancer health probes for application health. Use the Application "
                "Health extension."
            )

    def _validate_resiliency(self, scale_set: ScaleSet, patch: dict) -> None:
        registered = self.state.features.get(scale_set.subscription, self.state.registered_features)
        for key, feature in (
            ("resilientVMCreationPolicy", FEATURE_CREATION),
            ("resilientVMDeletionPolicy", FEATURE_DELETION),
        ):
            if payloads.json_bool((patch.get(key) or {}).get("enabled")) and feature.lower() not in registered:
                raise invalid_parameter(
                    f"The property 'resiliencyPolicy.{key}' cannot be enabled because the feature "
                    f"'{feature}' is not enabled for this subscription. Register the feature and try again.",
                    target=f"resiliencyPolicy.{key}",
                )

    def _set_service_state(self, scale_set: ScaleSet, state: str, at: datetime) -> None:
        # lastStatusChangeTime as Microsoft's instance view example shows it for orchestration services
        services = scale_set.instance_view.setdefault("orchestrationServices", [])
        for service in services:
            if service.get("serviceName") == "AutomaticRepairs":
                if service.get("serviceState") != state:
                    service["lastStatusChangeTime"] = payloads.iso(at)
                service["serviceState"] = state
                return
        services.append(
            {"serviceName": "AutomaticRepairs", "serviceState": state, "lastStatusChangeTime": payloads.iso(at)}
        )

    def set_orchestration_service_state(self, scale_set: ScaleSet, body: Any) -> Operation:
        body = body if isinstance(body, dict) else {}
        service = body.get("serviceName")
        action = str(body.get("action") or "")
        if str(service).lower() != "automaticrepairs":
            raise invalid_parameter(
                f"The value '{service}' of parameter 'serviceName' is invalid. Allowed values are 'AutomaticRepairs'.",
                target="serviceName",
            )
        if action.lower() not in {"resume", "suspend"}:
            raise invalid_parameter(
                f"The value '{action}' of parameter 'action' is invalid. Allowed values are 'Resume' and 'Suspend'.",
                target="action",
            )
        if not scale_set.policy("automaticRepairsPolicy", "enabled"):
            raise ArmError(
                409,
                "OperationNotAllowed",
                f"Orchestration service 'AutomaticRepairs' cannot be {action.lower()}d on Virtual Machine Scale "
                f"Set '{scale_set.name}' because automatic repairs are not enabled.",
            )
        self._claim(scale_set)
        target = "Running" if action.lower() == "resume" else "Suspended"

        def finish(at: datetime) -> None:
            self._set_service_state(scale_set, target, at)

        return self.state.start_operation(scale_set, finish, scale_set_wide=True)

    def scale_out(self, scale_set: ScaleSet, body: Any) -> Operation:
        capacity = body.get("capacity") if isinstance(body, dict) else None
        current = int(scale_set.resource.get("sku", {}).get("capacity", len(scale_set.vms)))
        if not isinstance(capacity, int) or isinstance(capacity, bool):
            raise invalid_parameter("The value of parameter 'capacity' is invalid.", target="capacity")
        if capacity <= current:
            raise invalid_parameter(
                f"The requested capacity {capacity} must be greater than the current capacity {current} of "
                f"Virtual Machine Scale Set '{scale_set.name}'. Use a capacity update to scale in.",
                target="capacity",
            )
        self._check_cores_quota(scale_set, capacity - current)
        self._claim(scale_set)
        now = self.state.clock.now()
        scale_set.resource.setdefault("sku", {})["capacity"] = capacity
        self._create_instances(scale_set, capacity - current, now)
        # New instances keep provisioning on the emulator clock after the operation reports success.
        return self.state.start_operation(scale_set, lambda at: None, scale_set_wide=True)

    def delete_scale_set(self, scale_set: ScaleSet) -> Operation:
        """DELETE the scale set: `Deleting` (with its instances) until the operation ends, then gone; writes
        on it meanwhile answer 409 "... since it is marked for deletion" (errors.marked_for_deletion)."""
        now = self.state.clock.now()
        scale_set.resource.setdefault("properties", {})["provisioningState"] = "Deleting"
        for vm in scale_set.vms.values():
            self._mark_deleting(scale_set, vm, now)

        def finish(at: datetime) -> None:
            self.state.remove_scale_set(scale_set)

        operation = self.state.start_operation(scale_set, finish, kind="delete-scale-set")
        scale_set.deleting = operation.id
        return operation

    # --- instances ---------------------------------------------------------------------------------

    def resolve_instances(self, scale_set: ScaleSet, keys: Any) -> list[Vm]:
        if not isinstance(keys, list) or not keys:
            raise invalid_parameter(
                "The value of parameter 'instanceIds' is invalid. At least one instance id is required.",
                target="instanceIds",
            )
        found = []
        for key in keys:
            vm = scale_set.vms.get(str(key).lower())
            if vm is None:
                raise invalid_parameter(
                    f"The provided instanceId {key} is not an active Virtual Machine Scale Set VM instanceId.",
                    target="instanceIds",
                )
            if vm not in found:
                found.append(vm)
        return found

    def delete(self, scale_set: ScaleSet, vms: list[Vm], *, force: bool) -> Operation:
        """Delete instances; `sku.capacity` drops as each one disappears."""
        del force  # accepted like Azure; forced or not, the emulated delete behaves the same
        if scale_set.busy:
            raise concurrent_conflict()
        now = self.state.clock.now()
        for vm in vms:
            vm.delete_retries = 0
            if vm.deletion_status == "Failed":
                vm.deletion_status = None
            self._mark_deleting(scale_set, vm, now)

        def finish(at: datetime) -> dict[str, str] | None:
            errors = [self._attempt_delete(scale_set, vm, at, adjust_capacity=True) for vm in vms]
            return next((e for e in errors if e), None)

        def cancel(at: datetime) -> None:
            # Preempted before it ran: the instances stay as they were (unverified, see _claim).
            for vm in vms:
                if not vm.removed and vm.provisioning_state.lower() == "deleting":
                    payloads.set_provisioning(vm.payload, "Succeeded", at)
                    payloads.set_power(vm.payload, "running", at)

        return self.state.start_operation(scale_set, finish, instances=tuple(vms), cancel=cancel, kind="delete")

    def act(self, scale_set: ScaleSet, vms: list[Vm], action: str) -> Operation:
        """restart / reimage / redeploy: the instance comes back Succeeded and, unless the fault plan
        says otherwise, Healthy."""
        if scale_set.busy:
            raise concurrent_conflict()
        for vm in vms:
            self._check_can_act(vm, action)
        now = self.state.clock.now()
        for vm in vms:
            payloads.set_provisioning(vm.payload, "Updating", now)
            if action == "restart":
                payloads.set_power(vm.payload, "starting", now)

        def finish(at: datetime) -> None:
            for vm in vms:
                if vm.removed:
                    continue
                payloads.set_provisioning(vm.payload, "Succeeded", at)
                payloads.set_power(vm.payload, "running", at)
                self._settle_health(scale_set, vm, at)

        return self.state.start_operation(scale_set, finish, instances=tuple(vms))

    def _claim(self, scale_set: ScaleSet) -> None:
        """Before a scale-set-wide write (PUT or PATCH, scale-out, setOrchestrationServiceState).

        Azure accepts it while another scale-set-wide write runs and cancels the earlier one, whose LRO ends
        `Canceled` / `OperationPreempted` (azure-sdk-for-java#1783; kubernetes/autoscaler and
        cloud-provider-azure retry on it). Instance deletes still running are preempted the same way
        (DeleteInstances, a scale-set VM or a Flexible VM delete: kubernetes/autoscaler PR 9505 retries a delete
        whose LRO ended OperationPreempted "when another write hits the scale set"); their instances that
        were not gone yet stay (unverified: Azure's instance-level outcome is not documented). Repairs
        (restart/reimage/redeploy) still running keep answering 409 `Conflict` (no source shows them
        preempted). The fault plan's `"concurrentWrites": "conflict"` keeps the older 409 for everything."""
        if self.state.faults.concurrent_writes == "conflict":
            if scale_set.active:
                raise concurrent_conflict()
            return
        others = [self.state.operations[o] for o in scale_set.active if o != scale_set.busy]
        if any(operation.kind != "delete" for operation in others):
            raise concurrent_conflict()
        now = self.state.clock.now()
        for operation in others:
            self.state.preempt(operation, now)
        if scale_set.busy is not None:
            self.state.preempt(self.state.operations[scale_set.busy], now)

    def _check_cores_quota(self, scale_set: ScaleSet, new_instances: int) -> None:
        """The fault plan's `coresQuota`: a scale-out past the region's Total Regional Cores quota answers 409
        `OperationNotAllowed` in Azure's wording (microsoft/onefuzz PR 614, nforgeio/neonKUBE issue 1671,
        Azure/Mission-Critical-Online PR 251); there is no QuotaExceeded code on this path. Cores per instance
        come from the SKU name's digits (Standard_D2s_v3 → 2) unless `coresPerInstance` says (unverified)."""
        quota = self.state.faults.cores_quota
        if not quota or new_instances <= 0:
            return
        location = str(quota.get("location") or scale_set.location).replace(" ", "").lower()
        if scale_set.location.replace(" ", "").lower() != location:
            return
        usage = sum(
            len(other.vms) * _cores(other.resource, quota)
            for other in self.state.scale_sets.values()
            if other.location.replace(" ", "").lower() == location and other.subscription == scale_set.subscription
        )
        required = new_instances * _cores(scale_set.resource, quota)
        limit = int(quota["limit"])
        if usage + required > limit:
            raise ArmError(
                409,
                "OperationNotAllowed",
                "Operation could not be completed as it results in exceeding approved Total Regional Cores quota. "
                f"Additional details - Deployment Model: Resource Manager, Location: {location}, Current Limit: "
                f"{limit}, Current Usage: {usage}, Additional Required: {required}, (Minimum) New Limit Required: "
                f"{usage + required}. Submit a request for Quota increase at https://aka.ms/ProdportalCRP/#blade/"
                "Microsoft_Azure_Capacity/UsageAndQuota.ReactView by specifying parameters listed in the "
                "\u2018Details\u2019 section for deployment to succeed. Please read more about quota limits at "
                "https://docs.microsoft.com/en-us/azure/azure-supportability/regional-quota-requests.",
            )

    def _check_can_act(self, vm: Vm, action: str) -> None:
        name = vm.payload.get("name", vm.key)
        state = vm.provisioning_state.lower()
        if state == "deleting":
            raise ArmError(
                409,
                "OperationNotAllowed",
                f"Operation '{action}' is not allowed on VM '{name}' since the VM is marked for deletion. "
                "You can only retry the Delete operation (or wait for an ongoing one to complete).",
            )
        if state == "creating" or vm.busy:
            raise concurrent_conflict()

    def _mark_deleting(self, scale_set: ScaleSet, vm: Vm, at: datetime) -> None:
        payloads.set_provisioning(vm.payload, "Deleting", at)
        payloads.set_power(vm.payload, "deallocating", at)

    def _scale_in_victims(self, scale_set: ScaleSet, count: int) -> tuple[Vm, ...]:
        # Azure's default scale-in policy removes the highest instance ids first.
        candidates = [vm for vm in scale_set.vms.values() if vm.provisioning_state.lower() != "deleting"]
        candidates.sort(key=lambda vm: (int(vm.key) if vm.key.isdigit() else -1, vm.key))
        return tuple(candidates[-count:]) if count else ()

    def _attempt_delete(self, scale_set: ScaleSet, vm: Vm, at: datetime, *, adjust_capacity: bool) -> dict | None:
        """One delete attempt. Returns the error for the operation, or None (done, or the resilient
        delete policy took over and retries in the background)."""
        if vm.removed:
            return None
        if vm.delete_failures_left is None:
            rule = self.state.faults.delete_failure_for(scale_set.resource_group, scale_set.name, vm.key)
            vm.delete_failures_left = rule.times if rule else 0
            if rule:
                vm.delete_code, vm.delete_backoff = rule.code, rule.backoff_seconds
        if vm.delete_failures_left > 0:
            vm.delete_failures_left -= 1
            name = str(vm.payload.get("name", vm.key))
            error = {"code": vm.delete_code, "message": fleetgen.failure_message(vm.delete_code, name)}
            if scale_set.resilient_deletion and vm.delete_retries < RESILIENT_RETRIES:
                vm.delete_retries += 1
                vm.deletion_status = "InProgress"
                scale_set.refresh_deletion_status(vm)
                # "the VM alternates between a provisioning state of Deleting and Failed" between attempts
                # (azure-compute-docs articles/virtual-machine-scale-sets/resilient-vm-create-delete.md): Failed
                # for the first half of the back-off, Deleting (the retry running) for the second, the retry's
                # outcome at its end. The split is the emulator's (unverified); the back-off is the fault plan's.
                payloads.set_provisioning(vm.payload, "Failed", at, error_code=vm.delete_code, message=error["message"])
                delay = vm.delete_backoff * 2 ** (vm.delete_retries - 1)
                self.state.schedule(at + timedelta(seconds=delay / 2), lambda due: self._retry_starts(vm, due))
                self.state.schedule(
                    at + timedelta(seconds=delay),
                    lambda due: self._attempt_delete(scale_set, vm, due, adjust_capacity=adjust_capacity),
                )
                return None
            if scale_set.resilient_deletion:
                vm.deletion_status = "Failed"
                scale_set.refresh_deletion_status(vm)
            payloads.set_provisioning(vm.payload, "Failed", at, error_code=vm.delete_code, message=error["message"])
            return None if scale_set.resilient_deletion else error
        self.state.remove_vm(scale_set, vm)
        if adjust_capacity:
            sku = scale_set.resource.setdefault("sku", {})
            sku["capacity"] = max(0, int(sku.get("capacity", 1)) - 1)
        return None

    def _retry_starts(self, vm: Vm, at: datetime) -> None:
        if not vm.removed and vm.deletion_status == "InProgress":
            payloads.set_provisioning(vm.payload, "Deleting", at)

    def _next_key(self, scale_set: ScaleSet) -> str:
        if scale_set.flexible:
            key = fleetgen.flexible_vm_name(scale_set.resource, scale_set.next_position)
            scale_set.next_position += 1
            while key.lower() in scale_set.vms:
                key = fleetgen.flexible_vm_name(scale_set.resource, scale_set.next_position)
                scale_set.next_position += 1
            return key
        key = str(scale_set.next_instance_id)
        scale_set.next_instance_id += 1
        return key

    def _new_instance(self, scale_set: ScaleSet, at: datetime) -> Vm:
        # Initializing exists only with rich health states; a binary extension reports nothing until its
        # first probe (unverified), so a new instance has no vmHealth then.
        rich = payloads.has_rich_health_states(scale_set.resource)
        key = self._next_key(scale_set)
        payload = fleetgen.instance(
            scale_set.resource, key, now=at, state="Creating", health="initializing" if rich else None
        )
        return Vm(key=key, payload=payload, create_started=at)

    def _create_instances(self, scale_set: ScaleSet, count: int, at: datetime) -> None:
        for _ in range(count):
            vm = self._new_instance(scale_set, at)
            rule = self.state.faults.create_failure_for(scale_set.resource_group, scale_set.name)
            if rule:
                vm.create_failures_left = rule.times
                vm.create_code = rule.code
                vm.attempt_seconds = rule.attempt_seconds
            self.state.add_vm(scale_set, vm)
            self._schedule_create_attempt(scale_set, vm, at)

    def _schedule_create_attempt(self, scale_set: ScaleSet, vm: Vm, at: datetime) -> None:
        seconds = vm.attempt_seconds if vm.create_failures_left > 0 else self.state.create_delay
        self.state.schedule(at + timedelta(seconds=seconds), lambda due: self._finish_create(scale_set, vm, due))

    def _finish_create(self, scale_set: ScaleSet, vm: Vm, at: datetime) -> None:
        if vm.removed or vm.provisioning_state.lower() != "creating":
            return
        if vm.create_failures_left > 0:
            vm.create_failures_left -= 1
            elapsed = at - (vm.create_started or at)
            if (
                scale_set.resilient_creation
                # resilient create retries only create timeouts (learn.microsoft.com/azure/virtual-machine-scale-sets/
                # resilient-vm-create: OSProvisioningTimedOut, VMStartTimedOut), never an extension failure
                and vm.create_code in CREATE_TIMEOUT_CODES
                and vm.create_retries < RESILIENT_RETRIES
                and elapsed < RESILIENT_CREATE_WINDOW
            ):
                # Resilient create "deletes and recreates the VM" (learn.microsoft.com/azure/virtual-machine-scale-sets/
                # resilient-vm-create): the retry is a new instance (Uniform: the next instance id; Flexible: a new
                # VM name) that replaces the failed one; the scale set's capacity counts it once.
                retry = self._new_instance(scale_set, at)
                retry.create_started = vm.create_started
                retry.create_retries = vm.create_retries + 1
                retry.create_failures_left = vm.create_failures_left
                retry.create_code = vm.create_code
                retry.attempt_seconds = vm.attempt_seconds
                self.state.remove_vm(scale_set, vm)
                self.state.add_vm(scale_set, retry)
                self._schedule_create_attempt(scale_set, retry, at)
                return
            name = str(vm.payload.get("name", vm.key))
            payloads.set_provisioning(
                vm.payload,
                "Failed",
                at,
                error_code=vm.create_code,
                message=fleetgen.failure_message(vm.create_code, name),
            )
            if vm.create_code not in CREATE_TIMEOUT_CODES:
                # the VM booted and an extension failed: it runs (as in Microsoft's "List all VMs in a set" sample,
                # ProvisioningState/failed/VMAgentProvisioningFailure with PowerState/Running)
                payloads.set_power(vm.payload, "running", at)
            if payloads.health_state(vm.payload) is not None:
                payloads.set_health(vm.payload, "unknown", at)
            return
        payloads.set_provisioning(vm.payload, "Succeeded", at)
        payloads.set_power(vm.payload, "running", at)
        self._settle_health(scale_set, vm, at)

    def _settle_health(self, scale_set: ScaleSet, vm: Vm, at: datetime) -> None:
        """After a create or a repair: Healthy, unless the fault plan keeps this instance Unhealthy."""
        if payloads.health_state(vm.payload) is None and not payloads.has_health_extension(scale_set.resource):
            return
        if vm.unhealthy_repairs_left is None:
            rule = self.state.faults.unhealthy_rule_for(scale_set.resource_group, scale_set.name, vm.key)
            vm.unhealthy_repairs_left = (-1 if rule.times is None else rule.times) if rule else 0
        stays_unhealthy = vm.unhealthy_repairs_left != 0
        if vm.unhealthy_repairs_left > 0:
            vm.unhealthy_repairs_left -= 1
        payloads.set_health(vm.payload, "unhealthy" if stays_unhealthy else "healthy", at)

    # --- views -------------------------------------------------------------------------------------

    def instance_view(self, scale_set: ScaleSet) -> dict[str, Any]:
        """The scale set instance view. `virtualMachine.statusesSummary` is the fleet file's own while the
        instances still carry the codes it was captured with (a captured summary is Azure's count, which may
        disagree with the captured instance list: it is served as recorded); after any change it is recounted
        from the instances."""
        if scale_set.captured_summary is not None and instance_codes(scale_set) == scale_set.captured_codes:
            view = dict(scale_set.instance_view)
            if not view.get("orchestrationServices"):
                view.pop("orchestrationServices", None)
            return view
        counts: dict[str, int] = {}
        succeeded = 0
        for vm in scale_set.vms.values():
            code = payloads.provisioning_code(vm.payload)
            counts[code] = counts.get(code, 0) + 1
            succeeded += code == "ProvisioningState/succeeded"
        view = dict(scale_set.instance_view)
        view["virtualMachine"] = {"statusesSummary": [{"code": c, "count": n} for c, n in counts.items()]}
        if view.get("extensions"):
            view["extensions"] = [
                ext
                if ext.get("statusesSummary")
                else {**ext, "statusesSummary": [{"code": "ProvisioningState/succeeded", "count": succeeded}]}
                for ext in view["extensions"]
            ]
        if not view.get("orchestrationServices"):
            view.pop("orchestrationServices", None)
        return view


def _region(location: str) -> str:
    return location.replace(" ", "").lower()


def _check_conditions(scale_set: ScaleSet | None, if_match: str | None, if_none_match: str | None) -> None:
    """ARM's optimistic concurrency (the swagger's If-Match / If-None-Match on CreateOrUpdate and Update;
    learn.microsoft.com/azure/azure-resource-manager/management/optimistic-concurrency): If-Match must name the
    current etag ("*": the resource must exist), If-None-Match "*" refuses an existing resource; otherwise 412
    PreconditionFailed (the wording is the emulator's, unverified)."""
    etag = scale_set.resource.get("etag") if scale_set is not None else None
    failed = bool(if_match) and (scale_set is None or (if_match != "*" and if_match != etag))
    failed = failed or (if_none_match is not None and if_none_match.strip() == "*" and scale_set is not None)
    if failed:
        raise ArmError(
            412, "PreconditionFailed", "The condition specified using HTTP conditional header(s) is not met."
        )


# Members of a PUT body Compute computes itself: whatever the client sends for them is ignored.
_READ_ONLY = ("id", "name", "type", "etag")
_READ_ONLY_PROPERTIES = ("provisioningState", "uniqueId", "timeCreated")


def _put_model(body: dict[str, Any], current: dict[str, Any], resource_id: str, name: str) -> dict[str, Any]:
    """The stored model after a PUT: the body's members replace the model's, except inside
    `virtualMachineProfile`, where members the body omits are kept (recorded: azure-cli's PUT in
    tests/recorded/cli-vmss-put-enable-repairs.json omits storageProfile.imageReference and
    osProfile.requireGuestProvisionSignal, and Azure's answer still has both; whether Compute keeps omitted members
    elsewhere is unverified). Plus the identity and read-only properties Compute keeps, and no secret: Microsoft's
    Create examples send osProfile.adminPassword and answer without it."""
    model: dict[str, Any] = {"name": name, "id": resource_id, "type": "Microsoft.Compute/virtualMachineScaleSets"}
    model.update({k: copy.deepcopy(v) for k, v in body.items() if k not in _READ_ONLY and v is not None})
    model["tags"] = dict(model.get("tags") or {})
    properties = {k: v for k, v in (model.get("properties") or {}).items() if k not in _READ_ONLY_PROPERTIES}
    kept = current.get("properties") or {}
    properties.update({k: kept[k] for k in _READ_ONLY_PROPERTIES[1:] if k in kept})
    profile, given = kept.get("virtualMachineProfile"), properties.get("virtualMachineProfile")
    if isinstance(profile, dict) and isinstance(given, dict):
        properties["virtualMachineProfile"] = _keep_omitted(profile, given)
    os_profile = (properties.get("virtualMachineProfile") or {}).get("osProfile")
    if isinstance(os_profile, dict):
        os_profile.pop("adminPassword", None)
    model["properties"] = properties
    for key in ("etag", "managedBy"):
        if key in current:
            model[key] = current[key]
    return model


def _keep_omitted(current: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """`given` with the members of `current` it does not name (objects recursively; arrays and scalars as given)."""
    result = copy.deepcopy(current)
    for key, value in given.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _keep_omitted(result[key], value)
        else:
            result[key] = value
    return result


def _cores(resource: dict[str, Any], quota: dict[str, Any]) -> int:
    if quota.get("coresPerInstance"):
        return int(quota["coresPerInstance"])
    found = re.match(r"^[A-Za-z]+_[A-Za-z]+(\d+)", str((resource.get("sku") or {}).get("name") or ""))
    return int(found.group(1)) if found else 2
