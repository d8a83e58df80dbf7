"""A seeded corpus of hostile Event Grid deliveries, and a runner that pushes them through the registered
function the way the Functions host does (split the body's array, decode each element with azure-functions'
own converter, invoke the function) and counts what happened.

Used by `tests/functions/test_hostile_corpus.py` (short run in `make test`) and `bench/hostile_events.py`
(the 10,000-event run). The corpus never contains a clean, valid id of a scale set that needs repair: the
only scale sets it names validly are healthy (`web-frontend`, `analytics-flex`), so in remediate mode any
ARM write means a hostile event got through.
"""

from __future__ import annotations

import copy
import json
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from autoheal import handlers
from tests.helpers import EVENT_EXAMPLES

SUB = "6f1d3c2a-8b4e-4d7f-9a0c-1e2f3a4b5c6d"  # the demo fleet's subscription
FOREIGN = "11111111-2222-3333-4444-555555555555"
RG_ID = f"/subscriptions/{SUB}/resourceGroups"
HEALTHY = [f"{RG_ID}/rg-shop/providers/Microsoft.Compute/virtualMachineScaleSets/web-frontend"]
FLEX_HEALTHY = f"{RG_ID}/rg-data/providers/Microsoft.Compute/virtualMachineScaleSets/analytics-flex"
BROKEN = f"{RG_ID}/rg-platform/providers/Microsoft.Compute/virtualMachineScaleSets/render-farm"
SCALE_SET_WRITE = "Microsoft.Compute/virtualMachineScaleSets/write"
EVENT_TYPES = [
    "Microsoft.Resources.ResourceWriteFailure",
    "Microsoft.Resources.ResourceActionFailure",
    "Microsoft.Resources.ResourceDeleteFailure",
    "Microsoft.Resources.ResourceWriteSuccess",
    "Microsoft.ResourceNotifications.HealthResources.AvailabilityStatusChanged",
    "Microsoft.Storage.BlobCreated",
]
MEGABYTE = 1 << 20


def _hostile_ids(rng: random.Random) -> list[str]:
    """Ids that must never be read as the broken scale set (or anything of ours)."""
    web = HEALTHY[0]
    return [
        f"{web}/virtualMachines/../../../virtualMachineScaleSets/render-farm",
        f"{BROKEN}/virtualMachines/../../../virtualMachineScaleSets/web-frontend",  # the first name is broken
        f"{web}/virtualMachines/%2e%2e/%2e%2e/%2e%2e/virtualMachineScaleSets/render-farm",
        BROKEN.replace("render-farm", "render%2Dfarm"),
        BROKEN.replace("render-farm", "render-farm%2F..%2Fcache-nodes"),
        BROKEN.replace("/providers", "//providers"),
        BROKEN.replace("render-farm", "render\u2010farm"),  # a Unicode hyphen look-alike
        BROKEN.replace("render-farm", "render-farm\x00"),
        BROKEN.replace("/render-farm", "\uff0frender-farm"),  # fullwidth solidus
        BROKEN.replace("render-farm", "render-farm\u202e"),
        BROKEN + "?api-version=2026-04-01",
        BROKEN + "#fragment",
        BROKEN.replace("/", "\\"),
        BROKEN.replace(SUB, FOREIGN),
        BROKEN.replace(SUB, "{subscription-id}"),
        BROKEN.replace("Microsoft.Compute", "Microsoft.Storage"),
        BROKEN.replace("render-farm", "r" * 65),
        BROKEN.replace("rg-platform", "rg" + "x" * 90),
        BROKEN.upper().replace(SUB.upper(), FOREIGN),
        "/subscriptions/../" + BROKEN,
        BROKEN.replace("/subscriptions/", "/subscriptions/ /"),
        # ARM names never start or end with whitespace: refused, never trimmed into the broken scale set
        BROKEN.replace("render-farm", " render-farm "),
        BROKEN.replace("render-farm", "render-farm\u00a0"),
        BROKEN.replace("rg-platform", "rg-platform "),
        " " + BROKEN + "\n",
        "x" * MEGABYTE,
        "",
        "/" * rng.randint(1, 50),
    ]


def _resource_event(rng: random.Random, resource: Any, event_type: str | None = None, op: Any = None) -> dict:
    return {
        "id": f"evt-{rng.getrandbits(48):012x}",
        "eventType": event_type or rng.choice(EVENT_TYPES[:4]),
        "subject": resource if isinstance(resource, str) else "x",
        "topic": f"/subscriptions/{SUB}",
        "eventTime": "2026-11-30T00:00:00.0000000Z",
        "dataVersion": "2",
        "data": {
            "resourceUri": resource,
            "operationName": SCALE_SET_WRITE if op is None else op,
            "status": "Succeeded",
            "subscriptionId": SUB,
        },
    }


