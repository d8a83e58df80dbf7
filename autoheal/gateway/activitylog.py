"""Who suspended automatic repairs: the subscription's Activity Log, read through `azure-mgmt-monitor`.

A scale set's `AutomaticRepairs` service reads `Suspended` both when the platform gave up after repeated
failed repairs and when a person ran `az vmss set-orchestration-service-state --action Suspend`. The
instance view cannot tell them apart; the Activity Log can. Microsoft's own alert for the repairs service
state listens to exactly this signal: the operation "Sets the state of an orchestration service in a Virtual
Machine Scale set", `Microsoft.Compute/virtualMachineScaleSets/setOrchestrationServiceState/action`, status
Succeeded, which fires "every time the ServiceState for Automatic Repairs is updated", the platform's own
suspensions included (learn.microsoft.com/azure/virtual-machine-scale-sets/
alert-rules-automatic-repairs-service-state).

The read: `ActivityLogs_List`, GET /subscriptions/{id}/providers/Microsoft.Insights/eventtypes/management/values
?api-version=2015-04-01&$filter=eventTimestamp ge '…' and eventTimestamp le '…' and resourceUri eq '…' (the
only filter shapes the API allows; Azure/azure-rest-api-specs specification/monitor/…/ActivityLogs/examples/
2015-04-01/GetActivityLogsFiltered.json shows the answer). The operation is filtered here, not by Azure.
RBAC: `Microsoft.Insights/eventtypes/values/read` ("List Activity Log events (management events) in a
subscription"; azure-monitor roles-permissions-security; a 403 names it with scope
/providers/microsoft.insights/eventtypes/management, azure-sdk-for-java monitor tests). The Reader role has it.

Budget: the read is an ARM read (ARM's subscription read bucket, 250 refilled at 25/s per principal:
learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling). Microsoft
documents no limit of the Activity Log API of its own (unverified); the tool spends at most
`READS_PER_MINUTE` of its own bucket on it, one read per suspended scale set evaluated, so a subscription of
suspended scale sets never turns into a burst. A read the bucket cannot pay before the sweep's deadline is not
made: the scale set is held ("could not read") and asked again next sweep, never resumed blind.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..model import Suspender, Suspension, iso, parse_time
from .clients import ARM_SCOPE, ArmConnection
from .compute import DEADLINE, ArmError, ArmMeter, _error_from_http, requires
from .policies import arm_policies

if TYPE_CHECKING:
    from azure.mgmt.monitor import MonitorManagementClient

log = logging.getLogger("autoheal.gateway.activitylog")

OPERATION = "Microsoft.Compute/virtualMachineScaleSets/setOrchestrationServiceState/action"
API_VERSION = "2015-04-01"  # what azure-mgmt-monitor 7.0.0 sends for ActivityLogs_List (the emulator accepts only it)
RETENTION = timedelta(days=90)  # "Activity log events are retained in Azure for 90 days" (activity-log docs)
DEFAULT_LOOKBACK = RETENTION
READS_PER_MINUTE = 30.0  # our own choice: far below ARM's read bucket (unverified: no documented Activity Log limit)
BURST = 10.0
SELECT = "eventTimestamp,operationName,caller,claims,status,properties,correlationId,httpRequest"
_OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
_UPN = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"


class ActivityLogBudget:
    """A token bucket of our own for Activity Log reads (`READS_PER_MINUTE`, burst `BURST`)."""

    def __init__(
        self,
        per_minute: float = READS_PER_MINUTE,
        burst: float = BURST,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("the Activity Log budget needs a positive refill and a burst of at least 1")
        self.per_minute = per_minute
        self.capacity = burst
        self._tokens = burst
        self._monotonic = monotonic
        self._sleep = sleep
        self._at = monotonic()
        self._lock = threading.Lock()
        self.spent = 0
        self.refused = 0

    def acquire(self, deadline: float | None = None) -> bool:
        """Take a token, waiting for the refill unless that would pass `deadline`; False when it would."""
        with self._lock:
            now = self._monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.per_minute / 60.0)
            self._at = now
            wait = 0.0 if self._tokens >= 1 else (1 - self._tokens) * 60.0 / self.per_minute
            if deadline is not None and now + wait > deadline:
                self.refused += 1
                return False
            self._tokens -= 1  # may go below zero: the wait below pays it back
            self.spent += 1
        if wait > 0:
            self._sleep(wait)
        return True

    def figures(self) -> dict[str, Any]:
        with self._lock:
            return {"perMinute": self.per_minute, "spent": self.spent, "refused": self.refused}


# -- what the events say (pure) ----------------------------------------------------------------------------


def _value(node: Any) -> str:
    """`{"value": "X", "localizedValue": "…"}` or "X" → "X"."""
    if isinstance(node, Mapping):
        return str(node.get("value") or "")
    return str(node or "")


def _parse_time(value: Any) -> datetime | None:
    return parse_time(value)


def _request_action(event: Mapping[str, Any]) -> str:
    """Suspend / Resume when the event carries the request body (`properties.requestbody`; seen on Activity Log
    write events, not documented for this operation: unverified), else ''."""
    body = (event.get("properties") or {}).get("requestbody") or (event.get("properties") or {}).get("requestBody")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return ""
    action = body.get("action") if isinstance(body, Mapping) else None
    return str(action or "").capitalize() if str(action or "").lower() in ("suspend", "resume") else ""


def _is_platform(caller: str) -> bool:
    """The platform's own call (Microsoft documents that its suspensions raise this event, not the caller it
    shows): no caller, or a resource provider's namespace ("Microsoft.Compute"), never a UPN or an id.
    Unverified: no public capture of a platform suspension's Activity Log entry exists."""
    return not caller or caller.lower().startswith("microsoft.")


