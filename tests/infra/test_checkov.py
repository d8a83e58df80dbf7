"""checkov over infra/ (its own virtual environment: it pins an older pycep-parser and many packages).

Run as `checkov -d infra --framework bicep --skip-download --compact` with CKV_PARSE_ERROR_FAIL=true
(without it a file checkov cannot parse is silently not checked). Every skip is an inline
`// checkov:skip=CKV_...:reason` inside the resource it concerns, and every inline skip is used.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.infra.bicep import APP, INFRA, ROOT

CHECKOV = ROOT / ".checkov-venv" / "bin" / "checkov"
SKIP = re.compile(r"//\s*checkov:skip=([A-Za-z0-9_]+)(?::(.*))?$")


def _start(directory: Path) -> subprocess.Popen[str]:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: `make test` (or `make .checkov-venv/.installed-*`) creates it")
    env = {**os.environ, "CKV_PARSE_ERROR_FAIL": "true"}
    command = [str(CHECKOV), "-d", str(directory), "--framework", "bicep", "--skip-download", "--compact"]
    return subprocess.Popen(
        [*command, "-o", "json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )


def _finish(process: subprocess.Popen[str]) -> tuple[int, dict, str]:
    stdout, stderr = process.communicate(timeout=120)
    try:
        report = json.loads(stdout)
    except json.JSONDecodeError:
        report = {}
    return process.returncode, report, stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Iterator[dict[str, tuple[int, dict, str]]]:
    """Both checkov runs start at once (each costs a few seconds of start-up)."""
    broken = tmp_path_factory.mktemp("broken-infra")
    source = (APP / "identity.bicep").read_text()
    # A typed array: newer pycep-parser reads it, checkov's 0.5.1 cannot.
    (broken / "identity.bicep").write_text(
        source.replace("param tags object", "param tags object\nparam n string[] = []")
    )
    started = {"infra": _start(INFRA), "broken": _start(broken)}
    yield {name: _finish(process) for name, process in started.items()}


def inline_skips() -> dict[tuple[str, str], str]:
    """(file name, check id) → reason, for every inline skip under infra/."""
    found = {}
    for path in sorted(INFRA.rglob("*.bicep")):
        for line in path.read_text().splitlines():
            match = SKIP.search(line)
            if match:
                found[(path.name, match.group(1))] = (match.group(2) or "").strip()
    return found


def test_checkov_passes(runs):
    code, report, stderr = runs["infra"]
    assert report, f"checkov gave no JSON report (exit {code}):\n{stderr[-2000:]}"
    failed = [
        f"{c['check_id']} {c['resource']} {c['file_path']}:{c['file_line_range']} {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]
    assert not report["results"].get("parsing_errors"), f"checkov cannot parse: {report['results']['parsing_errors']}"
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert code == 0, stderr[-2000:]
    assert report["summary"]["passed"] > 0


def test_checkov_fails_on_a_file_it_cannot_parse(runs):
    code, report, _ = runs["broken"]
    assert code != 0
    assert report["summary"]["parsing_errors"] == 1


def test_every_skip_is_justified():
    skips = inline_skips()
    assert skips, "expected the documented skips"
    unjustified = [f"{name}: {check}" for (name, check), reason in skips.items() if len(reason) < 30]
    assert not unjustified, "skips need a reason (at least a sentence): " + ", ".join(unjustified)


def test_every_skip_is_used(runs):
    _, report, _ = runs["infra"]
    used = {(Path(c["file_path"]).name, c["check_id"]) for c in report["results"]["skipped_checks"]}
    stale = sorted(set(inline_skips()) - used)
    assert not stale, f"inline skips for checks that no longer fail (remove them): {stale}"
