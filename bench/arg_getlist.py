"""Does pre-screening suspects through Resource Graph's GET/LIST API lower Compute spend? (issue 19, item 5)

The same budgeted sweeps as bench/budget.py (Compute's documented buckets accelerated by `--time-scale`, the
budget told the same factor, one sweep per simulated 15-minute interval, Resource Graph inventory and the
ledger's rotation cursor), run twice on the same fleet: AUTOHEAL_SUSPECT_PRESCREEN=off, then get-list.

The fleet: `--scale-sets` healthy Uniform scale sets, `--persistent` of them with a failed instance (observe
mode: it stays failed, a real suspect every sweep), and `--stale` of them whose failed instance ARM has already
replaced while Resource Graph's query still shows it (ARG's query lags ARM by about a minute: pinned with the
emulator's `resourceGraph.stale`); each stale one also has an unhealthy instance, which only a Compute read
(with health) can find. Each run goes on until the rotation completes a lap.

Printed per mode: VMSS High Cost Get / VMSS Low Cost Get tokens spent on the suspect stage and in total over
the lap, scale sets the rotation read, sweeps per lap, GET/LIST requests, and whether the findings over the lap
are the same (none lost). Exits 1 if a finding is lost or a Compute 429 is met.

    python bench/arg_getlist.py --scale-sets 1000 --instances 5 --persistent 10 --stale 20
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autoheal.engine import Engine  # noqa: E402
from autoheal.gateway import ComputeBudget, ComputeGateway  # noqa: E402
from autoheal.gateway.budget import VMSS_HIGH_COST_GET, VMSS_LOW_COST_GET  # noqa: E402
from autoheal.gateway.resourcegraph import ResourceGraphGateway  # noqa: E402
from autoheal.remediation.ledger import Ledger  # noqa: E402
from autoheal.settings import default_settings  # noqa: E402
from autoheal.sources import ResourceGraphInventory  # noqa: E402
from emulator import Emulator, fleetgen  # noqa: E402
from tests.azurite import azurite_table  # noqa: E402

INTERVAL = timedelta(minutes=15)
RG = "rg-bench"


def build_fleet(count: int, instances: int, persistent: int, stale: int) -> tuple[dict[str, Any], list[str], list[str]]:
    now = datetime.now(UTC)
    entries, sick, stale_names = [], [], []
    for index in range(count):
        name = f"vmss-{index:05d}"
        failed: dict[int, str] = {}
        unhealthy: list[int] = []
        if index % (count // max(1, persistent + stale)) == 0 and len(sick) + len(stale_names) < persistent + stale:
            failed = {1: "VMExtensionProvisioningError"}
            if len(sick) < persistent:
                sick.append(name)
            else:
                stale_names.append(name)
                unhealthy = [2 % instances]
        entries.append(
            fleetgen.scale_set(
                name,
                resource_group=RG,
                capacity=instances,
                automatic_repairs=True,
                resilient_creation=True,
                resilient_deletion=True,
                failed=failed,
                unhealthy=unhealthy,
                now=now,
            )
        )
    # ARG's query keeps showing the stale ones as loaded (failed instance included): the fleet's own
    # `resourceGraph.stale` option (emulator/resourcegraph.py) pins them before ARM replaces that instance.
    stale_ids = [fleetgen.scale_set_id(fleetgen.DEFAULT_SUBSCRIPTION_ID, RG, name) for name in stale_names]
    return fleetgen.fleet(*entries, resource_graph={"stale": stale_ids}), sick, stale_names


def run(args: argparse.Namespace, prescreen: bool, storage: str) -> dict[str, Any]:
    scale = args.time_scale
    fleet, _sick, stale = build_fleet(args.scale_sets, args.instances, args.persistent, args.stale)
    with Emulator.start(fleet, compute_refill_scale=scale) as emu:
        setup = ComputeGateway(emu.subscription_id, endpoint=emu.endpoint, ca_bundle=emu.ca_bundle, polling_interval=0)
        for name in stale:  # ARM removes the failed instance; ARG's pinned view keeps it
            setup.delete_instances(setup.snapshot_by_name(RG, name, instance_view=False), ["1"])
        setup.close()
        emu.reset_stats()
        settings = default_settings(
            subscription_id=emu.subscription_id,
            arm_endpoint=emu.endpoint,
            arm_ca_bundle=emu.ca_bundle,
            sweep_concurrency=1,  # suspects first, in order: the suspect stage's spend can be read off
            compute_read_share=args.share,
        )
        budget = ComputeBudget(share=args.share / 100, time_scale=scale)
        gateway = ComputeGateway(
            emu.subscription_id, endpoint=emu.endpoint, ca_bundle=emu.ca_bundle, budget=budget, polling_interval=0
        )
        graph = ResourceGraphGateway(emu.subscription_id, endpoint=emu.endpoint, ca_bundle=emu.ca_bundle)
        ledger = Ledger.from_connection_string(storage, f"benchgetlist{'on' if prescreen else 'off'}")
        ledger.ensure_table()
        inventory = ResourceGraphInventory(graph, gateway, prescreen=prescreen)
        engine = Engine(settings, gateway, ledger, inventory=inventory)
        snapshots: list[dict[str, int]] = []
        engine.progress = lambda done, total: snapshots.append(dict(budget.figures()["spent"]))
        slice_seconds = settings.sweep_slice.total_seconds() / scale
        interval = INTERVAL.total_seconds() / scale
        suspect_high = suspect_low = ring_read = suspects_read = 0
        findings: set[tuple[str, str, tuple[str, ...]]] = set()
        sweeps, lap = 0, None
        first: dict[str, int] = {}
        while sweeps < args.max_sweeps:
            started = time.monotonic()
            snapshots.clear()
            before = dict(budget.figures()["spent"])
            result = engine.sweep(slice_seconds=slice_seconds)
            sweeps += 1
            if result.suspects:
                at = snapshots[min(result.suspects, len(snapshots)) - 1]
                suspect_high += at.get(VMSS_HIGH_COST_GET, 0) - before.get(VMSS_HIGH_COST_GET, 0)
                suspect_low += at.get(VMSS_LOW_COST_GET, 0) - before.get(VMSS_LOW_COST_GET, 0)
            read = [r for r in result.results if not r.deferred]
            suspects_read += min(result.suspects, len(read))
            ring_read += max(0, len(read) - result.suspects)
            for r in read:
                for f in r.findings:
                    findings.add((r.scale_set_id.rsplit("/", 1)[-1], f.code.value, tuple(sorted(f.instance_ids))))
            if sweeps == 1:
                after = budget.figures()["spent"]
                first = {
                    "suspectsRead": suspects_read,
                    "suspectHigh": suspect_high,
                    "suspectLow": suspect_low,
                    "high": after.get(VMSS_HIGH_COST_GET, 0),
                    "low": after.get(VMSS_LOW_COST_GET, 0),
                    "ringRead": ring_read,
                }
            coverage = result.coverage or {}
            print(
                f"  prescreen {'get-list' if prescreen else 'off':8s} sweep {sweeps}: read {len(read)} "
                f"({result.suspects} suspects), cursor {coverage.get('position')}, "
                f"{time.monotonic() - started:.1f}s real of a {slice_seconds:.1f}s slice, "
                f"budget deferrals {result.arm.get('compute', {}).get('deferred')}",
                flush=True,
            )
            if coverage.get("position") == 0 and coverage.get("readLastSweep"):
                lap = sweeps
                break
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
        spent = budget.figures()["spent"]
        stats = emu.stats()
        graph.close()
        gateway.close()
        ledger.close()
    return {
        "first": first,
        "sweeps": lap,
        "suspectHigh": suspect_high,
        "suspectLow": suspect_low,
        "suspectsRead": suspects_read,
        "ringRead": ring_read,
        "high": spent.get(VMSS_HIGH_COST_GET, 0),
        "low": spent.get(VMSS_LOW_COST_GET, 0),
        "getList": sum(n for op, n in stats["byOperation"].items() if op.startswith("ArgGetList_")),
        "throttled": sum(stats.get("computeThrottled", {}).values()),
        "prescreen": inventory.prescreen_figures.figures(),
        "findings": findings,
        "stale": stale,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale-sets", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=5)
    parser.add_argument("--persistent", type=int, default=10)
    parser.add_argument("--stale", type=int, default=20)
    parser.add_argument("--share", type=int, default=25, help="AUTOHEAL_COMPUTE_READ_SHARE (%%)")
    parser.add_argument("--time-scale", type=float, default=60.0, help="Azure seconds per real second")
    parser.add_argument("--max-sweeps", type=int, default=12)
    args = parser.parse_args()
    with azurite_table() as storage:
        off = run(args, False, storage)
        on = run(args, True, storage)
    print()
    print(
        f"fleet: {args.scale_sets} Uniform scale sets x {args.instances}; {args.persistent} persistent suspects, "
        f"{args.stale} stale in Resource Graph's query; share {args.share} %; time x{args.time_scale:g}"
    )
    print("first sweep (per lap: as many sweeps as the rotation needed):")
    print(
        "| prescreen | suspects read from Compute | VMSS High Cost Get on suspects | VMSS Low Cost Get on suspects "
        "| VMSS High Cost Get in the sweep | rotation scale sets read | GET/LIST requests | sweeps per lap | 429s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, figures in (("off", off), ("get-list", on)):
        one = figures["first"]
        print(
            f"| {name} | {one['suspectsRead']} | {one['suspectHigh']} | {one['suspectLow']} | {one['high']} | "
            f"{one['ringRead']} | {figures['getList']} | {figures['sweeps']} | {figures['throttled']} |"
        )
    print(f"pre-screen: {on['prescreen']}")
    lost = off["findings"] - on["findings"]
    unhealthy_found = {name for name, code, ids in on["findings"] if name in on["stale"] and ids}
    print(f"findings over the lap: off {len(off['findings'])}, get-list {len(on['findings'])}, lost {len(lost)}")
    print(
        f"stale suspects whose unhealthy instance the rotation found (get-list): {len(unhealthy_found)} of "
        f"{len(on['stale'])}"
    )
    ok = not lost and on["throttled"] == 0 and off["throttled"] == 0 and on["sweeps"] is not None
    print("targets:", "held" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
