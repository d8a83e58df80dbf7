"""Where Azure is hard, the emulator is too: each test names the Microsoft source of the behaviour it checks
and asserts it through the real SDK client (azure-mgmt-compute over HTTPS)."""

from __future__ import annotations

import json
import re

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.core.rest import HttpRequest

import emulator.ratelimit
from emulator import compute_limits, fleetgen
from emulator.testing import compute_client

from .conftest import NOW, small_fleet

THROTTLING_DOC = "https://learn.microsoft.com/azure/virtual-machines/compute-throttling-limits"


class Headers:
    """Collects x-ms-ratelimit-remaining-resource of every answer (raw_response_hook)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, pipeline_response) -> None:  # type: ignore[no-untyped-def]
        self.seen.append(pipeline_response.http_response.headers.get("x-ms-ratelimit-remaining-resource", ""))


def test_the_policy_table_is_the_documented_one():
    """Compute throttling limits (learn.microsoft.com/azure/virtual-machines/compute-throttling-limits): refill
    per minute / capacity per resource and per subscription; VM High Cost Get is subscription-level only."""
    rows = {row["policy"]: row for row in compute_limits.table()}
    assert rows["HighCostGetVMScaleSet"]["resource"] == {"refillPerMinute": 10, "capacity": 30}
    assert rows["HighCostGetVMScaleSet"]["subscription"] == {"refillPerMinute": 360, "capacity": 1080}
    assert rows["GetVMScaleSet"]["resource"] == {"refillPerMinute": 12, "capacity": 36}
    assert rows["UpdateVMScaleSet"]["subscription"] == {"refillPerMinute": 500, "capacity": 1500}
    assert rows["DeleteVMScaleSet"]["subscription"] == {"refillPerMinute": 175, "capacity": 525}
    assert rows["GetVMScaleSetVM"]["subscription"] == {"refillPerMinute": 2000, "capacity": 6000}
    assert rows["LowCostGetVM"]["subscription"] == {"refillPerMinute": 8000, "capacity": 24000}
    assert rows["HighCostGetVM"]["resource"] is None
    assert rows["GetOperation"]["resource"] == {"refillPerMinute": 15, "capacity": 45}
    # Every Compute route is charged to a documented policy.
    from emulator.routes import ROUTES

    compute_routes = {r.operation_id for r in ROUTES if not r.operation_id.startswith("ResourceGroups_")}
    assert compute_routes <= set(compute_limits.ROUTE_CHARGES)


def test_a_scale_set_instance_view_is_throttled_after_its_documented_capacity(start_emulator):
    """Compute throttling limits (learn.microsoft.com/azure/virtual-machines/compute-throttling-limits): VMSS High
    Cost Get (Get Instance View) per resource: capacity 30, refill 10/min. The 429's shape follows
    learn.microsoft.com/troubleshoot/azure/virtual-machines/windows/troubleshooting-throttling-errors."""
    emu = start_emulator(fleetgen.fleet(fleetgen.scale_set("web", now=NOW), fleetgen.scale_set("api", now=NOW)))
    client = compute_client(emu, retry_total=0)
    for _ in range(30):
        client.virtual_machine_scale_sets.get_instance_view("rg-app", "web")
    with pytest.raises(HttpResponseError) as caught:
        client.virtual_machine_scale_sets.get_instance_view("rg-app", "web")
    error = caught.value
    assert error.status_code == 429
    assert error.error.code == "OperationNotAllowed"
    body = error.response.json()["error"]
    assert body["details"][0]["code"] == "TooManyRequests"
    assert body["details"][0]["target"] == "HighCostGetVMScaleSetResource"
    assert json.loads(body["details"][0]["message"])["allowedRequestCount"] == 30
    assert error.response.headers["Retry-After"] == "6"  # one token at 10/min
    assert "HighCostGetVMScaleSetResource;0" in error.response.headers["x-ms-ratelimit-remaining-resource"]
    # Another scale set has its own per-resource bucket.
    client.virtual_machine_scale_sets.get_instance_view("rg-app", "api")
    assert emu.stats()["computeThrottled"] == {"HighCostGetVMScaleSet": 1}


def test_header_names_one_entry_per_level(start_emulator):
    """Compute throttling limits (per resource and per subscription) and the header format of
    learn.microsoft.com/troubleshoot/azure/virtual-machines/windows/troubleshooting-throttling-errors
    (`Microsoft.Compute/<policy>;<remaining>`), named as Microsoft's 2024 azure-cli recordings name the table's
    rows (`<stem>SubscriptionMaximum`, `<stem>Resource`; tests/recorded/INDEX.md); stems no recording shows are
    unverified."""
    emu = start_emulator(small_fleet())
    seen = Headers()
    client = compute_client(emu, raw_response_hook=seen)
    list(client.virtual_machine_scale_sets.list_all())
    client.virtual_machine_scale_sets.get("rg-app", "web")
    list(client.virtual_machine_scale_set_vms.list("rg-app", "web"))
    client.virtual_machine_scale_set_vms.get("rg-app", "web", "0")
    client.virtual_machines.get("rg-app", emu.instances("rg-app", "jobs")[0]["name"])
    assert seen.seen[0] == "Microsoft.Compute/HighCostGetVMScaleSetSubscriptionMaximum;1079"
    # Subscription buckets refill several tokens a second, so only the names are stable after the first call.
    assert [re.sub(r";\d+", "", value) for value in seen.seen[1:]] == [
        "Microsoft.Compute/GetVMScaleSetSubscriptionMaximum,Microsoft.Compute/GetVMScaleSetResource",
        "Microsoft.Compute/HighCostGetVMScaleSetSubscriptionMaximum,Microsoft.Compute/HighCostGetVMScaleSetResource,"
        "Microsoft.Compute/VMScaleSetVMViewsSubscriptionMaximum",
        # the VM GET spends the VM views too (recorded windowed: tests/recorded/net-vmss-vm-get.json)
        "Microsoft.Compute/GetVMScaleSetVMSubscriptionMaximum,Microsoft.Compute/GetVMScaleSetVMResource,"
        "Microsoft.Compute/VMScaleSetVMViewsSubscriptionMaximum",
        "Microsoft.Compute/LowCostGetVMSubscriptionMaximum,Microsoft.Compute/LowCostGetVMResource",
    ]
    assert seen.seen[1].endswith("GetVMScaleSetResource;35")  # per-resource buckets refill slowly


def test_a_subscription_bucket_drained_by_the_fault_plan_throttles_lists(start_emulator):
    """Compute throttling limits: List/List All are VMSS High Cost Get at subscription level (360/min, so one
    token refills in 1 s); the fault plan's computeBuckets pre-drains a bucket for tests."""
    emu = start_emulator(small_fleet(computeBuckets={"HighCostGetVMScaleSetSubscription": {"remaining": 0}}))
    client = compute_client(emu, retry_total=0)
    with pytest.raises(HttpResponseError) as caught:
        list(client.virtual_machine_scale_sets.list_all())
    assert caught.value.status_code == 429 and caught.value.response.headers["Retry-After"] == "1"
    stats = emu.stats()
    assert stats["computeThrottled"] == {"HighCostGetVMScaleSet": 1}
    assert stats["computePolicies"]["HighCostGetVMScaleSet"]["Subscription"]["remaining"] == 0
    # The SDK's retry policy honours Retry-After and the request then succeeds.
    assert [s.name for s in compute_client(emu).virtual_machine_scale_sets.list_all()] == ["web", "jobs"]
    assert emu.stats()["computePolicies"]["HighCostGetVMScaleSet"]["Subscription"]["spent"] == 1


