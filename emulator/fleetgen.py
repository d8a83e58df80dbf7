"""Builders for fleet files: realistic but compact ARM payloads from a few keywords.

    from emulator import fleetgen
    fleet = fleetgen.fleet(
        fleetgen.scale_set("web", capacity=4, automatic_repairs=True, unhealthy=[1]),
        fleetgen.scale_set("jobs", orchestration="Flexible", failed={0: "OSProvisioningTimedOut"}),
    )

Instance selectors (`unhealthy=[1]`, `failed={0: code}`) are positions 0..capacity-1. Uniform instance ids
equal the position; Flexible VM names are `<scale set>_<8 hex>` (stable for a given scale set id).
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from . import payloads

DEFAULT_SUBSCRIPTION_ID = "6f1d3c2a-8b4e-4d7f-9a0c-1e2f3a4b5c6d"
ALL_FEATURES = ["Microsoft.Compute/ResilientVMScaleSetVMCreation", "Microsoft.Compute/ReliableVMDeletion"]

_FAILURE_MESSAGES = {
    "OSProvisioningTimedOut": (
        "OS Provisioning for VM '{vm}' did not finish in the allotted time. The VM may still finish "
        "provisioning successfully. Please check provisioning state later."
    ),
    "VMStartTimedOut": (
        "VM '{vm}' did not start in the allotted time. The VM may still start successfully. "
        "Please check the power state later."
    ),
    "InternalExecutionError": "An internal execution error occurred. Please retry later.",
    "VMExtensionProvisioningError": (
        "VM has reported a failure when processing extension 'HealthExtension'. Error message: \"Enable failed\"."
    ),
}


def stable_uuid(*parts: str) -> str:
    """A GUID derived from `parts`, so regenerated fleets keep their vmIds and uniqueIds."""
    digest = hashlib.sha256("|".join(parts).encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def failure_message(code: str, vm_name: str) -> str:
    return _FAILURE_MESSAGES.get(code, "The operation failed: {vm}.").format(vm=vm_name)


def scale_set_id(subscription_id: str, resource_group: str, name: str) -> str:
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
        f"/providers/Microsoft.Compute/virtualMachineScaleSets/{name}"
    )


def _health_extension(os_type: str) -> dict:
    kind = "ApplicationHealthWindows" if os_type == "windows" else "ApplicationHealthLinux"
    return {
        "name": "HealthExtension",
        "properties": {
            "publisher": "Microsoft.ManagedServices",
            "type": kind,
            "typeHandlerVersion": "2.0",
            "autoUpgradeMinorVersion": True,
            "settings": {"protocol": "http", "port": 80, "requestPath": "/health", "intervalInSeconds": 5},
        },
    }


def scale_set_resource(
    name: str,
    *,
    resource_group: str = "rg-app",
    subscription_id: str = DEFAULT_SUBSCRIPTION_ID,
    location: str = "westeurope",
    orchestration: str = "Uniform",
    capacity: int = 3,
    vm_size: str = "Standard_D2s_v5",
    os_type: str = "linux",
    health: str | None = "extension",
    automatic_repairs: bool | None = False,
    grace_period: str = "PT10M",
    repair_action: str = "Replace",
    resilient_creation: bool = False,
    resilient_deletion: bool = False,
    tags: Mapping[str, str] | None = None,
    managed_by: str | None = None,
    rich_health_states: bool = True,
    created: datetime | None = None,
) -> dict:
    """The VMSS GET payload. `health`: "extension", "probe", "both" or None (no health source).
    `managed_by`: the owning resource (e.g. an AKS cluster id), served as top-level `managedBy`;
    `rich_health_states`: the health extension reports Rich Health States (typeHandlerVersion 2.0, with
    Initializing/Unknown) rather than Binary ones (1.0: Healthy/Unhealthy); see payloads.has_rich_health_states."""
    created = created or datetime.now(UTC) - timedelta(days=30)
    vmss_id = scale_set_id(subscription_id, resource_group, name)
    rg_prefix = f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
    ip_config: dict[str, Any] = {
        "subnet": {"id": f"{rg_prefix}/providers/Microsoft.Network/virtualNetworks/vnet-app/subnets/snet-{name}"}
    }
    network: dict[str, Any] = {
        "networkInterfaceConfigurations": [
            {
                "name": f"{name}-nic",
                "properties": {
                    "primary": True,
                    "ipConfigurations": [{"name": "ipconfig1", "properties": ip_config}],
                },
            }
        ]
    }
    if health in {"probe", "both"}:
        lb = f"{rg_prefix}/providers/Microsoft.Network/loadBalancers/lb-{name}"
        ip_config["loadBalancerBackendAddressPools"] = [{"id": f"{lb}/backendAddressPools/pool"}]
        network["healthProbe"] = {"id": f"{lb}/probes/http"}
    if orchestration == "Flexible":
        network["networkApiVersion"] = "2020-11-01"
    os_profile: dict[str, Any] = {"computerNamePrefix": name[:9], "adminUsername": "azureuser"}
    if os_type == "windows":
        os_profile["windowsConfiguration"] = {"provisionVMAgent": True, "enableAutomaticUpdates": True}
        image = {
            "publisher": "MicrosoftWindowsServer",
            "offer": "WindowsServer",
            "sku": "2022-datacenter-azure-edition",
        }
    else:
        os_profile["linuxConfiguration"] = {"disablePasswordAuthentication": True, "provisionVMAgent": True}
        image = {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"}
    profile: dict[str, Any] = {
        "osProfile": os_profile,
        "storageProfile": {
            "imageReference": {**image, "version": "latest"},
            "osDisk": {
                "createOption": "FromImage",
                "caching": "ReadWrite",
                "managedDisk": {"storageAccountType": "Premium_LRS"},
                "diskSizeGB": 30,
            },
        },
        "networkProfile": network,
    }
    if health in {"extension", "both"}:
        extension = _health_extension(os_type)
        if not rich_health_states:
            extension["properties"]["typeHandlerVersion"] = "1.0"  # binary health states
        profile["extensionProfile"] = {"extensions": [extension]}
    props: dict[str, Any] = {
        "singlePlacementGroup": False,
        "orchestrationMode": orchestration,
        "virtualMachineProfile": profile,
        "provisioningState": "Succeeded",
        "overprovision": False,
        "uniqueId": stable_uuid(vmss_id.lower(), "uniqueId"),
        "platformFaultDomainCount": 1,
        "timeCreated": payloads.iso(created),
    }
    if orchestration == "Uniform":
        props["upgradePolicy"] = {"mode": "Manual"}
    if automatic_repairs is not None:
        props["automaticRepairsPolicy"] = {
            "enabled": bool(automatic_repairs),
            "gracePeriod": grace_period,
            "repairAction": repair_action,
        }
    if resilient_creation or resilient_deletion:
        props["resiliencyPolicy"] = {
            "resilientVMCreationPolicy": {"enabled": resilient_creation},
            "resilientVMDeletionPolicy": {"enabled": resilient_deletion},
        }
    resource: dict[str, Any] = {
        "name": name,
        "id": vmss_id,
        "type": "Microsoft.Compute/virtualMachineScaleSets",
        "location": location,
        "tags": dict(tags or {}),
        "sku": {"name": vm_size, "tier": "Standard", "capacity": capacity},
        "etag": '"1"',
        "properties": props,
    }
    if managed_by:
        resource["managedBy"] = managed_by
    return resource


def resource_group(
    name: str, *, location: str | None = None, managed_by: str | None = None, tags: Mapping[str, str] | None = None
) -> dict:
    """A `resourceGroups[]` entry with the properties ARM's Resources API serves (e.g. an AKS node resource
    group: `managed_by` is the cluster's id)."""
    entry: dict[str, Any] = {"name": name}
    if location:
        entry["location"] = location
    if managed_by:
        entry["managedBy"] = managed_by
    if tags:
        entry["tags"] = dict(tags)
    return entry


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
        if number == 0:
            return text


