"""`vmss-autoheal` in a person's shell (issue 13 items 9-11): writes only with --apply, notifications only
with --notify, the ledger only with --apply/--record, and every input error in one line with its exit code."""

from __future__ import annotations

import json
import uuid

import pytest

from autoheal import cli
from autoheal.cli import EXIT_NOT_FOUND, EXIT_USAGE, main
from autoheal.remediation.ledger import Ledger
from emulator import Emulator
from emulator.fleets import demo

pytestmark = pytest.mark.usefixtures("no_sdk_retries")

SUB = demo.SUBSCRIPTION
NAME = "search-indexer"


@pytest.fixture
def emu():
    with Emulator.start(demo.PATH) as emulator:
        yield emulator


@pytest.fixture
def shell(monkeypatch, azurite, emu):
    """A shell with the function app's settings copied in, remediate mode and a Teams webhook included."""
    table = f"ledger{uuid.uuid4().hex[:12]}"
    env = {
        "AZURE_SUBSCRIPTION_ID": SUB,
        "AUTOHEAL_ARM_ENDPOINT": emu.endpoint,
        "AUTOHEAL_ARM_CA_BUNDLE": emu.ca_bundle,
        "AzureWebJobsStorage": azurite,
        "AUTOHEAL_LEDGER_TABLE": table,
        "AUTOHEAL_MODE": "remediate",
        "AUTOHEAL_LRO_POLL_SECONDS": "0",
        "AUTOHEAL_TEAMS_WEBHOOK_URL": "https://teams.invalid/workflows/hook?sig=x",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    built: list[int] = []
    original = cli.Engine.__init__

    def spy(self, settings, gateway, ledger, **kwargs):
        """Counts the notification channels the CLI built, then leaves them out (nothing to post to here)."""
        notifier = kwargs.pop("notifier", None)
        built.append(len(notifier.channels) if notifier is not None else 0)
        original(self, settings, gateway, ledger, **kwargs)

    monkeypatch.setattr(cli.Engine, "__init__", spy)
    ledger = Ledger.from_connection_string(azurite, table)
    yield {"ledger": ledger, "channels": built}
    ledger.close()


def records(ledger: Ledger) -> list:
    try:
        return ledger.all_records()
    except Exception:  # the table was never created: nothing was written
        return []


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_remediate_mode_in_the_environment_never_makes_a_shell_run_write(shell, emu, capsys):
    """Issue 13 item 9: `sweep` without --apply deleted instances when AUTOHEAL_MODE=remediate was set."""
    assert main(["sweep"]) == 0
    out, err = capsys.readouterr()
    assert emu.stats()["writes"] == 0
    assert "AUTOHEAL_MODE=remediate is set" in err and "--apply" in err
    assert "mode observe" in out
    assert records(shell["ledger"]) == []  # the ledger is untouched
    assert shell["channels"] == [0]  # no notification channel was even built


def test_record_writes_the_plan_to_the_ledger_but_not_azure(shell, emu, capsys):
    assert main(["sweep", "--record"]) == 0
    assert emu.stats()["writes"] == 0
    states = {r.state.value for r in records(shell["ledger"])}
    assert states and states <= {"planned", "held"}
    assert shell["channels"] == [0]


def test_apply_and_notify_act(shell, emu, capsys):
    assert main(["sweep", "--apply", "--notify", "--scale-set", "search-indexer"]) == 0
    assert emu.stats()["writes"] >= 1
    assert records(shell["ledger"])
    assert shell["channels"] == [1]
    assert "AUTOHEAL_MODE=remediate is set" not in capsys.readouterr().err


def test_handle_event_follows_the_same_rules(shell, emu, capsys, tmp_path):
    target = f"/subscriptions/{SUB}/resourceGroups/rg-shop/providers/Microsoft.Compute/virtualMachineScaleSets/{NAME}"
    event = {
        "id": "cli-1",
        "eventType": "Microsoft.Resources.ResourceWriteFailure",
        "subject": target,
        "dataVersion": "2",
        "eventTime": "2026-11-30T00:00:00Z",
        "data": {"resourceUri": target, "operationName": "Microsoft.Compute/virtualMachineScaleSets/write"},
    }
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    assert main(["handle-event", str(path)]) == 0
    assert "cli-1" in capsys.readouterr().out
    assert emu.stats()["writes"] == 0 and records(shell["ledger"]) == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["diagnose", "--subscription", "not-a-guid"], "error: --subscription not-a-guid: not a subscription id"),
        (["diagnose", "--endpoint", "notaurl"], "error: --endpoint notaurl: must be an https:// URL"),
        (["diagnose", "--endpoint", "http://management.azure.com"], "must be an https:// URL"),
        (["diagnose", "--ca-bundle", "/nonexistent/ca.pem"], "no such file (the local emulator prints its CA path"),
    ],
)
def test_input_errors_are_one_line_and_exit_2(shell, capsys, args, expected):
    assert main(args) == EXIT_USAGE
    assert expected in one_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    "args",
    [["sweep", "--concurrency", "0"], ["diagnose", "--concurrency", "-3"], ["history", "--limit", "x"], ["bogus"]],
)
def test_argument_errors_are_one_line_and_exit_2(capsys, args):
    with pytest.raises(SystemExit) as caught:
        main(args)
    assert caught.value.code == EXIT_USAGE
    assert one_line(capsys.readouterr().err).startswith("vmss-autoheal")


