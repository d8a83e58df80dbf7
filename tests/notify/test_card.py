"""The Teams card and the e-mail bodies: the truthful heading, plain sentences, readable evidence, links that
land, the size limit and folded details (issue 14)."""

from __future__ import annotations

import json
import re

import pytest

from autoheal.model import ActionCode, Finding, FindingCode, ProposedAction, Severity
from autoheal.notify import Change
from autoheal.notify.content import item_view
from autoheal.notify.email import render_email
from autoheal.notify.teams import MAX_PAYLOAD_BYTES, build_card, build_payload, payload_size

from .adaptive_card import elements, validate_payload
from .conftest import SUB, State, change, message, record, scale_set

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def texts(card: dict) -> str:
    return "\n".join(t["text"] for t in elements(card, "TextBlock"))


def facts_of(card: dict, index: int = 0) -> dict[str, str]:
    return {f["title"]: f["value"] for f in elements(card, "FactSet")[index]["facts"]}


def name_of(block: dict) -> str:
    """The scale set's name line of a block (first column of its first row)."""
    return block["items"][0]["columns"][0]["items"][0]["text"]


def everything(msg) -> str:
    """All the words a reader can see: card, e-mail subject, HTML and text."""
    subject, html, text = render_email(msg)
    card = build_payload(msg)["attachments"][0]["content"]
    facts = [f"{f['title']}: {f['value']}" for fs in elements(card, "FactSet") for f in fs["facts"]]
    buttons = [a["title"] for a in elements(card, "Action.OpenUrl") + elements(card, "Action.ToggleVisibility")]
    return "\n".join([texts(card), *facts, *buttons, card["fallbackText"], subject, html, text])


def test_single_change_card_validates_leads_with_the_outcome_and_carries_the_facts() -> None:
    payload = build_payload(message(change(State.SUCCEEDED, "verifying")))
    validate_payload(payload)
    card = payload["attachments"][0]["content"]
    assert card["version"] == "1.4"
    header = card["body"][0]
    assert header["style"] == "good"
    assert [t["text"] for t in header["items"]] == [
        "DONE · vmss-autoheal",
        "vmss-web: automatic repairs are suspended",
        "sweep at 12:00 UTC · remediate mode",
    ]
    assert "Automatic repairs are suspended. Done: resumed automatic repairs." in texts(card)
    facts = facts_of(card)
    assert facts == {
        "Finding": "repairs-suspended",
        "Action": "resume automatic repairs",
        "Outcome": "done",
        "Attempts": "1",
        "Summary": "Automatic repairs are suspended since 2026-11-23T10:00:00Z",
    }


@pytest.mark.parametrize(
    ("states", "heading", "style"),
    [
        # the complaint: an all-success digest of error-severity findings was headed ERROR
        ([State.SUCCEEDED, State.SUCCEEDED], "DONE", "good"),
        ([State.SUCCEEDED, State.FAILED, State.HELD], "FAILED", "attention"),
        ([State.SUCCEEDED, State.HELD], "NEEDS A PERSON", "warning"),
        ([State.SUCCEEDED, State.PLANNED], "DONE", "good"),
        ([State.PLANNED, State.PLANNED], "OBSERVE", "accent"),
        ([State.RESOLVED], "DONE", "good"),
    ],
)
def test_heading_and_subject_are_the_worst_outcome_not_the_worst_finding(states, heading, style) -> None:
    changes = []
    for n, state in enumerate(states):
        mode = "observe" if state is State.PLANNED else "remediate"
        reason = {"reason": "protected instance", "reason_code": "protected"} if state is State.HELD else {}
        changes.append(change(state, name=f"vmss-{n}", severity="error", mode=mode, **reason))
    msg = message(*changes)
    card = build_card(msg)
    assert card["body"][0]["style"] == style
    assert card["body"][0]["items"][0]["text"] == f"{heading} · vmss-autoheal"
    assert render_email(msg)[0].startswith(f"[vmss-autoheal] {heading}: ")
    assert "ERROR" not in everything(msg)


def test_a_hold_that_clears_on_its_own_is_held_back_not_a_call_for_a_person() -> None:
    waiting = change(State.HELD, reason="another instance action 4 min ago", reason_code="cooldown")
    msg = message(waiting)
    assert msg.heading == "HELD BACK"
    assert "Held back for now, will resume automatic repairs later. Another instance action 4 min ago." in texts(
        build_card(msg)
    )


