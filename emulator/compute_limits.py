"""Microsoft.Compute's throttling policies as plain data, and the route → policy map.

Source: Microsoft's "Compute throttling limits" article (learn.microsoft.com/azure/virtual-machines/
compute-throttling-limits; MicrosoftDocs azure-compute-docs `articles/virtual-machines/compute-throttling-limits.md`).
Compute throttles with token buckets **per region**, at two levels: per resource and per subscription.
Each bucket starts full (its capacity) and refills at a constant rate per minute; a request spends one
token in every bucket of its policy and is throttled (429) when any of them is empty.

How the buckets are written in `x-ms-ratelimit-remaining-resource` is selectable (`HEADER_FORMS`, below): the
names of Microsoft's 2024 recordings (default), the older windowed names, or the 2024 article's repeated names.
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
    documented: bool = True  # False: a stem seen in Azure's recorded headers but not in the article's table

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
        # Stems Microsoft's 2024 azure-cli recordings show beside the table's rows (tests/recorded/, cli2024-*):
        # `VMScaleSetActionsSubscriptionMaximum;1499` (delete-instances; 2019-2023: setOrchestrationServiceState
        # `VMScaleSetActions3Min;238,…30Min;1197`), `VMScaleSetBatchedVMRequestsSubscriptionMaximum;5998`
        # (delete-instances, deallocate, scale-set delete), `VMScaleSetVMViewsSubscriptionMaximum;29996` (the
        # scale-set VM list). Capacity = the recorded value + its spend, rounded; refill = capacity / 3 per
        # minute as every documented row: unverified.
        Policy("VMScaleSetActions", "(recorded) VMSS actions", None, Limit(500, 1500), documented=False),
        Policy("VMScaleSetBatchedVMRequests", "(recorded) batched VM requests", None, Limit(2000, 6000), False),
        Policy("VMScaleSetVMViews", "(recorded) scale-set VM views", None, Limit(10000, 30000), documented=False),
        # The scale-set PUT's stem, in no row of the article: azure-cli's recordings (test_vmss_update_automatic_
        # repairs_with_health_extension, tests/recorded/cli-vmss-put-*.json) answer it with
        # `CreateVMScaleSet3Min;56,CreateVMScaleSet30Min;290` (then the queue count). Both windows are written, so
        # both levels exist (the windowed form writes the resource bucket as 3Min). Capacities = the recorded value
        # + its spend, rounded (60 and 300); refill = capacity / 3 per minute as every documented row: unverified,
        # and so are the table form's names `CreateVMScaleSetSubscriptionMaximum` / `CreateVMScaleSetResource`
        # (no 2024 recording of a scale-set PUT is in the corpus).
        Policy("CreateVMScaleSet", "(recorded) VMSS create or update", Limit(20, 60), Limit(100, 300), False),
    )
}


@dataclass(frozen=True)
class Charge:
    """What one request spends: a policy at some levels (subscription-only policies skip the resource), the
    recorded extra policies beside it (subscription level), and whether the answer reports Compute's queue
    (`VmssQueuedVMOperations;<n>`, on accepted writes in every recording: a count, not tokens)."""

    policy: str
    levels: tuple[str, ...] = LEVELS
    extra: tuple[str, ...] = ()
    queue: bool = False


SUBSCRIPTION_ONLY = (SUBSCRIPTION,)

# swagger operationId → charge. Choices the article does not pin down are marked "unverified".
ROUTE_CHARGES: dict[str, Charge] = {
    # "List, List All, List By Location" of scale sets: VMSS High Cost Get, subscription level only.
    "VirtualMachineScaleSets_ListAll": Charge("HighCostGetVMScaleSet", SUBSCRIPTION_ONLY),
    "VirtualMachineScaleSets_List": Charge("HighCostGetVMScaleSet", SUBSCRIPTION_ONLY),
    "VirtualMachineScaleSets_Get": Charge("GetVMScaleSet"),
    "VirtualMachineScaleSets_GetInstanceView": Charge("HighCostGetVMScaleSet"),
    "VirtualMachineScaleSets_Update": Charge("UpdateVMScaleSet"),
    # Recorded (cli-vmss-put-*.json): CreateVMScaleSet's two windows, then the queue count.
    "VirtualMachineScaleSets_CreateOrUpdate": Charge("CreateVMScaleSet", queue=True),
    # Recorded (azure-cli test_vmss_set_orchestration_service_state): VMScaleSetActions, then the queue count.
    "VirtualMachineScaleSets_SetOrchestrationServiceState": Charge("VMScaleSetActions", SUBSCRIPTION_ONLY, queue=True),
    # unverified: scaleOut changes capacity like an Update; charged to VMSS Update.
    "VirtualMachineScaleSets_ScaleOut": Charge("UpdateVMScaleSet"),
    # Recorded (azure-cli 2024 test_vmss_create_and_modify): VMScaleSetActions + VMScaleSetBatchedVMRequests + queue.
    "VirtualMachineScaleSets_DeleteInstances": Charge(
        "VMScaleSetActions", SUBSCRIPTION_ONLY, extra=("VMScaleSetBatchedVMRequests",), queue=True
    ),
    # The article's VMSS Delete row: Delete of the scale set itself.
    "VirtualMachineScaleSets_Delete": Charge("DeleteVMScaleSet", extra=("VMScaleSetBatchedVMRequests",), queue=True),
    # unverified: scale-set-wide restart/reimage/redeploy charged to VMSS Update.
    "VirtualMachineScaleSets_Restart": Charge("UpdateVMScaleSet"),
    "VirtualMachineScaleSets_Reimage": Charge("UpdateVMScaleSet"),
    "VirtualMachineScaleSets_Redeploy": Charge("UpdateVMScaleSet"),
    # The scale-set VM list is in no table; Microsoft's 2024 recording (az vmss list-instances) shows
    # HighCostGetVMScaleSetSubscriptionMaximum;1079,HighCostGetVMScaleSetResource;29 and
    # VMScaleSetVMViewsSubscriptionMaximum;29996.
    "VirtualMachineScaleSetVMs_List": Charge("HighCostGetVMScaleSet", extra=("VMScaleSetVMViews",)),
    # Recorded (azure-sdk-for-net TestVMScaleSetVMOperations, 2020; tests/recorded/net-vmss-vm-get,
    # net-vmss-vm-instance-view): `GetVMScaleSetVM3Min;999,GetVMScaleSetVM30Min;4999,VMScaleSetVMViews3Min;4999`.
    "VirtualMachineScaleSetVMs_Get": Charge("GetVMScaleSetVM", extra=("VMScaleSetVMViews",)),
    "VirtualMachineScaleSetVMs_GetInstanceView": Charge("GetVMScaleSetVM", extra=("VMScaleSetVMViews",)),
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


# x-ms-ratelimit-remaining-resource forms (fleet key `rateLimitHeaderForm`; tests/recorded/INDEX.md has the captures):
# * "table" (default): Microsoft's 2024 azure-cli recordings name the table's rows, `<stem>SubscriptionMaximum;n`
#   for the subscription bucket and `<stem>Resource;n` for the per-resource one
#   (`HighCostGetVMScaleSetSubscriptionMaximum;1074,HighCostGetVMScaleSetResource;29`): the emulator's own
#   buckets, named as Azure names them today.
# * "windowed": 2019-2023 answers name a window, the shorter first (`HighCostGetVMScaleSet3Min;174,
#   HighCostGetVMScaleSet30Min;891`; giantswarm/azure-operator PR 741; palmerabollo/azure-throttling-exporter).
# * "repeated": Microsoft's 2024 throttling article (SupportArticles-docs troubleshooting-throttling-errors.md)
#   shows the window stripped and the name twice (`DeleteVMScaleSet;107,DeleteVMScaleSet;587`).
# The older forms belong to a scheme of two subscription-wide windows (recorded 3Min values are subscription-scale:
# `GetOperation3Min;14977`); the emulator has the article's token buckets, so writing them in those forms is a
# mapping of its own (unverified): windowed writes the per-resource bucket as `3Min` and the subscription bucket as
# `30Min` (a subscription-only policy: `30Min` only); repeated writes the same two values in the same order, so the
# last entry is always the subscription bucket.
HEADER_FORMS = ("table", "windowed", "repeated")
DEFAULT_HEADER_FORM = "table"
_WINDOWS = {RESOURCE: "3Min", SUBSCRIPTION: "30Min"}
# Subscription-only stems Azure recorded in the windowed form with their own window, not 30Min:
# `VMScaleSetVMViews3Min` (scale-set VM GET, instance view and list; azure-sdk-for-net 2020,
# tests/recorded/net-vmss-vm-*), `VMScaleSetBatchedVMRequests5Min` (scale-set VM restart/power-off/deallocate, same).
_OWN_WINDOW = {"VMScaleSetVMViews": "3Min", "VMScaleSetBatchedVMRequests": "5Min"}
QUEUE_ENTRY = "VmssQueuedVMOperations"


def header_entry(policy: str, level: str, remaining: int, form: str) -> str:
    """One `Microsoft.Compute/<name>;<remaining>` entry of x-ms-ratelimit-remaining-resource."""
    return f"Microsoft.Compute/{header_name(policy, level, form)};{remaining}"


def header_name(policy: str, level: str, form: str) -> str:
    if form == "windowed":
        return f"{policy}{_OWN_WINDOW.get(policy, _WINDOWS[level])}"
    if form == "repeated":
        return policy
    return f"{policy}SubscriptionMaximum" if level == SUBSCRIPTION else f"{policy}{RESOURCE}"


# The table form's order as recorded: the subscription row first, except Get Operation's (cli2024-*-op-*:
# `GetOperationResource;44,GetOperationSubscriptionMaximum;14994`).
_RESOURCE_FIRST = {"GetOperation"}


def header_order(levels: tuple[str, ...], form: str, policy: str = "") -> tuple[str, ...]:
    """Windowed and repeated: the short window (here the per-resource bucket) first, as captured and as the 2024
    article shows it, so the last entry is always the subscription bucket; table: as recorded."""
    resource_first = form in ("windowed", "repeated") or (form == "table" and policy in _RESOURCE_FIRST)
    order = (RESOURCE, SUBSCRIPTION) if resource_first else (SUBSCRIPTION, RESOURCE)
    return tuple(level for level in order if level in levels)


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
        if not policy.documented:
            continue
        row: dict[str, object] = {"policy": policy.name, "title": policy.title}
        for level in LEVELS:
            limit = policy.limit(level)
            row[level.lower()] = (
                None if limit is None else {"refillPerMinute": limit.refill_per_minute, "capacity": limit.capacity}
            )
        rows.append(row)
    return rows
