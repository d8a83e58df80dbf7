"""Where a sweep's scale sets come from: Compute's scale-set list, or Azure Resource Graph (one protocol).

Resource Graph reads the whole subscription's inventory in four fixed queries without a Compute token
(`inventory.py`), and flags what it can see is wrong; Compute's list costs VMSS High Cost Get tokens per page.
The engine asks an `InventorySource` and does not care which one answers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import inventory as queries
from .gateway import ArmError, ComputeGateway
from .gateway.resourcegraph import ResourceGraphGateway
from .inventory import InstanceSuspect, ScaleSetRow
from .remediation.record import Record, scale_set_key
from .resource_ids import segments

log = logging.getLogger("autoheal.sources")


@dataclass(frozen=True)
class Target:
    """Which scale sets to evaluate: a whole subscription, a resource group, or one scale set."""

    resource_group: str | None = None
    scale_set: str | None = None

    @classmethod
    def from_id(cls, scale_set_id: str) -> Target:
        ids = segments(scale_set_id)
        return cls(ids.get("resourcegroups"), ids.get("virtualmachinescalesets"))


@dataclass(frozen=True)
class Inventory:
    """The scale sets a sweep knows of, where the list came from, and what Resource Graph flagged."""

    source: str  # resource-graph | compute
    resources: list[dict[str, Any]]
    rows: list[ScaleSetRow] = field(default_factory=list)
    suspects: dict[str, list[InstanceSuspect]] = field(default_factory=dict)  # scale-set key → instances

    def flagged(self, known: dict[str, list[Record]]) -> set[str]:
        """Scale sets Resource Graph shows a problem on: instances not Succeeded, or repairs / resilient create
        / resilient delete off on a scale set the ledger has no word on yet (a known, held problem waits for
        the rotation instead of costing Compute reads every sweep)."""
        flagged = {scale_set_key(scale_set_id) for scale_set_id in self.suspects}
        for row in self.rows:
            resilient = row.resiliency.create_enabled and row.resiliency.delete_enabled
            key = scale_set_key(row.id)
            if (not row.repairs.enabled or not resilient) and key not in known:
                flagged.add(key)
        return flagged


def list_targets(gateway: ComputeGateway, target: Target) -> list[dict[str, Any]]:
    """The scale-set resources in scope, with as few reads as the target allows."""
    if target.resource_group and target.scale_set:
        try:
            return [gateway.get_scale_set(target.resource_group, target.scale_set)]
        except ArmError as exc:
            if exc.not_found:
                return []
            raise
    resources = gateway.list_scale_sets(target.resource_group)
    if target.scale_set:
        wanted = target.scale_set.lower()
        resources = [r for r in resources if str(r.get("name", "")).lower() == wanted]
    return resources


class InventorySource(Protocol):
    def read(self, target: Target, whole_subscription: bool) -> Inventory: ...

    def figures(self) -> dict[str, Any] | None: ...


@dataclass
class ComputeInventory:
    """Compute's scale-set list (VMSS High Cost Get per page), or one GET for a single scale set."""

    gateway: ComputeGateway

    def read(self, target: Target, whole_subscription: bool) -> Inventory:
        return Inventory("compute", list_targets(self.gateway, target))

    def figures(self) -> dict[str, Any] | None:
        return None


@dataclass
class ResourceGraphInventory:
    """Resource Graph for the whole subscription (scale sets, suspect instances, resource-group owners, which
    it hands to the gateway's owner cache); a targeted read, or a failed query, goes to Compute instead."""

    graph: ResourceGraphGateway
    gateway: ComputeGateway

    def read(self, target: Target, whole_subscription: bool) -> Inventory:
        if whole_subscription:
            try:
                rows = list(queries.read_scale_sets(self.graph))
                suspects = queries.read_suspects(self.graph)
                groups = queries.read_managed_resource_groups(self.graph)
                self.gateway.remember_resource_group_owners(groups)
                return Inventory("resource-graph", [dict(row.resource) for row in rows], rows, suspects)
            except ArmError as exc:
                log.warning("Resource Graph inventory failed; listing scale sets through Compute: %s", exc)
        return ComputeInventory(self.gateway).read(target, whole_subscription)

    def figures(self) -> dict[str, Any] | None:
        return {**self.graph.meter.figures(), "requests": self.graph.wire.requests}
