"""Each subscription's Activity Log: the writes the emulator answered, with their caller, and the list API.

Recording. Every write through ARM's pipeline (PATCH/PUT/POST/DELETE on a scale set, a scale-set VM or a VM)
becomes one administrative event, shaped as Microsoft's REST example of `ActivityLogs_List` shows events
(Azure/azure-rest-api-specs specification/monitor/resource-manager/Microsoft.Insights/Insights/ActivityLogs/
examples/2015-04-01/GetActivityLogsFiltered.json): `operationName` is the RBAC action
(`Microsoft.Compute/virtualMachineScaleSets/setOrchestrationServiceState/action`, the signal of Microsoft's
repairs-state alert: learn.microsoft.com/azure/virtual-machine-scale-sets/alert-rules-automatic-repairs-service-state),
`status` Succeeded (2xx but 202), Accepted (202) or Failed. Simplifications (unverified against captures):
one EndRequest event per request, no Started event and no later Succeeded event for a long-running operation;
`properties.requestbody` carries the request body, as Activity Log exports show for writes.

The caller is read from the bearer token as the Activity Log shows callers ("the UPN claim or SPN claim based
on availability", learn.microsoft.com/azure/azure-monitor/platform/activity-log-schema): an unsigned JWT's
`upn`, else its `appid`, else its `oid`, with those claims under the names the REST example uses. A token that
is not a JWT (the project's own: credentials.StaticTokenCredential) is a service principal, named by a GUID
derived from the token, so the same token is always the same caller.

Seeding. A fleet may carry `"activityLog": [event, ...]` in the same shape (missing fields are filled in; its
timestamps move with the fleet's `capturedAt` like every other timestamp): e.g. a scale set suspended by
"alice@contoso.com" two days before the capture. A fleet of several subscriptions (issue 22) keeps the one
top-level `activityLog`: each event belongs to the subscription its `resourceId` names, and an event naming a
subscription the fleet does not hold is refused with a clear error (it could never be listed).

Per subscription. The Activity Log is a subscription's: `ActivityLogs_List` lists "the Activity Logs for the
subscription" in its path (learn.microsoft.com/rest/api/monitor/activity-logs/list), so the list for one
subscription of the fleet answers that subscription's events only, and a subscription the fleet does not hold
answers 404 SubscriptionNotFound, as the rest of the emulator does (errors.subscription_not_found; ARM's code for
an unknown subscription; the message text is unverified).

Listing. GET /subscriptions/{id}/providers/Microsoft.Insights/eventtypes/management/values
?api-version=2015-04-01&$filter=eventTimestamp ge '…' [and eventTimestamp le '…'] [and resourceUri eq '…' |
resourceGroupName eq '…' | resourceProvider eq '…' | correlationId eq '…'] [&$select=a,b]: the filter shapes
the REST reference allows ("$filter … requires at least the start date/time"); newest first (unverified), paged
with `nextLink`. The API sits beside Compute's pipeline (no Compute buckets), checks the bearer token and the
api-version, and honours the fault plan's injections by operation `ActivityLogs_List` (a 403 there is how a
test takes the read away: AuthorizationFailed for `microsoft.insights/eventtypes/values/read` over
/providers/microsoft.insights/eventtypes/management, as azure-sdk-for-java's monitor tests record it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from . import payloads
from .clock import Clock
from .errors import ArmError, subscription_not_found
from .faults import FaultPlan
from .messages import Request, Response
from .stats import RequestLog

API_VERSION = "2015-04-01"
SET_ORCHESTRATION_SERVICE_STATE = "Microsoft.Compute/virtualMachineScaleSets/setOrchestrationServiceState/action"
OPERATION_ID = "ActivityLogs_List"
PAGE_SIZE = 200
_UPN = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"
_OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
_NAME = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
_CLAUSE = re.compile(r"^\s*(\w+)\s+(eq|ge|le)\s+'([^']*)'\s*$", re.IGNORECASE)
_SEGMENT = r"[^/]+"
# (method, path pattern after the subscription) -> (operation, how many segments name the resource)
_WRITES: list[tuple[str, re.Pattern[str], str]] = [
    (m, re.compile(p, re.IGNORECASE), op)
    for m, p, op in [
        ("POST", rf"^(.*/virtualMachineScaleSets/{_SEGMENT})/setOrchestrationServiceState$",
         "Microsoft.Compute/virtualMachineScaleSets/setOrchestrationServiceState/action"),
        ("POST", rf"^(.*/virtualMachineScaleSets/{_SEGMENT})/(delete|scaleOut|restart|reimage|redeploy)$",
         "Microsoft.Compute/virtualMachineScaleSets/{1}/action"),
        ("POST", rf"^(.*/virtualMachineScaleSets/{_SEGMENT}/virtualMachines/{_SEGMENT})/(restart|reimage|redeploy)$",
         "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/{1}/action"),
        ("DELETE", rf"^(.*/virtualMachineScaleSets/{_SEGMENT}/virtualMachines/{_SEGMENT})$",
         "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/delete"),
        ("PATCH", rf"^(.*/virtualMachineScaleSets/{_SEGMENT})$", "Microsoft.Compute/virtualMachineScaleSets/write"),
        ("PUT", rf"^(.*/virtualMachineScaleSets/{_SEGMENT})$", "Microsoft.Compute/virtualMachineScaleSets/write"),
        ("POST", rf"^(.*/virtualMachines/{_SEGMENT})/(restart|reimage|redeploy)$",
         "Microsoft.Compute/virtualMachines/{1}/action"),
        ("DELETE", rf"^(.*/virtualMachines/{_SEGMENT})$", "Microsoft.Compute/virtualMachines/delete"),
    ]
]  # fmt: skip


def _jwt_claims(token: str) -> dict[str, Any] | None:
    """The payload of an unsigned (or any) JWT, without checking a signature; None when it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def caller_of(request: Request) -> tuple[str, dict[str, str]]:
    """(caller, claims) as the Activity Log would show the request's identity."""
    token = (request.header("authorization") or "").partition(" ")[2].strip()
    claims = _jwt_claims(token)
    if claims is None:  # the project's own token: a service principal with a stable id
        principal = str(uuid.UUID(bytes=hashlib.sha256(token.encode()).digest()[:16], version=4))
        return principal, {"appid": principal, _OID: principal}
    shown: dict[str, str] = {}
    if claims.get("upn"):
        shown[_UPN] = shown[_NAME] = str(claims["upn"])
    if claims.get("appid"):
        shown["appid"] = str(claims["appid"])
    if claims.get("oid"):
        shown[_OID] = str(claims["oid"])
    if claims.get("name"):
        shown["name"] = str(claims["name"])
    caller = str(claims.get("upn") or claims.get("appid") or claims.get("oid") or "")
    return caller, shown


