"""The Microsoft.Compute routes the emulator answers, keyed by swagger operationId.

Matching is case-insensitive on literal segments, as in ARM (the SDK itself mixes `virtualMachines`
and `virtualmachines`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ArmError

_SUB = "subscriptions/{subscription}"
_RG = _SUB + "/resourceGroups/{resource_group}"
_VMSS = _RG + "/providers/Microsoft.Compute/virtualMachineScaleSets/{scale_set}"
_VM = _RG + "/providers/Microsoft.Compute/virtualMachines/{vm}"

# Compute's throttling policy per operationId: compute_limits.ROUTE_CHARGES.


@dataclass(frozen=True)
class Route:
    method: str
    pattern: tuple[str, ...]
    operation_id: str
    handler: str
    action: str | None = None  # restart / reimage / redeploy for the shared action handlers
    api_floor: str | None = None  # oldest api-version accepted; None = Compute's (api.OLDEST_API_VERSION)


def _route(
    method: str,
    template: str,
    operation_id: str,
    handler: str,
    action: str | None = None,
    api_floor: str | None = None,
) -> Route:
    pattern = tuple(part if part.startswith("{") else part.lower() for part in template.split("/"))
    return Route(method, pattern, operation_id, handler, action, api_floor)


# ARM's Resources API (Microsoft.Resources), for the resource groups' managedBy and tags; ARM's read bucket
# only. learn.microsoft.com/rest/api/resources/resource-groups/list and .../get; api-version 2021-04-01 is
# the one the brief names, older ones are accepted from 2019-10-01 (a floor chosen here, unverified).
_RESOURCES_FLOOR = "2019-10-01"

ROUTES: list[Route] = [
    _route("GET", _SUB + "/resourcegroups", "ResourceGroups_List", "list_resource_groups", api_floor=_RESOURCES_FLOOR),
    _route("GET", _RG, "ResourceGroups_Get", "get_resource_group", api_floor=_RESOURCES_FLOOR),
    _route(
        "GET",
        _SUB + "/providers/Microsoft.Compute/virtualMachineScaleSets",
        "VirtualMachineScaleSets_ListAll",
        "list_scale_sets",
    ),
    _route(
        "GET",
        _RG + "/providers/Microsoft.Compute/virtualMachineScaleSets",
        "VirtualMachineScaleSets_List",
        "list_scale_sets",
    ),
    _route("GET", _VMSS, "VirtualMachineScaleSets_Get", "get_scale_set"),
    _route("PUT", _VMSS, "VirtualMachineScaleSets_CreateOrUpdate", "create_or_update_scale_set"),
    _route("PATCH", _VMSS, "VirtualMachineScaleSets_Update", "update_scale_set"),
    _route("DELETE", _VMSS, "VirtualMachineScaleSets_Delete", "delete_scale_set"),
    _route("GET", _VMSS + "/instanceView", "VirtualMachineScaleSets_GetInstanceView", "scale_set_instance_view"),
    _route(
        "POST",
        _VMSS + "/setOrchestrationServiceState",
        "VirtualMachineScaleSets_SetOrchestrationServiceState",
        "set_orchestration_service_state",
    ),
    _route("POST", _VMSS + "/delete", "VirtualMachineScaleSets_DeleteInstances", "delete_instances"),
    _route("POST", _VMSS + "/scaleOut", "VirtualMachineScaleSets_ScaleOut", "scale_out"),
    *[
        _route(
            "POST",
            f"{_VMSS}/{action}",
            f"VirtualMachineScaleSets_{action.title()}",
            "scale_set_action",
            action,
        )
        for action in ("restart", "reimage", "redeploy")
    ],
    _route("GET", _VMSS + "/virtualMachines", "VirtualMachineScaleSetVMs_List", "list_scale_set_vms"),
    _route("GET", _VMSS + "/virtualMachines/{instance}", "VirtualMachineScaleSetVMs_Get", "get_scale_set_vm"),
    _route(
        "DELETE",
        _VMSS + "/virtualMachines/{instance}",
        "VirtualMachineScaleSetVMs_Delete",
        "delete_scale_set_vm",
    ),
    _route(
        "GET",
        _VMSS + "/virtualMachines/{instance}/instanceView",
        "VirtualMachineScaleSetVMs_GetInstanceView",
        "scale_set_vm_instance_view",
    ),
    *[
        _route(
            "POST",
            f"{_VMSS}/virtualMachines/{{instance}}/{action}",
            f"VirtualMachineScaleSetVMs_{action.title()}",
            "scale_set_vm_action",
            action,
        )
        for action in ("restart", "reimage", "redeploy")
    ],
    _route("GET", _SUB + "/providers/Microsoft.Compute/virtualMachines", "VirtualMachines_ListAll", "list_vms"),
    _route("GET", _RG + "/providers/Microsoft.Compute/virtualMachines", "VirtualMachines_List", "list_vms"),
    _route("GET", _VM, "VirtualMachines_Get", "get_vm"),
    _route("DELETE", _VM, "VirtualMachines_Delete", "delete_vm"),
    _route("GET", _VM + "/instanceView", "VirtualMachines_InstanceView", "vm_instance_view"),
    *[
        _route("POST", f"{_VM}/{action}", f"VirtualMachines_{action.title()}", "vm_action", action)
        for action in ("restart", "reimage", "redeploy")
    ],
    # Not swagger operations: the status monitors of long-running operations.
    _route(
        "GET",
        _SUB + "/providers/Microsoft.Compute/locations/{location}/operations/{operation}",
        "LongRunningOperation_Status",
        "operation_status",
    ),
]


def _matches(pattern: tuple[str, ...], segments: list[str]) -> dict[str, str] | None:
    if len(pattern) != len(segments):
        return None
    params: dict[str, str] = {}
    for expected, actual in zip(pattern, segments, strict=True):
        if expected.startswith("{"):
            params[expected[1:-1]] = actual
        elif expected != actual.lower():
            return None
    return params


def match(method: str, segments: list[str]) -> tuple[Route, dict[str, str]]:
    """The route for a request, or ArmError 404 (unknown path) / 405 (known path, other method)."""
    known_path = False
    for route in ROUTES:
        params = _matches(route.pattern, segments)
        if params is None:
            continue
        if route.method == method:
            return route, params
        known_path = True
    if known_path:
        raise ArmError(405, "MethodNotAllowed", f"The requested resource does not support http method '{method}'.")
    resource_type = next(
        (segments[i + 1] for i, s in enumerate(segments[:-1]) if s.lower() == "microsoft.compute"),
        "/".join(segments[-2:]),
    )
    raise ArmError(
        404,
        "InvalidResourceType",
        f"The resource type '{resource_type}' could not be found in the namespace 'Microsoft.Compute' "
        "for the requested path.",
    )