def _cloud(event: dict) -> dict:
    """The same event in the CloudEvents 1.0 schema (lower-case attribute names, as Event Grid delivers)."""
    return {
        "specversion": "1.0",
        "id": event.get("id"),
        "source": event.get("topic"),
        "subject": event.get("subject"),
        "type": event.get("eventType"),
        "time": "2026-11-30T00:00:00Z",
        "data": event.get("data"),
    }


def _samples() -> list[dict]:
    paths = sorted(EVENT_EXAMPLES.rglob("*examples/*/*.json"))
    out = []
    for path in paths:
        payload = json.loads(path.read_text())
        out.append({("specversion" if k == "specVersion" else k): v for k, v in payload.items()})
    return out


def _wrong_types(rng: random.Random) -> dict:
    event = _resource_event(rng, rng.choice(HEALTHY))
    key = rng.choice(["id", "eventType", "subject", "data", "eventTime", "dataVersion", "topic"])
    event[key] = rng.choice([None, 42, 3.5, True, [], ["a"], {"x": 1}, "", "\x00"])
    if rng.random() < 0.3:
        event["data"] = rng.choice([None, 1, "not json", "[1,2]", '{"resourceUri": 5', [], {"resourceUri": 7}])
    return event


def _unicode(rng: random.Random) -> dict:
    junk = "".join(
        chr(rng.choice([0, 0x202E, 0xFEFF, 0x1F4A3, 0x0301, 0xFF0F, 0x2028, 0xD7FF, 0x10FFFF]))
        for _ in range(rng.randint(1, 40))
    )
    event = _resource_event(rng, rng.choice(HEALTHY) + "/virtualMachines/" + junk)
    event["id"] = junk or "id"
    event["subject"] = junk
    return event


def _megabyte(rng: random.Random) -> dict:
    event = _resource_event(rng, rng.choice(HEALTHY))
    where = rng.choice(["id", "subject", "eventType", "resourceUri", "operationName", "extra"])
    big = rng.choice("a/.%\x00\u00e9") * MEGABYTE
    if where in ("resourceUri", "operationName"):
        event["data"][where] = big
    elif where == "extra":
        event["data"]["blob"] = big
    else:
        event[where] = big
    return event


def _valid(rng: random.Random) -> dict:
    """Benign events the function must evaluate (healthy scale sets only) or drop with a reason."""
    roll = rng.random()
    if roll < 0.4:
        return _resource_event(rng, rng.choice(HEALTHY) + rng.choice(["", "/virtualMachines/1"]))
    if roll < 0.7:  # a Flexible VM failure: one VM GET, then its scale set (or "not found")
        name = rng.choice(["analytics-flex_0a1b2c3d", "nope-vm", "vm-" + str(rng.randint(0, 99))])
        vm = f"{RG_ID}/rg-data/providers/Microsoft.Compute/virtualMachines/{name}"
        return _resource_event(rng, vm, rng.choice(EVENT_TYPES[:3]), "Microsoft.Compute/virtualMachines/write")
    health = {
        "id": f"h-{rng.getrandbits(40):010x}",
        "eventType": EVENT_TYPES[4],
        "subject": HEALTHY[0],
        "eventTime": "2026-11-30T00:00:00Z",
        "dataVersion": "1",
        "data": {"resourceInfo": {"properties": {"targetResourceId": rng.choice([HEALTHY[0], FLEX_HEALTHY])}}},
    }
    return health


def one_event(rng: random.Random, samples: list[dict]) -> tuple[str, Any]:
    kind = rng.choices(
        ["hostile-id", "wrong-types", "unicode", "megabyte", "sample", "foreign", "valid", "duplicate", "not-object"],
        weights=[30, 15, 10, 2, 8, 5, 20, 5, 5],
    )[0]
    if kind == "hostile-id":
        op = rng.choice([SCALE_SET_WRITE, "Microsoft.Compute/virtualMachines/delete"])
        event = _resource_event(rng, rng.choice(_hostile_ids(rng)), op=op)
        if rng.random() < 0.3:  # the same id as a health target
            event["eventType"] = EVENT_TYPES[4]
            event["data"] = {"resourceInfo": {"properties": {"targetResourceId": event["data"]["resourceUri"]}}}
    elif kind == "wrong-types":
        event = _wrong_types(rng)
    elif kind == "unicode":
        event = _unicode(rng)
    elif kind == "megabyte":
        event = _megabyte(rng)
    elif kind == "sample":
        event = copy.deepcopy(rng.choice(samples))
    elif kind == "foreign":
        event = _resource_event(rng, HEALTHY[0].replace(SUB, FOREIGN))
    elif kind == "duplicate":
        event = _resource_event(rng, HEALTHY[0])
        event["id"] = "the-same-id"
    elif kind == "not-object":
        event = rng.choice([1, "event", None, [], [[]], True])
    else:
        event = _valid(rng)
    if isinstance(event, dict) and "eventType" in event and rng.random() < 0.35:
        event = _cloud(event)
    return kind, event


