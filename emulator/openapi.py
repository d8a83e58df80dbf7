"""Request bodies read the way Compute reads them: against Microsoft's OpenAPI, refusing unknown members.

Compute deserializes bodies with Json.NET and refuses members its types do not have: 400
`InvalidRequestFormat` "Cannot parse the request." with a detail `InvalidJson` "Could not find member 'sku' on
object of type 'VMScaleSetPublicIPAddressConfiguration'. Path '...', line 1, position 1038." (captured in
hashicorp/terraform-provider-azurerm PR 14437; the same pair in MicrosoftLearning/AZ-700... issue 153). The
message is Json.NET's MissingMemberHandling.Error text, so the rest of Json.NET's reading applies too
(JamesNK/Newtonsoft.Json `JsonReader.ReadBooleanString`, `ReadAsInt32`): a boolean may come as the JSON string
"true"/"false" (any case, `bool.TryParse`) or as a number (non-zero = true); other strings are refused with
"Could not convert string to boolean: <s>."; an integer may come as a numeric string. Microsoft's own REST
samples send `"provisionVMAgent": "true"` (docs.microsoft.com rest/api/compute "Get the model view of a set").

The schema is the copy of Microsoft's swagger in `tests/reference/compute-openapi/` (ComputeRP stable/2025-04-01,
`virtualMachineScaleSet.json` + `computeRPCommon.json`), used for every api-version (members added after the
client's api-version are therefore accepted: a deliberate leniency). Azure names its internal .NET type in
the message (e.g. 'VMScaleSetPublicIPAddressConfiguration'); the emulator names the swagger definition
(e.g. 'VirtualMachineScaleSetPublicIPAddressConfiguration'): unverified which one a given member shows.
Enumerations are not checked here (Json.NET reads them as strings; the platform checks the values it knows).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from .errors import ArmError

SPEC_DIR = Path(__file__).resolve().parent.parent / "tests" / "reference" / "compute-openapi"
_MAIN = "virtualMachineScaleSet.json"
_FILES = (_MAIN, "computeRPCommon.json")

# Definitions the copied files reference but do not hold (Azure/azure-rest-api-specs common-types/v1/common.json
# and Compute's virtualMachine.json), written out from those files.
_EXTERNAL: dict[str, dict[str, Any]] = {
    "SubResource": {"properties": {"id": {"type": "string"}}},
    # common.json Resource (id, name, type read-only; location required; tags a string map) and ExtendedLocation.
    "Resource": {
        "properties": {
            "id": {"type": "string", "readOnly": True},
            "name": {"type": "string", "readOnly": True},
            "type": {"type": "string", "readOnly": True},
            "location": {"type": "string"},
            "tags": {"type": "object", "additionalProperties": {"type": "string"}},
        }
    },
    "ExtendedLocation": {"properties": {"name": {"type": "string"}, "type": {"type": "string"}}},
    "SubResourceReadOnly": {"properties": {"id": {"type": "string", "readOnly": True}}},
    "UserAssignedIdentities": {"type": "object", "additionalProperties": {"type": "object"}},
    # virtualMachine.json VirtualMachineReimageParameters (tempDisk, exactVersion, osProfile{adminPassword,
    # customData}), as azure-sdk-for-net's VirtualMachines_Reimage sample sends it.
    "VirtualMachineReimageParameters": {
        "properties": {
            "tempDisk": {"type": "boolean"},
            "exactVersion": {"type": "string"},
            "osProfile": {
                "x-emulator-name": "OSProfileProvisioningData",
                "properties": {"adminPassword": {"type": "string"}, "customData": {"type": "string"}},
            },
        }
    },
}

# operationId -> body definition, for the operations the emulator answers (from the swagger's body parameters).
BODIES: dict[str, str] = {
    "VirtualMachineScaleSets_CreateOrUpdate": "VirtualMachineScaleSet",
    "VirtualMachineScaleSets_Update": "VirtualMachineScaleSetUpdate",
    "VirtualMachineScaleSets_DeleteInstances": "VirtualMachineScaleSetVMInstanceRequiredIDs",
    "VirtualMachineScaleSets_SetOrchestrationServiceState": "OrchestrationServiceStateInput",
    "VirtualMachineScaleSets_ScaleOut": "VMScaleSetScaleOutInput",
    "VirtualMachineScaleSets_Restart": "VirtualMachineScaleSetVMInstanceIDs",
    "VirtualMachineScaleSets_Redeploy": "VirtualMachineScaleSetVMInstanceIDs",
    "VirtualMachineScaleSets_Reimage": "VirtualMachineScaleSetReimageParameters",
    "VirtualMachineScaleSetVMs_Reimage": "VirtualMachineScaleSetVMReimageParameters",
    "VirtualMachines_Reimage": "VirtualMachineReimageParameters",
}


@dataclass(frozen=True)
class Shape:
    """A resolved schema: an object (members; `open` when additionalProperties), array, or scalar."""

    name: str
    kind: str  # object | array | boolean | integer | number | string | any
    members: dict[str, Shape] | None = None
    items: Shape | None = None
    open: bool = False


class _Spec:
    def __init__(self, directory: Path) -> None:
        self.definitions: dict[str, dict[str, Any]] = {}
        for file in _FILES:
            document = json.loads((directory / file).read_text(encoding="utf-8"))
            for name, schema in document.get("definitions", {}).items():
                self.definitions.setdefault(name, schema)
        for name, schema in _EXTERNAL.items():
            self.definitions.setdefault(name, schema)
        self._shapes: dict[str, Shape] = {}
        self._building: dict[str, dict[str, Shape]] = {}

    def shape(self, name: str) -> Shape:
        found = self._shapes.get(name)
        if found is not None:
            return found
        if name in self._building:  # recursive type: the members are being filled in
            return Shape(name, "object", self._building[name])
        schema = self.definitions.get(name)
        if schema is None:
            return Shape(name, "any")
        members: dict[str, Shape] = {}
        self._building[name] = members
        try:
            built = self._build(schema, name, members)
        finally:
            del self._building[name]
        self._shapes[name] = built
        return built

    def _build(self, schema: dict[str, Any], name: str, members: dict[str, Shape] | None = None) -> Shape:
        if "$ref" in schema:
            return self.shape(schema["$ref"].rsplit("/", 1)[-1])
        kind = schema.get("type")
        is_object = kind == "object" or "properties" in schema or "allOf" in schema
        if is_object and ("properties" in schema or "allOf" in schema):
            members = {} if members is None else members
            for parent in schema.get("allOf", []):
                base = self._build(parent, name)
                if base.members:
                    members.update(base.members)
            for member, sub in schema.get("properties", {}).items():
                members[member] = self._build(sub, sub.get("x-emulator-name") or f"{name}.{member}")
            return Shape(
                schema.get("x-emulator-name") or name, "object", members, open=bool(schema.get("additionalProperties"))
            )
        if is_object:
            return Shape(name, "object", None, open=True)  # a map (tags) or free-form object
        if kind == "array":
            return Shape(name, "array", items=self._build(schema.get("items", {}), name))
        if kind in {"boolean", "integer", "number", "string"}:
            return Shape(name, kind)
        return Shape(name, "any")


@cache
def _spec() -> _Spec:
    return _Spec(SPEC_DIR)


def members(definition: str) -> set[str]:
    """The member names of a swagger definition (its allOf parents' included)."""
    return set(_spec().shape(definition).members or {})


def body_shape(operation_id: str) -> Shape | None:
    definition = BODIES.get(operation_id)
    return _spec().shape(definition) if definition else None


class _Refusal(Exception):
    def __init__(self, message: str, member: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.member = member


def _position(raw: str, member: str | None) -> str:
    """Json.NET's ", line L, position P." for the member's name (approximate: its first occurrence)."""
    if not member:
        return ""
    found = re.search(re.escape(json.dumps(member)) + r"\s*:", raw)
    if not found:
        return ""
    before = raw[: found.start() + len(json.dumps(member))]
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1)
    return f", line {line}, position {column}"


def _path(parent: str, member: str) -> str:
    return f"{parent}.{member}" if parent else member


def _read(value: Any, shape: Shape, path: str, lenient: bool = False) -> Any:
    if value is None or shape.kind == "any":
        return value
    if lenient:
        try:
            return _read(value, shape, path)
        except _Refusal:
            if shape.kind != "object" or not isinstance(value, dict) or shape.members is None:
                return value  # not convertible: kept as written
            return {
                key: _read(item, shape.members[key], _path(path, key), True) if key in shape.members else item
                for key, item in value.items()
            }
    if shape.kind == "object":
        if not isinstance(value, dict):
            raise _Refusal(f"Error converting value to type '{shape.name}'. Path '{path}'")
        if shape.members is None:
            return value
        result: dict[str, Any] = {}
        for member, item in value.items():
            # Json.NET matches member names case-insensitively when no exact match exists.
            key = (
                member
                if member in shape.members
                else next((known for known in shape.members if known.lower() == member.lower()), None)
            )
            if key is None:
                if shape.open:
                    result[member] = item
                    continue
                raise _Refusal(
                    f"Could not find member '{member}' on object of type '{shape.name.split('.')[0]}'. "
                    f"Path '{_path(path, member)}'",
                    member,
                )
            result[key] = _read(item, shape.members[key], _path(path, key))
        return result
    if shape.kind == "array":
        if not isinstance(value, list):
            raise _Refusal(f"Cannot deserialize the current JSON value into an array. Path '{path}'")
        assert shape.items is not None
        return [_read(item, shape.items, f"{path}[{index}]") for index, item in enumerate(value)]
    if shape.kind == "boolean":
        return _boolean(value, path)
    if shape.kind == "integer":
        return _integer(value, path)
    if shape.kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise _Refusal(f"Error converting value to type 'System.Double'. Path '{path}'")
        try:
            return float(value)
        except ValueError as error:
            raise _Refusal(f"Could not convert string to double: {value}. Path '{path}'") from error
    if isinstance(value, dict | list):  # string
        raise _Refusal(f"Unexpected character encountered while parsing value. Path '{path}'")
    return value if isinstance(value, str) else json.dumps(value)


def _boolean(value: Any, path: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0  # Json.NET: Convert.ToBoolean on a number
    if isinstance(value, str):
        text = value.strip().lower()  # bool.TryParse: case-insensitive, surrounding white space ignored
        if text in {"true", "false"}:
            return text == "true"
        raise _Refusal(f"Could not convert string to boolean: {value}. Path '{path}'")
    raise _Refusal(f"Unexpected token when reading boolean. Path '{path}'")


def _integer(value: Any, path: str) -> int:
    if isinstance(value, bool):
        raise _Refusal(f"Error converting value {str(value).lower()} to type 'System.Int32'. Path '{path}'")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError as error:
            raise _Refusal(f"Could not convert string to integer: {value}. Path '{path}'") from error
    raise _Refusal(f"Input string '{value}' is not a valid integer. Path '{path}'")


def read_body(operation_id: str, raw: bytes) -> Any:
    """The body as Compute reads it (booleans and integers converted as Json.NET converts them), or
    ArmError 400 `InvalidRequestFormat` / `InvalidJson` naming the first member it cannot take.
    Operations without a body definition, and empty bodies, pass through unchanged."""
    shape = body_shape(operation_id)
    if shape is None or not raw.strip():
        return None
    try:
        text = raw.decode("utf-8")
        value = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return None  # malformed JSON: the handler's own parse answers it (InvalidRequestContent)
    try:
        return _read(value, shape, "")
    except _Refusal as refusal:
        raise invalid_json(refusal.message + _position(text, refusal.member) + ".") from None


def normalize(definition: str, value: Any) -> Any:
    """`value` with the definition's booleans and integers as Compute would store them ("false" → false,
    "3" → 3); unknown members and values that do not convert are kept as written. For fleet files: Azure
    answers with real booleans, whatever a file says."""
    return _read(value, _spec().shape(definition), "", lenient=True)


def invalid_json(message: str) -> ArmError:
    return ArmError(
        400,
        "InvalidRequestFormat",
        "Cannot parse the request.",
        details=[{"code": "InvalidJson", "message": message}],
    )