def test_per_resource_buckets_are_per_resource_and_the_refill_scale_speeds_tests_up(start_emulator, monkeypatch):
    """Compute throttling limits: "Each resource ... has a specific limit" (per resource buckets), refilled at a
    constant rate; `compute_refill_scale` only changes the rate (60 = per second instead of per minute). The
    buckets' clock is a fake one here, moved by hand: no sleep, whatever the machine's speed."""
    now = [1000.0]
    monkeypatch.setattr(emulator.ratelimit, "monotonic", lambda: now[0])
    plan = {"computeBuckets": {"HighCostGetVMScaleSetResource": {"remaining": 0, "resource": "scale_set:web"}}}
    emu = start_emulator(small_fleet(**plan), compute_refill_scale=60.0)
    client = compute_client(emu, retry_total=0)
    with pytest.raises(HttpResponseError):
        client.virtual_machine_scale_sets.get_instance_view("rg-app", "web")
    other = fleetgen.fleet(fleetgen.scale_set("api", now=NOW), fleetgen.scale_set("web", now=NOW), faults=plan)
    emu.load_fleet(other)  # a new fleet: fresh buckets, the plan's preset drains web's again
    with pytest.raises(HttpResponseError):
        client.virtual_machine_scale_sets.get_instance_view("rg-app", "web")
    client.virtual_machine_scale_sets.get_instance_view("rg-app", "api")  # its own bucket is full
    now[0] += 0.05  # 10 tokens/s at scale 60: half a token, still refused
    with pytest.raises(HttpResponseError):
        client.virtual_machine_scale_sets.get_instance_view("rg-app", "web")
    now[0] += 0.1  # one token and a half
    client.virtual_machine_scale_sets.get_instance_view("rg-app", "web")


