"""Slice messages of the management-group fan-out (autoheal/fanout.py) and ids naming a subscription, on plain data."""

from __future__ import annotations

import json

import pytest

from autoheal.fanout import BadSliceMessage, SliceMessage, new_tick
from autoheal.scope import subscription_of

SUB = "AAAAAAAA-1111-4111-8111-111111111111"
VMSS = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web"


def test_a_slice_message_round_trips_and_lower_cases_the_subscription():
    message = SliceMessage(SUB, "mg-platform", new_tick(), "2026-12-03T00:00:00Z", "landing-a")
    again = SliceMessage.from_json(message.to_json())
    assert again.subscription_id == SUB.lower()
    assert (again.management_group, again.tick, again.name) == ("mg-platform", message.tick, "landing-a")


@pytest.mark.parametrize(
    "body, words",
    [
        ("not json", "not JSON"),
        ("[]", "not a JSON object"),
        (json.dumps({"version": 2, "subscriptionId": SUB, "tick": "t"}), "version 2"),
        (json.dumps({"version": 1, "subscriptionId": "prod", "tick": "t"}), "is not a GUID"),
        (json.dumps({"version": 1, "subscriptionId": SUB}), "no tick"),
        (b"\xff\xfe", "not JSON"),
    ],
)
def test_what_is_not_a_slice_is_refused_with_a_reason(body, words):
    with pytest.raises(BadSliceMessage, match=words):
        SliceMessage.from_json(body)


def test_ticks_sort_by_time_and_differ_within_a_second():
    first, second = new_tick(), new_tick()
    assert first != second and first[:16] == second[:16]


@pytest.mark.parametrize(
    "text, sub",
    [
        (VMSS, SUB.lower()),
        (f"/subscriptions/{SUB}", SUB.lower()),
        ("/subscriptions/not-a-guid/resourceGroups/rg", ""),
        ("", ""),
    ],
)
def test_the_subscription_an_id_names(text, sub):
    assert subscription_of(text) == sub
