"""Microsoft.Compute's throttling policies as plain data, and the route → policy map.

Source: Microsoft's "Compute throttling limits" article (learn.microsoft.com/azure/virtual-machines/
compute-throttling-limits; MicrosoftDocs azure-compute-docs `articles/virtual-machines/compute-throttling-limits.md`).
Compute throttles with token buckets **per region**, at two levels: per resource and per subscription.
Each bucket starts full (its capacity) and refills at a constant rate per minute; a request spends one
token in every bucket of its policy and is throttled (429) when any of them is empty.

How the buckets are written in `x-ms-ratelimit-remaining-resource` is selectable (`HEADER_FORMS`, below): the
captured windowed names, the 2024 article's repeated names, or the emulator's older suffix form.
"""

from __future__ import annotations

from dataclasses import dataclass

RESOURCE = "Resource"
SUBSCRIPTION = "Subscription"
LEVELS = (SUBSCRIPTION, RESOURCE)  # header order: the subscription entry first, as Azure's samples show


@dataclass(frozen=True)
class Limit:
    refill_per_minute: float
    capacity: float


@dataclass(frozen=True)
class Policy:
    name: str  # header base name, e.g. HighCostGetVMScaleSet
    title: str  # the article's policy title
    resource: Limit | None  # None: the policy has a subscription-level bucket only
    subscription: Limit

    def limit(self, level: str) -> Limit | None:
        return self.resource if level == RESOURCE else self.subscription


# The article's tables (refill per minute / capacity). UpdateVM's numbers come from the article's own worked
# example ("12 update requests for each VM", "capped at 1500 per min", refill 4 / capacity 12).
POLICIES: dict[str, Policy] = {
    p.name: p
    for p in (
        Policy("GetVMScaleSet", "VMSS Low Cost Get", Limit(12, 36), Limit(800, 2400)),
        Policy("HighCostGetVMScaleSet", "VMSS High Cost Get", Limit(10, 30), Limit(360, 1080)),
        Policy("UpdateVMScaleSet", "VMSS Update", Limit(4, 12), Limit(500, 1500)),
        Policy("DeleteVMScaleSet", "VMSS Delete", Limit(4, 12), Limit(175, 525)),
        Policy("GetVMScaleSetVM", "Scale set VMs Get", Limit(12, 36), Limit(2000, 6000)),
        Policy("UpdateVMScaleSetVM", "Scale set VMs Update", Limit(4, 12), Limit(500, 1500)),
        Policy("DeleteVMScaleSetVM", "Scale set VMs Delete", Limit(4, 12), Limit(500, 1500)),
        Policy("LowCostGetVM", "VM Low Cost Get", Limit(12, 36), Limit(8000, 24000)),
        Policy("HighCostGetVM", "VM High Cost Get", None, Limit(300, 900)),
        Policy("UpdateVM", "VM Update", Limit(4, 12), Limit(500, 1500)),
        Policy("DeleteVM", "VM Delete", Limit(4, 12), Limit(500, 1500)),
        Policy("GetOperation", "Get Operation", Limit(15, 45), Limit(5000, 15000)),
    )
}


@dataclass(frozen=True)
class Charge:
    """What one request spends: a policy at some levels (subscription-only policies skip the resource)."""

    policy: str
    levels: tuple[str, ...] = LEVELS


SUBSCRIPTION_ONLY = (SUBSCRIPTION,)

# swagger operationId → charge. Choices the article does not pin down are marked "unverified".
ROUTE_CHARGES: dict[str, Charge] = {
    # "List, List All, List By Location" of scale sets: VMSS High Cost Get, subscription level only.
    "VirtualMachineScaleSets_ListAll": Charge("HighCostGetVMScaleSet", SUBSCRIPTION_ONLY),
    "VirtualMachineScaleSets_List": Charge("HighCostGetVMScaleSet", SUBSCRIPTION_ONLY),
    "VirtualMachineScaleSets_Get": Charge("GetVMScaleSet"),
    "VirtualMachineScaleSets_GetInstanceView": Charge("HighCostGetVMScaleSet"),
    "VirtualMachineScaleSets_Update": Charge("UpdateVMScaleSet"),
    "VirtualMachineScaleSets_SetOrchestrationServiceState": Charge("UpdateVMScaleSet"),
    # unverified: scaleOut changes capacity like an Update; charged to VMSS Update.
    "VirtualMachineScaleSets_ScaleOut": Charge("UpdateVMScaleSet"),
    # unverified: Delete Instances is a scale-set operation (POST .../delete); charged to VMSS Delete on the
    # scale set, whose row lists Delete, Deallocate and Power Off (which also take instanceIds).
    "VirtualMachineScaleSets_DeleteInstances": Charge("DeleteVMScaleSet"),
    # The article's VMSS Delete row: Delete of the scale set itself.
    "VirtualMachineScaleSets_Delete": Charge("DeleteVMScaleSet"),
    # unverified: scale-set-wide restart/reimage/redeploy charged to VMSS Update.
    "VirtualMachineScaleSets_Restart": Charge("UpdateVMScaleSet"),
    "VirtualMachineScaleSets_Reimage": Charge("UpdateVMScaleSet"),
    "VirtualMachineScaleSets_Redeploy": Charge("UpdateVMScaleSet"),
    # unverified: the scale-set VM list is in no table; third-party reports show HighCostGetVMScaleSet headers.
    "VirtualMachineScaleSetVMs_List": Charge("HighCostGetVMScaleSet", SUBSCRIPTION_ONLY),
    "VirtualMachineScaleSetVMs_Get": Charge("GetVMScaleSetVM"),
    "VirtualMachineScaleSetVMs_GetInstanceView": Charge("GetVMScaleSetVM"),
    "VirtualMachineScaleSetVMs_Delete": Charge("DeleteVMScaleSetVM"),
    "VirtualMachineScaleSetVMs_Restart": Charge("UpdateVMScaleSetVM"),
    "VirtualMachineScaleSetVMs_Reimage": Charge("UpdateVMScaleSetVM"),
    "VirtualMachineScaleSetVMs_Redeploy": Charge("UpdateVMScaleSetVM"),
    "VirtualMachines_ListAll": Charge("HighCostGetVM", SUBSCRIPTION_ONLY),
    "VirtualMachines_List": Charge("HighCostGetVM", SUBSCRIPTION_ONLY),
    "VirtualMachines_Get": Charge("LowCostGetVM"),
    "VirtualMachines_InstanceView": Charge("LowCostGetVM"),
    "VirtualMachines_Delete": Charge("DeleteVM"),
    # unverified: power actions on a VM charged to VM Update.
    "VirtualMachines_Restart": Charge("UpdateVM"),
    "VirtualMachines_Reimage": Charge("UpdateVM"),
    "VirtualMachines_Redeploy": Charge("UpdateVM"),
    # Async operation status: Get Operation, the operation being the resource.
    "LongRunningOperation_Status": Charge("GetOperation"),
}


