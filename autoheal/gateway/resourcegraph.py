"""Azure Resource Graph (ARG): the subscription's inventory in a few queries, without Compute's buckets.

`ResourceGraphGateway.query(text)` streams the rows of one KQL query page by page through
`azure-mgmt-resourcegraph`'s `ResourceGraphClient.resources` (POST /providers/Microsoft.ResourceGraph/resources),
following `$skipToken`; only one page (at most 1,000 rows) is held at a time. ARG has its own quota per user
("at most 15 queries within every 5-second window", reported on every answer in `x-ms-user-quota-remaining`
and `x-ms-user-quota-resets-after` as hh:mm:ss; learn.microsoft.com/azure/governance/resource-graph/concepts/
guidance-for-throttled-requests): the gateway waits for the window to reset once the quota is spent, so in
steady state it never meets a 429; if one comes anyway (another caller with the same identity) it waits
`Retry-After` or the reset time and tries again a few times. azure-core's own retry policy keeps handling
connection errors and 5xx, but not 429, which it would otherwise retry on a fixed back-off blind to ARG's
headers.

RBAC: `Microsoft.ResourceGraph/resources/read` ("Submits a query on resources within specified subscriptions",
Azure/azure-rest-api-specs specification/resourcegraph/.../stable/2024-04-01/examples/OperationsList.json).
ARG answers only with resources the caller may read (learn.microsoft.com/azure/governance/resource-graph/
overview, "Permissions in Azure Resource Graph"), so the reads of what the inventory asks for (scale sets,
their VMs, Flexible VMs, resource groups) are declared too.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from .clients import DEFAULT_ENDPOINT, ArmConnection
from .compute import ArmError, _error_from_http, requires
from .policies import ArmMeter, arm_policies

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.mgmt.resourcegraph import ResourceGraphClient

log = logging.getLogger("autoheal.gateway.resourcegraph")


@dataclass
class _Shared:
    """What every per-subscription view of one gateway shares: the client and the identity's quota window."""

    client: ResourceGraphClient | None = None
    quota_remaining: int | None = None
    quota_resets_at: float | None = None  # monotonic time the window resets, as last reported
    lock: threading.Lock = field(default_factory=threading.Lock)


# The api-version azure-mgmt-resourcegraph 8.0.1 sends (a test keeps them equal).
API_VERSION = "2021-03-01"
MAX_PAGE_SIZE = 1000  # QueryRequestOptions.$top maximum (resourcegraph.json)
DEFAULT_THROTTLE_WAIT = 5.0  # one documented window, when a 429 names no wait at all


@dataclass
class GraphMeter:
    """Counts what the inventory cost: queries asked, pages fetched, rows streamed, throttles met."""

    queries: int = 0
    pages: int = 0
    rows: int = 0
    throttled: int = 0
    throttle_wait_seconds: float = 0.0
    pacing_seconds: float = 0.0
    quota_remaining: int | None = None
    quota_resets_after: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: float) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def quota(self, remaining: int | None, resets_after: float | None) -> None:
        with self._lock:
            if remaining is not None:
                self.quota_remaining = remaining
            if resets_after is not None:
                self.quota_resets_after = resets_after

    def figures(self) -> dict[str, Any]:
        with self._lock:
            return {
                "queries": self.queries,
                "pages": self.pages,
                "rows": self.rows,
                "throttled": self.throttled,
                "throttleWaitSeconds": round(self.throttle_wait_seconds, 3),
                "pacingSeconds": round(self.pacing_seconds, 3),
                "quotaRemaining": self.quota_remaining,
                "quotaResetsAfter": self.quota_resets_after,
            }


def parse_resets_after(value: str | None) -> float | None:
    """`x-ms-user-quota-resets-after` (hh:mm:ss, fractions tolerated) → seconds; None when absent or malformed."""
    if not value:
        return None
    parts = value.strip().split(":")
    if len(parts) != 3:
        return None
    try:
        hours, minutes, seconds = int(parts[0]), int(parts[1]), float(parts[2])
    except ValueError:
        return None
    if hours < 0 or minutes < 0 or seconds < 0:
        return None
    return hours * 3600 + minutes * 60 + seconds


def _int(value: str | None) -> int | None:
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _graph_error(exc: Exception) -> ArmError:
    """ARG's error: `{"error": {"code": "BadRequest", "message": "Please provide below info ...",
    "details": [{"code": "InvalidQuery", ...}, {"code": "ParserFailure", ...}]}}` (Azure/aztfexport#485):
    the top message is a support stamp, the details say what is wrong."""
    from azure.core.exceptions import HttpResponseError

    if not isinstance(exc, HttpResponseError) or exc.response is None:
        return _error_from_http(exc)
    try:
        body = cast(Any, exc.response).json()
    except Exception:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return _error_from_http(exc)
    details = [d for d in error.get("details") or [] if isinstance(d, dict)]
    code = next((str(d["code"]) for d in details if d.get("code")), None) or str(error.get("code") or "Unknown")
    parts = [str(d.get("message") or d.get("code")) for d in details]
    for detail in details:
        if detail.get("token"):
            parts.append(f"near '{detail['token']}' (position {detail.get('characterPositionInLine')})")
    message = "; ".join(parts) or str(error.get("message") or exc)
    return ArmError(f"Resource Graph: {message}", code=code, status=exc.status_code)


