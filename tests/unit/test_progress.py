"""The CLI's progress line (issue 12): on a terminal only, with scale sets done, Compute spent and an ETA."""

from __future__ import annotations

import io

from autoheal.cli import Progress, _budget_summary
from autoheal.gateway import ComputeBudget


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Gateway:
    def __init__(self) -> None:
        self.budget = ComputeBudget()
        self.budget.acquire("VMSS High Cost Get")


def test_progress_draws_on_a_terminal_only():
    assert Progress.for_terminal(Gateway(), io.StringIO()) is None  # a pipe or a log: quiet
    screen = Terminal()
    progress = Progress.for_terminal(Gateway(), screen)
    assert progress is not None
    progress.update(3, 10)
    progress.done()
    line = screen.getvalue()
    assert line.startswith("\r3/10 scale sets; Compute VMSS High Cost Get 1; ETA ") and line.endswith("\n")


def test_the_summary_names_what_the_sweep_cost_and_how_far_coverage_got():
    report = {
        "compute": {"spent": {"VMSS High Cost Get": 21, "VM High Cost Get": 2}},
        "resourceGraph": {"queries": 4},
        "suspects": 1,
        "deferred": 0,
        "coverage": {"sweepsPerLap": 2},
    }
    summary = _budget_summary(report)
    assert "VMSS High Cost Get 21" in summary and "Resource Graph queries: 4" in summary
    assert "suspects read first: 1" in summary and "within 2 sweep(s)" in summary
