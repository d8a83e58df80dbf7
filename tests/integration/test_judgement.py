"""Issue 20 on the emulator: read everything Azure says, stop loops, hold a VM that runs despite a timeout,
serve 1-instance scale sets."""

from __future__ import annotations

import json
from pathlib import Path

from autoheal.cli import main
from emulator import fleetgen, payloads
from tests.integration.rig import actions_by

RG = "rg-app"
SAMPLE = Path(__file__).parents[1] / "samples" / "list-vms-instance-view-vmagent-failure.json"


def quiet(name: str, **options):
    options.setdefault("automatic_repairs", True)
    options.setdefault("resilient_creation", True)
    options.setdefault("resilient_deletion", True)
    return fleetgen.scale_set(name, **options)


def test_failed_in_the_instance_view_only_and_a_failed_scale_set(make_rig):
    """Microsoft's sample (tests/samples/README.md): no properties.provisioningState, the instance view says
    ProvisioningState/failed/VMAgentProvisioningFailure with PowerState/Running. The scale set's own status
    `ProvisioningState/failed/...` with "Failed to get secret …" (the issue's wording; the status shape is the
    GetInstanceView example's `statuses`, the message text is unverified)."""
    entry = quiet("agentfail", capacity=3)
    vm = entry["virtualMachines"][1]
    del vm["properties"]["provisioningState"]
    vm["properties"]["instanceView"]["statuses"] = json.loads(SAMPLE.read_text())["properties"]["instanceView"][
        "statuses"
    ]
    broken = quiet("secretfail", capacity=2)
    broken["instanceView"]["statuses"] = [
        {
            "code": "ProvisioningState/failed/KeyVaultSecretNotFound",
            "level": "Error",
            "displayStatus": "Provisioning failed",
            "message": "Failed to get secret https://kv-app.vault.azure.net/secrets/tls/0f3c from Key Vault.",
        }
    ]
    rig = make_rig(entry, broken)
    result = rig.sweep(mode="observe")
    findings = {(r.snapshot.name, f.code.value): f for r in result.results for f in r.findings}
    failed = findings[("agentfail", "provisioning-failed")]
    assert failed.instance_ids == ("1",) and "VMAgentProvisioningFailure" in failed.summary
    (facts,) = failed.evidence["instances"]
    assert facts["errorCode"] == "VMAgentProvisioningFailure" and facts["powerState"] == "Running"
    assert "instance view wins" in facts["provisioningStateSource"]
    assert actions_by(result)[("agentfail", "provisioning-failed", "*")]["state"] == "planned"
    scale_set = findings[("secretfail", "scale-set-failed")]
    assert "KeyVaultSecretNotFound" in scale_set.summary and "Failed to get secret" in scale_set.summary
    assert scale_set.proposed_action.reason_code == "needs-person"