def corpus(seed: int, events: int) -> Iterator[tuple[str, bytes, int]]:
    """`events` events in deliveries of 1-20 (Event Grid posts arrays), plus truncated and garbage bodies."""
    rng = random.Random(seed)
    samples = _samples()
    made = 0
    while made < events:
        size = min(events - made, rng.choice([1, 1, 1, 2, 5, 20]))
        batch = [one_event(rng, samples) for _ in range(size)]
        made += size
        body = json.dumps([event for _, event in batch]).encode()
        if rng.random() < 0.03:  # truncated in transit
            yield "truncated", body[: rng.randint(0, max(0, len(body) - 1))], size
        else:
            yield ",".join(sorted({kind for kind, _ in batch})), body, size


@dataclass
class Figures:
    deliveries: int = 0
    events: int = 0
    refused_before_the_function: int = 0  # the host/worker converter cannot build a trigger object
    crashes: int = 0
    unexplained_drops: int = 0
    evaluated: int = 0
    arm_writes: int = 0
    arm_requests: int = 0
    outcomes: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def summary(self) -> str:
        top = ", ".join(f"{k} {n}" for k, n in self.outcomes.most_common(12))
        return (
            f"{self.events} events in {self.deliveries} deliveries: {self.crashes} crashes, "
            f"{self.unexplained_drops} unexplained drops, {self.arm_writes} ARM writes "
            f"({self.arm_requests} ARM requests, {self.evaluated} evaluated, "
            f"{self.refused_before_the_function} refused by the worker's converter before the function); "
            f"outcomes: {top}"
        )


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "dropped (" in record.msg:
            self.records.append(record)


def run(
    function: Callable[[Any], None], stats: Callable[[], dict], deliveries: Iterator[tuple[str, bytes, int]]
) -> Figures:
    """Each delivery as the host handles it; a crash is any exception out of the function."""
    from azure.functions.eventgrid import EventGridEventInConverter
    from azure.functions.meta import Datum

    figures = Figures()
    capture = _Capture()
    logger = logging.getLogger("autoheal.events")
    logger.addHandler(capture)
    previous_level = logger.level
    logger.setLevel(logging.INFO)
    outcomes: list[handlers.EventOutcome] = []
    original = handlers.EventHandler.handle

    def spy(self: handlers.EventHandler, payload: Any) -> handlers.EventOutcome:
        outcome = original(self, payload)
        outcomes.append(outcome)
        return outcome

    handlers.EventHandler.handle = spy  # type: ignore[method-assign]
    before = stats()
    try:
        for kind, body, size in deliveries:
            figures.deliveries += 1
            try:
                decoded = json.loads(body)
            except ValueError:  # the host answers 400: nothing reaches the worker, Event Grid retries
                figures.events += size
                figures.refused_before_the_function += size
                figures.outcomes["refused:not-json"] += size
                continue
            for element in decoded if isinstance(decoded, list) else [decoded]:
                figures.events += 1
                try:
                    event = EventGridEventInConverter.decode(Datum(json.dumps(element), "json"), trigger_metadata={})
                except Exception as exc:  # the worker fails the invocation before our code runs
                    figures.refused_before_the_function += 1
                    figures.outcomes[f"refused:{type(exc).__name__}"] += 1
                    continue
                outcomes.clear()
                capture.records.clear()
                try:
                    function(event)
                except Exception as exc:
                    figures.crashes += 1
                    if len(figures.examples) < 5:
                        figures.examples.append(f"{kind}: {type(exc).__name__}: {str(exc)[:200]}")
                    continue
                dropped = [o for o in outcomes if o.status != "evaluated"]
                figures.evaluated += len(outcomes) - len(dropped)
                codes = [getattr(r, "reasonCode", "") for r in capture.records]
                for outcome in outcomes:
                    figures.outcomes[f"{outcome.status}:{outcome.code or '-'}"] += 1
                if len(outcomes) != 1 or codes != [str(o.code or o.status) for o in dropped]:
                    figures.unexplained_drops += 1
                    if len(figures.examples) < 5:
                        figures.examples.append(f"{kind}: outcomes {outcomes!r:.300} logged {codes}")
    finally:
        handlers.EventHandler.handle = original  # type: ignore[method-assign]
        logger.removeHandler(capture)
        logger.setLevel(previous_level)
    after = stats()
    figures.arm_writes = after["writes"] - before["writes"]
    figures.arm_requests = after["requests"] - before["requests"]
    return figures
