"""The write journal: every write request the emulator answered, its operation's outcome, and a capacity
timeline per scale set. It is the ground truth safety tests check invariants against ("no instance got
two accepted deletes", "capacity never below the floor"), independent of what the client believed.

Not an Azure feature: Azure's nearest equivalent is the activity log. Operation outcomes use ARM's
terminal statuses of an asynchronous operation, Succeeded | Failed | Canceled
(https://learn.microsoft.com/azure/azure-resource-manager/management/async-operations).

Served at `GET /_emulator/journal` (reset with `POST /_emulator/reset-journal`) and `Emulator.journal()`:

    {"writes": [{"seq", "at", "t", "method", "operationId", "path", "scaleSet": "rg/name" | null,
                 "instanceIds": [...], "status", "errorCode", "operation", "outcome", "endedAt", "endedT",
                 "outcomeError"}],
     "capacity": {"rg/name": [{"at", "t", "capacity", "live", "succeeded", "cause"}]}}

`instanceIds` are the instances the write targets (deletes, restarts, reimages, redeploys, the victims of a
capacity decrease), from the accepted operation itself, or from the request when it was refused.
`live` counts instances neither Deleting nor Failed (Creating counts); `succeeded` counts those
`Succeeded`. A capacity point is added when any of the three numbers changes: at acceptance and completion
of operations and after every scheduled platform event (creation finished, resilient retries).

Every method is called with `FleetState.lock` held or takes it; the journal has no lock of its own.
"""

from __future__ import annotations

import json
from collections import deque
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import payloads

if TYPE_CHECKING:
    from .messages import Request, Response
    from .routes import Route
    from .state import FleetState, Operation, ScaleSet

MAX_WRITES = 100_000  # oldest entries are dropped beyond this (a soak run stays far below)
MAX_POINTS = 10_000  # per scale set
_NOT_LIVE = frozenset({"deleting", "failed"})


def scale_set_key(scale_set: ScaleSet) -> str:
    return f"{scale_set.resource_group}/{scale_set.name}".lower()


