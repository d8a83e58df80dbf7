"""The management-group fan-out at scale (issue 22): 20 subscriptions x 500 scale sets, swept through the queue.

One emulator (a subprocess) serves a fleet of `--subscriptions` subscriptions under one management group, each
with `--scale-sets` healthy, fully configured scale sets of `--instances` instances (2 by default: scaled down
from real sizes so that 10,000 scale sets fit this 2-core / 24 GB machine; the per-scale-set cost of a sweep,
two high-cost Compute reads, does not depend on the instance count), with Compute's documented buckets
**accelerated** by `--time-scale` (an Azure minute passes in 60/K real seconds; every budget is told the same K).
The app runs as it does in Azure: the timer's handler enqueues one message per subscription on Azurite's Queue
service, queue workers (threads of this process, each a stand-in for a Functions instance: tests/queuehost.py)
invoke the registered `sweep_slice` function, each slice sweeping one subscription with its own budget.

The first tick's first `--solo` slices are drained by 1 worker and the rest by `--workers` N workers: the
speed-up is the ratio of the two rates (seconds a slice), measured in one run on alike subscriptions. Then a
tick every 15 simulated minutes until every subscription's rotation has read every scale set once (a lap): the
coverage period per subscription, and the lowest level any Compute bucket of any subscription reached (>= 75 %
required: the default share is 25 %). The physical limit of the speed-up: a slice is paced by its own
subscription's budget (it cannot go faster however many workers there are), so N workers are at best N times
faster (and at most `--subscriptions` times), less what the CPU (2 cores, shared with the emulator) takes back.

    python bench/fanout.py                       # 20 x 500, 2 workers (this machine has 2 cores)
    python bench/fanout.py --subscriptions 4 --scale-sets 50 --workers 2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autoheal import handlers  # noqa: E402
from autoheal.fanout import SweepQueue  # noqa: E402
from autoheal.remediation.ledger import Ledger  # noqa: E402
from autoheal.runtime import Runtime, set_runtime  # noqa: E402
from autoheal.settings import Scope, default_settings  # noqa: E402
from bench.sweep import emulator_process  # noqa: E402
from emulator import fleetgen  # noqa: E402
from tests.azurite import azurite_queue, azurite_table, storage_connection_string  # noqa: E402
from tests.queuehost import QueueHost  # noqa: E402

MG = "mg-landing-zones"
INTERVAL = timedelta(minutes=15)


def subscription_ids(count: int) -> list[str]:
    return [str(uuid.UUID(int=0x5AB0_0000_0000_4000_8000_0000_0000_0000 + n)) for n in range(count)]


def build_fleet(subscriptions: list[str], scale_sets: int, instances: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    parts = {}
    for sub in subscriptions:
        parts[sub] = [
            fleetgen.scale_set(
                f"vmss-{index:04d}",
                resource_group=f"rg-{index % 10:02d}",
                subscription_id=sub,
                orchestration="Flexible" if index % 5 == 4 else "Uniform",
                capacity=instances,
                automatic_repairs=True,
                resilient_creation=True,
                resilient_deletion=True,
                now=now,
            )
            for index in range(scale_sets)
        ]
    return fleetgen.multi_fleet(parts, management_group=MG)


@contextlib.contextmanager
def world(fleet_path: Path, scale: float, work: Path, args: argparse.Namespace) -> Iterator[tuple[Any, Runtime]]:
    """A fresh emulator, ledger table and queue; the process-wide runtime of a management-group deployment."""
    extra = ("--compute-refill-scale", str(scale))
    with (
        azurite_table() as table,
        azurite_queue() as queue,
        emulator_process(fleet_path, 1000, work / f"emulator-{uuid.uuid4().hex[:6]}.log", extra) as emu,
    ):
        settings = default_settings(
            mode="observe",
            subscription_id="",
            scope=Scope("management-group", MG),
            arm_endpoint=emu.endpoint,
            arm_ca_bundle=emu.ca_bundle,
            sweep_concurrency=args.concurrency,
            compute_read_share=args.share,
            sweep_slice=timedelta(seconds=args.slice),
            storage_connection_string=storage_connection_string(table, queue),
            sweep_queue="autoheal-sweep",
        )
        ledger = Ledger.from_connection_string(settings.storage_connection_string, f"bench{uuid.uuid4().hex[:10]}")
        ledger.ensure_table()
        runtime = Runtime(settings, ledger=ledger, gateway_options={"budget_time_scale": scale})
        set_runtime(runtime)
        try:
            yield emu, runtime
        finally:
            handlers.forget_scope_runtimes(runtime)
            set_runtime(None)
            ledger.close()


def drain(runtime: Runtime, workers: int, expected: int, visibility: int) -> float:
    """Run `workers` queue workers until `expected` messages are processed; the seconds it took."""
    from tests.helpers import registered_functions

    invoke = registered_functions()["sweep_slice"].get_user_function()
    done = [0]
    lock = threading.Lock()
    started = time.monotonic()
    step = max(1, expected // 4)

    def work() -> None:
        host = QueueHost(
            runtime.settings.storage_connection_string,
            runtime.settings.sweep_queue,
            invoke,
            visibility_timeout=visibility,
        )
        try:
            while True:
                with lock:
                    if done[0] >= expected:
                        return
                outcome = host.run_once()
                if outcome == "processed":
                    with lock:
                        done[0] += 1
                        if done[0] % step == 0 and done[0] < expected:
                            print(f"  {done[0]}/{expected} slices after {time.monotonic() - started:.1f} s", flush=True)
                elif outcome == "empty":
                    time.sleep(0.05)
        finally:
            host.close()

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


def tick(runtime: Runtime) -> int:
    queue = SweepQueue.from_settings(runtime.settings)
    try:
        return int(handlers.fan_out(runtime, queue)["enqueued"])
    finally:
        queue.close()


def per_subscription(runtime: Runtime, subscriptions: list[str]) -> dict[str, dict[str, Any]]:
    from autoheal.scope import SubscriptionLedger

    rows = {}
    for sub in subscriptions:
        ledger = SubscriptionLedger(runtime.ledger, sub)
        rows[sub] = {"summary": ledger.load_status("last-sweep"), "cursor": ledger.load_status("sweep-cursor")}
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscriptions", type=int, default=20)
    parser.add_argument("--scale-sets", type=int, default=500, help="per subscription")
    parser.add_argument("--instances", type=int, default=2, help="per scale set (scaled down to fit the machine)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--share", type=int, default=25, help="AUTOHEAL_COMPUTE_READ_SHARE (%%)")
    parser.add_argument("--time-scale", type=float, default=120.0, help="Azure seconds per real second")
    parser.add_argument("--slice", type=int, default=60, help="AUTOHEAL_SWEEP_SLICE in real seconds")
    parser.add_argument("--concurrency", type=int, default=4, help="AUTOHEAL_SWEEP_CONCURRENCY")
    parser.add_argument("--max-ticks", type=int, default=12)
    parser.add_argument("--solo", type=int, default=3, help="slices of the first tick drained by one worker")
    args = parser.parse_args()
    scale = args.time_scale
    subscriptions = subscription_ids(args.subscriptions)
    work = Path(tempfile.mkdtemp(prefix="autoheal-fanout-"))
    fleet_path = work / "fleet.json"
    fleet_path.write_text(json.dumps(build_fleet(subscriptions, args.scale_sets, args.instances)))
    visibility = args.slice * 3  # the visibility timeout exceeds the slice
    total = args.subscriptions * args.scale_sets
    print(
        f"fleet: {args.subscriptions} subscriptions x {args.scale_sets} scale sets x {args.instances} instances "
        f"({total} scale sets) under {MG}; share {args.share} %; time x{scale:g}; slice {args.slice} s",
        flush=True,
    )

    # One world: the first tick's first `--solo` slices are drained by one worker, the rest by N workers (the
    # subscriptions are alike, so the two slice rates compare); then a tick every 15 simulated minutes until every
    # subscription's rotation has read all its scale sets (its coverage period).
    interval = INTERVAL.total_seconds() / scale
    with world(fleet_path, scale, work, args) as (emu, runtime):
        laps: dict[str, int] = {}
        ticks = 0
        single = parallel = 0.0
        t0 = time.monotonic()
        while ticks < args.max_ticks and len(laps) < len(subscriptions):
            started = time.monotonic()
            enqueued = tick(runtime)
            if ticks == 0:
                solo = min(args.solo, enqueued - 1)
                single = drain(runtime, 1, solo, visibility) / solo
                print(f"first tick, 1 worker: {solo} slices, {single:.1f} s a slice", flush=True)
                rest = enqueued - solo
                parallel = drain(runtime, args.workers, rest, visibility) / rest
                print(f"first tick, {args.workers} workers: {rest} slices, {parallel:.1f} s a slice", flush=True)
            else:
                drain(runtime, args.workers, enqueued, visibility)
            ticks += 1
            for sub, row in per_subscription(runtime, subscriptions).items():
                cursor = row["cursor"] or {}
                if sub not in laps and cursor.get("lastLapSeconds") is not None:
                    laps[sub] = ticks
            took = time.monotonic() - started
            print(f"tick {ticks:2d}: {took:5.1f} s; laps complete {len(laps)}/{len(subscriptions)}", flush=True)
            time.sleep(max(0.0, interval - took))
        elapsed = time.monotonic() - t0
        stats = emu.get("/_emulator/stats")
        rows = per_subscription(runtime, subscriptions)
    speedup = single / parallel if parallel else 0.0
    limit = min(args.workers, args.subscriptions)
    # The budget's floor for one slice: two high-cost reads per scale set from the subscription's
    # HighCostGetVMScaleSet bucket (1,080 tokens, 360 a minute: compute-throttling-limits), of which the share may
    # be used at once and the share of the refill after that (accelerated K times here).
    needed, upfront = 2 * args.scale_sets, 1080 * args.share / 100
    refill = 360 * args.share / 100 / 60 * scale
    floor = max(0.0, needed - upfront) / refill
    print(
        f"budget floor of one slice: {floor:.1f} s real ({floor * scale / 60:.1f} Azure minutes); measured "
        f"{single:.1f} s with 1 worker, {parallel:.1f} s a slice with {args.workers}",
        flush=True,
    )
    print(
        f"speed-up of {args.workers} workers over 1: {speedup:.2f}x (physical limit {limit}x: a slice is paced by its "
        "own subscription's Compute budget, so only more workers on more subscriptions go faster; the 2 shared "
        "cores take back the rest)",
        flush=True,
    )
    by_sub = stats.get("computeBySubscription", {})
    worst_sub, worst = "", 1.0
    print("\nper subscription: coverage period (ticks of 15 simulated minutes), lowest Compute bucket level")
    for sub in subscriptions:
        fills = by_sub.get(sub.lower(), {})
        low = min((entry["lowestFill"] for entry in fills.values()), default=1.0)
        if low < worst:
            worst_sub, worst = sub, low
        lap = laps.get(sub)
        period = f"{lap} ticks = {lap * INTERVAL.total_seconds() / 60:.0f} min" if lap else "no lap"
        summary = rows[sub]["summary"] or {}
        print(f"  {sub}  {period:>20}  lowest bucket {low:6.1%}  last slice read {summary.get('readScaleSets')}")
    throttled = sum(stats.get("computeThrottled", {}).values())
    print(f"lowest bucket of any subscription: {worst:.1%} ({worst_sub}); Compute 429s: {throttled}")
    memory_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"{ticks} ticks in {elapsed:.0f} s real; peak memory of the workers' process {memory_mb} MB")
    ok = worst >= 0.75 - 0.01 and throttled == 0 and len(laps) == len(subscriptions)
    print("targets:", "held" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
