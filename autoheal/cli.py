"""`vmss-autoheal`: argument parsing and printing only; the work happens in the engine.

Safety rules for a person's shell (the app settings may have been copied into it):
- nothing is written to Azure without `--apply` on the command line; `AUTOHEAL_MODE=remediate` in the
  environment is ignored (and said so);
- no notifications unless `--notify`;
- the ledger is written only with `--apply` or `--record`; otherwise this run's records stay in memory.

Exit codes: 0 done, 1 Azure / ledger / credential failure, 2 bad input (arguments, settings, events),
3 the named scale set does not exist.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from .engine import Engine, ScaleSetResult, map_concurrently
from .gateway import ArmError
from .model import ReasonCode
from .remediation import transitions
from .remediation.guardrails import CLEARED
from .remediation.ledger import Ledger, LedgerConflict, LedgerUnavailable, open_ledger
from .remediation.planner import preview, verdicts
from .remediation.scratch import ScratchLedger
from .remediation.store import RecordStore
from .report import build_report, error_entry, render_table, scale_set_entry
from .runtime import build_gateway, build_graph, inventory_source
from .settings import CHANNEL_OFF, Settings, SettingsError, load_settings
from .sources import Target, list_targets

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3


class CliError(Exception):
    """A failure explained in one line for the person at the terminal."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit 2), not the whole usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{raw!r}: must be 1 or more")
    return value


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log ARM calls and decisions"
    )
    parser.add_argument(
        "--output", choices=("table", "json"), default="table", help="table for people, json for scripts"
    )


def _arm(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subscription", help="subscription id, a GUID (default: AZURE_SUBSCRIPTION_ID)")
    parser.add_argument("--endpoint", help="ARM endpoint, an https:// URL (default: AUTOHEAL_ARM_ENDPOINT or Azure's)")
    parser.add_argument(
        "--ca-bundle", help="CA bundle (PEM) to trust for the endpoint; only the local emulator needs one"
    )


def _writes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--apply",
        action="store_true",
        help="act (remediate mode) and record in the ledger; without it nothing is written to Azure, "
        "whatever AUTOHEAL_MODE says",
    )
    parser.add_argument(
        "--record", action="store_true", help="write this run's plan to the ledger (implied by --apply)"
    )
    notify = parser.add_mutually_exclusive_group()
    notify.add_argument(
        "--notify", action="store_true", help="send notifications (Teams, e-mail) as the function app would"
    )
    notify.add_argument("--no-notify", action="store_true", help="send no notifications (the default)")


def _targeting(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    _arm(parser)
    parser.add_argument("--resource-group", help="only scale sets in this resource group")
    parser.add_argument("--scale-set", help="only the scale set with this name (exit 3 if there is none)")
    parser.add_argument("--concurrency", type=_positive, default=8, help="scale sets read in parallel (1 or more)")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vmss-autoheal")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without installing
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="vmss-autoheal",
        description="Find Azure VM scale sets that automatic repairs and resilient create/delete left stuck. "
        "Nothing is written to Azure without --apply; no notifications without --notify.",
        epilog="Exit codes: 0 done, 1 Azure/ledger/credential failure, 2 bad input, 3 scale set not found.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log ARM calls and decisions")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    diagnose = sub.add_parser("diagnose", help="read scale sets and report what is wrong (read-only)")
    diagnose.description = "Read scale sets and report what is wrong and the documented remedy. Read-only."
    _targeting(diagnose)
    sweep = sub.add_parser("sweep", help="diagnose and plan; act only with --apply")
    sweep.description = "Diagnose, plan and, with --apply, act within the guardrails."
    _targeting(sweep)
    _writes(sweep)
    sweep.add_argument(
        "--management-group",
        metavar="NAME",
        help="sweep every subscription under this management group (Resource Graph lists them; "
        "AUTOHEAL_EXCLUDE_SUBSCRIPTIONS leaves some out), each with its own Compute budget",
    )
    replay = sub.add_parser("handle-event", help="feed Event Grid events (a file or -) through the trigger's handler")
    replay.description = "Replay Event Grid / CloudEvents deliveries through the Event Grid function's handler."
    replay.add_argument("file", help="a JSON event or array of events, Event Grid or CloudEvents schema; - for stdin")
    _common(replay)
    _arm(replay)
    _writes(replay)
    history = sub.add_parser("history", help="the remediation ledger, newest first")
    history.description = "The remediation ledger's history, newest first (AzureWebJobsStorage names the table)."
    _common(history)
    history.add_argument("--scale-set", help="only this scale set")
    history.add_argument("--limit", type=_positive, default=50, help="at most this many entries (default 50)")
    clear = sub.add_parser("clear", help="clear a replacement-loop hold so the next failure gets one more try")
    clear.description = (
        "A scale set held because every new instance fails the same way (reason code replacement-loop) stays held "
        "until the failure stops or a person clears it here, after fixing the extension or image. The next "
        "failure then gets one more replacement; if that one fails the same way, it is held again."
    )
    _common(clear)
    clear.add_argument("--scale-set", required=True, help="the scale set's name")
    clear.add_argument("--resource-group", help="its resource group (when the name is not unique)")
    clear.add_argument("--by", default=os.environ.get("USER", ""), help="who clears it, for the history")
    return parser


