"""Azure Resource Graph (ARG) over the emulator's fleet: `POST /providers/Microsoft.ResourceGraph/resources`.

Shapes follow Microsoft's REST spec and examples (Azure/azure-rest-api-specs,
specification/resourcegraph/resource-manager/Microsoft.ResourceGraph/stable/2024-04-01/resourcegraph.json and
examples/ResourcesFirstPageQuery.json, ResourcesNextPageQuery.json): the request is
`{"subscriptions", "query", "options": {"$top", "$skip", "$skipToken", "resultFormat"}}`, the answer
`{"totalRecords", "count", "resultTruncated": "true"|"false", "$skipToken"?, "data": [...], "facets": []}`.

* Paging (learn.microsoft.com/azure/governance/resource-graph/concepts/paging-results and
  concepts/work-with-data): at most 1,000 rows per page, 100 when `$top` is absent; `$skipToken` only when
  the result can be paged, which needs an `id` column ("id field is required in the response to return the
  pages in stable sorted fashion", ResourcesFirstPageQuery.json); otherwise `resultTruncated: "true"`.
* Throttling (learn.microsoft.com/azure/governance/resource-graph/concepts/guidance-for-throttled-requests):
  a quota per user per time window ("at most 15 queries within every 5-second window"), reported on every
  answer in `x-ms-user-quota-remaining` (int) and `x-ms-user-quota-resets-after` (hh:mm:ss). Past it: 429
  with ARG's `RateLimiting` error (shape as quoted in Azure/azure-cli-extensions#3325). Every POST counts,
  pages included (unverified: the guidance does not say how ARG charges a `$skipToken` page). Whether ARG
  also sends `Retry-After` is unverified; the emulator sends only the two documented headers.
* A query it cannot evaluate: 400 `BadRequest` with details `InvalidQuery` + `ParserFailure` (shape as quoted
  in Azure/aztfexport#485 and Azure/azure-powershell#13762). A query that is valid KQL but outside the subset
  the emulator evaluates (emulator/kql.py) gets the same envelope with a detail `EmulatorUnsupported`.
* Tables and rows (learn.microsoft.com/azure/governance/resource-graph/reference/supported-tables-resources):
  `resources` holds scale sets and Flexible VMs (`properties.virtualMachineScaleSet.id`), `computeresources`
  the Uniform scale-set VMs, `resourcecontainers` the resource groups. A row is the ARM resource with
  `type` lower-cased and ARG's columns (id, name, type, tenantId, kind, location, resourceGroup, subscriptionId,
  managedBy, sku, plan, properties, tags, identity, zones, extendedLocation). ARG holds the model, not the
  instance view: no `vmHealth`, no `orchestrationServices` ("VMSS VM health status isn't currently
  supported": ARG GET/LIST API limitations, learn.microsoft.com/azure/governance/resource-graph/concepts/
  azure-resource-graph-get-list-api, as quoted in issue 12; not re-read here); VMs carry only
  `properties.extended.instanceView.powerState` (Microsoft's ARG sample "Virtual Machine Scale Set Uniform
  orchestration" reads `properties.extended.instanceView.powerState.code` from `ComputeResources`).
  `resourceGroup` is served lower-cased, as ARG shows it (unverified).
* Scope (issue 22): the request names `subscriptions`, or `managementGroups` (QueryRequest.managementGroups,
  "Azure management groups against which to execute the query", learn.microsoft.com/python/api/
  azure-mgmt-resourcegraph/azure.mgmt.resourcegraph.models.queryrequest; `az graph query --management-groups`,
  learn.microsoft.com/cli/azure/graph), or neither (tenant scope: every subscription of the fleet). A fleet
  of several subscriptions answers across those in scope, paging and quota as above. An unknown management
  group is answered 400 (unverified: the exact code ARG sends; the emulator uses `BadRequest` with an
  `EmulatorUnsupported`-style detail `ManagementGroupNotFound`).
  `resourcecontainers` also holds one row per subscription (`type` 'microsoft.resources/subscriptions',
  `name` the display name, `properties.managementGroupAncestorsChain` [{name, displayName}], as Microsoft's
  sample "Count of subscriptions per management group" reads it: learn.microsoft.com/azure/governance/
  management-groups/resource-graph-samples); `properties.state` "Enabled" (unverified shape).
* The fault plan (latency, injections, server errors) applies; its ARM throttle buckets do not.
* ARG lags ARM ("about a minute"): `lagSeconds` makes the index refresh only every N seconds of emulator
  time (rows are as of the last refresh), and `stale` pins chosen scale sets (with their instances) to what
  they were when pinned. See emulator/README.md, "Resource Graph".
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import kql, payloads
from .messages import Request, Response
from .state import FleetState, ScaleSet
from .stats import RequestLog

PATH = ("providers", "microsoft.resourcegraph", "resources")
OPERATION_ID = "Resources"
# api-versions of the stable and preview specs; azure-mgmt-resourcegraph 8.0.1 sends 2021-03-01.
API_VERSIONS = (
    "2019-04-01",
    "2020-04-01-preview",
    "2020-09-01-preview",
    "2021-03-01",
    "2021-06-01-preview",
    "2022-10-01",
    "2024-04-01",
)
MAX_PAGE = 1000  # "the maximum allowed value of 1000 returned records" (paging-results)
DEFAULT_PAGE = 100  # "By default, Resource Graph limits any query to returning only 100 records" (work-with-data)
_KEPT_RESULTS = 16  # results kept for their next pages (oldest evicted first)
TENANT_ID = "72f988bf-0000-4000-8000-00000000e001"  # the emulator's tenant (fleets carry none)

_VMSS = "microsoft.compute/virtualmachinescalesets"
_VMSS_VM = "microsoft.compute/virtualmachinescalesets/virtualmachines"
_VM = "microsoft.compute/virtualmachines"
_RG = "microsoft.resources/subscriptions/resourcegroups"
_SUB = "microsoft.resources/subscriptions"


class ResourceGraph:
    """ARG for one emulator: query evaluation, quota per user, and the stale (lagging) view."""

    def __init__(self, state: FleetState, log: RequestLog) -> None:
        self._state = state
        self._log = log
        self._lock = threading.Lock()  # quota and configuration; fleet reads take the fleet lock
        self.quota = 15
        self.window_seconds = 5.0
        self.lag_seconds = 0.0
        self.managed_by: dict[str, str] = {}  # lower-cased resource group -> managedBy
        self._windows: dict[str, tuple[float, int]] = {}  # user -> (window start, queries in it)
        self._index: tuple[datetime, dict[str, list[dict[str, Any]]]] | None = None
        self._pinned: dict[str, list[tuple[str, dict[str, Any]]]] = {}  # scale set id (lower) -> [(table, row)]
        self._results: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()  # results being paged (by token)

    # --- configuration -----------------------------------------------------------------------------

    def configure(self, options: dict[str, Any] | None) -> dict[str, Any]:
        """Apply `{"quota", "windowSeconds", "lagSeconds", "managedBy", "stale", "unstale", "refresh"}`."""
        options = dict(options or {})
        unknown = set(options) - {"quota", "windowSeconds", "lagSeconds", "managedBy", "stale", "unstale", "refresh"}
        if unknown:
            raise ValueError(f"resourceGraph: unknown keys {sorted(unknown)}")
        with self._lock:
            if "quota" in options:
                self.quota = _positive_int(options["quota"], "quota")
                self._windows.clear()
            if "windowSeconds" in options:
                self.window_seconds = _positive_float(options["windowSeconds"], "windowSeconds")
                self._windows.clear()
            if "lagSeconds" in options:
                self.lag_seconds = max(0.0, float(options["lagSeconds"]))
                self._index = None
            if "managedBy" in options:
                managed = options["managedBy"] or {}
                if not isinstance(managed, dict):
                    raise ValueError("resourceGraph.managedBy: a map of resource group -> owner id")
                self.managed_by = {str(k).lower(): str(v) for k, v in managed.items()}
            if options.get("refresh"):
                self._index = None
        for scale_set_id in options.get("stale") or []:
            self.pin(str(scale_set_id))
        for scale_set_id in options.get("unstale") or []:
            self.unpin(str(scale_set_id))
        return self.describe()

    def configure_from_fleet(self, fleet: Any) -> None:
        """Read the fleet document's optional `resourceGraph` key (a fleet path is read again)."""
        document = fleet
        if isinstance(fleet, str | Path):
            text = Path(fleet).read_text(encoding="utf-8")
            document = json.loads(text) if '"resourceGraph"' in text else None  # big fleets: parse only if needed
        with self._lock:  # a new fleet starts from the defaults
            self.quota, self.window_seconds, self.lag_seconds, self.managed_by = 15, 5.0, 0.0, {}
            self._pinned.clear()
            self._windows.clear()
            self._results.clear()
            self._index = None
        self.configure((document or {}).get("resourceGraph") if isinstance(document, dict) else None)

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {
                "quota": self.quota,
                "windowSeconds": self.window_seconds,
                "lagSeconds": self.lag_seconds,
                "managedBy": dict(self.managed_by),
                "stale": sorted(self._pinned),
                "indexedAt": self._index[0].isoformat() if self._index else None,
            }

    def pin(self, scale_set_id: str) -> None:
        """Freeze what ARG shows of one scale set (and its instances) as it is now."""
        with self._state.lock:
            self._state.run_due()
            scale_set = self._state.find_scale_set_by_id(scale_set_id)
            if scale_set is None:
                raise ValueError(f"resourceGraph.stale: no scale set {scale_set_id}")
            rows = json.loads(json.dumps([[table, row] for table, row in self._scale_set_rows(scale_set)]))
        with self._lock:
            self._pinned[scale_set.id.lower()] = [(table, row) for table, row in rows]

    def unpin(self, scale_set_id: str) -> None:
        with self._lock:
            self._pinned.pop(scale_set_id.strip().lower(), None)

    # --- the endpoint --------------------------------------------------------------------------------

    @staticmethod
    def claims(request: Request) -> bool:
        return tuple(s.lower() for s in request.segments) == PATH

    def handle(self, request: Request) -> Response:
        user = _user(request)
        if user is None:
            response = _error(
                401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."
            )
            return self._finish(request, response, throttled=False)
        fault = False
        allowed, remaining, resets_after = self._spend(user)
        quota_headers = {
            "x-ms-user-quota-remaining": str(remaining),
            "x-ms-user-quota-resets-after": _hms(resets_after),
        }
        if not allowed:
            response = _error(
                429,
                "RateLimiting",
                _support_message(request),
                details=[
                    {
                        "code": "RateLimiting",
                        "message": "Client application has been throttled and should not attempt to repeat the "
                        "request until an amount of time has elapsed. Please see "
                        "https://aka.ms/resourcegraph-throttling for help.",
                    }
                ],
            )
        else:
            response = self._injected(request)
            if response is None:
                try:
                    response = self._answer(request)
                except _ArgError as error:
                    response = error.response
            else:
                fault = True
        response.headers.update(quota_headers)
        return self._finish(request, response, throttled=not allowed, fault=fault)

    def _injected(self, request: Request) -> Response | None:
        """The fault plan applies to ARG as to ARM: `latencyMs`, `injections` (match `operation: "Resources"` or
        `pathContains: "Microsoft.ResourceGraph"`) and `serverErrorRate`, answered in ARG's envelope."""
        faults = self._state.faults
        if faults.latency_ms > 0:
            time.sleep(faults.latency_ms / 1000)
        injection = faults.injection_for(request.method, request.raw_path, OPERATION_ID)
        if injection is not None:
            headers = {"Retry-After": str(injection.retry_after)} if injection.retry_after is not None else {}
            return _error(injection.status, injection.code, injection.message, headers=headers)
        if faults.server_error():
            status = faults.server_error_status
            code = "InternalServerError" if status == 500 else "ServiceUnavailable"
            return _error(status, code, _support_message(request))
        return None

    def _finish(self, request: Request, response: Response, *, throttled: bool, fault: bool = False) -> Response:
        request_id = str(uuid.uuid4())
        correlation = request.header("x-ms-correlation-request-id") or request.header("x-ms-client-request-id")
        response.headers.update(
            {
                "Cache-Control": "no-cache",
                "x-ms-request-id": request_id,
                "x-ms-correlation-request-id": correlation or str(uuid.uuid4()),
                "x-ms-routing-request-id": f"WESTEUROPE:{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}:{request_id}",
            }
        )
        if request.header("x-ms-client-request-id"):
            response.headers["x-ms-client-request-id"] = str(request.header("x-ms-client-request-id"))
        # A query is a read, whatever its verb; it spends ARG's quota, not ARM's or Compute's buckets.
        self._log.record(OPERATION_ID, write=False, throttled=throttled, fault=fault)
        return response

    def _spend(self, user: str) -> tuple[bool, int, float]:
        """Fixed window per user (real time, as clients wait in real time): (allowed, remaining, resets after)."""
        now = time.monotonic()
        with self._lock:
            started, used = self._windows.get(user, (now, 0))
            if now - started >= self.window_seconds:
                started, used = now, 0
            resets_after = max(0.0, self.window_seconds - (now - started))
            if used >= self.quota:
                self._windows[user] = (started, used)
                return False, 0, resets_after
            used += 1
            self._windows[user] = (started, used)
            return True, self.quota - used, resets_after

    def _answer(self, request: Request) -> Response:
        version = request.query.get("api-version")
        if not version:
            raise _ArgError(
                _error(
                    400,
                    "MissingApiVersionParameter",
                    "The api-version query parameter (?api-version=) is required for all requests.",
                )
            )
        if version not in API_VERSIONS:
            raise _ArgError(
                _error(
                    400,
                    "InvalidApiVersionParameter",
                    f"The api-version '{version}' is invalid. The supported versions are '{','.join(API_VERSIONS)}'.",
                )
            )
        if request.method != "POST":
            raise _ArgError(
                _error(
                    405, "MethodNotAllowed", f"The requested resource does not support http method '{request.method}'."
                )
            )
        body = _body(request)
        scope = self._scope(request, body)
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise _ArgError(_invalid(request, "InvalidRequestContent", "'options' must be an object."))
        if options.get("resultFormat", "objectArray") != "objectArray":
            raise _ArgError(_invalid(request, "EmulatorUnsupported", "only resultFormat 'objectArray' is emulated."))
        top = _option_int(request, options, "$top", DEFAULT_PAGE, 1, MAX_PAGE)
        skip = _option_int(request, options, "$skip", 0, 0, None)
        text = body.get("query", "")
        result_id = None
        token = options.get("$skipToken")
        if token:
            skip, top, result_id = _read_token(request, token, text)
        try:
            query = kql.parse(text)
        except kql.QueryError as error:
            raise _ArgError(_query_error(request, error)) from error
        # Evaluated and serialized under the fleet lock: rows of the live view share the fleet's dicts.
        with self._state.lock, payloads.bulk_allocation():  # rows are acyclic: no GC passes over the fleet
            rows = self._results.get(result_id) if result_id else None
            if rows is None:
                rows = query.run(self._scoped(self._rows(query.table, query.type_hint, scope), scope)) if scope else []
            page = rows[skip : skip + top]
            document: dict[str, Any] = {
                "totalRecords": len(rows),
                "count": len(page),
                "resultTruncated": "false",
                "facets": [],
                "data": page,
            }
            if skip + top < len(rows):
                if "id" in rows[0]:
                    # The token captures the query's result, as ARG's does "the context of the query": later
                    # pages come from it (consistent, and not evaluated again); an evicted one is re-evaluated.
                    result_id = result_id or self._keep(rows)
                    document["$skipToken"] = _make_token(skip + top, top, text, result_id)
                else:  # without an id column ARG cannot page: it truncates (paging-results)
                    document["resultTruncated"] = "true"
            payload = json.dumps(document, separators=(",", ":")).encode()
        return Response(200, payload, {"Content-Type": "application/json; charset=utf-8"})

    def _scope(self, request: Request, body: dict[str, Any]) -> set[str]:
        """The lower-cased subscriptions the query runs over: those named that the fleet holds, those under the
        named management groups, or (neither given) every subscription of the fleet (tenant scope)."""
        subscriptions = body.get("subscriptions")
        groups = body.get("managementGroups")
        for name, value in (("subscriptions", subscriptions), ("managementGroups", groups)):
            if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
                raise _ArgError(_invalid(request, "InvalidRequestContent", f"'{name}' must be a list of strings."))
        held = set(self._state.subscriptions)
        if subscriptions:
            return {s.lower() for s in subscriptions} & held
        if groups:
            group = self._state.management_group
            scope: set[str] = set()
            for name in groups:
                if group is None or name.lower() != str(group["name"]).lower():
                    raise _ArgError(
                        _invalid(request, "ManagementGroupNotFound", f"The management group '{name}' was not found.")
                    )
                scope |= set(group["subscriptions"])
            return scope
        return held

    @staticmethod
    def _scoped(rows: Iterable[dict[str, Any]], scope: set[str]) -> Iterator[dict[str, Any]]:
        for row in rows:
            if str(row.get("subscriptionId", "")).lower() in scope:
                yield row

    def _keep(self, rows: list[dict[str, Any]]) -> str:
        result_id = uuid.uuid4().hex[:12]
        self._results[result_id] = rows
        while len(self._results) > _KEPT_RESULTS:
            self._results.popitem(last=False)
        return result_id

    # --- rows ----------------------------------------------------------------------------------------

    def _rows(
        self, table: str, type_hint: str | None = None, scope: set[str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """The table's rows (each the caller's own dict): live (lagSeconds 0) or from the index, with pinned
        scale sets substituted. `type_hint` skips building rows of other types (kql.Query.type_hint)."""
        with self._lock:
            pinned = {key: list(rows) for key, rows in self._pinned.items()}
        if self.lag_seconds > 0:
            shared = self._indexed().get(table, [])
            rows: Iterable[dict[str, Any]] = (
                dict(row) for row in shared if type_hint is None or row["type"] == type_hint
            )
        else:
            self._state.run_due()
            rows = self._live(table, type_hint, scope)
        for row in rows:
            if not pinned or _scale_set_key(row) not in pinned:
                yield row
        for rows_of_pinned in pinned.values():
            yield from (dict(row) for kind, row in rows_of_pinned if kind == table)

    def _indexed(self) -> dict[str, list[dict[str, Any]]]:
        now = self._state.run_due()
        index = self._index
        if index is None or (now - index[0]).total_seconds() >= self.lag_seconds:
            tables = {name: list(self._live(name)) for name in kql.TABLES}
            index = (now, json.loads(json.dumps(tables)))  # a copy: ARM changes must not show through
            self._index = index
        return index[1]

    def _live(
        self, table: str, type_hint: str | None = None, scope: set[str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Rows built from the fleet; `scope` (lower-cased subscriptions) skips building other subscriptions'
        rows (a large multi-subscription fleet queried one subscription at a time)."""
        state = self._state
        if table == "resourcecontainers":
            if type_hint in (None, _SUB):
                yield from self._subscription_rows()
            if type_hint not in (None, _RG):
                return
            location = next((s.location for s in state.scale_sets.values()), "westeurope")
            for (sub, key), name in sorted(state.resource_groups.items()):
                subscription = state.subscriptions.get(sub, sub)
                row = _resource_row({"id": f"/subscriptions/{subscription}/resourceGroups/{name}"}, _RG)
                row.update(
                    location=location,
                    managedBy=self.managed_by.get(key, ""),
                    properties={"provisioningState": "Succeeded"},
                )
                yield row
            return
        for (sub, _, _), scale_set in state.scale_sets.items():
            if scope is None or sub in scope:
                yield from (row for kind, row in self._scale_set_rows(scale_set, type_hint) if kind == table)

    def _subscription_rows(self) -> Iterator[dict[str, Any]]:
        state = self._state
        group = state.management_group
        for key, subscription in state.subscriptions.items():
            chain = []
            if group is not None and key in group["subscriptions"]:
                chain = [{"name": group["name"], "displayName": group["displayName"]}]
            row = _resource_row({"id": f"/subscriptions/{subscription}", "name": state.display_names[key]}, _SUB)
            row.update(
                subscriptionId=subscription,
                resourceGroup="",
                properties={"state": "Enabled", "managementGroupAncestorsChain": chain},
            )
            yield row

    @staticmethod
    def _scale_set_rows(scale_set: ScaleSet, type_hint: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        # Rows share the fleet's nested dicts: serialized under the fleet lock, copied when pinned/indexed.
        if type_hint in (None, _VMSS):
            yield "resources", _resource_row(scale_set.resource, _VMSS)
        vm_type = _VM if scale_set.flexible else _VMSS_VM
        if type_hint in (None, vm_type):
            table = "resources" if scale_set.flexible else "computeresources"
            for vm in scale_set.vms.values():
                yield table, _resource_row(vm.payload, vm_type)


class _ArgError(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def _resource_row(payload: dict[str, Any], arg_type: str) -> dict[str, Any]:
    """ARG's row for an ARM payload: its standard columns, `type` lower-cased, the model without the instance
    view (of which only the power state shows, under properties.extended)."""
    resource_id = str(payload["id"])
    parts = resource_id.split("/", 6)
    properties = payload.get("properties")
    view = properties.get("instanceView") if properties else None
    if view is not None:
        properties = dict(properties)
        del properties["instanceView"]
        for status in view.get("statuses") or ():
            if str(status.get("code", "")).lower().startswith("powerstate/"):
                properties["extended"] = {"instanceView": {"powerState": status}}
                break
    get = payload.get
    return {
        "id": resource_id,
        "name": get("name") or resource_id.rsplit("/", 1)[-1],
        "type": arg_type,
        "tenantId": TENANT_ID,
        "kind": get("kind") or "",
        "location": get("location") or "",
        "resourceGroup": parts[4].lower() if len(parts) > 4 else "",
        "subscriptionId": parts[2] if len(parts) > 2 else "",
        "managedBy": get("managedBy") or "",
        "sku": get("sku"),
        "plan": get("plan"),
        "properties": properties if properties is not None else None,
        "tags": get("tags") or {},
        "identity": get("identity"),
        "zones": get("zones"),
        "extendedLocation": get("extendedLocation"),
    }


def _scale_set_key(row: dict[str, Any]) -> str | None:
    """The lower-cased scale set id a row belongs to (for pinned scale sets), or None."""
    if row["type"] == _VMSS:
        return str(row["id"]).lower()
    if row["type"] == _VMSS_VM:
        return str(row["id"]).rsplit("/virtualMachines/", 1)[0].lower() if "/virtualMachines/" in row["id"] else None
    if row["type"] == _VM:
        owner = ((row.get("properties") or {}).get("virtualMachineScaleSet") or {}).get("id")
        return str(owner).lower() if owner else None
    return None


# --- request helpers -------------------------------------------------------------------------------------


def _user(request: Request) -> str | None:
    scheme, _, token = (request.header("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"")
    except (ValueError, UnicodeDecodeError) as error:
        raise _ArgError(
            _error(
                400,
                "InvalidRequestContent",
                f"The request content was invalid and could not be deserialized: '{error}'.",
            )
        ) from error
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        raise _ArgError(_error(400, "InvalidRequestContent", "The request content must have a string 'query'."))
    return body


def _option_int(request: Request, options: dict[str, Any], name: str, default: int, low: int, high: int | None) -> int:
    value = options.get(name)
    if value is None:
        return default
    if not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise _ArgError(_invalid(request, "InvalidRequestContent", f"'{name}' must be an integer {bound}."))
    return value


def _make_token(skip: int, top: int, query: str, result_id: str) -> str:
    state = {"skip": skip, "top": top, "query": hashlib.sha256(query.encode()).hexdigest()[:12], "result": result_id}
    return base64.b64encode(json.dumps(state).encode()).decode()


def _read_token(request: Request, token: Any, query: str) -> tuple[int, int, str | None]:
    try:
        state = json.loads(base64.b64decode(str(token).encode()))
        skip, top, digest = int(state["skip"]), int(state["top"]), str(state["query"])
        result_id = state.get("result")
    except (ValueError, KeyError, TypeError) as error:
        raise _ArgError(_invalid(request, "InvalidSkipToken", "The $skipToken is invalid.")) from error
    if digest != hashlib.sha256(query.encode()).hexdigest()[:12]:
        # "the value can be passed ... together with the same query and scopes" (QueryResponse.$skipToken)
        raise _ArgError(_invalid(request, "InvalidSkipToken", "The $skipToken belongs to another query."))
    return skip, top, str(result_id) if result_id else None


def _support_message(request: Request) -> str:
    moment = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
    correlation = request.header("x-ms-correlation-request-id") or str(uuid.uuid4())
    return f"Please provide below info when asking for support: timestamp = {moment}, correlationId = {correlation}."


def _error(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return Response.json(status, {"error": error}, headers)


def _invalid(request: Request, code: str, message: str) -> Response:
    return _error(400, "BadRequest", _support_message(request), [{"code": code, "message": message}])


def _query_error(request: Request, error: kql.QueryError) -> Response:
    detail: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.position >= 0:
        detail.update({"line": 1, "characterPositionInLine": error.position, "token": error.token})
    return _error(
        400,
        "BadRequest",
        _support_message(request),
        [
            {
                "code": "InvalidQuery",
                "message": "Query is invalid. Please refer to the documentation for the Azure Resource Graph "
                "service and fix the error before retrying.",
            },
            detail,
        ],
    )


def _hms(seconds: float) -> str:
    whole = max(0, math.ceil(seconds))
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _positive_int(value: Any, name: str) -> int:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"resourceGraph.{name}: a positive integer")
    return value


def _positive_float(value: Any, name: str) -> float:
    if not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"resourceGraph.{name}: a positive number")
    return float(value)


class ResourceGraphFront:
    """The server's app: ARG requests (and `/_emulator/resourcegraph`) here, everything else to ARM's pipeline.

    ARG sits beside the ARM pipeline rather than in it because it has its own quota and error shapes and
    must spend neither ARM's subscription buckets nor Compute's policies."""

    def __init__(self, graph: ResourceGraph, arm: Any) -> None:
        self.graph = graph
        self._arm = arm

    def handle(self, request: Request) -> Response:
        if self.graph.claims(request):
            return self.graph.handle(request)
        if [s.lower() for s in request.segments] == ["_emulator", "resourcegraph"]:
            return self._control(request)
        response = self._arm.handle(request)
        reload = [s.lower() for s in request.segments] == ["_emulator", "fleet"] and request.method == "POST"
        if reload and response.status == 200:  # a new fleet brings its own resourceGraph options
            try:
                self.graph.configure_from_fleet(json.loads(request.body or b"{}"))
            except (ValueError, TypeError) as error:
                return Response.json(400, {"error": {"code": "BadRequest", "message": str(error)}})
        return response

    def _control(self, request: Request) -> Response:
        try:
            if request.method == "POST":
                document = self.graph.configure(json.loads(request.body or b"{}"))
            else:
                document = self.graph.describe()
        except (ValueError, TypeError) as error:
            return Response.json(400, {"error": {"code": "BadRequest", "message": str(error)}})
        return Response.json(200, document)
