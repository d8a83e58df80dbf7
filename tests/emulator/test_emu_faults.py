"""The fault plan: throttling with Retry-After, one-shot injections, server errors, latency, and the
platform failures (create timeouts, failing deletes, repairs that do not heal) with resilient retries."""

from __future__ import annotations

import re
import threading

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.core.pipeline.transport import RequestsTransport

from emulator import fleetgen
from emulator.faults import parse_plan
from emulator.testing import compute_client

from .conftest import NOW, Raw, small_fleet


def _vm(emu, instance: str, scale_set: str = "web") -> dict:
    return next(vm for vm in emu.instances("rg-app", scale_set) if vm.get("instanceId", vm["name"]) == instance)


def _provisioning_code(vm: dict) -> str:
    return vm["properties"]["instanceView"]["statuses"][0]["code"]


def test_throttled_reads_get_429_with_retry_after_and_the_sdk_retries(start_emulator, monkeypatch):
    emu = start_emulator(small_fleet(throttle={"reads": {"capacity": 2, "refillPerSecond": 2}}))
    raw = Raw(emu)
    assert raw("GET", raw.vmss()).headers["x-ms-ratelimit-remaining-subscription-reads"] == "1"
    assert raw("GET", raw.vmss()).headers["x-ms-ratelimit-remaining-subscription-reads"] == "0"
    throttled = raw("GET", raw.vmss())
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "1"
    assert throttled.headers["x-ms-ratelimit-remaining-subscription-reads"] == "0"
    assert throttled.json()["error"]["code"] == "SubscriptionRequestsThrottled"
    assert "Please try again after '1' seconds" in throttled.json()["error"]["message"]

    waits: list[float] = []
    real_sleep = RequestsTransport.sleep

    def sleep(transport: RequestsTransport, duration: float) -> None:
        waits.append(duration)
        real_sleep(transport, duration)

    monkeypatch.setattr(RequestsTransport, "sleep", sleep)
    client = compute_client(emu, retry_total=3, retry_backoff_factor=0.01)
    assert client.virtual_machine_scale_sets.get("rg-app", "web").name == "web"
    assert waits and all(wait == 1 for wait in waits)  # the SDK waited out Retry-After, not its own backoff
    stats = emu.stats()
    assert stats["throttled"] >= 2
    assert stats["byOperation"]["VirtualMachineScaleSets_Get"] == stats["reads"]


def test_writes_have_their_own_bucket(start_emulator):
    emu = start_emulator(small_fleet(throttle={"writes": {"capacity": 1, "refillPerSecond": 0.01}}))
    client = compute_client(emu, retry_total=0)
    client.virtual_machine_scale_sets.begin_update("rg-app", "web", {"tags": {"a": "1"}}).result()
    with pytest.raises(HttpResponseError) as error:
        client.virtual_machine_scale_sets.begin_update("rg-app", "web", {"tags": {"a": "2"}})
    assert error.value.status_code == 429
    assert error.value.response.headers["x-ms-ratelimit-remaining-subscription-writes"] == "0"
    client.virtual_machine_scale_sets.get("rg-app", "web")  # reads still flow


def test_remaining_headers_count_down_without_throttling(raw):
    first = int(raw("GET", raw.vmss()).headers["x-ms-ratelimit-remaining-subscription-reads"])
    second = int(raw("GET", raw.vmss()).headers["x-ms-ratelimit-remaining-subscription-reads"])
    assert second < first <= 12000
    write = raw("PATCH", raw.vmss(), json={"tags": {}})
    assert int(write.headers["x-ms-ratelimit-remaining-subscription-writes"]) < 1200


def test_one_shot_injection(start_emulator):
    injection = {
        "method": "PATCH",
        "pathContains": "virtualMachineScaleSets/web",
        "status": 409,
        "code": "OperationNotAllowed",
        "count": 1,
    }
    emu = start_emulator(small_fleet(injections=[injection]))
    client = compute_client(emu)
    with pytest.raises(ResourceExistsError) as error:
        client.virtual_machine_scale_sets.begin_update("rg-app", "web", {"tags": {}})
    assert error.value.error.code == "OperationNotAllowed"
    client.virtual_machine_scale_sets.begin_update("rg-app", "web", {"tags": {}}).result()
    client.virtual_machine_scale_sets.begin_update("rg-app", "jobs", {"tags": {}}).result()
    assert emu.stats()["faultsInjected"] == 1


