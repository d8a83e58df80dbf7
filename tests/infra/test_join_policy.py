"""The join policy (infra/app/events-policy.bicep, main-mg.bicep deployJoinPolicy=true): an Azure Policy with the
deployIfNotExists effect on every subscription of the management group, whose embedded deployment
(infra/app/policy/subscription-events.json) creates what app/subscription-events.bicep with app/events.bicep creates,
under the same names, and whose remediation identity holds only what that deployment needs.

Microsoft's pattern: learn.microsoft.com/azure/governance/policy/concepts/effect-deploy-if-not-exists (details: type,
name, resourceGroupName, existenceScope, existenceCondition, roleDefinitionIds, deploymentScope Subscription with a
deployment `location`, the full deployment as for the deployments PUT API) and learn.microsoft.com/azure/governance/
policy/how-to/remediate-resources (a template deployment grants the identity its roles itself, also on resources
outside the assignment's scope). Parsed and run through checkov with the rest of infra/ (test_parse.py,
test_checkov.py)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.infra.bicep import (
    APP,
    INFRA,
    body,
    deployed,
    evaluate,
    function_args,
    module_file,
    modules_using,
    parameter_values,
    parsed,
    resources_of_type,
    symbol,
    variable,
)
from tests.infra.test_management_group_mode import event_grid_of_one_subscription

GUID_ALL = {"deployEventSubscriptions": True, "enableHealthEvents": True}


def mg() -> dict[str, Any]:
    return parsed(INFRA / "main-mg.bicep")


def policy() -> dict[str, Any]:
    return module_file("events-policy.bicep")


def host() -> dict[str, Any]:
    return module_file("events-policy-host.bicep")


def unescaped(value: Any) -> Any:
    """pycep keeps Bicep's \\' escapes inside strings; the policy sees plain quotes."""
    if isinstance(value, str):
        return value.replace("\\'", "'")
    if isinstance(value, list):
        return [unescaped(v) for v in value]
    if isinstance(value, dict):
        return {k: unescaped(v) for k, v in value.items()}
    return value


def definition() -> dict[str, Any]:
    return unescaped(body(policy()["resources"]["definition"])["properties"])


def details() -> dict[str, Any]:
    return definition()["policyRule"]["then"]["details"]


def template() -> dict[str, Any]:
    loaded = details()["deployment"]["properties"]["template"]["function"]
    assert loaded["type"] == "load_json_content"
    return json.loads((APP / loaded["parameters"]["file_path"]).read_text())


def nested() -> dict[str, Any]:
    (deployment,) = [r for r in template()["resources"] if r["type"] == "Microsoft.Resources/deployments"]
    return deployment


def nested_resources(resource_type: str) -> dict[str, dict[str, Any]]:
    """The nested template's resources of a type, by the literal end of their name ('.../autoheal-vm-failures')."""
    found = {}
    for resource in nested()["properties"]["template"]["resources"]:
        if resource["type"] == resource_type:
            found[re.sub(r"^.*'/?([\w-]+)'\)\]$", r"\1", resource["name"])] = resource
    return found


def arm_value(value: Any, variables: dict[str, Any]) -> Any:
    """An ARM value with "[variables('x')]" replaced by the variable (once)."""
    found = re.fullmatch(r"\[variables\('(\w+)'\)\]", value) if isinstance(value, str) else None
    return variables[found.group(1)] if found else value


def as_arm(interpolated: str, names: dict[str, str]) -> str:
    """A Bicep interpolated string ('rg-${environmentName}-events') as the ARM expression the policy writes
    ("[concat('rg-', parameters('environmentName'), '-events')]"), each Bicep name mapped by `names`."""
    parts: list[str] = []
    for index, piece in enumerate(re.split(r"\$\{(.*?)\}", interpolated)):
        if index % 2:
            for name, arm in names.items():
                piece = re.sub(rf"\b{name}\b", arm, piece)
            parts.append(piece)
        elif piece:
            parts.append(f"'{piece}'")
    return f"[concat({', '.join(parts)})]"


MG_NAMES = {"subscriptionId": "subscription().subscriptionId", "environmentName": "parameters('environmentName')"}


def module_subscription_properties() -> dict[str, Any]:
    """event-subscription.bicep's eventSubscription properties (the first argument of its union with dead-lettering)."""
    doc = module_file("event-subscription.bicep")
    (resource,) = resources_of_type(doc, "Microsoft.EventGrid/systemTopics/eventSubscriptions").values()
    first, _ = function_args(body(resource)["properties"], "union") or [None, None]
    assert isinstance(first, dict)
    return first


def mg_wrapper_params() -> dict[str, Any]:
    (wrapper,) = modules_using(mg(), "app/subscription-events.bicep").values()
    return wrapper["config"]["config"]["params"]


