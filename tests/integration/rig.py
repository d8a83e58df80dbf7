"""A remediation rig: the ARM emulator + Azurite ledger + the engine with an injectable clock."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from autoheal.engine import Engine, SweepResult, Target
from autoheal.gateway import ComputeGateway
from autoheal.remediation.ledger import Ledger, Record
from autoheal.settings import Settings, default_settings
from emulator import Emulator


@dataclass
class Rig:
    emu: Emulator
    gateway: ComputeGateway
    ledger: Ledger
    settings: Settings
    offset: timedelta = field(default_factory=timedelta)  # the engine's clock runs ahead of real time by this
    waited: float = 0.0  # seconds the engine "slept" (prompt retries, waiting for a delete)

    @property
    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def clock(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move the engine's clock and Azure's (the emulator's) together, as real time would."""
        step = timedelta(**delta)
        self.offset += step
        self.emu.clock.advance(step.total_seconds())

    def engine(self, *, gateway: ComputeGateway | None = None, **overrides: Any) -> Engine:
        on_checkpoint = overrides.pop("on_checkpoint", None)
        notifier = overrides.pop("notifier", None)
        settings = self.settings.replace(**overrides) if overrides else self.settings
        return Engine(
            settings,
            gateway or self.gateway,
            self.ledger,
            notifier=notifier,
            clock=self.clock,
            on_checkpoint=on_checkpoint,
            sleep=self._sleep,  # waits pass on a fake monotonic clock: tests never sleep
            rng=random.Random(7),
            # one clock for the sweep's slice, the executors' waits and the Compute budget: real time plus
            # what fake sleeps waited
            monotonic=lambda: time.monotonic() + self.waited,
        )

    def _sleep(self, seconds: float) -> None:
        self.waited += seconds

    def sweep(self, target: Target | None = None, **overrides: Any) -> SweepResult:
        return self.engine(**overrides).sweep(target)

    def writes(self) -> int:
        return int(self.emu.stats()["writes"])

    def ops(self) -> dict[str, int]:
        return dict(self.emu.stats()["byOperation"])

    def record(self, scale_set: str, finding: str, target: str = "*", resource_group: str = "rg-app") -> Record | None:
        sid = (
            f"/subscriptions/{self.emu.subscription_id}/resourceGroups/{resource_group}"
            f"/providers/Microsoft.Compute/virtualMachineScaleSets/{scale_set}"
        )
        return self.ledger.get(sid, finding, target)


def actions_by(result: SweepResult) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(scale set name, finding code, target) → action dict."""
    out = {}
    for r in result.results:
        for action in r.decisions():
            out[(action["scaleSetId"].rsplit("/", 1)[-1], action["findingCode"], action["target"])] = action
    return out


def remediate_settings(emu: Emulator, **overrides: Any) -> Settings:
    base = default_settings(
        mode="remediate",
        subscription_id=emu.subscription_id,
        arm_endpoint=emu.endpoint,
        arm_ca_bundle=emu.ca_bundle,
        sweep_concurrency=4,
        lro_poll_seconds=0,
    )
    return base.replace(**overrides)
