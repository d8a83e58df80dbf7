"""The remediation ledger in Azure Table Storage: one live record per finding target, plus history.

Live record: PartitionKey = the scale set (`{subscription}|{resource group}|{name}`, lower-cased: ARM ids
are case-insensitive), RowKey = `{finding code}|{target}` (an instance id, or `*` for the scale set).
Every write of a live record carries its ETag (`IfNotModified`), so two workers never run the same
action: the loser gets `LedgerConflict` and walks away. Each state change is also appended as a
history row (PartitionKey `history|...`, RowKey inverted time: newest first), which is what
`vmss-autoheal history` and the notifications read.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from ..model import parse_time
from .record import SCALE_SET_TARGET, HistoryEntry, Record, State, Step, scale_set_key

log = logging.getLogger("autoheal.ledger")

HISTORY_PREFIX = "history|"
STATUS_PARTITION = "status|"  # small documents such as the last sweep summary
# Per-scale-set claims (`claim|{scale set}`, RowKey the claim's kind): one disruptive action at a time.
CLAIM_PREFIX = "claim|"
_MAX_TICKS = 10**13  # milliseconds; inverted so that a plain RowKey scan is newest first
_JSON_FIELDS = frozenset({"instance_ids", "runs", "params", "intent"})
_TIME_FIELDS = frozenset({"next_attempt_at", "lease_until", "verify_until", "created_at", "updated_at", "notified_at"})
_INT_FIELDS = frozenset({"attempts", "capacity_target"})


class LedgerConflict(Exception):
    """Somebody else changed or created the record first (ETag mismatch or duplicate create)."""


class LedgerUnavailable(Exception):
    """Table Storage could not be reached or refused the request; nothing was recorded."""


def _utc(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        # TablesEntityDatetime → plain datetime (it does not survive dataclasses.replace round trips well)
        return datetime(
            moment.year,
            moment.month,
            moment.day,
            moment.hour,
            moment.minute,
            moment.second,
            moment.microsecond,
            tzinfo=UTC,
        )
    parsed = parse_time(str(value))
    if parsed is None:
        raise ValueError(f"not a timestamp: {value!r}")
    return parsed


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def to_entity(record: Record) -> dict[str, Any]:
    """A record as a Table Storage entity (lists and dicts as JSON; no property for None)."""
    entity: dict[str, Any] = {"PartitionKey": record.partition_key, "RowKey": record.row_key}
    for f in fields(record):
        if f.name == "etag":
            continue
        value = getattr(record, f.name)
        if isinstance(value, (list, dict)):
            value = json.dumps(value, separators=(",", ":"), sort_keys=True)
        elif isinstance(value, StrEnum):
            value = value.value
        if value is None:
            continue  # Table Storage has no null: an absent property reads back as None
        entity[_camel(f.name)] = value
    return entity


def from_entity(entity: Any) -> Record:
    data: dict[str, Any] = {}
    for f in fields(Record):
        if f.name == "etag":
            continue
        raw = entity.get(_camel(f.name))
        if raw is None:
            continue
        if f.name in _JSON_FIELDS:
            raw = json.loads(raw) if isinstance(raw, str) and raw else raw
        elif f.name == "state":
            raw = State(raw)
        elif f.name == "step":
            raw = Step.parse(str(raw))
        elif f.name in _TIME_FIELDS:
            raw = _utc(raw)
        elif f.name in _INT_FIELDS:
            raw = int(raw)
        data[f.name] = raw
    metadata = getattr(entity, "metadata", None) or {}
    return Record(**data, etag=metadata.get("etag"))


def _odata_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class Ledger:
    """Records and history over one table (`azure.data.tables.TableClient`)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    # -- construction -----------------------------------------------------------------------------------

    @classmethod
    def from_connection_string(cls, connection_string: str, table_name: str, **client_options: Any) -> Ledger:
        from azure.data.tables import TableClient

        from ..http import transport

        client_options.setdefault("transport", transport())
        return cls(TableClient.from_connection_string(connection_string, table_name=table_name, **client_options))

    @classmethod
    def from_endpoint(cls, endpoint: str, table_name: str, credential: Any, **client_options: Any) -> Ledger:
        from azure.data.tables import TableClient

        from ..http import transport

        client_options.setdefault("transport", transport())
        return cls(TableClient(endpoint=endpoint, table_name=table_name, credential=credential, **client_options))

    @property
    def table_name(self) -> str:
        return str(self._table.table_name)

    def ensure_table(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        try:
            self._guard(self._table.create_table)
        except LedgerConflict:
            pass
        except ResourceExistsError:  # pragma: no cover - older SDKs raise it directly
            pass

    def close(self) -> None:
        self._table.close()

    # -- live records -----------------------------------------------------------------------------------

    def get(self, scale_set_id: str, finding_code: str, target: str = SCALE_SET_TARGET) -> Record | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = self._table.get_entity(scale_set_key(scale_set_id), f"{finding_code}|{target}")
        except ResourceNotFoundError:
            return None
        except _azure_errors() as exc:
            raise _translate(exc) from exc
        return from_entity(entity)

    def records_for(self, scale_set_id: str) -> list[Record]:
        query = f"PartitionKey eq {_odata_quote(scale_set_key(scale_set_id))}"
        return [from_entity(e) for e in self._query(query)]

    def records_by_scale_set(self, subscription_id: str) -> dict[str, list[Record]]:
        """Every live record of a subscription in one paged query, keyed by `scale_set_key` (a sweep reads
        the ledger once instead of once per scale set)."""
        prefix = subscription_id.lower() + "|"
        query = (
            f"PartitionKey ge {_odata_quote(prefix)} and PartitionKey lt {_odata_quote(subscription_id.lower() + '}')}"
        )
        grouped: dict[str, list[Record]] = {}
        for entity in self._query(query):
            grouped.setdefault(str(entity["PartitionKey"]), []).append(from_entity(entity))
        return grouped

    def active_records(self) -> list[Record]:
        """Records some worker left running/verifying (anywhere in the subscription)."""
        query = f"state eq '{State.RUNNING.value}' or state eq '{State.VERIFYING.value}'"
        return [from_entity(e) for e in self._query(query) if not e["PartitionKey"].startswith(HISTORY_PREFIX)]

    def all_records(self) -> list[Record]:
        return [
            from_entity(e)
            for e in self._query(None)
            if not str(e["PartitionKey"]).startswith((HISTORY_PREFIX, STATUS_PARTITION, CLAIM_PREFIX))
        ]

    # -- status documents -------------------------------------------------------------------------------

    def save_status(self, name: str, document: dict[str, Any]) -> None:
        """Upsert a small JSON document (e.g. the last sweep summary the status endpoint shows)."""
        from azure.data.tables import UpdateMode

        entity = {"PartitionKey": STATUS_PARTITION, "RowKey": name, "Document": json.dumps(document, default=str)}
        self._guard(lambda: self._table.upsert_entity(entity, mode=UpdateMode.REPLACE))

    def load_status(self, name: str) -> dict[str, Any] | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = self._table.get_entity(STATUS_PARTITION, name)
        except ResourceNotFoundError:
            return None
        except _azure_errors() as exc:
            raise _translate(exc) from exc
        document: dict[str, Any] = json.loads(entity.get("Document") or "{}")
        return document

    def create(self, record: Record, *, previous_state: str = "", history: bool = True) -> Record:
        """Insert a new record; LedgerConflict if another worker created it first."""
        entity = to_entity(record)
        metadata = self._guard(lambda: self._table.create_entity(entity))
        saved = record.evolve(etag=metadata.get("etag"))
        if history:
            self._append_history(saved, previous_state)
        return saved

    def update(self, record: Record, *, previous_state: str | None = None, history: bool = True) -> Record:
        """Replace the record if nobody changed it since we read it (ETag), else LedgerConflict."""
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        if record.etag is None:
            raise ValueError("update needs the etag of the record as read")
        entity = to_entity(record)
        metadata = self._guard(
            lambda: self._table.update_entity(
                entity, mode=UpdateMode.REPLACE, etag=record.etag, match_condition=MatchConditions.IfNotModified
            )
        )
        saved = record.evolve(etag=metadata.get("etag"))
        if history and previous_state is not None:
            self._append_history(saved, previous_state)
        return saved

    def save(self, record: Record, *, previous_state: str = "") -> Record:
        """Create or update (with the record's ETag) and append history."""
        if record.etag is None:
            return self.create(record, previous_state=previous_state)
        return self.update(record, previous_state=previous_state)

    # -- per-scale-set claims ---------------------------------------------------------------------------

    def take_claim(self, key: str, kind: str, holder: str, *, until: datetime, now: datetime) -> bool:
        """Take (or renew) the scale set's claim of `kind` for `holder` until `until`: created if absent,
        replaced with its ETag if it is ours or its lease ran out. False if another holder's lease still runs or
        another worker took it between our read and our write (the ETag says so)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceNotFoundError
        from azure.data.tables import UpdateMode

        entity = {"PartitionKey": CLAIM_PREFIX + key, "RowKey": kind, "Holder": holder, "LeaseUntil": until}
        try:
            current = self._table.get_entity(CLAIM_PREFIX + key, kind)
        except ResourceNotFoundError:
            current = None
        except _azure_errors() as exc:
            raise _translate(exc) from exc
        try:
            if current is None:
                self._guard(lambda: self._table.create_entity(entity))
                return True
            lease = _utc(current.get("LeaseUntil"))
            if current.get("Holder") != holder and lease is not None and lease > now:
                return False
            etag = current.metadata.get("etag")
            self._guard(
                lambda: self._table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
                )
            )
            return True
        except LedgerConflict:
            return False

    def release_claim(self, key: str, kind: str, holder: str) -> None:
        """Give the claim back if `holder` still has it (with its ETag: a claim taken over is left alone)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceNotFoundError

        try:
            current = self._table.get_entity(CLAIM_PREFIX + key, kind)
        except ResourceNotFoundError:
            return
        except _azure_errors() as exc:
            raise _translate(exc) from exc
        if current.get("Holder") != holder:
            return
        etag = current.metadata.get("etag")
        with contextlib.suppress(LedgerConflict):  # taken over since: not ours to release
            self._guard(
                lambda: self._table.delete_entity(
                    CLAIM_PREFIX + key, kind, etag=etag, match_condition=MatchConditions.IfNotModified
                )
            )

    # -- history ----------------------------------------------------------------------------------------

    def _append_history(self, record: Record, previous_state: str) -> None:
        try:
            self.append_history(record, previous_state)
        except (LedgerConflict, LedgerUnavailable) as exc:
            # History is a view; losing one row must not undo or block the record it describes.
            log.error("could not append history for %s %s: %s", record.scale_set_id, record.row_key, exc)

    def append_history(self, record: Record, previous_state: str) -> None:
        """One history row for a state change (LedgerUnavailable if it could not be written)."""
        at = record.updated_at or datetime.now(UTC)
        ticks = _MAX_TICKS - int(at.timestamp() * 1000)
        entity = {
            "PartitionKey": HISTORY_PREFIX + record.partition_key,
            "RowKey": f"{ticks:013d}|{uuid.uuid4().hex[:12]}",
            "At": at,
            "ScaleSetId": record.scale_set_id,
            "ScaleSetName": record.scale_set_name.lower(),
            "FindingCode": record.finding_code,
            "Target": record.target,
            "Action": record.action,
            "State": record.state.value,
            "PreviousState": previous_state,
            "Reason": record.reason,
            "ReasonCode": record.reason_code,
            "Attempts": record.attempts,
            "InstanceIds": json.dumps(record.instance_ids),
            "Mode": record.mode,
            "CorrelationId": record.correlation_id,
            "Severity": record.severity,
            "Summary": record.summary,
            "LastError": record.last_error,
        }
        self._guard(lambda: self._table.create_entity(entity))

    def history(self, scale_set: str | None = None, limit: int = 100) -> list[HistoryEntry]:
        if scale_set:
            query = f"ScaleSetName eq {_odata_quote(scale_set.lower())}"
        else:
            query = f"PartitionKey ge '{HISTORY_PREFIX}' and PartitionKey lt 'history}}'"
        events = [self._event(e) for e in self._query(query) if str(e["PartitionKey"]).startswith(HISTORY_PREFIX)]
        events.sort(key=lambda e: e.at, reverse=True)
        return events[:limit]

    @staticmethod
    def _event(entity: Any) -> HistoryEntry:
        return HistoryEntry(
            at=_utc(entity.get("At")) or datetime.fromtimestamp(0, UTC),
            scale_set_id=entity.get("ScaleSetId", ""),
            finding_code=entity.get("FindingCode", ""),
            target=entity.get("Target", ""),
            action=entity.get("Action", ""),
            state=entity.get("State", ""),
            previous_state=entity.get("PreviousState", ""),
            reason=entity.get("Reason", ""),
            reason_code=entity.get("ReasonCode", ""),
            attempts=int(entity.get("Attempts") or 0),
            instance_ids=tuple(json.loads(entity.get("InstanceIds") or "[]")),
            mode=entity.get("Mode", ""),
            correlation_id=entity.get("CorrelationId", ""),
            severity=entity.get("Severity", ""),
            summary=entity.get("Summary", ""),
            last_error=entity.get("LastError", ""),
        )

    # -- plumbing ---------------------------------------------------------------------------------------

    def _query(self, query: str | None) -> Iterator[Any]:
        try:
            pages: Iterable[Any] = self._table.query_entities(query) if query else self._table.list_entities()
            yield from pages
        except _azure_errors() as exc:
            raise _translate(exc) from exc

    @staticmethod
    def _guard(call: Any) -> Any:
        try:
            return call()
        except _azure_errors() as exc:
            raise _translate(exc) from exc


def _azure_errors() -> type[Exception]:
    """What Table Storage (azure-core) raises. Only these mean the ledger could not do it; anything else (a
    TypeError, a KeyError) is a bug in the caller and goes up as it is, to be recorded as an internal error
    instead of being retried as if the ledger were down."""
    from azure.core.exceptions import AzureError

    return AzureError


def _translate(exc: Exception) -> Exception:
    """azure-core errors → LedgerConflict (409/412: somebody was first) or LedgerUnavailable."""
    from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError

    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, (ResourceExistsError, ResourceModifiedError)):
        return LedgerConflict(first_line)
    if isinstance(exc, HttpResponseError) and exc.status_code in (409, 412):
        return LedgerConflict(first_line)
    return LedgerUnavailable(f"{type(exc).__name__}: {first_line}")


def open_ledger(settings: Any) -> Ledger:
    """The ledger table the settings point at: a connection string locally, the managed identity in Azure."""
    if settings.storage_connection_string:
        ledger = Ledger.from_connection_string(settings.storage_connection_string, settings.ledger_table)
    elif settings.storage_table_uri or settings.storage_account_name:
        from ..credentials import default_credential

        endpoint = settings.storage_table_uri or f"https://{settings.storage_account_name}.table.core.windows.net"
        ledger = Ledger.from_endpoint(endpoint, settings.ledger_table, default_credential(endpoint, settings.client_id))
    else:
        raise LedgerUnavailable(
            "no ledger storage configured: set AzureWebJobsStorage (e.g. UseDevelopmentStorage=true with Azurite) "
            "or AzureWebJobsStorage__accountName (managed identity)"
        )
    return ledger


__all__ = [
    "HISTORY_PREFIX",
    "SCALE_SET_TARGET",
    "HistoryEntry",
    "Ledger",
    "LedgerConflict",
    "LedgerUnavailable",
    "Record",
    "State",
    "Step",
    "from_entity",
    "open_ledger",
    "scale_set_key",
    "to_entity",
]
