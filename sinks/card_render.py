"""Render Adaptive Cards as a person sees them: Microsoft's `adaptivecards` renderer in headless Chromium.

`check(cards)` parses and renders every card in one page and reports, per card, the renderer's parse and
validation warnings and the rendered height (details folded, and unfolded); `screenshot(card, png)` writes a
PNG. Used by tests/notify/test_render.py and by `make demo` (PNG next to each card's JSON in demo-out/).

- The renderer: npm `adaptivecards` (Microsoft, https://www.npmjs.com/package/adaptivecards; API:
  https://learn.microsoft.com/adaptive-cards/sdk/rendering-cards/javascript/getting-started), with
  `markdown-it` for the TextBlock Markdown as its docs suggest (`AdaptiveCard.onProcessMarkdown`).
- Chromium: Debian's `chromium` package (`make chromium` installs it); `CHROMIUM` names another binary.
  The flags are the ones that work in this sandbox: no sandbox, no GPU, no network side traffic, a fresh
  profile per run.
- The host config approximates Teams' light theme (14 px text); Teams' own config is not public, so heights
  are indicative, not pixel-exact. The font is pinned: Open Sans from npm `@fontsource/open-sans` (locked in
  package-lock.json), every subset and weight loaded with `@font-face`, and measuring waits for
  `document.fonts.ready`. Teams' Segoe UI is not free to ship; the machine's own fonts must not change a pixel,
  and `check(..., fallback=...)` lets a test prove they do not.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from html import escape, unescape
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ADAPTIVECARDS_JS = ROOT / "node_modules" / "adaptivecards" / "dist" / "adaptivecards.min.js"
MARKDOWN_JS = ROOT / "node_modules" / "markdown-it" / "dist" / "markdown-it.min.js"
FONT_DIR = ROOT / "node_modules" / "@fontsource" / "open-sans"
FONT_FAMILY = "Open Sans"
FONT_WEIGHTS = (400, 600, 700)  # default, bolder (the host config's fontWeights), and the browser's <b>/<strong>
WIDTH = 600  # px: a Teams chat column with the card at full width (msteams.width = Full)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)
HOST_CONFIG = {
    "fontFamily": f"'{FONT_FAMILY}'",
    "fontWeights": {"lighter": 400, "default": 400, "bolder": 600},
    "fontSizes": {"small": 12, "default": 14, "medium": 16, "large": 20, "extraLarge": 24},
    "spacing": {"small": 4, "default": 8, "medium": 12, "large": 16, "extraLarge": 24, "padding": 16},
    "actions": {"maxActions": 6, "buttonSpacing": 8, "showCard": {"actionMode": "inline"}},
    "containerStyles": {
        style: {"backgroundColor": colour}
        for style, colour in (
            ("default", "#FFFFFF"),
            ("emphasis", "#F5F5F5"),
            ("accent", "#DEECF9"),
            ("good", "#E7F2DA"),
            ("attention", "#FDE7E9"),
            ("warning", "#FFF4CE"),
        )
    },
}

_SCRIPT = """
const md = window.markdownit({linkify: false});
AdaptiveCards.AdaptiveCard.onProcessMarkdown = (text, result) => {
  result.outputHtml = md.render(text); result.didProcess = true;
};
const hostConfig = new AdaptiveCards.HostConfig(HOST_CONFIG);
function unfold(node) {
  if (Array.isArray(node)) { node.forEach(unfold); return; }
  if (node && typeof node === "object") {
    if (node.isVisible === false) node.isVisible = true;
    Object.values(node).forEach(unfold);
  }
}
function render(payload, host) {
  const card = new AdaptiveCards.AdaptiveCard();
  card.hostConfig = hostConfig;
  const context = new AdaptiveCards.SerializationContext();
  card.parse(payload, context);
  const warnings = [];
  for (let i = 0; i < context.eventCount; i++) {
    const e = context.getEventAt(i);
    warnings.push("parse: " + e.message);
  }
  for (const e of card.validateProperties().validationEvents) warnings.push("validate: " + e.message);
  const element = card.render();
  if (!element) { warnings.push("render: the card rendered to nothing"); return {warnings, height: 0}; }
  host.appendChild(element);
  return {warnings, element};
}
async function main() {
  const rendered = [];
  CARDS.forEach((payload) => {
    try {
      const folded = document.createElement("div"); folded.className = "host"; document.body.appendChild(folded);
      const a = render(payload, folded);
      let b = null;
      if (!SCREENSHOT) {
        const copy = JSON.parse(JSON.stringify(payload)); unfold(copy);
        const open = document.createElement("div"); open.className = "host"; document.body.appendChild(open);
        b = render(copy, open);
      }
      rendered.push({a, b});
    } catch (err) {
      rendered.push({error: "exception: " + err});
    }
  });
  // Layout asks for the pinned font's subsets; measure only once they are all in.
  document.body.getBoundingClientRect();
  await document.fonts.ready;
  const missing = FONT_WEIGHTS.filter((w) => !document.fonts.check(w + " 14px '" + FONT_FAMILY + "'"));
  const height = (r) => (r && r.element ? Math.ceil(r.element.getBoundingClientRect().height) : 0);
  const results = rendered.map((r) => {
    if (r.error) return {warnings: [r.error], height: 0, unfoldedHeight: 0};
    const warnings = r.a.warnings.concat(missing.map((w) => "font: " + FONT_FAMILY + " " + w + " not loaded"));
    return {warnings, height: height(r.a), unfoldedHeight: height(r.b)};
  });
  if (!SCREENSHOT) {
    document.body.innerHTML = "";
    const out = document.createElement("pre"); out.id = "result"; out.textContent = JSON.stringify(results);
    document.body.appendChild(out);
  }
}
main();
"""


class RendererUnavailable(RuntimeError):
    """Chromium or the npm packages are missing (`make chromium node`)."""


@dataclass(frozen=True)
class Rendered:
    warnings: list[str]
    height: int  # px, details folded (what a reader sees first)
    unfolded_height: int  # px, every folded container shown


def chromium() -> str:
    for candidate in (os.environ.get("CHROMIUM", ""), "chromium", "/usr/bin/chromium", "chromium-browser"):
        if candidate and (path := shutil.which(candidate)):
            return path
    raise RendererUnavailable("Chromium is not installed: run `make chromium` (apt-get install chromium)")


def _assets() -> tuple[str, str]:
    for path in (ADAPTIVECARDS_JS, MARKDOWN_JS):
        if not path.is_file():
            raise RendererUnavailable(f"{path.relative_to(ROOT)} is missing: run `make node` (npm ci)")
    return ADAPTIVECARDS_JS.read_text(), MARKDOWN_JS.read_text()


def font_faces() -> str:
    """`@font-face` rules for every subset of the pinned weights, pointing at the npm package's files."""
    rules = []
    for weight in FONT_WEIGHTS:
        css = FONT_DIR / f"{weight}.css"
        if not css.is_file():
            raise RendererUnavailable(f"{css.relative_to(ROOT)} is missing: run `make node` (npm ci)")
        # block, not swap: text is never laid out in a fallback font that a machine happens to have.
        rules.append(
            css.read_text()
            .replace("url(./files/", f"url({(FONT_DIR / 'files').as_uri()}/")
            .replace("font-display: swap", "font-display: block")
        )
    return "\n".join(rules)