def unsigned_jwt(**claims: Any) -> str:
    """A token a test or a demo can send as a person (`upn=`) or an app (`appid=`): alg none, no signature."""

    def part(document: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.sig"


def seed(resource_id: str, caller: str, at: datetime, action: str = "Suspend", **claims: str) -> dict[str, Any]:
    """A fleet's `activityLog` entry: `caller` called setOrchestrationServiceState with `action` at `at`."""
    entry = event(
        subscription_id=resource_id.split("/")[2] if resource_id.count("/") > 2 else "",
        resource_id=resource_id,
        operation=SET_ORCHESTRATION_SERVICE_STATE,
        at=at,
        caller=caller,
        claims={_UPN: caller, _NAME: caller} if "@" in caller else {"appid": caller, **claims},
        sub_status="OK (HTTP Status Code: 200)",
        body={"serviceName": "AutomaticRepairs", "action": action},
    )
    return {k: v for k, v in entry.items() if k not in ("eventDataId", "id", "correlationId", "operationId")}


def _status(code: int) -> tuple[str, str]:
    if code >= 400:
        return "Failed", f"HTTP Status Code: {code}"
    if code == 202:
        return "Accepted", "Accepted (HTTP Status Code: 202)"
    return "Succeeded", f"OK (HTTP Status Code: {code})"


def event(
    *,
    subscription_id: str,
    resource_id: str,
    operation: str,
    at: datetime,
    caller: str,
    claims: dict[str, str] | None = None,
    status: str = "Succeeded",
    sub_status: str = "",
    method: str = "POST",
    body: Any = None,
    correlation_id: str = "",
) -> dict[str, Any]:
    """One administrative event, in the REST example's shape."""
    event_id = str(uuid.uuid4())
    correlation = correlation_id or str(uuid.uuid4())
    ticks = int((at - datetime(1, 1, 1, tzinfo=at.tzinfo)).total_seconds() * 10_000_000)
    group = re.search(r"/resourceGroups/([^/]+)", resource_id, re.IGNORECASE)
    provider = re.search(r"/providers/([^/]+)/([^/]+)", resource_id, re.IGNORECASE)
    properties: dict[str, Any] = {"statusCode": sub_status.split(" (")[0] or status, "eventCategory": "Administrative"}
    if body is not None:
        properties["requestbody"] = json.dumps(body) if not isinstance(body, str) else body
    return {
        "authorization": {"action": operation, "scope": resource_id},
        "caller": caller,
        "channels": "Operation",
        "claims": dict(claims or {}),
        "correlationId": correlation,
        "description": "",
        "eventDataId": event_id,
        "eventName": {"value": "EndRequest", "localizedValue": "End request"},
        "category": {"value": "Administrative", "localizedValue": "Administrative"},
        "eventTimestamp": payloads.iso(at),
        "httpRequest": {"method": method, "clientIpAddress": "127.0.0.1", "clientRequestId": str(uuid.uuid4())},
        "id": f"{resource_id}/events/{event_id}/ticks/{ticks}",
        "level": "Informational",
        "operationId": correlation,
        "operationName": {"value": operation, "localizedValue": operation},
        "properties": properties,
        "resourceGroupName": group.group(1) if group else "",
        "resourceProviderName": {"value": provider.group(1) if provider else "", "localizedValue": ""},
        "resourceType": {"value": "/".join(provider.groups()) if provider else "", "localizedValue": ""},
        "resourceId": resource_id,
        "status": {"value": status, "localizedValue": status},
        "subStatus": {"value": sub_status.split(" (")[0], "localizedValue": sub_status},
        "submissionTimestamp": payloads.iso(at),
        "subscriptionId": subscription_id,
    }


def _error(status: int, code: str, message: str) -> Response:
    return Response.json(status, {"error": {"code": code, "message": message}})


class ActivityLog:
    """The events of every subscription of the fleet, newest last in memory; each subscription's served newest first.

    `subscription_id` is the fleet's first (or only) subscription; `subscriptions` every subscription of the fleet
    (lower-cased id -> as written; FleetState.subscriptions), none given: the first one only."""

    def __init__(
        self,
        clock: Clock,
        faults: Callable[[], FaultPlan],
        subscription_id: Callable[[], str],
        log: RequestLog,
        subscriptions: Callable[[], Mapping[str, str]] | None = None,
    ) -> None:
        self._clock = clock
        self._faults = faults
        self._subscription_id = subscription_id
        self._subscriptions = subscriptions or (lambda: {subscription_id().lower(): subscription_id()})
        self._log = log
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []

    # -- the Python API ------------------------------------------------------------------------------

    def events(self, subscription_id: str | None = None) -> list[dict[str, Any]]:
        """Every event, or those of one subscription (oldest first)."""
        with self._lock:
            rows = [e for e in self._events if subscription_id is None or _in(e, subscription_id)]
            return json.loads(json.dumps(rows))

    def _owner(self, resource_id: str) -> str:
        """The subscription (as the fleet writes it) `resource_id` lives in; the first one for an id naming none.
        An id naming a subscription outside the fleet is a ValueError: its event could never be listed."""
        parts = resource_id.split("/")
        if len(parts) > 2 and parts[1].lower() == "subscriptions" and parts[2]:
            known = self._subscriptions()
            if parts[2].lower() not in known:
                raise ValueError(
                    f"activityLog: {resource_id} names subscription {parts[2]}, which is not in the fleet "
                    f"({', '.join(known.values())})"
                )
            return known[parts[2].lower()]
        return self._subscription_id()

    def add(self, entry: dict[str, Any]) -> None:
        """One event (missing fields filled in from its resourceId, operation, caller and time)."""
        filled = self._filled(entry)
        with self._lock:
            self._events.append(filled)

    def _filled(self, entry: dict[str, Any]) -> dict[str, Any]:
        resource_id = str(entry.get("resourceId") or (entry.get("authorization") or {}).get("scope") or "")
        operation = entry.get("operationName")
        operation = str(operation.get("value") if isinstance(operation, dict) else operation or "")
        at = payloads.parse_time(str(entry.get("eventTimestamp") or payloads.iso(self._clock.now())))
        status = entry.get("status")
        base = event(
            subscription_id=self._owner(resource_id),
            resource_id=resource_id,
            operation=operation,
            at=at,
            caller=str(entry.get("caller") or ""),
            status=str(status.get("value") if isinstance(status, dict) else status or "Succeeded"),
        )
        base.update({k: v for k, v in entry.items() if k not in ("operationName", "status", "subscriptionId")})
        return base

    def configure_from_fleet(self, fleet: Any) -> None:
        """A new fleet brings its own `activityLog` (a fleet path is read again, parsed only if it has one)."""
        document = fleet
        if isinstance(fleet, str | Path):
            text = Path(fleet).read_text(encoding="utf-8")
            document = json.loads(text) if '"activityLog"' in text else None
        seeds = (document.get("activityLog") or []) if isinstance(document, dict) else []
        captured = document.get("capturedAt") if isinstance(document, dict) else None
        if captured:
            seeds = payloads.shift_timestamps(seeds, self._clock.now() - payloads.parse_time(captured))
        filled = []
        for index, seed in enumerate(seeds):
            if not isinstance(seed, dict):
                raise ValueError(f"activityLog[{index}]: expected an event object, got {type(seed).__name__}")
            filled.append(self._filled(seed))
        with self._lock:  # all or nothing: a refused seed leaves the previous log as it was
            self._events = filled

    # -- recording writes ----------------------------------------------------------------------------

    def record(self, request: Request, response: Response) -> None:
        """The write `request` answered with `response`, if it is one the Activity Log shows."""
        path = request.raw_path
        for method, pattern, operation in _WRITES:
            if request.method != method:
                continue
            found = pattern.match(path)
            if found is None:
                continue
            resource_id = found.group(1)
            operation = (
                operation.replace("{1}", found.group(2)) if found.lastindex and found.lastindex > 1 else operation
            )
            caller, claims = caller_of(request)
            status, sub_status = _status(response.status)
            try:
                body = json.loads(request.body) if request.body.strip() else None
            except (ValueError, UnicodeDecodeError):
                body = None
            entry = event(
                subscription_id=self._owner(resource_id),
                resource_id=resource_id,
                operation=operation,
                at=self._clock.now(),
                caller=caller,
                claims=claims,
                status=status,
                sub_status=sub_status,
                method=request.method,
                body=body,
                correlation_id=request.header("x-ms-correlation-request-id") or "",
            )
            with self._lock:
                self._events.append(entry)
            return

    # -- the list API ----------------------------------------------------------------------------------

    def claims(self, request: Request) -> bool:
        s = [p.lower() for p in request.segments]
        return len(s) == 7 and s[0] == "subscriptions" and s[2:] == [
            "providers", "microsoft.insights", "eventtypes", "management", "values"
        ]  # fmt: skip

    def handle(self, request: Request) -> Response:
        fault = False
        try:
            response = self._list(request)
        except ArmError as error:
            fault = error.status not in (400, 401)
            response = Response.json(error.status, error.envelope(), error.headers)
        response.headers.setdefault("x-ms-request-id", str(uuid.uuid4()))
        self._log.record(OPERATION_ID, write=False, throttled=response.status == 429, fault=fault)
        return response

    def _list(self, request: Request) -> Response:
        if request.method != "GET":
            raise ArmError(
                405, "MethodNotAllowed", f"The requested resource does not support http method '{request.method}'."
            )
        scheme, _, token = (request.header("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ArmError(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
        version = request.query.get("api-version")
        if version != API_VERSION:  # the one version ActivityLogs_List has (unverified: the message)
            raise ArmError(
                400,
                "InvalidApiVersionParameter",
                f"The api-version '{version}' is invalid. The supported versions are '{API_VERSION}'.",
            )
        subscription = request.segments[1]
        if subscription.lower() not in self._subscriptions():
            raise subscription_not_found(subscription)
        injection = self._faults().injection_for("GET", request.raw_path, OPERATION_ID)
        if injection is not None:
            extra = {"Retry-After": str(injection.retry_after)} if injection.retry_after is not None else {}
            raise ArmError(injection.status, injection.code, injection.message, headers=extra)
        wanted = _parse_filter(request.query.get("$filter"))
        with self._lock:
            rows = [e for e in self._events if _in(e, subscription) and _matches(e, wanted)]
        rows.sort(key=lambda e: str(e.get("eventTimestamp") or ""), reverse=True)
        start = int(request.query.get("$skiptoken") or 0)
        page = rows[start : start + PAGE_SIZE]
        select = [s.strip() for s in (request.query.get("$select") or "").split(",") if s.strip()]
        if select:
            page = [{k: e[k] for k in select if k in e} for e in page]
        document: dict[str, Any] = {"value": page}
        if start + PAGE_SIZE < len(rows):
            query = {k: v for k, v in request.query.items() if k != "$skiptoken"}
            query["$skiptoken"] = str(start + PAGE_SIZE)
            host = request.header("host") or "127.0.0.1"
            document["nextLink"] = f"https://{host}{request.raw_path}?{urlencode(query)}"
        return Response.json(200, document)


def _parse_filter(text: str | None) -> dict[str, Any]:
    """The allowed `$filter` shapes; a missing start time or an unknown field is ARM's 400 (message unverified)."""
    if not text:
        raise ArmError(400, "BadRequest", "The $filter query parameter is required and must contain a start time.")
    wanted: dict[str, Any] = {}
    for clause in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        found = _CLAUSE.match(clause)
        if found is None:
            raise ArmError(400, "BadRequest", f"The $filter clause '{clause}' is not supported.")
        name, op, value = found.group(1).lower(), found.group(2).lower(), found.group(3)
        if name == "eventtimestamp" and op in ("ge", "le"):
            try:
                wanted[op] = payloads.parse_time(value)
            except ValueError as error:
                raise ArmError(400, "BadRequest", f"The $filter time '{value}' is invalid.") from error
        elif op == "eq" and name in (
            "resourceuri",
            "resourceid",
            "resourcegroupname",
            "resourceprovider",
            "correlationid",
        ):
            wanted[name] = value.lower()
        else:
            raise ArmError(400, "BadRequest", f"The $filter clause '{clause}' is not supported.")
    if "ge" not in wanted:
        raise ArmError(400, "BadRequest", "The $filter must contain a start time: eventTimestamp ge '<time>'.")
    return wanted


def _in(entry: dict[str, Any], subscription_id: str) -> bool:
    return str(entry.get("subscriptionId") or "").lower() == subscription_id.lower()


def _matches(entry: dict[str, Any], wanted: dict[str, Any]) -> bool:
    at = payloads.parse_time(str(entry.get("eventTimestamp")))
    if at < wanted["ge"] or ("le" in wanted and at > wanted["le"]):
        return False
    resource = str(entry.get("resourceId") or "").lower()
    for name in ("resourceuri", "resourceid"):
        if name in wanted and resource != wanted[name]:
            return False
    if (
        "resourcegroupname" in wanted
        and str(entry.get("resourceGroupName") or "").lower() != wanted["resourcegroupname"]
    ):
        return False
    provider = entry.get("resourceProviderName") or {}
    if "resourceprovider" in wanted and str(provider.get("value") or "").lower() != wanted["resourceprovider"]:
        return False
    return "correlationid" not in wanted or str(entry.get("correlationId") or "").lower() == wanted["correlationid"]


class ActivityLogFront:
    """The server's app: Activity Log queries here; everything else to the next app, whose writes are recorded."""

    def __init__(self, activity_log: ActivityLog, inner: Any) -> None:
        self.activity_log = activity_log
        self._inner = inner

    def handle(self, request: Request) -> Response:
        if self.activity_log.claims(request):
            return self.activity_log.handle(request)
        response = self._inner.handle(request)
        write = request.method != "GET" and bool(request.segments) and request.segments[0] != "_emulator"
        reload = [s.lower() for s in request.segments] == ["_emulator", "fleet"] and request.method == "POST"
        if write and response.status not in (401, 404, 405, 429):  # ARM never reached the provider: no event
            self.activity_log.record(request, response)
        elif reload and response.status == 200:
            try:
                self.activity_log.configure_from_fleet(json.loads(request.body or b"{}"))
            except (ValueError, TypeError) as error:
                return Response.json(400, {"error": {"code": "BadRequest", "message": str(error)}})
        return response