def test_server_errors_follow_the_seeded_rate(start_emulator):
    def outcomes() -> list[int]:
        emu = start_emulator(small_fleet(serverErrorRate=0.5, seed=7))
        raw = Raw(emu)
        return [raw("GET", raw.vmss()).status_code for _ in range(12)]

    first, second = outcomes(), outcomes()
    assert first == second and set(first) == {200, 500}

    emu = start_emulator(small_fleet(serverErrorRate=1.0))
    client = compute_client(emu, retry_total=0)
    with pytest.raises(HttpResponseError) as error:
        client.virtual_machine_scale_sets.get("rg-app", "web")
    assert error.value.status_code == 500
    assert error.value.error.code == "InternalServerError"
    assert error.value.error.message.startswith("Encountered internal server error. Diagnostic information:")


def test_latency_is_injected_without_serializing_requests(start_emulator):
    """Injected latency is waited out outside every lock: the emulator counts requests waiting at once, so the
    overlap is shown without timing anything on the test's side."""
    emu = start_emulator(small_fleet(latencyMs=500))
    raw = Raw(emu)
    raw("GET", raw.vmss())  # warm the TLS session cache
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def call() -> None:
        session = Raw(emu)
        barrier.wait()
        statuses.append(session("GET", session.vmss()).status_code)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 8
    assert emu.stats()["peakConcurrentDelayed"] >= 2  # serialized requests would never wait together


def test_create_timeout_without_resilient_creation_leaves_a_failed_instance(start_emulator):
    rule = {"scaleSet": "web", "code": "OSProvisioningTimedOut", "times": 1, "attemptSeconds": 300}
    emu = start_emulator(
        fleetgen.fleet(fleetgen.scale_set("web", capacity=1, now=NOW), faults={"createFailures": [rule]})
    )
    emu.clock.freeze()
    client = compute_client(emu)
    client.virtual_machine_scale_sets.begin_scale_out("rg-app", "web", {"capacity": 2}).result()
    assert _vm(emu, "1")["properties"]["provisioningState"] == "Creating"
    emu.clock.advance(300)
    vm = client.virtual_machine_scale_set_vms.get("rg-app", "web", "1", expand="instanceView")
    assert vm.provisioning_state == "Failed"
    status = vm.instance_view.statuses[0]
    assert (status.code, status.level, status.display_status) == (
        "ProvisioningState/failed/OSProvisioningTimedOut",
        "Error",
        "Provisioning failed",
    )
    assert "did not finish in the allotted time" in status.message


def test_resilient_creation_retries_until_the_instance_comes_up(start_emulator):
    fleet = fleetgen.fleet(
        fleetgen.scale_set("web", capacity=1, resilient_creation=True, now=NOW),
        faults={"createFailures": [{"scaleSet": "web", "code": "VMStartTimedOut", "times": 2, "newInstances": 1}]},
    )
    emu = start_emulator(fleet)
    emu.clock.freeze()
    client = compute_client(emu)
    client.virtual_machine_scale_sets.begin_scale_out("rg-app", "web", {"capacity": 3}).result()
    first_vm_id = _vm(emu, "1")["properties"]["vmId"]
    assert _vm(emu, "2")["properties"]["provisioningState"] == "Succeeded"  # only one new instance fails
    emu.clock.advance(300)
    # Resilient create deleted the failed VM and created another: instance 1 is gone, 3 is Creating.
    assert [vm["instanceId"] for vm in emu.instances("rg-app", "web")] == ["0", "2", "3"]
    assert _vm(emu, "3")["properties"]["provisioningState"] == "Creating"
    assert _vm(emu, "3")["properties"]["vmId"] != first_vm_id
    emu.clock.advance(300)
    assert [vm["instanceId"] for vm in emu.instances("rg-app", "web")] == ["0", "2", "4"]
    emu.clock.advance(300)
    assert _vm(emu, "4")["properties"]["provisioningState"] == "Succeeded"
    assert _vm(emu, "4")["properties"]["instanceView"]["vmHealth"]["status"]["code"] == "HealthState/healthy"
    assert emu.scale_set("rg-app", "web")["sku"]["capacity"] == 3  # the scale-out counts once


