"""The processes a safety round runs: the ARM emulator as a subprocess (with its control endpoints) and
`vmss-autoheal` commands that may be SIGKILLed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]


class EmulatorProcess:
    """`python -m emulator --fleet F --port 0 ...` and its control endpoints."""

    def __init__(
        self,
        fleet_path: Path,
        *,
        lro_seconds: float,
        lro_polls: int,
        create_delay: float,
        compute_refill_scale: float | None = None,
    ) -> None:
        command = [
            sys.executable,
            "-m",
            "emulator",
            "--fleet",
            str(fleet_path),
            "--port",
            "0",
            "--lro-polls",
            str(lro_polls),
            "--lro-seconds",
            str(lro_seconds),
            "--create-delay",
            str(create_delay),
        ]
        if compute_refill_scale is not None:  # the Compute throttling buckets' refill (merged emulator only)
            command += ["--compute-refill-scale", str(compute_refill_scale)]
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        lines = _read_lines(self.process, 2, timeout=30)
        values = dict(line.strip().partition("=")[::2] for line in lines)
        if "endpoint" not in values or "ca_bundle" not in values:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=2)
            error = self._stderr()
            self.stop()
            raise RuntimeError(f"the emulator did not start ({' '.join(command[1:])}): {lines!r} {error}")
        self.endpoint: str = values["endpoint"]
        self.ca_bundle: str = values["ca_bundle"]
        self._session = requests.Session()

    def control(self, method: str, action: str, body: Any = None) -> Any:
        response = self._session.request(
            method, f"{self.endpoint}/_emulator/{action}", json=body, timeout=30, verify=self.ca_bundle
        )
        response.raise_for_status()
        return response.json()

    def journal(self) -> dict[str, Any]:
        return self.control("GET", "journal")

    def load(self, fleet: dict[str, Any]) -> None:
        self.control("POST", "fleet", fleet)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def _stderr(self) -> str:
        if self.process.poll() is None or self.process.stderr is None:
            return ""
        return self.process.stderr.read()


def _read_lines(process: subprocess.Popen[str], count: int, timeout: float) -> list[str]:
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        while len(lines) < count:
            line = process.stdout.readline()
            if not line:
                return
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    return lines


@dataclass
class Proc:
    """One `vmss-autoheal` process; output goes to files in the round's directory."""

    name: str
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    killed: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no flush, exactly a crash."""
        if self.running():
            os.kill(self.process.pid, signal.SIGKILL)
            self.killed = True
        self.process.wait()

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(f"{self.name} still running after {timeout:.0f}s: killed") from None

    def output(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")
