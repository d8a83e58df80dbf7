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

from emulator import Emulator, fleetgen
from emulator.api import OLDEST_API_VERSION
from emulator.compute_limits import POLICIES, RESOURCE, ROUTE_CHARGES, bucket_name
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
    """scale set id (lower-cased) → {"resource"?, "instanceView"?, "virtualMachines": {id: vm}} from every
    successful GET the corpus holds (the latest wins; an exchange's own GET body is put back when it is replayed)."""
    parts: dict[str, dict[str, Any]] = {}

    def part(scale_set_id: str) -> dict[str, Any]:
        return parts.setdefault(scale_set_id.lower(), {"virtualMachines": {}})

    for rec in recordings:
        if "scale_set" in rec.params:
            part(_scale_set_id(rec.params))  # every scale set a request names gets an entry
        if rec.method != "GET" or rec.status != 200 or not isinstance(rec.body, dict):
            continue
        if rec.operation == "VirtualMachineScaleSets_Get":
            part(_scale_set_id(rec.params))["resource"] = rec.body
        elif rec.operation in ("VirtualMachineScaleSets_List", "VirtualMachineScaleSets_ListAll"):
            for item in rec.body.get("value") or []:
                if isinstance(item, dict) and str(item.get("id", "")).count("/") == 8:
                    part(item["id"]).setdefault("resource", item)
        elif rec.operation == "VirtualMachineScaleSets_GetInstanceView":
            part(_scale_set_id(rec.params))["instanceView"] = rec.body
        elif rec.operation == "VirtualMachineScaleSetVMs_List":
            vms = part(_scale_set_id(rec.params))["virtualMachines"]
            projected = "$select" in rec.query  # Azure answers a projection: it must not replace a whole VM body
            for item in rec.body.get("value") or []:
                if not (isinstance(item, dict) and item.get("id")):
                    continue
                known = vms.get(item["id"].lower())
                if projected and known is not None:
                    view = (item.get("properties") or {}).get("instanceView")
                    if view is not None:
                        known = json.loads(json.dumps(known))  # a copy: the recorded GET body stays as recorded
                        known.setdefault("properties", {})["instanceView"] = view
                        vms[item["id"].lower()] = known
                else:
                    vms[item["id"].lower()] = item
        elif rec.operation == "VirtualMachineScaleSetVMs_Get" and rec.body.get("id"):
            part(_scale_set_id(rec.params))["virtualMachines"][rec.body["id"].lower()] = rec.body
    return parts


def _entry(scale_set_id: str, found: dict[str, Any], rec: Recorded) -> dict[str, Any]:
    """A fleet entry for one scale set: the recorded bodies, on a fleetgen stand-in for what was not recorded
    (a scale set the corpus only writes to: its model, and instances the request names)."""
    parts = scale_set_id.split("/")
    view = found.get("instanceView") or {}
    repairs = any(
        s.get("serviceName") == "AutomaticRepairs"
        for s in view.get("orchestrationServices") or []
        if isinstance(s, dict)
    )
    wanted = [str(i) for i in (_json(rec.request_body) or {}).get("instanceIds") or []] if rec.request_body else []
    capacity = max([3] + [int(i) + 1 for i in wanted if i.isdigit()])
    stand_in = fleetgen.scale_set(
        parts[8],
        capacity=capacity,
        resource_group=parts[4],
        subscription_id=parts[2],
        location=_location(rec) or "westus",
        automatic_repairs=repairs,
    )
    entry = {
        "resource": json.loads(json.dumps(found.get("resource") or stand_in["resource"])),
        "instanceView": json.loads(json.dumps(found.get("instanceView") or stand_in["instanceView"])),
        "virtualMachines": json.loads(
            json.dumps(list(found["virtualMachines"].values()) or stand_in["virtualMachines"])
        ),
    }
    return entry


def _location(rec: Recorded) -> str | None:
    return rec.params.get("location")


def fleet_for(rec: Recorded, parts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The fleet an exchange is replayed against: every scale set of its subscription the corpus knows, with the
    exchange's own GET body in place."""
    subscription = rec.params.get("subscription", "")
    own = json.loads(json.dumps(parts))
    if rec.method == "GET" and rec.status == 200 and isinstance(rec.body, dict) and "scale_set" in rec.params:
        key = _scale_set_id(rec.params).lower()
        if rec.operation == "VirtualMachineScaleSets_Get":
            own[key]["resource"] = rec.body
        elif rec.operation == "VirtualMachineScaleSets_GetInstanceView":
            own[key]["instanceView"] = rec.body
    mine = {key: found for key, found in own.items() if key.split("/")[2] == subscription.lower()}
    polled = rec.operation == "LongRunningOperation_Status"  # needs a scale set to make an operation on
    # A recorded create (PUT answered 201) is replayed on a fleet without that scale set.
    created = _target(rec) if rec.operation == "VirtualMachineScaleSets_CreateOrUpdate" and rec.status == 201 else ""
    scale_sets = [
        _entry(key, found, rec)
        for key, found in mine.items()
        if key != created and ("resource" in found or key == _target(rec) or polled)
    ]
    # Every resource group the corpus names exists (a recorded 404 is about the scale set, not its group).
    groups = sorted(
        {key.split("/")[4] for key in mine}
        | ({rec.params["resource_group"]} if "resource_group" in rec.params else set())
    )
    return {"subscriptionId": subscription, "scaleSets": scale_sets, "resourceGroups": groups}


def _operation_id(url: str) -> str:
    """The operation id of a Compute operation monitor URL (or path): its last path segment."""
    return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1].lower()


_UNKNOWN_MEMBER = re.compile(r"Could not find member '([^']+)'")


