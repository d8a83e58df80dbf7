"""AUTOHEAL_SCOPE, AUTOHEAL_EXCLUDE_SUBSCRIPTIONS, AUTOHEAL_NOTIFY_ROUTES, AUTOHEAL_SWEEP_QUEUE (issue 22)."""

from __future__ import annotations

import pytest

from autoheal.settings import Scope, SettingsError, load_settings

SUB = "6f1d3c2a-8b4e-4d7f-9a0c-1e2f3a4b5c6d"
OTHER = "11111111-1111-4111-8111-111111111111"


@pytest.mark.parametrize(
    "raw, scope",
    [
        ("", Scope("subscription")),
        (f"/subscriptions/{SUB}", Scope("subscription", SUB)),
        (SUB.upper(), Scope("subscription", SUB)),
        ("/providers/Microsoft.Management/managementGroups/mg-platform", Scope("management-group", "mg-platform")),
        (
            "/providers/microsoft.management/managementgroups/Landing.Zones(1)/",
            Scope("management-group", "Landing.Zones(1)"),
        ),
        ("mg:corp_prod", Scope("management-group", "corp_prod")),
        ("managementGroup:corp", Scope("management-group", "corp")),
    ],
)
def test_scope_forms(raw, scope):
    assert load_settings({"AUTOHEAL_SCOPE": raw}).scope == scope


@pytest.mark.parametrize(
    "raw, words",
    [
        ("/subscriptions/not-a-guid", "not a subscription GUID"),
        ("mg:", "not a management group name"),
        ("mg:ends-with.", "not a management group name"),
        ("mg:" + "x" * 91, "not a management group name"),
        ("/providers/Microsoft.Management/managementGroups/a/b", "not a subscription or management group scope"),
        ("tenant:x", "not a subscription or management group scope"),
    ],
)
def test_an_invalid_scope_is_one_clear_line(raw, words):
    with pytest.raises(SettingsError) as caught:
        load_settings({"AUTOHEAL_SCOPE": raw})
    message = str(caught.value)
    assert "AUTOHEAL_SCOPE=" in message and words in message and "\n" not in message


def test_a_subscription_scope_fills_and_must_agree_with_azure_subscription_id():
    assert load_settings({"AUTOHEAL_SCOPE": f"/subscriptions/{SUB}"}).subscription_id == SUB
    with pytest.raises(SettingsError, match="disagree"):
        load_settings({"AUTOHEAL_SCOPE": f"/subscriptions/{SUB}", "AZURE_SUBSCRIPTION_ID": OTHER})


def test_management_group_property_and_exclusions():
    settings = load_settings(
        {"AUTOHEAL_SCOPE": "mg:platform", "AUTOHEAL_EXCLUDE_SUBSCRIPTIONS": f"{OTHER}, /subscriptions/{SUB}"}
    )
    assert settings.management_group == "platform"
    assert settings.exclude_subscriptions == (OTHER, SUB)
    assert load_settings({}).management_group == ""
    with pytest.raises(SettingsError, match="AUTOHEAL_EXCLUDE_SUBSCRIPTIONS"):
        load_settings({"AUTOHEAL_EXCLUDE_SUBSCRIPTIONS": "prod"})


def test_routes_parse_and_a_bad_route_only_turns_routing_off():
    routes = load_settings(
        {"AUTOHEAL_NOTIFY_ROUTES": f"{SUB}=https://teams.example/hook,ops@example.com; {OTHER}=b@example.com"}
    ).notify_routes
    assert [(r.subscription_id, r.teams_webhook_urls, r.email_recipients) for r in routes] == [
        (SUB, ("https://teams.example/hook",), ("ops@example.com",)),
        (OTHER, (), ("b@example.com",)),
    ]
    bad = load_settings({"AUTOHEAL_NOTIFY_ROUTES": f"{SUB}=http://plain.example"})
    assert bad.notify_routes == ()
    assert any("AUTOHEAL_NOTIFY_ROUTES" in p and "secret value hidden" in p for p in bad.problems)


@pytest.mark.parametrize("raw", ["ab", "Upper-case", "double--hyphen", "-start", "x" * 64])
def test_queue_names_follow_storage_rules(raw):
    with pytest.raises(SettingsError, match="AUTOHEAL_SWEEP_QUEUE"):
        load_settings({"AUTOHEAL_SWEEP_QUEUE": raw})
