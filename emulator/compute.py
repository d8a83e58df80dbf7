"""Microsoft.Compute handlers: turn routed requests into platform calls and ARM-shaped answers."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from . import errors, fleetgen, openapi
from .errors import ArmError
from .messages import Request, Response
from .platform import Platform
from .routes import Route
from .state import FleetState, Operation, ScaleSet, Vm

_VMSS_TYPE = "Microsoft.Compute/virtualMachineScaleSets"
_VM_TYPE = "Microsoft.Compute/virtualMachines"
_FILTER = re.compile(r"^\s*'?virtualMachineScaleSet/id'?\s+eq\s+'([^']+)'\s*$", re.IGNORECASE)
# Oldest api-version whose swagger offers $expand=resiliencyView on VirtualMachineScaleSetVMs_Get
# (azure-rest-api-specs, Microsoft.Compute/ComputeRP/stable/2024-07-01).
RESILIENCY_VIEW_API = "2024-07-01"
_INTERNAL_ERRORS = {"internalexecutionerror", "internaloperationerror", "transientfailure"}


class ComputeBackend:
    """Answers routed Compute requests against a FleetState (one request at a time per fleet lock)."""

    def __init__(self, state: FleetState, endpoint: Callable[[], str]) -> None:
        self.state = state
        self.platform = Platform(state)
        self._endpoint = endpoint
        # The subscription of the request being answered: set under the fleet lock, which `call` holds for
        # the whole request, so handlers of one request never see another's.
        self._subscription = ""

    def call(self, route: Route, params: dict[str, str], request: Request) -> Response:
        with self.state.lock:
            self.state.run_due()
            if not self.state.has_subscription(params["subscription"]):
                raise errors.subscription_not_found(params["subscription"])
            self._subscription = params["subscription"].lower()
            resource_group = params.get("resource_group")
            if resource_group is not None and not self.state.has_resource_group(resource_group, self._subscription):
                raise errors.resource_group_not_found(resource_group)
            if (
                request.method != "GET"
                and route.operation_id != "VirtualMachineScaleSets_Delete"
                and "scale_set" in params
            ):
                marked = self.state.find_scale_set(
                    params.get("resource_group", ""), params["scale_set"], params.get("subscription")
                )
                if marked is not None and marked.deleting is not None:
                    raise errors.marked_for_deletion(route.operation_id, marked.name)
            if request.body.strip():
                # Compute's reading of the body: unknown members refused, "false" read as false (openapi.py).
                parsed = openapi.read_body(route.operation_id, request.body)
                if parsed is not None:
                    request.body = json.dumps(parsed).encode()
            handler = getattr(self, route.handler)
            return handler(request, route, **{k: v for k, v in params.items() if k != "subscription"})

    def region(self, params: dict[str, str]) -> str:
        """The region whose Compute buckets a request spends: its scale set's or VM's location, the
        operation's location, or "" for subscription-wide lists (unverified: Azure may charge each region)."""
        if "location" in params:
            return params["location"].replace(" ", "").lower()
        with self.state.lock:
            target: ScaleSet | None = None
            if "scale_set" in params:
                target = self.state.find_scale_set(
                    params.get("resource_group", ""), params["scale_set"], params.get("subscription")
                )
            elif "vm" in params:
                found = self.state.find_vm(params.get("resource_group", ""), params["vm"], params.get("subscription"))
                target = found[0] if found else None
            return target.location.replace(" ", "").lower() if target is not None else ""

    # --- helpers -----------------------------------------------------------------------------------

    def _scale_set(self, resource_group: str, name: str) -> ScaleSet:
        scale_set = self.state.find_scale_set(resource_group, name, self._subscription)
        if scale_set is None:
            raise errors.resource_not_found(_VMSS_TYPE, name, resource_group)
        return scale_set

    def _uniform_instance(self, scale_set: ScaleSet, instance: str) -> Vm:
        if not instance.isdigit():
            raise errors.instance_id_not_a_number()
        vm = scale_set.vms.get(instance.lower())
        if vm is None:
            raise errors.instance_not_found()
        return vm

    def _vm(self, resource_group: str, name: str) -> tuple[ScaleSet, Vm] | None:
        return self.state.find_vm(resource_group, name, self._subscription)

    def _page(self, request: Request, items: list[Any], render: Callable[[Any], dict]) -> Response:
        token = request.query.get("$skiptoken")
        offset = 0
        if token:
            try:
                offset = int(base64.urlsafe_b64decode(token.encode() + b"==").decode())
            except ValueError as error:
                raise errors.invalid_parameter(
                    "The value of parameter '$skiptoken' is invalid.", "$skiptoken"
                ) from error
        size = self.state.page_size
        body: dict[str, Any] = {"value": [render(item) for item in items[offset : offset + size]]}
        if offset + size < len(items):
            next_token = base64.urlsafe_b64encode(str(offset + size).encode()).decode().rstrip("=")
            query = [(k, v) for k, v in request.query.items() if k != "$skiptoken"] + [("$skiptoken", next_token)]
            encoded = "&".join(f"{k}={quote(v, safe='')}" for k, v in query)
            body["nextLink"] = f"{self._endpoint()}{request.raw_path}?{encoded}"
        return Response.json(200, body)

    def _operation_headers(self, request: Request, operation: Operation, *, location: bool) -> dict[str, str]:
        api_version = request.query.get("api-version", "")
        url = (
            f"{self._endpoint()}/subscriptions/{operation.scale_set.id.split('/')[2]}/providers/Microsoft.Compute"
            f"/locations/{operation.location}/operations/{operation.id}"
            f"?p={fleetgen.stable_uuid(operation.id)}&api-version={api_version}"
        )
        headers = {"Azure-AsyncOperation": url}
        if location:
            headers["Location"] = url + "&monitor=true"
        return headers

    def _accepted(self, request: Request, operation: Operation) -> Response:
        return Response.empty(202, self._operation_headers(request, operation, location=True))

    @staticmethod
    def _expand(request: Request, allowed: Iterable[str]) -> str | None:
        value = request.query.get("$expand")
        if value is None or value == "":
            return None
        for option in allowed:
            if value.lower() == option.lower():
                return option
        raise errors.invalid_parameter(f"The value '{value}' of parameter '$expand' is invalid.", "$expand")

    @staticmethod
    def _force(request: Request) -> bool:
        value = request.query.get("forcedeletion", "false").lower()
        if value not in {"true", "false"}:
            raise errors.invalid_parameter(
                f"The value '{value}' of parameter 'forceDeletion' is invalid.", "forceDeletion"
            )
        return value == "true"

    # --- resource groups (Microsoft.Resources) -----------------------------------------------------

    def list_resource_groups(self, request: Request, route: Route) -> Response:
        names = self.state.resource_group_names(self._subscription)
        groups = [self.state.resource_group_payload(rg, self._subscription) for rg in names]
        return self._page(request, groups, lambda group: group)

    def get_resource_group(self, request: Request, route: Route, resource_group: str) -> Response:
        return Response.json(200, self.state.resource_group_payload(resource_group, self._subscription))

    # --- scale sets --------------------------------------------------------------------------------

    def list_scale_sets(self, request: Request, route: Route, resource_group: str | None = None) -> Response:
        return self._page(request, self.state.scale_sets_in(resource_group, self._subscription), lambda s: s.resource)

    def get_scale_set(self, request: Request, route: Route, resource_group: str, scale_set: str) -> Response:
        return Response.json(200, self._scale_set(resource_group, scale_set).resource)

    def update_scale_set(self, request: Request, route: Route, resource_group: str, scale_set: str) -> Response:
        target = self._scale_set(resource_group, scale_set)
        operation = self.platform.update(target, request.json(), request.header("if-match"))
        # Compute answers a PATCH with 200, the model in "Updating" and an Azure-AsyncOperation monitor.
        return Response.json(200, target.resource, self._operation_headers(request, operation, location=False))

    def create_or_update_scale_set(
        self, request: Request, route: Route, resource_group: str, scale_set: str
    ) -> Response:
        target, operation, created = self.platform.create_or_update(
            self._subscription,
            resource_group,
            scale_set,
            request.json(),
            if_match=request.header("if-match"),
            if_none_match=request.header("if-none-match"),
        )
        # As recorded (tests/recorded/cli-vmss-put-*.json): the model in "Updating" (201 "Creating" for a new one,
        # Microsoft's REST examples) and an Azure-AsyncOperation monitor carrying the api-version, no Location.
        headers = self._operation_headers(request, operation, location=False)
        return Response.json(201 if created else 200, target.resource, headers)

    def delete_scale_set(self, request: Request, route: Route, resource_group: str, scale_set: str) -> Response:
        target = self.state.find_scale_set(resource_group, scale_set, self._subscription)
        if target is None:
            return Response.empty(204)  # ARM: deleting what is already gone succeeds
        self._force(request)
        if target.deleting is not None:  # a retried delete follows the one in progress
            return self._accepted(request, self.state.operations[target.deleting])
        return self._accepted(request, self.platform.delete_scale_set(target))

    def scale_set_instance_view(self, request: Request, route: Route, resource_group: str, scale_set: str) -> Response:
        target = self._scale_set(resource_group, scale_set)
        if target.flexible:
            raise errors.not_allowed_on_flexible("VirtualMachineScaleSets.instanceView.GET", target.name)
        return Response.json(200, self.platform.instance_view(target))

    def set_orchestration_service_state(
        self, request: Request, route: Route, resource_group: str, scale_set: str
    ) -> Response:
        target = self._scale_set(resource_group, scale_set)
        if target.flexible:
            # Uniform-only (learn.microsoft.com/azure/virtual-machine-scale-sets/
            # virtual-machine-scale-sets-orchestration-modes, API comparison); Azure's wording is unverified,
            # the emulator answers as it does for the other Uniform-only scale-set APIs.
            raise errors.not_allowed_on_flexible(
                "VirtualMachineScaleSets.setOrchestrationServiceState.POST", target.name
            )
        return self._accepted(request, self.platform.set_orchestration_service_state(target, request.json()))

    def delete_instances(self, request: Request, route: Route, resource_group: str, scale_set: str) -> Response:
        target = self._scale_set(resource_group, scale_set)
        force = self._force(request)
        body = request.json()
        keys = body.get("instanceIds") if isinstance(body, dict) else None
        vms = self.platform.resolve_instances(target, keys)
        return self._accepted(request, self.platform.delete(target, vms, force=force))

    def scale_out(self, request: Request, route: Route, resource_group: str, scale_set: str) -> Response:
        target = self._scale_set(resource_group, scale_set)
        return self._accepted(request, self.platform.scale_out(target, request.json()))

    def scale_set_action(self, request: Request, route: Route, resource_group: str, scale_set: str) -> Response:
        target = self._scale_set(resource_group, scale_set)
        if target.flexible:
            # Flexible scale sets take these actions on each VM through the virtual machines API.
            raise errors.not_allowed_on_flexible(f"VirtualMachineScaleSets.{route.action}.POST", target.name)
        body = request.json(required=False) or {}
        keys = body.get("instanceIds") if isinstance(body, dict) else None
        # No instance ids: every instance, as in Azure.
        vms = self.platform.resolve_instances(target, keys) if keys else list(target.vms.values())
        return self._accepted(request, self.platform.act(target, vms, str(route.action)))

    # --- scale set VMs (Uniform) -------------------------------------------------------------------

    def list_scale_set_vms(self, request: Request, route: Route, resource_group: str, scale_set: str) -> Response:
        target = self._scale_set(resource_group, scale_set)
        if target.flexible:
            raise errors.not_allowed_on_flexible("VirtualMachineScaleSets.virtualMachines.GET", target.name)
        with_view = self._expand(request, ("instanceView",)) is not None
        # $filter is accepted and ignored; $select=instanceView is answered as Azure projects it.
        if str(request.query.get("$select") or "").strip().lower() == "instanceview":
            return self._page(request, list(target.vms.values()), _selected_instance_view)
        return self._page(
            request, list(target.vms.values()), lambda vm: vm.payload if with_view else _without_view(vm.payload)
        )

    def get_scale_set_vm(
        self, request: Request, route: Route, resource_group: str, scale_set: str, instance: str
    ) -> Response:
        target = self._scale_set(resource_group, scale_set)
        expand = self._expand(request, ("instanceView", "userData", "resiliencyView"))
        if expand == "resiliencyView" and request.query.get("api-version", "")[:10] < RESILIENCY_VIEW_API:
            # The swagger adds resiliencyView to this operation's $expand enum in 2024-07-01.
            raise errors.invalid_parameter(
                f"The value 'resiliencyView' of parameter '$expand' is not supported in api-version "
                f"'{request.query.get('api-version')}'; use {RESILIENCY_VIEW_API} or later.",
                "$expand",
            )
        if target.flexible:
            # Works for Flexible too (VM name as instance id), as Microsoft's resilient delete doc shows.
            vm = target.vms.get(instance.lower())
            if vm is None:
                raise errors.instance_not_found()
            return Response.json(200, _flexible_as_scale_set_vm(target, vm, expand))
        vm = self._uniform_instance(target, instance)
        return Response.json(200, _scale_set_vm(vm.payload, expand))

    def scale_set_vm_instance_view(
        self, request: Request, route: Route, resource_group: str, scale_set: str, instance: str
    ) -> Response:
        target = self._scale_set(resource_group, scale_set)
        vm = self._uniform_instance(target, instance)
        return Response.json(200, vm.payload.get("properties", {}).get("instanceView", {}))

    def delete_scale_set_vm(
        self, request: Request, route: Route, resource_group: str, scale_set: str, instance: str
    ) -> Response:
        target = self._scale_set(resource_group, scale_set)
        force = self._force(request)
        if not instance.isdigit():
            raise errors.instance_id_not_a_number()
        vm = target.vms.get(instance.lower())
        if vm is None:
            return Response.empty(204)  # ARM: deleting what is already gone succeeds
        return self._accepted(request, self.platform.delete(target, [vm], force=force))

    def scale_set_vm_action(
        self, request: Request, route: Route, resource_group: str, scale_set: str, instance: str
    ) -> Response:
        target = self._scale_set(resource_group, scale_set)
        vm = self._uniform_instance(target, instance)
        return self._accepted(request, self.platform.act(target, [vm], str(route.action)))

    # --- virtual machines (Flexible instances) ----------------------------------------------------

    def list_vms(self, request: Request, route: Route, resource_group: str | None = None) -> Response:
        expand = self._expand(request, ("instanceView",))
        raw_filter = request.query.get("$filter")
        if raw_filter:
            match = _FILTER.match(raw_filter)
            if not match:
                raise errors.invalid_parameter(
                    f"The value '{raw_filter}' of parameter '$filter' is invalid. The supported filter is "
                    "'virtualMachineScaleSet/id' eq '<scale set resource id>'.",
                    "$filter",
                )
            owner = self.state.find_scale_set_by_id(match.group(1))
            scale_sets = [owner] if owner is not None and owner.subscription == self._subscription else []
            if resource_group is not None:
                scale_sets = [s for s in scale_sets if s.resource_group.lower() == resource_group.lower()]
        elif expand:
            raise errors.invalid_parameter(
                "The $expand=instanceView option can only be specified if a valid $filter option "
                "('virtualMachineScaleSet/id' eq '<scale set resource id>') is specified.",
                "$expand",
            )
        else:
            scale_sets = self.state.scale_sets_in(resource_group, self._subscription)
        vms = [vm for s in scale_sets if s.flexible for vm in s.vms.values()]
        return self._page(request, vms, lambda vm: vm.payload if expand else _without_view(vm.payload))

    def get_vm(self, request: Request, route: Route, resource_group: str, vm: str) -> Response:
        expand = self._expand(request, ("instanceView", "userData"))
        found = self._vm(resource_group, vm)
        if found is None:
            raise errors.resource_not_found(_VM_TYPE, vm, resource_group)
        payload = found[1].payload
        return Response.json(200, payload if expand == "instanceView" else _without_view(payload))

    def vm_instance_view(self, request: Request, route: Route, resource_group: str, vm: str) -> Response:
        found = self._vm(resource_group, vm)
        if found is None:
            raise errors.resource_not_found(_VM_TYPE, vm, resource_group)
        return Response.json(200, found[1].payload.get("properties", {}).get("instanceView", {}))

    def delete_vm(self, request: Request, route: Route, resource_group: str, vm: str) -> Response:
        force = self._force(request)
        found = self._vm(resource_group, vm)
        if found is None:
            return Response.empty(204)
        return self._accepted(request, self.platform.delete(found[0], [found[1]], force=force))

    def vm_action(self, request: Request, route: Route, resource_group: str, vm: str) -> Response:
        found = self._vm(resource_group, vm)
        if found is None:
            raise errors.resource_not_found(_VM_TYPE, vm, resource_group)
        return self._accepted(request, self.platform.act(found[0], [found[1]], str(route.action)))

    # --- operation monitors ------------------------------------------------------------------------

    def operation_status(self, request: Request, route: Route, location: str, operation: str) -> Response:
        found = self.state.poll(operation)
        if found is None:
            raise errors.instance_not_found()
        if request.query.get("monitor", "").lower() != "true":
            return Response.json(200, found.status_body())
        # The Location monitor: 202 while running, then the outcome.
        if found.status == "InProgress":
            return Response.empty(202, {"Location": self._operation_headers(request, found, location=True)["Location"]})
        if found.error:
            code = found.error["code"]
            status = 500 if code.lower() in _INTERNAL_ERRORS else 400
            raise ArmError(status, code, found.error["message"])
        return Response.empty(200)


