"""What a notification says, independent of the channel: the Teams card and the e-mail render the same views.

Summary first, detail on demand: a message is headed by the worst *outcome* in it (failed > needs a person >
held back > in progress > done > would act), then one line per scale set (what broke, what was done or why
not), then per scale set the detail (facts, readable evidence, the Microsoft section, the portal link to the
instance, the `az` command) that the card folds away and the e-mail prints small.
Observe mode says "would" and never claims a change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING

from ..model import ActionCode, Severity
from ..remediation.actions import ACTIONS, ActionSpec
from ..remediation.actions.registry import fill
from ..resource_ids import segments
from . import evidence as ev
from .links import Links, links_for, portal_link

if TYPE_CHECKING:
    from . import Change

PRODUCT = "vmss-autoheal"
MAX_INSTANCES_SHOWN = 5
MORE_HINT = "see 'vmss-autoheal history' or the app's /api/status page"

FINDING_TITLES = {
    "repairs-disabled": "automatic repairs are off",
    "health-monitoring-misconfigured": "health monitoring is misconfigured",
    "provisioning-failed": "instances failed provisioning",
    "repairs-suspended": "automatic repairs are suspended",
    "grace-period": "instances are in the repair grace period",
    "unhealthy-not-repaired": "unhealthy instances are not being repaired",
    "resilient-create-disabled": "resilient VM create is off",
    "resilient-delete-disabled": "resilient VM delete is off",
    "create-timed-out": "VM create timed out",
    "delete-failed": "VM delete failed",
}
# Holds that clear on their own (the next sweep tries again); any other hold needs a person.
WAITING_REASONS = frozenset(
    {
        "cooldown",
        "backoff",
        "disruption-budget",
        "sweep-cap",
        "resume-budget",
        "grace-period",
        "platform-retrying",
        "resilient-create-window",
        "lease",
    }
)
HEX_BY_STYLE = {"attention": "#c4314b", "warning": "#8a6a00", "accent": "#0f6cbd", "good": "#107c10"}


class Disposition(Enum):
    """The outcome of one change as the reader cares about it; `rank` orders severity of outcome."""

    FAILED = (6, "failed", "failed", "FAILED", "attention")
    NEEDS_PERSON = (5, "needs a person", "need a person", "NEEDS A PERSON", "warning")
    HELD = (4, "held back", "held back", "HELD BACK", "warning")
    ACTING = (3, "in progress", "in progress", "IN PROGRESS", "accent")
    DONE = (2, "done", "done", "DONE", "good")
    WOULD_ACT = (1, "would act", "would act", "OBSERVE", "accent")

    def __init__(self, rank: int, one: str, many: str, heading: str, style: str) -> None:
        self.rank = rank
        self.one = one
        self.many = many
        self.heading = heading
        self.style = style

    def count(self, n: int) -> str:
        return f"{n} {self.one if n == 1 else self.many}"


def severity_of(value: str) -> Severity:
    try:
        return Severity(str(value).lower())
    except ValueError:
        return Severity.INFO


def action_phrase(action: str) -> str:
    return to_do(action, "")


def disposition_of(change: Change) -> Disposition:
    record = change.record
    state = record.state.value
    if state == "failed":
        return Disposition.FAILED
    if state in ("succeeded", "resolved"):
        return Disposition.DONE
    if state in ("running", "verifying"):
        return Disposition.ACTING
    waiting = record.reason_code in WAITING_REASONS
    if record.action in ("", "none") or state == "held":
        return Disposition.HELD if waiting else Disposition.NEEDS_PERSON
    return Disposition.WOULD_ACT if record.mode == "observe" else Disposition.ACTING


def _instances(change: Change) -> list[str]:
    ids = [str(i) for i in change.record.instance_ids]
    if not ids and change.finding is not None:
        ids = [str(i) for i in change.finding.instance_ids]
    if not ids and change.record.target not in ("", "*"):
        ids = [change.record.target]
    return ids


def targets_text(ids: list[str]) -> str:
    if not ids:
        return ""
    shown = ", ".join(ids[:MAX_INSTANCES_SHOWN])
    more = f" and {len(ids) - MAX_INSTANCES_SHOWN} more" if len(ids) > MAX_INSTANCES_SHOWN else ""
    return f"instance{'s' if len(ids) > 1 else ''} {shown}{more}"


def _spec(action: str) -> ActionSpec | None:
    try:
        return ACTIONS.get(ActionCode(action))
    except ValueError:
        return None


def to_do(action: str, targets: str) -> str:
    """'replace the failed instance 2' (what the action does, in the infinitive; wording from its declaration)."""
    spec = _spec(action)
    return fill(spec.to_do, targets) if spec else action.replace("-", " ")


def done(action: str, targets: str) -> str:
    spec = _spec(action)
    return fill(spec.done, targets) if spec else f"completed {action.replace('-', ' ')}"


def _reason(text: str) -> str:
    return " ".join((text or "").split()).rstrip(".")


def _cap(text: str) -> str:
    """For a reason that starts a sentence of its own."""
    return text[:1].upper() + text[1:]


def sentence(change: Change, disposition: Disposition) -> str:
    """What was done, or why not, in one plain sentence."""
    record = change.record
    state = record.state.value
    targets = targets_text(_instances(change))
    action = record.action or "none"
    reason = _reason(record.reason)
    observe = record.mode == "observe"
    if state == "resolved":
        return "Resolved: Azure no longer shows the problem."
    if state == "succeeded":
        return f"Done: {done(action, targets)}."
    if state == "failed":
        error = _cap(_reason(ev.clip(record.last_error or record.reason or "no error reported", 240)))
        tries = f"{record.attempts} attempt{'s' if record.attempts != 1 else ''}"
        return f"Failed: could not {to_do(action, targets)} after {tries}. {error}."
    if state == "running":
        return f"In progress: {to_do(action, targets)} (attempt {max(record.attempts, 1)})."
    if state == "verifying":
        return f"Sent: {to_do(action, targets)}; waiting for Azure to confirm."
    if disposition is Disposition.NEEDS_PERSON:
        if action == "none":
            return f"Needs a person: {reason or 'no automatic fix is documented for this'}."
        verb = "would not" if observe else "did not"
        return f"Needs a person: {verb} {to_do(action, targets)}. {_cap(reason) or 'A guardrail held it back'}."
    if disposition is Disposition.HELD:
        if action == "none":
            return f"Waiting: {reason or 'the platform is still acting'}."
        later = f"would {to_do(action, targets)}" if observe else f"will {to_do(action, targets)}"
        return f"Held back for now, {later} later. {_cap(reason) or 'A guardrail held it back'}."
    if observe:
        return f"Would {to_do(action, targets)}. Nothing was changed (observe mode)."
    return f"Planned: {to_do(action, targets)}."


@dataclass(frozen=True)
class ItemView:
    """One change, ready to render."""

    scale_set_id: str
    scale_set_name: str
    resource_group: str
    finding_code: str
    problem: str  # what broke, e.g. "automatic repairs are suspended"
    sentence: str  # what was done or why not
    disposition: Disposition
    mode: str
    facts: ev.Facts
    evidence: ev.Facts
    links: Links

    @property
    def style(self) -> str:
        return self.disposition.style

    @property
    def colour(self) -> str:
        return HEX_BY_STYLE.get(self.style, "#605e5c")

    @property
    def line(self) -> str:
        return f"{self.problem[:1].upper()}{self.problem[1:]}. {self.sentence}"


@dataclass(frozen=True)
class ScaleSetView:
    """The items of one scale set: one line each under the scale set's name."""

    scale_set_id: str
    name: str
    resource_group: str
    items: tuple[ItemView, ...]

    @property
    def disposition(self) -> Disposition:
        return max((i.disposition for i in self.items), key=lambda d: d.rank)


