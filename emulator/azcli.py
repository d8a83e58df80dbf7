"""Fleet files written from the `az` CLI: its flattened shapes turned back into ARM's, or refused in one line.

ARM's REST answers keep a resource's model under `properties`; the `az` CLI prints the SDK model instead, with
`properties` flattened into the top level, camelCase names, `null` for what is unset and a `resourceGroup` of
its own (Azure/azure-cli issue 4296 shows `az vmss show --instance-id` printing `instanceId`, `instanceView`,
`latestModelApplied`, `licenseType`, `location`, `name` side by side; MicrosoftDocs/azure-docs
`virtual-machine-scale-sets-instance-ids.md` (2018) shows `az vmss list-instances` printing `instanceId`,
`latestModelApplied`, `location`, `name`). Loaded as-is, such a payload has no `properties` and the project's
parser reads nothing from it (a failed instance would be invisible), so the loader converts it here:

* `az vmss show` / `az vmss list` → a scale set resource,
* `az vmss list-instances [--expand instanceView]` → Uniform instances,
* `az vm list` / `az vm show [-d]` → Flexible VMs.

`az vmss get-instance-view` prints the same shape as the REST answer (that model has no `properties`), so the
fleet's `instanceView` needs no conversion. A payload with neither `properties` nor any member the swagger
puts under `properties` is refused: zero readable fields is an error, never silence.
"""

from __future__ import annotations

from typing import Any

from . import openapi

# Members ARM keeps at the top level of these resources (the swagger's envelope: Resource + the definitions' own
# top-level members). Everything else `az` printed at the top level came out of `properties`.
_ENVELOPE = {
    "id",
    "name",
    "type",
    "location",
    "tags",
    "etag",
    "systemData",
    "sku",
    "plan",
    "identity",
    "zones",
    "extendedLocation",
    "managedBy",
    "kind",
    "placement",
    "instanceId",  # scale-set VMs
    "resources",  # a VM's extensions
}
# What az adds of its own (not ARM members): dropped. `az vm show -d` adds the power state and addresses.
_AZ_ONLY = {"resourceGroup", "powerState", "publicIps", "privateIps", "fqdns", "macAddresses"}

_PROPERTIES_DEFINITION = {
    "scale set": "VirtualMachineScaleSetProperties",
    "instance": "VirtualMachineScaleSetVMProperties",
}
# Members of a Flexible VM's properties (Compute's virtualMachine.json VirtualMachineProperties, not copied here):
# the ones a scale-set member VM shows and the project reads.
_VM_PROPERTIES = {
    "virtualMachineScaleSet",
    "hardwareProfile",
    "storageProfile",
    "osProfile",
    "networkProfile",
    "securityProfile",
    "diagnosticsProfile",
    "availabilitySet",
    "provisioningState",
    "instanceView",
    "licenseType",
    "vmId",
    "extensionsTimeBudget",
    "platformFaultDomain",
    "priority",
    "evictionPolicy",
    "billingProfile",
    "host",
    "hostGroup",
    "proximityPlacementGroup",
    "timeCreated",
    "userData",
    "capacityReservation",
    "applicationProfile",
    "scheduledEventsProfile",
    "additionalCapabilities",
}


def _property_names(kind: str) -> set[str]:
    if kind == "vm":
        return _VM_PROPERTIES
    return openapi.members(_PROPERTIES_DEFINITION[kind])


def arm_shape(payload: Any, kind: str, where: str) -> dict[str, Any]:
    """`payload` in ARM's REST shape: unchanged when it already has `properties`, converted when it is az's
    flattened shape, else ValueError in one line naming the problem. `kind`: "scale set" | "instance" | "vm"."""
    if not isinstance(payload, dict):
        raise ValueError(f"fleet: {where} is not a JSON object")
    known = _property_names(kind)
    flattened = sorted(key for key in payload if key in known and payload[key] is not None)
    properties = payload.get("properties")
    if isinstance(properties, dict) and properties:
        if flattened:
            raise ValueError(
                f"fleet: {where} mixes ARM's 'properties' with az-style top-level members {flattened}; "
                "use one shape (ARM REST JSON, or az output as printed)"
            )
        return payload
    if not flattened:
        found = sorted(key for key in payload if payload[key] is not None)
        raise ValueError(
            f"fleet: {where} has no readable fields: no 'properties' and none of the {kind} members at the top "
            f"level either (found only {found}); write ARM's REST JSON or az's output for it"
        )
    converted: dict[str, Any] = {}
    moved: dict[str, Any] = {}
    for key, value in payload.items():
        if value is None or key in _AZ_ONLY or key == "properties":
            continue
        (converted if key in _ENVELOPE else moved)[key] = value
    converted["properties"] = moved
    return converted
