"""`vmss-autoheal`: argument parsing and printing only; the work happens in the engine."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from .engine import Engine, ScaleSetResult, Target, list_targets, map_concurrently
from .gateway import ArmError
from .remediation.ledger import Ledger, LedgerUnavailable, open_ledger
from .report import build_report, error_entry, render_table, scale_set_entry
from .runtime import build_gateway
from .settings import Settings, SettingsError, load_settings

EXIT_ERROR = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A failure explained in one line for the person at the terminal."""


def _targeting(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subscription", help="subscription id (default: AZURE_SUBSCRIPTION_ID)")
    parser.add_argument("--resource-group", help="only scale sets in this resource group")
    parser.add_argument("--scale-set", help="only the scale set with this name")
    parser.add_argument("--output", choices=("table", "json"), default="table")
    parser.add_argument("--endpoint", help="ARM endpoint (default: AUTOHEAL_ARM_ENDPOINT or Azure's)")
    parser.add_argument("--ca-bundle", help="CA bundle (PEM) for the endpoint, e.g. the local emulator's")
    parser.add_argument("--concurrency", type=int, default=8, help="scale sets read in parallel")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vmss-autoheal",
        description="Find Azure VM scale sets that automatic repairs and resilient create/delete left stuck.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log ARM calls and decisions")
    sub = parser.add_subparsers(dest="command", required=True)
    diagnose = sub.add_parser("diagnose", help="read scale sets and report what is wrong (read-only)")
    _targeting(diagnose)
    sweep = sub.add_parser("sweep", help="diagnose, plan and (with --apply or AUTOHEAL_MODE=remediate) act")
    _targeting(sweep)
    sweep.add_argument("--apply", action="store_true", help="act (remediate mode) instead of only planning")
    replay = sub.add_parser("handle-event", help="feed Event Grid events (a file or -) through the trigger's handler")
    replay.add_argument("file", help="a JSON event or array of events, Event Grid or CloudEvents schema; - for stdin")
    replay.add_argument("--subscription", help="subscription id (default: AZURE_SUBSCRIPTION_ID)")
    replay.add_argument("--endpoint", help="ARM endpoint (default: AUTOHEAL_ARM_ENDPOINT or Azure's)")
    replay.add_argument("--ca-bundle", help="CA bundle (PEM) for the endpoint, e.g. the local emulator's")
    replay.add_argument("--apply", action="store_true", help="act (remediate mode) instead of only planning")
    replay.add_argument("--output", choices=("table", "json"), default="table")
    history = sub.add_parser("history", help="the remediation ledger, newest first")
    history.add_argument("--scale-set", help="only this scale set")
    history.add_argument("--limit", type=int, default=50)
    history.add_argument("--output", choices=("table", "json"), default="table")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings()
    changes: dict[str, Any] = {}
    if args.subscription:
        changes["subscription_id"] = args.subscription
    if args.endpoint:
        changes["arm_endpoint"] = args.endpoint.rstrip("/")
    if args.ca_bundle:
        if not os.path.isfile(args.ca_bundle):
            raise CliError(f"--ca-bundle {args.ca_bundle}: no such file")
        changes["arm_ca_bundle"] = args.ca_bundle
    settings = settings.replace(**changes)
    if not settings.subscription_id:
        raise CliError("no subscription: pass --subscription or set AZURE_SUBSCRIPTION_ID")
    return settings


def _explain(exc: ArmError, settings: Settings) -> str:
    if exc.status is None:
        return f"cannot reach ARM at {settings.arm_endpoint}: {exc.message}"
    if exc.code in {"SubscriptionNotFound", "InvalidSubscriptionId"}:
        return f"subscription {settings.subscription_id} not found or not visible to this identity ({exc.code})"
    if exc.code == "CredentialUnavailable":
        return f"could not get an Azure token: run `az login` or configure a managed identity ({exc.message})"
    if exc.status in (401, 403):
        return f"ARM refused the credentials ({exc.code}): {exc.message}"
    return f"ARM error: {exc}"


