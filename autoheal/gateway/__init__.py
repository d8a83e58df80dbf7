"""The one door to Azure Resource Manager: every ARM request of the project goes through this package.

`compute.py` holds the Compute gateway (scale sets, instances, VMs); `resourcegraph.py` the Resource Graph
gateway (the inventory's KQL queries); `activitylog.py` who suspended automatic repairs (the Activity Log);
`policies.py` the pipeline policies (meter, pacing, Compute's budget) every client is built with
(`arm_policies()`); `clients.py` the one way those clients are built (endpoint, credential, transport,
retries). Nothing outside this package imports an `azure.mgmt.*` client.
"""

from __future__ import annotations

from .activitylog import ActivityLogBudget, ActivityLogGateway
from .budget import BudgetExhausted, ComputeBudget
from .clients import DEFAULT_ENDPOINT
from .compute import (
    API_VERSION,
    COMPUTE,
    REQUIRED_ACTIONS,
    ArmError,
    ArmMeter,
    ComputeGateway,
    all_required_actions,
    requires,
)
from .policies import DEADLINE, arm_policies
from .resourcegraph import GraphMeter, ResourceGraphGateway

__all__ = [
    "API_VERSION",
    "COMPUTE",
    "DEADLINE",
    "DEFAULT_ENDPOINT",
    "REQUIRED_ACTIONS",
    "ActivityLogBudget",
    "ActivityLogGateway",
    "ArmError",
    "ArmMeter",
    "BudgetExhausted",
    "ComputeBudget",
    "ComputeGateway",
    "GraphMeter",
    "ResourceGraphGateway",
    "all_required_actions",
    "arm_policies",
    "requires",
]