def test_observe_mode_says_would_and_never_claims_changes() -> None:
    observed = [
        change(State.PLANNED, name=f"vmss-{n}", mode="observe", action="replace-failed-instances", instance_ids=["3"])
        for n in range(8)
    ]
    observed[0] = change(
        State.PLANNED,
        mode="observe",
        action="enable-automatic-repairs",
        reason="observe mode: would enable-automatic-repairs",  # the engine's reason: never shown as is
    )
    msg = message(*observed)
    seen = everything(msg)
    assert "change" not in seen.replace("nothing was changed", "").replace("Nothing was changed", "").lower()
    assert "observe mode: would enable-automatic-repairs" not in seen
    card = build_card(msg)
    assert card["body"][0]["items"][1]["text"] == "8 scale sets: 8 would act"
    assert card["body"][0]["items"][2]["text"] == "sweep at 12:00 UTC · observe mode: nothing was changed"
    assert "Would enable automatic repairs. Nothing was changed (observe mode)." in texts(card)
    assert "Would replace the failed instance 3. Nothing was changed (observe mode)." in texts(card)


@pytest.mark.parametrize(
    ("state", "kw", "expected"),
    [
        (
            State.SUCCEEDED,
            {"action": "replace-failed-instances", "target": "2"},
            "Done: replaced the failed instance 2.",
        ),
        (
            State.FAILED,
            {"last_error": "Conflict: operation in progress", "attempts": 3},
            "Failed: could not resume automatic repairs after 3 attempts. Conflict: operation in progress.",
        ),
        (
            State.HELD,
            {"reason": "45% of instances are unhealthy: storm brake", "reason_code": "storm-brake"},
            "Needs a person: did not resume automatic repairs. 45% of instances are unhealthy: storm brake.",
        ),
        (
            State.PLANNED,
            {"action": "none", "reason": "configure an Application Health extension or LB probe first"},
            "Needs a person: configure an Application Health extension or LB probe first.",
        ),
        (State.RUNNING, {"action": "retry-delete", "instance_ids": ["4"]}, "In progress: delete instance 4 again"),
    ],
)
def test_sentences_read_as_sentences(state: State, kw: dict, expected: str) -> None:
    """The issue quoted `Done: replace the failed instances on instance 2 succeeded.`: never again."""
    seen = texts(build_card(message(change(state, **kw))))
    assert expected in seen
    assert " on instance" not in seen and "succeeded." not in seen


def _finding(code: FindingCode, evidence: dict, instance_ids: tuple[str, ...] = ()) -> Finding:
    return Finding(
        code=code,
        severity=Severity.ERROR,
        scale_set_id=scale_set(),
        summary="s",
        reference="",
        proposed_action=ProposedAction(ActionCode.NONE),
        instance_ids=instance_ids,
        evidence=evidence,
    )


def test_evidence_is_readable_facts_never_json_or_none() -> None:
    evidence = {
        "healthSources": [
            {"kind": "applicationHealthExtension", "protocol": "http", "port": 8080, "requestPath": "/healthz"}
        ],
        "health": {
            "running": 3,
            "healthy": 0,
            "unhealthy": 3,
            "unknown": 0,
            "badPercent": 100,
            "stormThresholdPercent": 50,
        },
        "automaticRepairsPolicy": {"present": True, "enabled": True, "gracePeriod": "PT30M", "repairAction": None},
        "serviceState": None,
        "instances": [
            {
                "instanceId": "2",
                "name": "vmss-web_2",
                "provisioningState": "Failed",
                "errorCode": "OSProvisioningTimedOut",
            }
        ],
        "verdict": None,
    }
    rec = record(State.HELD, code="health-monitoring-misconfigured", action="none", reason="needs a person")
    msg = message(Change(rec, "", _finding(FindingCode.HEALTH_MONITORING_MISCONFIGURED, evidence)))
    card = build_card(msg)
    hidden = [c for c in elements(card, "Container") if c.get("isVisible") is False]
    evidence_facts = {
        f["title"]: f["value"] for fs in elements({"body": hidden[0]["items"]}, "FactSet") for f in fs["facts"]
    }
    assert evidence_facts["Health source"] == "Application Health extension http:8080/healthz"
    assert (
        evidence_facts["Health"] == "0 of 3 running instances healthy, 3 unhealthy (100 % bad; storm brake above 50 %)"
    )
    assert evidence_facts["Repairs policy"] == "enabled, grace period PT30M"
    assert evidence_facts["Repairs service"] == "absent"
    assert evidence_facts["Instances"] == "vmss-web_2 (Failed, OSProvisioningTimedOut)"
    assert evidence_facts["Why"] == "not set"
    seen = everything(msg)
    assert "None" not in seen and "{'" not in seen and '{"' not in texts(card)


