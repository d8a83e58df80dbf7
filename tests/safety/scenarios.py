"""Fleets and events for the crash and race rounds: one scale set per round, named after the round, so
Compute's per-scale-set throttling buckets and the ledger's partitions never carry over between rounds.

Each scenario is one multi-step action of the engine (the ones that delete and restore capacity):
- `failed`: a Uniform scale set with one instance `ProvisioningState/failed` (cause 3,
  replace-failed-instances: delete, then scale out to the recorded capacity);
- `unhealthy`: repairs Running with repairAction Replace and one instance Unhealthy for an hour (the
  runbook's symptom, repair-instances: delete, then restore);
- `solo`: capacity 1 with its only instance failed (below the floor: scale out first, then delete).
Race scenarios add a second finding that needs a scale-set-wide write (a PATCH enabling automatic
repairs or resilient delete), the way another worker, autoscale or a person writes to the same scale set.
"""

from __future__ import annotations

import copy
import json
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator import fleetgen
from tests.helpers import EVENT_EXAMPLES

RESOURCE_GROUP = "rg-safety"
SUBSCRIPTION = fleetgen.DEFAULT_SUBSCRIPTION_ID
CRASH_KINDS = ("failed", "unhealthy", "solo")
RACE_EXTRAS = ("repairs-off", "resilient-delete-off", "none")


@dataclass
class Scenario:
    kind: str
    name: str
    target: int  # sku.capacity before the action: what the engine must restore
    doomed: list[str]  # instance ids the action deletes
    entry: dict[str, Any] = field(repr=False)  # the fleet's scaleSets[] entry
    extra: str = "none"

    @property
    def key(self) -> str:
        """The scale set as the journal names it."""
        return f"{RESOURCE_GROUP}/{self.name}".lower()

    @property
    def resource_id(self) -> str:
        return fleetgen.scale_set_id(SUBSCRIPTION, RESOURCE_GROUP, self.name)

    @property
    def partition_key(self) -> str:
        """The ledger's PartitionKey of this scale set's live records."""
        return f"{SUBSCRIPTION}|{RESOURCE_GROUP}|{self.name}".lower()

    def fleet(self) -> dict[str, Any]:
        return fleetgen.fleet(self.entry, subscription_id=SUBSCRIPTION)


def crash_scenario(kind: str, name: str, rng: random.Random) -> Scenario:
    """One scale set whose remediation is a delete + restore; the doomed instance is drawn from `rng`."""
    if kind == "solo":
        entry = _scale_set(name, capacity=1, failed={0: "VMExtensionProvisioningError"})
        return Scenario(kind, name, 1, ["0"], entry)
    capacity = rng.choice((3, 4, 5))
    doomed = rng.randrange(capacity)
    if kind == "failed":
        entry = _scale_set(name, capacity=capacity, failed={doomed: "VMExtensionProvisioningError"})
    elif kind == "unhealthy":
        entry = _scale_set(name, capacity=capacity, unhealthy=[doomed], unhealthy_for=3600)
    else:
        raise ValueError(f"unknown crash scenario {kind!r}; expected one of {', '.join(CRASH_KINDS)}")
    return Scenario(kind, name, capacity, [str(doomed)], entry)


def race_scenario(name: str, rng: random.Random, extra: str | None = None) -> Scenario:
    """A failed instance plus, usually, a second finding whose fix writes the whole scale set."""
    extra = extra or rng.choice(RACE_EXTRAS)
    capacity = rng.choice((3, 4, 5))
    doomed = rng.randrange(capacity)
    options: dict[str, Any] = {}
    if extra == "repairs-off":
        options["automatic_repairs"] = False
    elif extra == "resilient-delete-off":
        options["resilient_deletion"] = False
    elif extra != "none":
        raise ValueError(f"unknown race extra {extra!r}; expected one of {', '.join(RACE_EXTRAS)}")
    entry = _scale_set(name, capacity=capacity, failed={doomed: "VMExtensionProvisioningError"}, **options)
    return Scenario("race", name, capacity, [str(doomed)], entry, extra)


def double_scenario(name: str, rng: random.Random) -> Scenario:
    """Two findings on one scale set whose fixes both take an instance out of service: one instance
    `ProvisioningState/failed` (replace-failed-instances) and another Unhealthy for an hour with repairs
    Running and repairAction Replace (repair-instances). With a zero cooldown nothing but the per-scale-set
    claim keeps racing workers from running both at once."""
    capacity = rng.choice((4, 5, 6))
    failed, unhealthy = rng.sample(range(capacity), 2)
    entry = _scale_set(
        name,
        capacity=capacity,
        failed={failed: "VMExtensionProvisioningError"},
        unhealthy=[unhealthy],
        unhealthy_for=3600,
    )
    return Scenario("double", name, capacity, [str(failed), str(unhealthy)], entry)


def _scale_set(name: str, **options: Any) -> dict[str, Any]:
    """Nothing wrong but what the scenario adds: repairs on and Running, resilient create/delete on."""
    options.setdefault("automatic_repairs", True)
    options.setdefault("resilient_creation", True)
    options.setdefault("resilient_deletion", True)
    return fleetgen.scale_set(name, resource_group=RESOURCE_GROUP, subscription_id=SUBSCRIPTION, **options)


def write_failure_event(scenario: Scenario, directory: Path, rng: random.Random) -> Path:
    """Microsoft's ResourceWriteFailure sample (Event Grid schema) pointed at the scenario's scale set, as
    `scripts/demo.py` builds it; one event id, delivered to every racing worker: Event Grid "tries to deliver
    each message at least once for each matching subscription" and retries what is not acknowledged
    (https://learn.microsoft.com/azure/event-grid/delivery-and-retry), so duplicates reach separate workers."""
    sample = EVENT_EXAMPLES / "Microsoft.Resources/examples/event-grid-schema/resource_write_failure.json"
    event = copy.deepcopy(json.loads(sample.read_text()))
    event["id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    event["subject"] = event["data"]["resourceUri"] = scenario.resource_id
    event["data"]["operationName"] = "Microsoft.Compute/virtualMachineScaleSets/write"
    event["data"]["subscriptionId"] = SUBSCRIPTION
    path = directory / f"event-{scenario.name}.json"
    path.write_text(json.dumps(event, indent=2))
    return path