def _page(cards: list[dict[str, Any]], *, screenshot: bool, fallback: str = "sans-serif", pinned: bool = True) -> str:
    adaptive, markdown = _assets()
    family = f"'{FONT_FAMILY}',{fallback}" if pinned else fallback
    host_config = {**HOST_CONFIG, "fontFamily": family}
    script = (
        _SCRIPT.replace("HOST_CONFIG", json.dumps(host_config))
        .replace("CARDS", json.dumps(cards))
        .replace("SCREENSHOT", "true" if screenshot else "false")
        .replace("FONT_WEIGHTS", json.dumps(FONT_WEIGHTS))
        .replace("FONT_FAMILY", json.dumps(FONT_FAMILY))
    )
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><style>{font_faces() if pinned else ""}'
        f"body{{margin:0;background:#f5f5f5;width:{WIDTH}px;font-family:{family}}}"
        ".host{background:#fff;margin:0 0 8px;border:1px solid #e0e0e0;border-radius:4px;overflow:hidden}"
        ".ac-pushButton{padding:4px 12px;border:1px solid #d1d1d1;border-radius:4px;background:#fff;"
        f"font:600 13px {family};color:#242424}}"
        "</style>"
        f"<script>{markdown}</script><script>{adaptive}</script></head><body>"
        f"<script>{script}</script></body></html>"
    )


