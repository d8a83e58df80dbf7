"""What an ARM error means for a remediation: retry soon, retry later, or stop and tell a person.

ARM reuses a few codes for very different situations, so the class is decided from the status, the code and
the wording together:

- `OperationPreempted`: a later write on the same scale set (autoscale, Azure's own repairs, a person)
  cancelled ours. Not done, not failed: re-read and retry soon. Seen in azure-sdk-for-java#1783 and retried
  by kubernetes/autoscaler and kubernetes-sigs/cloud-provider-azure.
- 409 `Conflict` / `OperationNotAllowed` about a concurrent operation: retry soon.
- 409 `OperationNotAllowed` that is a standing refusal (quota exceeded, the scale set is being deleted or
  "marked for deletion"): permanent; recorded with Azure's message, not retried until it is rechecked.
- 403 `AuthorizationFailed` / `LinkedAuthorizationFailed` / `DenyAssignmentAuthorizationFailed`: permanent
  for that scale set; the missing action is named (ARM's message carries it: "does not have authorization to
  perform action '<action>' over scope ...", learn.microsoft.com/azure/role-based-access-control/troubleshooting).
- 429 and 5xx: transient (the SDK already retried honouring `Retry-After`); other 4xx: rejected, retried
  with the action's backoff until its attempt budget is spent.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Protocol


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
_ALREADY_DELETING = ("marked for deletion",)
_CONCURRENT_WORDING = ("concurrent", "in progress", "another operation", "conflict")
_ACTION = re.compile(r"perform action '([^']+)'", re.IGNORECASE)


class _Error(Protocol):
    @property
    def code(self) -> str: ...

    @property
    def status(self) -> int | None: ...

    @property
    def message(self) -> str: ...


def classify(error: _Error) -> ErrorClass:
    code = (error.code or "").lower()
    message = (error.message or "").lower()
    status = error.status
    if code == "operationpreempted":
        return ErrorClass.PREEMPTED
    if status is None or status < 400:
        # No answer, or a long-running operation that ended Failed (the platform's InternalExecutionError,
        # TransientFailure, ...): the next attempt, after the backoff, may well succeed.
        return ErrorClass.TRANSIENT
    if status == 429 or code in {"toomanyrequests", "subscriptionrequeststhrottled"}:
        return ErrorClass.THROTTLED
    if status == 403 or code in FORBIDDEN_CODES:
        return ErrorClass.FORBIDDEN
    if status == 404:
        return ErrorClass.NOT_FOUND
    if status == 409:
        if any(word in message for word in _ALREADY_DELETING):
            return ErrorClass.ALREADY_DELETING
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
