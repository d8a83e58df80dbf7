"""Every app setting the code reads: name, default, meaning, validation.

`load_settings()` validates all of them at start-up and fails with one message naming each bad setting
and what it accepts. `SETTINGS` is the single table the README and the Bicep consistency check read.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any

import isodate

from .model import ActionCode


class SettingsError(ValueError):
    """One or more app settings are invalid; the message names each one and what it accepts."""


@dataclass(frozen=True)
class Setting:
    """One app setting, declared once: its name, the `Settings` attribute, default, validator and docs.

    `channel` (derived from the name when not given): teams | email | notify for notification settings,
    whose invalid values disable that channel (or fall back to the default) instead of stopping start-up.
    """

    name: str
    attr: str
    default: str
    parse: Callable[[str], Any]
    meaning: str
    accepts: str
    secret: bool = False  # never logged; a Key Vault reference in Azure
    group: str = ""  # arm | diagnosis | guardrails | ledger | triggers | notifications (from the Group above it)
    channel: str = ""

    def __post_init__(self) -> None:
        if not self.channel:
            derived = next((c for prefix, c in _CHANNEL_PREFIXES if self.name.startswith(prefix)), "")
            object.__setattr__(self, "channel", derived)


@dataclass(frozen=True)
class Group:
    key: str
    title: str


_CHANNEL_PREFIXES = (
    ("AUTOHEAL_TEAMS_", "teams"),
    ("AUTOHEAL_EMAIL_", "email"),
    ("AUTOHEAL_SMTP_", "email"),
    ("AUTOHEAL_NOTIFY_", "notify"),
    ("AUTOHEAL_PORTAL_URL", "notify"),
)
# What turning a channel off means: these attributes get these values (the Notifier then builds no channel).
CHANNEL_OFF: dict[str, dict[str, Any]] = {
    "teams": {"teams_webhook_url": ""},
    "email": {"email_endpoint": "", "smtp_host": ""},
    "events": {"events_endpoint": ""},
}
KEY_VAULT_REFERENCE_PREFIX = "@Microsoft.KeyVault("
# AUTOHEAL_* names that are azd environment variables for `azd provision` (infra/main.parameters.json),
# not app settings: no "unknown setting" warning for them.
DEPLOYMENT_ONLY = (
    "AUTOHEAL_READ_ONLY_ROLE",
    "AUTOHEAL_DEPLOY_EVENT_SUBSCRIPTIONS",
    "AUTOHEAL_EXISTING_RESOURCES_TOPIC_NAME",
    "AUTOHEAL_EXISTING_RESOURCES_TOPIC_RESOURCE_GROUP",
    "AUTOHEAL_EXISTING_RESOURCES_TOPIC_PRINCIPAL_ID",
    "AUTOHEAL_EXISTING_HEALTH_TOPIC_NAME",
    "AUTOHEAL_EXISTING_HEALTH_TOPIC_RESOURCE_GROUP",
    "AUTOHEAL_EXISTING_HEALTH_TOPIC_PRINCIPAL_ID",
    "AUTOHEAL_ENABLE_HEALTH_EVENTS",
    "AUTOHEAL_ENABLE_OUTCOME_EVENTS",
    "AUTOHEAL_ENABLE_EMAIL",
    "AUTOHEAL_TEAMS_WEBHOOK_IN_KEY_VAULT",
    "AUTOHEAL_ALERT_EMAIL",
)


def _duration(low: timedelta | None = None, high: timedelta | None = None) -> Callable[[str], timedelta]:
    def parse(raw: str) -> timedelta:
        value = isodate.parse_duration(raw.strip())
        if not isinstance(value, timedelta):
            raise ValueError("years and months are not accepted")
        if low is not None and value < low:
            raise ValueError("too short")
        if high is not None and value > high:
            raise ValueError("too long")
        return value

    return parse


def _optional_duration(low: timedelta | None = None, high: timedelta | None = None) -> Callable[[str], Any]:
    inner = _duration(low, high)
    return lambda raw: inner(raw) if raw.strip() else None


def _int(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw.strip())
        if not low <= value <= high:
            raise ValueError("out of range")
        return value

    return parse


def _choice(*options: str) -> Callable[[str], str]:
    lookup = {o.lower(): o for o in options}

    def parse(raw: str) -> str:
        return lookup[raw.strip().lower()]

    return parse


def _optional_choice(*options: str) -> Callable[[str], str | None]:
    inner = _choice(*options)
    return lambda raw: inner(raw) if raw.strip() else None


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"true", "1", "yes", "on"}:
        return True
    if lowered in {"false", "0", "no", "off"}:
        return False
    raise ValueError("not a boolean")


def _text(raw: str) -> str:
    return raw.strip()


def _existing_file(raw: str) -> str:
    text = raw.strip()
    if text and not os.path.isfile(text):
        raise ValueError("no such file")
    return text


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _tag(raw: str) -> tuple[str, str] | None:
    """`name=value` (or just `name`, meaning any value)."""
    text = raw.strip()
    if not text:
        return None
    name, sep, value = text.partition("=")
    if not name.strip():
        raise ValueError("empty tag name")
    return (name.strip(), value.strip() if sep else "")


def _https_url(raw: str) -> str:
    text = raw.strip().rstrip("/")
    if not text.lower().startswith("https://"):
        raise ValueError("must be an https:// URL")
    return text


def _table_name(raw: str) -> str:
    text = raw.strip()
    if not (3 <= len(text) <= 63 and text.isalnum() and text[0].isalpha() and text.isascii()):
        raise ValueError("not a valid table name")
    return text


# A management group's id (its name in ARM paths): "up to 90 characters: letters, digits, hyphens, underscores,
# periods and parentheses", not ending in a period (learn.microsoft.com/azure/governance/management-groups/
# create-management-group-portal, "Management group ID"; the Bicep resource's name pattern says the same).
_MG_NAME = re.compile(r"^[A-Za-z0-9_\-.()]{1,90}$")
_MG_PATH = re.compile(r"^/providers/microsoft\.management/managementgroups/([^/]+)$", re.IGNORECASE)
_SUB_PATH = re.compile(r"^/subscriptions/([^/]+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Scope:
    """What one deployment watches: a subscription (the default: AZURE_SUBSCRIPTION_ID) or a management group."""

    kind: str  # "subscription" | "management-group"
    name: str = ""  # the subscription GUID, or the management group's name; "" = AZURE_SUBSCRIPTION_ID

    @property
    def management_group(self) -> str:
        return self.name if self.kind == "management-group" else ""

    def describe(self) -> str:
        if self.kind == "management-group":
            return f"/providers/Microsoft.Management/managementGroups/{self.name}"
        return f"/subscriptions/{self.name}" if self.name else "the subscription AZURE_SUBSCRIPTION_ID"


def _management_group_name(text: str) -> str:
    if not _MG_NAME.match(text) or text.endswith("."):
        raise ValueError(f"{text!r} is not a management group name (1-90 letters, digits, - _ . ( ), no final .)")
    return text


def _scope(raw: str) -> Scope:
    """`` (AZURE_SUBSCRIPTION_ID), `/subscriptions/GUID`, a GUID, `/providers/Microsoft.Management/
    managementGroups/NAME`, or `mg:NAME` / `managementGroup:NAME` (the plain form)."""
    import uuid

    text = raw.strip().rstrip("/")
    if not text:
        return Scope("subscription")
    sub = _SUB_PATH.match(text)
    if sub or not ("/" in text or ":" in text):
        guid = sub.group(1) if sub else text
        try:
            return Scope("subscription", str(uuid.UUID(guid)))
        except ValueError:
            raise ValueError(f"{guid!r} is not a subscription GUID") from None
    group = _MG_PATH.match(text)
    if group:
        return Scope("management-group", _management_group_name(group.group(1)))
    prefix, sep, name = text.partition(":")
    if sep and prefix.strip().lower() in {"mg", "managementgroup", "management-group"}:
        return Scope("management-group", _management_group_name(name.strip()))
    raise ValueError("not a subscription or management group scope")


def _guids(raw: str) -> tuple[str, ...]:
    import uuid

    items = _csv(raw.replace(";", ","))
    bad = []
    out = []
    for item in items:
        try:
            out.append(str(uuid.UUID(item.rsplit("/", 1)[-1])))
        except ValueError:
            bad.append(item)
    if bad:
        raise ValueError(f"not a subscription GUID: {', '.join(bad)}")
    return tuple(out)


@dataclass(frozen=True)
class Route:
    """Where one subscription's notifications go instead of the default digest: Teams webhooks and e-mails."""

    subscription_id: str
    teams_webhook_urls: tuple[str, ...] = ()
    email_recipients: tuple[str, ...] = ()