def test_resilient_creation_gives_up_after_5_retries_and_30_minutes(start_emulator):
    fleet = fleetgen.fleet(
        fleetgen.scale_set("web", capacity=1, resilient_creation=True, now=NOW),
        faults={"createFailures": [{"scaleSet": "web", "times": 6}]},
    )
    emu = start_emulator(fleet)
    emu.clock.freeze()
    compute_client(emu).virtual_machine_scale_sets.begin_scale_out("rg-app", "web", {"capacity": 2}).result()
    emu.clock.advance(1799)
    assert [vm["properties"]["provisioningState"] for vm in emu.instances("rg-app", "web")] == ["Succeeded", "Creating"]
    emu.clock.advance(1)
    last = emu.instances("rg-app", "web")[-1]
    assert last["instanceId"] == "6"  # instance 1 and its five replacements 2..6
    assert _provisioning_code(last) == "ProvisioningState/failed/OSProvisioningTimedOut"


def test_failing_delete_ends_the_operation_failed(start_emulator):
    fleet = fleetgen.fleet(
        fleetgen.scale_set("web", capacity=2, now=NOW),
        faults={"deleteFailures": [{"scaleSet": "web", "instances": ["1"], "times": 1}]},
    )
    emu = start_emulator(fleet)
    client = compute_client(emu)
    poller = client.virtual_machine_scale_sets.begin_delete_instances("rg-app", "web", {"instanceIds": ["1"]})
    with pytest.raises(HttpResponseError) as error:
        poller.result()
    assert error.value.error.code == "InternalExecutionError"
    assert poller.status() == "Failed"
    assert _provisioning_code(_vm(emu, "1")) == "ProvisioningState/failed/InternalExecutionError"
    assert emu.scale_set("rg-app", "web")["sku"]["capacity"] == 2
    client.virtual_machine_scale_set_vms.begin_delete("rg-app", "web", "1").result()  # the retry works
    assert [vm["instanceId"] for vm in emu.instances("rg-app", "web")] == ["0"]


def test_resilient_deletion_retries_with_backoff(start_emulator):
    fleet = fleetgen.fleet(
        fleetgen.scale_set("web", capacity=2, resilient_deletion=True, now=NOW),
        faults={"deleteFailures": [{"scaleSet": "web", "times": 2, "backoffSeconds": 60}]},
    )
    emu = start_emulator(fleet)
    emu.clock.freeze()
    client = compute_client(emu)
    client.virtual_machine_scale_sets.begin_delete_instances("rg-app", "web", {"instanceIds": ["1"]}).result()

    def state() -> tuple[str | None, object]:
        vm = client.virtual_machine_scale_set_vms.get("rg-app", "web", "1", expand="resiliencyView")
        return vm.provisioning_state, vm.resilient_vm_deletion_status

    # Between attempts the VM "alternates between a provisioning state of Deleting and Failed"
    # (azure-compute-docs resilient-vm-create-delete.md): Failed after an attempt, Deleting while one runs.
    assert state() == ("Failed", "InProgress")
    emu.clock.advance(30)
    assert state() == ("Deleting", "InProgress")
    emu.clock.advance(30)  # first retry fails too
    assert state() == ("Failed", "InProgress")
    emu.clock.advance(60)
    assert state() == ("Deleting", "InProgress")
    emu.clock.advance(60)  # second retry succeeds
    assert [vm["instanceId"] for vm in emu.instances("rg-app", "web")] == ["0"]
    assert emu.scale_set("rg-app", "web")["sku"]["capacity"] == 1


