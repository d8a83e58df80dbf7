"""Respecting people's decisions, end to end: the engine, the real azure-mgmt-compute and azure-mgmt-monitor
clients over HTTPS, the emulator's Activity Log (emulator/activitylog.py) and the Azurite ledger.

Microsoft's repairs-state alert listens to the Activity Log operation
Microsoft.Compute/virtualMachineScaleSets/setOrchestrationServiceState/action (learn.microsoft.com/azure/
virtual-machine-scale-sets/alert-rules-automatic-repairs-service-state); the tool reads the same signal before
it resumes anything."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from autoheal.gateway import ComputeGateway
from emulator import fleetgen
from emulator.activitylog import seed, unsigned_jwt
from emulator.testing import StaticTokenCredential
from tests.integration.rig import actions_by

RG = "rg-app"
SET_STATE = "VirtualMachineScaleSets_SetOrchestrationServiceState"


def suspended(name: str = "a") -> dict[str, Any]:
    return fleetgen.scale_set(
        name, automatic_repairs=True, repairs_service="Suspended", resilient_creation=True, resilient_deletion=True
    )


def decision(result, name: str = "a") -> dict[str, Any]:
    return actions_by(result)[(name, "repairs-suspended", "*")]


def service_state(rig, name: str = "a") -> str:
    return rig.gateway.snapshot_by_name(RG, name).repairs_service_state


def test_a_person_s_suspension_is_held_naming_who_and_when_and_never_resumed(make_rig):
    rig = make_rig(suspended())
    at = rig.emu.clock.now() - timedelta(days=2)
    rig.emu.activity_log.add(seed(rig.emu.scale_set(RG, "a")["id"], "alice@contoso.com", at))
    result = rig.sweep()
    held = decision(result)
    assert (held["state"], held["reasonCode"]) == ("held", "suspended-by-person")
    assert f"suspended by alice@contoso.com (a person) at {at:%Y-%m-%d %H:%M} UTC" in held["reason"]
    (finding,) = [f for f in result.results[0].findings if f.code.value == "repairs-suspended"]
    assert "repeated failed repairs" not in finding.summary and "alice@contoso.com" in finding.summary
    assert rig.ops().get(SET_STATE, 0) == 0
    assert rig.ops()["ActivityLogs_List"] >= 1
    assert service_state(rig) == "Suspended"


def test_what_no_person_suspended_is_resumed_as_today(make_rig):
    rig = make_rig(suspended())
    action = decision(rig.sweep())
    assert (action["code"], action["state"]) == ("resume-automatic-repairs", "succeeded")
    assert rig.ops()[SET_STATE] == 1
    assert service_state(rig) == "Running"
    # The emulator's Activity Log now shows our resume, by the service principal our token is.
    (ours,) = [e for e in rig.emu.activity_log.events() if e["operationName"]["value"].endswith("/action")]
    assert ours["status"]["value"] in ("Succeeded", "Accepted") and "@" not in ours["caller"]


def test_a_person_suspending_through_the_api_is_named_from_their_token(make_rig, gateway_for):
    """`az vmss set-orchestration-service-state --action Suspend` as alice: the emulator takes the caller from
    the bearer token (an unsigned JWT's upn), as the Activity Log shows callers."""
    rig = make_rig(fleetgen.scale_set("a", automatic_repairs=True, resilient_creation=True, resilient_deletion=True))

    token = StaticTokenCredential(unsigned_jwt(upn="alice@contoso.com", oid="a11ce"))
    alice: ComputeGateway = gateway_for(rig.emu, credential=token)
    alice.set_orchestration_service_state(RG, "a", "AutomaticRepairs", "Suspend")
    held = decision(rig.sweep())
    assert held["reasonCode"] == "suspended-by-person" and "alice@contoso.com (a person)" in held["reason"]
    assert rig.ops()[SET_STATE] == 1  # alice's, none of ours
    assert service_state(rig) == "Suspended"


def test_an_unreadable_activity_log_holds_with_the_reason_and_never_resumes_blind(make_rig):
    message = (
        "The client 'autoheal' with object id 'x' does not have authorization to perform action "
        "'microsoft.insights/eventtypes/values/read' over scope '/providers/microsoft.insights/eventtypes/management'."
    )
    faults = {
        "injections": [
            {
                "operation": "ActivityLogs_List",
                "status": 403,
                "code": "AuthorizationFailed",
                "message": message,
                "count": None,
            }
        ]
    }
    rig = make_rig(suspended(), faults=faults)
    held = decision(rig.sweep())
    assert (held["state"], held["reasonCode"]) == ("held", "suspender-unknown")
    assert "HTTP 403 AuthorizationFailed" in held["reason"] and "eventtypes/values/read" in held["reason"]
    assert rig.ops().get(SET_STATE, 0) == 0
    assert service_state(rig) == "Suspended"
    rig.emu.set_faults(None)  # the role is granted: the next sweep reads the log and resumes
    rig.advance(minutes=15)
    assert decision(rig.sweep())["state"] == "succeeded"
    assert service_state(rig) == "Running"


def test_a_person_who_suspends_between_the_diagnosis_and_the_write_wins(make_rig):
    """The executor re-reads the scale set, and with it the Activity Log, right before the write."""
    rig = make_rig(suspended())
    scale_set_id = rig.emu.scale_set(RG, "a")["id"]

    class PersonActsMeanwhile(ComputeGateway):
        reads = 0

        def snapshot(self, resource: Any, **options: Any) -> Any:
            snap = super().snapshot(resource, **options)
            self.reads += 1
            if self.reads == 1:  # after the sweep's own read: bob suspends it (again) by hand
                rig.emu.activity_log.add(seed(scale_set_id, "bob@contoso.com", rig.emu.clock.now()))
            return snap

    gateway = PersonActsMeanwhile(
        rig.emu.subscription_id, endpoint=rig.emu.endpoint, ca_bundle=rig.emu.ca_bundle, polling_interval=0
    )
    try:
        held = decision(rig.engine(gateway=gateway).sweep())
    finally:
        gateway.close()
    assert gateway.reads >= 2
    assert (held["state"], held["reasonCode"]) == ("held", "suspended-by-person")
    assert "bob@contoso.com" in held["reason"]
    assert rig.ops().get(SET_STATE, 0) == 0