def _routes(raw: str) -> tuple[Route, ...]:
    """`SUBSCRIPTION=TARGET[,TARGET...];SUBSCRIPTION=...`, each TARGET an https:// Teams webhook or an e-mail."""
    import uuid

    routes: dict[str, Route] = {}
    for entry in (part.strip() for part in raw.split(";") if part.strip()):
        sub, sep, targets = entry.partition("=")
        if not sep:
            raise ValueError("each route is SUBSCRIPTION=TARGET[,TARGET]")
        try:
            key = str(uuid.UUID(sub.strip()))
        except ValueError:
            raise ValueError("a route starts with a subscription GUID") from None
        teams: list[str] = []
        emails: list[str] = []
        for target in _csv(targets):
            if target.lower().startswith("https://"):
                teams.append(_https_url(target))
            elif "@" in target and not target.startswith("@") and not target.endswith("@"):
                emails.append(target)
            else:
                raise ValueError("a route target is an https:// Teams webhook or an e-mail address")
        if not teams and not emails:
            raise ValueError("a route names at least one target")
        if len(teams) > 1:
            raise ValueError("a route names at most one Teams webhook")
        if key in routes:
            raise ValueError("a subscription is routed twice")
        routes[key] = Route(key, tuple(teams), tuple(emails))
    return tuple(routes.values())


def _queue_name(raw: str) -> str:
    """Storage queue names: 3-63 lower-case letters, digits and single hyphens, starting and ending with a letter
    or digit (learn.microsoft.com/rest/api/storageservices/naming-queues-and-metadata)."""
    text = raw.strip()
    if not re.fullmatch(r"[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]", text):
        raise ValueError("not a queue name (3-63 lower-case letters, digits, single hyphens)")
    return text


