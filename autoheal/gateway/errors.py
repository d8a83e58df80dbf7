"""What an ARM error means for a remediation: retry soon, retry later, or stop and tell a person.

ARM reuses a few codes for very different situations, so the class is decided from the status, the code and
the wording together:

- `OperationPreempted`: a later write on the same scale set (autoscale, Azure's own repairs, a person)
  cancelled ours. Not done, not failed: re-read and retry soon. Seen in azure-sdk-for-java#1783 and retried
  by kubernetes/autoscaler and kubernetes-sigs/cloud-provider-azure.
- 409 `Conflict` / `OperationNotAllowed` about a concurrent operation: retry soon.
- 409 `OperationNotAllowed` that is a standing refusal: permanent; recorded with Azure's message, not retried
  until it is rechecked. Quota comes as "Operation could not be completed as it results in exceeding approved
  Total Regional Cores quota. ..." (no quota code on this path; nforgeio/neonKUBE#1671, microsoft/onefuzz#614);
  a scale set being deleted as "Operation 'Update Virtual Machine Scale Set' is not allowed on Virtual Machine
  Scale Set '<name>' since it is marked for deletion." (microsoft/onefuzz#511).
- 409 "... not allowed on VM '<name>' since the VM is marked for deletion. You can only retry the Delete
  operation ..." (sassoftware/viya4-iac-azure#140): the instance is already being deleted. Another object marked
  for deletion (an extension, an image) is a passing conflict.
- 403 `AuthorizationFailed` / `LinkedAuthorizationFailed` / `DenyAssignmentAuthorizationFailed`: permanent
  for that scale set; the missing action is named (ARM's message carries it: "does not have authorization to
  perform action '<action>' over scope ...", learn.microsoft.com/azure/role-based-access-control/troubleshooting).
- Compute's 429: `OperationNotAllowed` "The server rejected the request because too many requests have been
  received ...", details `TooManyRequests` naming the policy, innererror `internalErrorCode:
  TooManyRequestsReceived` (microsoft/AzureTRE#2777, Azure/aks-engine#2295): throttled, whatever the status says.
- 429 and 5xx: transient (the SDK already retried honouring `Retry-After`); other 4xx: rejected, retried
  with the action's backoff until its attempt budget is spent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class ErrorClass(StrEnum):
    PREEMPTED = "preempted"  # a later write cancelled ours: retry soon
    CONFLICT = "conflict"  # another operation is running on the same target: retry soon
    THROTTLED = "throttled"  # 429: retry after the bucket refills
    TRANSIENT = "transient"  # 5xx, no answer: retry later
    FORBIDDEN = "forbidden"  # 403: a person must grant the missing action
    REFUSED = "refused"  # a standing refusal (quota, the scale set being deleted): a person must look
    REJECTED = "rejected"  # any other 4xx: fails with the action's backoff and attempt budget
    NOT_FOUND = "not-found"
    ALREADY_DELETING = "already-deleting"  # the instance is already marked for deletion


FORBIDDEN_CODES = frozenset(
    {"authorizationfailed", "linkedauthorizationfailed", "denyassignmentauthorizationfailed", "forbidden"}
)
_PERMANENT_WORDING = ("quota", "being deleted", "is deleting", "scale set is in deleting")
_THROTTLED_CODES = frozenset({"toomanyrequests", "subscriptionrequeststhrottled", "toomanyrequestsreceived"})
# "... is not allowed on <what> '<name>' since it is / the VM is marked for deletion"
_MARKED = re.compile(r"not allowed on (?P<what>.+?) '[^']*' since (?:it|the \w+) is marked for deletion", re.IGNORECASE)
_INSTANCE_TARGETS = ("vm", "virtual machine", "virtual machine scale set vm", "virtual machine scale set vm instance")
_SCALE_SET_TARGETS = ("virtual machine scale set", "virtual machine scaleset", "vm scale set")
_CONCURRENT_WORDING = ("concurrent", "in progress", "another operation", "conflict")
_ACTION = re.compile(r"perform action '([^']+)'", re.IGNORECASE)


class _Error(Protocol):
    @property
    def code(self) -> str: ...

    @property
    def status(self) -> int | None: ...

    @property
    def message(self) -> str: ...


@dataclass(frozen=True)
class BodyError:
    """An ARM error as its body states it: `{"error": {"code", "message", "details", "innererror"}}`."""

    status: int | None
    code: str
    message: str
    internal_code: str = ""
    detail_codes: tuple[str, ...] = ()


def from_body(status: int | None, body: Any) -> BodyError:
    """Read an ARM error body (a dict, or its JSON text); a body that is not one keeps the status only."""
    if isinstance(body, (str, bytes)):
        try:
            body = json.loads(body)
        except ValueError:
            return BodyError(status, "", str(body)[:500])
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        return BodyError(status, "", "")
    inner = error.get("innererror") or error.get("innerError") or {}
    details = error.get("details") or []
    return BodyError(
        status,
        str(error.get("code") or ""),
        str(error.get("message") or ""),
        str(inner.get("internalErrorCode") or "") if isinstance(inner, Mapping) else "",
        tuple(str(d.get("code") or "") for d in details if isinstance(d, Mapping)),
    )


def _marked_for_deletion(message: str) -> ErrorClass | None:
    """Who is marked for deletion decides: the scale set (a standing refusal), an instance (already going), or
    something else on it (a passing conflict)."""
    found = _MARKED.search(message)
    if found is None:
        return ErrorClass.ALREADY_DELETING if "marked for deletion" in message else None
    what = found["what"].strip().lower()
    if what in _INSTANCE_TARGETS:
        return ErrorClass.ALREADY_DELETING
    if what in _SCALE_SET_TARGETS:
        return ErrorClass.REFUSED
    return ErrorClass.CONFLICT


def classify(error: _Error) -> ErrorClass:
    code = (error.code or "").lower()
    message = (error.message or "").lower()
    status = error.status
    internal = str(getattr(error, "internal_code", "") or "").lower()
    details = {str(d).lower() for d in getattr(error, "detail_codes", ()) or ()}
    if code == "operationpreempted":
        return ErrorClass.PREEMPTED
    if internal in _THROTTLED_CODES or (code == "operationnotallowed" and "toomanyrequests" in details):
        # Compute's 429 body, however it reached us (an LRO's status body carries no HTTP 429)
        return ErrorClass.THROTTLED
    if status is None or status < 400:
        # No answer, or a long-running operation that ended Failed (the platform's InternalExecutionError,
        # TransientFailure, ...): the next attempt, after the backoff, may well succeed.
        return ErrorClass.TRANSIENT
    if status == 429 or code in _THROTTLED_CODES:
        return ErrorClass.THROTTLED
    if status == 403 or code in FORBIDDEN_CODES:
        return ErrorClass.FORBIDDEN
    if status == 404:
        return ErrorClass.NOT_FOUND
    if status == 409:
        marked = _marked_for_deletion(message)
        if marked is not None:
            return marked
        if "quota" in code or any(word in message for word in _PERMANENT_WORDING):
            return ErrorClass.REFUSED
        if code in {"conflict", "retryableerror"} or any(word in message for word in _CONCURRENT_WORDING):
            return ErrorClass.CONFLICT
        # OperationNotAllowed without a recognisable reason: treat as a concurrent operation, bounded by the
        # attempt budget, rather than give up on a scale set for a wording we have not seen.
        return ErrorClass.CONFLICT
    if status == 408 or status >= 500:
        return ErrorClass.TRANSIENT
    return ErrorClass.REJECTED


RETRY_SOON = frozenset({ErrorClass.PREEMPTED, ErrorClass.CONFLICT, ErrorClass.THROTTLED})


def missing_action(message: str) -> str | None:
    """The RBAC action a 403 names, e.g. `Microsoft.Compute/virtualMachineScaleSets/write`."""
    found = _ACTION.search(message or "")
    return found.group(1) if found else None
