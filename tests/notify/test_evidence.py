"""Evidence in words: the rules' camelCase JSON becomes facts a person reads (pure functions, plain data)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from autoheal.notify.evidence import MAX_FACTS, label, plain, readable, when


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "not set"),
        ("", "not set"),
        (True, "yes"),
        (False, "no"),
        ([], "none"),
        (["2", "5"], "2, 5"),
        ({"present": True, "resilientVMCreationPolicy": None}, "present yes"),
        (datetime(2026, 11, 23, 10, 0, tzinfo=UTC), "2026-11-23 10:00 UTC"),
        (42, "42"),
    ],
)
def test_plain_never_shows_none_or_json(value, text) -> None:
    assert plain(value) == text


def test_labels_and_times_read_as_words() -> None:
    assert label("lastStatusChangeTime") == "Last status change time"
    assert label("minimumApiVersion") == "Minimum api version"
    assert label("resilientVMCreationPolicy") == "Resilient VM creation policy"
    assert when("2026-11-23T10:00:00Z") == "2026-11-23 10:00 UTC"
    assert when("not a time") == "not a time"


def test_known_keys_get_sentences_and_unknown_ones_a_label() -> None:
    facts = dict(
        readable(
            {
                "serviceName": "AutomaticRepairs",  # says nothing: left out
                "serviceState": "Suspended",
                "lastStatusChangeTime": "2026-11-23T10:00:00Z",
                "statusesSummary": {
                    "ProvisioningState/failed/OSProvisioningTimedOut": 1,
                    "ProvisioningState/succeeded": 3,
                },
                "resiliencyPolicy": {"present": True, "resilientVMCreationPolicy": False},
                "waitingForResilientCreate": [],
                "platformRetrying": ["4"],
            }
        )
    )
    assert facts == {
        "Repairs service": "Suspended",
        "Service state since": "2026-11-23 10:00 UTC",
        "Provisioning states": "1 failed/OSProvisioningTimedOut, 3 succeeded",
        "Resiliency policy": "resilient create off",
        "Azure still retrying the create": "none",
        "Azure still retrying": "4",
    }


def test_many_instances_and_many_facts_are_cut_short() -> None:
    instances = [{"instanceId": str(n), "name": f"vm_{n}", "provisioningState": "Failed"} for n in range(9)]
    [(name, text)] = readable({"instances": instances})
    assert name == "Instances" and text.endswith("; and 6 more") and text.startswith("vm_0 (Failed)")
    assert len(readable({f"k{n}": n for n in range(20)})) == MAX_FACTS


def test_odd_evidence_falls_back_to_the_generic_form() -> None:
    assert readable({"health": "unknown"}) == (("Health", "unknown"),)
    assert readable({"instances": "3"}) == (("Instances", "3"),)