def test_resilient_deletion_fails_after_5_retries(start_emulator):
    fleet = fleetgen.fleet(
        fleetgen.scale_set("web", capacity=2, resilient_deletion=True, now=NOW),
        faults={"deleteFailures": [{"scaleSet": "web", "instances": ["1"], "times": 6}]},
    )
    emu = start_emulator(fleet)
    emu.clock.freeze()
    client = compute_client(emu)
    client.virtual_machine_scale_set_vms.begin_delete("rg-app", "web", "1", force_deletion=True).result()
    emu.clock.advance(60 + 120 + 240 + 480 - 1)
    assert _vm(emu, "1")["properties"]["resilientVMDeletionStatus"] == "InProgress"
    emu.clock.advance(1 + 960)
    listed = {vm.instance_id: vm for vm in client.virtual_machine_scale_set_vms.list("rg-app", "web")}
    assert listed["1"].resilient_vm_deletion_status == "Failed"
    assert listed["1"].provisioning_state == "Failed"
    assert listed["0"].resilient_vm_deletion_status == "Enabled"


def test_repairs_that_do_not_heal(start_emulator):
    fleet = fleetgen.fleet(
        fleetgen.scale_set("web", capacity=3, unhealthy=[1, 2]),
        faults={"unhealthyAfterRepair": [{"scaleSet": "web", "instances": ["1"], "times": 1}]},
    )
    emu = start_emulator(fleet)
    client = compute_client(emu)

    def health(instance: str) -> str:
        return _vm(emu, instance)["properties"]["instanceView"]["vmHealth"]["status"]["code"]

    client.virtual_machine_scale_sets.begin_restart("rg-app", "web", {"instanceIds": ["1", "2"]}).result()
    assert (health("1"), health("2")) == ("HealthState/unhealthy", "HealthState/healthy")
    client.virtual_machine_scale_set_vms.begin_restart("rg-app", "web", "1").result()
    assert health("1") == "HealthState/healthy"


def test_replacements_can_stay_unhealthy_too(start_emulator):
    emu = start_emulator(
        fleetgen.fleet(fleetgen.scale_set("web", capacity=1), faults={"unhealthyAfterRepair": [{"scaleSet": "web"}]})
    )
    compute_client(emu).virtual_machine_scale_sets.begin_scale_out("rg-app", "web", {"capacity": 2}).result()
    assert _vm(emu, "1")["properties"]["instanceView"]["vmHealth"]["status"]["code"] == "HealthState/unhealthy"


def test_faults_can_be_set_at_run_time(emu, client):
    emu.set_faults(
        {"injections": [{"operation": "VirtualMachineScaleSets_Get", "status": 503, "code": "ServiceUnavailable"}]}
    )
    with pytest.raises(HttpResponseError) as error:
        compute_client(emu, retry_total=0).virtual_machine_scale_sets.get("rg-app", "web")
    assert error.value.status_code == 503
    raw = Raw(emu)
    response = raw.session.post(
        f"{emu.endpoint}/_emulator/faults", json={"latencyMs": 0}, verify=emu.ca_bundle, timeout=5
    )
    assert response.status_code == 200
    assert client.virtual_machine_scale_sets.get("rg-app", "web").name == "web"


def test_fault_plan_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown fault plan keys"):
        parse_plan({"latency": 50})
    with pytest.raises(ValueError, match="createFailures code"):
        parse_plan({"createFailures": [{"scaleSet": "web", "code": "Boom"}]})


@pytest.mark.parametrize(
    ("plan", "says"),
    [
        ({"computeBuckets": {"HighCostGetVMResource": {"remaining": 1}}}, "unknown Compute bucket"),  # no such level
        ({"computeBuckets": {"GetVMScaleSetResource": 3}}, "needs {'remaining': n}"),
        ({"concurrentWrites": "queue"}, "concurrentWrites must be one of"),
    ],
)
def test_bad_compute_plan_keys_are_explained(plan, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        parse_plan(plan)
