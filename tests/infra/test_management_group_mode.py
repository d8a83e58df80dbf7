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

from autoheal.settings import load_settings
from tests.infra.bicep import APP, INFRA, body, main, mentions, module_file, modules_using, parsed, resolve, variable


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
    (topics,) = modules_using(main(), "app/eventgrid-topics.bicep").values()
    assert topics["config"]["condition"] == "deploySubscriptionEvents"
    for module in modules_using(main(), "app/event-subscription.bicep").values():
        assert mentions(module["config"]["condition"], "deploySubscriptionEvents")


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


def test_each_listed_subscription_gets_its_topic_and_the_same_event_subscriptions():
    (events,) = modules_using(mg(), "app/subscription-events.bicep").values()
    assert events["config"]["loop_type"]["detail"] == {"item_name": "subscriptionId", "array_name": "subscriptionIds"}
    config = loop_body(events)
    assert mentions(config["scope"], "subscriptionId")
    params = config["params"]
    for name in ("resourceEventTypes", "vmFailureEventTypes", "resourceEventFilters", "vmFailureEventFilters"):
        assert params[name] == name
        assert variable(mg(), name) == variable(main(), name), f"{name}: main-mg.bicep and main.bicep differ"
    for name in ("scaleSetOperationPrefix", "vmOperationPrefix"):
        assert variable(mg(), name) == variable(main(), name)
    assert variable(mg(), "eventFunctionName") == variable(main(), "eventFunctionName") == "on_resource_event"
    assert mentions(params["functionAppId"], "AZURE_FUNCTION_APP_ID")
    module = parsed(APP / "subscription-events.bicep")
    assert module["globals"]["scope"]["value"] == "subscription"
    (topics,) = modules_using(module, "eventgrid-topics.bicep").values()
    assert body(topics)["params"]["createResourcesTopic"] is True
    subscriptions = modules_using(module, "event-subscription.bicep")
    assert {body(m)["params"]["subscriptionName"] for m in subscriptions.values()} == {
        "autoheal-scale-set-operations",
        "autoheal-vm-failures",
    }
    for m in subscriptions.values():
        assert m["config"]["condition"] == "deployEventSubscriptions"


def test_the_app_may_use_its_queue_in_management_group_mode():
    (storage,) = modules_using(main(), "app/storage.bicep").values()
    assert mentions(body(storage)["params"]["queueAccess"], "autohealScope")
    text = (APP / "storage.bicep").read_text()
    assert "974c5e8b-45b9-4653-ba55-5f855dd0fb88" in text  # Storage Queue Data Contributor
