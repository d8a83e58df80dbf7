"""The management-group mode's Bicep (infra/main-mg.bicep and its modules) agrees with the code and with the
subscription mode: the app deployed with AUTOHEAL_SCOPE naming the group; the custom role defined and assigned at
the management group with exactly one management group in assignableScopes and no DataActions
(learn.microsoft.com/azure/role-based-access-control/custom-roles, "Custom role limits") and no action the
subscription mode does not grant; in each listed subscription a Microsoft.Resources.Subscriptions system topic and
the same event subscriptions as main.bicep, delivering to the one function app. Both modes are also parsed and
run through checkov by test_parse.py / test_checkov.py (they take every file under infra/)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from autoheal import events as handler
from autoheal.settings import load_settings
from tests.infra.bicep import (
    APP,
    INFRA,
    body,
    deployed,
    evaluate,
    main,
    mentions,
    module_env,
    module_file,
    modules_using,
    parameter_values,
    parsed,
    resolve,
    variable,
)


def mg() -> dict[str, Any]:
    return parsed(INFRA / "main-mg.bicep")


def loop_body(module: dict[str, Any]) -> dict[str, Any]:
    config = module["config"]
    return config["config"] if "loop_type" in config else body(module)


def role_actions(doc: dict[str, Any], name: str) -> list[str]:
    permissions = body(doc["resources"][name])["properties"]["permissions"]
    (entry,) = permissions
    actions = resolve(doc, entry["actions"])
    if isinstance(actions, dict):  # concat(readActions, writeActions, linkedActions)
        parts = list(actions["function"]["parameters"].values())
        return [a for part in parts for a in variable(doc, part)]
    return list(actions)


def test_main_mg_is_management_group_scoped_and_deploys_the_app_into_the_host_subscription():
    assert mg()["globals"]["scope"]["value"] == "managementGroup"
    (app,) = modules_using(mg(), "main.bicep").values()
    config = body(app)
    assert mentions(config["scope"], "hostSubscriptionId")
    params = config["params"]
    assert params["deploySubscriptionRole"] is False and params["deploySubscriptionEvents"] is False
    scope = variable(mg(), "scope")
    assert scope == "/providers/Microsoft.Management/managementGroups/${managementGroup().name}"
    assert params["autohealScope"] == "scope"
    # the app setting the code reads accepts exactly that form
    assert (
        load_settings({"AUTOHEAL_SCOPE": scope.replace("${managementGroup().name}", "mg-x")}).management_group == "mg-x"
    )


def test_subscription_mode_skips_its_role_and_topics_only_when_told():
    params = main()["parameters"]
    assert params["deploySubscriptionRole"]["default"] is True
    assert params["deploySubscriptionEvents"]["default"] is True
    (role,) = modules_using(main(), "app/remediator-role.bicep").values()
    assert role["config"]["condition"] == "deploySubscriptionRole"
    (events,) = modules_using(main(), "app/events.bicep").values()
    assert events["config"]["condition"] == "deploySubscriptionEvents"
    assert not modules_using(main(), "app/eventgrid-topics.bicep")
    assert not modules_using(main(), "app/event-subscription.bicep")


def test_the_role_lives_at_the_management_group_with_one_assignable_scope_and_no_data_actions():
    doc = module_file("remediator-role-mg.bicep")
    assert doc["globals"]["scope"]["value"] == "managementGroup"
    for name in ("remediator", "observer"):
        props = body(doc["resources"][name])["properties"]
        assert props["type"] == "CustomRole"
        (scope,) = props["assignableScopes"]  # only one management group may be listed
        assert "management_group" in json.dumps(scope)
        for permission in props["permissions"]:
            assert not permission.get("dataActions"), "DataActions can't be assigned at management-group scope"
    assignment = body(doc["resources"]["assignment"])
    assert "scope" not in assignment, "assigned at the management group the module deploys to"
    (module,) = modules_using(mg(), "app/remediator-role-mg.bicep").values()
    assert "scope" not in body(module) and mentions(body(module)["params"], "AZURE_APP_PRINCIPAL_ID")


def test_the_management_group_role_grants_exactly_what_the_subscription_role_grants():
    sub_role, mg_role = module_file("remediator-role.bicep"), module_file("remediator-role-mg.bicep")
    for name in ("remediator", "observer"):
        assert sorted(role_actions(mg_role, name)) == sorted(role_actions(sub_role, name)), name
        assert not [a for a in role_actions(mg_role, name) if "*" in a]


def test_each_listed_subscription_gets_the_shared_event_grid_module():
    (wrapper,) = modules_using(mg(), "app/subscription-events.bicep").values()
    assert wrapper["config"]["loop_type"]["detail"] == {"item_name": "subscriptionId", "array_name": "subscriptionIds"}
    config = loop_body(wrapper)
    assert mentions(config["scope"], "subscriptionId")
    assert mentions(config["params"]["functionAppId"], "AZURE_FUNCTION_APP_ID")
    module = parsed(APP / "subscription-events.bicep")
    assert module["globals"]["scope"]["value"] == "subscription"
    (events,) = modules_using(module, "events.bicep").values()
    assert body(events)["scope"] == "rg" and "condition" not in events["config"]
    # one copy of the contract: neither top-level file declares event types of its own any more
    for doc in (main(), mg()):
        assert not {"resourceEventTypes", "vmFailureEventTypes", "healthEventTypes"} & set(doc.get("variables", {}))
    assert variable(module_file("events.bicep"), "eventFunctionName") == "on_resource_event"


# -- both modes deploy the same Event Grid plumbing per subscription ------------------------------------

DEPLOYMENT = {"environmentName": "prod", "location": "westeurope"}
WATCHED = "22222222-2222-4222-8222-222222222222"


def host_app_env(env: dict[str, Any]) -> dict[str, Any]:
    """main.bicep's parameters when main-mg.bicep deploys it into the host subscription."""
    (app,) = modules_using(mg(), "main.bicep").values()
    return parameter_values(main(), module_env(mg(), app, env))


