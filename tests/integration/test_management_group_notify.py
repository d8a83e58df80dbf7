"""Notifications in a management-group scope (issue 22): one digest across the scope naming each subscription
(the CLI's sweep), or per-subscription routes (AUTOHEAL_NOTIFY_ROUTES) to a subscription's own Teams webhook.
Teams is the local webhook stand-in (sinks/teams.py) over HTTPS."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from autoheal.runtime import Runtime
from autoheal.scope import ScopeRuntimes
from autoheal.settings import Route, Scope, default_settings
from emulator import Emulator
from sinks import LocalTLS, TeamsWebhookSink
from tests.integration.test_management_group import IN_SCOPE, MG, SUB_A, fleet


@pytest.fixture(scope="module")
def tls() -> Iterator[LocalTLS]:
    with LocalTLS() as local:
        yield local


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator.start(fleet()) as instance:
        yield instance


def _settings(emu: Emulator, default_hook: TeamsWebhookSink, **changes):
    return default_settings(
        mode="observe",
        subscription_id="",
        scope=Scope("management-group", MG),
        arm_endpoint=emu.endpoint,
        arm_ca_bundle=emu.ca_bundle,
        compute_read_share=100,
        teams_webhook_url=default_hook.url,
        teams_min_severity="info",
        **changes,
    )


def _sweep_all(scopes: ScopeRuntimes) -> None:
    for sub in scopes.subscriptions():
        scopes.runtime_for(sub.subscription_id, sub.name).engine().sweep()


def _card_text(sink: TeamsWebhookSink) -> str:
    return json.dumps(sink.cards)


def test_one_digest_across_the_scope_names_every_subscription(emu, ledger, tls):
    with TeamsWebhookSink(tls) as hook:
        parent = Runtime(_settings(emu, hook), ledger=ledger)
        scopes = ScopeRuntimes(parent, digest_across_scope=True, notifier_options={"ca_bundle": tls.ca_file})
        try:
            _sweep_all(scopes)
            assert hook.messages == []  # nothing sent per subscription
            delivered = scopes.flush(trigger="sweep", correlation_id=uuid.uuid4().hex)
        finally:
            scopes.close()
        assert delivered > 0 and len(hook.messages) == 1
        text = _card_text(hook)
        for name, sub in zip(("landing-a", "landing-b", "landing-c"), IN_SCOPE, strict=True):
            assert f"{name} ({sub})" in text
        assert "sandbox" not in text
        # what was delivered is recorded, so the next digest does not repeat it
        assert all(r.notified_at is not None for r in ledger.all_records() if r.scale_set_id.split("/")[2] in IN_SCOPE)


def test_a_routed_subscription_goes_to_its_own_channel_only(emu, ledger, tls):
    with TeamsWebhookSink(tls) as default_hook, TeamsWebhookSink(tls) as team_a:
        settings = _settings(emu, default_hook, notify_routes=(Route(SUB_A, (team_a.url,), ()),))
        parent = Runtime(settings, ledger=ledger)
        scopes = ScopeRuntimes(parent, notifier_options={"ca_bundle": tls.ca_file})
        try:
            _sweep_all(scopes)
        finally:
            scopes.close()
        routed, rest = _card_text(team_a), _card_text(default_hook)
        assert "landing-a" in routed and "landing-b" not in routed and "landing-c" not in routed
        assert "landing-a" not in rest and "landing-b" in rest and "landing-c" in rest
        assert len(default_hook.messages) == 2  # one digest per subscription slice, each naming its subscription
