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
    assert {s.attr for s in SETTINGS} == set(Settings.__dataclass_fields__) - {"problems"}


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
        ("AUTOHEAL_ACTIVITY_LOG_LOOKBACK", "P30D", "activity_log_lookback", timedelta(days=30)),
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
        ("AUTOHEAL_ACTIVITY_LOG_LOOKBACK", "P91D", "too long"),  # Azure keeps the Activity Log 90 days
        ("AUTOHEAL_ACTIVITY_LOG_LOOKBACK", "PT12H", "too short"),
        ("AUTOHEAL_COOLDOWN", "P1M", "years and months are not accepted"),
        ("AUTOHEAL_SWEEP_SCHEDULE", "*/15 * * * *", "needs six fields"),
        ("AUTOHEAL_ARM_ENDPOINT", "http://management.azure.com", "must be an https:// URL"),
        ("AUTOHEAL_ARM_CA_BUNDLE", "/nonexistent/ca.pem", "no such file"),
        ("AUTOHEAL_SWEEP_SCHEDULE", "0 */99 * * * *", "minute step '99' is outside 1-59"),
        ("AUTOHEAL_SWEEP_SCHEDULE", "0 0 25 * * *", "hour '25' is outside 0-23"),
        ("AUTOHEAL_SWEEP_SCHEDULE", "0 0 0 0 * *", "day '0' is outside 1-31"),
        ("AUTOHEAL_SWEEP_SCHEDULE", "0 0 0 * 13 *", "month '13' is outside 1-12"),
        ("AUTOHEAL_SWEEP_SCHEDULE", "0 0 0 * * 8", "day-of-week '8' is outside 0-6"),
        ("AUTOHEAL_SWEEP_SCHEDULE", "0 30-10 * * * *", "runs backwards"),
        ("AUTOHEAL_MODE", "@Microsoft.KeyVault(SecretUri=https://kv/secrets/x)", "unresolved Key Vault reference"),
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
    problems = load_settings({"AUTOHEAL_TEAMS_WEBHOOK_URL": secret}).problems
    assert "SECRET-SIGNATURE" not in str(problems)
    assert "(secret value hidden)" in str(problems)
    with pytest.raises(SettingsError) as caught:
        load_settings({"AzureWebJobsStorage": "AccountKey=SECRET-KEY"})
    assert "SECRET-KEY" not in str(caught.value) and "(secret value hidden)" in str(caught.value)
    good = load_settings(
        {"AUTOHEAL_TEAMS_WEBHOOK_URL": secret.replace("http:", "https:"), "AUTOHEAL_SMTP_PASSWORD": "hunter2"}
    )
    assert "SECRET-SIGNATURE" not in repr(good) and "hunter2" not in repr(good)


@pytest.mark.parametrize(
    ("schedule"),
    ["0 */15 * * * *", "0 0 2 * * MON-FRI", "*/30 5,35 1-3/2 1 JAN,jul 0", "0 0 0 31 12 6"],
)
def test_valid_schedules(schedule):
    assert load_settings({"AUTOHEAL_SWEEP_SCHEDULE": schedule}).sweep_schedule == schedule


KEY_VAULT = "@Microsoft.KeyVault(SecretUri=https://kv-autoheal.vault.azure.net/secrets/teams-webhook-url/)"


