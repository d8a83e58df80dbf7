"""`make demo`: the bundled emulator fleet, diagnosed, observed, remediated, verified and diagnosed again.

Everything runs locally and is stopped at the end: the ARM emulator (a subprocess, as a real endpoint),
Azurite for the ledger, and stand-ins for the Teams webhook and Azure Communication Services e-mail.
The app itself runs exactly as a user would run it: the `vmss-autoheal` command with app settings in
its environment.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emulator.fleets import demo as demo_fleet  # noqa: E402
from sinks import demo_sinks  # noqa: E402
from tests.azurite import azurite_table  # noqa: E402
from tests.helpers import EVENT_EXAMPLES  # noqa: E402

OUT = ROOT / "demo-out"
CREATE_DELAY = 3  # seconds the emulator takes to bring a new instance to Succeeded
CLI = str(Path(sys.executable).with_name("vmss-autoheal"))


def banner(text: str) -> None:
    print(f"\n{'=' * 100}\n== {text}\n{'=' * 100}", flush=True)


def run(env: dict[str, str], *args: str) -> None:
    print(f"$ vmss-autoheal {' '.join(args)}", flush=True)
    result = subprocess.run([CLI, *args], env=env, text=True, capture_output=True, timeout=600)
    print(result.stdout, end="", flush=True)
    if result.returncode != 0:
        print(result.stderr, file=sys.stderr)
        raise SystemExit(f"vmss-autoheal {args[0]} failed with exit code {result.returncode}")


def start_emulator() -> tuple[subprocess.Popen[str], str, str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulator",
            "--fleet",
            str(demo_fleet.PATH),
            "--port",
            "0",
            "--create-delay",
            str(CREATE_DELAY),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None
    endpoint = process.stdout.readline().strip().partition("=")[2]
    ca_bundle = process.stdout.readline().strip().partition("=")[2]
    if not endpoint or not ca_bundle:
        process.kill()
        raise SystemExit("the ARM emulator did not start")
    return process, endpoint, ca_bundle


def screenshots(cards: list[Path], mails: list[Path]) -> None:
    """Each card rendered by Microsoft's `adaptivecards` in headless Chromium, as PNG next to its JSON (and
    each e-mail's HTML as PNG); skipped with the reason where Chromium is not installed."""
    from sinks.card_render import RendererUnavailable, check, screenshot, screenshot_html

    try:
        contents = [json.loads(p.read_text()) for p in cards]
        for path, card, result in zip(cards, contents, check(contents), strict=True):
            png = screenshot(card, path.with_suffix(".png"), height=result.height + 16)
            warnings = f", renderer warnings: {result.warnings}" if result.warnings else ", no renderer warnings"
            size = len(json.dumps(card).encode())
            print(
                f"  {png.relative_to(ROOT)}: {result.height} px tall (unfolded {result.unfolded_height} px), "
                f"{size:,} bytes{warnings}"
            )
        for mail in mails:
            png = screenshot_html(mail, mail.with_suffix(".png"))
            print(f"  {png.relative_to(ROOT)}: {len(mail.read_bytes()):,} bytes of HTML")
    except RendererUnavailable as exc:
        print(f"  no screenshots: {exc}")


def write_failure_event() -> Path:
    """Microsoft's ResourceWriteFailure sample, pointed at a scale set of the demo fleet."""
    sample = EVENT_EXAMPLES / "Microsoft.Resources/examples/event-grid-schema/resource_write_failure.json"
    event = copy.deepcopy(json.loads(sample.read_text()))
    target = (
        f"/subscriptions/{demo_fleet.SUBSCRIPTION}/resourceGroups/rg-shop"
        "/providers/Microsoft.Compute/virtualMachineScaleSets/checkout-api"
    )
    event["subject"] = event["data"]["resourceUri"] = target
    event["data"]["operationName"] = "Microsoft.Compute/virtualMachineScaleSets/write"
    event["data"]["subscriptionId"] = demo_fleet.SUBSCRIPTION
    path = OUT / "event-resource-write-failure.json"
    path.write_text(json.dumps(event, indent=2))
    return path


def main() -> int:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir()
    emulator, endpoint, ca_bundle = start_emulator()
    try:
        with azurite_table() as storage, demo_sinks(OUT, email="acs", min_severity="warning") as sinks:
            env = {
                **os.environ,
                **sinks.env,
                "AZURE_SUBSCRIPTION_ID": demo_fleet.SUBSCRIPTION,
                "AUTOHEAL_ARM_ENDPOINT": endpoint,
                "AUTOHEAL_ARM_CA_BUNDLE": ca_bundle,
                "AzureWebJobsStorage": storage,
                "AUTOHEAL_LRO_POLL_SECONDS": "0",
            }
            banner("1. diagnose: what is wrong with each scale set, and the documented remedy (read-only)")
            run(env, "diagnose")
            banner("2. sweep in observe mode (the default): plan and record, change nothing")
            run(env, "sweep", "--record", "--notify")
            banner("3. sweep --apply (remediate mode): act within the guardrails; explain what is held back")
            run(env, "sweep", "--apply", "--notify")
            time.sleep(CREATE_DELAY + 1)
            banner(
                "4. sweep --apply again: replacements verified, nothing repeated; image-pipeline's replacement failed "
                "like the instance it replaced: held as a loop (replacement-loop), not replaced again"
            )
            run(env, "sweep", "--apply", "--notify")
            banner("5. handle-event: replay a ResourceWriteFailure through the Event Grid trigger's handler")
            run(env, "handle-event", str(write_failure_event()), "--apply", "--notify")
            banner("6. diagnose again: what is left is held back on purpose or needs a person")
            run(env, "diagnose")
            banner("7. history: the ledger, newest first")
            run(env, "history", "--limit", "12")
        banner("8. notifications")
        cards = sorted(OUT.glob("teams-card-*.json"))
        mails = sorted(OUT.glob("email-*.html"))
        print(f"Teams Adaptive Cards posted to the local Workflows webhook: {len(cards)}")
        print(f"E-mails sent through the local ACS stand-in: {len(mails)}")
        events = OUT / "outcome-events.json"
        if events.is_file():
            published = json.loads(events.read_text())
            kinds = sorted({e["type"].rsplit(".", 1)[-1] for e in published})
            print(
                f"Outcome events (CloudEvents 1.0) published to the local Event Grid topic: {len(published)} "
                f"({', '.join(kinds)}) in {events.relative_to(ROOT)}"
            )
        screenshots(cards, mails)
        print(f"Everything the demo produced is in {OUT}/")
    finally:
        emulator.terminate()
        try:
            emulator.wait(timeout=15)
        except subprocess.TimeoutExpired:
            emulator.kill()
            emulator.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
