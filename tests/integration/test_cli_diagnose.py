"""`vmss-autoheal diagnose` end to end: the demo fleet on the emulator, through the real SDK."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autoheal.cli import main
from emulator.fleets import demo

pytestmark = pytest.mark.usefixtures("no_sdk_retries")

EXPECTED = {
    "web-frontend": {},
    "analytics-flex": {},
    "batch-jobs": {"repairs-disabled": [], "resilient-create-disabled": [], "resilient-delete-disabled": []},
    "legacy-app": {"repairs-disabled": [], "health-monitoring-misconfigured": [], "resilient-delete-disabled": []},
    "checkout-api": {"health-monitoring-misconfigured": [], "unhealthy-not-repaired": ["0", "1", "2", "3"]},
    "render-farm": {"provisioning-failed": ["2"]},
    "search-indexer": {"repairs-suspended": []},
    "reports-api": {"repairs-suspended": []},
    "cache-nodes": {"grace-period": ["0"]},
    "queue-workers": {"unhealthy-not-repaired": ["2", "4"]},
    "ingest-flex": {"create-timed-out": ["<flex:1>"], "resilient-create-disabled": []},
    "etl-workers": {"delete-failed": ["3", "4"]},
    "ml-training": {"provisioning-failed": ["1"]},
    "aks-pool1-38517204-vmss": {"provisioning-failed": ["1"], "repairs-disabled": []},
}
ALL_CODES = {
    "repairs-disabled",
    "health-monitoring-misconfigured",
    "provisioning-failed",
    "repairs-suspended",
    "grace-period",
    "unhealthy-not-repaired",
    "resilient-create-disabled",
    "resilient-delete-disabled",
    "create-timed-out",
    "delete-failed",
}


@pytest.fixture(scope="module")
def demo_emulator():
    from emulator import Emulator

    with Emulator.start(demo.PATH) as emu:
        yield emu


def run_cli(capsys, emu, *args: str) -> tuple[int, str, str]:
    code = main(
        [
            "diagnose",
            "--subscription",
            emu.subscription_id,
            "--endpoint",
            emu.endpoint,
            "--ca-bundle",
            emu.ca_bundle,
            *args,
        ]
    )
    out, err = capsys.readouterr()
    return code, out, err


def test_demo_json_is_generated_from_demo_py():
    assert demo.PATH.read_text() == demo.render(), "run `python -m emulator.fleets.demo` to refresh demo.json"


def test_diagnose_json_finds_every_documented_cause(capsys, demo_emulator):
    code, out, _ = run_cli(capsys, demo_emulator, "--output", "json")
    assert code == 0
    report = json.loads(out)
    assert set(report) >= {"subscriptionId", "scannedAt", "scaleSets", "armRequests"}
    flex_failed = next(
        vm["name"]
        for vm in demo_emulator.instances("rg-data", "ingest-flex")
        if vm["properties"]["provisioningState"] == "Failed"
    )
    got = {entry["name"]: {f["code"]: f["instanceIds"] for f in entry["findings"]} for entry in report["scaleSets"]}
    expected = {
        name: {code: [flex_failed if i == "<flex:1>" else i for i in ids] for code, ids in codes.items()}
        for name, codes in EXPECTED.items()
    }
    assert got == expected
    assert {code for codes in got.values() for code in codes} == ALL_CODES
    # contract of each scale set entry
    web = next(e for e in report["scaleSets"] if e["name"] == "web-frontend")
    assert web["instances"] == {"total": 4, "healthy": 4, "unhealthy": 0, "unknown": 0, "failed": 0}
    assert web["automaticRepairs"]["serviceState"] == "Running"
    assert web["resiliency"] == {"policyPresent": True, "resilientVMCreation": True, "resilientVMDeletion": True}
    # reads: one list, then instance view + instance list per Uniform set, instance list per Flexible set,
    # the resiliency view of ingest-flex's one Failed VM (Flexible lists carry no deletion status), and the
    # Activity Log of the two scale sets whose repairs are suspended (who suspended them)
    assert report["armRequests"] == 1 + 2 * 12 + 2 + 1 + 2
    reports = next(e for e in report["scaleSets"] if e["name"] == "reports-api")
    (suspended,) = reports["findings"]
    assert suspended["proposedAction"]["reasonCode"] == "suspended-by-person"
    assert suspended["evidence"]["suspendedBy"]["caller"] == "alice@contoso.com"
    assert "alice@contoso.com (a person)" in suspended["summary"]


def test_diagnose_table_shows_findings_and_proposals(capsys, demo_emulator):
    code, out, _ = run_cli(capsys, demo_emulator)
    assert code == 0
    assert "checkout-api" in out and "health-monitoring-misconfigured" in out
    assert "-> retry-delete [3]" in out
    assert "-> resume-automatic-repairs" in out
    assert "14 scale set(s)" in out


def test_diagnose_one_scale_set_reads_only_it(capsys, demo_emulator):
    demo_emulator.reset_stats()
    code, out, _ = run_cli(
        capsys, demo_emulator, "--resource-group", "rg-shop", "--scale-set", "search-indexer", "--output", "json"
    )
    assert code == 0
    report = json.loads(out)
    assert [e["name"] for e in report["scaleSets"]] == ["search-indexer"]
    assert report["armRequests"] == 4  # GET scale set, instance view, instance list, its Activity Log


def test_unknown_subscription_is_one_clear_line(capsys, demo_emulator):
    code = main(
        [
            "diagnose",
            "--subscription",
            "00000000-0000-0000-0000-0000000000aa",
            "--endpoint",
            demo_emulator.endpoint,
            "--ca-bundle",
            demo_emulator.ca_bundle,
        ]
    )
    _, err = capsys.readouterr()
    assert code == 1
    assert err.startswith("error: subscription 00000000-0000-0000-0000-0000000000aa not found")
    assert len(err.strip().splitlines()) == 1


def test_missing_subscription_and_bad_setting(capsys, monkeypatch):
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)
    assert main(["diagnose"]) == 2  # bad input (issue 13): exit 2
    assert "no subscription" in capsys.readouterr().err
    monkeypatch.setenv("AUTOHEAL_STORM_THRESHOLD_PERCENT", "150")
    assert main(["diagnose", "--subscription", "x"]) == 2
    assert "AUTOHEAL_STORM_THRESHOLD_PERCENT='150' is invalid" in capsys.readouterr().err


def test_console_script_unreachable_endpoint(tmp_path: Path):
    from tests.azurite import free_port

    script = Path(sys.executable).with_name("vmss-autoheal")
    result = subprocess.run(
        [
            str(script),
            "diagnose",
            "--subscription",
            demo.SUBSCRIPTION,
            "--endpoint",
            f"https://127.0.0.1:{free_port()}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "AZURE_SUBSCRIPTION_ID": ""},
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot reach ARM at https://127.0.0.1:")
    assert "Traceback" not in result.stderr
