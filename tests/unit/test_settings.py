"""Every app setting is validated at start-up with one clear message naming each bad setting."""

from __future__ import annotations

from datetime import timedelta

import pytest

from autoheal.settings import ACTION_CODES, SETTINGS, Settings, SettingsError, default_settings, load_settings


def test_defaults_are_safe():
    s = default_settings()
    assert s.mode == "observe" and not s.remediate
    assert s.allowed_actions == ACTION_CODES
    assert s.opt_out_tag == ("autoheal", "off") and s.opt_in_tag is None
    assert s.storm_threshold_percent == 50 and s.max_disruption_percent == 10
    assert s.cooldown == timedelta(minutes=10) and s.backoff_base == timedelta(minutes=10)
    assert s.max_attempts == 5 and s.sweep_schedule == "0 */15 * * * *"


def test_every_setting_has_a_field_and_a_unique_name():
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    assert {s.attr for s in SETTINGS} == set(Settings.__dataclass_fields__)


@pytest.mark.parametrize(
    ("name", "raw", "attr", "value"),
    [
        ("AUTOHEAL_MODE", "Remediate", "mode", "remediate"),
        (
            "AUTOHEAL_ALLOWED_ACTIONS",
            "retry-delete, repair-instances",
            "allowed_actions",
            ("retry-delete", "repair-instances"),
        ),
        ("AUTOHEAL_OPT_IN_TAG", "autoheal", "opt_in_tag", ("autoheal", "")),
        ("AUTOHEAL_OPT_OUT_TAG", "", "opt_out_tag", None),
        ("AUTOHEAL_GRACE_MARGIN", "PT1H", "grace_margin", timedelta(hours=1)),
        ("AUTOHEAL_TARGET_GRACE_PERIOD", "PT45M", "target_grace_period", timedelta(minutes=45)),
        ("AUTOHEAL_EMAIL_RECIPIENTS", "a@x.com; b@y.org", "email_recipients", ("a@x.com", "b@y.org")),
        ("AUTOHEAL_SMTP_STARTTLS", "no", "smtp_starttls", False),
        ("AUTOHEAL_SWEEP_SCHEDULE", "0  */5 * * * *", "sweep_schedule", "0 */5 * * * *"),
        (
            "AZURE_SUBSCRIPTION_ID",
            "6F1D3C2A-8B4E-4D7F-9A0C-1E2F3A4B5C6D",
            "subscription_id",
            "6F1D3C2A-8B4E-4D7F-9A0C-1E2F3A4B5C6D",
        ),
    ],
)
def test_values_are_parsed(name, raw, attr, value):
    assert getattr(load_settings({name: raw}), attr) == value


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("AUTOHEAL_MODE", "yolo", "expected observe or remediate"),
        ("AUTOHEAL_ALLOWED_ACTIONS", "reboot-everything", "unknown action code(s) reboot-everything"),
        ("AUTOHEAL_STORM_THRESHOLD_PERCENT", "0", "expected an integer 1-100"),
        ("AUTOHEAL_REPAIR_GRACE_PERIOD", "PT5M", "too short"),
        ("AUTOHEAL_TARGET_GRACE_PERIOD", "PT2H", "too long"),
        ("AUTOHEAL_COOLDOWN", "P1M", "years and months are not accepted"),
        ("AUTOHEAL_SWEEP_SCHEDULE", "*/15 * * * *", "needs six fields"),
        ("AUTOHEAL_ARM_ENDPOINT", "http://management.azure.com", "must be an https:// URL"),
        ("AUTOHEAL_ARM_CA_BUNDLE", "/nonexistent/ca.pem", "no such file"),
        ("AUTOHEAL_EMAIL_RECIPIENTS", "ops", "not an e-mail address"),
        ("AUTOHEAL_LEDGER_TABLE", "ledger-table", "not a valid table name"),
        ("AZURE_CLIENT_ID", "not-a-guid", "expected a GUID"),
    ],
)
def test_bad_values_name_the_setting_and_what_it_accepts(name, raw, expected):
    with pytest.raises(SettingsError) as caught:
        load_settings({name: raw})
    message = str(caught.value)
    assert f"{name}='{raw}' is invalid" in message
    assert expected in message


def test_all_bad_settings_are_reported_at_once():
    with pytest.raises(SettingsError) as caught:
        load_settings({"AUTOHEAL_MODE": "x", "AUTOHEAL_MAX_ATTEMPTS": "99"})
    assert "AUTOHEAL_MODE" in str(caught.value) and "AUTOHEAL_MAX_ATTEMPTS" in str(caught.value)


def test_secrets_never_appear_in_errors_or_reprs():
    secret = "http://prod.westeurope.logic.azure.com/workflows/1?sig=SECRET-SIGNATURE"
    with pytest.raises(SettingsError) as caught:
        load_settings({"AUTOHEAL_TEAMS_WEBHOOK_URL": secret})
    assert "SECRET-SIGNATURE" not in str(caught.value)
    assert "(secret value hidden)" in str(caught.value)
    good = load_settings(
        {"AUTOHEAL_TEAMS_WEBHOOK_URL": secret.replace("http:", "https:"), "AUTOHEAL_SMTP_PASSWORD": "hunter2"}
    )
    assert "SECRET-SIGNATURE" not in repr(good) and "hunter2" not in repr(good)
