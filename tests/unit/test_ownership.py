"""Owner detection, capacity arithmetic and ARM error classes on plain data (issue 11)."""

from __future__ import annotations

import pytest

from autoheal.gateway import ArmError
from autoheal.gateway.errors import ErrorClass, classify, missing_action
from autoheal.ownership import owner_of
from autoheal.remediation.capacity import capacity_floor, restore
from autoheal.settings import default_settings

AKS = "/subscriptions/s/resourcegroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/prod-aks"


@pytest.mark.parametrize(
    ("facts", "key", "name"),
    [
        ({"resource_group": "MC_rg-aks_prod-aks_westeurope", "tags": {}}, "aks", "prod-aks"),
        ({"resource_group": "nodes", "tags": {"aks-managed-poolName": "pool1"}}, "aks", ""),
        ({"resource_group": "nodes", "tags": {}, "group_managed_by": AKS}, "aks", "prod-aks"),
        # older node pools (before aks-managed-* tags): any one of the AKS-written tags
        ({"resource_group": "nodes", "tags": {"aksEngineVersion": "v0.47.0-aks"}}, "aks", ""),
        ({"resource_group": "nodes", "tags": {"creationSource": "aks-agentpool-12345678-vmss"}}, "aks", ""),
        (
            {"resource_group": "nodes", "tags": {"poolName": "agentpool", "orchestrator": "Kubernetes:1.19.7"}},
            "aks",
            "",
        ),
        ({"resource_group": "x", "tags": {}, "managed_by": AKS}, "aks", "prod-aks"),
        (
            {
                "resource_group": "databricks-rg-w",
                "tags": {},
                "group_managed_by": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Databricks/workspaces/w1",
            },
            "databricks",
            "w1",
        ),
        (
            {
                "resource_group": "b",
                "tags": {},
                "group_managed_by": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Batch/batchAccounts/acct",
            },
            "batch",
            "acct",
        ),
        ({"resource_group": "SFC_0f0e4c2a-8b4e-4d7f-9a0c-1e2f3a4b5c6d", "tags": {}}, "service-fabric-managed", ""),
        ({"resource_group": "sf", "tags": {}, "service_fabric": True}, "service-fabric", ""),
        (
            {
                "resource_group": "avd",
                "tags": {
                    "cm-resource-parent": "/subscriptions/s/resourceGroups/r/providers/"
                    "Microsoft.DesktopVirtualization/hostpools/pool"
                },
            },
            "avd",
            "pool",
        ),
        (
            {
                "resource_group": "x",
                "tags": {},
                "group_managed_by": "/subscriptions/s/resourceGroups/r/providers/Contoso.Fleet/fleets/f",
            },
            "managed-by",
            "/subscriptions/s/resourceGroups/r/providers/Contoso.Fleet/fleets/f",
        ),
    ],
)
def test_owners_are_found_from_every_signal(facts, key, name):
    owner = owner_of(**facts)
    assert owner is not None and (owner.key, owner.name) == (key, name)
    assert owner.advice and owner.evidence in owner.describe()


def test_plain_scale_sets_have_no_owner():
    assert owner_of(resource_group="rg-app", tags={"env": "prod"}) is None
    assert owner_of(resource_group="MCgroup", tags={}) is None


def test_aks_advice_names_the_cluster_and_the_tool():
    owner = owner_of(resource_group="MC_rg_prod-aks_westeurope", tags={})
    assert owner is not None
    assert "AKS cluster prod-aks" in owner.describe() and "az aks nodepool" in owner.describe()


@pytest.mark.parametrize(
    ("capacity", "percent", "floor"), [(10, 50, 5), (3, 50, 2), (1, 50, 1), (0, 50, 1), (10, 0, 1), (7, 100, 7)]
)
def test_capacity_floor(capacity, percent, floor):
    assert capacity_floor(capacity, default_settings(capacity_floor_percent=percent)) == floor


@pytest.mark.parametrize(
    ("target", "before", "gone", "current", "wanted", "note"),
    [
        (4, 4, 1, 3, 4, ""),  # the plain case: one deleted, one owed
        (4, 5, 1, 4, None, ""),  # after a surge nothing is owed
        (4, 4, 1, 4, None, "expected 3"),  # our own restore already landed (a crash after the PATCH)
        (6, 6, 2, 2, 4, "expected 4, found 2"),  # autoscale scaled in meanwhile: restore from the current value
        (6, 6, 2, 7, None, "expected 4"),  # someone scaled out past the target: never scale in for them
        (4, 4, 0, 4, None, ""),  # nothing gone (the delete failed): nothing owed
    ],
)
def test_restore_never_exceeds_the_target_and_says_when_capacity_moved(target, before, gone, current, wanted, note):
    plan = restore(target=target, before_delete=before, gone=gone, current=current)
    assert plan.capacity == wanted
    assert (note in plan.note) if note else plan.note == ""


@pytest.mark.parametrize(
    ("status", "code", "message", "kind"),
    [
        (200, "OperationPreempted", "Operation execution has been preempted by a more recent operation.", "preempted"),
        (409, "Conflict", "The request failed due to conflict with a concurrent request.", "conflict"),
        (409, "OperationNotAllowed", "Operation results in exceeding quota limits of Core.", "refused"),
        (409, "OperationNotAllowed", "The scale set is being deleted.", "refused"),
        (
            409,
            "OperationNotAllowed",
            "the VM is marked for deletion. You can only retry the Delete.",
            "already-deleting",
        ),
        (429, "OperationNotAllowed", "The server rejected the request because too many requests", "throttled"),
        (403, "AuthorizationFailed", "does not have authorization to perform action 'x/write' over scope", "forbidden"),
        (403, "LinkedAuthorizationFailed", "...", "forbidden"),
        (403, "DenyAssignmentAuthorizationFailed", "...", "forbidden"),
        (404, "NotFound", "gone", "not-found"),
        (400, "BadRequest", "not today", "rejected"),
        (500, "InternalServerError", "oops", "transient"),
        (200, "InternalExecutionError", "An internal execution error occurred.", "transient"),
        (None, "ServiceUnavailable", "no answer", "transient"),
    ],
)
def test_error_classes(status, code, message, kind):
    assert classify(ArmError(message, code=code, status=status)) is ErrorClass(kind)


def test_the_missing_action_is_named():
    message = (
        "The client 'x' with object id 'y' does not have authorization to perform action "
        "'Microsoft.Compute/virtualMachineScaleSets/write' over scope '/subscriptions/s' or the scope is invalid."
    )
    assert missing_action(message) == "Microsoft.Compute/virtualMachineScaleSets/write"
    assert missing_action("nothing here") is None


def test_lone_pool_name_or_other_creation_source_is_not_aks() -> None:
    assert owner_of(resource_group="nodes", tags={"poolName": "blue"}) is None
    assert owner_of(resource_group="nodes", tags={"creationSource": "terraform"}) is None
    owner = owner_of(resource_group="nodes", tags={"creationSource": "aks-agentpool-1-vmss", "poolName": "agentpool"})
    assert owner is not None and owner.evidence == "tag creationSource=aks-agentpool-1-vmss"
