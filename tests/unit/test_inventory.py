"""Resource Graph rows → inventory dataclasses, on plain data.

Scale-set rows are built from Microsoft's own scale-set payloads (tests/reference, azure-rest-api-specs
ComputeRP 2025-04-01 examples) the way ARG shows a resource: the ARM body with ARG's columns added and `type`
lower-cased (learn.microsoft.com/azure/governance/resource-graph/reference/supported-tables-resources).
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from autoheal import inventory, snapshot
from autoheal.gateway.resourcegraph import parse_resets_after

EXAMPLES = Path(__file__).parents[1] / "reference" / "compute-examples" / "virtualMachineScaleSetExamples"
SUB = "6f1d3c2a-8b4e-4d7f-9a0c-1e2f3a4b5c6d"
VMSS_ID = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachineScaleSets/web"


def example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))["responses"]["200"]["body"]


def as_arg_row(body: dict) -> dict:
    parts = body["id"].split("/")
    row = {
        "tenantId": "t",
        "kind": "",
        "managedBy": "",
        "plan": None,
        "identity": None,
        "zones": None,
        "extendedLocation": None,
        "tags": {},
    }
    row.update({k: v for k, v in body.items() if k != "etag"})  # ARG has no etag column
    row.update({"type": body["type"].lower(), "resourceGroup": parts[4].lower(), "subscriptionId": parts[2]})
    return row


@pytest.mark.parametrize(
    "name",
    [
        "VirtualMachineScaleSet_Get.json",
        "VirtualMachineScaleSet_Create_WithAutomaticRepairs.json",
        "VirtualMachineScaleSet_Create_WithResilientVMDeletionPolicy.json",
        "VirtualMachineScaleSet_Update_MaximumSet_Gen.json",  # repairs + networkProfile.healthProbe
    ],
)
def test_a_microsoft_scale_set_round_trips_through_an_arg_row(name):
    body = example(name)
    row = inventory.parse_scale_set_row(as_arg_row(body))
    assert row.resource == {k: v for k, v in body.items() if k != "etag"}
    assert (row.name, row.location) == (body["name"], body["location"])
    assert row.resource_group.lower() == body["id"].split("/")[4].lower()
    assert row.capacity == body["sku"]["capacity"] and row.tags == body.get("tags", {})
    assert row.repairs == snapshot.repairs_policy(body)
    assert row.resiliency == snapshot.resiliency_policy(body)
    assert row.health_sources == snapshot.health_sources(body)
    assert row.key == body["id"].lower()


def test_policies_and_health_sources_come_from_the_model():
    repairs = inventory.parse_scale_set_row(
        as_arg_row(example("VirtualMachineScaleSet_Create_WithAutomaticRepairs.json"))
    )
    assert repairs.repairs.present and repairs.repairs.enabled and repairs.repairs.grace_period == "PT10M"
    probe = inventory.parse_scale_set_row(as_arg_row(example("VirtualMachineScaleSet_Update_MaximumSet_Gen.json")))
    assert [source.kind for source in probe.health_sources] == ["loadBalancerProbe"]
    deletion = example("VirtualMachineScaleSet_Create_WithResilientVMDeletionPolicy.json")
    assert inventory.parse_scale_set_row(as_arg_row(deletion)).resiliency.delete_enabled


def test_a_flexible_scale_set_row_with_arg_casing():
    row = inventory.parse_scale_set_row(
        {
            "id": VMSS_ID.replace("/web", "/jobs"),
            "name": "jobs",
            "type": "microsoft.compute/virtualmachinescalesets",
            "resourceGroup": "rg-app",
            "subscriptionId": SUB,
            "location": "westeurope",
            "managedBy": "/subscriptions/x/resourceGroups/y/providers/Microsoft.ContainerService/managedClusters/z",
            "sku": {"capacity": 0},
            "tags": {"autoheal": "off"},
            "properties": {"orchestrationMode": "Flexible", "provisioningState": "Updating"},
        }
    )
    assert row.is_flexible and row.capacity == 0 and row.provisioning_state == "Updating"
    assert row.resource["type"] == "Microsoft.Compute/virtualMachineScaleSets"  # ARM's casing for the gateway
    assert row.managed_by.endswith("/managedClusters/z") and row.tags == {"autoheal": "off"}
    assert not row.repairs.present and row.health_sources == ()


@pytest.mark.parametrize(
    "bad",
    [
        {"id": ""},
        {"id": f"{VMSS_ID}/virtualMachines/0"},
        {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"},
        {"name": "web"},
    ],
)
def test_a_row_that_is_not_a_scale_set_is_refused(bad):
    with pytest.raises(inventory.RowError):
        inventory.parse_scale_set_row(bad)


def test_uniform_and_flexible_suspects():
    uniform = inventory.parse_suspect_row(
        {
            "id": f"{VMSS_ID}/virtualMachines/7",
            "name": "web_7",
            "resourceGroup": "rg-app",
            "provisioningState": "Creating",
            "timeCreated": "2026-11-23T10:00:00.1234567+00:00",
        }
    )
    assert (uniform.scale_set_id, uniform.instance_id, uniform.provisioning_state) == (VMSS_ID, "7", "Creating")
    assert uniform.time_created == datetime(2026, 11, 23, 10, 0, 0, 123456, tzinfo=UTC) and not uniform.flexible
    lower = inventory.parse_suspect_row({"id": f"{VMSS_ID}/virtualmachines/3".lower(), "provisioningState": "Failed"})
    assert (lower.scale_set_id, lower.instance_id, lower.time_created) == (VMSS_ID.lower(), "3", None)
    flexible = inventory.parse_suspect_row(
        {
            "id": f"/subscriptions/{SUB}/resourceGroups/rg-vms/providers/Microsoft.Compute/virtualMachines/jobs_1a2b",
            "name": "jobs_1a2b",
            "scaleSetId": VMSS_ID.replace("/web", "/jobs"),
            "provisioningState": "Deleting",
            "timeCreated": "",
        }
    )
    assert flexible.flexible and flexible.instance_id == "jobs_1a2b" and flexible.scale_set_key.endswith("/jobs")


def test_grouping_keeps_only_suspects_by_lower_cased_scale_set_and_skips_bad_rows(caplog):
    rows = [
        {"id": f"{VMSS_ID}/virtualMachines/1", "provisioningState": "Failed"},
        {"id": f"{VMSS_ID.upper()}/VIRTUALMACHINES/2", "provisioningState": "Deleting"},
        {"id": f"{VMSS_ID}/virtualMachines/3"},  # no state: not a suspect row
        {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/d", "provisioningState": "x"},
    ]
    with caplog.at_level(logging.WARNING, logger="autoheal.inventory"):
        grouped = inventory.suspects_by_scale_set(rows)
    assert list(grouped) == [VMSS_ID.lower()]
    assert [s.instance_id for s in grouped[VMSS_ID.lower()]] == ["1", "2"]
    assert len([r for r in caplog.records if "skipped" in r.getMessage()]) == 2


def test_managed_resource_groups_by_lower_cased_name(caplog):
    rows = [
        {"id": f"/subscriptions/{SUB}/resourceGroups/MC_rg_aks", "name": "MC_rg_aks", "managedBy": "/aks"},
        {"id": f"/subscriptions/{SUB}/resourceGroups/databricks-rg", "managedBy": "/workspace"},
        {"id": f"/subscriptions/{SUB}/resourceGroups/plain", "name": "plain", "managedBy": ""},
    ]
    with caplog.at_level(logging.WARNING, logger="autoheal.inventory"):
        owners = inventory.managed_resource_groups(rows)
    assert owners == {"mc_rg_aks": "/aks", "databricks-rg": "/workspace"}
    assert any("plain" in r.getMessage() for r in caplog.records)


class Rows:
    """A RowSource on plain data: answers each fixed query with its rows and records what was asked."""

    def __init__(self, answers: dict[str, list[dict]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def query(self, text: str):
        self.asked.append(text)
        yield from self.answers.get(text, [])


def test_readers_ask_the_fixed_queries():
    source = Rows(
        {
            inventory.UNIFORM_SUSPECTS_QUERY: [{"id": f"{VMSS_ID}/virtualMachines/1", "provisioningState": "Failed"}],
            inventory.FLEXIBLE_SUSPECTS_QUERY: [
                {"id": "/x/vm", "name": "vm", "scaleSetId": VMSS_ID, "provisioningState": "Creating"}
            ],
        }
    )
    grouped = inventory.read_suspects(source)
    assert [s.instance_id for s in grouped[VMSS_ID.lower()]] == ["1", "vm"]
    assert source.asked == [inventory.UNIFORM_SUSPECTS_QUERY, inventory.FLEXIBLE_SUSPECTS_QUERY]
    assert list(inventory.read_scale_sets(source)) == [] and inventory.read_managed_resource_groups(source) == {}
    assert set(inventory.QUERIES.values()) == set(source.asked)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("00:00:03", 3.0), ("00:01:05", 65.0), ("01:00:00", 3600.0), ("00:00:00.500", 0.5), (None, None), ("3", None)],
)
def test_quota_reset_header(header, seconds):
    assert parse_resets_after(header) == seconds


# --- the query texts against Microsoft's KQL grammar ------------------------------------------------------

KQL_CHECK = Path(__file__).with_name("kql_check.cjs")
KUSTO_PACKAGE = Path(__file__).parents[2] / "node_modules" / "@kusto" / "language-service-next"


def kusto_diagnostics(queries: dict[str, str]) -> dict[str, list[dict]]:
    """Diagnostics of Microsoft's Kusto language service (parser + binder) with ARG's table schemas."""
    assert shutil.which("node"), "Node.js is needed (README: requirements)"
    assert KUSTO_PACKAGE.is_dir(), "@kusto/language-service-next is missing: run `make node`"
    done = subprocess.run(
        ["node", str(KQL_CHECK)], input=json.dumps(queries), capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_fixed_queries_are_valid_kql_for_resource_graphs_tables():
    controls = {
        "syntax": "resources | wher type =~ 'x'",
        "column": "resources | project id, provisioningState",
        "table": "virtualmachinescalesets | project id",
    }
    found = kusto_diagnostics({**inventory.QUERIES, **controls})
    assert {name: found[name] for name in inventory.QUERIES} == {name: [] for name in inventory.QUERIES}
    # The checker does catch mistakes: a misspelt operator, a column ARG has not, an unknown table.
    assert "KS176" in [d["code"] for d in found["syntax"]]  # "Query operator expected."
    assert any("provisioningState" in d["message"] for d in found["column"])
    assert any("virtualmachinescalesets" in d["message"] for d in found["table"])


def test_the_fixed_queries_stay_inside_the_emulators_kql_subset():
    from emulator import kql

    for text in inventory.QUERIES.values():
        assert kql.parse(text).table in kql.TABLES
