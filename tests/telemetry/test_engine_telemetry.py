"""What a real sweep emits: spans, metrics and decision logs with the dimensions the alerts query."""

from __future__ import annotations

from emulator import fleetgen
from tests.integration.rig import Rig, remediate_settings


def test_a_sweep_emits_spans_metrics_and_decision_logs(otel, start_emulator, gateway_for, ledger):
    emu = start_emulator(
        fleetgen.fleet(
            fleetgen.scale_set(
                "web",
                capacity=4,
                automatic_repairs=True,
                failed={1: "VMExtensionProvisioningError"},
                resilient_creation=True,
                resilient_deletion=True,
            ),
            fleetgen.scale_set(
                "ops",
                capacity=2,
                automatic_repairs=True,
                tags={"autoheal": "off"},
                failed={0: "VMExtensionProvisioningError"},
                resilient_creation=True,
                resilient_deletion=True,
            ),
        )
    )
    rig = Rig(emu, gateway_for(emu), ledger, remediate_settings(emu))
    result = rig.sweep()

    names = [s.name for s in otel.finished()]
    assert names.count("autoheal.sweep") == 1
    assert names.count("autoheal.scale_set") == 2
    assert names.count("autoheal.action") == 1
    sweep_span = next(s for s in otel.finished() if s.name == "autoheal.sweep")
    assert sweep_span.attributes["correlationId"] == result.correlation_id

    findings = {(a["findingCode"], a["severity"]) for a, _ in otel.points("autoheal.findings")}
    assert ("provisioning-failed", "error") in findings
    actions = {(a["actionCode"], a["outcome"]) for a, _ in otel.points("autoheal.actions")}
    assert ("replace-failed-instances", "succeeded") in actions
    held = {a["reasonCode"] for a, _ in otel.points("autoheal.held")}
    assert "opt-out" in held

    decisions = [(body, attrs) for body, attrs in otel.log_attributes() if body.startswith("remediation")]
    succeeded = [attrs for body, attrs in decisions if attrs.get("outcome") == "succeeded"]
    assert succeeded, decisions
    assert succeeded[0]["actionCode"] == "replace-failed-instances"
    assert succeeded[0]["findingCode"] == "provisioning-failed"
    assert succeeded[0]["scaleSetId"].endswith("/virtualMachineScaleSets/web")
    assert succeeded[0]["mode"] == "remediate"
    assert succeeded[0]["correlationId"] == result.correlation_id
    opted_out = [attrs for _, attrs in decisions if attrs.get("reasonCode") == "opt-out"]
    assert opted_out and opted_out[0]["outcome"] == "held"
