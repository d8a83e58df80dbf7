"""Spans, metrics and log attributes reach OpenTelemetry exporters with the names the queries rely on."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.trace import StatusCode

from autoheal import telemetry

from .conftest import Otel

ROOT = Path(__file__).resolve().parents[2]
SCALE_SET = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web"


def test_sweep_scale_set_and_action_spans_nest(otel: Otel) -> None:
    with telemetry.span("sweep", correlation_id="c-1", trigger="timer"):
        with (
            telemetry.span("scale set", scale_set_id=SCALE_SET),
            telemetry.span("action", action="resume-automatic-repairs", mode="remediate"),
        ):
            pass
        with telemetry.span("scale set", scale_set_id=SCALE_SET + "2"):
            pass
    spans = {(s.name, s.attributes.get("scaleSetId")): s for s in otel.finished()}
    sweep = spans[("sweep", None)]
    first = spans[("scale set", SCALE_SET)]
    action = spans[("action", None)]
    assert sweep.parent is None
    assert first.parent.span_id == sweep.context.span_id
    assert spans[("scale set", SCALE_SET + "2")].parent.span_id == sweep.context.span_id
    assert action.parent.span_id == first.context.span_id
    assert dict(sweep.attributes) == {"correlationId": "c-1", "trigger": "timer"}
    assert dict(action.attributes) == {"actionCode": "resume-automatic-repairs", "mode": "remediate"}
    assert len({s.context.trace_id for s in otel.finished()}) == 1


def test_an_exception_marks_the_span_failed_and_propagates(otel: Otel) -> None:
    with pytest.raises(RuntimeError), telemetry.span("action", action="retry-delete"):
        raise RuntimeError("ARM said no")
    [span] = otel.finished()
    assert span.status.status_code is StatusCode.ERROR
    assert span.events[0].name == "exception"


def test_metrics_by_code_outcome_and_reason(otel: Otel) -> None:
    telemetry.record_finding("repairs-suspended", "error")
    telemetry.record_finding("repairs-suspended", "error")
    telemetry.record_finding("grace-period", "info")
    telemetry.record_action("resume-automatic-repairs", "succeeded")
    telemetry.record_action("replace-failed-instances", "held")
    telemetry.record_held("storm-brake")
    telemetry.record_sweep(12.5, scale_sets=40, arm_requests=81, throttle_wait_s=2.0)
    telemetry.record_sweep(7.5, scale_sets=40, arm_requests=81, throttle_wait_s=0.0)

    findings = {(a["findingCode"], a["severity"]): p.value for a, p in otel.points("autoheal.findings")}
    assert findings == {("repairs-suspended", "error"): 2, ("grace-period", "info"): 1}
    actions = {(a["actionCode"], a["outcome"]): p.value for a, p in otel.points("autoheal.actions")}
    assert actions == {("resume-automatic-repairs", "succeeded"): 1, ("replace-failed-instances", "held"): 1}
    assert [(a, p.value) for a, p in otel.points("autoheal.held")] == [({"reasonCode": "storm-brake"}, 1)]
    [(_, duration)] = otel.points("autoheal.sweep.duration")
    assert (duration.count, duration.sum, duration.max) == (2, 20.0, 12.5)
    [(_, scale_sets)] = otel.points("autoheal.sweep.scale_sets")
    assert scale_sets.sum == 80
    assert [p.value for _, p in otel.points("autoheal.arm.requests")] == [162]
    assert [p.value for _, p in otel.points("autoheal.arm.throttle_wait")] == [2.0]


def test_instances_by_health_is_a_gauge_of_the_last_read(otel: Otel) -> None:
    telemetry.record_instances(SCALE_SET, {"total": 10, "healthy": 7, "unhealthy": 3})
    telemetry.record_instances(SCALE_SET, {"total": 10, "healthy": 9, "unhealthy": 1})
    values = {a["health"]: p.value for a, p in otel.points("autoheal.instances") if a["scaleSetId"] == SCALE_SET}
    assert values == {"total": 10, "healthy": 9, "unhealthy": 1}


def test_decision_logs_carry_custom_dimensions(otel: Otel) -> None:
    log = telemetry.get_logger("engine")
    assert log.name == "autoheal.engine" and telemetry.get_logger("autoheal.x").name == "autoheal.x"
    telemetry.log_decision(
        log,
        logging.ERROR,
        "remediation failed: resume-automatic-repairs",
        scale_set_id=SCALE_SET,
        finding_code="repairs-suspended",
        action_code="resume-automatic-repairs",
        outcome="failed",
        mode="remediate",
        correlation_id="c-1",
        event_id="evt-9",
        reason_code="",
        attempts=3,
        instance_ids=("1", "2"),
    )
    telemetry.log_decision(log, logging.INFO, "held back: storm brake", outcome="held", reasonCode="storm-brake")
    (first, attributes), (second, held) = otel.log_attributes()
    assert first == "remediation failed: resume-automatic-repairs"
    for key, value in {
        "scaleSetId": SCALE_SET,
        "findingCode": "repairs-suspended",
        "actionCode": "resume-automatic-repairs",
        "outcome": "failed",
        "mode": "remediate",
        "correlationId": "c-1",
        "eventId": "evt-9",
        "attempts": 3,
    }.items():
        assert attributes[key] == value
    assert tuple(attributes["instance_ids"]) == ("1", "2")
    assert "reasonCode" not in attributes  # empty dimensions are left out
    assert second == "remediation held back: storm brake"  # the alert rules match on the prefix
    assert held["reasonCode"] == "storm-brake" and held["outcome"] == "held"


def test_dimension_names_that_collide_with_logrecord_fields_are_kept_apart(otel: Otel) -> None:
    telemetry.log_decision(telemetry.get_logger("engine"), logging.INFO, "remediation x", name="web", message="m")
    [(_, attributes)] = otel.log_attributes()
    assert attributes["dim_name"] == "web" and attributes["dim_message"] == "m"


def test_notifications_emit_spans_and_metrics(otel: Otel) -> None:
    from autoheal.model import Severity
    from autoheal.notify import Change, DeliveryError, Notifier
    from autoheal.remediation.ledger import Record, State

    class Down:
        """A channel whose endpoint answers 503 (the HTTP path itself is covered in tests/notify)."""

        name, max_items, min_severity = "teams", 8, Severity.INFO

        def render(self, message):  # pragma: no cover - not used
            return {}

        def send(self, message):
            raise DeliveryError("HTTP 503", retryable=True)

    notifier = Notifier([Down()], retry_delays=(0,), sleep=lambda s: None)
    record = Record(SCALE_SET, "repairs-suspended", state=State.FAILED, severity="error")
    result = notifier.notify([Change(record, "running", None)], trigger="sweep", correlation_id="c-3")
    assert len(result.failures) == 1
    names = [s.name for s in otel.finished()]
    assert names == ["notify teams", "notify"]
    assert [(a, p.value) for a, p in otel.points("autoheal.notifications")] == [
        ({"channel": "teams", "outcome": "failed"}, 1)
    ]
    errors = [(body, attrs) for body, attrs in otel.log_attributes() if attrs.get("outcome") == "failed"]
    assert errors and errors[0][1]["correlationId"] == "c-3" and errors[0][1]["channel"] == "teams"


def test_azure_sdk_calls_become_child_dependency_spans(global_spans, tls_acs) -> None:
    """azure-core's OpenTelemetry tracing: an SDK call inside our span is its child (a dependency in App Insights)."""
    from azure.communication.email import EmailClient
    from azure.core.settings import settings
    from opentelemetry.trace import SpanKind

    from autoheal.credentials import StaticTokenCredential

    previous = settings.tracing_implementation()
    try:
        telemetry.enable_azure_sdk_tracing()
        telemetry.enable_azure_sdk_tracing()  # idempotent
        client = EmailClient(tls_acs.endpoint, StaticTokenCredential(), connection_verify=tls_acs.ca_file)
        message = {
            "senderAddress": "a@b.example",
            "recipients": {"to": [{"address": "c@d.example"}]},
            "content": {"subject": "s", "plainText": "t"},
        }
        with telemetry.span("sweep", correlation_id="c-4"):
            client.begin_send(message, polling_interval=0).result()
        client.close()
    finally:
        settings.tracing_implementation = previous
    spans = global_spans.get_finished_spans()
    sweep = next(s for s in spans if s.name == "sweep")
    http = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert http, [s.name for s in spans]
    assert all(s.context.trace_id == sweep.context.trace_id for s in http)
    assert {s.attributes.get("http.response.status_code", s.attributes.get("http.status_code")) for s in http} >= {202}


@pytest.fixture
def tls_acs():
    from sinks import AcsEmailSink

    with AcsEmailSink() as sink:
        yield sink


def test_cli_configures_azure_monitor_only_with_a_connection_string(monkeypatch) -> None:
    monkeypatch.delenv("APPLICATIONINSIGHTS_CONNECTION_STRING", raising=False)
    assert telemetry.configure_for_cli() is False
    monkeypatch.setenv(
        "APPLICATIONINSIGHTS_CONNECTION_STRING", "InstrumentationKey=00000000-0000-0000-0000-000000000000"
    )
    monkeypatch.setenv("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", "true")  # the Functions worker owns it
    assert telemetry.configure_for_cli() is False


def test_cold_start_path_does_not_import_azure_monitor_or_the_sdk() -> None:
    code = (
        "import sys, autoheal.telemetry, autoheal.notify, autoheal.notify.teams, autoheal.notify.email;"
        "heavy = [m for m in ('azure.monitor.opentelemetry', 'azure.identity', 'opentelemetry.sdk', 'requests',"
        " 'azure.communication.email') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == ""