def caller_ids(event: Mapping[str, Any]) -> set[str]:
    claims = event.get("claims") if isinstance(event.get("claims"), Mapping) else {}
    assert isinstance(claims, Mapping)
    ids = {str(event.get("caller") or "")}
    for key in ("appid", "oid", _OID, "upn", _UPN):
        if claims.get(key):
            ids.add(str(claims[key]))
    return {i.lower() for i in ids if i}


def who_suspended(
    events: Iterable[Mapping[str, Any]], *, since: datetime, own_ids: set[str], changed_at: datetime | None = None
) -> Suspension:
    """The latest setOrchestrationServiceState call on the scale set in the window, and what it means.

    - none in the window: no person or app suspended it since `since` (`NO_CALLER`), unless the service's own
      `lastStatusChangeTime` is older than the window: then who did cannot be read (`UNKNOWN`);
    - the latest was a Resume (its request body), or ours (we only ever resume): the platform suspended it since;
    - the latest came from the platform (no caller, or a resource provider): `NO_CALLER`;
    - otherwise a person (the caller is a UPN) or another app or identity (an id) decided: theirs to resume.
    Failed calls changed nothing and are skipped.
    """
    calls = [
        e
        for e in events
        if _value(e.get("operationName")).lower() == OPERATION.lower() and _value(e.get("status")).lower() != "failed"
    ]
    timed = [(t, e) for e in calls if (t := _parse_time(e.get("eventTimestamp"))) is not None]
    if not timed:
        if changed_at is not None and changed_at < since:
            return Suspension(Suspender.UNKNOWN, at=changed_at, since=since)
        return Suspension(Suspender.NO_CALLER, since=since)
    at, latest = max(timed, key=lambda pair: pair[0])
    caller = str(latest.get("caller") or "")
    action = _request_action(latest)
    if action == "Resume" or caller_ids(latest) & own_ids or _is_platform(caller):
        return Suspension(Suspender.NO_CALLER, caller=caller, at=at, action=action, since=since)
    suspender = Suspender.PERSON if "@" in caller else Suspender.PRINCIPAL
    return Suspension(suspender, caller=caller, at=at, action=action, since=since)


