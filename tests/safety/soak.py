"""`make soak`: many seeded crash and race rounds against real `vmss-autoheal` processes, with figures.

    python -m tests.safety.soak [--seed 11] [--kills 50] [--races 40] [--collisions 10] [--doubles 10] \
        [--workers 3] \
        [--max-minutes 20] [--json FILE] [--keep DIR] [--lro-seconds S] [--compute-refill-scale N]

Each kill round starts `vmss-autoheal sweep --apply` on a fresh one-scale-set fleet, SIGKILLs it at a
seeded kill point (an accepted delete still running, a random moment in the action, or the gap after its
first write ended), expires its lease in the ledger and resumes once. Each race round runs `--workers`
`handle-event` processes on one ResourceWriteFailure event plus one sweep. Each collision round PATCHes
the scale set as another actor the moment a sweep's delete ends (the restore meets a write that is not
ours). Each double round puts two findings whose fixes take an instance out of service on one scale set
(a failed instance, an unhealthy one with repairAction Replace), sets a zero cooldown and races `--workers`
sweeps, then runs a final sweep: never two disruptive actions in flight, nothing short. The same seed
replays the same rounds (the processes' own timing still varies a little). Exit status 0 when every
invariant held, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.azurite import azurite_table  # noqa: E402
from tests.safety.harness import KILL_MODES, Harness, HarnessOptions, Round  # noqa: E402
from tests.safety.scenarios import CRASH_KINDS  # noqa: E402


def summarize(
    kill_rounds: list[Round],
    race_rounds: list[Round],
    collision_rounds: list[Round],
    seconds: float,
    double_rounds: list[Round] | None = None,
) -> dict[str, Any]:
    double_rounds = double_rounds or []

    def totals(rounds: list[Round]) -> dict[str, Any]:
        figures = [r.figures for r in rounds]
        return {
            "rounds": len(rounds),
            "kills": sum(r.kills for r in rounds),
            "resumes": sum(r.resumes for r in rounds),
            "doubles": sum(f.doubles for f in figures),
            "roundsWithDoubles": sum(f.doubles > 0 for f in figures),
            "belowFloor": sum(f.below_floor for f in figures),
            "shortCapacityMinutes": round(sum(f.short_seconds for f in figures) / 60, 2),
            "roundsLeftShort": sum(f.left_short for f in figures),
            "recordsNonTerminal": sum(f.non_terminal for f in figures),
            "unrecordedResumes": sum(f.unrecorded_resumes for f in figures),
            "roundsWithTwoInFlight": sum(f.concurrent > 0 for f in figures),
            "roundsWithViolations": sum(bool(f.violations) for f in figures),
        }

    by_kill: dict[str, dict[str, Any]] = {}
    for mode in KILL_MODES:
        chosen = [r for r in kill_rounds if r.kill_mode == mode]
        if chosen:
            by_kill[mode] = totals(chosen)
    everything = [*kill_rounds, *race_rounds, *collision_rounds, *double_rounds]
    violations = Counter(v.invariant for r in everything for v in r.violations)
    return {
        "seconds": round(seconds, 1),
        "kills": totals(kill_rounds),
        "killsByPoint": by_kill,
        "races": totals(race_rounds),
        "collisions": totals(collision_rounds),
        "doubles": totals(double_rounds),
        "violationsByInvariant": dict(sorted(violations.items())),
    }


def print_summary(summary: dict[str, Any]) -> None:
    def line(label: str, t: dict[str, Any]) -> str:
        return (
            f"{label:18} rounds {t['rounds']:3}  kills {t['kills']:3}  resumes {t['resumes']:3}  "
            f"doubles {t['doubles']:3} (in {t['roundsWithDoubles']} rounds)  below-floor {t['belowFloor']:3}  "
            f"short {t['shortCapacityMinutes']:6.2f} min  left short {t['roundsLeftShort']:3}  "
            f"non-terminal {t['recordsNonTerminal']:3}  unrecorded resumes {t['unrecordedResumes']:3}  "
            f"two in flight {t['roundsWithTwoInFlight']:3}"
        )

    print("\n== soak figures", flush=True)
    print(line("kill rounds", summary["kills"]))
    for mode, t in summary["killsByPoint"].items():
        print(line(f"  {mode}", t))
    print(line("race rounds", summary["races"]))
    print(line("collision rounds", summary["collisions"]))
    print(line("double rounds", summary["doubles"]))
    print(f"violations by invariant: {summary['violationsByInvariant'] or 'none'}")
    print(f"took {summary['seconds']:.0f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.safety.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--kills", type=int, default=50, help="kill rounds")
    parser.add_argument("--races", type=int, default=40, help="race rounds")
    parser.add_argument("--collisions", type=int, default=10, help="rounds where another actor collides")
    parser.add_argument("--doubles", type=int, default=10, help="rounds with two disruptive findings, racing")
    parser.add_argument("--workers", type=int, default=3, help="handle-event processes per race (plus a sweep)")
    parser.add_argument("--max-minutes", type=float, default=20.0, help="stop starting rounds after this long")
    parser.add_argument("--json", type=Path, help="also write the figures and every round's verdict here")
    parser.add_argument("--keep", type=Path, help="keep the processes' output under this directory")
    parser.add_argument("--lro-seconds", type=float, default=HarnessOptions.lro_seconds)
    parser.add_argument("--compute-refill-scale", type=float, help="passed to the emulator (when it has it)")
    args = parser.parse_args(argv)
    options = HarnessOptions(lro_seconds=args.lro_seconds, compute_refill_scale=args.compute_refill_scale)
    deadline = time.monotonic() + args.max_minutes * 60
    began = time.monotonic()
    kill_rounds: list[Round] = []
    race_rounds: list[Round] = []
    collision_rounds: list[Round] = []
    double_rounds: list[Round] = []
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    with azurite_table() as storage, Harness(storage, seed=args.seed, options=options, workdir=args.keep) as harness:
        # Interleave kills and races so a time-bounded run still has some of both.
        plan = (
            ["kill"] * args.kills + ["race"] * args.races + ["collision"] * args.collisions + ["double"] * args.doubles
        )
        harness.rng.shuffle(plan)
        for n, shape in enumerate(plan, 1):
            if time.monotonic() > deadline:
                print(f"time budget of {args.max_minutes} min spent: stopping after {n - 1} rounds", flush=True)
                break
            if shape == "kill":
                kind = CRASH_KINDS[len(kill_rounds) % len(CRASH_KINDS)]
                mode = KILL_MODES[(len(kill_rounds) // len(CRASH_KINDS)) % len(KILL_MODES)]
                round_ = harness.crash_round(kind, kill=mode)
                kill_rounds.append(round_)
            elif shape == "double":
                round_ = harness.double_round(args.workers)
                double_rounds.append(round_)
            elif shape == "race":
                round_ = harness.race_round(args.workers)
                race_rounds.append(round_)
            else:
                round_ = harness.interloper_round(("failed", "unhealthy")[len(collision_rounds) % 2])
                collision_rounds.append(round_)
            print(f"[{n:3}/{len(plan)}] {round_.describe()}", flush=True)
    summary = summarize(kill_rounds, race_rounds, collision_rounds, time.monotonic() - began, double_rounds)
    print_summary(summary)
    if args.json:
        rounds = [
            {"round": r.index, "shape": r.scenario.kind, "kill": r.kill_mode, "verdict": r.describe()}
            for r in harness.rounds
        ]
        args.json.write_text(json.dumps({"seed": args.seed, **summary, "rounds": rounds}, indent=2))
    return 1 if summary["violationsByInvariant"] else 0


if __name__ == "__main__":
    sys.exit(main())