def _run(args: list[str], page: str, timeout: float) -> str:
    with tempfile.TemporaryDirectory(prefix="card-render-") as tmp:
        html = Path(tmp) / "card.html"
        html.write_text(page)
        profile = Path(tmp) / "profile"
        command = [chromium(), *FLAGS, f"--user-data-dir={profile}", *args, html.as_uri()]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=tmp)
        if done.returncode != 0:
            raise RuntimeError(f"chromium failed ({done.returncode}): {done.stderr[-800:]}")
        return done.stdout


def check(
    cards: list[dict[str, Any]], *, timeout: float = 90.0, fallback: str = "sans-serif", pinned: bool = True
) -> list[Rendered]:
    """Parse, validate and measure each card (the Adaptive Card itself, not the webhook message).

    `fallback` is the generic family after the pinned font: a test renders with two and expects the same pixels.
    `pinned=False` leaves the pinned font out (the machine's fonts only), to show that such a test has teeth.
    """
    if not cards:
        return []
    page = _page(cards, screenshot=False, fallback=fallback, pinned=pinned)
    dom = _run(["--dump-dom", "--virtual-time-budget=5000"], page, timeout)
    start, end = dom.find('<pre id="result">'), dom.rfind("</pre>")
    if start < 0 or end < 0:
        raise RuntimeError(f"the renderer page produced no result: {escape(dom[-400:])}")
    raw = dom[start + len('<pre id="result">') : end]
    results = json.loads(unescape(raw))
    return [Rendered(r["warnings"], int(r["height"]), int(r["unfoldedHeight"])) for r in results]


def screenshot(card: dict[str, Any], png: str | Path, *, height: int | None = None, timeout: float = 90.0) -> Path:
    """A PNG of the card as first seen (details folded), `height` px tall (default: measured + margin)."""
    if height is None:
        height = check([card], timeout=timeout)[0].height + 16
    out = Path(png).resolve()
    _run(
        [f"--screenshot={out}", f"--window-size={WIDTH},{max(height, 100)}", "--virtual-time-budget=5000"],
        _page([card], screenshot=True),
        timeout,
    )
    if not out.is_file():
        raise RuntimeError(f"chromium wrote no screenshot to {out}")
    return out


def screenshot_html(html_file: str | Path, png: str | Path, *, height: int = 1400, timeout: float = 90.0) -> Path:
    """A PNG of an HTML e-mail body as a browser-based mail client shows it (no network: it needs none)."""
    source = Path(html_file).resolve()
    out = Path(png).resolve()
    with tempfile.TemporaryDirectory(prefix="mail-render-") as tmp:
        command = [
            chromium(),
            *FLAGS,
            f"--user-data-dir={Path(tmp) / 'profile'}",
            f"--screenshot={out}",
            f"--window-size=760,{height}",
            source.as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=tmp)
    if done.returncode != 0 or not out.is_file():
        raise RuntimeError(f"chromium failed ({done.returncode}): {done.stderr[-800:]}")
    return out
