"""The Teams card and the e-mail bodies: shape, facts, colours, links, observe wording."""

from __future__ import annotations

import json

import pytest

from autoheal.notify.email import render_email
from autoheal.notify.teams import build_card, build_payload
from autoheal.remediation.ledger import State

from .adaptive_card import elements, validate_payload
from .conftest import SUB, change, message, scale_set


def facts_of(card: dict) -> dict[str, str]:
    return {f["title"]: f["value"] for f in elements(card, "FactSet")[0]["facts"]}


def test_single_change_card_validates_and_carries_every_fact() -> None:
    payload = build_payload(message(change(State.SUCCEEDED, "verifying")))
    validate_payload(payload)
    attachment = payload["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    header = card["body"][0]
    assert header["type"] == "Container" and header["style"] == "good"  # succeeded: green
    assert header["items"][0]["text"] == "vmss-web: automatic repairs are suspended"
    facts = facts_of(card)
    assert list(facts) == [
        "Subscription",
        "Resource group",
        "Scale set",
        "Cause",
        "Action",
        "Mode",
        "Outcome",
        "Instances",
        "Attempts",
    ]
    assert facts["Subscription"] == SUB
    assert facts["Resource group"] == "rg-web"
    assert facts["Scale set"] == "vmss-web"
    assert facts["Cause"].startswith("repairs-suspended: Automatic repairs are suspended")
    assert facts["Action"] == "resume-automatic-repairs"
    assert facts["Mode"] == "remediate"
    assert facts["Outcome"] == "succeeded"
    assert facts["Instances"] == "whole scale set"
    assert facts["Attempts"] == "1"


def test_card_links_open_the_scale_set_in_the_portal_and_the_documented_fix() -> None:
    card = build_card(message(change(State.FAILED, "running", last_error="Conflict: operation in progress")))
    urls = {a["title"]: a["url"] for a in card["actions"]}
    assert urls["Open in Azure portal"] == f"https://portal.azure.com/#@/resource{scale_set()}"
    assert urls["Documented fix"].startswith("https://learn.microsoft.com/azure/virtual-machine-scale-sets/")
    texts = [t["text"] for t in elements(card, "TextBlock")]
    assert any(
        t.startswith("Documented fix: [Troubleshooting 'VMSS instances aren't repaired', cause 4") for t in texts
    )
    assert any("Failed: resume automatic repairs did not succeed after 1 attempt(s): Conflict" in t for t in texts)
    evidence = {f["title"]: f["value"] for f in elements(card, "FactSet")[1]["facts"]}
    assert evidence == {"serviceName": "AutomaticRepairs", "serviceState": "Suspended", "policy": '{"enabled":true}'}


@pytest.mark.parametrize(
    ("severity", "state", "style"),
    [
        ("error", State.FAILED, "attention"),
        ("warning", State.HELD, "warning"),
        ("info", State.PLANNED, "accent"),
        ("error", State.RESOLVED, "good"),
    ],
)
def test_severity_colour(severity: str, state: State, style: str) -> None:
    card = build_card(message(change(state, severity=severity)))
    assert card["body"][0]["style"] == style


def test_observe_mode_says_plainly_what_it_would_have_done() -> None:
    observed = change(State.PLANNED, mode="observe", action="replace-failed-instances", instance_ids=["3", "7"])
    card = build_card(message(observed))
    texts = " ".join(t["text"] for t in elements(card, "TextBlock"))
    assert (
        "Would have done: replace the failed instances on instances 3, 7. Observe mode: nothing was changed." in texts
    )
    facts = facts_of(card)
    assert facts["Mode"] == "observe"
    assert facts["Outcome"].startswith("planned (observe mode: would have acted)")
    assert facts["Instances"] == "instances 3, 7"
    _, html, text = render_email(message(observed))
    assert "Would have done: replace the failed instances" in text
    assert "Would have done: replace the failed instances" in html


def test_held_back_explains_why_with_the_reason_code() -> None:
    held = change(State.HELD, reason="45% of instances are unhealthy: storm brake", reason_code="storm-brake")
    card = build_card(message(held))
    assert facts_of(card)["Outcome"] == "held (storm-brake): 45% of instances are unhealthy: storm brake"
    texts = " ".join(t["text"] for t in elements(card, "TextBlock"))
    assert "Held back: resume automatic repairs was not done: 45% of instances are unhealthy: storm brake." in texts


def test_digest_lists_every_change_with_its_own_links_and_stays_small() -> None:
    changes = [change(State.SUCCEEDED, name=f"vmss-{n}", instance_ids=[str(i) for i in range(40)]) for n in range(8)]
    payload = build_payload(message(*changes))
    validate_payload(payload)
    card = payload["attachments"][0]["content"]
    assert card["body"][0]["items"][0]["text"] == "vmss-autoheal: 8 changes on 8 scale sets"
    assert len(elements(card, "ActionSet")) == 8
    portal = {a["url"] for a in elements(card, "Action.OpenUrl") if a["title"] == "Open in Azure portal"}
    assert portal == {f"https://portal.azure.com/#@/resource{scale_set(f'vmss-{n}')}" for n in range(8)}
    assert card["actions"], "a digest still has a top-level action"
    # Teams refuses messages above ~28 KB: a full digest card (8 items, 40 instances each) stays well below
    assert len(json.dumps(payload).encode()) < 24_000
    assert "and 30 more" in json.dumps(card)


def test_email_has_the_same_content_as_the_card() -> None:
    msg = message(change(State.SUCCEEDED))
    subject, html, text = render_email(msg)
    assert subject == "[vmss-autoheal] ERROR: vmss-web: automatic repairs are suspended (succeeded)"
    card = build_card(msg)
    for title, value in facts_of(card).items():
        assert title in text and value in text
        assert f">{title}<" in html
    assert f'href="https://portal.azure.com/#@/resource{scale_set()}"' in html
    assert "https://learn.microsoft.com/azure/virtual-machine-scale-sets/" in html
    assert "payload p-0123456789" in html and "correlation corr-42" in text


def test_html_escapes_what_came_from_azure() -> None:
    hostile = change(State.FAILED, last_error="<script>alert(1)</script>")
    _, html, _ = render_email(message(hostile))
    assert "<script>" not in html and "&lt;script&gt;" in html