def _connection_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The --endpoint and --ca-bundle options, checked, as settings changes."""
    changes: dict[str, Any] = {}
    if args.endpoint:
        if not args.endpoint.lower().startswith("https://") or len(args.endpoint) <= len("https://"):
            raise CliError(f"--endpoint {args.endpoint}: must be an https:// URL", EXIT_USAGE)
        changes["arm_endpoint"] = args.endpoint.rstrip("/")
    if args.ca_bundle:
        if not os.path.isfile(args.ca_bundle):
            raise CliError(
                f"--ca-bundle {args.ca_bundle}: no such file (the local emulator prints its CA path at start-up "
                "as ca_bundle=...; against Azure leave --ca-bundle out)",
                EXIT_USAGE,
            )
        changes["arm_ca_bundle"] = args.ca_bundle
    return changes


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings()
    changes = _connection_changes(args)
    if args.subscription:
        try:
            uuid.UUID(args.subscription)
        except ValueError:
            raise CliError(f"--subscription {args.subscription}: not a subscription id (a GUID)", EXIT_USAGE) from None
        changes["subscription_id"] = args.subscription
    settings = settings.replace(**changes)
    if not settings.subscription_id:
        raise CliError("no subscription: pass --subscription or set AZURE_SUBSCRIPTION_ID", EXIT_USAGE)
    return settings


def _shell_safety(settings: Settings, args: argparse.Namespace) -> Settings:
    """A shell run writes only with --apply, notifies only with --notify, whatever the environment says."""
    if settings.mode == "remediate" and not args.apply:
        print(
            "note: AUTOHEAL_MODE=remediate is set in this environment; the command line ignores it: "
            "pass --apply to act",
            file=sys.stderr,
        )
    settings = settings.replace(mode="remediate" if args.apply else "observe")
    if not args.notify:
        for off in CHANNEL_OFF.values():
            settings = settings.replace(**off)
    return settings


def _explain(exc: ArmError, settings: Settings) -> str:
    if exc.status is None:
        if "CERTIFICATE_VERIFY_FAILED" in exc.message or "SSLCertVerification" in exc.message:
            return (
                f"the TLS certificate of {settings.arm_endpoint} is not trusted: for the local emulator pass "
                "--ca-bundle <its ca.pem> (or set AUTOHEAL_ARM_CA_BUNDLE)"
            )
        return f"cannot reach ARM at {settings.arm_endpoint}: {exc.message.splitlines()[0] if exc.message else ''}"
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
        backing = _read_only_ledger(settings)
        ledger = ScratchLedger(backing)
        try:
            entries = [
                _diagnose_entry(engine, r, ledger) if r.snapshot else error_entry(r.resource, r.error or "")
                for r in results
            ]
        finally:
            if backing is not None:
                backing.close()
        report = build_report(settings.subscription_id, datetime.now(UTC), entries, gateway.meter.requests)
    _print(report, args.output)
    return 0


def _read_only_ledger(settings: Settings) -> Ledger | None:
    """The ledger, read only, so `diagnose` sees what a sweep sees (a loop hold, a backoff); None when no ledger
    is configured or it cannot be opened (diagnose needs no ledger)."""
    if not _ledger_configured(settings):
        return None
    try:
        return open_ledger(settings)
    except (LedgerUnavailable, ValueError) as exc:
        logging.getLogger(__name__).warning("diagnose without the ledger's records: %s", str(exc).splitlines()[0])
        return None


def _diagnose_entry(engine: Engine, result: ScaleSetResult, ledger: Ledger) -> dict[str, Any]:
    """The scale set's findings with the guardrail verdict a sweep would give (issue 20: they never disagree)."""
    assert result.snapshot is not None
    entry = scale_set_entry(result.snapshot, result.findings)
    owner = engine.owner(result.snapshot)
    try:
        records = {r.row_key: r for r in ledger.records_for(result.snapshot.id)}
    except LedgerUnavailable as exc:
        logging.getLogger(__name__).warning(
            "diagnose without the ledger's records for %s: %s", result.snapshot.name, exc
        )
        records = {}
    decided = verdicts(preview(result.snapshot, result.findings, engine.settings, engine.clock(), owner, records))
    for finding in entry["findings"]:
        finding["verdicts"] = decided.get(finding["code"], [])
    return entry


