"""Recorded Azure traffic for scale sets: real exchanges, one JSON file each, with provenance in index.json.

Each file is `{"request": {"method", "url", "headers", "body"}, "response": {"status", "headers", "body"}}` as
recorded (bodies stored as parsed JSON; header values as strings, repeated values joined with ", "); only
identifiers and secrets are redacted. `index.json` names each file's source (repository, path and commit of a
Microsoft test recording, or the URL of the public issue a user pasted it in) and its categories.
`headers.json` holds `x-ms-ratelimit-remaining-resource` values captured without a whole exchange (issue pastes,
Microsoft's articles), each with its source. `fragments.json` holds instance-view fragments pasted in public issues
(vmHealth, Failed provisioning codes) that no recording holds. See INDEX.md for the counts per category.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
RATELIMIT = "x-ms-ratelimit-remaining-resource"


@dataclass(frozen=True)
class Entry:
    name: str
    exchange: dict[str, Any]
    source: dict[str, Any]
    categories: tuple[str, ...]

    @property
    def request(self) -> dict[str, Any]:
        return dict(self.exchange["request"])

    @property
    def response(self) -> dict[str, Any]:
        return dict(self.exchange["response"])

    def header(self, name: str) -> str | None:
        """A response header, case-insensitively."""
        for key, value in self.exchange["response"]["headers"].items():
            if key.lower() == name.lower():
                return str(value)
        return None


@cache
def _index() -> tuple[Entry, ...]:
    listed = json.loads((HERE / "index.json").read_text())["exchanges"]
    out = []
    for row in listed:
        file = row["file"]
        source = {k: v for k, v in row.items() if k not in {"file", "categories"}}
        out.append(
            Entry(file.removesuffix(".json"), json.loads((HERE / file).read_text()), source, tuple(row["categories"]))
        )
    return tuple(out)


def entries() -> tuple[Entry, ...]:
    return _index()


def exchanges() -> list[tuple[str, dict[str, Any]]]:
    """Every recorded exchange as (name, {"request": ..., "response": ...})."""
    return [(e.name, e.exchange) for e in _index()]


def by_category(category: str) -> list[Entry]:
    return [e for e in _index() if category in e.categories]


def errors() -> list[Entry]:
    """Every exchange whose response is an ARM error body."""
    return [e for e in _index() if e.response["status"] >= 400]


def scale_sets() -> list[Entry]:
    """Every exchange whose response body is a scale set (GET, PUT answer)."""
    return [
        e
        for e in _index()
        if isinstance(e.response["body"], dict)
        and str(e.response["body"].get("type", "")).lower() == "microsoft.compute/virtualmachinescalesets"
    ]


def header_captures() -> list[dict[str, Any]]:
    """Rate-limit header values captured without a whole exchange: {"value", "source", ...}."""
    return list(json.loads((HERE / "headers.json").read_text())["captures"])


def fragments() -> dict[str, dict[str, Any]]:
    """Instance-view fragments captured without a whole exchange, by name: {"url", "what", ...}."""
    return {str(f["name"]): dict(f) for f in json.loads((HERE / "fragments.json").read_text())["fragments"]}


def ratelimit_values() -> Iterator[tuple[str, str]]:
    """(where, value) for every recorded `x-ms-ratelimit-remaining-resource` value, exchanges and captures."""
    for e in _index():
        value = e.header(RATELIMIT)
        if value:
            yield e.name, value
    for n, capture in enumerate(header_captures()):
        yield f"headers.json#{n}", str(capture["value"])
