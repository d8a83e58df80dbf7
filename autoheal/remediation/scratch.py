"""A ledger for a shell run that must not write the shared one: it reads the real ledger (if any), so the plan
knows what is in flight, and keeps this run's writes in memory (`vmss-autoheal` without --apply or --record)."""

from __future__ import annotations

from typing import Any

from .ledger import Ledger, LedgerConflict, LedgerUnavailable
from .record import Record, scale_set_key


class ScratchLedger(Ledger):
    """Reads the real ledger (if any) so the plan knows what is in flight; this run's writes stay in memory.

    What a shell run without --apply or --record uses: the plan is shown, the shared ledger is untouched.
    """

    def __init__(self, backing: Ledger | None) -> None:
        self._backing = backing
        self._mine: dict[tuple[str, str], Record] = {}
        self._status: dict[str, dict[str, Any]] = {}
        self._etags = 0

    def ensure_table(self) -> None:
        pass

    def close(self) -> None:
        pass

    def _read(self, call: Any, default: Any) -> Any:
        if self._backing is None:
            return default
        try:
            return call(self._backing)
        except LedgerUnavailable as exc:
            if "ResourceNotFound" in str(exc) or "TableNotFound" in str(exc):
                return default  # no table yet: nothing recorded
            raise

    def _overlay(self, records: list[Record]) -> list[Record]:
        merged = {(r.partition_key, r.row_key): r for r in records}
        return list({**merged, **self._mine}.values())

    def get(self, scale_set_id: str, finding_code: str, target: str = "-") -> Record | None:
        for record in self.records_for(scale_set_id):
            if (record.finding_code, record.target) == (finding_code, target):
                return record
        return None

    def records_for(self, scale_set_id: str) -> list[Record]:
        key = scale_set_key(scale_set_id)
        stored = self._read(lambda ledger: ledger.records_for(scale_set_id), [])
        return [r for r in self._overlay(stored) if r.partition_key == key]

    def records_by_scale_set(self, subscription_id: str) -> dict[str, list[Record]]:
        stored = self._read(lambda ledger: ledger.records_by_scale_set(subscription_id), {})
        grouped: dict[str, list[Record]] = {}
        for record in self._overlay([r for records in stored.values() for r in records]):
            grouped.setdefault(record.partition_key, []).append(record)
        return grouped

    def active_records(self) -> list[Record]:
        return [r for r in self.all_records() if r.state.active]

    def all_records(self) -> list[Record]:
        return self._overlay(self._read(lambda ledger: ledger.all_records(), []))

    def save_status(self, name: str, document: dict[str, Any]) -> None:
        self._status[name] = document

    def load_status(self, name: str) -> dict[str, Any] | None:
        return self._status.get(name) or self._read(lambda ledger: ledger.load_status(name), None)

    def create(self, record: Record, *, previous_state: str = "") -> Record:
        key = (record.partition_key, record.row_key)
        if key in self._mine or self.get(record.scale_set_id, record.finding_code, record.target) is not None:
            raise LedgerConflict(f"{record.row_key} exists")
        return self._keep(record)

    def update(self, record: Record, *, previous_state: str | None = None, history: bool = True) -> Record:
        if record.etag is None:
            raise ValueError("update needs the etag of the record as read")
        return self._keep(record)

    def _keep(self, record: Record) -> Record:
        self._etags += 1
        saved = record.evolve(etag=f"scratch-{self._etags}")
        self._mine[(saved.partition_key, saved.row_key)] = saved
        return saved

    def history(self, scale_set: str | None = None, limit: int = 100) -> list[Any]:
        entries: list[Any] = self._read(lambda ledger: ledger.history(scale_set, limit), [])
        return entries
