"""The GET/LIST pre-screen's verdict (autoheal/sources.py `needs_compute_read`) on plain instance payloads.

The payloads are shaped as Resource Graph's GET/LIST API serves them: the Compute list with instance views, but
no `vmHealth` ("VMSS VM health status isn't currently supported", MicrosoftDocs/azure-docs
articles/governance/resource-graph/concepts/azure-resource-graph-get-list-api.md)."""

from __future__ import annotations

import pytest

from autoheal.sources import needs_compute_read


def vm(state: str = "Succeeded", *codes: str, view: bool = True, instance_id: str = "0") -> dict:
    properties: dict = {"provisioningState": state}
    if view:
        statuses = [{"code": c} for c in codes or (f"ProvisioningState/{state.lower()}", "PowerState/running")]
        properties["instanceView"] = {"statuses": statuses}
    return {"instanceId": instance_id, "name": f"vmss_{instance_id}", "properties": properties}


def test_all_succeeded_and_running_needs_no_compute_read() -> None:
    assert not needs_compute_read([vm(), vm(instance_id="1")], flexible=False)
    assert not needs_compute_read([], flexible=False)


@pytest.mark.parametrize(
    "instance",
    [
        vm("Failed", "ProvisioningState/failed/VMExtensionProvisioningError", "PowerState/running"),
        vm("Creating", "ProvisioningState/creating"),
        vm("Deleting", "ProvisioningState/deleting", "PowerState/running"),
        vm("Succeeded", "ProvisioningState/succeeded", "PowerState/deallocated"),
        vm("Succeeded", "ProvisioningState/succeeded", "PowerState/stopped"),
        vm("Succeeded", view=False),  # no instance view: nothing to judge on
    ],
)
def test_a_failed_stuck_stopped_or_unreadable_instance_needs_a_compute_read(instance: dict) -> None:
    assert needs_compute_read([vm(instance_id="9"), instance], flexible=False)


def test_health_is_not_looked_at_since_get_list_has_none() -> None:
    unhealthy = vm()
    unhealthy["properties"]["instanceView"]["vmHealth"] = {"status": {"code": "HealthState/unhealthy"}}
    # The rotation reads health from Compute; the pre-screen only answers for provisioning and power.
    assert not needs_compute_read([unhealthy], flexible=True)
