"""The ARM request pipeline: authentication, api-version, throttling, injected faults, stats, and the
headers every ARM answer carries. The backend behind it is the Compute emulation or a replay."""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from .compute_limits import DEFAULT_HEADER_FORM, QUEUE_ENTRY, ROUTE_CHARGES
from .errors import ArmError
from .faults import FaultPlan
from .journal import Journal
from .messages import Request, Response
from .ratelimit import ComputeThrottle, ComputeVerdict
from .routes import Route, match
from .stats import RequestLog

OLDEST_API_VERSION = "2023-07-01"
SUPPORTED_API_VERSIONS = "2026-04-01,2025-11-01,2025-04-01,2024-11-01,2024-07-01,2024-03-01,2023-09-01,2023-07-01"
_API_VERSION = re.compile(r"^(\d{4}-\d{2}-\d{2})(-preview)?$", re.IGNORECASE)


class Backend(Protocol):
    def call(self, route: Route, params: dict[str, str], request: Request) -> Response: ...


def _resource_key(params: dict[str, str]) -> str:
    """The resource a Compute per-resource bucket belongs to: the deepest resource the path names."""
    parts = [params.get("resource_group", "")]
    for name in ("scale_set", "instance", "vm", "operation"):
        if name in params:
            parts.append(f"{name}:{params[name]}")
    return "/".join(parts).lower()


class ArmApi:
    def __init__(
        self,
        backend: Backend,
        faults: Callable[[], FaultPlan],
        subscription_id: Callable[[], str],
        log: RequestLog,
        control: Callable[[Request], Response] | None = None,
        resolve: Callable[[str, list[str]], tuple[Route, dict[str, str]]] = match,
        journal: Journal | None = None,
        compute: ComputeThrottle | None = None,
        header_form: Callable[[], str] | None = None,
    ) -> None:
        self._backend = backend
        self._faults = faults
        self._subscription_id = subscription_id
        self._log = log
        self._control = control
        self._resolve = resolve
        self._journal = journal
        self.compute = compute or ComputeThrottle()
        self._header_form = header_form or (lambda: DEFAULT_HEADER_FORM)

    def handle(self, request: Request) -> Response:
        if request.segments and request.segments[0] == "_emulator" and self._control is not None:
            return self._control(request)
        faults = self._faults()
        if faults.latency_ms > 0:
            with self._log.delaying():
                time.sleep(faults.latency_ms / 1000)  # outside every lock: concurrent requests overlap
        write = request.method != "GET"
        kind = "reads" if not write else "deletes" if request.method == "DELETE" else "writes"
        headers: dict[str, str] = {}
        route: Route | None = None
        params: dict[str, str] = {}
        throttled = fault = False
        try:
            _authenticate(request)
            route, params = self._resolve(request.method, request.segments)
            _check_api_version(request, route.api_floor)
            sub = params.get("subscription", "")
            other = sub if sub and sub.lower() != self._subscription_id().lower() else None
            allowed, remaining, retry_after = faults.take_token(kind, other)
            headers[_remaining_header(kind)] = str(remaining)
            if not allowed:
                throttled = True
                raise self._throttled(request, kind, retry_after)
            injection = faults.injection_for(request.method, request.raw_path, route.operation_id)
            if injection is not None:
                fault = True
                extra = {"Retry-After": str(injection.retry_after)} if injection.retry_after is not None else {}
                raise ArmError(injection.status, injection.code, injection.message, headers=extra)
            if faults.server_error():
                fault = True
                raise self._server_error(request, faults.server_error_status)
            charge = ROUTE_CHARGES.get(route.operation_id)
            if charge is not None:
                self.compute.preset(faults, faults.compute_buckets)
                verdict = self.compute.charge(
                    charge,
                    self._region(params),
                    _resource_key(params),
                    self._header_form(),
                    subscription=params.get("subscription", ""),
                )
                headers["x-ms-ratelimit-remaining-resource"] = verdict.header
                if not verdict.allowed:
                    throttled = True
                    raise _compute_throttled(verdict)
            response = self._backend.call(route, params, request)
            created = route.operation_id == "VirtualMachineScaleSets_CreateOrUpdate" and response.status == 201
            if charge is not None and charge.queue and response.status < 300 and not created:
                # Every recorded accepted write reports Compute's queue after the buckets (always 0 recorded),
                # except a scale set's create: azure-powershell TestVirtualMachineScaleSetFlexibleOModeDefaulting
                # (tests/recorded/ps-flexible-put-create.json) answered 201 with the create buckets only.
                headers["x-ms-ratelimit-remaining-resource"] += f",Microsoft.Compute/{QUEUE_ENTRY};0"
        except ArmError as error:
            headers.update(error.headers)
            response = Response.json(error.status, error.envelope())
        headers.setdefault(_remaining_header(kind), str(faults.peek_tokens(kind)))
        # ARM's global subscription bucket beside the regional one (Azure/azure-powershell#26256; the recorded pair
        # `...-reads: 1099`, `...-global-reads: 16499` in azure-powershell's Compute SessionRecords,
        # TestVirtualMachineScaleSetResiliencyView.json). Derived from the regional value by that ratio (15x),
        # not a bucket of its own: unverified, and never the one that throttles here.
        regional = int(headers[_remaining_header(kind)])
        headers.setdefault(f"x-ms-ratelimit-remaining-subscription-global-{kind}", str(15 * (regional + 1) - 1))
        response.headers.update(headers)
        _stamp(response, request)
        self._log.record(route.operation_id if route else None, write=write, throttled=throttled, fault=fault)
        if write and self._journal is not None:
            self._journal.write(request, route, params, response)
        return response

    def _region(self, params: dict[str, str]) -> str:
        region = getattr(self._backend, "region", None)
        return region(params) if region is not None else ""

    def _throttled(self, request: Request, bucket: str, retry_after: int) -> ArmError:
        kind = bucket[:-1]  # read / write / delete
        actor = _actor(request)
        return ArmError(
            429,
            "SubscriptionRequestsThrottled",
            f"Number of '{kind}' requests for subscription '{self._subscription_id()}' actor '{actor}' exceeded. "
            f"Please try again after '{retry_after}' seconds after additional tokens are available. "
            "Refer to https://aka.ms/arm-throttling",
            headers={"Retry-After": str(retry_after)},
        )

    def _server_error(self, request: Request, status: int) -> ArmError:
        moment = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
        return ArmError(
            status,
            "InternalServerError" if status == 500 else "ServiceUnavailable",
            f"Encountered internal server error. Diagnostic information: timestamp '{moment}', subscription id "
            f"'{self._subscription_id()}', tracking id '{uuid.uuid4()}', request correlation id "
            f"'{_correlation(request)}'.",
        )


