"""Where a sweep's scale sets come from: Compute's scale-set list, or Azure Resource Graph (one protocol).

Resource Graph reads the whole subscription's inventory in four fixed queries without a Compute token
(`inventory.py`), and flags what it can see is wrong; Compute's list costs VMSS High Cost Get tokens per page.
The engine asks an `InventorySource` and does not care which one answers.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import inventory as queries
from .gateway import ArmError, ComputeGateway
from .gateway.resourcegraph import ResourceGraphGateway
from .inventory import InstanceSuspect, ScaleSetRow
from .remediation.record import Record, scale_set_key
from .resource_ids import segments
from .snapshot import parse_instance

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


def needs_compute_read(instances: list[dict[str, Any]], *, flexible: bool) -> bool:
    """Whether Resource Graph's GET/LIST answer still shows a reason to read the scale set from Compute now: an
    instance not Succeeded (Failed, Creating, Updating, Deleting, ...), a failed provisioning status, a power
    state other than running, or no instance view at all. It carries no `vmHealth`, so an unhealthy but
    provisioned instance is invisible here: the rotation reads every scale set with health."""
    for vm in instances:
        instance = parse_instance(vm, flexible=flexible)
        if not instance.has_instance_view or instance.provisioning_error_code:
            return True
        if (instance.provisioning_state or "").lower() != "succeeded":
            return True
        if (instance.power_state or "running").lower() != "running":
            return True
    return False


@dataclass
class PrescreenFigures:
    """What the GET/LIST pre-screen did in the last sweep (counted per suspect scale set)."""

    screened: int = 0  # suspects re-read through GET/LIST
    cleared: int = 0  # GET/LIST showed nothing wrong any more: left to the rotation
    fallbacks: int = 0  # GET/LIST refused (422) or failed: read from Compute as before
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, outcome: str) -> None:
        with self._lock:
            self.screened += 1
            if outcome != "kept":
                setattr(self, outcome, getattr(self, outcome) + 1)

    def figures(self) -> dict[str, int]:
        with self._lock:
            return {"screened": self.screened, "cleared": self.cleared, "fallbacks": self.fallbacks}


@dataclass
class ResourceGraphInventory:
    """Resource Graph for the whole subscription (scale sets, suspect instances, resource-group owners, which
    it hands to the gateway's owner cache); a targeted read, or a failed query, goes to Compute instead.

    `prescreen` (AUTOHEAL_SUSPECT_PRESCREEN=get-list): the query's suspects are a minute old; each is re-read
    through Resource Graph's GET/LIST API (no Compute token) and stays a suspect only if it still shows a failed,
    stuck or stopped instance. A cleared one loses nothing: it stays in the rotation, which reads it from
    Compute (with health) in its turn."""

    graph: ResourceGraphGateway
    gateway: ComputeGateway
    prescreen: bool = False
    concurrency: int = 8
    prescreen_figures: PrescreenFigures = field(default_factory=PrescreenFigures)

    def read(self, target: Target, whole_subscription: bool) -> Inventory:
        if whole_subscription:
            try:
                rows = list(queries.read_scale_sets(self.graph))
                suspects = queries.read_suspects(self.graph)
                groups = queries.read_managed_resource_groups(self.graph)
                self.gateway.remember_resource_group_owners(groups)
            except ArmError as exc:
                log.warning("Resource Graph inventory failed; listing scale sets through Compute: %s", exc)
            else:
                if self.prescreen and suspects:
                    suspects = self._prescreen(rows, suspects)
                return Inventory("resource-graph", [dict(row.resource) for row in rows], rows, suspects)
        return ComputeInventory(self.gateway).read(target, whole_subscription)

    def _prescreen(
        self, rows: list[ScaleSetRow], suspects: dict[str, list[InstanceSuspect]]
    ) -> dict[str, list[InstanceSuspect]]:
        self.prescreen_figures = PrescreenFigures()
        by_key = {row.key: row for row in rows}
        keys = [key for key in suspects if key in by_key]  # a suspect of an unknown scale set stays as it is

        def screen(key: str) -> bool:
            row = by_key[key]
            try:
                instances = self.gateway.list_instances_from_graph(row.resource)
            except ArmError as exc:
                # 422: ARG could not index it ("fall back to the resource provider"); anything else likewise.
                log.info("GET/LIST pre-screen of %s refused (%s): reading it from Compute", row.id, exc)
                self.prescreen_figures.add("fallbacks")
                return True
            keep = needs_compute_read(instances, flexible=row.is_flexible)
            self.prescreen_figures.add("kept" if keep else "cleared")
            return keep

        workers = max(1, min(self.concurrency, len(keys)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="autoheal-prescreen") as pool:
            verdicts = dict(zip(keys, pool.map(screen, keys), strict=True))
        return {key: found for key, found in suspects.items() if verdicts.get(key, True)}

    def figures(self) -> dict[str, Any] | None:
        figures: dict[str, Any] = {**self.graph.meter.figures(), "requests": self.graph.wire.requests}
        if self.prescreen:
            figures["getListPrescreen"] = self.prescreen_figures.figures()
        return figures
