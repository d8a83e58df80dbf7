"""Azure Resource Graph's GET/LIST API: ARM's own Compute GET and LIST paths with `useResourceGraph=true`.

Source for every behaviour here, unless marked otherwise: MicrosoftDocs/azure-docs
`articles/governance/resource-graph/concepts/azure-resource-graph-get-list-api.md` (ms.date 05/14/2025;
learn.microsoft.com/azure/governance/resource-graph/concepts/azure-resource-graph-get-list-api).

* Routing: the flag on a supported GET routes it to ARG instead of the resource provider; "any
  unsupported/unroutable requests result in `useResourceGraph=true` ignored, and the call is automatically
  routed to the resource provider" (FAQ). Supported here: the resource types of the `resources` and
  `computeresources` tables the project reads — scale sets (point GET, lists), scale-set VMs (point GET, the
  list, the doc's "List VMSS VM (Uniform) with InstanceView") and VMs (point GET, lists, the doc's "List VMSS
  VM (Flex)" with `$filter='virtualMachineScaleSet/id' eq ...&$expand=instanceView`). Sub-resources such as
  `.../instanceView` and every write go to Compute as usual.
* Throttling: its own quota, "4k per minute, user, and subscription, on a moving window", reported in
  `x-ms-user-quota-remaining` and `x-ms-user-quota-resets-after` ("the time for a full quota reset"; format
  taken from ARG's query guidance, hh:mm:ss — unverified for GET/LIST). No Compute bucket is spent and no
  `x-ms-ratelimit-remaining-resource` is sent. "Since every request is routed through ARM before reaching ARG,
  any throttling applied by ARM will take precedence": ARM's subscription read bucket is spent (the fault
  plan's ARM buckets). Past the quota: 429 `RateLimiting` in ARG's query envelope (unverified for GET/LIST).
* `api-version` is mandatory but its value ignored ("ARG always returns results based on the latest generally
  available (GA) non-preview version"); every resource in the answer carries `apiVersion` (FAQ: "the
  `apiVersion` field of resources will be populated, if served by ARG GET/LIST").
* Known limitations: "VMSS VM health status isn't currently supported" — `vmHealth` is stripped from every
  instance view; "The running states of VM and VMSS VM extensions isn't supported" — instance views carry no
  `extensions`. Provisioning and power-state statuses stay.
* Extra headers (FAQ): `x-ms-resource-graph-request-duration` on every answer (value format unverified: a
  .NET TimeSpan here), `x-ms-arg-snapshot-timestamp` on point GETs (UTC ISO 8601, as the doc's example
  "2023-01-20T18:55:59.5610084Z").
* 422 ("Unprocessable resource request"): ARG refuses to serve a resource it could not index correctly;
  clients fall back to the resource provider. Which resources is up to the fleet:
  `"argGetList": {"unprocessable": [scale set ids]}` (a scale set's VMs are refused with it). The error code
  and message are not in the doc: `UnprocessableEntity` here is unverified.
* Freshness: "a slight delay—typically just a few seconds": the emulator answers live (no lag emulated).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .api import _authenticate, _stamp
from .compute import ComputeBackend
from .errors import ArmError
from .messages import Request, Response
from .routes import match
from .state import FleetState
from .stats import RequestLog

FLAG = "useresourcegraph"  # query names arrive lower-cased (messages.Request)
QUOTA = 4000  # per minute, user and subscription (the doc)
WINDOW_SECONDS = 60.0
# "the latest generally available (GA) non-preview version": the newest the emulator knows (api.py).
LATEST_API_VERSION = "2026-04-01"
OPERATION_PREFIX = "ArgGetList_"
# Compute GETs ARG serves (their resource types are in `resources` / `computeresources`).
SUPPORTED = {
    "VirtualMachineScaleSets_ListAll",
    "VirtualMachineScaleSets_List",
    "VirtualMachineScaleSets_Get",
    "VirtualMachineScaleSetVMs_List",
    "VirtualMachineScaleSetVMs_Get",
    "VirtualMachines_ListAll",
    "VirtualMachines_List",
    "VirtualMachines_Get",
}
_POINT_GETS = {"VirtualMachineScaleSets_Get", "VirtualMachineScaleSetVMs_Get", "VirtualMachines_Get"}
_CONFIG_KEYS = {"unprocessable", "quota", "windowSeconds"}


class ArgGetList:
    """Answers flagged Compute GETs from the fleet, outside Compute's buckets, with ARG's quota and limits."""

    def __init__(self, state: FleetState, backend: ComputeBackend, log: RequestLog) -> None:
        self._state = state
        self._backend = backend
        self._log = log
        self._lock = threading.Lock()
        self.quota = QUOTA
        self.window_seconds = WINDOW_SECONDS
        self.unprocessable: set[str] = set()  # lower-cased scale set ids
        self._calls: dict[str, deque[float]] = {}  # (user, subscription) -> monotonic times in the window

    # --- configuration -------------------------------------------------------------------------------

    def configure(self, options: dict[str, Any] | None) -> dict[str, Any]:
        options = dict(options or {})
        unknown = set(options) - _CONFIG_KEYS
        if unknown:
            raise ValueError(f"argGetList: unknown keys {sorted(unknown)}")
        with self._lock:
            if "quota" in options:
                if not isinstance(options["quota"], int) or options["quota"] < 1:
                    raise ValueError("argGetList.quota: a positive integer")
                self.quota = options["quota"]
                self._calls.clear()
            if "windowSeconds" in options:
                value = options["windowSeconds"]
                if not isinstance(value, int | float) or value <= 0:
                    raise ValueError("argGetList.windowSeconds: a positive number")
                self.window_seconds = float(value)
                self._calls.clear()
            if "unprocessable" in options:
                ids = options["unprocessable"] or []
                if not isinstance(ids, list):
                    raise ValueError("argGetList.unprocessable: a list of scale set ids")
                self.unprocessable = {str(i).strip().lower() for i in ids}
        return self.describe()

    def configure_from_fleet(self, fleet: Any) -> None:
        document = fleet
        if isinstance(fleet, str | Path):
            text = Path(fleet).read_text(encoding="utf-8")
            document = json.loads(text) if '"argGetList"' in text else None
        with self._lock:
            self.quota, self.window_seconds, self.unprocessable = QUOTA, WINDOW_SECONDS, set()
            self._calls.clear()
        self.configure(document.get("argGetList") if isinstance(document, dict) else None)

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {
                "quota": self.quota,
                "windowSeconds": self.window_seconds,
                "unprocessable": sorted(self.unprocessable),
            }

    # --- the endpoint --------------------------------------------------------------------------------

    @staticmethod
    def claims(request: Request) -> bool:
        """A GET with the flag on a path ARG serves; anything else is the resource provider's."""
        if request.method != "GET" or request.query.get(FLAG, "").lower() != "true":
            return False
        try:
            route, _ = match(request.method, request.segments)
        except ArmError:
            return False
        return route.operation_id in SUPPORTED

    def handle(self, request: Request) -> Response:
        started = time.monotonic()
        route, params = match(request.method, request.segments)
        operation = OPERATION_PREFIX + route.operation_id
        headers: dict[str, str] = {}
        throttled = fault = False
        try:
            _authenticate(request)
            if not request.query.get("api-version"):
                raise ArmError(
                    400,
                    "MissingApiVersionParameter",
                    "The api-version query parameter (?api-version=) is required for all requests.",
                )
            faults = self._state.faults
            allowed, remaining, retry_after = faults.take_token("reads")  # ARM first
            headers["x-ms-ratelimit-remaining-subscription-reads"] = str(remaining)
            if not allowed:
                throttled = True
                raise ArmError(
                    429,
                    "SubscriptionRequestsThrottled",
                    f"Number of 'read' requests for subscription '{params['subscription']}' exceeded. Please try "
                    f"again after '{retry_after}' seconds. Refer to https://aka.ms/arm-throttling",
                    headers={"Retry-After": str(retry_after)},
                )
            allowed, left, resets_after = self._spend(request, params["subscription"])
            headers["x-ms-user-quota-remaining"] = str(left)
            headers["x-ms-user-quota-resets-after"] = _hms(resets_after)
            if not allowed:
                throttled = True
                raise ArmError(
                    429,
                    "RateLimiting",
                    "Client application has been throttled and should not attempt to repeat the request until an "
                    "amount of time has elapsed.",
                )
            injection = faults.injection_for(request.method, request.raw_path, operation)
            if injection is not None:
                fault = True
                extra = {"Retry-After": str(injection.retry_after)} if injection.retry_after is not None else {}
                raise ArmError(injection.status, injection.code, injection.message, headers=extra)
            self._refuse_unprocessable(params)
            response = self._backend.call(route, params, request)  # no Compute charge: ARG answers
            if response.status == 200 and response.body:
                response = Response(response.status, _as_served_by_arg(response.body), response.headers)
                if route.operation_id in _POINT_GETS:
                    headers["x-ms-arg-snapshot-timestamp"] = _timestamp(self._state.clock.now())
        except ArmError as error:
            headers.update(error.headers)
            response = Response.json(error.status, error.envelope())
        headers["x-ms-resource-graph-request-duration"] = _timespan(time.monotonic() - started)
        response.headers.update(headers)
        _stamp(response, request)
        self._log.record(operation, write=False, throttled=throttled, fault=fault)
        return response

    def _refuse_unprocessable(self, params: dict[str, str]) -> None:
        if not self.unprocessable:
            return
        targets: list[str] = []
        if "scale_set" in params:
            scale_set = self._state.find_scale_set(
                params.get("resource_group", ""), params["scale_set"], params.get("subscription")
            )
            targets.append(scale_set.id if scale_set else "")
        elif "vm" in params:
            found = self._state.find_vm(params.get("resource_group", ""), params["vm"], params.get("subscription"))
            targets.append(found[0].id if found else "")
        else:  # a list: refused if it would hold a resource ARG could not index
            targets.extend(
                s.id for s in self._state.scale_sets_in(params.get("resource_group"), params.get("subscription"))
            )
        hit = next((t for t in targets if t and t.lower() in self.unprocessable), None)
        if hit is not None:
            raise ArmError(
                422,
                "UnprocessableEntity",
                f"Azure Resource Graph cannot serve '{hit}' at this time; retry without useResourceGraph=true.",
            )

    def _spend(self, request: Request, subscription: str) -> tuple[bool, int, float]:
        """Moving window per user and subscription: (allowed, remaining, seconds to a full quota)."""
        user = (request.header("authorization") or "").partition(" ")[2]
        key = f"{hash(user)}|{subscription.lower()}"
        now = time.monotonic()
        with self._lock:
            calls = self._calls.setdefault(key, deque())
            while calls and now - calls[0] >= self.window_seconds:
                calls.popleft()
            allowed = len(calls) < self.quota
            if allowed:
                calls.append(now)
            resets_after = self.window_seconds - (now - calls[-1]) if calls else 0.0
            return allowed, max(0, self.quota - len(calls)), resets_after