def test_details_are_folded_behind_a_toggle_one_per_scale_set() -> None:
    msg = message(*[change(State.SUCCEEDED, name=f"vmss-{n}") for n in range(3)])
    card = build_card(msg)
    hidden = {c["id"]: c for c in elements(card, "Container") if c.get("isVisible") is False}
    toggles = elements(card, "Action.ToggleVisibility")
    assert len(toggles) == 3 == len(hidden)
    assert {t for a in toggles for t in a["targetElements"]} == set(hidden)
    # what shows before a click: the header, then per scale set its name and one line; no FactSet
    visible = [e for c in card["body"][1:4] for e in c["items"] if e.get("isVisible") is not False]
    assert [e["type"] for e in visible] == ["ColumnSet", "TextBlock"] * 3
    assert [name_of(c) for c in card["body"][1:4]] == [f"**vmss-{n}** · rg-web" for n in range(3)]
    assert not elements(card, "Action.OpenUrl")  # links live in the folded details (markdown), not buttons


def test_a_busy_sweep_is_one_digest_with_the_worst_first_and_a_count_of_the_rest() -> None:
    changes = [change(State.SUCCEEDED, name=f"vmss-{n:02d}") for n in range(20)]
    changes.append(change(State.FAILED, name="vmss-broken", last_error="boom"))
    payload = build_payload(message(*changes), max_scale_sets=8)
    validate_payload(payload)
    card = payload["attachments"][0]["content"]
    assert card["body"][0]["items"][1]["text"] == "21 scale sets: 1 failed, 20 done"
    assert name_of(card["body"][1]).startswith("**vmss-broken**")  # worst outcome first
    assert len(elements(card, "Action.ToggleVisibility")) == 8
    assert "13 more scale sets (13 done): see 'vmss-autoheal history' or the app's /api/status page." in texts(card)


def test_the_card_is_shrunk_below_the_teams_size_limit() -> None:
    long = "x" * 400
    changes = [
        change(
            State.FAILED, name=f"vmss-{n:02d}", last_error=long, summary=long, instance_ids=[str(i) for i in range(60)]
        )
        for n in range(40)
    ]
    msg = message(*changes)
    unshrunk = len(json.dumps({"card": build_card(msg, max_scale_sets=40)}).encode())
    assert unshrunk > MAX_PAYLOAD_BYTES  # the case is real
    payload = build_payload(msg, max_scale_sets=40)
    validate_payload(payload)
    assert payload_size(payload) <= MAX_PAYLOAD_BYTES == 28_000
    assert re.search(r"\d+ more scale sets \(\d+ failed\)", texts(payload["attachments"][0]["content"]))


def test_shrinking_trims_the_evidence_before_it_hides_a_scale_set() -> None:
    def with_evidence(n: int) -> Change:
        found = _finding(FindingCode.PROVISIONING_FAILED, {f"fact{k}": "y" * 150 for k in range(8)})
        rec = record(State.FAILED, name=f"vmss-{n}", code="provisioning-failed", last_error="boom")
        return Change(rec, "", found)

    msg = message(*[with_evidence(n) for n in range(8)])
    assert len(json.dumps(build_payload_unshrunk(msg)).encode()) > MAX_PAYLOAD_BYTES
    card = build_payload(msg)["attachments"][0]["content"]
    assert len(elements(card, "Action.ToggleVisibility")) == 8  # every scale set still shown in full
    hidden = [c for c in elements(card, "Container") if c.get("isVisible") is False]
    evidence = [
        fs for c in hidden for fs in elements({"body": c["items"]}, "FactSet") if fs["facts"][0]["title"] == "Fact0"
    ]
    assert len(evidence) == 8 and all(len(fs["facts"]) == 4 for fs in evidence)


def build_payload_unshrunk(msg) -> dict:
    return {"type": "message", "attachments": [{"content": build_card(msg, max_scale_sets=8)}]}


def test_links_land_on_the_section_the_instance_with_the_tenant_and_the_az_command() -> None:
    rec = record(State.FAILED, code="provisioning-failed", action="replace-failed-instances", instance_ids=["2", "5"])
    item = item_view(Change(rec, "", None), portal_url="https://portal.azure.com", tenant_id=TENANT)
    assert item.links.doc_url == (
        "https://learn.microsoft.com/troubleshoot/azure/virtual-machine-scale-sets/restart-stop/instances-not-repaired"
        "#instance-is-marked-unhealthy-due-to-provisioning-failure"
    )
    assert item.links.doc_label.startswith("Cause 3: ")
    assert item.links.portal_url == f"https://portal.azure.com/#@{TENANT}/resource{scale_set()}/virtualMachines/2"
    assert item.links.portal_label == "Instance 2 in the Azure portal"
    assert item.links.az_command == "az vmss get-instance-view -g rg-web -n vmss-web --instance-id 2"