def cmd_diagnose(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with build_gateway(settings) as gateway:
        engine = Engine(settings, gateway, ledger=None)
        results = _evaluate_all(engine, args)
        entries = [
            scale_set_entry(r.snapshot, r.findings) if r.snapshot else error_entry(r.resource, r.error or "")
            for r in results
        ]
        report = build_report(settings.subscription_id, datetime.now(UTC), entries, gateway.meter.requests)
    _print(report, args.output)
    return 0


def _evaluate_all(engine: Engine, args: argparse.Namespace) -> list[ScaleSetResult]:
    try:
        resources = list_targets(engine.gateway, Target(args.resource_group, args.scale_set))
    except ArmError as exc:
        raise CliError(_explain(exc, engine.settings)) from exc
    return map_concurrently(engine.evaluate, resources, args.concurrency)


def cmd_sweep(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.apply:
        settings = settings.replace(mode="remediate")
    settings = settings.replace(sweep_concurrency=args.concurrency)
    from .notify import Notifier

    with build_gateway(settings) as gateway, _ledger(settings) as ledger:
        engine = Engine(settings, gateway, ledger, notifier=Notifier.from_settings(settings))
        try:
            sweep = engine.sweep(Target(args.resource_group, args.scale_set))
        except ArmError as exc:
            raise CliError(_explain(exc, settings)) from exc
        entries = [
            scale_set_entry(r.snapshot, r.findings, r.actions())
            if r.snapshot
            else error_entry(r.resource, r.error or "")
            for r in sweep.results
        ]
        actions = [a for r in sweep.results for a in r.actions()]
        report = build_report(
            settings.subscription_id,
            sweep.started_at,
            entries,
            gateway.meter.requests,
            mode=settings.mode,
            correlationId=sweep.correlation_id,
            actions=actions,
            armWrites=gateway.meter.writes,
        )
    _print(report, args.output)
    if args.output == "table":
        print(_sweep_summary(report))
    return 0


def _sweep_summary(report: dict[str, Any]) -> str:
    counts: dict[str, int] = {}
    for action in report["actions"]:
        counts[action["state"]] = counts.get(action["state"], 0) + 1
    parts = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "nothing to do"
    return f"mode {report['mode']}: {parts}; {report['armWrites']} ARM write(s)"


def cmd_history(args: argparse.Namespace) -> int:
    settings = load_settings()
    with _ledger(settings) as ledger:
        events = ledger.history(args.scale_set, limit=args.limit)
    if args.output == "json":
        print(json.dumps([e.to_dict() for e in events], indent=2))
        return 0
    if not events:
        print("the ledger holds no history yet")
        return 0
    for event in events:
        ids = f" [{', '.join(event.instance_ids)}]" if event.instance_ids else ""
        scale_set = event.scale_set_id.rsplit("/", 1)[-1]
        moved = f"{event.previous_state or 'new'} -> {event.state}"
        print(f"{event.to_dict()['at']}  {scale_set:24} {event.finding_code:32} {event.action}{ids}  {moved}")
        if event.reason:
            print(f"{'':22}{event.reason}")
    return 0


@contextmanager
def _ledger(settings: Settings) -> Iterator[Ledger]:
    try:
        ledger = open_ledger(settings)
        ledger.ensure_table()
    except LedgerUnavailable as exc:
        raise CliError(f"ledger: {exc}") from exc
    try:
        yield ledger
    finally:
        ledger.close()


def _print(report: dict[str, Any], output: str) -> None:
    if output == "json":
        print(json.dumps(report, indent=2))
    else:
        print(render_table(report))


def cmd_handle_event(args: argparse.Namespace) -> int:
    from .events import MalformedEvent, load_events
    from .handlers import EventHandler
    from .runtime import Runtime

    settings = _settings(args)
    if args.apply:
        settings = settings.replace(mode="remediate")
    raw = sys.stdin.buffer.read() if args.file == "-" else _read(args.file)
    try:
        payloads = load_events(raw)
    except MalformedEvent as exc:
        raise CliError(f"{args.file}: {exc}") from exc
    with _ledger(settings) as ledger:
        runtime = Runtime(settings, ledger=ledger)
        try:
            outcomes = EventHandler(runtime).handle_all(payloads)
        except ArmError as exc:
            raise CliError(f"{_explain(exc, settings)} (Event Grid would redeliver this event)") from exc
        finally:
            runtime.close()
    if args.output == "json":
        print(json.dumps([o.to_dict() for o in outcomes], indent=2))
        return 0
    for outcome in outcomes:
        target = outcome.scale_set_id.rsplit("/", 1)[-1] if outcome.scale_set_id else "-"
        event = f"{outcome.event_id or '(no id)'}  {outcome.event_type or '-'}"
        print(f"{event}  {outcome.status}: {outcome.reason} [{target}]")
        for action in outcome.actions:
            ids = f" [{', '.join(action['instanceIds'])}]" if action["instanceIds"] else ""
            print(f"    {action['state']:10} {action['code']}{ids}: {action['reason']}")
    return 0


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc


COMMANDS = {"diagnose": cmd_diagnose, "sweep": cmd_sweep, "history": cmd_history, "handle-event": cmd_handle_event}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:
        logging.getLogger("azure").setLevel(logging.ERROR)
    try:
        return COMMANDS[args.command](args)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # credential failures and the like: one clear line, not a traceback
        name = type(exc).__name__
        if "Credential" in name or "Authentication" in name:
            print(
                f"error: could not get an Azure token ({name}); run `az login` or configure a managed identity: {exc}",
                file=sys.stderr,
            )
            return EXIT_ERROR
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
