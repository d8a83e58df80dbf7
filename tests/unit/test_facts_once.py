"""Facts declared once (issue 21 item 9): a second copy of a fact is where the first one silently diverges."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from autoheal.model import ActionCode
from autoheal.remediation.actions import ACTIONS

PACKAGE = Path(__file__).resolve().parents[2] / "autoheal"
SOURCES = {path: path.read_text() for path in sorted(PACKAGE.rglob("*.py"))}


def places(text: str) -> list[str]:
    """Every occurrence of `text` in the package's source, as the file it is in."""
    return [str(path.relative_to(PACKAGE)) for path, source in SOURCES.items() for _ in range(source.count(text))]


@pytest.mark.parametrize("code", [c for c in ActionCode if c is not ActionCode.NONE], ids=str)
def test_each_action_code_string_appears_once_in_its_declaration(code):
    """Traits and wording live on the action's registry entry, keyed by the enum: no table keyed by strings."""
    assert places(code.value) == ["model.py"]


def test_every_action_is_declared_with_its_wording_and_traits():
    assert set(ACTIONS) == set(ActionCode) - {ActionCode.NONE}
    for spec in ACTIONS.values():
        assert spec.to_do and spec.done and spec.phrase and "{" not in spec.phrase


@pytest.mark.parametrize(
    "pattern",
    [
        r"(?<!tools\.)\bparse_resource_id\b",  # resource_ids.parse (strict) and .segments (lenient), nothing else
        r"^def scale_set_id\b",
        r"\bBAD_HEALTH\s*=",
        r"RECHECK\s*=\s*timedelta",  # the 6-hour look again at a standing refusal
        r"\bclass Outcome\b",
        r'"ResilientVMScaleSetVMCreation"',
        r'"ReliableVMDeletion"',
    ],
)
def test_one_declaration(pattern):
    found = [f"{p.relative_to(PACKAGE)}" for p, s in SOURCES.items() for _ in re.findall(pattern, s, re.MULTILINE)]
    assert len(found) <= 1, found