def token_ids(token: str) -> set[str]:
    """The ids an Entra ID access token names (appid, oid, upn): how our own calls show in the Activity Log.
    A token that is not a JWT (the local emulator's) names none."""
    parts = token.split(".")
    if len(parts) != 3:
        return set()
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return set()
    if not isinstance(payload, dict):
        return set()
    return {str(payload[k]).lower() for k in ("appid", "azp", "oid", "upn") if payload.get(k)}


# -- the gateway --------------------------------------------------------------------------------------------


class ActivityLogGateway:
    """Reads the Activity Log of one subscription for the scale sets whose repairs are suspended.

    The client (`azure-mgmt-monitor`, ~0.3 s to import) is built on first use only: a sweep with no suspended
    scale set never imports it, and importing `function_app` never does. It shares the Compute gateway's
    credential, transport settings and request meter, so its reads count with the others."""

    def __init__(
        self,
        subscription_id: str,
        connection: ArmConnection,
        *,
        client_id: str | None = None,
        lookback: timedelta = DEFAULT_LOOKBACK,
        budget: ActivityLogBudget | None = None,
        meter: ArmMeter | None = None,
    ) -> None:
        self.subscription_id = subscription_id
        self._arm = connection
        self.endpoint = connection.endpoint
        self.lookback = min(lookback, RETENTION)
        self.budget = budget or ActivityLogBudget()
        self.meter = meter or ArmMeter()
        self._client_id = (client_id or "").lower()
        self._client: MonitorManagementClient | None = None
        self._own: set[str] | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> MonitorManagementClient:
        with self._lock:
            if self._client is None:
                self._client = self._build_client()
            return self._client

    def _build_client(self) -> MonitorManagementClient:
        from azure.mgmt.monitor import MonitorManagementClient

        # the shared meter, as on every client (policies.py)
        return self._arm.build(
            MonitorManagementClient, self.subscription_id, per_retry_policies=arm_policies(self.meter)
        )

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def own_ids(self) -> set[str]:
        """Our identity as the Activity Log shows callers: the configured client id and what our token names."""
        if self._own is None:
            ids = {self._client_id} if self._client_id else set()
            try:
                ids |= token_ids(self._arm.credential.get_token(ARM_SCOPE).token)
            except Exception as exc:  # no token now: the read itself will say so
                log.debug("could not read our own token's ids: %s", exc)
            self._own = ids
        return self._own

    @requires("Microsoft.Insights/eventtypes/values/read")
    def events(self, resource_id: str, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """The scale set's Activity Log events in [since, until], REST-shaped (ArmError when unreadable)."""
        from azure.core.exceptions import AzureError

        flt = (
            f"eventTimestamp ge '{iso(since)}' and eventTimestamp le '{iso(until)}' and resourceUri eq '{resource_id}'"
        )
        try:
            return [
                dict(e.serialize(keep_readonly=True)) for e in self.client.activity_logs.list(filter=flt, select=SELECT)
            ]
        except AzureError as exc:
            raise _error_from_http(exc) from exc

    @requires("Microsoft.Insights/eventtypes/values/read")
    def suspension(self, resource_id: str, *, now: datetime, changed_at: datetime | None = None) -> Suspension:
        """Who suspended the scale set's automatic repairs; `UNREADABLE` (with the reason) when the log
        cannot be read now. Never raises for an ARM answer: the caller holds instead of resuming blind."""
        since = now - self.lookback
        if not self.budget.acquire(DEADLINE.get()):
            return Suspension(
                Suspender.UNREADABLE,
                since=since,
                error="the Activity Log read budget is spent for this sweep",
                error_code="BudgetExhausted",
            )
        try:
            events = self.events(resource_id, since, now)
        except ArmError as exc:
            log.warning("could not read the Activity Log of %s: %s", resource_id, exc)
            return Suspension(Suspender.UNREADABLE, since=since, error=str(exc), error_code=exc.code)
        return who_suspended(events, since=since, own_ids=self.own_ids(), changed_at=changed_at)