# x-ms-ratelimit-remaining-resource forms (fleet key `rateLimitHeaderForm`):
# * "windowed": every public capture names the policy with a window, the shorter one first
#   (`Microsoft.Compute/HighCostGetVMScaleSet3Min;107,Microsoft.Compute/HighCostGetVMScaleSet30Min;827`:
#   giantswarm/azure-operator PR 741; palmerabollo/azure-throttling-exporter; Azure/azure-cli 15878).
# * "repeated": Microsoft's 2024 throttling article (SupportArticles-docs virtual-machines/windows/
#   troubleshooting-throttling-errors.md) shows the window stripped and the name twice
#   (`Microsoft.Compute/DeleteVMScaleSet;107,Microsoft.Compute/DeleteVMScaleSet;587`).
# * "suffix": the emulator's older invention (`...Subscription;n,...Resource;n`), seen in no capture; kept
#   while the project's budget parser learns the real forms.
# The emulator's buckets are the article's token buckets (per resource, per subscription); no source maps them
# onto windows. Mapping used here (unverified): the per-resource bucket is written as the short window
# (`3Min`; its capacity is three minutes of refill, as every row of the table) and the per-subscription bucket
# as the long one (`30Min`); the smaller bucket comes first, as in every capture. A subscription-only policy
# (the lists) writes its one bucket as `30Min` only, where Azure's captures show both windows.
HEADER_FORMS = ("windowed", "repeated", "suffix")
DEFAULT_HEADER_FORM = "suffix"
_WINDOWS = {RESOURCE: "3Min", SUBSCRIPTION: "30Min"}


def header_entry(policy: str, level: str, remaining: int, form: str) -> str:
    """One `Microsoft.Compute/<name>;<remaining>` entry of x-ms-ratelimit-remaining-resource."""
    if form == "windowed":
        name = f"{policy}{_WINDOWS[level]}"
    elif form == "repeated":
        name = policy
    else:
        name = bucket_name(policy, level)
    return f"Microsoft.Compute/{name};{remaining}"


def header_order(levels: tuple[str, ...], form: str) -> tuple[str, ...]:
    """Captured headers list the short window (the smaller bucket) first; the suffix form subscription first."""
    if form == "suffix":
        return tuple(level for level in LEVELS if level in levels)
    return tuple(level for level in (RESOURCE, SUBSCRIPTION) if level in levels)


def bucket_name(policy: str, level: str) -> str:
    """The header/stat name of one bucket, e.g. HighCostGetVMScaleSetSubscription."""
    return f"{policy}{level}"


def split_bucket_name(name: str) -> tuple[str, str]:
    """HighCostGetVMScaleSetResource → (HighCostGetVMScaleSet, Resource); ValueError when unknown."""
    for level in LEVELS:
        if name.endswith(level) and name[: -len(level)] in POLICIES:
            policy = name[: -len(level)]
            if POLICIES[policy].limit(level) is None:
                break
            return policy, level
    known = sorted(bucket_name(p.name, lv) for p in POLICIES.values() for lv in LEVELS if p.limit(lv))
    raise ValueError(f"unknown Compute bucket {name!r}; known: {known}")


def table() -> list[dict[str, object]]:
    """The policy table as plain JSON (for docs, benchmarks and tests)."""
    rows: list[dict[str, object]] = []
    for policy in POLICIES.values():
        row: dict[str, object] = {"policy": policy.name, "title": policy.title}
        for level in LEVELS:
            limit = policy.limit(level)
            row[level.lower()] = (
                None if limit is None else {"refillPerMinute": limit.refill_per_minute, "capacity": limit.capacity}
            )
        rows.append(row)
    return rows