def test_arm_keeps_deletes_in_their_own_bucket(start_emulator):
    """ARM request limits (learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling):
    reads, writes and deletes have separate subscription buckets (x-ms-ratelimit-remaining-subscription-deletes)."""
    emu = start_emulator(small_fleet(throttle={"deletes": {"capacity": 1, "refillPerSecond": 0.01}}))
    client = compute_client(emu, retry_total=0)
    client.virtual_machine_scale_set_vms.begin_delete("rg-app", "web", "3").result()
    with pytest.raises(HttpResponseError) as caught:
        client.virtual_machine_scale_set_vms.begin_delete("rg-app", "web", "2")
    assert caught.value.status_code == 429 and caught.value.error.code == "SubscriptionRequestsThrottled"
    assert "'delete' requests" in caught.value.error.message
    client.virtual_machine_scale_set_vms.begin_restart("rg-app", "web", "2").result()  # writes unaffected


def test_a_later_scale_set_write_preempts_the_earlier_one(start_emulator):
    """Concurrent scale-set writes: the earlier LRO ends `Canceled` with `OperationPreempted` (status body quoted
    in Azure/azure-sdk-for-java#1783; message as cloud-provider-azure pkg/consts OperationPreemptedErrorMessage).
    The earlier write's model change stays; the later one builds on it."""
    # 40 polls stay under Get Operation's per-operation capacity (45), so no 429 slows this test down.
    emu = start_emulator(small_fleet(), lro_polls=40)
    client = compute_client(emu)
    first = client.virtual_machine_scale_sets.begin_update(
        "rg-app", "web", {"properties": {"automaticRepairsPolicy": {"enabled": True, "gracePeriod": "PT30M"}}}
    )
    second = client.virtual_machine_scale_sets.begin_update("rg-app", "web", {"tags": {"owner": "team"}})
    with pytest.raises(HttpResponseError) as caught:
        first.result()
    assert caught.value.error.code == "OperationPreempted"
    assert "preempted by a more recent operation" in caught.value.error.message
    assert first.status() == "Canceled"
    after = second.result()
    assert after.tags == {"owner": "team"}
    assert after.automatic_repairs_policy.grace_period == "PT30M"


