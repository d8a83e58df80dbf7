"""Every Bicep file parses with pycep-parser, in the syntax checkov's older pycep (0.5.1) also reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.infra.bicep import INFRA, bicep_files, parse

# Bicep syntax pycep 0.5.1 (inside checkov 3.3) cannot parse; the checkov run would report it as a parse
# error, this names the construct and the line.
UNSUPPORTED = {
    r"\b(string|int|bool|object)\[\]": "typed array",
    r"=>": "lambda",
    r"^\s*import\s": "import",
    r"^\s*func\s": "user-defined function",
    r"@export\(": "@export()",
    r"\.\.\.\w": "spread",
    r"^\s*type\s+\w+\s*=": "user-defined type",
    r"\.\?": "safe dereference",
    r"\?\?": "coalesce operator",
}


def test_infra_has_the_expected_files():
    names = {p.relative_to(INFRA).as_posix() for p in bicep_files()}
    assert "main.bicep" in names
    assert {
        "app/function.bicep",
        "app/storage.bicep",
        "app/remediator-role.bicep",
        "app/event-subscription.bicep",
    } <= names


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_bicep_parses(path: Path):
    doc = parse(path)
    assert doc.get("resources") or doc.get("modules"), f"{path.name}: nothing parsed"


def unsupported_syntax(text: str) -> list[str]:
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        code = re.sub(r"'(?:[^'\\]|\\.)*'", "''", line.split("//")[0])  # ignore comments and string contents
        problems += [
            f"line {number}: {what}: {line.strip()}"
            for pattern, what in UNSUPPORTED.items()
            if re.search(pattern, code)
        ]
    return problems


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_bicep_avoids_syntax_checkov_cannot_parse(path: Path):
    problems = unsupported_syntax(path.read_text())
    assert not problems, f"{path.name}: " + "; ".join(problems)


def test_the_syntax_guard_sees_what_it_guards_against():
    text = (
        "param names string[] = []\nvar f = map(xs, x => x)\nimport {a} from 'x.bicep'\nvar o = union(a.?b ?? {}, c)\n"
    )
    assert len(unsupported_syntax(text)) == 5  # the last line has two
    assert not unsupported_syntax("var s = 'a => b string[]' // x => y\n")


def test_a_broken_copy_fails_the_parse_check(tmp_path: Path):
    source = (INFRA / "main.bicep").read_text()
    broken = source.replace("resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {", "resource rg = {", 1)
    assert broken != source
    copy = tmp_path / "main.bicep"
    copy.write_text(broken)
    with pytest.raises(Exception) as caught:
        parse(copy)
    assert "line" in str(caught.value).lower() or type(caught.value).__module__.startswith("lark")
