"""ARM's error envelope and the errors the emulator answers with, in Azure's wording."""

from __future__ import annotations

from typing import Any

ARM_NOT_FOUND_HELP = "For more details please go to https://aka.ms/ARMResourceNotFoundFix"


class ArmError(Exception):
    """An error answer: `{"error": {"code", "message", "target"?, "details"?}}` with an HTTP status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        target: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        innererror: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.details = details
        self.headers = headers or {}
        self.innererror = innererror

    def envelope(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target:
            error["target"] = self.target
        if self.details:
            error["details"] = self.details
        if self.innererror:
            error["innererror"] = self.innererror
        return {"error": error}


def resource_not_found(type_path: str, name: str, resource_group: str) -> ArmError:
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{type_path}/{name}' under resource group '{resource_group}' was not found. "
        + ARM_NOT_FOUND_HELP,
    )


def instance_not_found() -> ArmError:
    # Compute (not ARM) answers for nested scale-set instances.
    return ArmError(404, "NotFound", "The entity was not found in this Azure location.")


def resource_group_not_found(resource_group: str) -> ArmError:
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{resource_group}' could not be found.")


def subscription_not_found(subscription_id: str) -> ArmError:
    return ArmError(404, "SubscriptionNotFound", f"The subscription '{subscription_id}' could not be found.")


def invalid_parameter(message: str, target: str | None = None) -> ArmError:
    return ArmError(400, "InvalidParameter", message, target=target)


def bad_request(message: str) -> ArmError:
    return ArmError(400, "BadRequest", message)


def invalid_request_content(reason: str) -> ArmError:
    return ArmError(
        400,
        "InvalidRequestContent",
        f"The request content was invalid and could not be deserialized: '{reason}'.",
    )


def concurrent_conflict() -> ArmError:
    return ArmError(
        409,
        "Conflict",
        "The request failed due to conflict with a concurrent request. To resolve it, please refer to "
        "https://aka.ms/activitylog to get more details on the conflicting requests.",
    )


def not_allowed_on_flexible(operation: str, scale_set: str) -> ArmError:
    # Wording Azure uses when a Uniform-only API is called on a Flexible scale set.
    return bad_request(f"Operation '{operation}' is not allowed on Virtual Machine Scale Set '{scale_set}'.")


def instance_id_not_a_number() -> ArmError:
    return invalid_parameter("Virtual Machine Scale Set VM instanceId must be a number.", target="instanceId")


# Azure's display names of scale-set operations in "marked for deletion" refusals. Only the Update one is
# captured (microsoft/onefuzz PR 511, answering a PUT: tests/recorded/issue-409-vmss-marked-for-deletion.json, so
# CreateOrUpdate and PATCH share it); the others follow its pattern (unverified).
_OPERATION_TITLES = {
    "VirtualMachineScaleSets_CreateOrUpdate": "Update Virtual Machine Scale Set",
    "VirtualMachineScaleSets_Update": "Update Virtual Machine Scale Set",
    "VirtualMachineScaleSets_SetOrchestrationServiceState": "Set Orchestration Service State",
    "VirtualMachineScaleSets_ScaleOut": "Scale Out Virtual Machine Scale Set",
    "VirtualMachineScaleSets_DeleteInstances": "Delete Virtual Machine Scale Set VMs",
    "VirtualMachineScaleSets_Restart": "Restart Virtual Machine Scale Set VMs",
    "VirtualMachineScaleSets_Reimage": "Reimage Virtual Machine Scale Set VMs",
    "VirtualMachineScaleSets_Redeploy": "Redeploy Virtual Machine Scale Set VMs",
    "VirtualMachineScaleSetVMs_Delete": "Delete Virtual Machine Scale Set VM",
    "VirtualMachineScaleSetVMs_Restart": "Restart Virtual Machine Scale Set VM",
    "VirtualMachineScaleSetVMs_Reimage": "Reimage Virtual Machine Scale Set VM",
    "VirtualMachineScaleSetVMs_Redeploy": "Redeploy Virtual Machine Scale Set VM",
}


def marked_for_deletion(operation_id: str, scale_set: str) -> ArmError:
    """A write on a scale set being deleted (microsoft/onefuzz PR 511: 409 OperationNotAllowed)."""
    title = _OPERATION_TITLES.get(operation_id, operation_id)
    return ArmError(
        409,
        "OperationNotAllowed",
        f"Operation '{title}' is not allowed on Virtual Machine Scale Set '{scale_set}' since it is marked for "
        "deletion. For more information on your operations, please refer to https://aka.ms/activitylog.",
    )
