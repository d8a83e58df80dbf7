"""A queue worker killed with SIGKILL in the middle of a subscription's slice loses no slice and doubles no action
(issue 22). The worker is a real process running the function app's queue trigger (tests/queueworker.py) over
Azurite's Queue service; the message it held comes back after its visibility timeout (as the Functions host's
does when an instance dies: azure-webjobs-sdk#2624) and another worker, whose clock is past the action lease,
finishes the slice. The emulator's journal is the witness: no instance is deleted twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from autoheal import handlers
from autoheal.fanout import SweepQueue
from autoheal.remediation.ledger import Ledger
from autoheal.runtime import Runtime, set_runtime
from autoheal.settings import load_settings
from emulator import Emulator
from tests.integration.test_management_group import IN_SCOPE, MG, OUTSIDE, fleet, healed, writes_by_subscription
from tests.queuehost import QueueHost

ROOT = Path(__file__).resolve().parents[2]
VISIBILITY = 6  # seconds a taken message stays invisible: longer than a slice here


def _env(emu: Emulator, storage: str, table: str, queue: str) -> dict[str, str]:
    return {
        "AUTOHEAL_SCOPE": f"mg:{MG}",
        "AUTOHEAL_MODE": "remediate",
        "AUTOHEAL_ARM_ENDPOINT": emu.endpoint,
        "AUTOHEAL_ARM_CA_BUNDLE": emu.ca_bundle,
        "AzureWebJobsStorage": storage,
        "AUTOHEAL_LEDGER_TABLE": table,
        "AUTOHEAL_SWEEP_QUEUE": queue,
        "AUTOHEAL_LRO_POLL_SECONDS": "0",
        "AUTOHEAL_COMPUTE_READ_SHARE": "100",
        "AUTOHEAL_ACTION_LEASE": "PT1M",
        "AUTOHEAL_SWEEP_CONCURRENCY": "1",
    }


def test_a_killed_queue_worker_loses_no_slice_and_doubles_no_action(azurite, queue_storage, app_functions):
    from tests.azurite import storage_connection_string

    storage = storage_connection_string(azurite, queue_storage)
    table, queue_name = f"ledger{uuid.uuid4().hex[:12]}", f"sweep-{uuid.uuid4().hex[:12]}"
    with Emulator.start(fleet()) as emu:
        env = _env(emu, storage, table, queue_name)
        settings = load_settings(env)
        ledger = Ledger.from_connection_string(storage, table)
        ledger.ensure_table()
        parent = Runtime(settings, ledger=ledger)
        queue = SweepQueue.from_settings(settings)
        emu.set_faults({"latencyMs": 120})  # slow ARM: the first worker is surely mid-slice when killed
        worker = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "queueworker.py")],
            env={**os.environ, **env, "QUEUEHOST_VISIBILITY": str(VISIBILITY), "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
            handlers.fan_out(parent, queue)  # the timer's tick: three slices
            deadline = time.monotonic() + 60
            while not emu.journal()["writes"]:
                assert time.monotonic() < deadline, "the worker never wrote"
                assert worker.poll() is None, (worker.stderr.read() if worker.stderr else "")[-2000:]
                time.sleep(0.02)
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
            killed_at = len(emu.journal()["writes"])
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=10)
            if worker.stdout is not None:
                worker.stdout.close()
        emu.set_faults(None)
        # A second worker, later than the killed run's action lease (its clock and Azure's both move on).
        emu.clock.advance(120)
        later = Runtime(
            settings,
            ledger=ledger,
            clock=lambda: datetime.now(UTC) + timedelta(seconds=120),
            gateway_options={"retry_total": 1, "retry_backoff_factor": 0.01},
        )
        set_runtime(later)
        host = QueueHost(storage, queue_name, app_functions["sweep_slice"].get_user_function(), visibility_timeout=30)
        try:
            finished = 0
            deadline = time.monotonic() + 90
            while finished < 3 and time.monotonic() < deadline:
                finished += host.run_once() == "processed"
                time.sleep(0.05)
            assert finished == 3, "every slice, the killed one included, is done by the second worker"
            assert sorted(host.dequeue_counts) == [1, 1, 2]  # the killed worker's message came back once
            assert queue.depth() == {"queued": 0, "poison": 0}
        finally:
            host.close()
            handlers.forget_scope_runtimes(later)
            handlers.forget_scope_runtimes(parent)
            set_runtime(None)
            queue.close()
        assert killed_at >= 1
        for sub in IN_SCOPE:
            assert healed(emu, sub), sub
        assert OUTSIDE not in writes_by_subscription(emu)
        writes = emu.journal()["writes"]
        deleted: Counter[tuple[str, str]] = Counter()
        for write in writes:
            if write["operationId"] == "VirtualMachineScaleSets_DeleteInstances":
                for instance in write["instanceIds"]:
                    deleted[(write["path"].split("/")[2], instance)] += 1
        assert deleted and all(n == 1 for n in deleted.values()), deleted  # no instance deleted twice
        assert {sub for sub, _ in deleted} == set(IN_SCOPE)
        records = ledger.all_records()
        assert {r.state.value for r in records} <= {"succeeded", "resolved"}
        ledger.close()
