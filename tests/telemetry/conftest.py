"""OpenTelemetry SDK providers with in-memory exporters, installed for one test at a time."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from autoheal import telemetry


@dataclass
class Otel:
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    logs: InMemoryLogRecordExporter

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        """(attributes, data point) of metric `name` from the autoheal meter."""
        data = self.metrics.get_metrics_data()
        out: list[tuple[dict[str, Any], Any]] = []
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        out += [(dict(p.attributes or {}), p) for p in metric.data.data_points]
        return out

    def log_attributes(self) -> list[tuple[str, dict[str, Any]]]:
        return [(str(r.log_record.body), dict(r.log_record.attributes or {})) for r in self.logs.get_finished_logs()]


@pytest.fixture
def otel() -> Iterator[Otel]:
    from opentelemetry.instrumentation.logging.handler import LoggingHandler  # what Azure Monitor attaches

    spans, reader, logs = InMemorySpanExporter(), InMemoryMetricReader(), InMemoryLogRecordExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    meter_provider = MeterProvider(metric_readers=[reader])
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    handler = LoggingHandler(level=logging.DEBUG, logger_provider=logger_provider)
    root = logging.getLogger(telemetry.ROOT_LOGGER)
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    telemetry.use_providers(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        yield Otel(spans, reader, logs)
    finally:
        telemetry.use_providers()
        root.removeHandler(handler)
        root.setLevel(old_level)
        tracer_provider.shutdown()
        meter_provider.shutdown()
        logger_provider.shutdown()


@pytest.fixture(scope="session")
def _global_spans() -> InMemorySpanExporter:
    """An exporter on OpenTelemetry's process-wide tracer provider (it can be set only once per process)."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        trace.set_tracer_provider(TracerProvider())
        provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
def global_spans(_global_spans: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    _global_spans.clear()
    yield _global_spans
    _global_spans.clear()
