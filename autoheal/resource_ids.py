"""The one resource-id parser: ARM ids from events, ARM answers and the ledger → validated parts.

Event payloads are untrusted: an id with dot segments (`.../virtualMachines/../../../virtualMachineScaleSets/x`),
empty segments, percent-encoded separators, control characters, another subscription or another provider
is rejected with a reason code, never normalised into something else. Structure comes from
`azure.mgmt.core.tools.parse_resource_id` (the SDK's own parser); the checks it does not make are here.

Name rules (learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules):
- resource groups: 1-90 characters, letters or digits (Unicode), underscores, hyphens, periods and
  parentheses, not ending in a period;
- Microsoft.Compute virtualMachines and virtualMachineScaleSets: at most 64 characters (Linux; Windows 15),
  no spaces, control characters or URL punctuation. We accept letters, digits, `.`, `_`, `-` (a superset of
  what Azure accepts; exactly which of `.`/`_` each type allows is not re-verified here), so every real
  name passes and nothing that could change a URL's meaning does;
- Uniform instance ids are decimal numbers.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from enum import StrEnum

MAX_ID_LENGTH = 1024  # ARM ids of the shapes we read are far shorter
MAX_GROUP_LENGTH = 90
MAX_COMPUTE_NAME_LENGTH = 64
COMPUTE = "Microsoft.Compute"
SCALE_SETS = "virtualMachineScaleSets"
VIRTUAL_MACHINES = "virtualMachines"

_COMPUTE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
_INSTANCE_ID = re.compile(r"^[0-9]{1,10}$")
_GROUP_EXTRA = set("._-()")


class IdProblem(StrEnum):
    """Reason codes of a rejected id (logged, and a dimension of the dropped-event counter)."""

    NOT_A_STRING = "id-not-a-string"
    TOO_LONG = "id-too-long"
    NOT_AN_ID = "id-not-arm"
    DOT_SEGMENT = "id-dot-segment"
    EMPTY_SEGMENT = "id-empty-segment"
    ENCODED = "id-encoded-character"
    BAD_CHARACTER = "id-bad-character"
    WHITESPACE = "id-whitespace"
    BAD_SUBSCRIPTION = "id-bad-subscription"
    FOREIGN_SUBSCRIPTION = "id-foreign-subscription"
    WRONG_PROVIDER = "id-wrong-provider"
    BAD_NAME = "id-bad-name"


class InvalidResourceId(ValueError):
    def __init__(self, problem: IdProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem


@dataclass(frozen=True)
class ResourceId:
    """A validated Microsoft.Compute id: a scale set (optionally one of its VMs) or a standalone VM."""

    subscription: str
    resource_group: str
    type: str  # virtualMachineScaleSets | virtualMachines (the top-level type)
    name: str
    child: str = ""  # a Uniform instance id (or a Flexible VM name) under a scale set

    @property
    def is_scale_set(self) -> bool:
        return self.type == SCALE_SETS

    @property
    def scale_set_id(self) -> str:
        """The scale set's own id (for an id of one of its instances too); empty for a standalone VM."""
        if not self.is_scale_set:
            return ""
        return scale_set_id(self.subscription, self.resource_group, self.name)

    def __str__(self) -> str:
        base = f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}/providers/{COMPUTE}"
        tail = (
            f"/{SCALE_SETS}/{self.name}/{VIRTUAL_MACHINES}/{self.child}" if self.child else f"/{self.type}/{self.name}"
        )
        return base + tail


def scale_set_id(subscription_id: str, resource_group: str, name: str) -> str:
    return f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/{COMPUTE}/{SCALE_SETS}/{name}"


def _reject(problem: IdProblem, message: str) -> InvalidResourceId:
    return InvalidResourceId(problem, message)


def _segments(resource_id: object) -> list[str]:
    if not isinstance(resource_id, str):
        raise _reject(IdProblem.NOT_A_STRING, f"a resource id must be a string, got {type(resource_id).__name__}")
    if len(resource_id) > MAX_ID_LENGTH:
        raise _reject(IdProblem.TOO_LONG, f"resource id is {len(resource_id)} characters long (limit {MAX_ID_LENGTH})")
    text = resource_id
    # Refused, never trimmed: ARM names never start or end with whitespace (nor hold control characters), so an
    # event naming " web " names no scale set, least of all `web`. (Microsoft's Resources_CreatedOrUpdated
    # sample has "{subscription-id} /resourceGroups": a placeholder in a storage sample, not an id ARM sent.)
    if any(ord(ch) < 32 or ord(ch) == 127 or (0x80 <= ord(ch) < 0xA0) for ch in text):
        raise _reject(IdProblem.BAD_CHARACTER, "control characters in a resource id")
    if any(ch.isspace() for ch in text):
        raise _reject(IdProblem.WHITESPACE, "whitespace in a resource id (ARM names hold none)")
    if not text.startswith("/"):
        raise _reject(IdProblem.NOT_AN_ID, "a resource id starts with /subscriptions/")
    if "%" in text:
        raise _reject(IdProblem.ENCODED, "percent-encoded characters in a resource id")
    if any(ch in text for ch in "\\?#"):
        raise _reject(IdProblem.BAD_CHARACTER, "backslashes, ? or # in a resource id")
    parts = text[1:].rstrip("/").split("/")
    if any(part in (".", "..") for part in parts):
        raise _reject(IdProblem.DOT_SEGMENT, "dot segments (. or ..) in a resource id")
    if any(part == "" for part in parts):
        raise _reject(IdProblem.EMPTY_SEGMENT, "empty segments (//) in a resource id")
    return parts


