"""The Bicep agrees with the code: app settings, event types and filters, RBAC actions, azd service.

Everything is read at test time from the code's own tables (autoheal.settings.SETTINGS,
autoheal.events, autoheal.gateway.all_required_actions()) and from the parsed Bicep, so a setting,
event type or gateway action added to the code without its infrastructure fails here.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from autoheal.settings import SETTINGS
from tests.infra.bicep import (
    APP,
    INFRA,
    ROOT,
    body,
    camel,
    function_args,
    is_secure,
    keys,
    main,
    mentions,
    module_file,
    modules_using,
    resolve,
    resources_of_type,
    simple_yaml,
    variable,
)

# Settings the code reads that Azure deliberately does not set. Keep this small and explicit.
NOT_IN_AZURE = {
    "AUTOHEAL_ARM_ENDPOINT": "points the gateway at the local ARM emulator; Azure uses the default endpoint",
    "AUTOHEAL_ARM_CA_BUNDLE": "trusts the local emulator's test CA; never needed against Azure",
    "AzureWebJobsStorage": "a shared-key connection string; Azure uses identity-based AzureWebJobsStorage__*",
}
# Read by the Functions host / Azure Monitor distro, not by autoheal.settings, but required in Azure.
PLATFORM_SETTINGS = {
    "AZURE_SUBSCRIPTION_ID",
    "AZURE_CLIENT_ID",
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY",
}
# Not allowed on Flex Consumption (functionAppConfig holds the runtime) or shared-key based.
FORBIDDEN_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "AzureWebJobsStorage",
    "WEBSITE_RUN_FROM_PACKAGE",
}
KEY_VAULT_REFERENCE = "@Microsoft.KeyVault(SecretUri="


def autoheal_settings_var() -> dict:
    return variable(main(), "autohealSettings")


def platform_settings_var() -> dict:
    return variable(module_file("function.bicep"), "platformSettings")


def set_in_bicep() -> set[str]:
    return keys(autoheal_settings_var()) | keys(platform_settings_var())


# -- app settings ---------------------------------------------------------------------------------------


def test_exceptions_are_still_settings_of_the_code():
    names = {s.name for s in SETTINGS}
    assert set(NOT_IN_AZURE) <= names, "drop exceptions for settings the code no longer reads"


def test_every_setting_the_code_reads_is_set_in_azure():
    missing = sorted({s.name for s in SETTINGS} - set(NOT_IN_AZURE) - set_in_bicep())
    assert not missing, f"app settings the code reads but infra/ does not set: {missing}"


def test_every_autoheal_setting_in_bicep_is_read_by_the_code():
    names = {s.name for s in SETTINGS}
    extra = sorted(n for n in set_in_bicep() if n.startswith("AUTOHEAL_") and n not in names)
    assert not extra, f"AUTOHEAL_* settings in infra/ that the code does not read: {extra}"
    assert not set(NOT_IN_AZURE) & set_in_bicep(), "an exception is set in Bicep after all"


def test_platform_settings_are_set_and_forbidden_ones_are_not():
    assert keys(platform_settings_var()) >= PLATFORM_SETTINGS
    assert not FORBIDDEN_SETTINGS & set_in_bicep()
    platform = platform_settings_var()
    assert platform["AzureWebJobsStorage__credential"] == "managedidentity"
    assert platform["PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"] == "true"
    assert "Authorization=AAD" in platform["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]


@pytest.mark.parametrize(
    "setting",
    [s for s in SETTINGS if s.name.startswith("AUTOHEAL_") and s.name not in NOT_IN_AZURE],
    ids=lambda s: s.name,
)
def test_autoheal_setting_is_a_parameter_with_the_code_default(setting):
    params = main()["parameters"]
    name = camel(setting.name)
    assert name in params, f"{setting.name}: add `param {name} string = '{setting.default}'` to infra/main.bicep"
    param = params[name]
    assert param["type"] == "string"
    assert param.get("default") == setting.default, f"{name}: default differs from the code's {setting.default!r}"
    assert is_secure(param) == setting.secret, f"{name}: @secure() iff the setting is a secret"
    value = resolve(main(), autoheal_settings_var()[setting.name])
    if setting.secret:
        # A Key Vault reference (the secret holds the value), or empty when no secret was given.
        assert KEY_VAULT_REFERENCE in json.dumps(value), f"{setting.name}: expected a Key Vault reference"
    else:
        assert mentions(value, name), f"{setting.name}: the app setting must come from param {name}"


def test_every_setting_parameter_documents_its_setting():
    for name, param in main()["parameters"].items():
        if name.startswith("autoheal"):
            text = json.dumps(param["decorators"])
            assert re.search(r"AUTOHEAL_[A-Z_]+", text), f"{name}: @description should name its app setting"


def test_the_function_app_receives_all_settings():
    function_module = modules_using(main(), "app/function.bicep")
    (module,) = function_module.values()
    assert body(module)["params"]["autohealSettings"] == "autohealSettings"
    fn = module_file("function.bicep")
    assert function_args(variable(fn, "appSettings"), "union") == ["platformSettings", "autohealSettings"]
    (site,) = resources_of_type(fn, "Microsoft.Web/sites").values()
    assert mentions(body(site)["properties"]["siteConfig"]["appSettings"], "appSettings")


def test_ledger_table_is_created_from_the_setting():
    (module,) = modules_using(main(), "app/storage.bicep").values()
    assert body(module)["params"]["ledgerTableName"] == "autohealLedgerTable"
    storage = module_file("storage.bicep")
    (table,) = resources_of_type(storage, "Microsoft.Storage/storageAccounts/tableServices/tables").values()
    assert body(table)["name"] == "ledgerTableName"


def test_parameters_file_matches_main_and_code_defaults():
    document = json.loads((INFRA / "main.parameters.json").read_text())
    params = main()["parameters"]
    defaults = {camel(s.name): s.default for s in SETTINGS}
    for name, entry in document["parameters"].items():
        assert name in params, f"main.parameters.json sets {name}, which main.bicep does not declare"
        match = re.fullmatch(r"\$\{(\w+)(?:=(.*))?\}", str(entry["value"]))
        assert match, f"{name}: expected an azd ${{VARIABLE}} placeholder"
        if name in defaults and match.group(2) is not None:
            assert match.group(2) == defaults[name], f"{name}: placeholder default differs from the code"
    assert document["parameters"]["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert document["parameters"]["location"]["value"] == "${AZURE_LOCATION}"


@pytest.mark.parametrize(
    "setting",
    [s for s in SETTINGS if s.name.startswith("AUTOHEAL_") and s.name not in NOT_IN_AZURE],
    ids=lambda s: s.name,
)
def test_every_setting_can_be_tuned_with_azd_env_set(setting):
    """Issue 13 item 8: `azd env set` reached ~15 of ~48 settings; the rest silently did nothing.

    azd substitutes `${NAME=default}` in main.parameters.json from the azd environment, so each setting's
    parameter is fed by an azd variable of exactly the app setting's name, defaulting to the code's default.
    """
    document = json.loads((INFRA / "main.parameters.json").read_text())
    entry = document["parameters"].get(camel(setting.name))
    assert entry is not None, f"main.parameters.json: add {camel(setting.name)} = ${{{setting.name}={setting.default}}}"
    assert entry["value"] == f"${{{setting.name}={setting.default}}}"


def test_every_azd_variable_is_a_setting_or_a_deployment_switch():
    from autoheal.settings import DEPLOYMENT_ONLY

    text = (INFRA / "main.parameters.json").read_text()
    used = set(re.findall(r"\$\{(AUTOHEAL_\w+)", text))
    names = {s.name for s in SETTINGS}
    assert used - names == set(DEPLOYMENT_ONLY)
    assert not set(DEPLOYMENT_ONLY) & names


# -- Event Grid -----------------------------------------------------------------------------------------


def events_doc() -> dict:
    """app/events.bicep: the Event Grid wiring both modes deploy per subscription (main.bicep, main-mg.bicep)."""
    return module_file("events.bicep")


def event_subscriptions() -> dict[str, dict]:
    """Module params of each event subscription, variables resolved."""
    found = {}
    for name, module in modules_using(events_doc(), "event-subscription.bicep").items():
        params = body(module)["params"]
        found[name] = {k: resolve(events_doc(), v) for k, v in params.items()}
    return found


def test_main_deploys_the_shared_event_grid_module_into_its_resource_group():
    (module,) = modules_using(main(), "app/events.bicep").values()
    assert module["config"]["condition"] == "deploySubscriptionEvents"
    params = body(module)["params"]
    assert body(module)["scope"] == "rg"
    assert params["enableHealthEvents"] == "enableHealthEvents"
    assert params["deployEventSubscriptions"] == "deployEventSubscriptions"
    assert not modules_using(main(), "app/event-subscription.bicep"), "event subscriptions only through events.bicep"


def test_event_subscriptions_cover_exactly_the_accepted_event_types():
    from autoheal import events

    subscriptions = event_subscriptions()
    assert set(subscriptions) == {"resourceEventSubscription", "vmFailureEventSubscription", "healthEventSubscription"}
    resource = subscriptions["resourceEventSubscription"]
    health = subscriptions["healthEventSubscription"]
    assert resource["includedEventTypes"] == list(events.RESOURCE_EVENT_TYPES)
    assert health["includedEventTypes"] == list(events.HEALTH_EVENT_TYPES)
    assert subscriptions["vmFailureEventSubscription"]["includedEventTypes"] == list(events.VM_FAILURE_EVENT_TYPES)
    assert set(events.VM_FAILURE_EVENT_TYPES) <= set(events.RESOURCE_EVENT_TYPES)
    assert set(resource["includedEventTypes"]) | set(health["includedEventTypes"]) == set(events.ACCEPTED_EVENT_TYPES)


def test_resource_events_are_filtered_to_scale_set_operations():
    from autoheal import events

    filters = event_subscriptions()["resourceEventSubscription"]["advancedFilters"]
    prefix = resolve(events_doc(), filters[0]["values"][0])
    assert filters == [
        {"operatorType": "StringBeginsWith", "key": "data.operationName", "values": [filters[0]["values"][0]]}
    ]
    assert prefix == events.SCALE_SET_OPERATION_PREFIX


def test_vm_failure_events_are_filtered_to_vm_operations():
    """Issue 13 item 4: a Flexible scale set's VM failures reach the function (and plain VM successes do not)."""
    from autoheal import events

    filters = event_subscriptions()["vmFailureEventSubscription"]["advancedFilters"]
    assert [(f["operatorType"], f["key"]) for f in filters] == [("StringBeginsWith", "data.operationName")]
    assert [resolve(events_doc(), v) for v in filters[0]["values"]] == [events.VM_OPERATION_PREFIX]
    # Event Grid's StringBeginsWith is case-insensitive: the VM prefix must not also match scale-set operations.
    assert not events.SCALE_SET_OPERATION_PREFIX.lower().startswith(events.VM_OPERATION_PREFIX.lower())


