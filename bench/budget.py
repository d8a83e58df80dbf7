"""The budgeted sweep at scale (issue 12): Compute spend per policy, the share of each bucket, suspects, coverage.

A synthetic fleet (every scale set healthy and fully configured, except `--suspects` with a failed instance)
is served by the emulator as a subprocess with Compute's documented buckets **accelerated** by
`--time-scale` (refills that fast; capacities as documented), and the project's budget is told the same
factor, so an Azure minute passes in 60/K seconds. The timer's sweeps run back to back, one per simulated
15-minute interval (each in its slice, then the rest of the interval idle), through Resource Graph
inventory and the ledger's rotation cursor, until every scale set has had its health read (one lap).

Printed: tokens spent per Compute policy, the lowest level each Azure bucket reached (as a share of its
capacity: the sweep must never take more than 25 %), 429s, suspects found in the first sweep vs seeded,
sweeps and simulated minutes per lap (the coverage period), and peak memory. Exits 1 if a target is missed.

`--header-form` picks how the emulator writes `x-ms-ratelimit-remaining-resource` (the fleet's
`rateLimitHeaderForm`): `windowed` (`HighCostGetVMScaleSet3Min;…,…30Min;…`, every older capture) or `repeated`
(Microsoft's 2024 article: the same name twice); see emulator/README.md, "Header forms".

    python bench/budget.py --scale-sets 1000 --instances 50 --header-form windowed
    python bench/budget.py --scale-sets 10000 --instances 5 --time-scale 30 --header-form repeated
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autoheal.engine import Engine  # noqa: E402
from autoheal.gateway import ComputeBudget, ComputeGateway  # noqa: E402
from autoheal.gateway.resourcegraph import ResourceGraphGateway  # noqa: E402
from autoheal.remediation.ledger import Ledger  # noqa: E402
from autoheal.settings import default_settings  # noqa: E402
from autoheal.sources import ResourceGraphInventory  # noqa: E402
from bench.sweep import emulator_process  # noqa: E402
from emulator import fleetgen  # noqa: E402
from tests.azurite import azurite_table  # noqa: E402

INTERVAL = timedelta(minutes=15)


def build_fleet(count: int, instances: int, suspects: int, seed: int) -> tuple[dict, set[str]]:
    rng = random.Random(seed)
    sick = set(rng.sample(range(count), suspects))
    now = datetime.now(UTC)
    entries = []
    for index in range(count):
        entries.append(
            fleetgen.scale_set(
                f"vmss-{index:05d}",
                resource_group=f"rg-{index % 20:02d}",
                orchestration="Flexible" if index % 5 == 4 else "Uniform",
                capacity=instances,
                automatic_repairs=True,
                resilient_creation=True,
                resilient_deletion=True,
                failed={1: "VMExtensionProvisioningError"} if index in sick else (),
                now=now,
            )
        )
    return fleetgen.fleet(*entries), {f"vmss-{i:05d}" for i in sick}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale-sets", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--suspects", type=int, default=10)
    parser.add_argument("--share", type=int, default=25, help="AUTOHEAL_COMPUTE_READ_SHARE (%%)")
    parser.add_argument("--time-scale", type=float, default=60.0, help="Azure seconds per real second")
    parser.add_argument("--max-sweeps", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--header-form", choices=("windowed", "repeated"), default="windowed", help="the emulator's header form"
    )
    args = parser.parse_args()
    scale = args.time_scale
    fleet, seeded = build_fleet(args.scale_sets, args.instances, args.suspects, args.seed)
    fleet["rateLimitHeaderForm"] = args.header_form
    work = Path(tempfile.mkdtemp(prefix="autoheal-budget-"))
    fleet_path = work / "fleet.json"
    fleet_path.write_text(json.dumps(fleet))
    del fleet
    extra = ("--compute-refill-scale", str(scale), "--rate-limit-header-form", args.header_form)
    with azurite_table() as storage, emulator_process(fleet_path, 100, work / "emulator.log", extra) as emu:
        settings = default_settings(
            subscription_id=fleetgen.DEFAULT_SUBSCRIPTION_ID,
            arm_endpoint=emu.endpoint,
            arm_ca_bundle=emu.ca_bundle,
            sweep_concurrency=args.concurrency,
            compute_read_share=args.share,
        )
        budget = ComputeBudget(share=args.share / 100, time_scale=scale)
        gateway = ComputeGateway(
            settings.subscription_id, endpoint=emu.endpoint, ca_bundle=emu.ca_bundle, budget=budget, polling_interval=0
        )
        graph = ResourceGraphGateway(settings.subscription_id, endpoint=emu.endpoint, ca_bundle=emu.ca_bundle)
        ledger = Ledger.from_connection_string(storage, "benchbudget")
        ledger.ensure_table()
        engine = Engine(settings, gateway, ledger, inventory=ResourceGraphInventory(graph, gateway))
        slice_seconds = settings.sweep_slice.total_seconds() / scale
        interval = INTERVAL.total_seconds() / scale
        found_first: set[str] = set()
        sweeps, lap = 0, None
        t0 = time.monotonic()
        while sweeps < args.max_sweeps:
            started = time.monotonic()
            result = engine.sweep(slice_seconds=slice_seconds)
            sweeps += 1
            read = sum(1 for r in result.results if not r.deferred)
            if sweeps == 1:
                found_first = {
                    r.scale_set_id.rsplit("/", 1)[-1]
                    for r in result.results
                    if not r.deferred and any(f.code.value == "provisioning-failed" for f in r.findings)
                }
            coverage = result.coverage or {}
            print(
                f"sweep {sweeps:2d}: read {read:5d} of {len(result.results)} ({result.suspects} suspects) in "
                f"{time.monotonic() - started:5.1f}s real; cursor position {coverage.get('position')}",
                flush=True,
            )
            if coverage.get("position") == 0 and coverage.get("readLastSweep"):  # the rotation wrapped: a lap
                lap = sweeps
                break
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
        elapsed = time.monotonic() - t0
        stats = emu.get("/_emulator/stats")
        figures = budget.figures()
        graph_figures = graph.meter.figures()
        graph.close()
        gateway.close()
        ledger.close()
    memory_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print()
    print(
        f"fleet: {args.scale_sets} scale sets x {args.instances} instances; share {args.share} %; time x{scale:g}; "
        f"headers {args.header_form}"
    )
    print("Compute tokens spent by the sweeps, per policy:")
    for policy, spent in figures["spent"].items():
        print(f"  {policy:22s} {spent:7d}")
    print("lowest level of each Azure bucket (share of capacity left; >= 75 % required):")
    worst = 1.0
    for name, bucket in figures["buckets"].items():
        low = bucket["lowestShareLeft"]
        worst = min(worst, low if low is not None else 1.0)
        print(f"  {name:38s} {low:6.1%}  (capacity {bucket['capacity']})")
    throttled = sum(stats.get("computeThrottled", {}).values())
    print(
        f"Compute 429s: {throttled}; Resource Graph: {graph_figures['queries']} queries, {graph_figures['pages']} pages"
    )
    print(f"suspects found in the first sweep: {len(found_first & seeded)} of {len(seeded)} seeded")
    if lap is None:
        print(f"coverage: no full lap within {sweeps} sweeps")
    else:
        minutes = lap * INTERVAL.total_seconds() / 60
        print(f"coverage period: {lap} sweep(s) = {minutes:.0f} simulated minutes ({elapsed:.0f} s real)")
    print(f"peak memory of the sweeping process: {memory_mb:.0f} MB")
    ok = throttled == 0 and worst >= 1 - args.share / 100 - 0.01 and found_first >= seeded and lap is not None
    print("targets:", "held" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
