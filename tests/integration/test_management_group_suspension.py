"""Suspended automatic repairs across a management group (issue 22): each subscription's scale sets are judged
by that subscription's own Activity Log. `ActivityLogs_List` lists one subscription's events
(learn.microsoft.com/rest/api/monitor/activity-logs/list); the tool reads the repairs-state signal Microsoft's
alert uses, setOrchestrationServiceState/action (learn.microsoft.com/azure/virtual-machine-scale-sets/
alert-rules-automatic-repairs-service-state), before it resumes anything.

Three subscriptions under `mg-platform` (and one outside) each hold rg-app/a with repairs suspended, the same name
everywhere. People suspended it in the first (bob) and the second (alice); nobody did in the third (the platform
did): the queue-driven app holds the first two naming their person and resumes the third.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from autoheal.remediation.ledger import Ledger
from emulator import Emulator, fleetgen
from emulator.activitylog import seed
from tests.integration import test_management_group as base

SUB_A = "aaaaaaaa-1111-4111-8111-111111111111"
SUB_B = "bbbbbbbb-2222-4222-8222-222222222222"
SUB_C = "cccccccc-3333-4333-8333-333333333333"
OUTSIDE = "99999999-9999-4999-8999-999999999999"
IN_SCOPE = (SUB_A, SUB_B, SUB_C)
PEOPLE = {SUB_A: "bob@contoso.com", SUB_B: "alice@contoso.com"}
MG = base.MG
# The queue-driven app of test_management_group.py (its fixtures over this module's `emu`).
storage = base.storage
mg_runtime = base.mg_runtime


def fleet() -> dict[str, Any]:
    parts = {
        sub: [
            fleetgen.scale_set(
                "a",
                subscription_id=sub,
                automatic_repairs=True,
                repairs_service="Suspended",
                resilient_creation=True,
                resilient_deletion=True,
            )
        ]
        for sub in (*IN_SCOPE, OUTSIDE)
    }
    return fleetgen.multi_fleet(parts, management_group=MG, members=list(IN_SCOPE))


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator.start(fleet()) as instance:
        for sub, person in PEOPLE.items():
            scale_set = instance.scale_set("rg-app", "a", sub)["id"]
            instance.activity_log.add(seed(scale_set, person, instance.clock.now() - timedelta(days=2)))
        yield instance


def repairs_record(ledger: Ledger, sub: str) -> dict[str, Any]:
    (record,) = [
        r for r in ledger.all_records() if r.scale_set_id.split("/")[2] == sub and r.finding_code == "repairs-suspended"
    ]
    return {"action": record.action, "state": record.state.value, "code": record.reason_code, "reason": record.reason}


def service_state(emu: Emulator, sub: str) -> str:
    return str(emu.instance_view("rg-app", "a", sub)["orchestrationServices"][0]["serviceState"])


def test_each_subscription_s_suspension_is_judged_by_its_own_activity_log(emu, mg_runtime, app_functions):
    base.tick(app_functions)
    host = base.host_for(mg_runtime, app_functions)
    try:
        assert host.drain() == 3
    finally:
        host.close()
    for sub, person in PEOPLE.items():
        held = repairs_record(mg_runtime.ledger, sub)
        assert (held["state"], held["code"]) == ("held", "suspended-by-person"), sub
        assert f"suspended by {person} (a person)" in held["reason"], sub
        assert service_state(emu, sub) == "Suspended"
    resumed = repairs_record(mg_runtime.ledger, SUB_C)
    assert (resumed["action"], resumed["state"]) == ("resume-automatic-repairs", "succeeded")
    assert service_state(emu, SUB_C) == "Running"
    assert service_state(emu, OUTSIDE) == "Suspended"
    # Each subscription's list was read (the emulator answers only a subscription of the fleet, with its events).
    assert [e["caller"] for e in emu.activity_log.events(SUB_B) if e["caller"] == "alice@contoso.com"]
    resumes = [e for e in emu.activity_log.events(SUB_C) if e["operationName"]["value"].endswith("/action")]
    assert len(resumes) == 1 and "@" not in resumes[0]["caller"]
    assert not [e for e in emu.activity_log.events(OUTSIDE)]