def _counts(items: tuple[ItemView, ...]) -> str:
    counts: dict[Disposition, int] = {}
    for item in items:
        counts[item.disposition] = counts.get(item.disposition, 0) + 1
    return ", ".join(d.count(counts[d]) for d in sorted(counts, key=lambda d: -d.rank))


@dataclass(frozen=True)
class Message:
    """One notification: a single change or a digest of several (items sorted worst outcome first)."""

    payload_id: str
    trigger: str
    correlation_id: str
    created_at: datetime
    items: tuple[ItemView, ...]
    portal_url: str
    changes: tuple[Change, ...] = field(default=(), repr=False, compare=False)  # for channels that send records

    @property
    def digest(self) -> bool:
        return len(self.items) > 1

    @property
    def disposition(self) -> Disposition:
        return max((i.disposition for i in self.items), key=lambda d: d.rank, default=Disposition.DONE)

    @property
    def observe(self) -> bool:
        return bool(self.items) and all(i.mode == "observe" for i in self.items)

    @property
    def style(self) -> str:
        return self.disposition.style

    @property
    def heading(self) -> str:
        """The truthful one-word verdict: FAILED, NEEDS A PERSON, HELD BACK, IN PROGRESS, DONE, OBSERVE."""
        return self.disposition.heading

    @property
    def scale_sets(self) -> list[ScaleSetView]:
        groups: dict[str, list[ItemView]] = {}
        for item in self.items:
            groups.setdefault(item.scale_set_id.lower(), []).append(item)
        views = [
            ScaleSetView(items[0].scale_set_id, items[0].scale_set_name, items[0].resource_group, tuple(items))
            for items in groups.values()
        ]
        return sorted(views, key=lambda v: -v.disposition.rank)

    @property
    def counts(self) -> str:
        """'1 failed, 2 need a person, 3 done' (observe: '5 would act, 1 needs a person')."""
        return _counts(self.items)

    @property
    def title(self) -> str:
        if not self.digest:
            item = self.items[0]
            return f"{item.scale_set_name}: {item.problem}"
        n, findings = len(self.scale_sets), len(self.items)
        where = f"{n} scale set{'s' if n != 1 else ''}"
        if findings == n:
            return f"{where}: {self.counts}"
        return f"{findings} findings on {where}: {self.counts}"

    @property
    def subtitle(self) -> str:
        at = self.created_at.strftime("%H:%M UTC")
        mode = "observe mode: nothing was changed" if self.observe else "remediate mode"
        return f"{self.trigger} at {at} · {mode}"

    @property
    def footer(self) -> str:
        at = self.created_at.strftime("%Y-%m-%d %H:%M UTC")
        return (
            f"{PRODUCT} · {self.trigger} at {at} · correlation {self.correlation_id or '-'} · payload {self.payload_id}"
        )

    def text(self, max_scale_sets: int | None = None) -> str:
        """Plain text (e-mail body, card fallback)."""
        groups = self.scale_sets
        shown = groups if max_scale_sets is None else groups[:max_scale_sets]
        lines = [f"{self.heading}: {self.title}", self.subtitle, ""]
        for group in shown:
            lines.append(f"{group.name} ({group.resource_group})")
            lines += [f"  - {item.line}" for item in group.items]
            lines.append("")
        for group in shown:
            for item in group.items:
                lines.append(f"== {group.name}: {item.problem}")
                width = max(len(k) for k, _ in item.facts + item.evidence)
                lines += [f"  {k.ljust(width)}  {v}" for k, v in item.facts + item.evidence]
                lines.append(f"  Microsoft: {item.links.doc_label} <{item.links.doc_url}>")
                lines.append(f"  Portal:    {item.links.portal_url}")
                lines.append(f"  Check:     {item.links.az_command}")
                lines.append("")
        hidden = len(groups) - len(shown)
        if hidden > 0:
            lines += [f"{hidden} more scale set{'s' if hidden != 1 else ''}: {MORE_HINT}.", ""]
        lines += ["--", self.footer]
        return "\n".join(lines)