# -- deployed only when asked, in step two ------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, False),
        ({"deployJoinPolicy": True}, False),  # step one: no function yet for the event subscriptions
        ({"deployEventSubscriptions": True}, False),  # default off
        ({"deployJoinPolicy": True, "deployEventSubscriptions": True}, True),
    ],
)
def test_the_policy_is_off_by_default_and_only_in_step_two(given, expected):
    assert mg()["parameters"]["deployJoinPolicy"]["default"] is False
    env = parameter_values(mg(), {"environmentName": "prod", "location": "westeurope", **given})
    (module,) = modules_using(mg(), "app/events-policy.bicep").values()
    assert deployed(mg(), module, env) is expected


def test_main_mg_passes_the_app_s_own_resources_and_settings():
    (module,) = modules_using(mg(), "app/events-policy.bicep").values()
    params = module["config"]["config"]["params"]
    outputs = {
        "functionAppId": "app.outputs.AZURE_FUNCTION_APP_ID",
        "eventGridIdentityId": "app.outputs.AZURE_EVENTGRID_IDENTITY_ID",
        "deadLetterStorageId": "app.outputs.AZURE_STORAGE_ACCOUNT_ID",
        "hostResourceGroupName": "app.outputs.AZURE_RESOURCE_GROUP",
        "functionAppName": "app.outputs.AZURE_FUNCTION_APP_NAME",
        "storageAccountName": "app.outputs.AZURE_STORAGE_ACCOUNT_NAME",
    }
    for name, output in outputs.items():
        assert symbol(params[name]) == output, name
        assert output.rsplit(".", 1)[1] in parsed(INFRA / "main.bicep")["outputs"]
    wrapper = mg_wrapper_params()
    for name in ("functionAppId", "eventGridIdentityId", "deadLetterStorageId", "deadLetterContainerName"):
        assert params[name] == wrapper[name], f"{name}: the policy and the redeploy must wire the same app"
    assert params["enableHealthEvents"] == "enableHealthEvents" and params["environmentName"] == "environmentName"
    env = parameter_values(mg(), {"autohealExcludeSubscriptions": "a, b"})
    assert evaluate(mg(), params["excludedSubscriptions"], env) != []  # computed from the setting, not dropped


# -- the policy rule --------------------------------------------------------------------------------------


def test_the_policy_is_deploy_if_not_exists_on_each_subscription_of_the_group():
    assert policy()["globals"]["scope"]["value"] == "managementGroup"
    props = definition()
    assert props["policyType"] == "Custom" and props["mode"] == "All"
    effect = props["parameters"]["effect"]
    assert effect["defaultValue"] == "DeployIfNotExists" and "Disabled" in effect["allowedValues"]
    rule = props["policyRule"]
    assert {"field": "type", "equals": "Microsoft.Resources/subscriptions"} in rule["if"]["allOf"]
    assert {"value": "[subscription().subscriptionId]", "notIn": "[parameters('excludedSubscriptions')]"} in rule["if"][
        "allOf"
    ]
    assert rule["then"]["effect"] == "[parameters('effect')]"
    found = details()
    assert found["type"] == "Microsoft.EventGrid/systemTopics/eventSubscriptions"
    assert found["deploymentScope"] == "Subscription" and found["existenceScope"] == "ResourceGroup"
    deployment = found["deployment"]
    assert deployment["location"] == "location", "a subscription-level deployment needs a location"
    assert deployment["properties"]["mode"] == "incremental"
    assert template()["$schema"].endswith("/subscriptionDeploymentTemplate.json#")


def test_the_policy_looks_for_exactly_what_the_redeploy_creates():
    """Same resource group, topic and event subscription names as main-mg.bicep gives subscription-events.bicep:
    a subscription wired by either way is compliant, and neither creates a second topic (one per source)."""
    wrapper = mg_wrapper_params()
    resource_group = as_arm(wrapper["resourceGroupName"], MG_NAMES)
    topic = as_arm(wrapper["topicName"], MG_NAMES)
    health_topic = as_arm(wrapper["healthTopicName"], MG_NAMES)
    found = details()
    assert found["resourceGroupName"] == resource_group
    assert found["name"] == topic.removesuffix(")]") + ", '/autoheal-scale-set-operations')]"
    variables = template()["variables"]
    assert (variables["resourceGroupName"], variables["topicName"], variables["healthTopicName"]) == (
        resource_group,
        topic,
        health_topic,
    )
    assert "autoheal-scale-set-operations" in event_grid_of_one_subscription("management-group", GUID_ALL)


def test_the_existence_condition_is_delivery_to_this_app_s_function():
    events = module_file("events.bicep")
    condition = details()["existenceCondition"]
    assert (
        condition["field"] == "Microsoft.EventGrid/systemTopics/eventSubscriptions/destination.AzureFunction.resourceId"
    )
    function = variable(events, "eventFunctionName")
    assert condition["equals"] == f"[concat(parameters('functionAppId'), '/functions/{function}')]"
    assert module_subscription_properties()["destination"]["properties"]["resourceId"] == (
        "${functionAppId}/functions/${functionName}"
    )


