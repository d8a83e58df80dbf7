"""One deployment for a management group (issue 22): three subscriptions under `mg-platform` and one outside it,
swept by the queue-driven app (timer -> Azurite's real Queue service -> the queue-triggered function, invoked
with real azure.functions objects) and by `vmss-autoheal sweep --management-group`.

Each subscription holds the same two scale sets (the names repeat across subscriptions): `web` without automatic
repairs and with one instance failed at provisioning, `api` healthy apart from repairs. A heal is: repairs
enabled on both and the failed instance replaced. The emulator's Compute buckets are per subscription and region
(learn.microsoft.com/azure/virtual-machines/compute-throttling-limits), its journal records every write.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from autoheal import cli, handlers
from autoheal.fanout import SliceMessage, SweepQueue
from autoheal.remediation.ledger import Ledger
from autoheal.runtime import Runtime, set_runtime
from autoheal.settings import Scope, default_settings
from emulator import Emulator, fleetgen
from tests.azurite import storage_connection_string
from tests.queuehost import QueueHost

SUB_A = "aaaaaaaa-1111-4111-8111-111111111111"
SUB_B = "bbbbbbbb-2222-4222-8222-222222222222"
SUB_C = "cccccccc-3333-4333-8333-333333333333"
OUTSIDE = "99999999-9999-4999-8999-999999999999"
IN_SCOPE = (SUB_A, SUB_B, SUB_C)
MG = "mg-platform"
RESILIENT = {"resilient_creation": True, "resilient_deletion": True}


def fleet() -> dict[str, Any]:
    parts = {
        sub: [
            fleetgen.scale_set(
                "web", subscription_id=sub, capacity=3, failed={1: "VMExtensionProvisioningError"}, **RESILIENT
            ),
            fleetgen.scale_set("api", subscription_id=sub, capacity=2, **RESILIENT),
        ]
        for sub in (*IN_SCOPE, OUTSIDE)
    }
    names = {SUB_A: "landing-a", SUB_B: "landing-b", SUB_C: "landing-c", OUTSIDE: "sandbox"}
    return fleetgen.multi_fleet(parts, management_group=MG, members=list(IN_SCOPE), display_names=names)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator.start(fleet()) as instance:
        yield instance


@pytest.fixture
def storage(azurite: str, queue_storage: str) -> str:
    return storage_connection_string(azurite, queue_storage)


@pytest.fixture
def mg_runtime(emu: Emulator, ledger: Ledger, storage: str) -> Iterator[Runtime]:
    settings = default_settings(
        mode="remediate",
        subscription_id="",
        scope=Scope("management-group", MG),
        arm_endpoint=emu.endpoint,
        arm_ca_bundle=emu.ca_bundle,
        sweep_concurrency=4,
        lro_poll_seconds=0,
        compute_read_share=100,  # no pacing inside the (tiny) test fleet; the bench keeps the default share
        storage_connection_string=storage,
        sweep_queue=f"sweep-{uuid.uuid4().hex[:12]}",
    )
    runtime = Runtime(settings, ledger=ledger, gateway_options={"retry_total": 1, "retry_backoff_factor": 0.01})
    set_runtime(runtime)
    yield runtime
    handlers.forget_scope_runtimes(runtime)
    set_runtime(None)


def host_for(runtime: Runtime, app_functions: dict[str, Any], **options: Any) -> QueueHost:
    invoke = app_functions["sweep_slice"].get_user_function()
    return QueueHost(runtime.settings.storage_connection_string, runtime.settings.sweep_queue, invoke, **options)


def tick(app_functions: dict[str, Any]) -> None:
    timer = TimerRequest(past_due=False)
    app_functions["sweep"].get_user_function()(timer)


def healed(emu: Emulator, sub: str, names: tuple[str, ...] = ("web", "api")) -> bool:
    for name in names:
        policy = emu.scale_set("rg-app", name, sub)["properties"].get("automaticRepairsPolicy") or {}
        if not policy.get("enabled"):
            return False
    states = [vm["properties"]["provisioningState"] for vm in emu.instances("rg-app", "web", sub)]
    return "Failed" not in states and len(states) == 3


def writes_by_subscription(emu: Emulator) -> dict[str, int]:
    counts: dict[str, int] = {}
    for write in emu.journal()["writes"]:
        sub = write["path"].split("/")[2].lower()
        counts[sub] = counts.get(sub, 0) + 1
    return counts


def test_the_queue_driven_app_heals_each_subscription_and_never_touches_the_one_outside(emu, mg_runtime, app_functions):
    tick(app_functions)
    fanout = mg_runtime.ledger.load_status("last-fanout")
    assert fanout is not None and fanout["managementGroup"] == MG
    assert [s["subscriptionId"] for s in fanout["subscriptions"]] == list(IN_SCOPE)
    assert [s["name"] for s in fanout["subscriptions"]] == ["landing-a", "landing-b", "landing-c"]
    host = host_for(mg_runtime, app_functions)
    try:
        assert host.drain() == 3
    finally:
        host.close()
    for sub in IN_SCOPE:
        assert healed(emu, sub), sub
    assert not healed(emu, OUTSIDE)
    writes = writes_by_subscription(emu)
    assert set(writes) == set(IN_SCOPE) and OUTSIDE not in writes
    # Every subscription spent its own Compute buckets; the one outside was never even read.
    by_sub = emu.stats()["computeBySubscription"]
    assert set(by_sub) == set(IN_SCOPE)
    scopes = handlers.scope_runtimes(mg_runtime)
    budgets = [scopes.runtime_for(sub).gateway.budget for sub in IN_SCOPE]
    assert len({id(b) for b in budgets}) == 3
    for budget in budgets:
        assert budget.figures()["spent"], "each subscription's sweep spends its own budget"
    # Each slice left its summary in its own ledger partition.
    for sub in IN_SCOPE:
        summary = mg_runtime.ledger.load_status(f"last-sweep|{sub}")
        assert summary is not None and summary["subscriptionId"] == sub and summary["scaleSets"] == 2
    assert mg_runtime.ledger.load_status("last-sweep") is None


def test_status_reports_coverage_spend_and_findings_per_subscription(emu, mg_runtime, app_functions):
    tick(app_functions)
    host = host_for(mg_runtime, app_functions)
    try:
        host.drain()
    finally:
        host.close()
    request = func.HttpRequest("GET", "/api/status", params={}, body=b"")
    body = json.loads(app_functions["status"].get_user_function()(request).get_body())
    scope = body["scope"]
    assert scope["managementGroup"] == MG and scope["lastFanout"]["enqueued"] == 3
    rows = {row["subscriptionId"]: row for row in scope["subscriptions"]}
    assert set(rows) == set(IN_SCOPE)
    for row in rows.values():
        assert row["coverage"]["scaleSets"] == 2 and row["coverage"]["read"] == 2
        assert sum(row["spend"]["computeTokens"].values()) > 0
        assert 0 < row["spend"]["lowestShareLeft"] <= 1
        assert row["findings"]["repairs-disabled"] == 2 and row["findings"]["provisioning-failed"] == 1
    assert {r["subscriptionId"] for r in body["records"]} <= set(IN_SCOPE)


def test_a_redelivered_message_of_a_finished_tick_does_nothing(emu, mg_runtime, app_functions):
    message = SliceMessage(SUB_B, MG, "20261203T000000Z-test", datetime.now(UTC).isoformat(), "landing-b")
    slice_fn = app_functions["sweep_slice"].get_user_function()
    slice_fn(_queue_message(message.to_json()))
    assert healed(emu, SUB_B)
    before = (emu.stats()["requests"], len(emu.journal()["writes"]))
    slice_fn(_queue_message(message.to_json(), dequeue_count=2))
    assert (emu.stats()["requests"], len(emu.journal()["writes"])) == before


def test_a_new_tick_sweeps_again_but_the_ledger_repeats_no_action(emu, mg_runtime, app_functions):
    first = SliceMessage(SUB_C, MG, "tick-1", "", "landing-c")
    second = SliceMessage(SUB_C, MG, "tick-2", "", "landing-c")
    slice_fn = app_functions["sweep_slice"].get_user_function()
    slice_fn(_queue_message(first.to_json()))
    writes = len(emu.journal()["writes"])
    slice_fn(_queue_message(second.to_json()))
    assert len(emu.journal()["writes"]) == writes  # healed already: read again, nothing written


def test_a_slice_for_a_subscription_outside_the_scope_is_left_alone(emu, mg_runtime, app_functions, caplog):
    caplog.set_level(logging.WARNING, logger="autoheal")
    outside = SliceMessage(OUTSIDE, MG, "tick-x", "", "sandbox")
    app_functions["sweep_slice"].get_user_function()(_queue_message(outside.to_json()))
    assert OUTSIDE not in writes_by_subscription(emu) and OUTSIDE not in emu.stats()["computeBySubscription"]
    assert any("no longer in the scope" in r.getMessage() for r in caplog.records)


def test_excluded_subscriptions_are_not_enqueued(emu, mg_runtime, app_functions):
    runtime = Runtime(
        mg_runtime.settings.replace(exclude_subscriptions=(SUB_B,)),
        ledger=mg_runtime.ledger,
        gateway_options=mg_runtime.gateway_options,
    )
    set_runtime(runtime)
    try:
        tick(app_functions)
        fanout = runtime.ledger.load_status("last-fanout")
        assert [s["subscriptionId"] for s in fanout["subscriptions"]] == [SUB_A, SUB_C]
        assert fanout["excluded"] == [SUB_B]
    finally:
        handlers.forget_scope_runtimes(runtime)
        set_runtime(mg_runtime)


def test_a_poison_message_lands_in_the_poison_queue_with_a_log_line(mg_runtime, app_functions, caplog):
    caplog.set_level(logging.ERROR)
    queue = SweepQueue.from_settings(mg_runtime.settings)
    try:
        queue.ensure()
        queue.client.send_message("not a slice")
        host = host_for(mg_runtime, app_functions, max_dequeue_count=5)
        outcomes = [host.run_once() for _ in range(5)]
        host.close()
        assert outcomes == ["failed"] * 4 + ["poisoned"]
        assert queue.depth() == {"queued": 0, "poison": 1}
        assert [m.content for m in queue.poison.peek_messages()] == ["not a slice"]
    finally:
        queue.close()
    assert any("not a sweep slice" in r.getMessage() and "poison" in r.getMessage() for r in caplog.records)


def test_events_from_every_subscription_in_scope_are_evaluated_and_others_rejected(emu, mg_runtime, app_functions):
    from tests.functions.conftest import retarget, to_function_event

    handler = app_functions["on_resource_event"].get_user_function()
    failure = "Microsoft.Resources/examples/event-grid-schema/resource_write_failure.json"
    for sub in (SUB_A, OUTSIDE):
        target = f"/subscriptions/{sub}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachineScaleSets/web"
        handler(to_function_event(retarget(failure, target, event_id=f"ev-{sub}")))
    assert healed(emu, SUB_A, ("web",))  # straight to the evaluation of that subscription's scale set
    assert not healed(emu, OUTSIDE) and OUTSIDE not in writes_by_subscription(emu)
    records = mg_runtime.ledger.all_records()
    assert records and {r.scale_set_id.split("/")[2] for r in records} == {SUB_A}


def test_the_cli_sweeps_a_management_group(emu, ledger, storage, monkeypatch, capsys):
    monkeypatch.setenv("AzureWebJobsStorage", storage)
    monkeypatch.setenv("AUTOHEAL_LEDGER_TABLE", ledger.table_name)
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)
    monkeypatch.setenv("AUTOHEAL_COMPUTE_READ_SHARE", "100")  # no pacing in a tiny fleet
    monkeypatch.setenv("AUTOHEAL_LRO_POLL_SECONDS", "0")
    code = cli.main(
        ["sweep", "--management-group", MG, "--endpoint", emu.endpoint, "--ca-bundle", emu.ca_bundle, "--apply"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    for sub in IN_SCOPE:
        assert healed(emu, sub)
    assert not healed(emu, OUTSIDE) and set(writes_by_subscription(emu)) == set(IN_SCOPE)
    assert f"management group {MG} (remediate): 3 subscription(s)" in out
    for name in ("landing-a", "landing-b", "landing-c"):
        assert name in out
    assert "sandbox" not in out
    code = cli.main(
        [
            "sweep",
            "--management-group",
            MG,
            "--endpoint",
            emu.endpoint,
            "--ca-bundle",
            emu.ca_bundle,
            "--output",
            "json",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and [r["subscriptionId"] for r in report["subscriptions"]] == list(IN_SCOPE)
    for row in report["subscriptions"]:  # observe (no --apply): read everything, nothing left to do
        assert row["coverage"]["read"] == 2 and row["armWrites"] == 0


def test_the_cli_refuses_a_bad_management_group_name(capsys):
    assert cli.main(["sweep", "--management-group", "bad/name"]) == 2
    assert "--management-group bad/name" in capsys.readouterr().err


def _queue_message(body: str, *, dequeue_count: int = 1) -> func.QueueMessage:
    from azure.functions.queue import QueueMessage

    return QueueMessage(id=uuid.uuid4().hex, body=body.encode(), dequeue_count=dequeue_count, pop_receipt="x")
