"""Reading the Bicep under infra/ offline: pycep-parser turns each file into a dict.

pycep keeps expressions as nested dicts and writes a reference to a parameter or variable as its bare
name (a string), so helpers here resolve variables and unwrap conditional resources (`= if (...) {}`).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
APP = INFRA / "app"


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


def parse(path: Path) -> dict[str, Any]:
    """Parse one file (raises lark's exception, with line and column, on a syntax error)."""
    return BicepParser().parse(file_path=path)


@functools.cache
def parsed(path: Path) -> dict[str, Any]:
    return parse(path)


def main() -> dict[str, Any]:
    return parsed(INFRA / "main.bicep")


def module_file(name: str) -> dict[str, Any]:
    return parsed(APP / name)


def body(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource's or module's config, also for conditional ones (`= if (cond) { ... }`)."""
    config = resource["config"]
    if set(config) == {"condition", "config"}:
        return config["config"]
    return config


def key(name: str) -> str:
    """Object keys written quoted keep their quotes in pycep's output."""
    return name.strip("'")


def keys(obj: dict[str, Any]) -> set[str]:
    return {key(k) for k in obj}


def variable(doc: dict[str, Any], name: str) -> Any:
    return doc["variables"][name]["value"]


def resolve(doc: dict[str, Any], value: Any) -> Any:
    """A bare variable name → that variable's value (once; parameters stay names)."""
    if isinstance(value, str) and value in doc.get("variables", {}):
        return variable(doc, value)
    return value


def function_args(value: Any, function: str) -> list[Any] | None:
    """Arguments of a call to `function` (e.g. union, concat), or None if `value` is not one."""
    if isinstance(value, dict) and "function" in value and value["function"]["type"] == function:
        return list(value["function"]["parameters"].values())
    return None


def mentions(value: Any, name: str) -> bool:
    """Whether an expression refers to the identifier `name` anywhere."""
    return re.search(rf'"{re.escape(name)}"', json.dumps(value)) is not None


def modules_using(doc: dict[str, Any], path: str) -> dict[str, dict[str, Any]]:
    """Module declarations of `doc` that deploy the given file (path as written, e.g. app/x.bicep)."""
    return {name: m for name, m in doc["modules"].items() if m["detail"]["path"] == path}


def resources_of_type(doc: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in doc.get("resources", {}).items() if r["type"] == resource_type}


def camel(setting: str) -> str:
    """AUTOHEAL_GRACE_MARGIN → autohealGraceMargin (the Bicep parameter of an app setting)."""
    first, *rest = setting.lower().split("_")
    return first + "".join(part.capitalize() for part in rest)


def is_secure(param: dict[str, Any]) -> bool:
    return any(d.get("type") == "secure" for d in param.get("decorators", []))


def simple_yaml(text: str) -> dict[str, Any]:
    """The subset of YAML azure.yaml uses: nested mappings of scalars, `#` comments (no PyYAML here)."""
    root: dict[str, Any] = {}
    stack: list[tuple[int, dict[str, Any]]] = [(-1, root)]
    for raw in text.splitlines():
        line = raw.split(" #")[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        name, _, value = line.strip().partition(":")
        while stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        if value.strip():
            parent[name] = value.strip().strip("'\"")
        else:
            child: dict[str, Any] = {}
            parent[name] = child
            stack.append((indent, child))
    return root