def test_health_events_keep_every_vm_and_scale_set_target():
    from autoheal import events

    filters = event_subscriptions()["healthEventSubscription"]["advancedFilters"]
    for entry in filters:
        assert entry["operatorType"] == "StringBeginsWith"
        assert entry["values"] == [events.HEALTH_TARGET_TYPE_PREFIX]
        for value in entry["values"]:
            for target in ("Microsoft.Compute/virtualMachines", "Microsoft.Compute/virtualMachineScaleSets"):
                assert target.startswith(value), f"health filter {value!r} would drop {target} events"


def test_event_subscriptions_name_a_function_the_app_registers():
    # In a fresh interpreter: get_functions() may run only once per app object (the function tests own it).
    script = "import function_app; print(' '.join(f.get_function_name() for f in function_app.app.get_functions()))"
    names = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    assert "on_resource_event" in names
    for name in modules_using(events_doc(), "event-subscription.bicep"):
        assert event_subscriptions()[name]["functionName"] in names


def test_event_subscriptions_deliver_to_the_event_grid_function_in_a_second_step():
    assert main()["parameters"]["deployEventSubscriptions"]["default"] is False
    for name, module in modules_using(events_doc(), "event-subscription.bicep").items():
        assert mentions(module["config"]["condition"], "deployEventSubscriptions"), name
        assert event_subscriptions()[name]["functionName"] == "on_resource_event"
    sub_doc = module_file("event-subscription.bicep")
    (sub,) = resources_of_type(sub_doc, "Microsoft.EventGrid/systemTopics/eventSubscriptions").values()
    union_args = function_args(body(sub)["properties"], "union")
    properties = union_args[0]
    assert properties["destination"]["endpointType"] == "AzureFunction"
    assert properties["destination"]["properties"]["resourceId"] == "${functionAppId}/functions/${functionName}"
    assert properties["filter"] == {"includedEventTypes": "includedEventTypes", "advancedFilters": "advancedFilters"}
    assert set(properties["retryPolicy"]) == {"maxDeliveryAttempts", "eventTimeToLiveInMinutes"}
    dead_letter = resolve(sub_doc, union_args[1])
    assert "deadLetterWithResourceIdentity" in json.dumps(dead_letter)