def _uuid_or_empty(raw: str) -> str:
    import uuid

    text = raw.strip()
    if text:
        uuid.UUID(text)
    return text


# NCRONTAB fields (seconds first) and their ranges, as the Functions timer reads them
# (learn.microsoft.com/azure/azure-functions/functions-bindings-timer#ncrontab-expressions).
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CRON_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("second", 0, 59, {}),
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day", 1, 31, {}),
    (
        "month",
        1,
        12,
        {m: i + 1 for i, m in enumerate(_MONTHS)},
    ),
    ("day-of-week", 0, 6, {d: i for i, d in enumerate(_DAYS)}),
)


def _cron_value(text: str, low: int, high: int, names: Mapping[str, int], field_name: str) -> int:
    value = names.get(text.lower()) if not text.isdigit() else int(text)
    if value is None or not low <= value <= high:
        raise ValueError(f"{field_name} {text!r} is outside {low}-{high}")
    return value


def _ncrontab(raw: str) -> str:
    """Azure Functions timer schedule: six NCRONTAB fields (seconds first), each value and step in range."""
    text = " ".join(raw.split())
    parts = text.split(" ")
    if len(parts) != 6:
        raise ValueError("needs six fields: second minute hour day month day-of-week")
    for part, (field_name, low, high, names) in zip(parts, _CRON_FIELDS, strict=True):
        for item in part.split(","):
            base, slash, step = item.partition("/")
            if slash and (not step.isdigit() or not 1 <= int(step) <= high):
                raise ValueError(f"{field_name} step {step!r} is outside 1-{high}")
            if base == "*":
                continue
            first, dash, last = base.partition("-")
            start = _cron_value(first, low, high, names, field_name)
            if dash and _cron_value(last, low, high, names, field_name) < start:
                raise ValueError(f"{field_name} range {base!r} runs backwards")
    return text


def _storage_connection(raw: str) -> str:
    """`UseDevelopmentStorage=true` or `Key=value;...` naming an account or a table endpoint."""
    text = raw.strip()
    if not text:
        return text
    pairs = [part.partition("=") for part in text.split(";") if part.strip()]
    if any(not sep or not key.strip() for key, sep, _ in pairs):
        raise ValueError("not a storage connection string (Key=value;Key=value)")
    keys = {key.strip().lower(): value.strip() for key, _, value in pairs}
    if keys.get("usedevelopmentstorage", "").lower() == "true":
        return text
    if not (keys.get("accountname") or keys.get("tableendpoint")):
        raise ValueError("a storage connection string names AccountName or TableEndpoint")
    return text


def _emails(raw: str) -> tuple[str, ...]:
    items = tuple(part.strip() for part in raw.replace(";", ",").split(",") if part.strip())
    bad = [item for item in items if "@" not in item or item.startswith("@") or item.endswith("@")]
    if bad:
        raise ValueError(f"not an e-mail address: {', '.join(bad)}")
    return items


def _optional_email(raw: str) -> str:
    text = raw.strip()
    if text and ("@" not in text or text.startswith("@") or text.endswith("@")):
        raise ValueError("not an e-mail address")
    return text


def _optional_https_url(raw: str) -> str:
    return _https_url(raw) if raw.strip() else ""


def _severity(raw: str) -> str:
    return _choice("info", "warning", "error")(raw)


# Every remediation the tool knows (declared once, in autoheal.remediation.actions; a test keeps them equal).
ACTION_CODES = tuple(code.value for code in ActionCode if code is not ActionCode.NONE)


def _actions(raw: str) -> tuple[str, ...]:
    items = _csv(raw)
    if not items or items == ("*",):
        return ACTION_CODES
    unknown = [item for item in items if item not in ACTION_CODES]
    if unknown:
        raise ValueError(f"unknown action code(s) {', '.join(unknown)}")
    return items


_OWNER_KEYS = ("aks", "service-fabric", "service-fabric-managed", "batch", "databricks", "avd", "managed-by")


def _owners(raw: str) -> tuple[str, ...]:
    items = tuple(item.lower() for item in _csv(raw))
    unknown = [item for item in items if item not in _OWNER_KEYS]
    if unknown:
        raise ValueError(f"unknown owner(s) {', '.join(unknown)}")
    return items


