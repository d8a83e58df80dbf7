"""Emulator conformance against recorded Azure traffic (issue 19 item 2, last bullet).

For every recorded exchange whose request the emulator answers: a fleet is built from the corpus's own GET
bodies for that subscription (scale sets, their instance views, instance lists, Flexible VMs), the emulator is
put in the state the recorded answer implies (a drained Compute bucket for a 429, a scale set being deleted for
"marked for deletion", a quota at its limit, a running repair for a 409 Conflict), the recorded request is sent,
and the answer is compared with the recording: status, error code, the names of the headers that matter and
their format, and the JSON key paths of the body. Each difference comes back as a `Difference`; the test holds
the list of deliberate ones (mirrored in emulator/README.md, "Conformance with recorded traffic").
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import requests

from emulator import Emulator
from emulator.api import OLDEST_API_VERSION
from emulator.compute_limits import POLICIES, RESOURCE, ROUTE_CHARGES, SUBSCRIPTION, bucket_name
from emulator.errors import ArmError
from emulator.routes import match

# Headers whose presence and format a client depends on (the rest — caching, HSTS, server — are not compared).
HEADERS = (
    "x-ms-ratelimit-remaining-resource",
    "azure-asyncoperation",
    "location",
    "retry-after",
    "x-ms-ratelimit-remaining-subscription-reads",
    "x-ms-ratelimit-remaining-subscription-writes",
    "x-ms-ratelimit-remaining-subscription-deletes",
    "x-ms-request-id",
    "x-ms-correlation-request-id",
)
_ENTRY = re.compile(r"^Microsoft\.Compute/(?P<name>[^;]+);(?P<remaining>-?\d+)$")
_WINDOW = re.compile(r"\d+Min$")
_MONITOR = re.compile(
    r"^https://[^/]+/subscriptions/[^/]+/providers/Microsoft\.Compute/locations/[^/]+/operations/[^/?]+\?", re.I
)


@dataclass(frozen=True)
class Difference:
    exchange: str
    operation: str
    kind: str  # status | error-code | header-missing | header-extra | header-format | keys-missing | keys-extra
    detail: str

    def key(self) -> tuple[str, str, str]:
        return (self.operation, self.kind, self.detail)


@dataclass
class Recorded:
    name: str
    method: str
    url: str
    path: str
    segments: list[str]
    query: dict[str, str]
    request_body: bytes
    status: int
    headers: dict[str, str]
    body: Any
    operation: str = ""
    params: dict[str, str] = field(default_factory=dict)


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return "" if value is None else str(value)


def _json(value: Any) -> Any:
    if isinstance(value, dict | list):
        return value
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str) and value.strip():
        try:
            return json.loads(value)
        except ValueError:
            return None
    return None


def _bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value).encode()
    return str(value).encode()


def parse(name: str, exchange: dict[str, Any]) -> Recorded:
    request, response = exchange["request"], exchange["response"]
    url = str(request["url"])
    split = urlsplit(url)
    status = response.get("status")
    if isinstance(status, dict):
        status = status.get("code")
    recorded = Recorded(
        name=name,
        method=str(request["method"]).upper(),
        url=url,
        path=split.path,
        segments=[unquote(part) for part in split.path.split("/") if part],
        query={k.lower(): v for k, v in parse_qsl(split.query, keep_blank_values=True)},
        request_body=_bytes(request.get("body")),
        status=int(status or 0),
        headers={str(k).lower(): _text(v) for k, v in (response.get("headers") or {}).items()},
        body=_json(response.get("body")),
    )
    try:
        route, params = match(recorded.method, recorded.segments)
    except ArmError:
        return recorded
    recorded.operation, recorded.params = route.operation_id, params
    return recorded


# --- the fleet from the corpus's own GET bodies -------------------------------------------------------------


def _scale_set_id(params: dict[str, str]) -> str:
    return (
        f"/subscriptions/{params['subscription']}/resourceGroups/{params['resource_group']}"
        f"/providers/Microsoft.Compute/virtualMachineScaleSets/{params['scale_set']}"
    )


def build_fleets(recordings: Iterable[Recorded]) -> dict[str, dict[str, Any]]:
    """subscription (lower-cased) → fleet document from every successful GET the corpus holds."""
    resources: dict[str, dict[str, Any]] = {}
    views: dict[str, dict[str, Any]] = {}
    vms: dict[str, dict[str, dict[str, Any]]] = {}
    for rec in recordings:
        if rec.method != "GET" or rec.status != 200 or not isinstance(rec.body, dict):
            continue
        if rec.operation == "VirtualMachineScaleSets_Get":
            resources[rec.body.get("id", _scale_set_id(rec.params)).lower()] = rec.body
        elif rec.operation in ("VirtualMachineScaleSets_List", "VirtualMachineScaleSets_ListAll"):
            for item in rec.body.get("value") or []:
                if isinstance(item, dict) and item.get("id"):
                    resources.setdefault(item["id"].lower(), item)
        elif rec.operation == "VirtualMachineScaleSets_GetInstanceView":
            views[_scale_set_id(rec.params).lower()] = rec.body
        elif rec.operation == "VirtualMachineScaleSetVMs_List":
            for item in rec.body.get("value") or []:
                if isinstance(item, dict) and item.get("id"):
                    vms.setdefault(_scale_set_id(rec.params).lower(), {})[item["id"].lower()] = item
        elif rec.operation == "VirtualMachineScaleSetVMs_Get" and rec.body.get("id"):
            vms.setdefault(_scale_set_id(rec.params).lower(), {}).setdefault(rec.body["id"].lower(), rec.body)
        elif rec.operation in ("VirtualMachines_List", "VirtualMachines_ListAll"):
            for item in rec.body.get("value") or []:
                owner = ((item.get("properties") or {}).get("virtualMachineScaleSet") or {}).get("id")
                if owner and item.get("id"):
                    vms.setdefault(owner.lower(), {})[item["id"].lower()] = item
    fleets: dict[str, dict[str, Any]] = {}
    for key, resource in resources.items():
        parts = resource["id"].split("/")
        if len(parts) != 9:
            continue
        subscription = parts[2]
        fleet = fleets.setdefault(subscription.lower(), {"subscriptionId": subscription, "scaleSets": []})
        fleet["scaleSets"].append(
            {
                "resource": json.loads(json.dumps(resource)),
                "instanceView": json.loads(json.dumps(views.get(key, {}))),
                "virtualMachines": json.loads(json.dumps(list(vms.get(key, {}).values()))),
            }
        )
    return fleets


# --- comparing ------------------------------------------------------------------------------------------------


def key_paths(node: Any, prefix: str = "", depth: int = 5) -> set[str]:
    """Dotted key paths (lists: `[]`, every item's keys united), down to `depth` levels."""
    if depth == 0:
        return set()
    paths: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else key
            paths.add(path)
            paths |= key_paths(value, path, depth - 1)
    elif isinstance(node, list):
        for item in node:
            paths |= key_paths(item, f"{prefix}[]", depth)
    return paths


def header_form(value: str) -> str | None:
    names = [found["name"] for part in value.split(",") if (found := _ENTRY.match(part.strip()))]
    if not names:
        return None
    if any(_WINDOW.search(name) for name in names):
        return "windowed"
    if len(set(names)) < len(names):
        return "repeated"
    if all(name.endswith((RESOURCE, SUBSCRIPTION)) for name in names):
        return "suffix"
    return "repeated"  # a single bare policy name: the repeated form with one bucket


def _names(value: str) -> str:
    return ",".join(found["name"] for part in value.split(",") if (found := _ENTRY.match(part.strip())))


def _error_code(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("code"))
    return None


def _message(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message") or "")
    return ""


class Replayer:
    """One emulator, a fresh fleet per exchange; `replay(rec)` yields the differences."""

    def __init__(self, emulator: Emulator, fleets: dict[str, dict[str, Any]]) -> None:
        self.emu = emulator
        self.fleets = fleets
        self.session = requests.Session()
        self.session.verify = emulator.ca_bundle

    def close(self) -> None:
        self.session.close()

    def _send(self, method: str, path: str, query: dict[str, str], body: bytes = b"", auth: bool = True):  # type: ignore[no-untyped-def]
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = "Bearer conformance"
        return self.session.request(
            method, self.emu.endpoint + path, params=query, data=body, headers=headers, timeout=30
        )

    def _prepare(self, rec: Recorded, query: dict[str, str]) -> dict[str, Any]:
        """Load the fleet and put the emulator where the recorded answer says Azure was."""
        subscription = rec.params.get("subscription", "")
        fleet = json.loads(json.dumps(self.fleets.get(subscription.lower()) or {"subscriptionId": subscription}))
        fleet.setdefault("scaleSets", [])
        form = header_form(rec.headers.get("x-ms-ratelimit-remaining-resource", "")) or "windowed"
        fleet["rateLimitHeaderForm"] = form
        faults: dict[str, Any] = {}
        message = _message(rec.body).lower()
        if rec.status == 429 and _error_code(rec.body) == "OperationNotAllowed":
            charge = ROUTE_CHARGES.get(rec.operation)
            if charge is not None:
                policy = POLICIES[charge.policy]
                faults["computeBuckets"] = {
                    bucket_name(policy.name, level): {"remaining": 0}
                    for level in charge.levels
                    if policy.limit(level) is not None
                }
        if rec.status == 409 and "quota" in message:
            faults["coresQuota"] = {"limit": 0}
        if faults:
            fleet["faults"] = faults
        self.emu.load_fleet(fleet)
        if rec.status == 409 and "marked for deletion" in message and "scale_set" in rec.params:
            self._send("DELETE", _scale_set_id(rec.params), query)
        elif rec.status == 409 and _error_code(rec.body) == "Conflict" and "scale_set" in rec.params:
            # a repair still running keeps a scale-set write at 409 Conflict
            self._send("POST", _scale_set_id(rec.params) + "/restart", query, b"{}")
        return fleet

    def replay(self, rec: Recorded) -> Iterator[Difference]:
        def diff(kind: str, detail: str) -> Difference:
            return Difference(rec.name, rec.operation, kind, detail)

        query = dict(rec.query)
        version = query.get("api-version", "")
        if version and version[:10] < OLDEST_API_VERSION:
            query["api-version"] = OLDEST_API_VERSION  # the emulator's floor; the recording is older
        self._prepare(rec, query)
        answer = self._send(rec.method, rec.path, query, rec.request_body, auth=rec.status != 401)
        body = _json(answer.content)
        if answer.status_code != rec.status:
            yield diff("status", f"recorded {rec.status}, emulator {answer.status_code}")
        recorded_code, code = _error_code(rec.body), _error_code(body)
        if recorded_code != code:
            yield diff("error-code", f"recorded {recorded_code}, emulator {code}")
        headers = {k.lower(): v for k, v in answer.headers.items()}
        for name in HEADERS:
            if name in rec.headers and name not in headers:
                yield diff("header-missing", name)
            elif (
                name in headers
                and name not in rec.headers
                and name in ("azure-asyncoperation", "location", "retry-after")
            ):
                yield diff("header-extra", name)
        limit = rec.headers.get("x-ms-ratelimit-remaining-resource")
        if limit and "x-ms-ratelimit-remaining-resource" in headers:
            mine = headers["x-ms-ratelimit-remaining-resource"]
            if header_form(mine) != header_form(limit) or _names(mine) != _names(limit):
                yield diff(
                    "header-format",
                    f"x-ms-ratelimit-remaining-resource recorded {_names(limit)}, emulator {_names(mine)}",
                )
        for name in ("azure-asyncoperation", "location"):
            both = name in rec.headers and name in headers
            if both and bool(_MONITOR.match(rec.headers[name])) != bool(_MONITOR.match(headers[name])):
                yield diff("header-format", f"{name} is not an operation monitor URL in both")
        if rec.body is not None and body is not None and rec.status == answer.status_code:
            recorded_keys, keys = key_paths(rec.body), key_paths(body)
            missing, extra = sorted(recorded_keys - keys), sorted(keys - recorded_keys)
            if missing:
                yield diff("keys-missing", ",".join(missing))
            if extra:
                yield diff("keys-extra", ",".join(extra))
        elif rec.body is not None and body is None and rec.status == answer.status_code:
            yield diff("keys-missing", "the whole body")