def test_every_policy_parameter_reaches_the_deployment_and_the_assignment_sets_it():
    props = definition()
    passed = details()["deployment"]["properties"]["parameters"]
    assert set(passed) == set(template()["parameters"]), "the deployment passes exactly the template's parameters"
    for name, entry in passed.items():
        assert entry == {"value": f"[parameters('{name}')]"} and name in props["parameters"]
    nested_params = nested()["properties"]["parameters"]
    assert set(nested_params) == set(nested()["properties"]["template"]["parameters"])
    assigned = body(policy()["resources"]["assignment"])["properties"]["parameters"]
    without_default = {n for n, p in props["parameters"].items() if "defaultValue" not in p}
    assert without_default <= set(assigned) <= set(props["parameters"])
    assert set(assigned) >= {"excludedSubscriptions"}


# -- the deployment it embeds is the module ------------------------------------------------------------


def test_the_embedded_deployment_creates_the_module_s_event_subscriptions():
    """Names, event types, filters, endpoint, batching, retries and dead-lettering of each event subscription the
    policy deploys equal what main-mg.bicep deploys through events.bicep and event-subscription.bicep."""
    module = event_grid_of_one_subscription("management-group", GUID_ALL)
    module.pop("topics")
    inner = nested()["properties"]["template"]
    variables = inner["variables"]
    policy_subs = nested_resources("Microsoft.EventGrid/systemTopics/eventSubscriptions")
    assert set(policy_subs) == set(module)
    defaults = module_file("event-subscription.bicep")["parameters"]
    module_properties = module_subscription_properties()
    for name, resource in policy_subs.items():
        props = resource["properties"]
        expected = module[name]
        filters = props["filter"]
        assert arm_value(filters["includedEventTypes"], variables) == expected["includedEventTypes"], name
        assert arm_value(filters["advancedFilters"], variables) == expected["advancedFilters"], name
        destination = arm_value(props["destination"], variables)
        assert destination["endpointType"] == module_properties["destination"]["endpointType"] == "AzureFunction"
        assert variables["eventFunctionName"] == expected["functionName"]
        assert destination["properties"]["resourceId"] == (
            "[concat(parameters('functionAppId'), '/functions/', variables('eventFunctionName'))]"
        )
        for key in ("maxEventsPerBatch", "preferredBatchSizeInKilobytes"):
            assert destination["properties"][key] == module_properties["destination"]["properties"][key]
        assert props["eventDeliverySchema"] == module_properties["eventDeliverySchema"]
        retry = arm_value(props["retryPolicy"], variables)
        assert retry == {k: defaults[k]["default"] for k in ("maxDeliveryAttempts", "eventTimeToLiveInMinutes")}
        dead_letter = arm_value(props["deadLetterWithResourceIdentity"], variables)
        assert expected["deadLetterIdentity"] == "UserAssigned" == dead_letter["identity"]["type"]
        assert dead_letter["identity"]["userAssignedIdentity"] == "[parameters('eventGridIdentityId')]"
        assert dead_letter["deadLetterDestination"] == {
            "endpointType": "StorageBlob",
            "properties": {
                "resourceId": "[parameters('deadLetterStorageId')]",
                "blobContainerName": "[parameters('deadLetterContainerName')]",
            },
        }
    assert policy_subs["autoheal-vm-health"]["condition"] == "[parameters('enableHealthEvents')]"
    assert not {"condition"} & (
        set(policy_subs["autoheal-scale-set-operations"]) | set(policy_subs["autoheal-vm-failures"])
    )


def test_the_embedded_deployment_creates_the_module_s_topics():
    topics_doc = module_file("eventgrid-topics.bicep")
    module_types = {
        body(t)["properties"]["topicType"]
        for t in topics_doc["resources"].values()
        if t["type"] == "Microsoft.EventGrid/systemTopics"
    }
    inner = nested()["properties"]["template"]
    topics = [r for r in inner["resources"] if r["type"] == "Microsoft.EventGrid/systemTopics"]
    assert {t["properties"]["topicType"] for t in topics} == module_types
    for topic in topics:
        assert topic["location"] == "global" and topic["properties"]["source"] == "[subscription().id]"
        identity = arm_value(topic["identity"], inner["variables"])
        assert identity == {
            "type": "UserAssigned",
            "userAssignedIdentities": {"[parameters('eventGridIdentityId')]": {}},
        }
    (health,) = [t for t in topics if t["properties"]["topicType"].startswith("Microsoft.ResourceNotifications")]
    assert health["condition"] == "[parameters('enableHealthEvents')]"
    # the resource group first, then the nested deployment into it, named from the parent deployment
    group, deployment = template()["resources"]
    assert group["type"] == "Microsoft.Resources/resourceGroups" and group["name"] == "[variables('resourceGroupName')]"
    assert deployment["resourceGroup"] == "[variables('resourceGroupName')]"
    assert "uniqueString(deployment().name)" in deployment["name"]
    assert deployment["properties"]["expressionEvaluationOptions"] == {"scope": "inner"}