def event_grid_of_one_subscription(mode: str, given: dict[str, Any]) -> dict[str, Any]:
    """What a deployment of `mode` with parameters `given` creates in one watched subscription: the system topics
    created and, per event subscription name, its event types, filters, endpoint and dead-lettering (module
    outputs as 'ref:module.outputs.x' symbols of main.bicep, the app's deployment, in both modes)."""
    if mode == "subscription":
        env = parameter_values(main(), DEPLOYMENT | given)
        (module,) = modules_using(main(), "app/events.bicep").values()
        if not deployed(main(), module, env):
            return {}
        passed = module_env(main(), module, env)
    else:
        env = parameter_values(mg(), DEPLOYMENT | {"hostSubscriptionId": "host", "subscriptionIds": [WATCHED]} | given)
        (wrapper_module,) = modules_using(mg(), "app/subscription-events.bicep").values()
        wrapper = module_file("subscription-events.bicep")
        wrapper_env = parameter_values(wrapper, module_env(mg(), wrapper_module, env | {"subscriptionId": WATCHED}))
        (module,) = modules_using(wrapper, "events.bicep").values()
        passed = module_env(wrapper, module, wrapper_env)
        app_env = host_app_env(env)
        assert not deployed(main(), modules_using(main(), "app/events.bicep")["events"], app_env), (
            "the host subscription's app deployment must not add a second set of topics"
        )

        def through_app(value: Any) -> Any:  # app.outputs.X (main-mg.bicep) → what main.bicep's output X is
            if isinstance(value, str) and value.startswith("ref:app.outputs."):
                return evaluate(main(), main()["outputs"][value.removeprefix("ref:app.outputs.")]["value"], app_env)
            return value

        passed = {k: through_app(v) for k, v in passed.items()}
    doc = module_file("events.bicep")
    events_env = parameter_values(doc, passed)
    (topics,) = modules_using(doc, "eventgrid-topics.bicep").values()
    topic_params = module_env(doc, topics, events_env)
    found: dict[str, Any] = {
        "topics": {"resources": topic_params["createResourcesTopic"], "health": topic_params["createHealthTopic"]}
    }
    for module in modules_using(doc, "event-subscription.bicep").values():
        if deployed(doc, module, events_env):
            params = module_env(doc, module, events_env)
            found[params.pop("subscriptionName")] = params
    return found


@pytest.mark.parametrize("health", [False, True], ids=["default", "enableHealthEvents"])
def test_both_modes_deploy_the_same_event_subscriptions_per_subscription(health):
    given = {"deployEventSubscriptions": True, "enableHealthEvents": health}
    subscription_mode = event_grid_of_one_subscription("subscription", given)
    mg_mode = event_grid_of_one_subscription("management-group", given)
    assert mg_mode == subscription_mode
    names = {"autoheal-scale-set-operations", "autoheal-vm-failures"} | ({"autoheal-vm-health"} if health else set())
    assert set(subscription_mode) - {"topics"} == names
    assert subscription_mode["topics"] == {"resources": True, "health": health}
    for params in (v for k, v in mg_mode.items() if k != "topics"):
        assert params["functionAppId"] == "ref:functionApp.outputs.id" and params["functionName"] == "on_resource_event"
        assert params["deadLetterStorageId"] == "ref:storage.outputs.id"
        assert params["eventGridIdentityId"] == "ref:identity.outputs.eventGridIdentityId"
        assert params["deadLetterIdentity"] == "UserAssigned"
    assert mg_mode["autoheal-scale-set-operations"]["includedEventTypes"] == list(handler.RESOURCE_EVENT_TYPES)
    assert mg_mode["autoheal-vm-failures"]["includedEventTypes"] == list(handler.VM_FAILURE_EVENT_TYPES)
    if health:
        assert mg_mode["autoheal-vm-health"]["includedEventTypes"] == list(handler.HEALTH_EVENT_TYPES)


def test_step_one_deploys_the_topics_and_no_event_subscription_in_either_mode():
    for mode in ("subscription", "management-group"):
        assert event_grid_of_one_subscription(mode, {}) == {"topics": {"resources": True, "health": False}}, mode


def test_the_comparison_sees_a_difference_between_the_modes():
    """The evaluator is not blind: main.bicep told not to deploy its own events deploys none, and main-mg.bicep
    with health events on differs from main.bicep with them off."""
    assert event_grid_of_one_subscription("subscription", {"deploySubscriptionEvents": False}) == {}
    on = event_grid_of_one_subscription(
        "management-group", {"deployEventSubscriptions": True, "enableHealthEvents": True}
    )
    off = event_grid_of_one_subscription("subscription", {"deployEventSubscriptions": True})
    assert on != off and set(on) - set(off) == {"autoheal-vm-health"}


def test_the_app_may_use_its_queue_in_management_group_mode():
    (storage,) = modules_using(main(), "app/storage.bicep").values()
    assert mentions(body(storage)["params"]["queueAccess"], "autohealScope")
    text = (APP / "storage.bicep").read_text()
    assert "974c5e8b-45b9-4653-ba55-5f855dd0fb88" in text  # Storage Queue Data Contributor