def item_view(change: Change, *, portal_url: str, tenant_id: str = "") -> ItemView:
    record = change.record
    finding = change.finding
    ids = segments(record.scale_set_id)
    name = ids.get("virtualmachinescalesets", "") or record.scale_set_id
    rg = ids.get("resourcegroups", "")
    code = record.finding_code
    disposition = disposition_of(change)
    instances = _instances(change)
    action = record.action or "none"
    outcome = disposition.one
    if record.reason_code:
        outcome += f" ({record.reason_code})"
    facts: list[tuple[str, str]] = [
        ("Scale set", f"{name} in {rg}" if rg else name),
        ("Finding", code),
        ("Action", "none" if action == "none" else to_do(action, targets_text(instances))),
        ("Outcome", outcome),
    ]
    if instances:
        facts.append(("Instances", targets_text(instances)))
    if record.attempts:
        facts.append(("Attempts", str(record.attempts)))
    summary = record.summary or (finding.summary if finding else "")
    if summary:
        facts.append(("Summary", ev.clip(summary, 300)))
    reference = _split_reference(finding.reference if finding else "")
    # a replaced or deleted instance is gone: once done, the link shows the scale set
    spec = _spec(action)
    gone = record.state.value in ("succeeded", "resolved") and spec is not None and spec.removes_instances
    links = links_for(
        code,
        record.scale_set_id,
        [] if gone else instances,
        portal_url=portal_url,
        tenant_id=tenant_id,
        reference_fallback=reference,
    )
    return ItemView(
        scale_set_id=record.scale_set_id,
        scale_set_name=name,
        resource_group=rg,
        finding_code=code,
        problem=FINDING_TITLES.get(code, code.replace("-", " ")),
        sentence=sentence(change, disposition),
        disposition=disposition,
        mode=record.mode,
        facts=tuple(facts),
        evidence=ev.readable(finding.evidence if finding else None),
        links=links,
    )


def _split_reference(reference: str) -> tuple[str, str]:
    """`"Troubleshooting ..., cause 4 ... (https://learn...)"` → (label, url), for findings without a section."""
    reference = (reference or "").strip()
    if reference.endswith(")") and "(http" in reference:
        label, _, url = reference[:-1].rpartition("(")
        return label.strip() or url, url
    if reference.startswith(("http://", "https://")):
        return reference, reference
    return reference, ""


__all__ = [
    "Disposition",
    "ItemView",
    "Message",
    "ScaleSetView",
    "action_phrase",
    "disposition_of",
    "item_view",
    "portal_link",
    "severity_of",
]
