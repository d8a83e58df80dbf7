"""The documented causes and resolutions each finding points to (`Finding.reference`)."""

REPAIRS_DOC = (
    "https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-automatic-instance-repairs"
)
RESILIENT_DOC = "https://learn.microsoft.com/azure/virtual-machine-scale-sets/resilient-vm-create-delete"
_TROUBLESHOOTING = "Troubleshooting 'VMSS instances aren't repaired'"

CAUSE_1 = f"{_TROUBLESHOOTING}, cause 1 / resolution 1: enable automatic repairs in the scale set ({REPAIRS_DOC})"
CAUSE_2 = (
    f"{_TROUBLESHOOTING}, cause 2 / resolution 2: make the application answer the health probe "
    f"(2xx or a TCP handshake) at the configured endpoint ({REPAIRS_DOC})"
)
CAUSE_3 = (
    f"{_TROUBLESHOOTING}, cause 3 / resolution 3: delete the failed instance and add a new one; "
    f"repairs do not handle provisioning failures ({REPAIRS_DOC})"
)
CAUSE_4 = (
    f"{_TROUBLESHOOTING}, cause 4 / resolution 4: resume automatic repairs with setOrchestrationServiceState "
    f"({REPAIRS_DOC})"
)
CAUSE_5 = f"{_TROUBLESHOOTING}, cause 5 / resolution 5: the instance is in its grace period ({REPAIRS_DOC})"
SYMPTOM = (
    f"{_TROUBLESHOOTING}, symptoms: instances stay Unhealthy and are not repaired although the policy is "
    f"enabled ({REPAIRS_DOC})"
)
RESILIENT_CREATE = f"Resilient create and delete, 'Resilient create' and 'Enable' ({RESILIENT_DOC})"
RESILIENT_DELETE = f"Resilient create and delete, 'Resilient delete' and 'Get status' ({RESILIENT_DOC})"
