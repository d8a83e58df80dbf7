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


# -- a small partial evaluator: what a deployment with given parameters creates ----------------------------


def symbol(value: Any) -> str | None:
    """`a.outputs.b` (pycep's nested property accessors) → 'a.outputs.b'; None for anything else."""
    if isinstance(value, str):
        return value
    operator = value.get("operator") if isinstance(value, dict) else None
    if not operator or operator["type"] != "property_accessor":
        return None
    first, rest = symbol(operator["operands"]["operand_1"]), symbol(operator["operands"]["operand_2"])
    return f"{first}.{rest}" if first and rest else None


def evaluate(doc: dict[str, Any], value: Any, env: dict[str, Any]) -> Any:
    """`value` of `doc` with parameters bound by `env` (name → value) and variables resolved; `empty()`, `!`, `&&`,
    `||`, `==` and `?:` are computed, a module output stays a symbol 'ref:module.outputs.name', anything else (other
    functions, interpolations of unbound names) stays as pycep wrote it. Enough to follow parameters through
    modules; not a Bicep implementation."""
    if isinstance(value, str):
        if value in env:
            return env[value]
        if value in doc.get("variables", {}):
            return evaluate(doc, variable(doc, value), env)
        return value
    if isinstance(value, list):
        return [evaluate(doc, v, env) for v in value]
    if not isinstance(value, dict):
        return value
    if "function" in value and value["function"]["type"] == "empty":
        (argument,) = value["function"]["parameters"].values()
        return evaluate(doc, argument, env) in ("", [], {}, None)
    operator = value.get("operator")
    if isinstance(operator, dict) and set(value) == {"operator"}:
        kind, operands = operator["type"], operator["operands"]
        if kind == "property_accessor":
            name = symbol(value)
            return f"ref:{name}" if name and ".outputs." in name else value
        if kind == "conditional":
            condition = evaluate(doc, operands["condition"], env)
            if isinstance(condition, bool):
                return evaluate(doc, operands["true_value" if condition else "false_value"], env)
            return value
        args = [evaluate(doc, v, env) for v in operands.values()]
        if kind == "not" and isinstance(args[0], bool):
            return not args[0]
        if kind in ("and", "or") and all(isinstance(a, bool) for a in args):
            return all(args) if kind == "and" else any(args)
        if kind == "equals" and len(args) == 2:
            return args[0] == args[1]
        return value
    return {k: evaluate(doc, v, env) for k, v in value.items()}


def parameter_values(doc: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """A file's parameters: `given`, else the (evaluated) default, else left unbound (absent)."""
    env: dict[str, Any] = {}
    for name, param in doc.get("parameters", {}).items():
        if name in given:
            env[name] = given[name]
        elif param.get("default") is not None:
            env[name] = evaluate(doc, param["default"], env)
    return env


def module_env(doc: dict[str, Any], module: dict[str, Any], env: dict[str, Any]) -> dict[str, Any]:
    """The parameters a module declaration of `doc` passes to its file, evaluated in `env`."""
    return {k: evaluate(doc, v, env) for k, v in module_body(module)["params"].items()}


def module_body(module: dict[str, Any]) -> dict[str, Any]:
    """A module's config, also for loops (`[for x in xs: {...}]`) and conditions."""
    config = module["config"]
    if "loop_type" in config or set(config) == {"condition", "config"}:
        return config["config"]
    return config


def deployed(doc: dict[str, Any], module: dict[str, Any], env: dict[str, Any]) -> bool:
    """Whether a (possibly conditional) module is deployed; an undecidable condition is an error."""
    condition = module["config"].get("condition") if isinstance(module["config"], dict) else None
    if condition is None:
        return True
    result = evaluate(doc, condition, env)
    if not isinstance(result, bool):
        raise AssertionError(f"cannot decide the condition {json.dumps(condition)}")
    return result