def test_a_preempted_service_state_change_does_not_happen(start_emulator):
    """Azure/azure-sdk-for-java#1783 (Canceled / OperationPreempted); the preempted operation's instance-level
    effects that had not happened yet do not happen (emulator's choice, unverified)."""
    emu = start_emulator(small_fleet(), lro_polls=40)
    client = compute_client(emu)
    suspend = client.virtual_machine_scale_sets.begin_set_orchestration_service_state(
        "rg-app", "web", {"serviceName": "AutomaticRepairs", "action": "Suspend"}
    )
    client.virtual_machine_scale_sets.begin_update("rg-app", "web", {"tags": {"a": "b"}}).result()
    with pytest.raises(HttpResponseError) as caught:
        suspend.result()
    assert caught.value.error.code == "OperationPreempted"
    services = client.virtual_machine_scale_sets.get_instance_view("rg-app", "web").orchestration_services
    assert [s.service_state for s in services] == ["Running"]


def test_an_instance_being_deleted_still_answers_409(start_emulator):
    """Compute refuses actions on an instance marked for deletion with 409 OperationNotAllowed (cloud-provider-azure
    consts CannotUpdateVMBeingDeletedMessageSuffix "since it is marked for deletion"); preemption does not change it."""
    emu = start_emulator(small_fleet(), lro_polls=50)
    client = compute_client(emu)
    client.virtual_machine_scale_set_vms.begin_delete("rg-app", "web", "2")
    with pytest.raises(ResourceExistsError) as caught:
        client.virtual_machine_scale_set_vms.begin_restart("rg-app", "web", "2")
    assert caught.value.error.code == "OperationNotAllowed"
    assert "marked for deletion" in caught.value.error.message


@pytest.mark.parametrize(
    ("health", "orchestration", "wording"),
    [
        ("both", "Uniform", "Only one health source"),
        ("probe", "Flexible", "does not support load balancer health probes"),
    ],
)
def test_enabling_repairs_is_refused_with_two_health_sources_or_a_flexible_lb_probe(
    start_emulator, health, orchestration, wording
):
    """ "Only one source of health monitoring can be used ... If you have both options enabled, you need to remove
    one" (learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-health-extension);
    Flexible: "Application health via SLB health probe: not supported" (learn.microsoft.com/azure/
    virtual-machine-scale-sets/virtual-machine-scale-sets-orchestration-modes). Refusal wording unverified."""
    emu = start_emulator(fleetgen.fleet(fleetgen.scale_set("web", health=health, orchestration=orchestration, now=NOW)))
    client = compute_client(emu)
    with pytest.raises(HttpResponseError) as caught:
        client.virtual_machine_scale_sets.begin_update(
            "rg-app", "web", {"properties": {"automaticRepairsPolicy": {"enabled": True}}}
        )
    assert caught.value.status_code == 400 and wording in caught.value.error.message


def test_resilient_create_retry_is_a_new_instance_id(start_emulator):
    """Resilient create deletes the VM that timed out and creates a new one (learn.microsoft.com/azure/
    virtual-machine-scale-sets/resilient-vm-create): Uniform gets a new instance id; capacity counts once."""
    fleet = fleetgen.fleet(
        fleetgen.scale_set("web", capacity=1, resilient_creation=True, now=NOW),
        faults={"createFailures": [{"scaleSet": "web", "times": 1, "attemptSeconds": 60}]},
    )
    emu = start_emulator(fleet)
    emu.clock.freeze()
    client = compute_client(emu)
    client.virtual_machine_scale_sets.begin_scale_out("rg-app", "web", {"capacity": 2}).result()
    assert [vm.instance_id for vm in client.virtual_machine_scale_set_vms.list("rg-app", "web")] == ["0", "1"]
    emu.clock.advance(60)
    vms = list(client.virtual_machine_scale_set_vms.list("rg-app", "web"))
    assert [(vm.instance_id, vm.provisioning_state) for vm in vms] == [("0", "Succeeded"), ("2", "Succeeded")]
    assert client.virtual_machine_scale_sets.get("rg-app", "web").sku.capacity == 2