def test_system_topics_have_the_right_sources():
    topics = module_file("eventgrid-topics.bicep")
    found = {
        body(t)["properties"]["topicType"]
        for t in resources_of_type(topics, "Microsoft.EventGrid/systemTopics").values()
    }
    assert found == {"Microsoft.Resources.Subscriptions", "Microsoft.ResourceNotifications.HealthResources"}
    for name in ("existingResourcesTopicName", "existingHealthTopicName", "enableHealthEvents"):
        assert name in main()["parameters"]


# -- RBAC -----------------------------------------------------------------------------------------------

# A scale-set PUT/PATCH re-validates what the model references (ARM's linked access checks).
LINKED_ACTIONS = {
    "Microsoft.Network/virtualNetworks/subnets/join/action",
    "Microsoft.Network/loadBalancers/backendAddressPools/join/action",
    "Microsoft.Network/loadBalancers/inboundNatPools/join/action",
    "Microsoft.Network/applicationGateways/backendAddressPools/join/action",
    "Microsoft.Network/networkSecurityGroups/join/action",
    "Microsoft.Network/applicationSecurityGroups/joinIpConfiguration/action",
    "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
    "Microsoft.Compute/galleries/images/read",
    "Microsoft.Compute/galleries/images/versions/read",
    "Microsoft.Compute/images/read",
}
# Polling long-running operations; resource groups (the scope filters name them).
SUPPORT_ACTIONS = {
    "Microsoft.Compute/locations/operations/read",
    "Microsoft.Resources/subscriptions/resourceGroups/read",
}


