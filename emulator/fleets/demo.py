"""The demo fleet: one scale set per documented cause (Uniform and Flexible), plus healthy ones.

`python -m emulator.fleets.demo` rewrites `demo.json` next to this file; a test keeps the two in step.
Times are relative to `CAPTURED_AT`; the emulator shifts them to its start, so ages stay as written.

| scale set (resource group)  | what is wrong                                      | expected finding(s)               |
| --------------------------- | -------------------------------------------------- | --------------------------------- |
| web-frontend (rg-shop)      | nothing                                            | -                                 |
| analytics-flex (rg-data)    | nothing (Flexible, Application Health extension)   | -                                 |
| batch-jobs (rg-platform)    | repairs never enabled, no resiliency policy        | repairs-disabled, resilient-*     |
| legacy-app (rg-platform)    | no health source at all                            | repairs-disabled (held), health-… |
| checkout-api (rg-shop)      | probe on the wrong port: every instance Unhealthy  | health-monitoring-misconfigured   |
| render-farm (rg-platform)   | an extension failed during provisioning            | provisioning-failed               |
| search-indexer (rg-shop)    | repairs suspended, no person in the Activity Log   | repairs-suspended (resumed)       |
| reports-api (rg-shop)       | repairs suspended by alice@contoso.com 2 days ago  | repairs-suspended, held:          |
|                             | (the fleet's `activityLog`)                        | suspended-by-person               |
| cache-nodes (rg-shop)       | unhealthy for 10 min, grace period 30 min          | grace-period                      |
| queue-workers (rg-platform) | unhealthy for 90 min, repairs Running; 1 protected | unhealthy-not-repaired            |
| ingest-flex (rg-data)       | Flexible VM create timed out, resilient create off | create-timed-out                  |
| etl-workers (rg-data)       | resilient delete gave up; another still retrying   | delete-failed                     |
| ml-training (rg-data)       | a failed instance, but tagged autoheal=off         | provisioning-failed (held)        |
| aks-pool1-… (MC_rg-aks_…)   | an AKS node pool with a failed node                | provisioning-failed, held:        |
|                             | (node resource group managed by the cluster)       | owned-by-service                  |
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from emulator import fleetgen
from emulator.activitylog import seed

SUBSCRIPTION = "6f1d3c2a-8b4e-4d7f-9a0c-1e2f3a4b5c6d"
CAPTURED_AT = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
# Resilient delete is registered, resilient create is not: enabling it is held with the register command.
FEATURES = ["Microsoft.Compute/ReliableVMDeletion"]
PATH = Path(__file__).with_name("demo.json")
AKS_NODE_GROUP = "MC_rg-aks_prod-aks_westeurope"
AKS_CLUSTER = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/prod-aks"
)


def _set(name: str, group: str, **options: Any) -> dict[str, Any]:
    options.setdefault("resilient_creation", True)
    options.setdefault("resilient_deletion", True)
    return fleetgen.scale_set(name, resource_group=group, subscription_id=SUBSCRIPTION, now=CAPTURED_AT, **options)


def _health_settings(entry: dict[str, Any], **settings: Any) -> None:
    for ext in entry["resource"]["properties"]["virtualMachineProfile"]["extensionProfile"]["extensions"]:
        ext["properties"]["settings"].update(settings)


def _protect(entry: dict[str, Any], instance_id: str) -> None:
    for vm in entry["virtualMachines"]:
        if vm.get("instanceId") == instance_id:
            vm["properties"]["protectionPolicy"] = {"protectFromScaleIn": True, "protectFromScaleSetActions": True}


def build() -> dict[str, Any]:
    checkout = _set(
        "checkout-api", "rg-shop", capacity=4, automatic_repairs=True, unhealthy=range(4), unhealthy_for=7200
    )
    _health_settings(checkout, port=8080, requestPath="/healthz")
    queue = _set(
        "queue-workers",
        "rg-platform",
        capacity=6,
        automatic_repairs=True,
        repair_action="Reimage",
        grace_period="PT10M",
        unhealthy=[2, 4],
        unhealthy_for=5400,
    )
    _protect(queue, "4")
    etl = _set("etl-workers", "rg-data", capacity=5, automatic_repairs=True, deletion_failed=[3, 4])
    etl["virtualMachines"][4]["properties"]["resilientVMDeletionStatus"] = "InProgress"
    scale_sets = [
        _set("web-frontend", "rg-shop", capacity=4, automatic_repairs=True),
        # Flexible scale sets cannot use a load-balancer probe for health (orchestration-modes doc): an extension.
        _set("analytics-flex", "rg-data", orchestration="Flexible", capacity=3, automatic_repairs=True),
        _set("batch-jobs", "rg-platform", capacity=3, resilient_creation=False, resilient_deletion=False),
        _set("legacy-app", "rg-platform", capacity=2, health=None, automatic_repairs=None, resilient_deletion=False),
        checkout,
        _set(
            "render-farm", "rg-platform", capacity=4, automatic_repairs=True, failed={2: "VMExtensionProvisioningError"}
        ),
        _set(
            "search-indexer",
            "rg-shop",
            capacity=5,
            automatic_repairs=True,
            repairs_service="Suspended",
            unhealthy=[1],
            unhealthy_for=10800,
        ),
        # Suspended on purpose by a person (`az vmss set-orchestration-service-state --action Suspend`): the
        # Activity Log names her; the tool holds it for her instead of resuming it.
        _set(
            "reports-api",
            "rg-shop",
            capacity=3,
            automatic_repairs=True,
            repairs_service="Suspended",
        ),
        _set(
            "cache-nodes",
            "rg-shop",
            capacity=3,
            automatic_repairs=True,
            grace_period="PT30M",
            unhealthy=[0],
            unhealthy_for=600,
        ),
        queue,
        _set(
            "ingest-flex",
            "rg-data",
            orchestration="Flexible",
            capacity=3,
            automatic_repairs=True,
            resilient_creation=False,
            failed={1: "OSProvisioningTimedOut"},
        ),
        etl,
        _set(
            "ml-training",
            "rg-data",
            capacity=2,
            automatic_repairs=True,
            failed={1: "VMExtensionProvisioningError"},
            tags={"autoheal": "off", "team": "ml"},
        ),
        # An AKS node pool: AKS owns it ("modifying resources in the node resource group is unsupported";
        # learn.microsoft.com/azure/aks/faq) and repairs it itself (node auto-repair). Diagnosed, never changed.
        _set(
            "aks-pool1-38517204-vmss",
            AKS_NODE_GROUP,
            capacity=3,
            automatic_repairs=None,
            failed={1: "VMExtensionProvisioningError"},
            tags={"aks-managed-poolName": "pool1", "aks-managed-orchestrator": "Kubernetes:1.30.3"},
        ),
    ]
    groups = [fleetgen.resource_group(AKS_NODE_GROUP, location="westeurope", managed_by=AKS_CLUSTER)]
    document = fleetgen.fleet(
        *scale_sets,
        subscription_id=SUBSCRIPTION,
        captured_at=CAPTURED_AT,
        registered_features=FEATURES,
        resource_groups=groups,
    )
    reports = next(s for s in scale_sets if s["resource"]["name"] == "reports-api")["resource"]["id"]
    suspended = seed(reports, "alice@contoso.com", CAPTURED_AT - timedelta(days=2))
    # Fixed ids, so demo.json is the same on every run.
    suspended["correlationId"] = suspended["operationId"] = "5e1c0a11-ce00-4d2a-9b1e-000000000001"
    suspended["httpRequest"]["clientRequestId"] = "5e1c0a11-ce00-4d2a-9b1e-000000000002"
    document["activityLog"] = [suspended]
    return document


def render() -> str:
    return json.dumps(build(), indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    PATH.write_text(render())
    print(f"wrote {PATH}")
