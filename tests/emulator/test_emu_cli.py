"""`python -m emulator` as a subprocess: the two announcement lines, serving, and a clean stop."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from .conftest import SAMPLE_FLEET


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "emulator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_prints_endpoint_and_ca_bundle_then_stops_cleanly(signum):
    process = _start("--fleet", str(SAMPLE_FLEET), "--port", "0", "--page-size", "2", "--lro-polls", "0")
    try:
        endpoint_line = process.stdout.readline().strip()
        bundle_line = process.stdout.readline().strip()
        assert endpoint_line.startswith("endpoint=https://127.0.0.1:")
        assert bundle_line.startswith("ca_bundle=") and bundle_line.endswith(".pem")
        endpoint = endpoint_line.split("=", 1)[1]
        ca_bundle = bundle_line.split("=", 1)[1]
        assert Path(ca_bundle).read_text().startswith("-----BEGIN CERTIFICATE-----")
        subscription = "6f1d3c2a-8b4e-4d7f-9a0c-1e2f3a4b5c6d"
        response = requests.get(
            f"{endpoint}/subscriptions/{subscription}/providers/Microsoft.Compute/virtualMachineScaleSets",
            params={"api-version": "2026-04-01"},
            headers={"Authorization": "Bearer t"},
            verify=ca_bundle,
            timeout=5,
        )
        assert response.status_code == 200 and len(response.json()["value"]) == 2 and "nextLink" in response.json()
        process.send_signal(signum)
        assert process.wait(timeout=10) == 0
        assert not Path(ca_bundle).exists()  # the temporary CA is removed on exit
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()


def test_a_missing_fleet_file_is_an_error(tmp_path):
    process = _start("--fleet", str(tmp_path / "missing.json"))
    out, err = process.communicate(timeout=20)
    assert process.returncode == 2
    assert out == "" and "error:" in err


def test_compute_scales_are_command_line_options():
    process = _start("--fleet", str(SAMPLE_FLEET), "--compute-refill-scale", "60", "--compute-capacity-scale", "0.1")
    try:
        endpoint = process.stdout.readline().strip().split("=", 1)[1]
        ca_bundle = process.stdout.readline().strip().split("=", 1)[1]
        response = requests.get(
            f"{endpoint}/subscriptions/6f1d3c2a-8b4e-4d7f-9a0c-1e2f3a4b5c6d/providers/Microsoft.Compute"
            "/virtualMachineScaleSets",
            params={"api-version": "2026-04-01"},
            headers={"Authorization": "Bearer t"},
            verify=ca_bundle,
            timeout=5,
        )
        # capacity 1,080 x 0.1 = 108 tokens, one spent
        assert response.headers["x-ms-ratelimit-remaining-resource"] == (
            "Microsoft.Compute/HighCostGetVMScaleSetSubscriptionMaximum;107"
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()
