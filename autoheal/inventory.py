"""The subscription's inventory from Azure Resource Graph: four fixed queries and their parsed rows.

What ARG can see without spending Compute's buckets (learn.microsoft.com/azure/governance/resource-graph/
reference/supported-tables-resources): scale sets with their whole model (`resources`: policies,
orchestration mode, capacity, tags, the health extension and probe), Uniform instances (`computeresources`)
and Flexible VMs (`resources`, with `properties.virtualMachineScaleSet.id`) with their provisioning state and
`timeCreated`, and resource groups with `managedBy` (`resourcecontainers`). What it cannot see: the instance
view (`vmHealth`, the AutomaticRepairs `orchestrationServices`, status codes and times, error codes) — "VMSS
VM health status isn't currently supported" (ARG's GET/LIST API limitations) — so health and repairs-service
state stay Compute reads. ARG also lags ARM by about a minute, and "scrubs PII information from our tables so
you may not see the same result as if you made a GET request" (supported-tables-resources): a row is a reason
to look, never a reason to write (ARM is re-read before any write).

Pure parsing, plain data in and out: the gateway streams the rows (`ResourceGraphGateway.query`), these
functions turn them into dataclasses one at a time. `suspects_by_scale_set` holds only the suspects, never
the fleet.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from .model import HealthSource, RepairsPolicy, ResiliencyPolicy, parse_time
from .resource_ids import segments
from .snapshot import health_sources, repairs_policy, resiliency_policy

log = logging.getLogger("autoheal.inventory")

VMSS_TYPE = "Microsoft.Compute/virtualMachineScaleSets"  # ARM's casing (ARG lower-cases `type`)

# Scale sets with their whole model: ARG's `properties` is the ARM resource's, so `ScaleSetRow.resource` can
# stand in for `GET virtualMachineScaleSets/{name}` (no instance view: ARG has none). `order by id` keeps
# the pages stable ("id field is required ... to return the pages in stable sorted fashion",
# azure-rest-api-specs resourcegraph examples/ResourcesFirstPageQuery.json).
SCALE_SETS_QUERY = """resources
| where type =~ 'microsoft.compute/virtualmachinescalesets'
| project id, name, type, kind, location, resourceGroup, subscriptionId, managedBy, sku, plan, tags, identity,
    zones, extendedLocation, properties