def _evaluate_all(engine: Engine, args: argparse.Namespace) -> list[ScaleSetResult]:
    try:
        resources = list_targets(engine.gateway, Target(args.resource_group, args.scale_set))
    except ArmError as exc:
        if exc.not_found and (args.scale_set or args.resource_group):
            raise _not_found(args, engine.settings) from exc
        raise CliError(_explain(exc, engine.settings)) from exc
    if not resources and args.scale_set:
        raise _not_found(args, engine.settings)
    progress = Progress.for_terminal(engine.gateway)
    if progress is not None:
        progress.total = len(resources)

    def evaluate(resource: dict[str, Any]) -> ScaleSetResult:
        result = engine.evaluate(resource)
        if progress is not None:
            progress.step()
        return result

    try:
        return map_concurrently(evaluate, resources, args.concurrency)
    finally:
        if progress is not None:
            progress.done()


class Progress:
    """One line on a terminal (stderr): scale sets done of those in scope, Compute budget spent, ETA.
    Nothing at all when stderr is not a terminal (CI, pipes, the Functions host)."""

    def __init__(self, gateway: Any, stream: Any) -> None:
        self.gateway = gateway
        self.stream = stream
        self.total = 0
        self.count = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()

    @classmethod
    def for_terminal(cls, gateway: Any, stream: Any = None) -> Progress | None:
        stream = stream or sys.stderr
        return cls(gateway, stream) if stream.isatty() else None

    def update(self, done: int, total: int) -> None:
        with self._lock:
            self.count, self.total = done, total
            self._draw()

    def step(self) -> None:
        with self._lock:
            self.count += 1
            self._draw()

    def _draw(self) -> None:
        elapsed = time.monotonic() - self.started
        eta = elapsed / self.count * (self.total - self.count) if self.count else 0.0
        spent = ""
        if self.gateway.budget is not None:
            figures = self.gateway.budget.figures()["spent"]
            spent = "; Compute " + ", ".join(f"{k} {v}" for k, v in figures.items())
        self.stream.write(f"\r{self.count}/{self.total} scale sets{spent}; ETA {eta:.0f}s ")
        self.stream.flush()

    def done(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def _not_found(args: argparse.Namespace, settings: Settings) -> CliError:
    what = f"scale set {args.scale_set}" if args.scale_set else f"resource group {args.resource_group}"
    where = f" in resource group {args.resource_group}" if args.scale_set and args.resource_group else ""
    return CliError(f"{what} not found{where} in subscription {settings.subscription_id}", EXIT_NOT_FOUND)


def cmd_sweep(args: argparse.Namespace) -> int:
    if getattr(args, "management_group", None):
        return _sweep_management_group(args)
    settings = _shell_safety(_settings(args), args)
    settings = settings.replace(sweep_concurrency=args.concurrency)
    from .notify import Notifier

    with build_gateway(settings) as gateway, _ledger(settings, write=args.apply or args.record) as ledger:
        graph = build_graph(settings)
        engine = Engine(
            settings,
            gateway,
            ledger,
            notifier=Notifier.from_settings(settings),
            inventory=inventory_source(gateway, graph, settings),
        )
        progress = Progress.for_terminal(gateway)
        engine.progress = progress.update if progress is not None else None
        try:
            sweep = engine.sweep(Target(args.resource_group, args.scale_set))
        except ArmError as exc:
            if exc.not_found and (args.scale_set or args.resource_group):
                raise _not_found(args, settings) from exc
            raise CliError(_explain(exc, settings)) from exc
        finally:
            if progress is not None:
                progress.done()
            if graph is not None:
                graph.close()
        if not sweep.results and args.scale_set:  # "not found", not an empty table
            raise _not_found(args, settings)
        entries = [
            scale_set_entry(r.snapshot, r.findings, r.decisions())
            if r.snapshot
            else error_entry(r.resource, r.error or "")
            for r in sweep.results
        ]
        actions = [a for r in sweep.results for a in r.decisions()]
        report = build_report(
            settings.subscription_id,
            sweep.started_at,
            entries,
            gateway.meter.requests,
            mode=settings.mode,
            correlationId=sweep.correlation_id,
            actions=actions,
            armWrites=gateway.meter.writes,
            suspects=sweep.suspects,
            deferred=sum(1 for r in sweep.results if r.deferred),
            coverage=sweep.coverage,
            compute=sweep.arm.get("compute"),
            resourceGraph=sweep.arm.get("resourceGraph"),
        )
    _print(report, args.output)
    if args.output == "table":
        print(_sweep_summary(report))
        print(_budget_summary(report))
    return 0


def _sweep_management_group(args: argparse.Namespace) -> int:
    """`sweep --management-group NAME`: every subscription in scope, one after another in a few threads, each
    with its own Compute gateway (budget) and ledger partition; one notification digest across the scope."""
    from .handlers import subscription_figures, sweep_summary
    from .runtime import Runtime
    from .scope import ScopeRuntimes
    from .settings import Scope

    if args.subscription or args.scale_set:
        raise CliError("--management-group sweeps whole subscriptions: leave out --subscription and --scale-set", 2)
    try:
        scope = Scope("management-group", _management_group_arg(args.management_group))
    except ValueError as exc:
        raise CliError(f"--management-group {args.management_group}: {exc}", EXIT_USAGE) from None
    args.subscription = None
    base = load_settings()
    settings = _settings_without_subscription(args, base).replace(scope=scope, sweep_concurrency=args.concurrency)
    settings = _shell_safety(settings, args)
    with _ledger(settings, write=args.apply or args.record) as ledger:
        parent = Runtime(settings, ledger=ledger)
        scopes = ScopeRuntimes(parent, digest_across_scope=True)
        try:
            try:
                subscriptions = scopes.subscriptions()
            except ArmError as exc:
                raise CliError(f"management group {scope.name}: {_explain(exc, settings)}") from exc
            if not subscriptions:
                raise CliError(f"no subscriptions in scope under management group {scope.name}", EXIT_NOT_FOUND)

            def sweep_one(sub: Any) -> dict[str, Any]:
                runtime = scopes.runtime_for(sub.subscription_id, sub.name)
                try:
                    result = runtime.engine().sweep(Target(args.resource_group, None))
                except ArmError as exc:
                    return {"subscriptionId": sub.subscription_id, "name": sub.name, "error": _explain(exc, settings)}
                summary = sweep_summary(result, subscription_id=sub.subscription_id, name=sub.name)
                if args.apply or args.record:
                    runtime.ledger.save_status("last-sweep", summary)
                actions = [a for r in result.results for a in r.decisions()]
                return {
                    "subscriptionId": sub.subscription_id,
                    "name": sub.name,
                    **subscription_figures(summary),
                    "armWrites": runtime.gateway.meter.writes,
                    "actionList": actions,
                    "unread": summary["unreadScaleSets"],
                }

            rows = map_concurrently(sweep_one, subscriptions, min(4, len(subscriptions)))
            notified = scopes.flush(trigger="sweep", correlation_id=uuid.uuid4().hex)
        finally:
            scopes.close()
            parent.close()
    report = {"managementGroup": scope.name, "mode": settings.mode, "notified": notified, "subscriptions": rows}
    if args.output == "json":
        print(json.dumps(report, indent=2, default=str))
    else:
        print(_management_group_table(report))
    return EXIT_ERROR if any("error" in row for row in rows) else 0


def _management_group_arg(raw: str) -> str:
    from .settings import load_settings as _load

    return _load({"AUTOHEAL_SCOPE": f"mg:{raw}"}).scope.name


def _settings_without_subscription(args: argparse.Namespace, settings: Settings) -> Settings:
    """`_settings` for a management group: the endpoint and CA bundle options, no subscription needed."""
    return settings.replace(**_connection_changes(args))


def _management_group_table(report: dict[str, Any]) -> str:
    count = len(report["subscriptions"])
    lines = [
        f"management group {report['managementGroup']} ({report['mode']}): {count} subscription(s)",
        f"{'subscription':40} {'scale sets':>10} {'read':>5} {'deferred':>8} {'findings':>8} "
        f"{'actions':28} {'tokens':>7} {'lowest':>7}",
    ]
    for row in report["subscriptions"]:
        label = row["name"] if row["name"] == row["subscriptionId"] else f"{row['name']} ({row['subscriptionId'][:8]})"
        if "error" in row:
            lines.append(f"{label:40} error: {row['error']}")
            continue
        coverage, spend = row["coverage"], row["spend"]
        actions = ", ".join(f"{n} {state}" for state, n in sorted(row["actions"].items())) or "-"
        lowest = spend["lowestShareLeft"]
        lines.append(
            f"{label:40} {coverage['scaleSets']:>10} {coverage['read']:>5} {coverage['deferred']:>8} "
            f"{sum(row['findings'].values()):>8} {actions:28} {sum(spend['computeTokens'].values()):>7} "
            f"{(f'{lowest:.0%}' if lowest is not None else '-'):>7}"
        )
    lines.append(f"notifications delivered: {report['notified']} (one digest across the scope)")
    return "\n".join(lines)


def _budget_summary(report: dict[str, Any]) -> str:
    """What the sweep cost and how far the rotation got: tokens per Compute policy, ARG queries, coverage."""
    compute = report.get("compute") or {}
    spent = ", ".join(f"{policy} {n}" for policy, n in (compute.get("spent") or {}).items()) or "none"
    graph = report.get("resourceGraph") or {}
    coverage = report.get("coverage") or {}
    laps = coverage.get("sweepsPerLap")
    lap = f"every scale set read within {laps} sweep(s)" if laps else "coverage not measured (a targeted sweep)"
    screen = graph.get("getListPrescreen") or {}
    cleared = f" ({screen.get('cleared', 0)} cleared by GET/LIST)" if screen.get("screened") else ""
    return (
        f"Compute tokens: {spent}; Resource Graph queries: {graph.get('queries', 0)}; suspects read first: "
        f"{report.get('suspects', 0)}{cleared}; deferred to the next sweep: {report.get('deferred', 0)}; {lap}"
    )


def _sweep_summary(report: dict[str, Any]) -> str:
    counts: dict[str, int] = {}
    for action in report["actions"]:
        counts[action["state"]] = counts.get(action["state"], 0) + 1
    parts = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "nothing to do"
    return f"mode {report['mode']}: {parts}; {report['armWrites']} ARM write(s)"


def cmd_history(args: argparse.Namespace) -> int:
    settings = load_settings()
    with _ledger(settings, write=False) as ledger:
        try:
            events = ledger.history(args.scale_set, limit=args.limit)
        except LedgerUnavailable as exc:
            raise CliError(f"ledger: cannot read table {settings.ledger_table}: {exc}") from exc
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
def _ledger(settings: Settings, *, write: bool = True) -> Iterator[Ledger]:
    """The ledger table; without `write`, a scratch ledger that reads it (when configured) and keeps writes here."""
    if not write and not _ledger_configured(settings):
        yield ScratchLedger(None)
        return
    try:
        ledger = open_ledger(settings)
        if write:
            ledger.ensure_table()
    except (LedgerUnavailable, ValueError) as exc:
        raise CliError(f"ledger: {str(exc).splitlines()[0]}") from exc
    try:
        yield ledger if write else ScratchLedger(ledger)
    finally:
        ledger.close()


def _ledger_configured(settings: Settings) -> bool:
    return bool(settings.storage_connection_string or settings.storage_table_uri or settings.storage_account_name)


def _print(report: dict[str, Any], output: str) -> None:
    if output == "json":
        print(json.dumps(report, indent=2))
    else:
        print(render_table(report))


def cmd_handle_event(args: argparse.Namespace) -> int:
    from .events import MalformedEvent, load_events
    from .handlers import EventHandler
    from .runtime import Runtime

    settings = _shell_safety(_settings(args), args)
    raw = sys.stdin.buffer.read() if args.file == "-" else _read(args.file)
    try:
        payloads = load_events(raw)
    except MalformedEvent as exc:
        raise CliError(f"{args.file}: {exc}", EXIT_USAGE) from exc
    with _ledger(settings, write=args.apply or args.record) as ledger:
        runtime = Runtime(settings, ledger=ledger)
        try:
            outcomes = EventHandler(runtime).handle_all(payloads)
        except ArmError as exc:
            raise CliError(f"{_explain(exc, settings)} (Event Grid would redeliver this event)") from exc
        finally:
            runtime.close()
    # A malformed event is bad input: the command says so in its exit code (after reporting every event).
    code = EXIT_USAGE if any(o.status == "malformed" for o in outcomes) else 0
    if args.output == "json":
        print(json.dumps([o.to_dict() for o in outcomes], indent=2))
        return code
    for outcome in outcomes:
        target = outcome.scale_set_id.rsplit("/", 1)[-1] if outcome.scale_set_id else "-"
        event = f"{outcome.event_id or '(no id)'}  {outcome.event_type or '-'}"
        why = f" ({outcome.code})" if outcome.code and outcome.code != outcome.status else ""
        print(f"{event}  {outcome.status}{why}: {outcome.reason} [{target}]")
        for action in outcome.actions:
            ids = f" [{', '.join(action['instanceIds'])}]" if action["instanceIds"] else ""
            print(f"    {action['state']:10} {action['code']}{ids}: {action['reason']}")
    return code


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc


def cmd_clear(args: argparse.Namespace) -> int:
    settings = load_settings()
    now = datetime.now(UTC)
    with _ledger(settings) as ledger:
        try:
            held = [
                r
                for r in ledger.all_records()
                if r.scale_set_name.lower() == args.scale_set.lower()
                and (not args.resource_group or r.resource_group.lower() == args.resource_group.lower())
                and r.state.value == "held"
                and r.reason_code == ReasonCode.REPLACEMENT_LOOP.value
            ]
            who = f" by {args.by}" if args.by else ""
            store = RecordStore(ledger)
            reason = f"loop hold cleared{who}: the next failure gets one more try"
            saves = [transitions.clear(r, now=now, reason_code=CLEARED, reason=reason) for r in held]
            cleared = [store.save(save) for save in saves if save is not None]
        except (LedgerUnavailable, LedgerConflict) as exc:
            raise CliError(f"ledger: {exc}") from exc
    if args.output == "json":
        print(
            json.dumps(
                [{"scaleSetId": r.scale_set_id, "findingCode": r.finding_code, "target": r.target} for r in cleared]
            )
        )
        return 0
    if not cleared:
        print(f"no replacement-loop hold on scale set {args.scale_set}")
        return 0
    for r in cleared:
        print(f"cleared {r.finding_code} on {r.scale_set_name} ({r.target}): {r.reason}")
    return 0


COMMANDS = {
    "diagnose": cmd_diagnose,
    "sweep": cmd_sweep,
    "history": cmd_history,
    "handle-event": cmd_handle_event,
    "clear": cmd_clear,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.verbose = getattr(args, "verbose", False)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:
        logging.getLogger("azure").setLevel(logging.ERROR)
    from . import telemetry

    telemetry.configure_for_cli()  # Application Insights, only when APPLICATIONINSIGHTS_CONNECTION_STRING is set
    try:
        return COMMANDS[args.command](args)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
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