_DECLARED: tuple[Setting | Group, ...] = (
    Group("arm", "Where to act: the subscription, the identity and Azure Resource Manager"),
    Setting(
        "AZURE_SUBSCRIPTION_ID",
        "subscription_id",
        "",
        _uuid_or_empty,
        "The subscription this deployment watches (one deployment per subscription).",
        "a subscription GUID",
    ),
    Setting(
        "AUTOHEAL_SCOPE",
        "scope",
        "",
        _scope,
        "What this deployment watches: empty for the subscription AZURE_SUBSCRIPTION_ID (one deployment per "
        "subscription), or a management group: every subscription under it, found through Resource Graph, each "
        "swept by its own queue message (AZURE_SUBSCRIPTION_ID is then the one the app itself lives in).",
        "empty, /subscriptions/GUID, /providers/Microsoft.Management/managementGroups/NAME or mg:NAME",
    ),
    Setting(
        "AUTOHEAL_EXCLUDE_SUBSCRIPTIONS",
        "exclude_subscriptions",
        "",
        _guids,
        "Subscriptions under the management group to leave alone: never swept, their events rejected.",
        "comma-separated subscription GUIDs, or empty",
    ),
    Setting(
        "AUTOHEAL_SWEEP_QUEUE",
        "sweep_queue",
        "autoheal-sweep",
        _queue_name,
        "Storage queue (in AzureWebJobsStorage) the timer fills with one message per subscription in a "
        "management-group scope; the queue-triggered function sweeps each (its poison queue is NAME-poison).",
        "a queue name: 3-63 lower-case letters, digits, single hyphens",
    ),
    Setting(
        "AZURE_CLIENT_ID",
        "client_id",
        "",
        _uuid_or_empty,
        "Client id of the user-assigned managed identity used for ARM, Table Storage and email.",
        "a GUID, or empty for the system identity / developer login",
    ),
    Setting(
        "AUTOHEAL_ARM_ENDPOINT",
        "arm_endpoint",
        "https://management.azure.com",
        _https_url,
        "Azure Resource Manager endpoint (a sovereign cloud, or the local emulator in demos and tests).",
        "an https:// URL",
    ),
    Setting(
        "AUTOHEAL_ARM_CA_BUNDLE",
        "arm_ca_bundle",
        "",
        _existing_file,
        "CA bundle (PEM) to trust for the ARM endpoint; only the local emulator needs it.",
        "a file path, or empty",
    ),
    Group("diagnosis", "Diagnosis thresholds, and what enabling automatic repairs writes"),
    Setting(
        "AUTOHEAL_GRACE_MARGIN",
        "grace_margin",
        "PT15M",
        _duration(timedelta(0), timedelta(hours=24)),
        "Extra time past the repairs grace period before an unhealthy instance counts as not repaired.",
        "an ISO 8601 duration from PT0S to PT24H",
    ),
    Setting(
        "AUTOHEAL_STORM_THRESHOLD_PERCENT",
        "storm_threshold_percent",
        "50",
        _int(1, 100),
        "Share of a scale set's instances unhealthy/unknown above which health monitoring is suspect and "
        "no instance action is taken (the storm brake).",
        "an integer 1-100",
    ),
    Setting(
        "AUTOHEAL_STORM_MIN_INSTANCES",
        "storm_min_instances",
        "2",
        _int(1, 1000),
        "A storm is several instances: the storm brake needs at least this many failed or unhealthy instances "
        "as well as the percentage, so a 1-instance scale set's failed instance is still replaced.",
        "an integer 1-1000",
    ),
    Setting(
        "AUTOHEAL_LOOP_WINDOW",
        "loop_window",
        "P1D",
        _duration(timedelta(hours=1), timedelta(days=7)),
        "A replacement whose new instance fails with the same error code, or a repaired instance unhealthy again, "
        "within this time is a loop: the scale set is held (replacement-loop) until a person clears it.",
        "an ISO 8601 duration from PT1H to P7D",
    ),
    Setting(
        "AUTOHEAL_PROPOSE_RESILIENCY",
        "propose_resiliency",
        "false",
        _bool,
        "Propose enabling resilient create/delete (preview features) where they are off; off: the findings are "
        "informational and grouped into one line per sweep. Never proposed for owned or empty scale sets.",
        "true or false",
    ),
    Setting(
        "AUTOHEAL_DELETE_STUCK_AFTER",
        "delete_stuck_after",
        "PT30M",
        _duration(timedelta(minutes=1), timedelta(days=7)),
        "How long an instance may sit in Deleting (or Failed after a delete) before the delete counts as stuck.",
        "an ISO 8601 duration from PT1M to P7D",
    ),
    Setting(
        "AUTOHEAL_TARGET_GRACE_PERIOD",
        "target_grace_period",
        "",
        _optional_duration(timedelta(minutes=10), timedelta(minutes=90)),
        "If set, the repairs grace period scale sets should have; a different one yields an action that sets it.",
        "empty, or an ISO 8601 duration from PT10M to PT90M",
    ),
    Setting(
        "AUTOHEAL_REPAIR_GRACE_PERIOD",
        "repair_grace_period",
        "PT30M",
        _duration(timedelta(minutes=10), timedelta(minutes=90)),
        "gracePeriod written when automatic repairs are enabled.",
        "an ISO 8601 duration from PT10M to PT90M",
    ),
    Setting(
        "AUTOHEAL_REPAIR_ACTION",
        "repair_action",
        "Replace",
        _choice("Replace", "Reimage", "Restart"),
        "repairAction written when automatic repairs are enabled.",
        "Replace, Reimage or Restart",
    ),
    Group("guardrails", "Guardrails: mode, scope, budgets, retries (invalid values stop start-up)"),
    Setting(
        "AUTOHEAL_MODE",
        "mode",
        "observe",
        _choice("observe", "remediate"),
        "observe: plan, record and notify but change nothing; remediate: act within the guardrails.",
        "observe or remediate",
    ),
    Setting(
        "AUTOHEAL_ALLOWED_ACTIONS",
        "allowed_actions",
        "*",
        _actions,
        "Action codes the tool may carry out (others are recorded as held).",
        f"* or a comma-separated list of: {', '.join(ACTION_CODES)}",
    ),
    Setting(
        "AUTOHEAL_OPT_OUT_TAG",
        "opt_out_tag",
        "autoheal=off",
        _tag,
        "Scale sets carrying this tag are diagnosed but never touched.",
        "name=value, a tag name, or empty",
    ),
    Setting(
        "AUTOHEAL_OPT_IN_TAG",
        "opt_in_tag",
        "",
        _tag,
        "If set, only scale sets carrying this tag are acted on.",
        "name=value, a tag name, or empty",
    ),
    Setting(
        "AUTOHEAL_INCLUDE_RESOURCE_GROUPS",
        "include_resource_groups",
        "",
        _csv,
        "If set, only scale sets in these resource groups are acted on.",
        "comma-separated resource group names, or empty",
    ),
    Setting(
        "AUTOHEAL_EXCLUDE_RESOURCE_GROUPS",
        "exclude_resource_groups",
        "",
        _csv,
        "Scale sets in these resource groups are never acted on.",
        "comma-separated resource group names, or empty",
    ),
    Setting(
        "AUTOHEAL_ALLOWED_OWNERS",
        "allowed_owners",
        "",
        _owners,
        "Scale sets another Azure service owns (AKS node pools, Service Fabric, Batch, Databricks, AVD, any "
        "managedBy) are diagnosed but never touched; list owners here to let the tool act on theirs anyway.",
        "empty, or a comma-separated list of: aks, service-fabric, service-fabric-managed, batch, databricks, avd, "
        "managed-by",
    ),
    Setting(
        "AUTOHEAL_MAX_DISRUPTION_PERCENT",
        "max_disruption_percent",
        "10",
        _int(1, 100),
        "Disruption budget: at most max(1, this % of capacity) instances of a scale set in flight at once.",
        "an integer 1-100",
    ),
    Setting(
        "AUTOHEAL_CAPACITY_FLOOR_PERCENT",
        "capacity_floor_percent",
        "50",
        _int(0, 100),
        "A replacement never takes a scale set's capacity below this % (at least 1 instance): below it, "
        "the new instance is created before the failed one is deleted.",
        "an integer 0-100",
    ),
    Setting(
        "AUTOHEAL_COOLDOWN",
        "cooldown",
        "PT10M",
        _duration(timedelta(0), timedelta(days=1)),
        "Quiet time per scale set after an action before the next instance action on it.",
        "an ISO 8601 duration from PT0S to P1D",
    ),
    Setting(
        "AUTOHEAL_MAX_ATTEMPTS",
        "max_attempts",
        "5",
        _int(1, 20),
        "Attempts per action target before giving up with a final error.",
        "an integer 1-20",
    ),
    Setting(
        "AUTOHEAL_BACKOFF_BASE",
        "backoff_base",
        "PT10M",
        _duration(timedelta(0), timedelta(days=1)),
        "Retry k of an action waits base x 2^(k-1) (the platform's resilient delete waits 10 minutes).",
        "an ISO 8601 duration from PT0S to P1D",
    ),
    Setting(
        "AUTOHEAL_MAX_ACTIONS_PER_SWEEP",
        "max_actions_per_sweep",
        "10",
        _int(0, 1000),
        "Cap on actions carried out per sweep across the subscription.",
        "an integer 0-1000",
    ),
    Setting(
        "AUTOHEAL_MAX_RESUMES_PER_DAY",
        "max_resumes_per_day",
        "2",
        _int(0, 24),
        "Resumes of suspended automatic repairs per scale set per 24 hours.",
        "an integer 0-24",
    ),
    Setting(
        "AUTOHEAL_ACTIVITY_LOG_LOOKBACK",
        "activity_log_lookback",
        "P90D",
        _duration(timedelta(days=1), timedelta(days=90)),
        "How far back the Activity Log is read to learn who suspended automatic repairs (Azure keeps 90 days); "
        "a suspension older than this whose author is not in the log is held for a person, never resumed.",
        "an ISO 8601 duration from P1D to P90D",
    ),
    Setting(
        "AUTOHEAL_ACTION_LEASE",
        "action_lease",
        "PT30M",
        _duration(timedelta(minutes=1), timedelta(hours=6)),
        "How long a worker owns an action it started; after that another run reconciles it.",
        "an ISO 8601 duration from PT1M to PT6H",
    ),
    Setting(
        "AUTOHEAL_LRO_TIMEOUT",
        "lro_timeout",
        "PT20M",
        _duration(timedelta(seconds=10), timedelta(hours=2)),
        "Longest wait for one Azure long-running operation.",
        "an ISO 8601 duration from PT10S to PT2H",
    ),
    Setting(
        "AUTOHEAL_LRO_POLL_SECONDS",
        "lro_poll_seconds",
        "15",
        _int(0, 300),
        "Polling interval for Azure long-running operations when Azure gives no Retry-After.",
        "an integer 0-300",
    ),
    Group("ledger", "Ledger (Table Storage)"),
    Setting(
        "AUTOHEAL_LEDGER_TABLE",
        "ledger_table",
        "autohealledger",
        _table_name,
        "Table of remediation records and history, in the function's storage account.",
        "3-63 letters or digits, starting with a letter",
    ),
    Setting(
        "AzureWebJobsStorage",
        "storage_connection_string",
        "",
        _storage_connection,
        "Storage connection string (local runs and Azurite); in Azure use the identity-based settings below.",
        "a storage connection string (AccountName=...;AccountKey=... or UseDevelopmentStorage=true), or empty",
        secret=True,
    ),
    Setting(
        "AzureWebJobsStorage__accountName",
        "storage_account_name",
        "",
        _text,
        "Storage account for identity-based access (managed identity).",
        "a storage account name, or empty",
    ),
    Setting(
        "AzureWebJobsStorage__tableServiceUri",
        "storage_table_uri",
        "",
        _optional_https_url,
        "Table endpoint for identity-based access, if not the account's default.",
        "an https:// URL, or empty",
    ),
    Group("triggers", "Triggers: the sweep timer and Event Grid events"),
    Setting(
        "AUTOHEAL_SWEEP_SCHEDULE",
        "sweep_schedule",
        "0 */15 * * * *",
        _ncrontab,
        "Timer schedule of the sweep over every scale set (NCRONTAB, six fields).",
        "six NCRONTAB fields, e.g. '0 */15 * * * *'",
    ),
    Setting(
        "AUTOHEAL_SWEEP_CONCURRENCY",
        "sweep_concurrency",
        "8",
        _int(1, 64),
        "Scale sets evaluated in parallel by a sweep.",
        "an integer 1-64",
    ),
    Setting(
        "AUTOHEAL_COMPUTE_READ_SHARE",
        "compute_read_share",
        "25",
        _int(1, 100),
        "Share (%) of each Compute throttling bucket the tool may use: it spends at most this share of the "
        "documented refill and never leaves a bucket below (100 - this) % of its capacity (the rest is the "
        "customer's autoscale, AKS and portal).",
        "an integer 1-100",
    ),
    Setting(
        "AUTOHEAL_SWEEP_SLICE",
        "sweep_slice",
        "PT10M",
        _duration(timedelta(seconds=30), timedelta(minutes=25)),
        "Longest a timer sweep works (well inside the 30-minute function timeout); what does not fit in the "
        "slice or the Compute budget is continued by the next tick from a cursor kept in the ledger.",
        "an ISO 8601 duration from PT30S to PT25M",
    ),
    Setting(
        "AUTOHEAL_INVENTORY",
        "inventory",
        "resource-graph",
        _choice("resource-graph", "compute"),
        "Where a sweep lists the scale sets: Azure Resource Graph (a few queries per sweep, no Compute tokens; "
        "it also flags failed instances, so those are read first) or Compute's scale-set list.",
        "resource-graph or compute",
    ),
    Setting(
        "AUTOHEAL_SUSPECT_PRESCREEN",
        "suspect_prescreen",
        "get-list",
        _choice("get-list", "off"),
        "Before reading Resource Graph's suspects from Compute, re-read their instances through Resource Graph's "
        "GET/LIST API (no Compute tokens, seconds fresh, no health): only scale sets still showing a failed, stuck "
        "or stopped instance are read first; the others wait for the rotation. On a 422 or any error: read from "
        "Compute.",
        "get-list or off",
    ),
    Setting(
        "AUTOHEAL_ARM_READS_RESERVE",
        "arm_reads_reserve",
        "200",
        _int(0, 12000),
        "When ARM reports fewer remaining reads than this, the sweep slows down instead of being throttled.",
        "an integer 0-12000",
    ),
    Setting(
        "AUTOHEAL_EVENT_COALESCE_WINDOW",
        "event_coalesce_window",
        "PT1M",
        _duration(timedelta(0), timedelta(hours=1)),
        "Events for one scale set within this window cause one evaluation (a scale-out writes many events).",
        "an ISO 8601 duration from PT0S to PT1H",
    ),
    Group(
        "notifications",
        "Notifications (an invalid value, or an unresolved Key Vault reference, disables its channel only)",
    ),
    Setting(
        "AUTOHEAL_TEAMS_WEBHOOK_URL",
        "teams_webhook_url",
        "",
        _optional_https_url,
        "Teams Workflows webhook ('When a Teams webhook request is received'); it carries its signature.",
        "an https:// URL, or empty to disable Teams",
        secret=True,
    ),
    Setting(
        "AUTOHEAL_TEAMS_MIN_SEVERITY",
        "teams_min_severity",
        "warning",
        _severity,
        "Least severe finding posted to Teams.",
        "info, warning or error",
    ),
    Setting(
        "AUTOHEAL_EMAIL_ENDPOINT",
        "email_endpoint",
        "",
        _optional_https_url,
        "Azure Communication Services endpoint for e-mail (managed identity).",
        "an https:// URL, or empty",
    ),
    Setting(
        "AUTOHEAL_EMAIL_SENDER",
        "email_sender",
        "",
        _optional_email,
        "Sender address, e.g. DoNotReply@<your Azure-managed domain>.",
        "an e-mail address, or empty",
    ),
    Setting(
        "AUTOHEAL_EMAIL_RECIPIENTS",
        "email_recipients",
        "",
        _emails,
        "Who receives e-mail notifications.",
        "comma-separated e-mail addresses, or empty",
    ),
    Setting(
        "AUTOHEAL_EMAIL_MIN_SEVERITY",
        "email_min_severity",
        "error",
        _severity,
        "Least severe finding sent by e-mail.",
        "info, warning or error",
    ),
    Setting(
        "AUTOHEAL_SMTP_HOST",
        "smtp_host",
        "",
        _text,
        "SMTP server for shops without Azure Communication Services (used when no ACS endpoint is set).",
        "a host name, or empty",
    ),
    Setting("AUTOHEAL_SMTP_PORT", "smtp_port", "587", _int(1, 65535), "SMTP port.", "an integer 1-65535"),
    Setting("AUTOHEAL_SMTP_STARTTLS", "smtp_starttls", "true", _bool, "Use STARTTLS with SMTP.", "true or false"),
    Setting("AUTOHEAL_SMTP_USERNAME", "smtp_username", "", _text, "SMTP user name.", "text, or empty"),
    Setting(
        "AUTOHEAL_SMTP_PASSWORD",
        "smtp_password",
        "",
        _text,
        "SMTP password (a Key Vault reference in Azure).",
        "text, or empty",
        secret=True,
    ),
    Setting(
        "AUTOHEAL_NOTIFY_ROUTES",
        "notify_routes",
        "",
        _routes,
        "Per-subscription channels in a management-group scope: a routed subscription's changes go to its own "
        "Teams webhook and e-mail recipients; the others go to the default channels in one digest across the "
        "scope, each scale set under its subscription's name.",
        "SUBSCRIPTION=TARGET[,TARGET];... with at most one https:// Teams webhook and e-mail addresses, or empty",
        secret=True,
    ),
    Setting(
        "AUTOHEAL_NOTIFY_STYLE",
        "notify_style",
        "digest",
        _choice("digest", "each"),
        "digest: one message per sweep or event listing everything new; each: one message per change.",
        "digest or each",
    ),
    Setting(
        "AUTOHEAL_NOTIFY_DEDUPE_WINDOW",
        "notify_dedupe_window",
        "PT6H",
        _duration(timedelta(0), timedelta(days=7)),
        "The same finding on the same target is not re-sent within this window unless its state changes.",
        "an ISO 8601 duration from PT0S to P7D",
    ),
    Setting(
        "AUTOHEAL_PORTAL_URL",
        "portal_url",
        "https://portal.azure.com",
        _https_url,
        "Azure portal base URL for the 'Open in portal' links (sovereign clouds differ).",
        "an https:// URL",
    ),
    Setting(
        "AZURE_TENANT_ID",
        "tenant_id",
        "",
        _uuid_or_empty,
        "Directory (tenant) id put in the portal links so they open in the right directory.",
        "a tenant GUID, or empty (the portal picks the signed-in directory)",
        channel="notify",
    ),
    Setting(
        "AUTOHEAL_EVENTS_ENDPOINT",
        "events_endpoint",
        "",
        _optional_https_url,
        "Event Grid topic endpoint for outcome events (CloudEvents 1.0, managed identity with "
        "'EventGrid Data Sender').",
        "an https:// URL, or empty to publish no events",
        channel="events",
    ),
)