# -- least privilege ---------------------------------------------------------------------------------------

WIRING = {
    "Microsoft.Resources/deployments/read",
    "Microsoft.Resources/deployments/write",
    "Microsoft.Resources/deployments/operations/read",
    "Microsoft.Resources/deployments/operationstatuses/read",
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Resources/subscriptions/resourceGroups/write",
    "Microsoft.EventGrid/systemTopics/read",
    "Microsoft.EventGrid/systemTopics/write",
    "Microsoft.EventGrid/systemTopics/eventSubscriptions/read",
    "Microsoft.EventGrid/systemTopics/eventSubscriptions/write",
    "Microsoft.EventGrid/eventSubscriptions/write",
}
HOST = {
    "Microsoft.Web/sites/read",
    "Microsoft.Web/sites/functions/read",
    "Microsoft.Web/sites/functions/write",
    "Microsoft.Storage/storageAccounts/read",
    "Microsoft.ManagedIdentity/userAssignedIdentities/read",
    "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
}


def role_actions(doc: dict[str, Any], name: str) -> set[str]:
    (permission,) = body(doc["resources"][name])["properties"]["permissions"]
    assert not permission["notActions"] and not permission.get("dataActions")
    return set(evaluate(doc, permission["actions"], {}))


def test_the_remediation_role_is_what_the_deployment_writes_and_nothing_more():
    actions = role_actions(policy(), "wiringRole")
    assert actions == WIRING
    assert not [a for a in actions if "*" in a or a.endswith("/delete") or a.startswith("Microsoft.Authorization/")]
    # every type the embedded deployment creates is covered by a write action, and nothing else is writable
    created = {r["type"] for r in template()["resources"]} | {
        r["type"] for r in nested()["properties"]["template"]["resources"]
    }
    writes = {a.removesuffix("/write") for a in actions if a.endswith("/write")}
    as_action = {"Microsoft.Resources/resourceGroups": "Microsoft.Resources/subscriptions/resourceGroups"}
    assert {as_action.get(t, t) for t in created} <= writes
    extra = writes - {as_action.get(t, t) for t in created}
    assert extra == {"Microsoft.EventGrid/eventSubscriptions"}, "only the event-source check Event Grid makes"
    role = body(policy()["resources"]["wiringRole"])["properties"]
    (scope,) = role["assignableScopes"]
    assert "management_group" in json.dumps(scope)
    assert [symbol(r["function"]["parameters"]["resource_name_1"]) for r in details()["roleDefinitionIds"]] == [
        "wiringRole.name"
    ]
    assignment = body(policy()["resources"]["wiringAssignment"])
    assert "scope" not in assignment, "assigned at the management group the policy is assigned to"
    assert symbol(assignment["properties"]["roleDefinitionId"]) == "wiringRole.id"
    assert symbol(assignment["properties"]["principalId"]) == "assignment.identity.principalId"
    policy_assignment = body(policy()["resources"]["assignment"])
    assert policy_assignment["identity"] == {"type": "SystemAssigned"} and policy_assignment["location"] == "location"


def test_outside_the_group_the_identity_gets_three_resources_and_no_more():
    assert role_actions(host(), "hostRole") == HOST
    role = body(host()["resources"]["hostRole"])["properties"]
    assert len(role["assignableScopes"]) == 1 and "resource_group" in json.dumps(role["assignableScopes"])
    assignments = {
        name: body(r)
        for name, r in host()["resources"].items()
        if r["type"] == "Microsoft.Authorization/roleAssignments"
    }
    assert {a["scope"] for a in assignments.values()} == {"functionApp", "storage", "eventGridIdentity"}
    for a in assignments.values():
        assert symbol(a["properties"]["roleDefinitionId"]) == "hostRole.id"
        assert a["properties"]["principalId"] == "principalId"
    (grants,) = modules_using(policy(), "events-policy-host.bicep").values()
    params = body(grants)["params"]
    assert symbol(params["principalId"]) == "assignment.identity.principalId"
    assert "hostSubscriptionId" in json.dumps(body(grants)["scope"])


def test_the_assignment_name_fits_the_management_group_limit():
    """Policy assignment names at management-group scope: at most 24 characters."""
    text = variable(policy(), "assignmentName")
    prefix, take = re.fullmatch(r"([\w-]+)\$\{take\(.*, (\d+)\)\}", text).groups()
    assert len(prefix) + int(take) <= 24
