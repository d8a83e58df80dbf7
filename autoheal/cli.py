"""`vmss-autoheal`: argument parsing and printing only; the work happens in the engine."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from . import engine
from .gateway import ArmError, ComputeGateway
from .report import build_report, render_table, scale_set_entry
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
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings()
    changes: dict[str, Any] = {}
    if args.subscription:
        changes["subscription_id"] = args.subscription
    if args.endpoint:
        changes["arm_endpoint"] = args.endpoint.rstrip("/")
    if args.ca_bundle:
        changes["arm_ca_bundle"] = args.ca_bundle
    settings = settings.replace(**changes)
    if not settings.subscription_id:
        raise CliError("no subscription: pass --subscription or set AZURE_SUBSCRIPTION_ID")
    return settings


def make_gateway(settings: Settings, **overrides: Any) -> ComputeGateway:
    return ComputeGateway(
        settings.subscription_id,
        endpoint=settings.arm_endpoint,
        ca_bundle=settings.arm_ca_bundle or None,
        client_id=settings.client_id or None,
        **overrides,
    )


def _explain(exc: ArmError, settings: Settings) -> str:
    if exc.status is None:
        return f"cannot reach ARM at {settings.arm_endpoint}: {exc.message}"
    if exc.code in {"SubscriptionNotFound", "InvalidSubscriptionId"}:
        return f"subscription {settings.subscription_id} not found or not visible to this identity ({exc.code})"
    if exc.status in (401, 403):
        return f"ARM refused the credentials ({exc.code}): {exc.message}"
    return f"ARM error: {exc}"


def cmd_diagnose(args: argparse.Namespace) -> int:
    settings = _settings(args)
    target = engine.Target(args.resource_group, args.scale_set)
    with make_gateway(settings) as gateway:
        try:
            resources = engine.list_targets(gateway, target)
        except ArmError as exc:
            raise CliError(_explain(exc, settings)) from exc
        results = engine.read_snapshots(gateway, resources, concurrency=args.concurrency)
        entries = []
        for result in results:
            if result.snapshot is None:
                entries.append(
                    {
                        "id": result.resource.get("id"),
                        "name": result.name,
                        "resourceGroup": result.resource_group,
                        "error": str(result.error),
                    }
                )
            else:
                entries.append(scale_set_entry(result.snapshot))
        report = build_report(settings.subscription_id, datetime.now(UTC), entries, gateway.meter.requests)
    if args.output == "json":
        print(json.dumps(report, indent=2))
    else:
        print(render_table(report))
    return 0


COMMANDS = {"diagnose": cmd_diagnose}


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
