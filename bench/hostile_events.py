"""Hostile Event Grid deliveries through the registered function, in one process, in remediate mode.

    python bench/hostile_events.py [--events 10000] [--seed 13]

The same corpus and runner as `tests/functions/test_hostile_corpus.py` (which runs 1,000 events in
`make test`): the demo fleet on the ARM emulator, the ledger in Azurite, each delivery split as the Functions
host does and decoded by azure-functions' own Event Grid converter. Prints crashes, unexplained drops and
ARM writes (all three must be 0: exit 1 otherwise), then the outcome counts by reason code.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000, help="events to deliver (default 10,000)")
    parser.add_argument("--seed", type=int, default=13, help="corpus seed (the same seed, the same corpus)")
    args = parser.parse_args()

    import function_app
    from autoheal.remediation.ledger import Ledger
    from autoheal.runtime import Runtime, set_runtime
    from emulator import Emulator
    from emulator.fleets import demo
    from tests.azurite import azurite_table
    from tests.functions import hostile
    from tests.integration.rig import remediate_settings

    functions = {f.get_function_name(): f for f in function_app.app.get_functions()}
    from autoheal.gateway import ComputeBudget

    # Coalescing is off: the benign events hit the demo's few scale sets far faster than Compute's per-scale-set
    # buckets refill, so the emulator's buckets and the budget share one accelerated clock (as in the test).
    scale = 600.0
    with Emulator.start(demo.PATH, compute_refill_scale=scale) as emu, azurite_table() as storage:
        ledger = Ledger.from_connection_string(storage, f"hostile{uuid.uuid4().hex[:12]}")
        ledger.ensure_table()
        set_runtime(
            Runtime(
                remediate_settings(emu, event_coalesce_window=timedelta(0)),
                ledger=ledger,
                gateway_options={"retry_total": 0, "budget": ComputeBudget(share=0.25, time_scale=scale)},
            )
        )
        started = time.perf_counter()
        figures = hostile.run(
            functions["on_resource_event"].get_user_function(), emu.stats, hostile.corpus(args.seed, args.events)
        )
        elapsed = time.perf_counter() - started
        set_runtime(None)
    print(f"seed {args.seed}, {elapsed:.1f} s")
    print(f"events        {figures.events} in {figures.deliveries} deliveries")
    print(f"crashes       {figures.crashes}")
    print(f"unexplained   {figures.unexplained_drops}")
    print(f"ARM writes    {figures.arm_writes}  (ARM requests {figures.arm_requests})")
    print(f"evaluated     {figures.evaluated}")
    print(f"refused by the worker's converter before the function: {figures.refused_before_the_function}")
    for key, count in figures.outcomes.most_common():
        print(f"  {count:6d}  {key}")
    for example in figures.examples:
        print(f"  example: {example}")
    return 0 if figures.crashes == figures.unexplained_drops == figures.arm_writes == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
