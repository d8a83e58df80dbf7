"""Issue 21: one disruptive action per scale set at a time, across workers, on the real Table Storage
(Azurite): the per-scale-set claim row, taken with its ETag and a lease."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from autoheal.remediation.ledger import Ledger
from autoheal.remediation.record import Record, State, Step
from autoheal.remediation.store import ScaleSetClaims

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
VMSS = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web"
LEASE = timedelta(minutes=5)


def running(finding: str, target: str) -> Record:
    return Record(VMSS, finding, target, action="replace-failed-instances", state=State.RUNNING, step=Step.CLAIMED)


def test_a_second_disruptive_record_waits_until_the_first_is_done(ledger: Ledger):
    worker_a, worker_b = ScaleSetClaims(ledger, LEASE), ScaleSetClaims(ledger, LEASE)
    failed, unhealthy = running("provisioning-failed", "2"), running("unhealthy-not-repaired", "5")
    assert worker_a.take(failed, NOW)
    assert not worker_b.take(unhealthy, NOW)  # another disruptive action is in flight on the scale set
    assert worker_a.take(failed, NOW + timedelta(minutes=1))  # the holder renews (a resume, a look again)
    # still owing capacity (verifying after the delete): the claim holds
    worker_a.settle(failed.evolve(state=State.VERIFYING, step=Step.RESTORE_INTENT), NOW + timedelta(minutes=2))
    assert not worker_b.take(unhealthy, NOW + timedelta(minutes=3))
    worker_a.settle(failed.evolve(state=State.SUCCEEDED, step=Step.RESTORED), NOW + timedelta(minutes=4))
    assert worker_b.take(unhealthy, NOW + timedelta(minutes=4))  # released: the next one may go
    assert not worker_a.take(failed, NOW + timedelta(minutes=4))


def test_a_claim_whose_worker_died_is_taken_over_after_its_lease(ledger: Ledger):
    dead, alive = ScaleSetClaims(ledger, LEASE), ScaleSetClaims(ledger, LEASE)
    assert dead.take(running("provisioning-failed", "2"), NOW)
    later = running("unhealthy-not-repaired", "5")
    assert not alive.take(later, NOW + LEASE - timedelta(seconds=1))
    assert alive.take(later, NOW + LEASE + timedelta(seconds=1))


def test_claims_are_not_records(ledger: Ledger):
    ScaleSetClaims(ledger, LEASE).take(running("provisioning-failed", "2"), NOW)
    assert ledger.all_records() == [] and ledger.records_for(VMSS) == []