def flexible_vm_name(scale_set: dict, position: int) -> str:
    digest = hashlib.sha256(f"{scale_set['id'].lower()}|{position}".encode()).hexdigest()
    return f"{scale_set['name']}_{digest[:8]}"


def instance(
    scale_set: dict,
    key: str,
    *,
    now: datetime,
    state: str = "Succeeded",
    health: str | None = "healthy",
    error_code: str | None = None,
    created: datetime | None = None,
    health_since: datetime | None = None,
    attempt: int = 0,
) -> dict:
    """One instance of `scale_set` with its instance view: a VMSS VM (Uniform, `key` = instance id) or a
    Microsoft.Compute/virtualMachines resource (Flexible, `key` = VM name).

    `state`: Succeeded | Creating | Updating | Deleting | Failed. `health`: healthy | unhealthy |
    initializing | unknown, or None for scale sets without a health extension.
    """
    created = created or now
    props_in = scale_set.get("properties", {})
    profile = props_in.get("virtualMachineProfile", {})
    flexible = props_in.get("orchestrationMode") == "Flexible"
    vmss_id: str = scale_set["id"]
    rg_prefix = vmss_id.split("/providers/", 1)[0]
    os_type = "Windows" if "windowsConfiguration" in profile.get("osProfile", {}) else "Linux"
    prefix = profile.get("osProfile", {}).get("computerNamePrefix", scale_set["name"][:9])
    if flexible:
        name = key
        vm_id = f"{rg_prefix}/providers/Microsoft.Compute/virtualMachines/{key}"
        computer_name = key.replace("_", "")[:15]
    else:
        name = f"{scale_set['name']}_{key}"
        vm_id = f"{vmss_id}/virtualMachines/{key}"
        computer_name = prefix + _base36(int(key)).rjust(6, "0") if key.isdigit() else prefix + key
    image = profile.get("storageProfile", {}).get("imageReference", {})
    created_text = payloads.iso(created)
    props: dict[str, Any] = {
        "vmId": stable_uuid(vm_id.lower(), str(attempt)),
        "hardwareProfile": {"vmSize": scale_set.get("sku", {}).get("name", "Standard_D2s_v5")},
        "storageProfile": {
            "imageReference": dict(image),
            "osDisk": {
                "osType": os_type,
                "name": f"{name}_OsDisk_1",
                "createOption": "FromImage",
                "caching": "ReadWrite",
                "managedDisk": {"storageAccountType": "Premium_LRS"},
                "diskSizeGB": 30,
            },
            "dataDisks": [],
        },
        "osProfile": {"computerName": computer_name, "adminUsername": "azureuser"},
        "networkProfile": {
            "networkInterfaces": [
                {
                    "id": (
                        f"{rg_prefix}/providers/Microsoft.Network/networkInterfaces/{name}-nic"
                        if flexible
                        else f"{vm_id}/networkInterfaces/{scale_set['name']}-nic"
                    )
                }
            ]
        },
        "provisioningState": state,
        "timeCreated": created_text,
        "instanceView": {
            "computerName": computer_name,
            "osName": "Windows Server 2022 Datacenter" if os_type == "Windows" else "ubuntu",
            "osVersion": "10.0.20348" if os_type == "Windows" else "24.04",
            "vmAgent": {
                "vmAgentVersion": "2.12.0.2",
                "statuses": [
                    {
                        "code": "ProvisioningState/succeeded",
                        "level": "Info",
                        "displayStatus": "Ready",
                        "time": created_text,
                    }
                ],
            },
            "statuses": [],
        },
    }
    if flexible:
        props["virtualMachineScaleSet"] = {"id": vmss_id}
        props["instanceView"]["platformFaultDomain"] = 0
    else:
        props["latestModelApplied"] = True
        props["modelDefinitionApplied"] = "VirtualMachineScaleSet"
        props["instanceView"] = {"platformUpdateDomain": 0, "platformFaultDomain": 0, **props["instanceView"]}
    vm: dict[str, Any] = {"name": name, "id": vm_id}
    if flexible:
        vm.update({"type": "Microsoft.Compute/virtualMachines", "location": scale_set["location"]})
    else:
        vm.update(
            {
                "type": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines",
                "location": scale_set["location"],
                "instanceId": key,
                "sku": {"name": scale_set.get("sku", {}).get("name"), "tier": "Standard"},
            }
        )
    vm["etag"] = '"1"'
    vm["properties"] = props
    error_code = error_code if state.lower() == "failed" else None
    message = failure_message(error_code, name) if error_code else None
    payloads.set_provisioning(
        vm, state, now if state != "Succeeded" else created, error_code=error_code, message=message
    )
    power = {"creating": "starting", "deleting": "deallocating"}.get(state.lower(), "running")
    payloads.set_power(vm, "starting" if error_code == "VMStartTimedOut" else power)
    if health:
        payloads.set_health(vm, health, health_since or now)
    return vm