def role_actions(role: str) -> list[str]:
    doc = module_file("remediator-role.bicep")
    (permissions,) = body(doc["resources"][role])["properties"]["permissions"]
    actions = resolve(doc, permissions["actions"])
    parts = function_args(actions, "concat")
    if parts is None:
        return list(actions)
    return [action for part in parts for action in resolve(doc, part)]


def gateway_actions() -> set[str]:
    from autoheal.gateway import all_required_actions

    actions = all_required_actions()
    assert actions, "autoheal.gateway declares no actions"
    return actions


def test_remediator_role_covers_every_gateway_action():
    granted = {a.lower() for a in role_actions("remediator")}
    missing = sorted(a for a in gateway_actions() if a.lower() not in granted)
    assert not missing, f"add to infra/app/remediator-role.bicep: {missing}"


def test_remediator_role_grants_nothing_unexplained():
    actions = role_actions("remediator")
    assert len(actions) == len(set(actions)), "duplicate actions"
    assert not [a for a in actions if "*" in a], "no wildcards"
    allowed = {a.lower() for a in gateway_actions() | LINKED_ACTIONS | SUPPORT_ACTIONS}
    extra = sorted(a for a in actions if a.lower() not in allowed)
    assert not extra, f"actions neither the gateway nor a linked check needs: {extra}"
    assert set(actions) >= LINKED_ACTIONS | SUPPORT_ACTIONS


def test_observer_role_reads_only():
    actions = role_actions("observer")
    assert actions and all(a.endswith("/read") for a in actions), actions
    reads = {a for a in gateway_actions() if a.endswith("/read")}
    assert reads <= set(actions)


def test_roles_are_custom_at_subscription_scope_and_assigned_to_the_identity():
    doc = module_file("remediator-role.bicep")
    assert doc["globals"]["scope"]["value"] == "subscription"
    remediator = body(doc["resources"]["remediator"])["properties"]
    assert remediator["roleName"] == "VMSS Autoheal Remediator ${subscription().subscriptionId}"
    assert remediator["type"] == "CustomRole"
    assert mentions(remediator["assignableScopes"], "subscription")
    assignment = body(doc["resources"]["assignment"])
    assert mentions(resolve(doc, assignment["properties"]["roleDefinitionId"]), "readOnly")
    (module,) = modules_using(main(), "app/remediator-role.bicep").values()
    assert body(module)["params"]["readOnly"] == "readOnlyRole"
    assert "scope" not in body(module), "the role module deploys at subscription scope"