# Azure's answer to `virtualMachines?$expand=instanceView&$select=instanceView` (recorded: azure-sdk-for-net
# TestVMScaleSetVMOperations, tests/recorded/net-vmss-vm-list-instance-view.json): id, instanceId and these
# properties only (no name, type, location, sku, tags or model).
_SELECTED_PROPERTIES = ("latestModelApplied", "instanceView", "hardwareProfile", "provisioningState")


def _selected_instance_view(vm: Vm) -> dict:
    properties = vm.payload.get("properties", {})
    return {
        "id": vm.payload.get("id"),
        "instanceId": vm.payload.get("instanceId"),
        "properties": {k: properties[k] for k in _SELECTED_PROPERTIES if k in properties},
    }


def _without_view(payload: dict) -> dict:
    properties = payload.get("properties")
    if not properties or "instanceView" not in properties:
        return payload
    return {**payload, "properties": {k: v for k, v in properties.items() if k != "instanceView"}}


def _scale_set_vm(payload: dict, expand: str | None) -> dict:
    properties = payload.get("properties", {})
    drop = {"instanceView", "resilientVMDeletionStatus"}
    if expand == "instanceView":
        drop = {"resilientVMDeletionStatus"}
    elif expand == "resiliencyView":
        # The swagger's $expand description: "'resiliencyView' will retrieve the instance view of the Virtual
        # machine (if applicable) and include 'resilientVMDeletionStatus' as part of it."
        drop = set()
    return {**payload, "properties": {k: v for k, v in properties.items() if k not in drop}}


def _flexible_as_scale_set_vm(scale_set: ScaleSet, vm: Vm, expand: str | None) -> dict:
    """A Flexible VM in the VMSS VM shape (GET .../virtualMachineScaleSets/{n}/virtualMachines/{vm})."""
    source = vm.payload
    properties = {
        k: v for k, v in source.get("properties", {}).items() if k not in {"instanceView", "virtualMachineScaleSet"}
    }
    if expand in ("instanceView", "resiliencyView"):
        properties["instanceView"] = source.get("properties", {}).get("instanceView", {})
    if expand == "resiliencyView":
        status = vm.deletion_status or ("Enabled" if scale_set.resilient_deletion else "Disabled")
        properties["resilientVMDeletionStatus"] = status
    result = {
        "name": source.get("name"),
        "id": source.get("id"),
        "type": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines",
        "location": source.get("location"),
        "instanceId": vm.key,
        "properties": properties,
    }
    if "etag" in source:
        result["etag"] = source["etag"]
    return result
