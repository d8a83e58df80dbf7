"""The scale set itself failed: its own instance view reads `ProvisioningState/failed[/<code>]`.

That is not an instance failure: replacing instances does not fix a scale-set model that Azure could not apply
(e.g. "Failed to get secret …" for a Key Vault certificate in osProfile.secrets). A person fixes what Azure's
message names; the finding carries Azure's code and message verbatim.
"""

from __future__ import annotations

from ..model import Finding, FindingCode, ProposedAction, ReasonCode
from . import references
from .context import Context, failed_provisioning


def check(ctx: Context) -> list[Finding]:
    s = ctx.snapshot
    status = s.failed_status
    model_failed = (s.provisioning_state or "").lower() == "failed"
    if status is None and not model_failed:
        return []
    code = ""
    message = ""
    if status is not None:
        parts = status["code"].split("/", 2)
        code = parts[2] if len(parts) > 2 else ""
        message = status.get("message") or status.get("displayStatus") or ""
    said = f" ({code})" if code else ""
    quoted = f": {message}" if message else ""
    evidence: dict[str, object] = {
        "scaleSetProvisioningState": s.provisioning_state or "not in the model",
        "scaleSetStatus": dict(status) if status else "none in the instance view",
    }
    if code:
        evidence["errorCode"] = code
    return [
        failed_provisioning(
            ctx,
            code=FindingCode.SCALE_SET_FAILED,
            summary=f"Scale set {s.name} itself failed provisioning{said}{quoted}",
            reference=references.SCALE_SET_FAILED,
            proposed_action=ProposedAction.none(
                "the scale set's own model failed: replacing instances will not help; fix what Azure names",
                ReasonCode.NEEDS_PERSON,
            ),
            evidence=evidence,
        )
    ]
