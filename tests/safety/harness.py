"""The crash and race harness: real `vmss-autoheal` processes against the ARM emulator as a subprocess and
Azurite, killed with SIGKILL at chosen moments, resumed, raced, and judged by the emulator's journal.

Black box on purpose: the engine is only ever a CLI process with app settings in its environment, the
emulator only its HTTPS endpoint and `/_emulator/*` control endpoints, the ledger only its Table
Storage rows (tolerant of property names), so the harness keeps working when the engine is rewritten.

    with Harness(storage=connection_string, seed=7) as harness:       # starts the emulator subprocess
        round_ = harness.crash_round("failed", kill="accepted-delete")  # one seeded round, judged
        round_ = harness.race_round(workers=3)                         # 3 handle-event + 1 sweep at once
        round_ = harness.interloper_round("failed")                    # another actor writes mid-replacement
        print(round_.figures, round_.violations)

Lower-level pieces for new scenarios: `harness.load(scenario)` → `Round` (scenarios.py builds fleets);
`round_.sweep()` / `round_.handle_event(path)` / `round_.spawn(*args)` start processes (processes.py);
`round_.kill_when(process, predicate)` and `round_.interfere_when(process, predicate, patch)` act when the
journal satisfies a predicate (`delete_in_flight`, `doomed_delete_ended`, `writes_ended`, `_after`);
`round_.kill_after(process, seconds)`, `round_.expire_leases()` (ledger_view.py), `round_.resume()`,
`round_.settle()`, `round_.judge()` (invariants.py).

Time: the emulator clock runs in real time; a write's LRO lasts `lro_seconds` (polled, it never finishes
early: `lro_polls` is huge), new instances provision for `create_delay`. The lease
(`AUTOHEAL_ACTION_LEASE`, at least PT1M) is not waited out: `expire_leases` moves the ledger's
`leaseUntil` into the past, which is what a minute passing would do.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from . import invariants, scenarios
from .invariants import RoundFigures, Violation
from .ledger_view import LedgerView, timestamp
from .processes import ROOT, EmulatorProcess, Proc
from .scenarios import Scenario

_CLI = Path(sys.executable).with_name("vmss-autoheal")
CLI = [str(_CLI)] if _CLI.exists() else [sys.executable, "-m", "autoheal.cli"]
KILL_MODES = ("accepted-delete", "random-time", "between-writes")
Journal = dict[str, Any]


def _refill_scale_from_env() -> float | None:
    """SAFETY_COMPUTE_REFILL_SCALE=N passes `--compute-refill-scale N` to the emulator (once it has the flag)."""
    value = os.environ.get("SAFETY_COMPUTE_REFILL_SCALE", "").strip()
    return float(value) if value else None


@dataclass
class HarnessOptions:
    # Every accepted write runs this long (real time). Not a multiple of `poll_seconds`: as in Azure, the
    # run learns of the end at its next poll, which leaves a gap others can write in.
    lro_seconds: float = 1.5
    lro_polls: int = 1_000_000  # status polls answered InProgress: effectively "until lro_seconds"
    create_delay: float = 1.0  # a new instance is Creating this long
    # `--compute-refill-scale N` for the emulator's Compute throttling buckets (once it has the flag)
    compute_refill_scale: float | None = field(default_factory=_refill_scale_from_env)
    poll_seconds: int = 1  # AUTOHEAL_LRO_POLL_SECONDS: 0 would spin on the monitor for the whole LRO
    lro_timeout: str = "PT60S"
    lease: str = "PT1M"
    floor_percent: int = 50
    process_timeout: float = 120.0
    # More app settings for every process. The Compute read budget may spend all of a bucket: each round's
    # scale set is new, so its per-scale-set buckets start full, and at the default 25 % share a replacement's
    # seven High Cost Gets wait ~25 s for refill, which proves nothing here (the budget has its own tests:
    # tests/integration/test_sweep_budget.py, bench/budget.py). The emulator still enforces every bucket.
    settings: dict[str, str] = field(default_factory=lambda: {"AUTOHEAL_COMPUTE_READ_SHARE": "100"})


# --- rounds ---------------------------------------------------------------------------------------------


@dataclass
class Round:
    """One scenario on a freshly loaded fleet and a fresh ledger table."""

    harness: Harness
    index: int
    scenario: Scenario
    table: str
    directory: Path
    started: float = field(default_factory=time.time)
    kill_mode: str = ""  # the crash round's kill point (KILL_MODES), empty for races
    kill_note: str = ""  # how the kill came: "point" (the predicate held), "deadline", "time", or "" (none)
    processes: list[Proc] = field(default_factory=list)
    kills: int = 0
    resumes: int = 0
    resumed_rows: list[str] = field(default_factory=list)  # row keys a resume had to take over
    kill_times: list[float] = field(default_factory=list)
    figures: RoundFigures = field(default_factory=RoundFigures)
    interference: list[int] = field(default_factory=list)  # HTTP status of each write another actor made
    extra_env: dict[str, str] = field(default_factory=dict)  # app settings this round's processes add
    disruptive_writes: int = 0  # accepted instance writes (delete, restart, ...) on the scale set

    @property
    def violations(self) -> list[Violation]:
        return self.figures.violations

    # -- processes ----------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        options = self.harness.options
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOHEAL_", "AZURE_"))}
        env.update(
            {
                "AZURE_SUBSCRIPTION_ID": scenarios.SUBSCRIPTION,
                "AUTOHEAL_ARM_ENDPOINT": self.harness.emulator.endpoint,
                "AUTOHEAL_ARM_CA_BUNDLE": self.harness.emulator.ca_bundle,
                "AzureWebJobsStorage": self.harness.storage,
                "AUTOHEAL_LEDGER_TABLE": self.table,
                "AUTOHEAL_LRO_POLL_SECONDS": str(options.poll_seconds),
                "AUTOHEAL_LRO_TIMEOUT": options.lro_timeout,
                "AUTOHEAL_ACTION_LEASE": options.lease,
                "AUTOHEAL_CAPACITY_FLOOR_PERCENT": str(options.floor_percent),
                "AUTOHEAL_STORM_THRESHOLD_PERCENT": "100" if self.scenario.kind == "solo" else "50",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(options.settings)
        env.update(self.extra_env)
        return env

    def spawn(self, *args: str) -> Proc:
        number = len(self.processes) + 1
        name = f"{args[0]}-{number}"
        stdout, stderr = self.directory / f"{name}.out", self.directory / f"{name}.err"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = subprocess.Popen([*CLI, *args], cwd=ROOT, env=self.env(), stdout=out, stderr=err)
        proc = Proc(name, process, stdout, stderr)
        self.processes.append(proc)
        return proc

    def sweep(self) -> Proc:
        return self.spawn("sweep", "--apply", "--scale-set", self.scenario.name, "--output", "json")

    def handle_event(self, path: Path) -> Proc:
        return self.spawn("handle-event", str(path), "--apply", "--output", "json")

    def run(self, proc: Proc) -> int:
        return proc.wait(self.harness.options.process_timeout)

    # -- another writer -----------------------------------------------------------------------------

    def interfere_when(
        self, proc: Proc, predicate: Callable[[Journal], bool], patch: dict[str, Any]
    ) -> threading.Thread:
        """Another actor (autoscale, a person, Azure's own repairs): as soon as the journal satisfies
        `predicate`, PATCH the scale set through ARM, once, while `proc` runs. Join the returned thread."""
        emulator = self.harness.emulator
        url = (
            f"{emulator.endpoint}/subscriptions/{scenarios.SUBSCRIPTION}/resourceGroups/{scenarios.RESOURCE_GROUP}"
            f"/providers/Microsoft.Compute/virtualMachineScaleSets/{self.scenario.name}"
        )

        def watch() -> None:
            while proc.running():
                if predicate(emulator.journal()):
                    response = requests.patch(
                        url,
                        params={"api-version": "2024-11-01"},
                        json=patch,
                        headers={"Authorization": "Bearer another-actor"},
                        verify=emulator.ca_bundle,
                        timeout=30,
                    )
                    self.interference.append(response.status_code)
                    return
                time.sleep(0.05)

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        return thread

    # -- kill points --------------------------------------------------------------------------------

    def kill_when(self, proc: Proc, predicate: Callable[[Journal], bool], timeout: float | None = None) -> bool:
        """SIGKILL `proc` as soon as the journal satisfies `predicate` (checked every 50 ms). False if the
        process ended first (nothing to kill)."""
        deadline = time.monotonic() + (timeout or self.harness.options.process_timeout)
        while proc.running() and time.monotonic() < deadline:
            if predicate(self.harness.emulator.journal()):
                self.kill_note = "point"
                return self._kill(proc)
            time.sleep(0.05)
        if not proc.running():
            return False
        self.kill_note = "deadline"
        return self._kill(proc)

    def kill_after(self, proc: Proc, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while proc.running() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not proc.running():
            return False
        self.kill_note = "time"
        return self._kill(proc)

    def _kill(self, proc: Proc) -> bool:
        proc.kill()
        self.kills += 1
        self.kill_times.append(time.time())
        return True

    # -- resume and settle --------------------------------------------------------------------------

    def expire_leases(self) -> list[str]:
        return self.harness.ledger(self.table).expire_leases(self.scenario.partition_key)

    def resume(self) -> int:
        """Run again after a crash: the dead run's leases expire (time passes), then one sweep."""
        self.resumed_rows += self.expire_leases()
        self.resumes += 1
        return self.run(self.sweep())

    def settle(self, timeout: float | None = None) -> Journal:
        """Wait until no write of the round is in flight and no instance is still Creating or Deleting
        (the replacement's provisioning time), then return the journal."""
        options = self.harness.options
        deadline = time.monotonic() + (timeout or 3 * (options.lro_seconds + options.create_delay) + 5)
        while True:
            journal = self.harness.emulator.journal()
            busy = any(w.get("outcome") == "InProgress" for w in journal["writes"])
            points = journal["capacity"].get(self.scenario.key) or [{}]
            provisioning = points[-1].get("live", 0) != points[-1].get("succeeded", 0)
            if (not busy and not provisioning) or time.monotonic() > deadline:
                return journal
            time.sleep(0.1)

    def history(self) -> list[dict[str, Any]]:
        """The scale set's history rows from the ledger table; if none are recognised there (the row
        layout changed), from `vmss-autoheal history --output json`."""
        rows = self.harness.ledger(self.table).history(self.scenario.partition_key)
        return rows or self.history_cli()

    def history_cli(self) -> list[dict[str, Any]]:
        proc = self.spawn("history", "--scale-set", self.scenario.name, "--limit", "1000", "--output", "json")
        if self.run(proc) != 0:
            raise RuntimeError(f"vmss-autoheal history failed: {proc.output()[-500:]}")
        events = json.loads(proc.stdout.read_text() or "[]")
        rows = [{**event, "t": timestamp(event.get("at"))} for event in events]
        return sorted(rows, key=lambda r: r["t"])

    # -- judgement ----------------------------------------------------------------------------------

    def judge(self, journal: Journal | None = None, *, replaced: bool = True) -> RoundFigures:
        """Check the invariants (invariants.py) on the journal and the ledger; fills `figures`.
        `replaced`: the doomed instance must have been replaced by now (capacity and live instances at the
        target), else only nothing may be shorter than at the start."""
        journal = journal or self.settle()
        scenario = self.scenario
        points = journal["capacity"].get(scenario.key, [])
        writes = [w for w in journal["writes"] if w.get("scaleSet") == scenario.key]
        floor = invariants.capacity_floor(scenario.target, self.harness.options.floor_percent)
        if points:  # a scale set that starts below the floor (capacity 1, its instance failed) may stay there
            floor = min(floor, int(points[0].get("live") or 0))
        ledger = self.harness.ledger(self.table)
        figures = RoundFigures()
        doubles = invariants.double_actions(writes, scenario.key)
        figures.doubles = len(doubles)
        low = invariants.below_floor(points, floor, since=self.started)
        figures.below_floor = len(low)
        figures.short_seconds = invariants.short_seconds(points, scenario.target, until=time.time())
        restored = invariants.capacity_restored(points, scenario.target, replaced=replaced)
        figures.left_short = restored is not None
        records = ledger.records(scenario.partition_key)
        loose = invariants.non_terminal(records)
        figures.non_terminal = len(loose)
        unrecorded = invariants.unrecorded_resumes(
            self.resumed_rows, self.history() if self.resumed_rows else [], since=min(self.kill_times, default=0)
        )
        figures.unrecorded_resumes = len(unrecorded)
        self.disruptive_writes = sum(
            1 for w in writes if invariants.accepted(w) and invariants.write_kind(str(w.get("operationId") or ""))
        )
        concurrent = invariants.concurrent_disruptions(writes, scenario.key)
        figures.concurrent = len(concurrent)
        figures.violations = [*doubles, *low, *([restored] if restored else []), *loose, *unrecorded, *concurrent]
        self.figures = figures
        return figures

    def describe(self) -> str:
        s = self.scenario
        verdict = "ok" if not self.violations else "; ".join(f"{v.invariant}: {v.detail}" for v in self.violations)
        return (
            f"round {self.index} {s.kind}{'+' + s.extra if s.extra != 'none' else ''} {s.name} "
            f"(capacity {s.target}, doomed {','.join(s.doomed)}): kills {self.kills}, resumes {self.resumes}: "
            f"{verdict}"
        )


# --- the harness ----------------------------------------------------------------------------------------


class Harness:
    """One emulator subprocess for many rounds; Azurite is the caller's (a connection string)."""

    def __init__(
        self,
        storage: str,
        *,
        seed: int = 0,
        options: HarnessOptions | None = None,
        workdir: Path | None = None,
        prefix: str = "r",
    ) -> None:
        self.storage = storage
        self.seed = seed
        self.rng = random.Random(seed)
        self.options = options or HarnessOptions()
        self.prefix = prefix
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="autoheal-safety-")
            workdir = Path(self._tmp.name)
        self.workdir = workdir
        self.rounds: list[Round] = []
        self._ledgers: dict[str, LedgerView] = {}
        self.emulator: EmulatorProcess

    def __enter__(self) -> Harness:
        empty = self.workdir / "empty-fleet.json"
        empty.write_text(json.dumps({"subscriptionId": scenarios.SUBSCRIPTION, "scaleSets": []}))
        options = self.options
        self.emulator = EmulatorProcess(
            empty,
            lro_seconds=options.lro_seconds,
            lro_polls=options.lro_polls,
            create_delay=options.create_delay,
            compute_refill_scale=options.compute_refill_scale,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        for round_ in self.rounds:
            for proc in round_.processes:
                if proc.running():
                    proc.kill()
        for view in self._ledgers.values():
            view.close()
        self.emulator.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def ledger(self, table: str) -> LedgerView:
        if table not in self._ledgers:
            self._ledgers[table] = LedgerView(self.storage, table)
        return self._ledgers[table]

    def load(self, scenario: Scenario) -> Round:
        """A new round: the scenario's fleet replaces the emulator's (journal reset), a new ledger table."""
        index = len(self.rounds) + 1
        directory = self.workdir / f"round-{index:03d}"
        directory.mkdir(parents=True, exist_ok=True)
        self.emulator.load(scenario.fleet())
        table = f"safety{self.prefix}{self.seed}x{index:03d}"
        round_ = Round(self, index, scenario, table, directory)
        self.rounds.append(round_)
        return round_

    def name(self, label: str) -> str:
        return f"{label}-{self.prefix}{self.seed}-{len(self.rounds) + 1:03d}"

    # -- the two round shapes --------------------------------------------------------------------------

    def crash_round(self, kind: str | None = None, kill: str | None = None) -> Round:
        """Start a sweep, SIGKILL it at the kill point, resume once, settle, judge.

        kill points: `accepted-delete` (Azure accepted the delete of the doomed instance and its LRO still
        runs: the issue's defect 1), `random-time` (a seeded moment within two LROs of the first write),
        `between-writes` (a seeded moment in the gap after the first write ended, before the second)."""
        kind = kind or self.rng.choice(scenarios.CRASH_KINDS)
        kill = kill or self.rng.choice(KILL_MODES)
        scenario = scenarios.crash_scenario(kind, self.name(kind), self.rng)
        round_ = self.load(scenario)
        round_.kill_mode = kill
        first = round_.sweep()
        if kill == "accepted-delete":
            round_.kill_when(first, lambda journal: delete_in_flight(journal, scenario))
        elif kill == "random-time":
            # after the first write, before the second write's LRO can have ended (each lasts at least
            # lro_seconds): the process is still at work
            delay = self.rng.uniform(0, 2 * self.options.lro_seconds - 0.2)
            round_.kill_when(first, _after(lambda journal: writes_accepted(journal, scenario, 1), delay))
        elif kill == "between-writes":
            # the first write ended in Azure; the run learns it at its next poll, checkpoints, re-reads and
            # sends the second: the kill lands somewhere in that gap
            delay = self.rng.uniform(0, self.options.poll_seconds + 0.5)
            round_.kill_when(first, _after(lambda journal: writes_ended(journal, scenario, 1), delay))
        else:
            raise ValueError(f"unknown kill point {kill!r}; expected one of {', '.join(KILL_MODES)}")
        if not first.killed:
            round_.run(first)
        else:
            round_.resume()
        round_.judge()
        return round_

    def interloper_round(self, kind: str = "failed") -> Round:
        """One sweep replaces the doomed instance; the moment its delete ends in Azure, another actor
        PATCHes the scale set (a tag), so the restore of capacity collides with a write that is not ours
        (the issue's defect 2, deterministically). The run must still leave capacity at the target."""
        scenario = scenarios.crash_scenario(kind, self.name(f"{kind}-busy"), self.rng)
        round_ = self.load(scenario)
        round_.kill_mode = ""
        sweep = round_.sweep()
        watcher = round_.interfere_when(
            sweep, lambda journal: doomed_delete_ended(journal, scenario), {"tags": {"touchedBy": "another-actor"}}
        )
        round_.run(sweep)
        watcher.join(timeout=5)
        round_.judge()
        return round_

    def race_round(self, workers: int = 3, extra: str | None = None) -> Round:
        """`workers` handle-event processes on one ResourceWriteFailure event plus one sweep, at once."""
        scenario = scenarios.race_scenario(self.name("race"), self.rng, extra)
        round_ = self.load(scenario)
        event = scenarios.write_failure_event(scenario, round_.directory, self.rng)
        # Deliveries spread over about one replacement (two LROs and their polls), so one worker's write can
        # land in another's gap between its delete and its scale-out, as autoscale or a person would.
        spread = 2 * (self.options.lro_seconds + self.options.poll_seconds)
        starts = sorted(self.rng.uniform(0, spread) for _ in range(workers + 1))
        began = time.monotonic()
        procs = []
        for i, start in enumerate(starts):
            time.sleep(max(0.0, began + start - time.monotonic()))
            procs.append(round_.sweep() if i == workers // 2 else round_.handle_event(event))
        for proc in procs:
            round_.run(proc)
        round_.judge(replaced=False)
        return round_

    def double_round(self, workers: int = 3) -> Round:
        """Two findings on one scale set (a failed instance and an unhealthy one, repairAction Replace), a
        zero cooldown, and `workers` sweeps started at seeded moments within about one replacement; then a
        final sweep (what the next timer tick does) and the judgement: never two disruptive actions in
        flight on the scale set, nothing short at the end."""
        scenario = scenarios.double_scenario(self.name("double"), self.rng)
        round_ = self.load(scenario)
        round_.extra_env = {"AUTOHEAL_COOLDOWN": "PT0S"}
        # Event Grid delivers to several instances at once: the sweeps start within a fraction of a second, so
        # they read the ledger before any of them claimed; the later ones find the first at work.
        spread = 0.3 if self.rng.random() < 0.5 else self.options.lro_seconds + self.options.poll_seconds
        starts = sorted(self.rng.uniform(0, spread) for _ in range(workers))
        began = time.monotonic()
        procs = []
        for start in starts:
            time.sleep(max(0.0, began + start - time.monotonic()))
            procs.append(round_.sweep())
        for proc in procs:
            round_.run(proc)
        round_.settle()
        round_.run(round_.sweep())  # the final sweep pays whatever is still owed
        round_.judge(replaced=False)
        return round_


# --- kill predicates --------------------------------------------------------------------------------------


def delete_in_flight(journal: Journal, scenario: Scenario) -> bool:
    """Azure accepted a delete of one of the scenario's doomed instances and that delete still runs."""
    doomed = {i.lower() for i in scenario.doomed}
    return any(
        invariants.write_kind(str(w.get("operationId"))) == "delete"
        and invariants.accepted(w)
        and w.get("outcome") == "InProgress"
        and doomed & {str(i).lower() for i in w.get("instanceIds") or []}
        for w in journal["writes"]
        if w.get("scaleSet") == scenario.key
    )


def doomed_delete_ended(journal: Journal, scenario: Scenario) -> bool:
    """An accepted delete of one of the scenario's doomed instances has ended (in Azure)."""
    doomed = {i.lower() for i in scenario.doomed}
    return any(
        invariants.write_kind(str(w.get("operationId"))) == "delete"
        and invariants.accepted(w)
        and w.get("outcome") != "InProgress"
        and doomed & {str(i).lower() for i in w.get("instanceIds") or []}
        for w in journal["writes"]
        if w.get("scaleSet") == scenario.key
    )


def writes_accepted(journal: Journal, scenario: Scenario, count: int) -> bool:
    """At least `count` writes on the scenario's scale set were accepted."""
    return sum(w.get("scaleSet") == scenario.key and invariants.accepted(w) for w in journal["writes"]) >= count


def _after(condition: Callable[[Journal], bool], delay: float) -> Callable[[Journal], bool]:
    """A kill predicate: `delay` seconds after `condition` was first seen to hold."""
    seen: list[float] = []

    def due(journal: Journal) -> bool:
        if not seen and condition(journal):
            seen.append(time.monotonic())
        return bool(seen) and time.monotonic() >= seen[0] + delay

    return due


def writes_ended(journal: Journal, scenario: Scenario, count: int) -> bool:
    """At least `count` accepted writes on the scenario's scale set have ended (the gap before the next)."""
    ended = [
        w
        for w in journal["writes"]
        if w.get("scaleSet") == scenario.key and invariants.accepted(w) and w.get("outcome") != "InProgress"
    ]
    return len(ended) >= count