def test_resilient_create_retry_on_flexible_is_a_new_vm_name(start_emulator):
    """Resilient create (learn.microsoft.com/azure/virtual-machine-scale-sets/resilient-vm-create): on Flexible the
    replacement is another VM, so its name changes."""
    fleet = fleetgen.fleet(
        fleetgen.scale_set("jobs", orchestration="Flexible", capacity=1, resilient_creation=True, now=NOW),
        faults={"createFailures": [{"scaleSet": "jobs", "times": 1, "attemptSeconds": 60}]},
    )
    emu = start_emulator(fleet)
    emu.clock.freeze()
    client = compute_client(emu)
    client.virtual_machine_scale_sets.begin_scale_out("rg-app", "jobs", {"capacity": 2}).result()
    first = [vm["name"] for vm in emu.instances("rg-app", "jobs")]
    emu.clock.advance(60)
    second = [vm["name"] for vm in emu.instances("rg-app", "jobs")]
    assert first[0] == second[0] and first[1] != second[1] and len(second) == 2


def test_initializing_only_with_rich_health_states(start_emulator):
    """Application Health extension (learn.microsoft.com/azure/virtual-machine-scale-sets/
    virtual-machine-scale-sets-health-extension): Binary Health States have only Healthy/Unhealthy ("Initializing
    state isn't available"); Rich Health States add Initializing and Unknown."""
    with pytest.raises(ValueError, match="rich health states"):
        fleetgen.scale_set("web", initializing=[0], rich_health_states=False)
    emu = start_emulator(
        fleetgen.fleet(
            fleetgen.scale_set("binary", capacity=1, rich_health_states=False, now=NOW),
            fleetgen.scale_set("rich", capacity=1, now=NOW),
        ),
        create_delay=60,
    )
    emu.clock.freeze()
    client = compute_client(emu)
    for name in ("binary", "rich"):
        client.virtual_machine_scale_sets.begin_scale_out("rg-app", name, {"capacity": 2}).result()
    binary = client.virtual_machine_scale_set_vms.get("rg-app", "binary", "1", expand="instanceView")
    rich = client.virtual_machine_scale_set_vms.get("rg-app", "rich", "1", expand="instanceView")
    assert binary.instance_view.vm_health is None
    assert rich.instance_view.vm_health.status.code == "HealthState/initializing"


def test_resiliency_view_returns_the_instance_view_from_its_api_version(start_emulator):
    """Compute swagger (azure-rest-api-specs virtualMachineScaleSet.json, VirtualMachineScaleSetVMs_Get $expand):
    "'resiliencyView' will retrieve the instance view of the Virtual machine (if applicable) and include
    'resilientVMDeletionStatus'"; the value exists from api-version 2024-07-01."""
    emu = start_emulator(small_fleet())
    client = compute_client(emu)
    vm = client.virtual_machine_scale_set_vms.get("rg-app", "web", "0", expand="resiliencyView")
    assert vm.instance_view is not None and vm.resilient_vm_deletion_status == "Disabled"
    # azure-mgmt-compute 39 always sends 2026-04-01: older api-versions go through the same SDK pipeline.
    path = f"/subscriptions/{emu.subscription_id}/resourceGroups/rg-app/providers/Microsoft.Compute"
    path += "/virtualMachineScaleSets/web"
    old = client.send_request(
        HttpRequest(
            "GET", path + "/virtualMachines/0", params={"api-version": "2024-03-01", "$expand": "resiliencyView"}
        )
    )
    assert old.status_code == 400 and old.json()["error"]["code"] == "InvalidParameter"
    too_old = client.send_request(HttpRequest("GET", path, params={"api-version": "2023-03-01"}))
    # resiliencyPolicy (and every Compute call here) needs >= 2023-07-01
    assert too_old.status_code == 400 and too_old.json()["error"]["code"] == "InvalidApiVersionParameter"


def test_flexible_scale_sets_have_no_instance_view_nor_service_state(start_emulator):
    """Orchestration modes API comparison (learn.microsoft.com/azure/virtual-machine-scale-sets/
    virtual-machine-scale-sets-orchestration-modes): scale-set Get Instance View and setOrchestrationServiceState
    are Uniform-only."""
    emu = start_emulator(small_fleet())
    client = compute_client(emu)
    with pytest.raises(HttpResponseError) as caught:
        client.virtual_machine_scale_sets.get_instance_view("rg-app", "jobs")
    assert caught.value.status_code == 400 and "instanceView.GET" in caught.value.error.message
    with pytest.raises(HttpResponseError) as caught:
        client.virtual_machine_scale_sets.begin_set_orchestration_service_state(
            "rg-app", "jobs", {"serviceName": "AutomaticRepairs", "action": "Suspend"}
        )
    assert caught.value.status_code == 400 and "setOrchestrationServiceState" in caught.value.error.message