def scale_set_instance_view(resource: dict, *, repairs_service: str | None, now: datetime) -> dict:
    """The stored part of the VMSS instance view (the emulator recomputes `virtualMachine`)."""
    view: dict[str, Any] = {
        "virtualMachine": {"statusesSummary": []},
        "statuses": [payloads.status("ProvisioningState/succeeded", "Info", "Provisioning succeeded", now)],
    }
    if payloads.has_health_extension(resource):
        view["extensions"] = [{"name": "HealthExtension", "statusesSummary": []}]
    if repairs_service:
        view["orchestrationServices"] = [{"serviceName": "AutomaticRepairs", "serviceState": repairs_service}]
    return view


def scale_set(
    name: str,
    *,
    capacity: int = 3,
    unhealthy: Iterable[int] = (),
    unknown: Iterable[int] = (),
    initializing: Iterable[int] = (),
    failed: Mapping[int, str] | Iterable[int] = (),
    creating: Iterable[int] = (),
    deleting: Iterable[int] = (),
    deletion_failed: Iterable[int] = (),
    unhealthy_for: float = 3600.0,
    repairs_service: str | None = None,
    created_ago: float = 7 * 86400,
    now: datetime | None = None,
    **resource_options: Any,
) -> dict:
    """One `scaleSets[]` entry: resource, instance view and instances.

    `failed` maps positions to error codes (a plain list means OSProvisioningTimedOut);
    `deletion_failed` instances are Failed with resilientVMDeletionStatus Failed (resilient delete gave up);
    `repairs_service` is the AutomaticRepairs orchestration service state (default: Running when
    `automatic_repairs=True`, absent otherwise). Other keywords go to `scale_set_resource`.
    """
    now = now or datetime.now(UTC)
    created = now - timedelta(seconds=created_ago)
    resource = scale_set_resource(name, capacity=capacity, created=created - timedelta(days=1), **resource_options)
    if repairs_service is None and resource_options.get("automatic_repairs"):
        repairs_service = "Running"
    failed_codes = dict(failed) if isinstance(failed, Mapping) else dict.fromkeys(failed, "OSProvisioningTimedOut")
    sets = {
        "unhealthy": set(unhealthy),
        "unknown": set(unknown),
        "initializing": set(initializing),
        "creating": set(creating),
        "deleting": set(deleting),
        "deletion_failed": set(deletion_failed),
    }
    has_health = payloads.has_health_extension(resource)
    rich = payloads.has_rich_health_states(resource)
    if sets["initializing"] and not rich:
        raise ValueError("Initializing exists only with rich health states (rich_health_states=True)")
    flexible = resource["properties"]["orchestrationMode"] == "Flexible"
    vms = []
    for position in range(capacity):
        key = flexible_vm_name(resource, position) if flexible else str(position)
        state, code, health, since = "Succeeded", None, "healthy", created
        if position in sets["unhealthy"]:
            health, since = "unhealthy", now - timedelta(seconds=unhealthy_for)
        elif position in sets["unknown"]:
            health, since = "unknown", now - timedelta(seconds=unhealthy_for)
        elif position in sets["initializing"]:
            health, since = "initializing", now
        if position in failed_codes:
            state, code = "Failed", failed_codes[position]
            health = "unknown" if code != "VMExtensionProvisioningError" else health
        elif position in sets["creating"]:
            # Binary health states have no Initializing: nothing is reported until the first probe (unverified).
            state, health, since = "Creating", "initializing" if rich else None, now
        elif position in sets["deleting"]:
            state = "Deleting"
        elif position in sets["deletion_failed"]:
            state, code = "Failed", "InternalExecutionError"
        vm = instance(
            resource,
            key,
            now=now,
            state=state,
            health=health if has_health and health else None,
            error_code=code,
            created=created if state != "Creating" else now,
            health_since=since,
        )
        if position in sets["deletion_failed"]:
            # On Flexible VMs the emulator moves this into its state (resiliencyView GET only).
            vm["properties"]["resilientVMDeletionStatus"] = "Failed"
        vms.append(vm)
    return {
        "resource": resource,
        "instanceView": scale_set_instance_view(resource, repairs_service=repairs_service, now=created),
        "virtualMachines": vms,
    }


