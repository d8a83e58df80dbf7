"""The one way through: which scale sets to read, then snapshot → diagnose → plan → act → record → notify.

Triggers (timer, Event Grid, CLI, HTTP) only decide *which* scale sets to evaluate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .gateway import ArmError, ComputeGateway
from .model import ScaleSetSnapshot, parse_resource_id

log = logging.getLogger("autoheal.engine")


@dataclass(frozen=True)
class Target:
    """Which scale sets to evaluate: a whole subscription, a resource group, or one scale set."""

    resource_group: str | None = None
    scale_set: str | None = None

    @classmethod
    def from_id(cls, scale_set_id: str) -> Target:
        ids = parse_resource_id(scale_set_id)
        return cls(ids.get("resourcegroups"), ids.get("virtualmachinescalesets"))


@dataclass(frozen=True)
class ReadResult:
    """One scale set's read: a snapshot, or the error that stopped it (the rest of the sweep goes on)."""

    resource: dict[str, Any]
    snapshot: ScaleSetSnapshot | None = None
    error: ArmError | None = None

    @property
    def name(self) -> str:
        return str(self.resource.get("name") or "")

    @property
    def resource_group(self) -> str:
        return parse_resource_id(str(self.resource.get("id") or "")).get("resourcegroups", "")


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


def read_snapshots(
    gateway: ComputeGateway,
    resources: list[dict[str, Any]],
    *,
    concurrency: int = 8,
    on_result: Callable[[ReadResult], None] | None = None,
) -> list[ReadResult]:
    """Snapshot each scale set with bounded concurrency; a failure stays with its scale set."""

    def read(resource: dict[str, Any]) -> ReadResult:
        try:
            result = ReadResult(resource, snapshot=gateway.snapshot(resource))
        except ArmError as exc:
            log.warning("could not read scale set %s: %s", resource.get("id"), exc)
            result = ReadResult(resource, error=exc)
        if on_result:
            on_result(result)
        return result

    if concurrency <= 1 or len(resources) <= 1:
        return [read(r) for r in resources]
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="autoheal-read") as pool:
        return list(pool.map(read, resources))
