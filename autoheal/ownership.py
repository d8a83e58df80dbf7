"""Scale sets that another Azure service owns: diagnosed and reported like the rest, never changed.

Their owners forbid or overwrite direct changes, and several run their own repair loop:
- AKS node pools live in the cluster's node resource group (`MC_<group>_<cluster>_<region>`, whose
  `managedBy` is the cluster) and carry `aks-managed-*` tags; "modifying resources in the node resource
  group is unsupported" (learn.microsoft.com/azure/aks/faq, "Can I modify tags and other properties of the
  AKS resources in the node resource group?"); AKS has node auto-repair
  (learn.microsoft.com/azure/aks/node-auto-repair).
- Service Fabric clusters (the `ServiceFabricNode` extension; automatic repairs do not support them) and
  Service Fabric managed clusters (`SFC_<guid>` resource groups managed by
  `Microsoft.ServiceFabric/managedClusters`).
- Azure Batch pools, Azure Databricks workspaces (`databricks-rg-*` managed resource groups) and Azure Virtual
  Desktop host pools: a `managedBy` on the resource group or on the scale set itself names the owner.
Any other `managedBy` is honoured the same way. Pure: facts in, owner out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .resource_ids import segments


@dataclass(frozen=True)
class Owner:
    key: str  # aks | service-fabric | service-fabric-managed | batch | databricks | avd | managed-by
    service: str  # "AKS"
    name: str  # the owning resource's name, when known
    evidence: str  # which signal said so
    advice: str  # what to use instead

    def describe(self) -> str:
        what = f"{self.service} {self.name}".strip()
        return f"owned by {what} ({self.evidence}): {self.advice}"

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "service": self.service, "name": self.name, "evidence": self.evidence}


OWNER_KEYS = ("aks", "service-fabric", "service-fabric-managed", "batch", "databricks", "avd", "managed-by")

# Resource provider of the owning resource → (key, service, what to use instead)
_PROVIDERS: dict[str, tuple[str, str, str]] = {
    "microsoft.containerservice/managedclusters": (
        "aks",
        "AKS cluster",
        "an AKS node pool: use AKS node auto-repair or `az aks nodepool` (upgrade, scale, delete-machines)",
    ),
    "microsoft.servicefabric/managedclusters": (
        "service-fabric-managed",
        "Service Fabric managed cluster",
        "repair and scale through the managed cluster's node types (`az sf managed-node-type`)",
    ),
    "microsoft.servicefabric/clusters": (
        "service-fabric",
        "Service Fabric cluster",
        "Service Fabric manages its nodes; automatic repairs do not support Service Fabric scale sets",
    ),
    "microsoft.batch/batchaccounts": (
        "batch",
        "Azure Batch account",
        "Batch manages the pool's nodes: use the pool's node operations (`az batch node`)",
    ),
    "microsoft.databricks/workspaces": (
        "databricks",
        "Azure Databricks workspace",
        "Databricks manages its cluster VMs: restart or resize the cluster in the workspace",
    ),
    "microsoft.desktopvirtualization/hostpools": (
        "avd",
        "Azure Virtual Desktop host pool",
        "manage session hosts through the host pool (session host configuration / drain mode)",
    ),
}
_AKS_GROUP = re.compile(r"^MC_[^_]+_(?P<cluster>.+)_[^_]+$", re.IGNORECASE)
_SF_MANAGED_GROUP = re.compile(r"^SFC_[0-9a-f-]{36}$", re.IGNORECASE)


def _from_managed_by(managed_by: str, where: str) -> Owner:
    ids = segments(managed_by)
    provider = str(ids.get("provider") or "").lower()
    for segment, value in ids.items():
        if segment in ("subscriptions", "resourcegroups", "provider"):
            continue
        known = _PROVIDERS.get(f"{provider}/{segment}")
        if known is not None:
            key, service, advice = known
            return Owner(key, service, value, f"{where} managedBy {managed_by}", advice)
    return Owner(
        "managed-by", "another service", managed_by, f"{where} managedBy", "change it through the service that owns it"
    )


def owner_of(
    *,
    resource_group: str,
    tags: dict[str, str],
    managed_by: str = "",
    group_managed_by: str = "",
    service_fabric: bool = False,
) -> Owner | None:
    """Who owns a scale set, from its own `managedBy`, its tags and extensions, and its resource group."""
    if managed_by:
        return _from_managed_by(managed_by, "scale set")
    if group_managed_by:
        return _from_managed_by(group_managed_by, f"resource group {resource_group}")
    lowered = {k.lower(): v for k, v in tags.items()}
    aks_tags = sorted(k for k in lowered if k.startswith("aks-managed-"))
    aks_group = _AKS_GROUP.match(resource_group)
    if aks_tags or aks_group:
        cluster = aks_group["cluster"] if aks_group else ""
        evidence = f"tag {aks_tags[0]}" if aks_tags else f"node resource group {resource_group}"
        key, service, advice = _PROVIDERS["microsoft.containerservice/managedclusters"]
        return Owner(key, service, cluster, evidence, advice)
    if _SF_MANAGED_GROUP.match(resource_group):
        key, service, advice = _PROVIDERS["microsoft.servicefabric/managedclusters"]
        return Owner(key, service, "", f"resource group {resource_group}", advice)
    if service_fabric:
        key, service, advice = _PROVIDERS["microsoft.servicefabric/clusters"]
        return Owner(key, service, "", "ServiceFabricNode extension", advice)
    parent = str(lowered.get("cm-resource-parent") or "")
    if "microsoft.desktopvirtualization/hostpools" in parent.lower():
        return _from_managed_by(parent, "tag cm-resource-parent")
    return None
