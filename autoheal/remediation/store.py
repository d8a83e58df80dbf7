"""The one save path of remediation records.

Every write of a live record — a decision, a claim, an executor's checkpoint, an outcome, an expiry, a
resolution, the mark that a notification went out — is a `transitions.Save` handed to `RecordStore.save`,
which (1) refuses a move that is not in the life cycle's table (`transitions.MOVES`), (2) writes the
record with the ETag it was read with (`LedgerConflict` if another worker was first), (3) appends the
history row of a state change and (4) emits its "remediation ..." trace. A history row that could not be
written is counted (and logged), never allowed to undo the record. `tests/unit/test_transitions.py`
checks that nothing else in the package writes a record.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from .. import telemetry
from .ledger import Ledger, LedgerConflict, LedgerUnavailable
from .record import Record, State
from .transitions import Save

log = telemetry.get_logger("autoheal.engine")

_LEVELS = {State.FAILED: logging.ERROR, State.HELD: logging.INFO, State.PLANNED: logging.INFO}


class RecordStore:
    """Saves records through the life cycle's table; shared by a sweep's threads."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._lock = threading.Lock()
        self.history_failures = 0  # since this store was made

    def save(self, save: Save) -> Record:
        save.check()  # IllegalMove: a bug, never written
        record = save.record
        if record.etag is None:
            saved = self.ledger.create(record, previous_state=save.previous_state, history=False)
        else:
            saved = self.ledger.update(record, history=False)
        if save.history:
            try:
                self.ledger.append_history(saved, save.previous_state)
            except (LedgerConflict, LedgerUnavailable) as exc:
                # History is a view: losing one row must not undo or block the record it describes.
                with self._lock:
                    self.history_failures += 1
                telemetry.record_failure("history")
                log.error("could not append history for %s %s: %s", saved.scale_set_id, saved.row_key, exc)
            trace(saved, save.previous_state)
        return saved


# The claim that lets one disruptive action at a time run on a scale set, across workers.
DISRUPTION = "disruption"


def _holder(record: Record) -> str:
    return record.row_key


def claim_until(record: Record, now: datetime, lease: timedelta) -> datetime:
    """How long the scale-set claim lasts: the run's lease, or longer while the record still verifies or owes
    (its next attempt plus a lease), so no other disruptive action starts before this one is done."""
    until = now + lease
    for moment in (record.verify_until, record.next_attempt_at and record.next_attempt_at + lease):
        if moment is not None and moment > until:
            until = moment
    return until


def holds_scale_set(record: Record) -> bool:
    """A disruptive record keeps the scale set's claim while it runs, verifies or owes capacity."""
    return record.state.active or record.unfinished


class ScaleSetClaims:
    """One disruptive action per scale set at a time, across processes: a ledger row taken with its ETag and
    a lease (`Ledger.take_claim`); the record runner takes it before claiming a disruptive record."""

    def __init__(self, ledger: Ledger, lease: timedelta) -> None:
        self.ledger = ledger
        self.lease = lease

    def take(self, record: Record, now: datetime) -> bool:
        until = claim_until(record, now, self.lease)
        return self.ledger.take_claim(record.partition_key, DISRUPTION, _holder(record), until=until, now=now)

    def settle(self, record: Record, now: datetime) -> None:
        """After a save: renew the claim while the record still holds the scale set, else give it back."""
        try:
            if holds_scale_set(record):
                self.take(record, now)
            else:
                self.ledger.release_claim(record.partition_key, DISRUPTION, _holder(record))
        except LedgerUnavailable as exc:  # the lease runs out by itself
            log.warning("could not renew or release the claim on %s: %s", record.scale_set_id, exc)


def trace(record: Record, previous: str) -> None:
    """Every state change of a record is one "remediation ..." trace with the dimensions alerts query."""
    what = record.action if record.action != "none" else "no action"
    telemetry.log_decision(
        log,
        _LEVELS.get(record.state, logging.INFO),
        f"remediation {what} on {record.scale_set_name} ({record.finding_code}): "
        f"{previous or 'new'} -> {record.state.value}: {record.reason}",
        scaleSetId=record.scale_set_id,
        findingCode=record.finding_code,
        actionCode=record.action,
        outcome=record.state.value,
        reasonCode=record.reason_code,
        mode=record.mode,
        correlationId=record.correlation_id,
    )