@pytest.mark.parametrize(
    ("code", "instances", "url_end", "portal_end", "command"),
    [
        ("repairs-disabled", [], "#automatic-repairs-policy-isnt-correctly-enabled-in-the-scale-set", "/vmss-web",
         "az vmss get-instance-view -g rg-web -n vmss-web --query orchestrationServices"),
        ("health-monitoring-misconfigured", [], "#health-monitoring-isnt-correctly-configured-in-the-scale-set",
         "/vmss-web", 'az vmss get-instance-view -g rg-web -n vmss-web --instance-id "*"'),
        ("grace-period", ["3"], "#instance-is-in-its-grace-period", "/vmss-web/virtualMachines/3",
         "az vmss get-instance-view -g rg-web -n vmss-web --instance-id 3"),
        ("resilient-create-disabled", [], "resilient-vm-create-delete#resilient-create", "/vmss-web",
         "az vmss show -g rg-web -n vmss-web --query resiliencyPolicy"),
        # Flexible: the instance is a VM of its own, named
        ("delete-failed", ["web-flex_ab12cd34"], "resilient-vm-create-delete#get-status",
         "/resourceGroups/rg-web/providers/Microsoft.Compute/virtualMachines/web-flex_ab12cd34",
         "az vm get-instance-view -g rg-web -n web-flex_ab12cd34"),
    ],
)  # fmt: skip
def test_every_finding_links_its_own_section(code, instances, url_end, portal_end, command) -> None:
    rec = record(State.HELD, code=code, action="none", instance_ids=instances)
    links = item_view(Change(rec, "", None), portal_url="https://portal.azure.com/").links
    assert links.doc_url.startswith("https://learn.microsoft.com/") and links.doc_url.endswith(url_end)
    assert links.portal_url.startswith(f"https://portal.azure.com/#resource/subscriptions/{SUB}/")
    assert links.portal_url.endswith(portal_end)
    assert links.az_command == command


def test_email_has_the_same_content_as_the_card_and_no_external_resources() -> None:
    msg = message(change(State.SUCCEEDED), change(State.FAILED, name="vmss-api", last_error="boom"))
    subject, html, text = render_email(msg)
    assert subject == "[vmss-autoheal] FAILED: 2 scale sets: 1 failed, 1 done"
    for item in msg.items:
        assert item.line in text and item.links.az_command in text
        for title, value in item.facts:
            assert f">{title}<" in html and value in text
    assert "payload p-0123456789" in html and "correlation corr-42" in text
    assert html.index("vmss-api") < html.index("vmss-web")  # worst first
    # renders offline in Outlook, Gmail and Apple Mail: inline styles, nothing to fetch, no script
    for banned in ("<img", "<link", "<script", "<style", "src=", "url(", "@import", "<iframe"):
        assert banned not in html.lower(), banned
    links = re.findall(r'href="([^"]+)"', html)
    assert links and all(u.startswith("https://") for u in links)


def test_a_large_observe_email_stays_small() -> None:
    """The issue measured a 54 KB e-mail for one observe sweep (8 changes)."""
    changes = [
        change(State.PLANNED, name=f"vmss-{n}", mode="observe", action="replace-failed-instances", instance_ids=["1"])
        for n in range(8)
    ]
    _, html, text = render_email(message(*changes))
    assert len(html.encode()) < 24_000 and len(text.encode()) < 12_000  # less than half of it


def test_html_escapes_what_came_from_azure() -> None:
    hostile = change(State.FAILED, last_error="<script>alert(1)</script>")
    _, html, _ = render_email(message(hostile))
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_once_an_instance_is_replaced_the_link_shows_the_scale_set() -> None:
    """The failed instance is gone after a replacement: its portal page would be a 'not found'."""
    rec = record(State.SUCCEEDED, code="provisioning-failed", action="replace-failed-instances", instance_ids=["2"])
    links = item_view(Change(rec, "", None), portal_url="https://portal.azure.com", tenant_id=TENANT).links
    assert links.portal_url == f"https://portal.azure.com/#@{TENANT}/resource{scale_set()}"
    assert links.portal_label == "Scale set in the Azure portal"


def test_a_huge_email_stays_below_gmails_clipping_size_and_keeps_every_summary_line() -> None:
    from autoheal.notify.email import MAX_HTML_BYTES

    long = "z" * 300
    changes = [change(State.FAILED, name=f"vmss-{n:02d}", last_error=long, summary=long) for n in range(50)]
    msg = message(*changes)
    _, html, _ = render_email(msg)
    assert len(html.encode()) <= MAX_HTML_BYTES < 102_000
    assert all(f"<b>vmss-{n:02d}</b>" in html for n in range(50))  # every scale set keeps its line
    assert "Details of the first " in html