def _assign_groups(declared: tuple[Setting | Group, ...]) -> tuple[Setting, ...]:
    """Each setting belongs to the last `Group` declared above it."""
    out: list[Setting] = []
    current = ""
    for item in declared:
        if isinstance(item, Group):
            current = item.key
        else:
            out.append(dataclasses.replace(item, group=item.group or current))
    return tuple(out)


SETTINGS: tuple[Setting, ...] = _assign_groups(_DECLARED)
GROUPS: tuple[Group, ...] = tuple(item for item in _DECLARED if isinstance(item, Group))
_BY_ATTR = {s.attr: s for s in SETTINGS}
_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """Validated settings; defaults live only in `SETTINGS` (see `default_settings()`)."""

    subscription_id: str
    scope: Scope
    exclude_subscriptions: tuple[str, ...]
    sweep_queue: str
    client_id: str
    arm_endpoint: str
    arm_ca_bundle: str
    grace_margin: timedelta
    storm_threshold_percent: int
    storm_min_instances: int
    loop_window: timedelta
    propose_resiliency: bool
    delete_stuck_after: timedelta
    target_grace_period: timedelta | None
    repair_grace_period: timedelta
    repair_action: str
    mode: str
    allowed_actions: tuple[str, ...]
    opt_out_tag: tuple[str, str] | None
    opt_in_tag: tuple[str, str] | None
    include_resource_groups: tuple[str, ...]
    exclude_resource_groups: tuple[str, ...]
    allowed_owners: tuple[str, ...]
    max_disruption_percent: int
    capacity_floor_percent: int
    cooldown: timedelta
    max_attempts: int
    backoff_base: timedelta
    max_actions_per_sweep: int
    max_resumes_per_day: int
    activity_log_lookback: timedelta
    action_lease: timedelta
    lro_timeout: timedelta
    lro_poll_seconds: int
    ledger_table: str
    storage_connection_string: str = field(repr=False)
    storage_account_name: str
    storage_table_uri: str
    sweep_schedule: str
    sweep_concurrency: int
    compute_read_share: int
    sweep_slice: timedelta
    inventory: str
    suspect_prescreen: str
    arm_reads_reserve: int
    event_coalesce_window: timedelta
    teams_webhook_url: str = field(repr=False)
    teams_min_severity: str
    email_endpoint: str
    email_sender: str
    email_recipients: tuple[str, ...]
    email_min_severity: str
    smtp_host: str
    smtp_port: int
    smtp_starttls: bool
    smtp_username: str
    smtp_password: str = field(repr=False)
    notify_routes: tuple[Route, ...] = field(repr=False)
    notify_style: str
    notify_dedupe_window: timedelta
    portal_url: str
    tenant_id: str
    events_endpoint: str
    # Not a setting: what load_settings() could not accept and worked around (channels off, typos).
    problems: tuple[str, ...] = field(default=(), kw_only=True, compare=False)

    @property
    def remediate(self) -> bool:
        return self.mode == "remediate"

    @property
    def management_group(self) -> str:
        """The management group this deployment watches, or "" (one subscription)."""
        return self.scope.management_group

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def default_settings(**changes: Any) -> Settings:
    """Every default from the table, optionally overridden (tests, the CLI)."""
    return load_settings({}).replace(**changes)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting.

    Guardrail, scope, ARM, ledger and trigger settings that fail validation raise one SettingsError naming
    each of them (start-up fails loudly). A notification setting that fails validation, or arrives as an
    unresolved Key Vault reference, turns its channel off with an ERROR log and a line in
    `Settings.problems` (shown by the status endpoint): detection and remediation go on.
    """
    source = os.environ if env is None else env
    values: dict[str, Any] = {}
    fatal: list[str] = []
    problems: list[str] = []
    channels_off: dict[str, list[str]] = {}
    for setting in SETTINGS:
        raw = source.get(setting.name)
        raw = setting.default if raw is None else raw
        try:
            if raw.strip().startswith(KEY_VAULT_REFERENCE_PREFIX):
                raise ValueError("an unresolved Key Vault reference (check the identity's access and the secret)")
            values[setting.attr] = setting.parse(raw)
        except (ValueError, KeyError, isodate.ISO8601Error) as exc:
            reason = f" ({exc})" if isinstance(exc, ValueError) and str(exc) else ""
            shown = "(secret value hidden)" if setting.secret else repr(raw)
            message = f"{setting.name}={shown} is invalid{reason}: expected {setting.accepts}"
            if not setting.channel:
                fatal.append(message)
                continue
            values[setting.attr] = setting.parse(setting.default)
            if setting.channel in CHANNEL_OFF:
                channels_off.setdefault(setting.channel, []).append(message)
            else:
                problems.append(f"{message}; using the default {setting.default!r}")
                _report(setting.name, problems[-1])
    scope = values.get("scope")
    if isinstance(scope, Scope) and scope.kind == "subscription" and scope.name:
        given = str(values.get("subscription_id") or "")
        if given and given.lower() != scope.name.lower():
            fatal.append(
                f"AUTOHEAL_SCOPE={scope.describe()} and AZURE_SUBSCRIPTION_ID={given} disagree: "
                "expected the same subscription, or AUTOHEAL_SCOPE empty"
            )
        values["subscription_id"] = given or scope.name
    if fatal:
        raise SettingsError("invalid app settings: " + "; ".join(fatal))
    for channel, messages in channels_off.items():
        values.update(CHANNEL_OFF[channel])
        for message in messages:
            problems.append(f"{channel} notifications are off: {message}")
            _report(message.split("=", 1)[0], problems[-1])
    problems.extend(_unknown_names(source))
    known = {f.name for f in fields(Settings)} - {"problems"}
    if known != set(_BY_ATTR):  # pragma: no cover - a programming error caught by the settings tests
        raise RuntimeError(f"settings table and Settings dataclass disagree: {sorted(known ^ set(_BY_ATTR))}")
    return Settings(**values, problems=tuple(problems))


def _report(name: str, message: str) -> None:
    from . import telemetry

    telemetry.get_logger("autoheal.settings").error("setting %s", message, extra={"setting": name})
    telemetry.record_settings_problem(name)


def _unknown_names(source: Mapping[str, str]) -> list[str]:
    """Typos in AUTOHEAL_* names are otherwise silently ignored: warn, naming the closest known setting."""
    known = [s.name for s in SETTINGS if s.name.startswith("AUTOHEAL_")]
    warnings = []
    for name in sorted(n for n in source if n.upper().startswith("AUTOHEAL_")):
        if name in _BY_NAME or name in DEPLOYMENT_ONLY:
            continue
        close = difflib.get_close_matches(name.upper(), known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        warnings.append(f"unknown setting {name} is ignored{hint}")
        from . import telemetry

        telemetry.get_logger("autoheal.settings").warning("%s", warnings[-1], extra={"setting": name})
    return warnings


def settings_markdown() -> str:
    """The README's settings tables, one per group, generated from `SETTINGS` (a test keeps the README in step)."""
    out: list[str] = []
    for group in GROUPS:
        if out:
            out.append("")
        out += [f"**{group.title}**", "", "| Setting | Default | Meaning | Accepts |", "| --- | --- | --- | --- |"]
        for s in (s for s in SETTINGS if s.group == group.key):
            default = f"`{s.default}`" if s.default else "(empty)"
            secret = " Secret: a Key Vault reference in Azure." if s.secret else ""
            out.append(f"| `{s.name}` | {default} | {s.meaning}{secret} | {s.accepts} |")
    return "\n".join(out)


def iso_duration(value: timedelta) -> str:
    """timedelta → ISO 8601 as Azure writes it (`PT30M`)."""
    text: str = isodate.duration_isoformat(value)
    return text
