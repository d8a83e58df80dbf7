"""Telemetry through OpenTelemetry: named loggers with custom dimensions, metrics, and spans.

Only the OpenTelemetry *API* is imported here (cheap). Whoever owns the process installs the SDK:

- in Azure the Functions worker configures Azure Monitor when `PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY`
  is true: we never call `configure_azure_monitor()` there;
- the CLI calls `configure_for_cli()`, which configures Azure Monitor only when
  `APPLICATIONINSIGHTS_CONNECTION_STRING` is set (the ~0.7 s import happens only then);
- tests install in-memory providers (`use_providers()`), or set the global ones.

Names the alerts and `docs/queries.kql` rely on: decision log messages start with `remediation`; custom
dimensions `scaleSetId`, `findingCode`, `actionCode`, `outcome`, `mode`, `correlationId`, `eventId`,
`reasonCode`; metrics `autoheal.findings`, `autoheal.actions`, `autoheal.held`, `autoheal.sweep.duration`,
`autoheal.sweep.scale_sets`, `autoheal.arm.requests`, `autoheal.arm.throttle_wait`, `autoheal.instances`,
`autoheal.notifications`, `autoheal.events.dropped`, `autoheal.settings.problems`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, TracerProvider

ROOT_LOGGER = "autoheal"
DECISION_PREFIX = "remediation"
INSTRUMENTATION_SCOPE = "autoheal"

# Custom dimensions of decision logs (App Insights `customDimensions`), and the snake_case spellings accepted.
DIMENSIONS = ("scaleSetId", "findingCode", "actionCode", "outcome", "mode", "correlationId", "eventId", "reasonCode")
_ALIASES = {
    "scale_set_id": "scaleSetId",
    "finding_code": "findingCode",
    "action_code": "actionCode",
    "action": "actionCode",
    "correlation_id": "correlationId",
    "event_id": "eventId",
    "reason_code": "reasonCode",
}
# LogRecord attributes `extra=` must not overwrite.
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

_lock = threading.Lock()
_tracer_provider: TracerProvider | None = None
_meter_provider: MeterProvider | None = None
_instruments: tuple[MeterProvider | None, _Instruments] | None = None
_cli_configured = False


# -- providers --------------------------------------------------------------------------------------------


def use_providers(
    *, tracer_provider: TracerProvider | None = None, meter_provider: MeterProvider | None = None
) -> None:
    """Send autoheal's own spans and metrics to these providers instead of the global ones (None: global).

    For tests and tools that cannot replace OpenTelemetry's process-wide providers (they can be set once).
    """
    global _tracer_provider, _meter_provider
    with _lock:
        _tracer_provider = tracer_provider
        _meter_provider = meter_provider


def _tracer() -> trace.Tracer:
    return trace.get_tracer(INSTRUMENTATION_SCOPE, tracer_provider=_tracer_provider)


class _Instruments:
    def __init__(self, meter: metrics.Meter) -> None:
        self.findings = meter.create_counter(
            "autoheal.findings", unit="{finding}", description="Findings by code and severity."
        )
        self.actions = meter.create_counter(
            "autoheal.actions", unit="{action}", description="Remediation decisions by action code and outcome."
        )
        self.held = meter.create_counter(
            "autoheal.held", unit="{decision}", description="Actions held back by a guardrail, by reason code."
        )
        self.sweep_duration = meter.create_histogram(
            "autoheal.sweep.duration", unit="s", description="Wall-clock duration of a sweep."
        )
        self.sweep_scale_sets = meter.create_histogram(
            "autoheal.sweep.scale_sets", unit="{scale set}", description="Scale sets evaluated per sweep."
        )
        self.arm_requests = meter.create_counter(
            "autoheal.arm.requests", unit="{request}", description="ARM requests sent (retries and polls included)."
        )
        self.throttle_wait = meter.create_counter(
            "autoheal.arm.throttle_wait", unit="s", description="Time spent waiting on ARM throttling."
        )
        self.instances = meter.create_gauge(
            "autoheal.instances", unit="{instance}", description="Instances of a scale set by health, as last read."
        )
        self.notifications = meter.create_counter(
            "autoheal.notifications", unit="{message}", description="Notification messages by channel and outcome."
        )
        self.events_dropped = meter.create_counter(
            "autoheal.events.dropped",
            unit="{event}",
            description="Events left alone (malformed, rejected, ignored, duplicate, ...), by outcome and reason code.",
        )
        self.failures = meter.create_counter(
            "autoheal.failures",
            unit="{failure}",
            description="Work that failed and was not lost: history rows, notifications, internal errors, by kind.",
        )
        self.settings_problems = meter.create_counter(
            "autoheal.settings.problems",
            unit="{setting}",
            description="Settings that failed validation at start-up and disabled a channel, by setting name.",
        )


def _metrics() -> _Instruments:
    """The instruments on the current meter provider (rebuilt when `use_providers()` changes it)."""
    provider = _meter_provider
    cached = _instruments
    if cached is None or cached[0] is not provider:
        with _lock:
            cached = _instruments_for(provider)
    return cached[1]


def _instruments_for(provider: MeterProvider | None) -> tuple[MeterProvider | None, _Instruments]:
    global _instruments
    if _instruments is None or _instruments[0] is not provider:
        meter = metrics.get_meter(INSTRUMENTATION_SCOPE, meter_provider=provider)
        _instruments = (provider, _Instruments(meter))  # keeps the provider alive: identity stays meaningful
    return _instruments


# -- logs ---------------------------------------------------------------------------------------------------


def get_logger(name: str) -> logging.Logger:
    """A named logger under `autoheal` (the namespace Azure Monitor collects from)."""
    if name == ROOT_LOGGER or name.startswith(ROOT_LOGGER + "."):
        return logging.getLogger(name)
    return logging.getLogger(f"{ROOT_LOGGER}.{name}")


def dimensions(**dims: Any) -> dict[str, Any]:
    """Normalise custom dimensions: camelCase names, no empty values, attribute-safe values."""
    out: dict[str, Any] = {}
    for key, value in dims.items():
        name = _ALIASES.get(key, key)
        converted = _attribute_value(value)
        if converted is None:
            continue
        if name in _RESERVED:
            name = f"dim_{name}"
        out[name] = converted
    return out


def log_decision(logger: logging.Logger, level: int, message: str, /, **dims: Any) -> None:
    """Log a remediation decision with custom dimensions (`scaleSetId`, `findingCode`, `outcome`, ...).

    The message always starts with "remediation": the alert rules match on it.
    """
    if not message.startswith(DECISION_PREFIX):
        message = f"{DECISION_PREFIX} {message}"
    logger.log(level, message, extra=dimensions(**dims), stacklevel=2)


def _attribute_value(value: Any) -> Any:
    if value is None or value == "":
        return None
    if hasattr(value, "value") and isinstance(value.value, str):  # enums
        return value.value
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [str(_attribute_value(v)) for v in value if v is not None]
        return sorted(items) if isinstance(value, (set, frozenset)) else items
    return str(value)


# -- traces -------------------------------------------------------------------------------------------------


@contextmanager
def span(name: str, /, **attributes: Any) -> Iterator[Span]:
    """A span around one sweep / event, one scale set, or one action; nested spans become its children.

    Exceptions leaving the block are recorded on the span (status ERROR) and re-raised.
    """
    with _tracer().start_as_current_span(name, attributes=dimensions(**attributes)) as current:
        yield current


# -- metrics ------------------------------------------------------------------------------------------------


def record_finding(code: str, severity: str) -> None:
    _metrics().findings.add(1, dimensions(findingCode=code, severity=severity))


def record_action(action: str, outcome: str) -> None:
    """outcome: succeeded | failed | held | planned | verifying."""
    _metrics().actions.add(1, dimensions(actionCode=action, outcome=outcome))


def record_held(reason_code: str) -> None:
    _metrics().held.add(1, dimensions(reasonCode=reason_code or "unspecified"))


def record_sweep(duration_s: float, scale_sets: int, arm_requests: int, throttle_wait_s: float) -> None:
    instruments = _metrics()
    instruments.sweep_duration.record(max(0.0, float(duration_s)))
    instruments.sweep_scale_sets.record(max(0, int(scale_sets)))
    if arm_requests > 0:
        instruments.arm_requests.add(int(arm_requests))
    if throttle_wait_s > 0:
        instruments.throttle_wait.add(float(throttle_wait_s))


def record_instances(scale_set_id: str, counts: Mapping[str, int]) -> None:
    """Instances of one scale set by health as read now: `snapshot.health_counts()` (total, healthy, unhealthy,
    unknown, failed). A gauge: the last value per scale set and health is the current picture."""
    gauge = _metrics().instances
    for health, value in counts.items():
        gauge.set(int(value), dimensions(scaleSetId=scale_set_id, health=health))


def record_notification(channel: str, outcome: str) -> None:
    """outcome: sent | failed."""
    _metrics().notifications.add(1, dimensions(channel=channel, outcome=outcome))


def record_event_dropped(outcome: str, reason_code: str) -> None:
    """An event left alone: outcome malformed | rejected | ignored | duplicate | coalesced | ..."""
    _metrics().events_dropped.add(1, dimensions(outcome=outcome, reasonCode=reason_code or "unspecified"))


def record_failure(kind: str) -> None:
    """kind: history (a history row not appended) | notification (a message not delivered: offered again
    next run) | notified-mark (delivered, not marked) | internal (a bug, recorded once, not retried)."""
    _metrics().failures.add(1, dimensions(kind=kind))


def record_settings_problem(setting: str) -> None:
    _metrics().settings_problems.add(1, dimensions(setting=setting))


# -- configuration ------------------------------------------------------------------------------------------


def enable_azure_sdk_tracing() -> None:
    """Make azure-core emit OpenTelemetry spans (ARM calls show as dependencies). Idempotent."""
    try:
        from azure.core.settings import settings
        from azure.core.tracing.ext.opentelemetry_span import OpenTelemetrySpan
    except ImportError:  # pragma: no cover - azure-core-tracing-opentelemetry is a dependency
        get_logger("telemetry").warning("azure-core-tracing-opentelemetry is not installed: no ARM dependency spans")
        return
    if settings.tracing_implementation() is None:
        settings.tracing_implementation = OpenTelemetrySpan


def worker_configures_telemetry(env: Mapping[str, str] | None = None) -> bool:
    """True inside a Functions host whose Python worker sets up Azure Monitor itself."""
    source = os.environ if env is None else env
    return source.get("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", "").strip().lower() in {"true", "1"}


def configure_for_cli() -> bool:
    """Configure Azure Monitor for a CLI run when APPLICATIONINSIGHTS_CONNECTION_STRING is set.

    Returns True when it configured it now or earlier in this process; never configures twice, and never
    inside the Functions host (the worker owns that).
    """
    global _cli_configured
    if _cli_configured:
        return True
    if worker_configures_telemetry() or not os.environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING", "").strip():
        return False
    try:
        from azure.monitor.opentelemetry import configure_azure_monitor  # ~0.7 s: only when asked for
    except ImportError:
        get_logger("telemetry").warning(
            "APPLICATIONINSIGHTS_CONNECTION_STRING is set but azure-monitor-opentelemetry is not installed"
        )
        return False
    with _lock:
        if _cli_configured:
            return True
        configure_azure_monitor(logger_name=ROOT_LOGGER)
        _cli_configured = True
    enable_azure_sdk_tracing()
    return True