def _check_group(name: str) -> None:
    ok = (
        1 <= len(name) <= MAX_GROUP_LENGTH
        and not name.endswith(".")
        and all(ch.isalnum() or ch in _GROUP_EXTRA for ch in name)
    )
    if not ok:
        raise _reject(IdProblem.BAD_NAME, f"not a valid resource group name: {name[:100]!r}")


def _check_compute_name(name: str, kind: str) -> None:
    if not (1 <= len(name) <= MAX_COMPUTE_NAME_LENGTH and _COMPUTE_NAME.match(name) and name.isascii()):
        raise _reject(IdProblem.BAD_NAME, f"not a valid {kind} name: {name[:100]!r}")


def parse(resource_id: object, *, subscription_id: str | None = None) -> ResourceId:
    """A scale set, one of its instances (`.../virtualMachines/<id>`), or a VM; anything else is rejected.

    Deeper ids (`.../virtualMachines/3/networkInterfaces/0`) resolve to their scale set or VM: Event Grid
    reports operations on sub-resources with the sub-resource's id.
    """
    from azure.mgmt.core import tools

    parts = _segments(resource_id)
    cleaned = "/" + "/".join(parts)
    if not tools.is_valid_resource_id(cleaned) or len(parts) < 8:
        raise _reject(IdProblem.NOT_AN_ID, "not an ARM resource id (subscriptions/…/resourceGroups/…/providers/…)")
    if parts[0].lower() != "subscriptions" or parts[2].lower() != "resourcegroups" or parts[4].lower() != "providers":
        raise _reject(IdProblem.NOT_AN_ID, "not an ARM resource id (subscriptions/…/resourceGroups/…/providers/…)")
    ids = tools.parse_resource_id(cleaned)
    subscription = str(ids.get("subscription") or "")
    try:
        uuid.UUID(subscription)
    except ValueError:
        raise _reject(IdProblem.BAD_SUBSCRIPTION, f"subscription {subscription[:64]!r} is not a GUID") from None
    if subscription_id is not None and subscription.lower() != subscription_id.lower():
        raise _reject(IdProblem.FOREIGN_SUBSCRIPTION, f"resource in subscription {subscription}, not {subscription_id}")
    group = str(ids.get("resource_group") or "")
    _check_group(group)
    namespace, kind, name = str(ids.get("namespace") or ""), str(ids.get("type") or ""), str(ids.get("name") or "")
    if namespace.lower() != COMPUTE.lower() or kind.lower() not in (SCALE_SETS.lower(), VIRTUAL_MACHINES.lower()):
        raise _reject(IdProblem.WRONG_PROVIDER, f"{namespace}/{kind} is not a scale set or a virtual machine")
    kind = SCALE_SETS if kind.lower() == SCALE_SETS.lower() else VIRTUAL_MACHINES
    _check_compute_name(name, "scale set" if kind == SCALE_SETS else "virtual machine")
    child = ""
    if kind == SCALE_SETS and str(ids.get("child_type_1") or "").lower() == VIRTUAL_MACHINES.lower():
        child = str(ids.get("child_name_1") or "")
        if not _INSTANCE_ID.match(child):
            _check_compute_name(child, "instance")
    return ResourceId(subscription, group, kind, name, child)


def segments(resource_id: str) -> dict[str, str]:
    """Lower-cased segment names → values (`subscriptions`, `resourcegroups`, `virtualmachinescalesets`, ...).

    For ids this service already trusts (ARM's own answers, the ledger's keys): lenient, never raises.
    Untrusted ids (events, the command line) go through `parse()`.
    """
    parts = [p.strip() for p in resource_id.strip().strip("/").split("/") if p.strip()]
    out: dict[str, str] = {}
    i = 0
    while i + 1 < len(parts):
        key = parts[i].lower()
        if key == "providers":
            out.setdefault("provider", parts[i + 1])
        else:
            out[key] = parts[i + 1]
        i += 2
    return out
