"""The documented causes and resolutions each finding points to (`Finding.reference`), and the exact section.

Sources (the two documents the project implements, copies in /work/shared/mission/):
- the troubleshooting article "Azure Virtual Machine Scale Sets instances aren't repaired even when automatic
  repairs policy is enabled", https://learn.microsoft.com/troubleshoot/azure/virtual-machine-scale-sets/
  restart-stop/instances-not-repaired (causes 1-5);
- "Resilient create and delete for Virtual Machine Scale Sets",
  https://learn.microsoft.com/azure/virtual-machine-scale-sets/resilient-vm-create-delete.

Section anchors follow Learn's rule for heading ids (lower case, punctuation dropped, spaces to hyphens).
The live troubleshooting article's headings for causes 1 and 2 were read in the docs corpus; those for
causes 3-5 are taken from the mission copy without its "Cause N:" prefix and are unverified: a wrong anchor
still lands on the right article, at its top.
"""

from __future__ import annotations

from dataclasses import dataclass

REPAIRS_DOC = (
    "https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-automatic-instance-repairs"
)
TROUBLESHOOTING_DOC = (
    "https://learn.microsoft.com/troubleshoot/azure/virtual-machine-scale-sets/restart-stop/instances-not-repaired"
)
RESILIENT_DOC = "https://learn.microsoft.com/azure/virtual-machine-scale-sets/resilient-vm-create-delete"
# The scale set's own `statuses` (ProvisioningState/failed/<code> with Azure's message) are read from here.
INSTANCE_VIEW_DOC = "https://learn.microsoft.com/rest/api/compute/virtual-machine-scale-sets/get-instance-view"
_TROUBLESHOOTING = "Troubleshooting 'VMSS instances aren't repaired'"


@dataclass(frozen=True)
class Section:
    """One section of a Microsoft article: what a link says and where it lands."""

    label: str
    url: str


SECTIONS: dict[str, Section] = {
    "repairs-disabled": Section(
        "Cause 1: automatic repairs policy isn't correctly enabled",
        f"{TROUBLESHOOTING_DOC}#automatic-repairs-policy-isnt-correctly-enabled-in-the-scale-set",
    ),
    "health-monitoring-misconfigured": Section(
        "Cause 2: health monitoring isn't correctly configured",
        f"{TROUBLESHOOTING_DOC}#health-monitoring-isnt-correctly-configured-in-the-scale-set",
    ),
    "provisioning-failed": Section(
        "Cause 3: instance is marked unhealthy due to provisioning failure",
        f"{TROUBLESHOOTING_DOC}#instance-is-marked-unhealthy-due-to-provisioning-failure",
    ),
    "repairs-suspended": Section(
        "Cause 4: automatic repairs have been suspended",
        f"{TROUBLESHOOTING_DOC}#automatic-repairs-have-been-suspended-in-the-scale-set-due-to-too-many-failed-repairs",
    ),
    "grace-period": Section(
        "Cause 5: instance is in its grace period",
        f"{TROUBLESHOOTING_DOC}#instance-is-in-its-grace-period",
    ),
    "unhealthy-not-repaired": Section("Symptoms: instances aren't repaired", f"{TROUBLESHOOTING_DOC}#symptoms"),
    "resilient-create-disabled": Section("Resilient create", f"{RESILIENT_DOC}#resilient-create"),
    "create-timed-out": Section("Resilient create", f"{RESILIENT_DOC}#resilient-create"),
    "resilient-delete-disabled": Section("Resilient delete", f"{RESILIENT_DOC}#resilient-delete"),
    "delete-failed": Section("Resilient delete: get status", f"{RESILIENT_DOC}#get-status"),
    "scale-set-failed": Section("Scale set instance view (REST)", INSTANCE_VIEW_DOC),
}


def section_for(finding_code: str) -> Section | None:
    return SECTIONS.get(finding_code)


def _ref(code: str, text: str) -> str:
    return f"{text} ({SECTIONS[code].url})"


CAUSE_1 = _ref("repairs-disabled", f"{_TROUBLESHOOTING}, cause 1 / resolution 1: enable automatic repairs")
CAUSE_2 = _ref(
    "health-monitoring-misconfigured",
    f"{_TROUBLESHOOTING}, cause 2 / resolution 2: make the application answer the health probe "
    "(2xx or a TCP handshake) at the configured endpoint",
)
CAUSE_3 = _ref(
    "provisioning-failed",
    f"{_TROUBLESHOOTING}, cause 3 / resolution 3: delete the failed instance and add a new one; "
    "repairs do not handle provisioning failures",
)
CAUSE_4 = _ref(
    "repairs-suspended",
    f"{_TROUBLESHOOTING}, cause 4 / resolution 4: resume automatic repairs with setOrchestrationServiceState",
)
CAUSE_5 = _ref("grace-period", f"{_TROUBLESHOOTING}, cause 5 / resolution 5: the instance is in its grace period")
SYMPTOM = _ref(
    "unhealthy-not-repaired",
    f"{_TROUBLESHOOTING}, symptoms: instances stay Unhealthy and are not repaired although the policy is enabled",
)
RESILIENT_CREATE = _ref("resilient-create-disabled", "Resilient create and delete, 'Resilient create'")
RESILIENT_DELETE = _ref("resilient-delete-disabled", "Resilient create and delete, 'Resilient delete'")
SCALE_SET_FAILED = _ref(
    "scale-set-failed",
    "Scale set instance view: the scale set's own provisioning failed; fix what Azure's message names, then "
    "update the scale set (az vmss update) so its model provisions again",
)