@pytest.mark.parametrize("command", ["diagnose", "sweep"])
def test_an_unknown_scale_set_is_not_found_exit_3(shell, emu, capsys, monkeypatch, command):
    """Issue 13 item 10: `--scale-set nope` printed an empty table and exited 0."""
    monkeypatch.delenv("AUTOHEAL_MODE")
    assert main([command, "--scale-set", "nope"]) == EXIT_NOT_FOUND
    assert f"scale set nope not found in subscription {SUB}" in one_line(capsys.readouterr().err)
    assert main([command, "--resource-group", "rg-shop", "--scale-set", "nope"]) == EXIT_NOT_FOUND
    assert "not found in resource group rg-shop" in one_line(capsys.readouterr().err)


def test_an_untrusted_certificate_says_what_to_pass(shell, monkeypatch, capsys):
    monkeypatch.delenv("AUTOHEAL_ARM_CA_BUNDLE")
    assert main(["diagnose"]) == 1
    line = one_line(capsys.readouterr().err)
    assert "is not trusted" in line and "--ca-bundle" in line


def test_malformed_event_to_handle_event_exits_non_zero(shell, capsys, tmp_path):
    """Issue 13 item 10: `{}` printed `None - malformed…` and exited 0."""
    path = tmp_path / "empty.json"
    path.write_text("{}")
    assert main(["handle-event", str(path)]) == EXIT_USAGE
    assert one_line(capsys.readouterr().out).startswith("(no id)  -  malformed")


def test_history_with_a_bad_connection_string_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("AzureWebJobsStorage", "nonsense")
    assert main(["history"]) == EXIT_USAGE
    line = one_line(capsys.readouterr().err)
    assert "AzureWebJobsStorage=(secret value hidden) is invalid" in line and "nonsense" not in line


def test_version_and_verbose_anywhere(shell, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.strip() == f"vmss-autoheal {cli._version()}"
    assert main(["diagnose", "-v", "--scale-set", "search-indexer", "--output", "json"]) == 0


def test_every_option_has_help_text():
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if a.choices and isinstance(a.choices, dict)).choices
    for name, sub in [("vmss-autoheal", parser), *subparsers.items()]:
        for action in sub._actions:
            if action.option_strings or action.dest == "file":
                assert action.help, f"{name} {action.option_strings or action.dest}: no --help text"


def test_the_cli_sends_telemetry_when_the_connection_string_is_set(shell, monkeypatch, capsys):
    """Issue 13 item 11: the README promised Application Insights for the CLI; it was never configured."""
    import azure.monitor.opentelemetry as distro

    from autoheal import telemetry

    calls: list[dict] = []
    monkeypatch.setattr(distro, "configure_azure_monitor", lambda **kw: calls.append(kw))
    monkeypatch.setattr(telemetry, "_cli_configured", False)
    monkeypatch.delenv("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", raising=False)
    monkeypatch.setenv(
        "APPLICATIONINSIGHTS_CONNECTION_STRING", "InstrumentationKey=00000000-0000-0000-0000-000000000000"
    )
    assert main(["diagnose", "--scale-set", "search-indexer"]) == 0
    assert calls == [{"logger_name": "autoheal"}]
    monkeypatch.delenv("APPLICATIONINSIGHTS_CONNECTION_STRING")
    monkeypatch.setattr(telemetry, "_cli_configured", False)
    assert main(["diagnose", "--scale-set", "search-indexer"]) == 0
    assert len(calls) == 1
