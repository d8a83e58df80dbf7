"""Every card the demo fleet produces, rendered by Microsoft's `adaptivecards` package in headless Chromium:
no parse or validation warnings, and short enough to read before unfolding any details (issue 14).

The cards come from the real engine (observe sweep, remediate sweep, verify sweep) over the demo fleet in the
ARM emulator, with the ledger in Azurite and the notifier posting to the local Teams webhook.
Skipped, with the reason, where Chromium or the npm packages are not installed (`make chromium node`).
The renderer pins its font (Open Sans from npm, locked in package-lock.json: sinks/card_render.py), so the
heights below are the same on every machine, whatever other fonts it has (issue 18).
"""

from __future__ import annotations

import pytest

from autoheal.notify import Notifier
from autoheal.notify.teams import MAX_PAYLOAD_BYTES, payload_size
from emulator import Emulator
from emulator.fleets import demo
from sinks import TeamsWebhookSink
from sinks.card_render import FONT_FAMILY, RendererUnavailable, check, chromium, screenshot
from tests.integration.rig import Rig, remediate_settings

from .adaptive_card import validate_payload

# px at 600 px wide in the pinned font (the demo digest measured 983 px there): details folded, it fits a
# 1080-px screen.
MAX_FOLDED_HEIGHT = 1080


@pytest.fixture(scope="module")
def renderer() -> None:
    try:
        chromium()
        check([{"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlock", "text": "ok"}]}])
    except RendererUnavailable as exc:
        pytest.skip(f"no card renderer here: {exc}")


@pytest.fixture
def demo_payloads(ledger, gateway_for, tls) -> list[dict]:
    """The Teams messages of the demo's three sweeps (observe, remediate, verify)."""
    with Emulator.start(demo.PATH) as emu, TeamsWebhookSink(tls) as teams:
        rig = Rig(emu, gateway_for(emu), ledger, remediate_settings(emu))
        settings = rig.settings.replace(teams_webhook_url=teams.url, teams_min_severity="warning")
        notifier = Notifier.from_settings(settings, ca_bundle=tls.ca_file, retry_delays=())
        rig.sweep(mode="observe", notifier=notifier)
        rig.sweep(notifier=notifier)
        rig.advance(minutes=10)
        rig.sweep(notifier=notifier)
        return list(teams.messages)


def test_every_demo_card_renders_without_warnings_and_fits_a_screen(renderer, demo_payloads) -> None:
    assert len(demo_payloads) >= 2, "the demo fleet announces at least its observe and remediate sweeps"
    cards = [p["attachments"][0]["content"] for p in demo_payloads]
    for payload in demo_payloads:
        validate_payload(payload)
        assert payload_size(payload) <= MAX_PAYLOAD_BYTES
    rendered = check(cards)
    heights = [r.height for r in rendered]
    for n, (card, result) in enumerate(zip(cards, rendered, strict=True), 1):
        title = card["body"][0]["items"][1]["text"]
        assert result.warnings == [], f"card {n} ({title}): {result.warnings}"
        assert 100 < result.height <= MAX_FOLDED_HEIGHT, f"card {n} ({title}) is {result.height} px tall: {heights}"
        assert result.unfolded_height > result.height, f"card {n}: the details unfold"


def test_the_renderer_reports_what_it_cannot_parse(renderer) -> None:
    """The check has teeth: an unknown element type and a bad property value are warnings."""
    bad = {
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [{"type": "Bogus", "text": "x"}, {"type": "TextBlock", "text": "y", "size": "Enormous"}],
    }
    [result] = check([bad])
    assert result.warnings, "Microsoft's renderer should warn about an unknown element"


def test_a_screenshot_is_a_png(renderer, tmp_path) -> None:
    card = {"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlock", "text": "hello"}]}
    png = screenshot(card, tmp_path / "card.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_machine_fonts_change_no_pixel(renderer, demo_payloads) -> None:
    """The pinned font is used for every glyph the demo's cards hold: with two very different generic fallbacks
    (the machine's serif and monospace fonts) every card measures the same. If a glyph fell back to a machine
    font, or the pinned font failed to load, the heights would differ."""
    cards = [p["attachments"][0]["content"] for p in demo_payloads]
    assert cards
    serif = check(cards, fallback="serif")
    mono = check(cards, fallback="monospace")
    assert [r.warnings for r in serif] == [[] for _ in cards], f"{FONT_FAMILY} did not load: {serif}"
    assert [(r.height, r.unfolded_height) for r in serif] == [(r.height, r.unfolded_height) for r in mono]


def test_the_fallback_check_has_teeth(renderer) -> None:
    """Without the pinned font the machine's serif and monospace fonts set the same text to different heights,
    so the comparison above would see a fallback. Skipped only on a machine whose serif and monospace fonts are
    the same font."""
    text = "Replace vmss-web instance 3: OSProvisioningTimedOut → create first, then delete. " * 12
    card = {"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlock", "text": text, "wrap": True}]}
    serif = check([card], fallback="serif", pinned=False)[0]
    mono = check([card], fallback="monospace", pinned=False)[0]
    if serif.height == mono.height:
        pytest.skip("this machine's serif and monospace fonts set this text alike")
    pinned = [check([card], fallback=generic)[0].height for generic in ("serif", "monospace")]
    assert pinned[0] == pinned[1]
    assert serif.height != mono.height
