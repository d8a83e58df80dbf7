"""What a notification says, independent of the channel: the Teams card and the e-mail render the same views.

One `ItemView` per change (title, severity colour, a plain sentence of what happened, the facts, the
evidence in short, the documented reference, the portal link); a `Message` is one or more of them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..model import Severity, parse_resource_id

if TYPE_CHECKING:
    from . import Change

PRODUCT = "vmss-autoheal"
MAX_INSTANCES_SHOWN = 10
MAX_EVIDENCE = 8
MAX_VALUE = 160

FINDING_TITLES = {
    "repairs-disabled": "automatic repairs are disabled",
    "health-monitoring-misconfigured": "health monitoring is misconfigured",
    "provisioning-failed": "instances failed provisioning",
    "repairs-suspended": "automatic repairs are suspended",
    "grace-period": "instances are in the repair grace period",
    "unhealthy-not-repaired": "unhealthy instances are not repaired",
    "resilient-create-disabled": "resilient VM create is disabled",
    "resilient-delete-disabled": "resilient VM delete is disabled",
    "create-timed-out": "VM create timed out",
    "delete-failed": "VM delete failed",
}
ACTION_PHRASES = {
    "enable-automatic-repairs": "enable automatic repairs",
    "resume-automatic-repairs": "resume automatic repairs",
    "replace-failed-instances": "replace the failed instances",
    "repair-instances": "repair the unhealthy instances",
    "retry-delete": "retry the stuck delete",
    "set-grace-period": "set the repair grace period",
    "enable-resilient-vm-create": "enable resilient VM create",
    "enable-resilient-vm-delete": "enable resilient VM delete",
}
# Adaptive Card container styles / text colours; e-mail uses the matching hex colours.
STYLE_BY_SEVERITY = {"error": "attention", "warning": "warning", "info": "accent"}
HEX_BY_STYLE = {"attention": "#c4314b", "warning": "#c19c00", "accent": "#0f6cbd", "good": "#107c10"}
_REFERENCE_URL = re.compile(r"\((https?://[^)\s]+)\)\s*$")


def severity_of(value: str) -> Severity:
    try:
        return Severity(str(value).lower())
    except ValueError:
        return Severity.INFO


def action_phrase(action: str) -> str:
    return ACTION_PHRASES.get(action, action.replace("-", " "))


def portal_link(portal_url: str, scale_set_id: str) -> str:
    return f"{portal_url.rstrip('/')}/#@/resource{scale_set_id}"


def short(value: Any, limit: int = MAX_VALUE) -> str:
    if isinstance(value, (dict, list, tuple)):
        text = json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
    elif isinstance(value, datetime):
        text = value.isoformat().replace("+00:00", "Z")
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def split_reference(reference: str) -> tuple[str, str]:
    """`"Troubleshooting ..., cause 4 / resolution 4: ... (https://learn...)"` → (label, url)."""
    reference = (reference or "").strip()
    match = _REFERENCE_URL.search(reference)
    if match:
        return reference[: match.start()].strip() or match.group(1), match.group(1)
    if reference.startswith(("http://", "https://")):
        return reference, reference
    return reference, ""


@dataclass(frozen=True)
class ItemView:
    """One change, ready to render."""

    scale_set_id: str
    scale_set_name: str
    title: str
    severity: str
    state: str
    style: str  # attention | warning | accent | good
    headline: str  # what happened (or would have), in one sentence
    facts: tuple[tuple[str, str], ...]
    evidence: tuple[tuple[str, str], ...]
    reference_text: str
    reference_url: str
    portal_url: str

    @property
    def colour(self) -> str:
        return HEX_BY_STYLE.get(self.style, "#605e5c")


@dataclass(frozen=True)
class Message:
    """One notification: a single change or a digest of several."""

    payload_id: str
    trigger: str
    correlation_id: str
    created_at: datetime
    items: tuple[ItemView, ...]
    portal_url: str

    @property
    def digest(self) -> bool:
        return len(self.items) > 1

    @property
    def severity(self) -> str:
        return max((severity_of(i.severity) for i in self.items), key=lambda s: s.rank, default=Severity.INFO).value

    @property
    def style(self) -> str:
        if all(i.style == "good" for i in self.items):
            return "good"
        return STYLE_BY_SEVERITY[self.severity]

    @property
    def scale_sets(self) -> list[str]:
        seen: dict[str, str] = {}
        for item in self.items:
            seen.setdefault(item.scale_set_id.lower(), item.scale_set_name)
        return list(seen.values())

    @property
    def title(self) -> str:
        if not self.digest:
            return self.items[0].title
        count = len(self.scale_sets)
        return f"{PRODUCT}: {len(self.items)} changes on {count} scale set{'s' if count != 1 else ''}"

    @property
    def overview(self) -> str:
        """For a digest: counts by outcome, e.g. '2 done, 1 held back, 1 would have acted (observe)'."""
        labels = {
            "planned": "would have acted (observe mode)",
            "running": "in progress",
            "verifying": "in progress",
            "succeeded": "done",
            "failed": "failed",
            "held": "held back",
            "resolved": "resolved",
        }
        counts: dict[str, int] = {}
        for item in self.items:
            label = labels.get(item.state, item.state)
            counts[label] = counts.get(label, 0) + 1
        return ", ".join(f"{n} {label}" for label, n in counts.items())

    @property
    def subtitle(self) -> str:
        """'ERROR · held · sweep' (one change) or 'ERROR · sweep · 2 done, 1 held back' (a digest)."""
        if self.digest:
            return f"{self.severity.upper()} · {self.trigger} · {self.overview}"
        item = self.items[0]
        return f"{item.severity.upper()} · {item.state} · {self.trigger}"

    @property
    def footer(self) -> str:
        at = self.created_at.strftime("%Y-%m-%d %H:%M UTC")
        return (
            f"{PRODUCT} · {self.trigger} at {at} · correlation {self.correlation_id or '-'} · payload {self.payload_id}"
        )

    @property
    def text(self) -> str:
        """Plain text (e-mail body, card fallback)."""
        lines = [self.title, ""]
        if self.digest:
            lines += [self.overview, ""]
        for item in self.items:
            if self.digest:
                lines += [f"== {item.title} [{item.severity}]", ""]
            else:
                lines += [f"Severity: {item.severity}", ""]
            lines += [item.headline, ""]
            width = max(len(k) for k, _ in item.facts)
            lines += [f"  {k.ljust(width)}  {v}" for k, v in item.facts]
            if item.evidence:
                lines += ["", "  Evidence:"] + [f"    {k}: {v}" for k, v in item.evidence]
            if item.reference_text:
                ref = item.reference_text + (f" <{item.reference_url}>" if item.reference_url else "")
                lines += ["", f"  Documented fix: {ref}"]
            lines += [f"  Open in the Azure portal: {item.portal_url}", ""]
        lines += ["--", self.footer]
        return "\n".join(lines)


def headline(change: Change) -> str:
    record = change.record
    state = record.state.value
    action = record.action or "none"
    phrase = action_phrase(action)
    reason = record.reason.strip().rstrip(".")
    targets = _targets(change)
    on = f" on {targets}" if targets and targets != "the scale set" else ""
    if action == "none" and state in ("planned", "held"):
        return f"No automatic action: {reason or 'this finding needs a person'}."
    if state == "planned":
        if record.mode == "observe":
            return f"Would have done: {phrase}{on}. Observe mode: nothing was changed."
        return f"Planned: {phrase}{on}."
    if state == "running":
        return f"Acting: {phrase}{on} (attempt {max(record.attempts, 1)})."
    if state == "verifying":
        return f"Verifying: {phrase}{on} was sent; waiting for Azure to confirm."
    if state == "succeeded":
        return f"Done: {phrase}{on} succeeded."
    if state == "failed":
        error = short(record.last_error or reason or "no error reported", 300).rstrip(".")
        return f"Failed: {phrase}{on} did not succeed after {record.attempts} attempt(s): {error}."
    if state == "held":
        because = f": {reason}" if reason else ""
        if record.mode == "observe":
            return f"Held back: would not have done {phrase}{on} even in remediate mode{because}."
        return f"Held back: {phrase}{on} was not done{because}."
    if state == "resolved":
        was = change.previous_state or record.notified_state
        return f"Resolved: the finding is gone{f' (was {was})' if was else ''}."
    return f"{state.title()}: {phrase}{on}."


def _instances(change: Change) -> list[str]:
    ids = list(change.record.instance_ids)
    if not ids and change.finding is not None:
        ids = list(change.finding.instance_ids)
    return ids


def _targets(change: Change) -> str:
    ids = _instances(change)
    if not ids:
        target = change.record.target
        return "the scale set" if target in ("", "*") else f"instance {target}"
    shown = ", ".join(ids[:MAX_INSTANCES_SHOWN])
    more = f" and {len(ids) - MAX_INSTANCES_SHOWN} more" if len(ids) > MAX_INSTANCES_SHOWN else ""
    return f"instance{'s' if len(ids) > 1 else ''} {shown}{more}"


def _outcome(change: Change) -> str:
    record = change.record
    state = record.state.value
    text = "planned (observe mode: would have acted)" if state == "planned" and record.mode == "observe" else state
    if state == "held" and record.reason_code:
        text += f" ({record.reason_code})"
    if state == "failed" and record.last_error:
        text += f": {short(record.last_error, 200)}"
    elif state in ("held", "failed", "planned") and record.reason:
        text += f": {short(record.reason, 200)}"
    return text


def item_view(change: Change, *, portal_url: str) -> ItemView:
    record = change.record
    finding = change.finding
    ids = parse_resource_id(record.scale_set_id)
    name = record.scale_set_name or ids.get("virtualmachinescalesets", "") or record.scale_set_id
    code = record.finding_code
    state = record.state.value
    severity = severity_of(record.severity or (finding.severity.value if finding else "info")).value
    summary = record.summary or (finding.summary if finding else "")
    action = record.action or "none"
    params = record.params or (finding.proposed_action.params if finding else {})
    action_text = action if not params else f"{action} ({', '.join(f'{k}={short(v, 60)}' for k, v in params.items())})"
    instances = _instances(change)
    facts = (
        ("Subscription", ids.get("subscriptions", "")),
        ("Resource group", ids.get("resourcegroups", "")),
        ("Scale set", name),
        ("Cause", short(f"{code}: {summary}" if summary else code, 300)),
        ("Action", action_text),
        ("Mode", record.mode),
        ("Outcome", _outcome(change)),
        ("Instances", _targets(change) if instances else ("whole scale set" if record.target in ("", "*") else "-")),
        ("Attempts", str(record.attempts)),
    )
    evidence: tuple[tuple[str, str], ...] = ()
    if finding is not None and finding.evidence:
        evidence = tuple((str(k), short(v)) for k, v in list(finding.evidence.items())[:MAX_EVIDENCE])
    reference_text, reference_url = split_reference(finding.reference if finding else "")
    style = "good" if state in ("succeeded", "resolved") else STYLE_BY_SEVERITY[severity]
    return ItemView(
        scale_set_id=record.scale_set_id,
        scale_set_name=name,
        title=f"{name}: {FINDING_TITLES.get(code, code.replace('-', ' '))}",
        severity=severity,
        state=state,
        style=style,
        headline=headline(change),
        facts=tuple((k, v or "-") for k, v in facts),
        evidence=evidence,
        reference_text=reference_text,
        reference_url=reference_url,
        portal_url=portal_link(portal_url, record.scale_set_id),
    )