@pytest.mark.parametrize(
    ("env", "off"),
    [
        ({"AUTOHEAL_TEAMS_WEBHOOK_URL": KEY_VAULT}, {"teams_webhook_url": ""}),
        (
            {"AUTOHEAL_TEAMS_WEBHOOK_URL": "https://example.logic.azure.com/x", "AUTOHEAL_TEAMS_MIN_SEVERITY": "loud"},
            {"teams_webhook_url": ""},
        ),
        (
            {"AUTOHEAL_EMAIL_ENDPOINT": "https://acs.example", "AUTOHEAL_EMAIL_RECIPIENTS": "ops"},
            {"email_endpoint": "", "smtp_host": ""},
        ),
        ({"AUTOHEAL_SMTP_HOST": "smtp.example", "AUTOHEAL_SMTP_PASSWORD": KEY_VAULT}, {"smtp_host": ""}),
    ],
)
def test_a_bad_notification_setting_turns_its_channel_off_and_nothing_else(env, off, caplog):
    """Issue 13 item 5: an unresolved Key Vault reference for a notification secret stopped the whole app."""
    settings = load_settings({**env, "AUTOHEAL_MODE": "remediate"})
    assert settings.mode == "remediate"
    for attr, value in off.items():
        assert getattr(settings, attr) == value
    assert settings.problems and all("notifications are off" in p for p in settings.problems)
    errors = [r for r in caplog.records if r.levelname == "ERROR" and r.name == "autoheal.settings"]
    assert len(errors) == len(settings.problems)
    assert "sig=" not in " ".join(settings.problems)


def test_a_bad_general_notification_setting_falls_back_to_its_default():
    settings = load_settings({"AUTOHEAL_NOTIFY_STYLE": "shouty", "AUTOHEAL_TEAMS_WEBHOOK_URL": "https://x.example/w"})
    assert settings.notify_style == "digest" and settings.teams_webhook_url == "https://x.example/w"
    assert settings.problems == (
        "AUTOHEAL_NOTIFY_STYLE='shouty' is invalid: expected digest or each; using the default 'digest'",
    )


def test_safety_settings_still_stop_start_up_next_to_a_bad_channel():
    with pytest.raises(SettingsError, match="AUTOHEAL_MAX_DISRUPTION_PERCENT") as caught:
        load_settings({"AUTOHEAL_MAX_DISRUPTION_PERCENT": "500", "AUTOHEAL_TEAMS_WEBHOOK_URL": KEY_VAULT})
    assert "TEAMS" not in str(caught.value)


def test_unknown_autoheal_names_warn_with_the_closest_known_one(caplog):
    settings = load_settings({"AUTOHEAL_OPTIN_TAG": "autoheal=on", "AUTOHEAL_ENABLE_EMAIL": "true"})
    assert settings.problems == ("unknown setting AUTOHEAL_OPTIN_TAG is ignored; did you mean AUTOHEAL_OPT_IN_TAG?",)
    assert any(r.levelname == "WARNING" and "AUTOHEAL_OPT_IN_TAG?" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        ("UseDevelopmentStorage=true", True),
        ("DefaultEndpointsProtocol=https;AccountName=st1;AccountKey=a2V5;EndpointSuffix=core.windows.net", True),
        ("TableEndpoint=https://st1.table.core.windows.net/;SharedAccessSignature=sv=x", True),
        ("nonsense", False),
        ("AccountKey=only", False),
    ],
)
def test_storage_connection_is_checked_at_start_up(raw, ok):
    """Issue 13 item 6: `AzureWebJobsStorage=nonsense` passed start-up, then the first sweep died."""
    if ok:
        assert load_settings({"AzureWebJobsStorage": raw}).storage_connection_string == raw
    else:
        with pytest.raises(SettingsError, match=r"AzureWebJobsStorage=\(secret value hidden\) is invalid"):
            load_settings({"AzureWebJobsStorage": raw})


def test_every_setting_belongs_to_a_group_and_notification_settings_to_a_channel():
    from autoheal.settings import GROUPS

    keys = [g.key for g in GROUPS]
    assert keys == ["arm", "diagnosis", "guardrails", "ledger", "triggers", "notifications"]
    assert all(s.group in keys for s in SETTINGS)
    for s in SETTINGS:
        assert bool(s.channel) == (s.group == "notifications"), s.name
    safety = {"AUTOHEAL_MODE", "AUTOHEAL_ALLOWED_ACTIONS", "AUTOHEAL_OPT_IN_TAG", "AUTOHEAL_MAX_ACTIONS_PER_SWEEP"}
    assert all(not next(s for s in SETTINGS if s.name == n).channel for n in safety)
