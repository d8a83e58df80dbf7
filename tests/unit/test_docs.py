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


def _layout_block() -> str:
    """The README's package layout: the fenced block that starts with `autoheal/`."""
    found = re.search(r"```\n(autoheal/ .*?)```", README, re.S)
    assert found is not None, "the README's layout block (starting with 'autoheal/') is missing"
    return found.group(1)


def _package_entries() -> set[str]:
    package = ROOT / "autoheal"
    files = {p.name for p in package.glob("*.py") if p.name != "__init__.py"}
    folders = {f"{p.name}/" for p in package.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    return files | folders


def test_the_readme_layout_names_every_module_of_the_package_and_nothing_else():
    """The layout's left column: under `autoheal/` the package's modules and folders, then top-level paths."""
    inside: set[str] = set()
    for line in _layout_block().splitlines()[1:]:
        left = line[:31].strip()
        if not left:
            continue  # a continuation of the description
        names = [n.strip() for n in left.split(",")]
        if line.startswith("  "):
            inside.update(names)
        else:
            for name in names:
                assert (ROOT / name.rstrip("/")).exists(), f"the README's layout names {name}, which does not exist"
    assert inside == _package_entries(), "the README's layout and the package's modules differ"


def test_the_architecture_doc_places_every_layer_module():
    """docs/architecture.md's layer table against the layer contract (pyproject.toml) and the files."""
    import tomllib

    doc = (ROOT / "docs" / "architecture.md").read_text()
    table = "\n".join(line for line in doc.splitlines() if line.startswith("|"))
    contract = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
    for layer in contract["layers"]:
        for module in (m.strip() for m in layer.split("|")):
            path = module.replace(".", "/")
            as_file, as_package = f"`{path}.py`", f"`{path}/`"
            short = f"`{path.split('/', 1)[-1]}.py`"  # a row may list a module of its folder by its file name
            assert as_file in table or as_package in table or short in table, f"{module} is in no row of the layers"
    for path in re.findall(r"`((?:autoheal|functions)/[\w/]*(?:\.py|/))`", table):
        assert (ROOT / path.rstrip("/")).exists(), f"docs/architecture.md names {path}, which does not exist"