def fleet(
    *scale_sets: dict,
    subscription_id: str | None = None,
    captured_at: datetime | str | None = None,
    registered_features: Iterable[str] | None = None,
    faults: dict | None = None,
    resource_groups: Iterable[str | dict] | None = None,
    resource_graph: dict | None = None,
) -> dict:
    """A fleet file. The subscription defaults to the one in the first scale set's id.

    `resource_graph` is the Resource Graph view's options (`lagSeconds`, `stale`, `managedBy`, `quota`,
    `windowSeconds`; emulator/resourcegraph.py)."""
    if subscription_id is None:
        subscription_id = scale_sets[0]["resource"]["id"].split("/")[2] if scale_sets else DEFAULT_SUBSCRIPTION_ID
    document: dict[str, Any] = {"subscriptionId": subscription_id}
    if captured_at is not None:
        document["capturedAt"] = captured_at if isinstance(captured_at, str) else payloads.iso(captured_at)
    if registered_features is not None:
        document["registeredFeatures"] = list(registered_features)
    if resource_groups is not None:
        document["resourceGroups"] = list(resource_groups)
    document["scaleSets"] = list(scale_sets)
    if faults:
        document["faults"] = faults
    if resource_graph:
        document["resourceGraph"] = resource_graph
    return document


def synthetic_fleet(
    scale_sets: int = 1000,
    instances: int = 50,
    *,
    seed: int = 0,
    resource_groups: int = 20,
    flexible_ratio: float = 0.2,
    repairs_ratio: float = 0.7,
    unhealthy_ratio: float = 0.02,
    failed_ratio: float = 0.005,
    subscription_id: str = DEFAULT_SUBSCRIPTION_ID,
    now: datetime | None = None,
) -> dict:
    """A large deterministic fleet for benchmarks: `scale_sets` x `instances` with a sprinkle of trouble."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    entries = []
    with payloads.bulk_allocation():
        for index in range(scale_sets):
            picks = [rng.random() for _ in range(instances)]
            entries.append(
                scale_set(
                    f"vmss-{index:04d}",
                    resource_group=f"rg-{index % resource_groups:02d}",
                    subscription_id=subscription_id,
                    orchestration="Flexible" if rng.random() < flexible_ratio else "Uniform",
                    automatic_repairs=rng.random() < repairs_ratio,
                    capacity=instances,
                    unhealthy=[i for i, p in enumerate(picks) if p < unhealthy_ratio],
                    failed=[i for i, p in enumerate(picks) if unhealthy_ratio <= p < unhealthy_ratio + failed_ratio],
                    now=now,
                )
            )
    return fleet(*entries, subscription_id=subscription_id)


def multi_fleet(
    parts: dict[str, list[dict]],
    *,
    management_group: str | None = None,
    members: Iterable[str] | None = None,
    faults: dict | None = None,
    resource_graph: dict | None = None,
    display_names: dict[str, str] | None = None,
) -> dict:
    """A fleet of several subscriptions (shared contract, issue 22): `parts` maps subscription id -> its scale
    sets (each built with `scale_set(..., subscription_id=that id)`); `management_group` names the one group over
    `members` (default: every subscription; those not listed sit outside it)."""
    document: dict[str, Any] = {
        "subscriptions": [
            {"subscriptionId": subscription, "scaleSets": list(entries)}
            | ({"displayName": display_names[subscription]} if display_names and subscription in display_names else {})
            for subscription, entries in parts.items()
        ]
    }
    if management_group is not None:
        document["managementGroup"] = {
            "name": management_group,
            "subscriptions": list(members) if members is not None else list(parts),
        }
    if faults:
        document["faults"] = faults
    if resource_graph:
        document["resourceGraph"] = resource_graph
    return document
