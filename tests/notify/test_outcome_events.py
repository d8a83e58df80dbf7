"""Outcome events: the real `EventGridPublisherClient` publishing CloudEvents 1.0 to a local topic that checks
the schema and the bearer token; same dedupe and retry policy as the other channels."""

from __future__ import annotations

import logging

import pytest
import requests

from autoheal.notify import Notifier
from autoheal.notify.channels import REGISTRY, ChannelOptions, build_channels
from autoheal.notify.outcome_events import EventGridChannel, event_type
from autoheal.settings import default_settings
from sinks import EventGridTopicSink
from sinks.eventgrid import problems

from .conftest import NOW, State, change, scale_set, timedelta


def test_each_announced_change_is_a_cloudevent_on_the_topic(topic: EventGridTopicSink, make_notifier) -> None:
    notifier = make_notifier(topic=topic)
    changes = [
        change(State.SUCCEEDED, "verifying"),
        change(State.HELD, name="vmss-api", target="3", action="replace-failed-instances", reason_code="protected"),
    ]
    result = notifier.notify(changes, trigger="sweep", correlation_id="corr-7", now=NOW)
    assert result.failures == [] and len(result.delivered) == 2
    [request] = topic.requests
    assert request.headers["authorization"] == "Bearer emulator-token"  # the loopback credential, no key
    assert request.headers["content-type"].startswith("application/cloudevents-batch+json")
    done, held = topic.events
    assert all(problems(e) == [] for e in topic.events)
    assert done["specversion"] == "1.0"
    assert done["type"] == "VmssAutoheal.Remediation.Succeeded"
    assert done["source"] == scale_set()
    assert done["subject"] == "findings/repairs-suspended"
    assert done["correlationid"] == "corr-7"
    assert done["data"]["state"] == "succeeded" and done["data"]["previousState"] == "verifying"
    assert done["data"]["outcome"] == "Done: resumed automatic repairs."
    assert done["data"]["updatedAt"] == "2026-11-23T12:00:00Z"
    assert "etag" not in done["data"] and "notifiedState" not in done["data"]
    assert held["type"] == "VmssAutoheal.Remediation.Held"
    assert held["subject"] == "findings/repairs-suspended/instances/3"
    assert held["data"]["reasonCode"] == "protected"
    assert len({done["id"], held["id"]}) == 2


def test_the_event_id_is_stable_so_a_retried_publish_can_be_deduplicated(topic, make_notifier) -> None:
    topic.fail_next(1, status=503)
    result = make_notifier(topic=topic).notify([change(State.FAILED)], trigger="sweep", correlation_id="c", now=NOW)
    assert result.failures == []
    first, second = (r.json()[0]["id"] for r in topic.requests)
    assert first == second and topic.requests[0].json()[0]["type"] == event_type("failed")


def test_a_throttled_topic_is_retried_with_backoff(topic: EventGridTopicSink, make_notifier, sleeps) -> None:
    topic.fail_next(2, status=429, retry_after=1.5)
    result = make_notifier(topic=topic).notify([change()], trigger="sweep", correlation_id="c", now=NOW)
    assert result.failures == [] and len(topic.events) == 1
    assert sleeps == [1.5, 1.5]  # max(backoff 0.5 / 1.0, Retry-After 1.5)


def test_a_refused_publish_is_not_retried_and_is_logged(topic, make_notifier, sleeps, caplog) -> None:
    topic.fail_next(1, status=400)
    caplog.set_level(logging.ERROR, logger="autoheal.notify")
    result = make_notifier(topic=topic).notify([change()], trigger="sweep", correlation_id="c", now=NOW)
    assert result.delivered == [] and sleeps == []
    assert result.failures[0].startswith("events: ") and "Event Grid HTTP 400" in result.failures[0]
    assert any("notification to events failed" in r.getMessage() for r in caplog.records)


def test_an_announced_state_is_not_published_again_within_the_dedupe_window(topic, make_notifier) -> None:
    announced = change(State.SUCCEEDED, notified_state="succeeded", notified_at=NOW - timedelta(minutes=5))
    result = make_notifier(topic=topic).notify([announced], trigger="sweep", correlation_id="c", now=NOW)
    assert result.suppressed == 1 and topic.requests == []


def test_the_topic_stand_in_checks_the_cloudevents_schema_and_the_auth_header(topic: EventGridTopicSink, tls):
    good = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "time": "2026-11-23T12:00:00Z"}
    assert problems(good) == []
    assert problems({**good, "specversion": "0.3"}) == ["specversion must be '1.0', not '0.3'"]
    assert problems({k: v for k, v in good.items() if k != "id"}) == ["id must be a non-empty string"]
    assert problems({**good, "correlation_id": "x"}) == [
        "extension attribute 'correlation_id' must be 1-20 lower-case letters or digits"
    ]
    assert problems({**good, "time": "yesterday"}) == ["time is not RFC 3339: 'yesterday'"]
    headers = {"Content-Type": "application/cloudevents-batch+json"}

    def post(extra: dict, body: list) -> int:
        return requests.post(topic.endpoint, json=body, headers={**headers, **extra}, verify=tls.ca_file).status_code

    assert post({"aeg-sas-key": "k"}, [good]) == 401  # keys are refused: the app uses Entra ID
    assert post({}, [good]) == 401
    assert post({"Authorization": "Bearer t"}, [{**good, "specversion": "0.3"}]) == 400
    assert post({"Authorization": "Bearer t"}, [good]) == 200 and topic.events == [good]


def test_channels_are_a_registry_built_from_the_settings(topic: EventGridTopicSink) -> None:
    assert list(REGISTRY) == ["teams", "email-acs", "email-smtp", "events"]
    assert build_channels(default_settings(), ChannelOptions()) == []
    settings = default_settings(events_endpoint=topic.endpoint)
    [channel] = Notifier.from_settings(settings).channels
    assert isinstance(channel, EventGridChannel) and channel.min_severity.value == "info"
    assert repr(channel) == f"EventGridChannel(endpoint={topic.endpoint!r})"


@pytest.mark.parametrize("state", list(State))
def test_every_ledger_state_has_an_event_type(state: State) -> None:
    assert event_type(state.value) == f"VmssAutoheal.Remediation.{state.value.title()}"


def test_a_large_sweep_is_published_in_batches_below_the_size_limit(topic: EventGridTopicSink, tls) -> None:
    channel = EventGridChannel(topic.endpoint, verify=tls.ca_file, max_items=4)
    notifier = Notifier([channel], retry_delays=())
    changes = [change(State.PLANNED, name=f"vmss-{n}", mode="observe") for n in range(10)]
    result = notifier.notify(changes, trigger="sweep", correlation_id="c", now=NOW)
    assert result.failures == [] and len(result.delivered) == 10
    assert [len(r.json()) for r in topic.requests] == [4, 4, 2]
    assert all(len(r.body) < 1024 * 1024 for r in topic.requests)
    assert {e["type"] for e in topic.events} == {"VmssAutoheal.Remediation.Planned"}
