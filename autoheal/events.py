"""Event Grid / CloudEvents payload → the scale set to evaluate, or a reason to ignore the event.

The event types and operation filters below are the contract with `infra/` (the event subscriptions
are checked against them).
"""

from __future__ import annotations

RESOURCE_EVENT_TYPES = (
    "Microsoft.Resources.ResourceWriteSuccess",
    "Microsoft.Resources.ResourceWriteFailure",
    "Microsoft.Resources.ResourceActionSuccess",
    "Microsoft.Resources.ResourceActionFailure",
    "Microsoft.Resources.ResourceDeleteSuccess",
    "Microsoft.Resources.ResourceDeleteFailure",
)
HEALTH_EVENT_TYPES = (
    "Microsoft.ResourceNotifications.HealthResources.AvailabilityStatusChanged",
    "Microsoft.ResourceNotifications.HealthResources.ResourceAnnotated",
)
ACCEPTED_EVENT_TYPES = RESOURCE_EVENT_TYPES + HEALTH_EVENT_TYPES
# `data.operationName` of Microsoft.Resources events we act on (scale sets and their VMs).
SCALE_SET_OPERATION_PREFIX = "Microsoft.Compute/virtualMachineScaleSets/"