def _keep_rows_as_decoded(client: Any) -> None:
    """`QueryResponse.data` is typed `object`, and the SDK's deserializer copies every node of every row into
    new dicts: about two thirds of the client's CPU on a page of 1,000 scale-set models. The rows are already
    plain JSON-decoded data, so `object` values are kept as decoded (rows and their values are unchanged)."""
    deserializer = getattr(client, "_deserialize", None)
    table = getattr(deserializer, "deserialize_type", None)
    if isinstance(table, dict) and "object" in table:
        table["object"] = lambda data: data


class ResourceGraphGateway:
    """Runs the inventory's fixed KQL queries against one subscription (or the ones given per query).

    `page_size` is `$top` (ARG's maximum, 1,000, by default); `quota_reserve` is how many queries of the
    window to leave to other callers with the same identity before waiting for the reset; `throttle_retries`
    how many 429s one page may meet before the query fails (`ArmError`, transient); `retry_total` and
    `retry_backoff_factor` go to azure-core's retry policy (connection errors and 5xx, POST included).
    `sleep` and `monotonic` are injectable for tests. Thread-safe; keep one per process and identity so the
    quota it tracks is the identity's."""

    def __init__(
        self,
        subscription_id: str,
        *,
        endpoint: str = DEFAULT_ENDPOINT,
        credential: TokenCredential | None = None,
        ca_bundle: str | None = None,
        client_id: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
        quota_reserve: int = 0,
        throttle_retries: int = 3,
        retry_total: int = 3,
        retry_backoff_factor: float = 0.8,
        max_connections: int = 4,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, not {page_size}")
        self.subscription_id = subscription_id
        # how the client is built (clients.py): the same for every gateway
        self._arm = ArmConnection.of(
            endpoint, credential, client_id, ca_bundle, retry_total, retry_backoff_factor, max_connections
        )
        self.endpoint = self._arm.endpoint
        self.page_size = page_size
        self.meter = GraphMeter()
        self.wire = ArmMeter()  # every attempt on the wire (the pipeline's meter policy), retries included
        self._quota_reserve = quota_reserve
        self._throttle_retries = throttle_retries
        self._sleep = sleep
        self._monotonic = monotonic
        # Client and quota window, shared with the per-subscription views of `for_subscription` (one identity).
        self._shared = _Shared()
        self._lock = self._shared.lock  # client creation and the quota window (one identity, shared)

    def for_subscription(self, subscription_id: str) -> ResourceGraphGateway:
        """The same gateway (client, quota window, meter: ARG's quota is per identity) answering for another
        subscription: a management-group deployment's per-subscription inventories share one identity's quota."""
        view = copy.copy(self)
        view.subscription_id = subscription_id
        return view

    # Subscriptions under a management group, as Resource Graph lists them (resourcecontainers; see
    # learn.microsoft.com/azure/governance/management-groups/resource-graph-samples). `id` is projected so that
    # ARG can page the result.
    SUBSCRIPTIONS_QUERY = (
        "resourcecontainers | where type == 'microsoft.resources/subscriptions' "
        "| project id, subscriptionId, name, properties | order by id asc"
    )

    @requires("Microsoft.ResourceGraph/resources/read")
    def subscriptions_under(self, management_group: str) -> list[tuple[str, str]]:
        """(subscription id, display name) of every subscription under `management_group` the identity can read
        (ARG answers only with what the caller may read). Unverified: whether ARG lists a subscription row to an
        identity whose only role there is a custom one without Microsoft.Resources/subscriptions/read."""
        found = []
        for row in self.query(self.SUBSCRIPTIONS_QUERY, management_groups=[management_group]):
            subscription = str(row.get("subscriptionId") or str(row.get("id", "")).rsplit("/", 1)[-1])
            state = str((row.get("properties") or {}).get("state") or "Enabled")
            if subscription and state.lower() in {"enabled", "pastdue", "warned"}:
                found.append((subscription, str(row.get("name") or subscription)))
        return found

    # -- plumbing -----------------------------------------------------------------------------------------

    @property
    def client(self) -> ResourceGraphClient:
        with self._lock:
            if self._shared.client is None:
                self._shared.client = self._build_client()
            return self._shared.client

    def _build_client(self) -> ResourceGraphClient:
        from azure.core.pipeline.policies import RetryPolicy
        from azure.mgmt.resourcegraph import ResourceGraphClient

        class _RetryAllBut429(RetryPolicy):  # type: ignore[type-arg]
            # 429s are ARG's quota: the gateway waits them out by ARG's own headers (see query()).
            def is_retry(self, settings: Any, response: Any) -> bool:
                if response.http_response.status_code == 429:
                    return False
                return bool(super().is_retry(settings, response))

        client = self._arm.build(
            ResourceGraphClient, per_retry_policies=arm_policies(self.wire), retry_policy=_RetryAllBut429
        )
        _keep_rows_as_decoded(client)
        return client

    @property
    def api_version(self) -> str:
        return str(self.client._config.api_version)

    def close(self) -> None:
        with self._lock:
            if self._shared.client is not None:
                self._shared.client.close()
                self._shared.client = None

    def __enter__(self) -> ResourceGraphGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- quota ----------------------------------------------------------------------------------------------

    def _observe(self, headers: Mapping[str, str]) -> None:
        remaining = _int(headers.get("x-ms-user-quota-remaining"))
        resets_after = parse_resets_after(headers.get("x-ms-user-quota-resets-after"))
        self.meter.quota(remaining, resets_after)
        with self._lock:
            if remaining is not None:
                self._shared.quota_remaining = remaining
            if resets_after is not None:
                self._shared.quota_resets_at = self._monotonic() + resets_after

    def _pace(self) -> None:
        """With the quota spent (or down to the reserve), wait for the window ARG said it resets after."""
        with self._lock:
            remaining, resets_at = self._shared.quota_remaining, self._shared.quota_resets_at
            if remaining is None or remaining > self._quota_reserve or resets_at is None:
                return
            self._shared.quota_remaining = None  # after the wait, the window is a new one
        wait = resets_at - self._monotonic()
        if wait > 0:
            log.debug("Resource Graph quota spent: waiting %.2fs for the window to reset", wait)
            self.meter.add(pacing_seconds=wait)
            self._sleep(wait)

    # -- the query ------------------------------------------------------------------------------------------

    @requires(
        "Microsoft.ResourceGraph/resources/read",
        "Microsoft.Compute/virtualMachineScaleSets/read",
        "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read",
        "Microsoft.Compute/virtualMachines/read",
        "Microsoft.Resources/subscriptions/resourceGroups/read",
    )
    def query(
        self, text: str, *, subscriptions: list[str] | None = None, management_groups: list[str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """The rows of `text` (objectArray), streamed page by page, over `subscriptions` (default: this gateway's)
        or `management_groups`. Raises ArmError (ARG's detail code, e.g. InvalidQuery / ParserFailure,
        RateLimiting after the retries, ResultTruncated for an unpageable result)."""
        self.meter.add(queries=1)
        scopes = list(subscriptions or [self.subscription_id])
        skip_token: str | None = None
        while True:
            page = self._page(text, scopes, skip_token, list(management_groups or []))
            data = page.data if isinstance(page.data, list) else []
            skip_token = page.skip_token
            total = page.total_records or 0
            if str(page.result_truncated).lower() == "true" and not skip_token and len(data) < total:
                raise ArmError(
                    f"Resource Graph truncated the result ({len(data)} of {total} rows) and cannot page it: "
                    "the query must project an 'id' column",
                    code="ResultTruncated",
                    status=200,
                )
            self.meter.add(pages=1, rows=len(data))
            for row in data:
                if isinstance(row, dict):
                    yield row
            if not skip_token or not data:
                return

    def _page(self, text: str, scopes: list[str], skip_token: str | None, groups: list[str] | None = None) -> Any:
        from azure.core.exceptions import AzureError, HttpResponseError
        from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

        options = QueryRequestOptions(top=self.page_size, skip_token=skip_token, result_format="objectArray")
        if groups:  # QueryRequest.managementGroups: the query runs over every subscription under them
            request = QueryRequest(management_groups=groups, query=text, options=options)
        else:
            request = QueryRequest(subscriptions=scopes, query=text, options=options)
        attempts = 0
        while True:
            self._pace()
            try:
                answer: Any = self.client.resources(
                    request, cls=lambda response, model, _: (model, response.http_response.headers)
                )
                page, headers = answer
            except HttpResponseError as exc:
                headers = cast(Any, exc.response).headers if exc.response is not None else {}
                self._observe(headers)
                if exc.status_code != 429:
                    raise _graph_error(exc) from exc
                attempts += 1
                wait = _retry_after(headers)
                if wait is None:
                    wait = parse_resets_after(headers.get("x-ms-user-quota-resets-after"))
                wait = DEFAULT_THROTTLE_WAIT if wait is None else wait
                self.meter.add(throttled=1)
                if attempts > self._throttle_retries:
                    raise _graph_error(exc) from exc
                log.warning("Resource Graph throttled the query: waiting %.2fs (attempt %d)", wait, attempts)
                self.meter.add(throttle_wait_seconds=wait)
                self._sleep(wait)
                continue
            except AzureError as exc:
                raise _error_from_http(exc) from exc
            self._observe(headers)
            return page