def test_replacement_loop_is_held_after_the_second_identical_failure(make_rig, azurite, monkeypatch, capsys):
    """Every new instance fails with the extension error (emulator createFailures, never retried by resilient
    create): the first failure is replaced, its replacement fails the same way, and the scale set is held with
    both failures in the evidence until a person clears it (`vmss-autoheal clear`)."""
    rig = make_rig(
        quiet("loopy", capacity=4, failed={2: "VMExtensionProvisioningError"}, resilient_creation=False),
        faults={
            "createFailures": [
                {"scaleSet": "loopy", "code": "VMExtensionProvisioningError", "times": 1, "attemptSeconds": 0}
            ]
        },
    )
    first = actions_by(rig.sweep())[("loopy", "provisioning-failed", "*")]
    assert first["state"] == "failed" and "VMExtensionProvisioningError" in first["reason"]  # the new one failed
    deletes = rig.ops().get("VirtualMachineScaleSets_DeleteInstances", 0)
    rig.advance(hours=2)  # past backoff and cooldown: only the loop guardrail stands in the way
    second = actions_by(rig.sweep())[("loopy", "provisioning-failed", "*")]
    assert (second["state"], second["reasonCode"]) == ("held", "replacement-loop")
    assert second["reason"].startswith("every new instance fails with VMExtensionProvisioningError: replacing will")
    assert rig.ops().get("VirtualMachineScaleSets_DeleteInstances", 0) == deletes  # not replaced again
    record = rig.record("loopy", "provisioning-failed")
    loop = record.params["loop"]
    assert [f["instanceId"] for f in loop["replaced"]] == ["2"]
    assert [f["errorCode"] for f in loop["again"]] == ["VMExtensionProvisioningError"]
    assert loop["again"][0]["instanceId"] not in {"0", "1", "2", "3"}
    rig.advance(days=3)  # the hold outlives the window: only a person or the failure stopping ends it
    assert actions_by(rig.sweep())[("loopy", "provisioning-failed", "*")]["reasonCode"] == "replacement-loop"
    # diagnose reads the ledger too: it shows the hold the sweep gives
    monkeypatch.setenv("AzureWebJobsStorage", azurite)
    monkeypatch.setenv("AUTOHEAL_LEDGER_TABLE", rig.ledger.table_name)
    args = ["--subscription", rig.emu.subscription_id, "--endpoint", rig.emu.endpoint, "--ca-bundle", rig.emu.ca_bundle]
    assert main(["diagnose", *args, "--output", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (entry,) = report["scaleSets"]
    (finding,) = [f for f in entry["findings"] if f["code"] == "provisioning-failed"]
    assert [(v["state"], v["reasonCode"]) for v in finding["verdicts"]] == [("held", "replacement-loop")]
    # a person clears it: one more try
    assert main(["clear", "--scale-set", "loopy", "--by", "oncall@example.com"]) == 0
    cleared = rig.record("loopy", "provisioning-failed")
    assert (cleared.state, cleared.reason_code) == ("resolved", "cleared")
    assert "oncall@example.com" in cleared.reason
    again = actions_by(rig.sweep())[("loopy", "provisioning-failed", "*")]
    assert again["state"] in ("failed", "succeeded") and again["attempts"] >= 1


def test_running_despite_a_timeout_is_held_then_replaced_when_unhealthy(make_rig):
    """OSProvisioningTimedOut on a VM that runs (fleetgen: PowerState/running) and is not Unhealthy: held for a
    person; replaced once its health says Unhealthy."""
    entry = quiet("agentless", capacity=4, failed={3: "OSProvisioningTimedOut"}, created_ago=3 * 3600)
    rig = make_rig(entry)
    first = actions_by(rig.sweep())
    held = first[("agentless", "create-timed-out", "3")]
    assert (held["state"], held["reasonCode"]) == ("held", "running-despite-timeout")
    assert rig.writes() == 0
    fleet = rig.emu.fleet()
    for scale_set in fleet["scaleSets"]:
        if scale_set["resource"]["name"] == "agentless":
            payloads.set_health(scale_set["virtualMachines"][3], "unhealthy", rig.now)
    rig.emu.load_fleet(fleet)
    second = actions_by(rig.sweep())[("agentless", "create-timed-out", "*")]
    assert (second["code"], second["state"]) == ("replace-failed-instances", "succeeded")


def test_one_instance_scale_set_failed_instance_is_replaced(make_rig):
    """1/1 failed is not a storm (AUTOHEAL_STORM_MIN_INSTANCES=2): resolution 3, the new instance created first."""
    rig = make_rig(quiet("solo", capacity=1, failed={0: "VMExtensionProvisioningError"}))
    action = actions_by(rig.sweep())[("solo", "provisioning-failed", "*")]
    assert action["state"] == "succeeded"
    assert rig.record("solo", "provisioning-failed").params["surge"] == "capacity 1 - 1 < floor 1"


def test_resilient_features_off_are_one_line_per_sweep_in_the_card(make_rig):
    """Issue 20: preview features off are informational and grouped: "resilient create is off on N scale sets",
    one line in the Teams card (a local webhook sink), never a block per scale set."""
    from autoheal.notify import Notifier
    from sinks import LocalTLS, TeamsWebhookSink

    sets = [fleetgen.scale_set(f"s{n}", capacity=2, automatic_repairs=True) for n in range(5)]
    sets.append(quiet("broken", capacity=4, failed={1: "VMExtensionProvisioningError"}))
    rig = make_rig(*sets)
    with LocalTLS() as tls, TeamsWebhookSink(tls) as teams:
        settings = rig.settings.replace(teams_webhook_url=teams.url, teams_min_severity="info")
        notifier = Notifier.from_settings(settings, ca_bundle=tls.ca_file, retry_delays=())
        rig.sweep(mode="observe", notifier=notifier)
        (payload,) = teams.messages
    card = payload["attachments"][0]["content"]
    texts = [b.get("text", "") for b in card["body"] if b.get("type") == "TextBlock"]
    assert "Also: resilient create is off on 5 scale sets." in texts
    assert "Also: resilient delete is off on 5 scale sets." in texts
    blob = json.dumps(card)
    assert "broken" in blob and "s3 (" not in blob and "s3:" not in blob  # one line, not a block per scale set