def test_resource_groups_and_scale_sets_carry_managed_by_and_tags(start_emulator):
    """ARM Resources API (learn.microsoft.com/rest/api/resources/resource-groups/get and /list): managedBy, tags,
    location, properties.provisioningState; AKS node resource groups are managed by the cluster
    (learn.microsoft.com/azure/aks/faq, node resource group)."""
    cluster = (
        "/subscriptions/6f1d3c2a-8b4e-4d7f-9a0c-1e2f3a4b5c6d/resourceGroups/rg-aks/providers/"
        "Microsoft.ContainerService/managedClusters/aks1"
    )
    fleet = fleetgen.fleet(
        fleetgen.scale_set(
            "aks-nodepool1-vmss",
            resource_group="MC_rg-aks_aks1_westeurope",
            managed_by=cluster,
            tags={"aks-managed-poolName": "nodepool1"},
            now=NOW,
        ),
        resource_groups=[
            fleetgen.resource_group("MC_rg-aks_aks1_westeurope", managed_by=cluster, tags={"aks-managed": "true"})
        ],
    )
    emu = start_emulator(fleet)
    client = compute_client(emu)
    scale_set = client.virtual_machine_scale_sets.get("MC_rg-aks_aks1_westeurope", "aks-nodepool1-vmss")
    assert scale_set.as_dict()["managedBy"] == cluster and scale_set.tags == {"aks-managed-poolName": "nodepool1"}
    # azure-mgmt-resource is not a dependency: the Resources API is called through the same SDK pipeline.
    path = f"/subscriptions/{emu.subscription_id}/resourcegroups"
    listing = client.send_request(HttpRequest("GET", path, params={"api-version": "2021-04-01"}))
    assert listing.status_code == 200
    assert [g["name"] for g in listing.json()["value"]] == ["MC_rg-aks_aks1_westeurope"]
    group = client.send_request(
        HttpRequest("GET", path + "/mc_rg-aks_aks1_westeurope", params={"api-version": "2021-04-01"})
    ).json()
    assert group["name"] == "MC_rg-aks_aks1_westeurope"
    assert group["managedBy"] == cluster and group["tags"] == {"aks-managed": "true"}
    assert group["properties"] == {"provisioningState": "Succeeded"} and group["location"] == "westeurope"
    missing = client.send_request(HttpRequest("GET", path + "/nope", params={"api-version": "2021-04-01"}))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ResourceGroupNotFound"
    assert "ResourceGroups_Get" in emu.stats()["byOperation"]


def test_a_preempted_scale_in_keeps_its_model_but_deletes_nothing(start_emulator):
    """Azure/azure-sdk-for-java#1783 (Canceled / OperationPreempted). The emulator's reading (unverified): the
    preempted PATCH's model (sku.capacity) stays, the instance deletes it had not finished do not happen."""
    emu = start_emulator(small_fleet(), lro_polls=40)
    client = compute_client(emu)
    scale_in = client.virtual_machine_scale_sets.begin_update("rg-app", "web", {"sku": {"capacity": 2}})
    assert [vm["properties"]["provisioningState"] for vm in emu.instances("rg-app", "web")][2:] == ["Deleting"] * 2
    client.virtual_machine_scale_sets.begin_update("rg-app", "web", {"tags": {"a": "b"}}).result()
    with pytest.raises(HttpResponseError):
        scale_in.result()
    assert [vm["properties"]["provisioningState"] for vm in emu.instances("rg-app", "web")] == ["Succeeded"] * 4
    assert emu.scale_set("rg-app", "web")["sku"]["capacity"] == 2