def test_identity_roles_on_data_planes():
    storage = (APP / "storage.bicep").read_text()
    for role, guid in {
        "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
        "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    }.items():
        assert guid in storage, role
    assert "4633458b-17de-408a-b874-0445c86b69e6" in (APP / "keyvault.bicep").read_text()  # Secrets User
    assert "3913510d-42f4-4e42-8a64-420c390055eb" in (APP / "monitoring.bicep").read_text()  # Metrics Publisher


# -- hosting and hardening ------------------------------------------------------------------------------


def test_function_app_is_flex_consumption_python_311_hardened():
    fn = module_file("function.bicep")
    (plan,) = resources_of_type(fn, "Microsoft.Web/serverfarms").values()
    assert body(plan)["sku"] == {"tier": "FlexConsumption", "name": "FC1"}
    (site,) = resources_of_type(fn, "Microsoft.Web/sites").values()
    props = body(site)["properties"]
    assert props["httpsOnly"] is True
    assert props["siteConfig"]["ftpsState"] == "Disabled"
    assert props["siteConfig"]["minTlsVersion"] == "1.2"
    config = props["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    assert config["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"
    assert {"maximumInstanceCount", "instanceMemoryMB"} <= set(config["scaleAndConcurrency"])
    assert "'azd-service-name': 'api'" in (APP / "function.bicep").read_text()
    policies = resources_of_type(fn, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    assert {body(p)["name"]: body(p)["properties"]["allow"] for p in policies.values()} == {"ftp": False, "scm": False}


def test_data_stores_use_entra_id_only():
    (account,) = resources_of_type(module_file("storage.bicep"), "Microsoft.Storage/storageAccounts").values()
    props = body(account)["properties"]
    assert props["allowSharedKeyAccess"] is False
    assert props["allowBlobPublicAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    (vault,) = resources_of_type(module_file("keyvault.bicep"), "Microsoft.KeyVault/vaults").values()
    assert body(vault)["properties"]["enableRbacAuthorization"] is True
    (insights,) = resources_of_type(module_file("monitoring.bicep"), "Microsoft.Insights/components").values()
    assert body(insights)["properties"]["DisableLocalAuth"] is True


def test_main_is_subscription_scoped_and_creates_the_resource_group():
    assert main()["globals"]["scope"]["value"] == "subscription"
    assert resources_of_type(main(), "Microsoft.Resources/resourceGroups")


# -- alerts and workbook KQL ----------------------------------------------------------------------------

DIMENSIONS = {"scaleSetId", "findingCode", "actionCode", "outcome", "mode", "correlationId", "eventId", "reasonCode"}
OUTCOMES = {"succeeded", "failed", "held", "planned"}


def kql_files() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((APP / "kql").glob("*.kql"))}


def test_every_loaded_kql_file_exists_and_every_kql_file_is_used():
    loaded = set()
    for path in sorted(APP.glob("*.bicep")):
        loaded |= set(re.findall(r"loadTextContent\('kql/([^']+)'\)", path.read_text()))
    assert loaded == set(kql_files())


def test_kql_uses_only_the_telemetry_contract():
    from autoheal.model import FindingCode

    codes = {c.value for c in FindingCode}
    for name, text in kql_files().items():
        used = set(re.findall(r"customDimensions\.(\w+)", text))
        assert used <= DIMENSIONS, f"{name}: unknown custom dimensions {used - DIMENSIONS}"
        for compared in re.findall(r'customDimensions\.outcome\) == "(\w+)"', text):
            assert compared in OUTCOMES, f"{name}: outcome {compared!r}"
        for literal in re.findall(r'findingCode(?:\) ==| in \() *"([\w-]+)"', text):
            assert literal in codes, f"{name}: finding code {literal!r} is not in autoheal.model.FindingCode"
        for listed in re.findall(r"findingCode in \(([^)]*)\)", text):
            for literal in re.findall(r'"([\w-]+)"', listed):
                assert literal in codes, f"{name}: finding code {literal!r} is not in autoheal.model.FindingCode"
        if "customDimensions" in text:
            assert 'message startswith "remediation"' in text, name


def test_alerts_cover_failed_remediations_suspended_repairs_and_function_failures():
    texts = kql_files()
    assert 'customDimensions.outcome) == "failed"' in texts["failed-remediations.kql"]
    assert '"repairs-suspended"' in texts["repairs-suspended.kql"]
    assert "requests" in texts["function-failures.kql"] and "exceptions" in texts["function-failures.kql"]
    alerts = (APP / "alerts.bicep").read_text()
    for name in ("failed-remediations.kql", "repairs-suspended.kql", "function-failures.kql"):
        assert f"kql/{name}" in alerts


# -- azd ------------------------------------------------------------------------------------------------


def test_azure_yaml_names_the_service_and_project():
    document = simple_yaml((ROOT / "azure.yaml").read_text())
    api = document["services"]["api"]
    assert api["language"] == "python"
    assert api["host"] == "function"
    project = ROOT / api["project"]
    assert (project / "requirements.txt").exists()
    assert (project / "function_app.py").exists(), "the Python v2 entry point lives in the project folder"
    assert document["infra"]["path"] == "infra" and (ROOT / "infra" / "main.bicep").exists()
    for hook in document["hooks"]["postdeploy"].values():
        assert (ROOT / hook["run"]).exists(), hook["run"]


def test_funcignore_keeps_dev_files_out_of_the_package():
    ignored = {line.strip() for line in (ROOT / ".funcignore").read_text().splitlines()}
    assert {"tests/", "bench/", "emulator/", ".venv/", "infra/", "local.settings.json"} <= ignored
    assert not {"autoheal/", "functions/", "function_app.py", "host.json", "requirements.txt"} & ignored