def _put_body(rec: Recorded, fleet: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """A scale-set PUT pasted in an issue carries no request body: the scale set's own model is sent (a PUT of what
    a GET shows). A recorded quota refusal becomes a create of that model (the scale set taken out of the fleet, so
    all its capacity is new); a recorded unknown-member refusal gets the member the message names added."""
    target = _scale_set_id(rec.params).lower()
    entry = next((s for s in fleet["scaleSets"] if s["resource"]["id"].lower() == target), None)
    if entry is None:
        return b"", fleet
    model = {k: v for k, v in entry["resource"].items() if k in ("location", "tags", "sku", "properties", "zones")}
    message = _message(rec.body).lower()
    if rec.status == 409 and "quota" in message:
        fleet = {**fleet, "scaleSets": [s for s in fleet["scaleSets"] if s is not entry]}
    details = (rec.body or {}).get("error", {}).get("details") or [] if isinstance(rec.body, dict) else []
    for detail in details:
        found = _UNKNOWN_MEMBER.search(str(detail.get("message", "")))
        if found:
            model["properties"] = {**model.get("properties", {}), found.group(1): {}}
    return json.dumps(model).encode(), fleet


def _target(rec: Recorded) -> str:
    """The scale set a request names (lower-cased id), or ''. A recorded 404 names one that does not exist."""
    if "scale_set" not in rec.params or rec.status == 404:
        return ""
    return _scale_set_id(rec.params).lower()


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
    if any(name.endswith(("SubscriptionMaximum", RESOURCE)) for name in names):
        return "table"
    return "repeated"


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

    def __init__(
        self, emulator: Emulator, parts: dict[str, dict[str, Any]], recordings: Iterable[Recorded] = ()
    ) -> None:
        self.emu = emulator
        self.parts = parts
        self.session = requests.Session()
        # operation id -> the recorded scale-set PUT that started it (its Azure-AsyncOperation names the operation)
        self.started_by: dict[str, Recorded] = {}
        for rec in recordings:
            monitor = rec.headers.get("azure-asyncoperation", "")
            if rec.operation == "VirtualMachineScaleSets_CreateOrUpdate" and monitor:
                self.started_by[_operation_id(monitor)] = rec

    def close(self) -> None:
        self.session.close()

    def _send(self, method: str, path: str, query: dict[str, str], body: bytes = b"", auth: bool = True):  # type: ignore[no-untyped-def]
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = "Bearer conformance"
        # verify per request: a session's own `verify` loses to REQUESTS_CA_BUNDLE in the environment.
        return self.session.request(
            method,
            self.emu.endpoint + path,
            params=query,
            data=body,
            headers=headers,
            timeout=30,
            verify=self.emu.ca_bundle,
        )

    def _prepare(self, rec: Recorded, query: dict[str, str]) -> bytes:
        """Load the fleet and put the emulator where the recorded answer says Azure was; the body to send."""
        fleet = fleet_for(rec, self.parts)
        body = rec.request_body
        if rec.operation == "VirtualMachineScaleSets_CreateOrUpdate" and not body.strip():
            body, fleet = _put_body(rec, fleet)
        form = header_form(rec.headers.get("x-ms-ratelimit-remaining-resource", "")) or "table"
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
        return body

    def _operation_path(self, rec: Recorded, query: dict[str, str]) -> tuple[str, dict[str, str]] | None:
        """An operation of the emulator's own in the recorded one's place, polled until it is where the recorded
        status was (InProgress, or done): the recorded PUT that started it, sent again, or else a scale-set restart."""
        put = self.started_by.get(_operation_id(rec.path))
        uniform = [
            s["resource"]["id"]
            for s in fleet_for(rec, self.parts)["scaleSets"]
            if (s["resource"].get("properties") or {}).get("orchestrationMode") != "Flexible"
        ]
        if put is not None:
            answer = self._send("PUT", put.path, query, put.request_body)
        elif uniform:
            answer = self._send("POST", uniform[0] + "/restart", query, b"{}")
        else:
            return None
        monitor = answer.headers.get("Azure-AsyncOperation")
        if not monitor:
            return None
        split = urlsplit(monitor)
        mine = dict(parse_qsl(split.query))
        mine.update({k: v for k, v in query.items() if k in {"monitor", "api-version"}})
        done = isinstance(rec.body, dict) and rec.body.get("status") not in (None, "InProgress")
        if done or rec.query.get("monitor") == "true":
            self._send("GET", split.path, {k: v for k, v in mine.items() if k != "monitor"})
        return split.path, mine

    def replay(self, rec: Recorded) -> Iterator[Difference]:
        def diff(kind: str, detail: str) -> Difference:
            return Difference(rec.name, rec.operation, kind, detail)

        query = dict(rec.query)
        version = query.get("api-version", "")
        if not re.match(r"^\d{4}-\d{2}-\d{2}", version) or version[:10] < OLDEST_API_VERSION:
            # missing or redacted in an issue paste, or older than the emulator's floor (2023-07-01)
            query["api-version"] = "2024-11-01"
        body = self._prepare(rec, query)
        path = rec.path
        if rec.operation == "LongRunningOperation_Status":
            found = self._operation_path(rec, query)
            if found is None:
                yield diff("status", "no operation to poll")
                return
            path, query = found
        answer = self._send(rec.method, path, query, body, auth=rec.status != 401)
        body = _json(answer.content)
        if answer.status_code != rec.status:
            yield diff("status", f"recorded {rec.status}, emulator {answer.status_code}")
        recorded_code, code = _error_code(rec.body), _error_code(body)
        if recorded_code != code:
            yield diff("error-code", f"recorded {recorded_code}, emulator {code}")
        headers = {k.lower(): v for k, v in answer.headers.items()}
        if not rec.headers:
            headers = {}  # an issue paste carries no headers: nothing to compare them with
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