class Journal:
    def __init__(self, state: FleetState) -> None:
        self._state = state
        self._writes: deque[dict[str, Any]] = deque(maxlen=MAX_WRITES)
        self._by_operation: dict[str, dict[str, Any]] = {}
        self._ended: dict[str, tuple[str, datetime | None, dict | None]] = {}  # ended before being journaled
        self._capacity: dict[str, list[dict[str, Any]]] = {}
        # scale sets written to since the last reset (sampled after events), by scale_set_key
        self._watched: dict[str, ScaleSet] = {}
        self._seq = 0

    # --- hooks -------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything; one baseline capacity point per scale set."""
        with self._state.lock:
            self._writes.clear()
            self._by_operation.clear()
            self._ended.clear()
            self._capacity = {}
            self._watched = {}
            now = self._state.clock.now()
            for scale_set in self._state.scale_sets.values():
                self._sample(scale_set, now, "baseline")

    def write(self, request: Request, route: Route | None, params: dict[str, str], response: Response) -> None:
        """One answered write request (called by the ARM pipeline after the backend answered)."""
        if route is None:
            return
        with self._state.lock:
            now = self._state.clock.now()
            operation = self._operation_of(response)
            scale_set = operation.scale_set if operation is not None else self._scale_set_of(params)
            if operation is not None and operation.instances:
                instance_ids = [vm.key for vm in operation.instances]
            else:
                instance_ids = _requested_instances(request, params)
            self._seq += 1
            entry: dict[str, Any] = {
                "seq": self._seq,
                "at": payloads.iso(now),
                "t": now.timestamp(),
                "method": request.method,
                "operationId": route.operation_id,
                "path": request.raw_path,
                "scaleSet": scale_set_key(scale_set) if scale_set is not None else None,
                "instanceIds": instance_ids,
                "status": response.status,
                "errorCode": _error_code(response) if response.status >= 400 else None,
                "operation": operation.id if operation is not None else None,
                "outcome": None,
                "endedAt": None,
                "endedT": None,
                "outcomeError": None,
            }
            if operation is not None:
                entry["outcome"] = "InProgress"
                self._by_operation[operation.id] = entry
                ended = self._ended.pop(operation.id, None)
                if ended is not None:
                    self._fill(entry, *ended)
            self._writes.append(entry)
            if scale_set is not None:
                self._watched[scale_set_key(scale_set)] = scale_set
                self._sample(scale_set, now, f"{route.operation_id} {response.status}")

    def operation_ended(self, operation: Operation) -> None:
        """An operation reached its terminal status (called by `FleetState.complete`, lock held)."""
        entry = self._by_operation.pop(operation.id, None)
        if entry is None:
            self._ended[operation.id] = (operation.status, operation.ended, operation.error)
        else:
            self._fill(entry, operation.status, operation.ended, operation.error)
        at = operation.ended or self._state.clock.now()
        self._sample(operation.scale_set, at, f"operation {operation.status}")

    def platform_event(self, at: datetime) -> None:
        """A scheduled platform event ran (lock held): sample the scale sets written to since the reset."""
        for scale_set in list(self._watched.values()):
            self._sample(scale_set, at, "platform")

    # --- export ------------------------------------------------------------------------------------

    def document(self) -> dict[str, Any]:
        with self._state.lock:
            self._state.run_due()
            # Outcomes that ended on a path that bypassed `operation_ended` are read from the operation.
            for operation_id, entry in list(self._by_operation.items()):
                operation = self._state.operations.get(operation_id)
                if operation is not None and operation.status != "InProgress":
                    ended = operation.ended or self._state.clock.now()
                    self._fill(entry, operation.status, ended, operation.error)
                    del self._by_operation[operation_id]
            return json.loads(json.dumps({"writes": list(self._writes), "capacity": self._capacity}))

    # --- internals ---------------------------------------------------------------------------------

    def _fill(self, entry: dict[str, Any], status: str, ended: datetime | None, error: dict | None) -> None:
        entry["outcome"] = status
        if ended is not None:
            entry["endedAt"] = payloads.iso(ended)
            entry["endedT"] = ended.timestamp()
        entry["outcomeError"] = (error or {}).get("code")

    def _operation_of(self, response: Response) -> Operation | None:
        url = response.headers.get("Azure-AsyncOperation") or response.headers.get("Location") or ""
        operation_id = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        return self._state.operations.get(operation_id) if operation_id else None

    def _scale_set_of(self, params: dict[str, str]) -> ScaleSet | None:
        resource_group = params.get("resource_group")
        if resource_group is None:
            return None
        if "scale_set" in params:
            return self._state.find_scale_set(resource_group, params["scale_set"], params.get("subscription"))
        if "vm" in params:
            found = self._state.find_vm(resource_group, params["vm"], params.get("subscription"))
            return found[0] if found else None
        return None

    def _sample(self, scale_set: ScaleSet, at: datetime, cause: str) -> None:
        key = scale_set_key(scale_set)
        capacity = int(scale_set.resource.get("sku", {}).get("capacity", len(scale_set.vms)))
        live = succeeded = 0
        for vm in scale_set.vms.values():
            state = vm.provisioning_state.lower()
            live += state not in _NOT_LIVE
            succeeded += state == "succeeded"
        points = self._capacity.setdefault(key, [])
        if points and (points[-1]["capacity"], points[-1]["live"], points[-1]["succeeded"]) == (
            capacity,
            live,
            succeeded,
        ):
            return
        if len(points) >= MAX_POINTS:
            del points[1]  # keep the baseline
        points.append(
            {
                "at": payloads.iso(at),
                "t": at.timestamp(),
                "capacity": capacity,
                "live": live,
                "succeeded": succeeded,
                "cause": cause,
            }
        )


def _requested_instances(request: Request, params: dict[str, str]) -> list[str]:
    if "instance" in params:
        return [params["instance"]]
    if "vm" in params:
        return [params["vm"]]
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return []
    ids = body.get("instanceIds") if isinstance(body, dict) else None
    return [str(i) for i in ids] if isinstance(ids, list) else []


def _error_code(response: Response) -> str | None:
    try:
        return str(json.loads(response.body or b"{}").get("error", {}).get("code") or "") or None
    except (ValueError, AttributeError):
        return None