def _remaining_header(kind: str) -> str:
    return f"x-ms-ratelimit-remaining-subscription-{kind}"


def _compute_throttled(verdict: ComputeVerdict) -> ArmError:
    """Compute's own 429 as captured (microsoft/AzureTRE issue 2777; Azure/aks-engine issue 2295; Microsoft's
    sample in learn.microsoft.com/troubleshoot/azure/virtual-machines/windows/troubleshooting-throttling-errors):
    code OperationNotAllowed, one detail `TooManyRequests` per exhausted policy window with the window as
    `target` and a JSON message {operationGroup, startTime, endTime, allowedRequestCount,
    measuredRequestCount}, innererror `internalErrorCode: TooManyRequestsReceived`, and Retry-After. The
    detail's values here (window = now .. now + 1 min, measured = allowed + 1) are the emulator's, unverified."""
    now = datetime.now(UTC)
    allowed = int(verdict.limit.capacity) if verdict.limit else 0
    details = []
    for target in verdict.targets or [verdict.empty or ""]:
        detail = {
            "operationGroup": target,
            "startTime": now.isoformat(),
            "endTime": (now + timedelta(minutes=1)).isoformat(),
            "allowedRequestCount": allowed,
            "measuredRequestCount": allowed + 1,
        }
        details.append({"code": "TooManyRequests", "target": target, "message": json.dumps(detail)})
    return ArmError(
        429,
        "OperationNotAllowed",
        "The server rejected the request because too many requests have been received for this subscription.",
        details=details,
        headers={"Retry-After": str(verdict.retry_after)},
        innererror={"internalErrorCode": "TooManyRequestsReceived"},
    )


def _authenticate(request: Request) -> None:
    value = request.header("authorization")
    if value is None:
        message = "Authentication failed. The 'Authorization' header is missing."
    else:
        scheme, _, token = value.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return
        message = "Authentication failed. The 'Authorization' header is provided in an invalid format."
    raise ArmError(
        401,
        "AuthenticationFailed",
        message,
        headers={
            "WWW-Authenticate": (
                'Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token", '
                f'error_description="{message}"'
            )
        },
    )


def _check_api_version(request: Request, floor: str | None = None) -> None:
    version = request.query.get("api-version")
    if not version:
        raise ArmError(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    parsed = _API_VERSION.match(version)
    if parsed is None or parsed.group(1) < (floor or OLDEST_API_VERSION):
        raise ArmError(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{version}' is invalid. The supported versions are '{SUPPORTED_API_VERSIONS}'.",
        )


def _correlation(request: Request) -> str:
    return request.header("x-ms-correlation-request-id") or request.header("x-ms-client-request-id") or ""


def _actor(request: Request) -> str:
    token = (request.header("authorization") or "").partition(" ")[2]
    return str(uuid.UUID(bytes=hashlib.sha256(token.encode()).digest()[:16], version=4))


def _stamp(response: Response, request: Request) -> None:
    request_id = str(uuid.uuid4())
    correlation = _correlation(request) or str(uuid.uuid4())
    now = datetime.now(UTC)
    response.headers.update(
        {
            "Cache-Control": "no-cache",
            "Pragma": "no-cache",
            "Expires": "-1",
            "x-ms-request-id": request_id,
            "x-ms-correlation-request-id": correlation,
            "x-ms-routing-request-id": f"WESTEUROPE:{now.strftime('%Y%m%dT%H%M%SZ')}:{request_id}",
            "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
            "X-Content-Type-Options": "nosniff",
        }
    )
    client_request_id = request.header("x-ms-client-request-id")
    if client_request_id:
        response.headers["x-ms-client-request-id"] = client_request_id


def control_response(document: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(document).encode(), {"Content-Type": "application/json"})
