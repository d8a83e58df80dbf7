"""docs/queries.kql stays in step with the names the code emits."""

from __future__ import annotations

import re
from pathlib import Path

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from autoheal import telemetry

QUERIES = Path(__file__).resolve().parents[2] / "docs" / "queries.kql"
TABLES = {"traces", "customMetrics", "dependencies", "requests"}


def queries() -> list[str]:
    text = "\n".join(line for line in QUERIES.read_text().splitlines() if not line.lstrip().startswith("//"))
    return [q.strip() for q in re.split(r"\n\s*\n", text) if q.strip()]


def emitted_metric_names() -> set[str]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    telemetry.use_providers(meter_provider=provider)
    try:
        telemetry.record_finding("f", "info")
        telemetry.record_action("a", "succeeded")
        telemetry.record_held("r")
        telemetry.record_sweep(1.0, 1, 1, 1.0)
        telemetry.record_instances("/s", {"unhealthy": 1})
        telemetry.record_notification("teams", "sent")
        data = reader.get_metrics_data()
    finally:
        telemetry.use_providers()
        provider.shutdown()
    return {m.name for r in data.resource_metrics for s in r.scope_metrics for m in s.metrics}


def test_every_query_starts_with_a_table_and_balances_its_brackets() -> None:
    found = queries()
    assert len(found) >= 5
    for query in found:
        assert query.split("\n", 1)[0].strip() in TABLES, query
        for opening, closing in ("()", "[]", "{}"):
            assert query.count(opening) == query.count(closing), query
        assert query.count('"') % 2 == 0, query


def test_metric_names_and_dimensions_in_the_queries_are_the_emitted_ones() -> None:
    text = QUERIES.read_text()
    used = set(re.findall(r'"(autoheal\.[a-z_.]+)"', text))
    assert used and used <= emitted_metric_names()
    dims = set(re.findall(r"customDimensions\.(\w+)", text))
    known = set(telemetry.DIMENSIONS) | {"severity", "health", "channel", "payloadId"}
    assert dims <= known, dims - known
    assert 'message startswith "remediation"' in text and telemetry.DECISION_PREFIX == "remediation"