| order by id asc"""

# Uniform instances whose provisioning state is not Succeeded (Creating, Updating, Deleting, Failed, ...).
UNIFORM_SUSPECTS_QUERY = """computeresources
| where type =~ 'microsoft.compute/virtualmachinescalesets/virtualmachines'
| extend provisioningState = tostring(properties.provisioningState)
| where isnotempty(provisioningState) and provisioningState !~ 'Succeeded'
| project id, name, resourceGroup, provisioningState, timeCreated = tostring(properties.timeCreated)
| order by id asc"""

# VMs of Flexible scale sets whose provisioning state is not Succeeded, with the scale set they belong to.
FLEXIBLE_SUSPECTS_QUERY = """resources
| where type =~ 'microsoft.compute/virtualmachines'
| extend scaleSetId = tostring(properties.virtualMachineScaleSet.id)
| where isnotempty(scaleSetId)
| extend provisioningState = tostring(properties.provisioningState)
| where isnotempty(provisioningState) and provisioningState !~ 'Succeeded'
| project id, name, resourceGroup, scaleSetId, provisioningState, timeCreated = tostring(properties.timeCreated)
| order by id asc"""

# Resource groups another service owns (AKS node resource groups, Databricks, ...): `managedBy` names it.
MANAGED_RESOURCE_GROUPS_QUERY = """resourcecontainers
| where type =~ 'microsoft.resources/subscriptions/resourcegroups'
| where isnotempty(managedBy)
| project id, name, managedBy
| order by id asc"""

QUERIES: dict[str, str] = {
    "scaleSets": SCALE_SETS_QUERY,
    "uniformSuspects": UNIFORM_SUSPECTS_QUERY,
    "flexibleSuspects": FLEXIBLE_SUSPECTS_QUERY,
    "managedResourceGroups": MANAGED_RESOURCE_GROUPS_QUERY,
}

# ARG's standard columns that are part of the ARM resource body (the rest: tenantId, resourceGroup,
# subscriptionId are ARG's own).
_RESOURCE_KEYS = (
    "id",
    "name",
    "kind",
    "location",
    "managedBy",
    "sku",
    "plan",
    "tags",
    "identity",
    "zones",
    "extendedLocation",
    "properties",
)


@dataclass(frozen=True)
class ScaleSetRow:
    """One scale set as ARG shows it: `resource` is ARM-shaped (for `ComputeGateway.snapshot(resource)`)."""

    id: str
    name: str
    resource_group: str
    subscription_id: str
    location: str
    resource: Mapping[str, Any] = field(repr=False)
    tags: Mapping[str, str] = field(default_factory=dict)
    managed_by: str | None = None
    capacity: int | None = None
    orchestration_mode: str = "Uniform"
    provisioning_state: str | None = None
    repairs: RepairsPolicy = field(default_factory=RepairsPolicy)
    resiliency: ResiliencyPolicy = field(default_factory=ResiliencyPolicy)
    health_sources: tuple[HealthSource, ...] = ()

    @property
    def key(self) -> str:
        """The lower-cased id: ARM ids are case-insensitive."""
        return self.id.lower()

    @property
    def is_flexible(self) -> bool:
        return self.orchestration_mode.lower() == "flexible"


@dataclass(frozen=True)
class InstanceSuspect:
    """An instance whose provisioning state is not Succeeded, as ARG shows it (possibly a minute old).

    `instance_id` is the Uniform instance id or the Flexible VM name. `time_created` is the VM's creation
    time from its model (for a long `Creating`, the age of the create); ARG carries no status times and no
    error codes (those are in the instance view, a Compute read)."""

    scale_set_id: str
    instance_id: str
    resource_id: str
    provisioning_state: str
    time_created: datetime | None = None
    flexible: bool = False

    @property
    def scale_set_key(self) -> str:
        return self.scale_set_id.lower()


class RowError(ValueError):
    """A row that is not what the query projects (bad input is reported, never silently used)."""


def _text(row: Mapping[str, Any], key: str) -> str:
    value = row.get(key)
    return value.strip() if isinstance(value, str) else ""


def _scale_set_ids(resource_id: str) -> tuple[str, str, str] | None:
    ids = segments(resource_id)
    try:
        return ids["subscriptions"], ids["resourcegroups"], ids["virtualmachinescalesets"]
    except KeyError:
        return None


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def parse_scale_set_row(row: Mapping[str, Any]) -> ScaleSetRow:
    """A `SCALE_SETS_QUERY` row → ScaleSetRow; RowError when it has no scale-set id."""
    resource_id = _text(row, "id")
    parts = _scale_set_ids(resource_id)
    if parts is None or resource_id.lower().rstrip("/").split("/")[-2:-1] != ["virtualmachinescalesets"]:
        raise RowError(f"not a scale set id: {resource_id!r}")
    subscription_id, resource_group, name = parts
    # ARG fills absent columns with null, "" or {}: leave them out, as ARM does.
    resource: dict[str, Any] = {k: row[k] for k in _RESOURCE_KEYS if row.get(k) not in (None, "", {}, [])}
    resource["id"] = resource_id
    resource["name"] = _text(row, "name") or name
    resource["type"] = VMSS_TYPE
    properties = _mapping(row.get("properties"))
    resource["properties"] = properties
    tags = _mapping(row.get("tags"))
    sku = _mapping(row.get("sku"))
    capacity = sku.get("capacity")
    return ScaleSetRow(
        id=resource_id,
        name=resource["name"],
        resource_group=resource_group,
        subscription_id=_text(row, "subscriptionId") or subscription_id,
        location=_text(row, "location"),
        resource=resource,
        tags={str(k): str(v) for k, v in tags.items()},
        managed_by=_text(row, "managedBy") or None,
        capacity=int(capacity) if isinstance(capacity, int | float) and not isinstance(capacity, bool) else None,
        orchestration_mode=str(properties.get("orchestrationMode") or "Uniform"),
        provisioning_state=properties.get("provisioningState") or None,
        repairs=repairs_policy(resource),
        resiliency=resiliency_policy(resource),
        health_sources=health_sources(resource),
    )


def parse_suspect_row(row: Mapping[str, Any]) -> InstanceSuspect:
    """A `UNIFORM_SUSPECTS_QUERY` or `FLEXIBLE_SUSPECTS_QUERY` row → InstanceSuspect; RowError otherwise."""
    resource_id = _text(row, "id")
    state = _text(row, "provisioningState")
    if not resource_id or not state:
        raise RowError(f"a suspect row needs id and provisioningState: {dict(row)!r}")
    owner = _text(row, "scaleSetId")
    if owner:  # Flexible: a Microsoft.Compute/virtualMachines resource naming its scale set
        if _scale_set_ids(owner) is None:
            raise RowError(f"not a scale set id: {owner!r}")
        return InstanceSuspect(
            scale_set_id=owner,
            instance_id=_text(row, "name") or resource_id.rsplit("/", 1)[-1],
            resource_id=resource_id,
            provisioning_state=state,
            time_created=parse_time(row.get("timeCreated")),
            flexible=True,
        )
    head, separator, instance_id = resource_id.rpartition("/virtualMachines/")
    if not separator:  # ids are case-insensitive: find the segment whatever its casing
        index = resource_id.lower().rfind("/virtualmachines/")
        head, instance_id = (resource_id[:index], resource_id[index + 17 :]) if index >= 0 else ("", "")
    if not instance_id or "/" in instance_id or _scale_set_ids(head) is None:
        raise RowError(f"not a scale-set VM id: {resource_id!r}")
    return InstanceSuspect(
        scale_set_id=head,
        instance_id=instance_id,
        resource_id=resource_id,
        provisioning_state=state,
        time_created=parse_time(row.get("timeCreated")),
    )


def scale_sets(rows: Iterable[Mapping[str, Any]]) -> Iterator[ScaleSetRow]:
    """Stream ScaleSetRows; a malformed row is logged and skipped (the rest of the fleet still counts)."""
    for row in rows:
        try:
            yield parse_scale_set_row(row)
        except RowError as error:
            log.warning("Resource Graph scale-set row skipped: %s", error)


def suspects(rows: Iterable[Mapping[str, Any]]) -> Iterator[InstanceSuspect]:
    for row in rows:
        try:
            yield parse_suspect_row(row)
        except RowError as error:
            log.warning("Resource Graph suspect row skipped: %s", error)


def suspects_by_scale_set(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[InstanceSuspect]]:
    """Suspects grouped by lower-cased scale set id (rows of both suspect queries may be chained)."""
    grouped: dict[str, list[InstanceSuspect]] = {}
    for suspect in suspects(rows):
        grouped.setdefault(suspect.scale_set_key, []).append(suspect)
    return grouped


def managed_resource_groups(rows: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """`{resource group (lower-cased): managedBy}` from `MANAGED_RESOURCE_GROUPS_QUERY` rows."""
    owners: dict[str, str] = {}
    for row in rows:
        name, owner = _text(row, "name"), _text(row, "managedBy")
        if not name and _text(row, "id"):
            name = segments(_text(row, "id")).get("resourcegroups", "")
        if name and owner:
            owners[name.lower()] = owner
        else:
            log.warning("Resource Graph resource-group row skipped: %r", dict(row))
    return owners


class RowSource(Protocol):
    """What runs a query: `ResourceGraphGateway` (or, in unit tests, rows on plain data)."""

    def query(self, text: str) -> Iterable[Mapping[str, Any]]: ...


def read_scale_sets(source: RowSource) -> Iterator[ScaleSetRow]:
    """Every scale set of the subscription, streamed (one ARG query; 1,000 rows a page)."""
    return scale_sets(source.query(SCALE_SETS_QUERY))


def read_suspects(source: RowSource) -> dict[str, list[InstanceSuspect]]:
    """Uniform and Flexible instances not `Succeeded`, by lower-cased scale set id (two ARG queries)."""
    return suspects_by_scale_set(
        itertools.chain(source.query(UNIFORM_SUSPECTS_QUERY), source.query(FLEXIBLE_SUSPECTS_QUERY))
    )


def read_managed_resource_groups(source: RowSource) -> dict[str, str]:
    """Resource groups another service owns (one ARG query)."""
    return managed_resource_groups(source.query(MANAGED_RESOURCE_GROUPS_QUERY))
