"""Azurite (Table and Queue Storage emulators) for tests, demos and benchmarks: start, wait, stop — no leftovers."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "node_modules" / ".bin" / "azurite-table"
QUEUE_BINARY = ROOT / "node_modules" / ".bin" / "azurite-queue"
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, documented by Microsoft; not a secret).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def connection_string(port: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
        f"TableEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
    )


def queue_connection_string(port: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
        f"QueueEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
    )


def storage_connection_string(table: str, queue: str) -> str:
    """One AzureWebJobsStorage string naming both services (the app's ledger table and its sweep queue)."""
    queue_endpoint = next(p for p in queue.split(";") if p.startswith("QueueEndpoint="))
    return f"{table.rstrip(';')};{queue_endpoint};"


@contextlib.contextmanager
def azurite_table(port: int | None = None) -> Iterator[str]:
    """Run azurite-table in memory on a free loopback port; yield its connection string."""
    port = port or free_port()
    with _azurite(BINARY, "table", port):
        yield connection_string(port)


@contextlib.contextmanager
def azurite_queue(port: int | None = None) -> Iterator[str]:
    """Run azurite-queue (Azurite's Queue service) in memory on a free loopback port; yield its connection string."""
    port = port or free_port()
    with _azurite(QUEUE_BINARY, "queue", port):
        yield queue_connection_string(port)


@contextlib.contextmanager
def _azurite(binary: Path, service: str, port: int) -> Iterator[None]:
    if not binary.exists():
        raise RuntimeError(f"{binary} is missing: run `make node` (npm ci) first")
    process = subprocess.Popen(
        [
            str(binary),
            f"--{service}Host",
            "127.0.0.1",
            f"--{service}Port",
            str(port),
            "--inMemoryPersistence",
            "--disableTelemetry",
            "--skipApiVersionCheck",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env={**os.environ, "NODE_NO_WARNINGS": "1"},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"azurite exited: {process.stderr.read().decode() if process.stderr else ''}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("azurite did not start within 30 s")
            time.sleep(0.05)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()
        if process.stderr:
            process.stderr.close()