def _as_served_by_arg(body: bytes) -> bytes:
    document = json.loads(body)
    items = document.get("value") if isinstance(document, dict) and "value" in document else [document]
    for item in items or []:
        if not isinstance(item, dict):
            continue
        item["apiVersion"] = LATEST_API_VERSION
        view = (item.get("properties") or {}).get("instanceView")
        if isinstance(view, dict):
            view.pop("vmHealth", None)  # "VMSS VM health status isn't currently supported"
            view.pop("extensions", None)  # "The running states of VM and VMSS VM extensions isn't supported"
    return json.dumps(document, separators=(",", ":")).encode()


def _hms(seconds: float) -> str:
    whole = max(0, int(seconds + 0.999))
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _timespan(seconds: float) -> str:
    ticks = int(seconds * 10_000_000)
    whole, fraction = divmod(ticks, 10_000_000)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}.{fraction:07d}"


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


class ArgGetListFront:
    """In front of the server's app: flagged GETs ARG serves go to `ArgGetList`, the rest on as before;
    `/_emulator/arggetlist` reads (GET) or changes (POST) its configuration."""

    def __init__(self, getlist: ArgGetList, inner: Any) -> None:
        self.getlist = getlist
        self._inner = inner

    def handle(self, request: Request) -> Response:
        if self.getlist.claims(request):
            return self.getlist.handle(request)
        segments = [s.lower() for s in request.segments]
        if segments == ["_emulator", "arggetlist"]:
            try:
                if request.method == "POST":
                    document = self.getlist.configure(json.loads(request.body or b"{}"))
                else:
                    document = self.getlist.describe()
            except (ValueError, TypeError) as error:
                return Response.json(400, {"error": {"code": "BadRequest", "message": str(error)}})
            return Response.json(200, document)
        response = self._inner.handle(request)
        if segments == ["_emulator", "fleet"] and request.method == "POST" and response.status == 200:
            try:  # a new fleet brings its own argGetList options
                self.getlist.configure_from_fleet(json.loads(request.body or b"{}"))
            except (ValueError, TypeError) as error:
                return Response.json(400, {"error": {"code": "BadRequest", "message": str(error)}})
        return response
