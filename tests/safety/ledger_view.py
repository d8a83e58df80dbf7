"""The ledger's Table Storage rows, read and nudged directly through `azure-data-tables` (the engine's
code is not used, so a rewritten engine is judged by what it stored). Property names are read tolerantly:
live records use camelCase (`state`, `leaseUntil`), history rows PascalCase (`State`, `PreviousState`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any


def _prop(entity: Any, name: str) -> Any:
    """A property by its camelCase or PascalCase name (live records use one, history rows the other)."""
    for key in (name, name[:1].upper() + name[1:]):
        if key in entity:
            return entity[key]
    return None


def timestamp(value: Any) -> float:
    """Seconds since the epoch of a Table Storage datetime or an ISO 8601 string (0 when absent)."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return 0.0


class LedgerView:
    """The ledger table of one round, through `azure-data-tables` (the engine's code is not used)."""

    def __init__(self, connection_string: str, table: str) -> None:
        from azure.data.tables import TableClient

        self._table = TableClient.from_connection_string(connection_string, table_name=table)

    def close(self) -> None:
        self._table.close()

    def _entities(self) -> list[Any]:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return list(self._table.list_entities())
        except ResourceNotFoundError:
            return []  # no process created the table yet

    def records(self, partition_key: str) -> list[dict[str, Any]]:
        """The live records of one scale set (PartitionKey = `{subscription}|{rg}|{name}` lower-cased)."""
        return [
            {
                "rowKey": e["RowKey"],
                "state": _prop(e, "state"),
                "reason": _prop(e, "reason"),
                "reasonCode": _prop(e, "reasonCode"),
                "step": _prop(e, "step"),
                "leaseUntil": _prop(e, "leaseUntil"),
                "capacityTarget": _prop(e, "capacityTarget"),
                "attempts": _prop(e, "attempts"),
            }
            for e in self._entities()
            if e["PartitionKey"] == partition_key
        ]

    def history(self, partition_key: str) -> list[dict[str, Any]]:
        """History rows of one scale set: rows in another partition that name a previous state."""
        rows = []
        for e in self._entities():
            pk = str(e["PartitionKey"])
            if pk == partition_key or not pk.endswith(partition_key) or _prop(e, "previousState") is None:
                continue
            rows.append(
                {
                    "t": timestamp(_prop(e, "at")),
                    "findingCode": _prop(e, "findingCode"),
                    "target": _prop(e, "target"),
                    "state": _prop(e, "state"),
                    "previousState": _prop(e, "previousState"),
                    "reason": _prop(e, "reason") or "",
                    "reasonCode": _prop(e, "reasonCode") or "",
                }
            )
        return sorted(rows, key=lambda r: r["t"])

    def expire_leases(self, partition_key: str, *, ago: timedelta = timedelta(seconds=1)) -> list[str]:
        """Let the lease of every record of one scale set run out now, as if `AUTOHEAL_ACTION_LEASE` had
        passed: `leaseUntil` is set to `ago` before now (merge, with the row's ETag). Returns the row keys
        whose lease was still running: the records a resume must take over."""
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        now = datetime.now(UTC)
        expired = []
        for entity in self._entities():
            if entity["PartitionKey"] != partition_key:
                continue
            name = "leaseUntil" if "leaseUntil" in entity else "LeaseUntil" if "LeaseUntil" in entity else None
            if name is None or timestamp(entity[name]) <= now.timestamp():
                continue
            patch = {"PartitionKey": entity["PartitionKey"], "RowKey": entity["RowKey"], name: now - ago}
            self._table.update_entity(
                patch,
                mode=UpdateMode.MERGE,
                etag=entity.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
            expired.append(str(entity["RowKey"]))
        return expired
