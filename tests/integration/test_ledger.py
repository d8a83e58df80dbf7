"""The ledger on Azurite through the real azure-data-tables client."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from autoheal.remediation.ledger import Ledger, LedgerConflict, LedgerUnavailable, Record, State, Step
from tests.azurite import connection_string, free_port

VMSS = (
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/RG-Web"
    "/providers/Microsoft.Compute/virtualMachineScaleSets/Web"
)
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def record(**changes) -> Record:
    base = Record(
        scale_set_id=VMSS,
        finding_code="provisioning-failed",
        target="*",
        action="replace-failed-instances",
        state=State.RUNNING,
        instance_ids=["3", "7"],
        params={"targetCapacity": 4},
        capacity_target=4,
        created_at=T0,
        updated_at=T0,
        lease_until=T0 + timedelta(minutes=30),
        correlation_id="c1",
        mode="remediate",
    )
    return base.evolve(**changes)


def test_round_trip_keeps_every_field(ledger):
    saved = ledger.create(record(runs=["2026-11-23T11:00:00Z"], next_attempt_at=T0 + timedelta(minutes=10)))
    assert saved.etag
    read = ledger.get(VMSS, "provisioning-failed", "*")
    assert read is not None
    assert read.evolve(etag=None) == saved.evolve(etag=None)
    assert read.partition_key == "00000000-0000-0000-0000-000000000001|rg-web|web"
    assert read.row_key == "provisioning-failed|*"
    assert read.scale_set_name == "Web" and read.resource_group == "RG-Web"


def test_missing_record_is_none(ledger):
    assert ledger.get(VMSS, "delete-failed", "9") is None


def test_update_with_stale_etag_conflicts(ledger):
    first = ledger.create(record())
    ledger.update(first.evolve(step=Step.DELETING), previous_state="running")
    with pytest.raises(LedgerConflict):
        ledger.update(first.evolve(step=Step.RESTORED), previous_state="running")
    assert ledger.get(VMSS, "provisioning-failed").step is Step.DELETING


def test_duplicate_create_conflicts(ledger):
    ledger.create(record())
    with pytest.raises(LedgerConflict):
        ledger.create(record(correlation_id="c2"))


def test_racing_claims_have_one_winner(ledger):
    seed = ledger.create(record(state=State.FAILED))
    winners, losers = [], []
    barrier = threading.Barrier(6)

    def claim(worker: int) -> None:
        barrier.wait()
        try:
            ledger.update(seed.evolve(state=State.RUNNING, correlation_id=f"w{worker}"), previous_state="failed")
            winners.append(worker)
        except LedgerConflict:
            losers.append(worker)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1 and len(losers) == 5
    assert ledger.get(VMSS, "provisioning-failed").correlation_id == f"w{winners[0]}"


def test_history_is_newest_first_and_filters_by_scale_set(ledger):
    other = VMSS.replace("/Web", "/Api")
    r = ledger.create(record(state=State.PLANNED, updated_at=T0))
    r = ledger.update(r.evolve(state=State.RUNNING, updated_at=T0 + timedelta(minutes=1)), previous_state="planned")
    ledger.update(r.evolve(state=State.SUCCEEDED, updated_at=T0 + timedelta(minutes=2)), previous_state="running")
    ledger.create(record(scale_set_id=other, state=State.HELD, reason="storm", updated_at=T0 + timedelta(minutes=3)))
    events = ledger.history()
    assert [e.state for e in events] == ["held", "succeeded", "running", "planned"]
    assert events[1].previous_state == "running"
    web = ledger.history("web")
    assert [e.state for e in web] == ["succeeded", "running", "planned"]
    assert web[0].to_dict()["at"] == "2026-11-23T12:02:00Z"
    assert ledger.history(limit=2)[1].state == "succeeded"


def test_records_for_and_active_records(ledger):
    ledger.create(record())
    ledger.create(record(finding_code="delete-failed", target="5", state=State.HELD))
    ledger.create(record(scale_set_id=VMSS.replace("/Web", "/Api"), state=State.VERIFYING))
    assert {r.row_key for r in ledger.records_for(VMSS)} == {"provisioning-failed|*", "delete-failed|5"}
    assert {r.state for r in ledger.active_records()} == {State.RUNNING, State.VERIFYING}
    assert len(ledger.all_records()) == 3


def test_unreachable_storage_is_reported_not_swallowed():
    dead = Ledger.from_connection_string(connection_string(free_port()), "ledger", retry_total=0)
    with pytest.raises(LedgerUnavailable):
        dead.get(VMSS, "provisioning-failed")
    with pytest.raises(LedgerUnavailable):
        dead.create(record())


def test_records_by_scale_set_reads_one_subscription_in_one_query(ledger):
    other_sub = VMSS.replace("00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002")
    api = VMSS.replace("/Web", "/Api")
    ledger.create(record())
    ledger.create(record(finding_code="delete-failed", target="5", state=State.HELD))
    ledger.create(record(scale_set_id=api))
    ledger.create(record(scale_set_id=other_sub))
    ledger.save_status("last-sweep", {"scaleSets": 3})
    grouped = ledger.records_by_scale_set("00000000-0000-0000-0000-000000000001")
    assert {key: sorted(r.row_key for r in rows) for key, rows in grouped.items()} == {
        "00000000-0000-0000-0000-000000000001|rg-web|web": ["delete-failed|5", "provisioning-failed|*"],
        "00000000-0000-0000-0000-000000000001|rg-web|api": ["provisioning-failed|*"],
    }
    assert ledger.load_status("last-sweep") == {"scaleSets": 3}
    assert len(ledger.all_records()) == 4  # the status document is not a record
