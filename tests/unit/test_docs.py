"""The README and local.settings.json.example stay true to the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

from autoheal.model import ActionCode, FindingCode
from autoheal.settings import SETTINGS, settings_markdown

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_settings_table_is_generated_from_the_code():
    table = re.search(r"<!-- settings:start -->\n(.*)\n<!-- settings:end -->", README, re.S)
    assert table is not None
    assert table.group(1) == settings_markdown(), "refresh the README table from settings_markdown()"


def test_every_finding_and_action_code_is_documented():
    for code in FindingCode:
        assert f"`{code.value}`" in README, code
    for action in ActionCode:
        if action is not ActionCode.NONE:
            assert f"`{action.value}`" in README, action


def test_local_settings_example_lists_every_setting():
    values = json.loads((ROOT / "local.settings.json.example").read_text())["Values"]
    assert {s.name for s in SETTINGS} <= set(values)
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    defaults = {s.name: s.default for s in SETTINGS}
    assert values["AUTOHEAL_SWEEP_SCHEDULE"] == defaults["AUTOHEAL_SWEEP_SCHEDULE"]


def test_readme_names_the_two_commands_and_ci_runs_the_test_command():
    assert "make demo" in README and "make test" in README
    assert "make test" in (ROOT / ".ci" / "run").read_text()
