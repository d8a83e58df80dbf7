"""The Compute gateway through the real azure-mgmt-compute client over HTTPS against the emulator."""

from __future__ import annotations

import time

import pytest

from autoheal import gateway as gw
from autoheal.gateway import API_VERSION, ArmError, ComputeGateway, all_required_actions
from autoheal.model import HealthState
from emulator import fleetgen
from tests.azurite import free_port

RG = "rg-app"


def fleet(**faults):
    return fleetgen.fleet(
        fleetgen.scale_set("web", capacity=4, automatic_repairs=True, unhealthy=[1], resilient_deletion=True),
        fleetgen.scale_set("jobs", orchestration="Flexible", capacity=3, automatic_repairs=True),
        fleetgen.scale_set("api", resource_group="rg-other", capacity=2, failed={1: "OSProvisioningTimedOut"}),
        faults=faults or None,
    )


@pytest.fixture
def emu(start_emulator):
    return start_emulator(fleet(), page_size=2)


@pytest.fixture
def gateway(emu, gateway_for) -> ComputeGateway:
    return gateway_for(emu)


def test_api_version_matches_the_sdk():
    # Raw reads must send what the SDK's own request builders send for the typed calls.
    from azure.mgmt.compute.operations import _operations as sdk

    request = sdk.build_virtual_machine_scale_sets_list_all_request("s")
    assert f"api-version={API_VERSION}" in request.url


def test_lists_scale_sets_across_pages(gateway, emu):
    everything = gateway.list_scale_sets()
    assert sorted(r["name"] for r in everything) == ["api", "jobs", "web"]
    assert [r["name"] for r in gateway.list_scale_sets("rg-other")] == ["api"]
    # page size 2: the subscription list takes two pages
    assert emu.stats()["byOperation"]["VirtualMachineScaleSets_ListAll"] == 2


def test_uniform_snapshot_reads_instance_view_and_one_paged_instance_list(gateway, emu):
    resource = gateway.get_scale_set(RG, "web")
    emu.reset_stats()
    snap = gateway.snapshot(resource)
    ops = emu.stats()["byOperation"]
    assert ops == {"VirtualMachineScaleSets_GetInstanceView": 1, "VirtualMachineScaleSetVMs_List": 2}
    assert snap.orchestration_mode == "Uniform" and snap.capacity == 4
    assert snap.repairs.enabled and snap.repairs_service_state == "Running"
    assert [i.instance_id for i in snap.instances] == ["0", "1", "2", "3"]
    assert snap.instance("1").health is HealthState.UNHEALTHY
    assert snap.instance("0").health is HealthState.HEALTHY
    assert snap.instance("0").resilient_deletion_status == "Enabled"
    assert snap.statuses_summary == {"ProvisioningState/succeeded": 4}
    assert snap.health_source.kind == "applicationHealthExtension"


def test_flexible_snapshot_lists_vms_and_skips_the_instance_view(gateway, emu):
    resource = gateway.get_scale_set(RG, "jobs")
    emu.reset_stats()
    snap = gateway.snapshot(resource)
    assert emu.stats()["byOperation"] == {"VirtualMachines_List": 2}
    assert snap.is_flexible and not snap.instance_view_read
    assert len(snap.instances) == 3
    assert all(i.instance_id.startswith("jobs_") for i in snap.instances)
    assert all(i.resource_id.endswith(i.instance_id) for i in snap.instances)


def test_failed_instance_carries_its_error_code(gateway):
    snap = gateway.snapshot_by_name("rg-other", "api")
    failed = snap.instance("1")
    assert failed.failed and failed.provisioning_error_code == "OSProvisioningTimedOut"
    assert snap.statuses_summary["ProvisioningState/failed/OSProvisioningTimedOut"] == 1


def test_resiliency_view_of_one_instance(gateway):
    vm = gateway.get_instance_resiliency(RG, "web", "2")
    assert vm["properties"]["resilientVMDeletionStatus"] == "Enabled"


def test_not_found_is_an_arm_error(gateway):
    with pytest.raises(ArmError) as caught:
        gateway.get_scale_set(RG, "nope")
    assert caught.value.not_found and caught.value.code == "ResourceNotFound"
    assert not caught.value.transient


def test_unknown_subscription(emu, gateway_for):
    other = gateway_for(emu)
    other.subscription_id = "00000000-0000-0000-0000-00000000dead"
    with pytest.raises(ArmError) as caught:
        other.list_scale_sets()
    assert caught.value.code == "SubscriptionNotFound"


def test_unreachable_endpoint_fails_fast_and_clearly():
    dead = ComputeGateway("s", endpoint=f"https://127.0.0.1:{free_port()}", retry_total=0)
    with pytest.raises(ArmError) as caught:
        dead.list_scale_sets()
    assert caught.value.status is None and caught.value.transient
    assert "no answer from ARM" in str(caught.value)


def test_throttling_honours_retry_after(emu, gateway):
    emu.set_faults(
        {
            "injections": [
                {
                    "method": "GET",
                    "pathContains": "virtualMachineScaleSets/web/instanceView",
                    "status": 429,
                    "code": "SubscriptionRequestsThrottled",
                    "retryAfter": 1,
                    "count": 1,
                }
            ]
        }
    )
    snap = gateway.snapshot_by_name(RG, "web")
    assert snap.repairs_service_state == "Running"
    meter = gateway.meter.figures()
    assert meter["throttled"] == 1 and meter["throttleWaitSeconds"] == 1
    assert meter["remainingReads"] is not None


def test_compute_throttling_is_transient_honoured_and_metered(start_emulator, gateway_for):
    """Compute's own 429 (OperationNotAllowed / TooManyRequests + Retry-After; learn.microsoft.com/azure/
    virtual-machines/compute-throttling-limits): the SDK waits Retry-After, the meter counts it and keeps
    the remaining tokens Compute reported."""
    drained = {"computeBuckets": {"HighCostGetVMScaleSetResource": {"remaining": 0, "resource": "scale_set:web"}}}
    # refill x60: one token per 6 s becomes one per 0.1 s, so Retry-After is the minimum (1 s)
    emu = start_emulator(fleet(**drained), compute_refill_scale=60.0)
    gateway = gateway_for(emu)
    snap = gateway.snapshot_by_name(RG, "web")
    assert snap.repairs_service_state == "Running"
    meter = gateway.meter.figures()
    assert meter["throttled"] == 1 and meter["throttleWaitSeconds"] == 1
    assert meter["remainingCompute"]["HighCostGetVMScaleSetResource"] < 30  # what Compute last reported
    assert emu.stats()["computeThrottled"] == {"HighCostGetVMScaleSet": 1}
    refused = ArmError("x", code="OperationNotAllowed", status=429)
    assert refused.transient and refused.throttled


def test_a_preempted_write_is_transient_not_final(start_emulator, gateway_for):
    """A later scale-set write cancels ours (LRO Canceled / OperationPreempted, azure-sdk-for-java#1783): the
    gateway raises ArmError.preempted, which is transient (re-read and retry), never success."""
    import threading

    emu = start_emulator(fleet(), lro_polls=40, lro_seconds=3600)
    gateway = gateway_for(emu, polling_interval=0.05)
    caught: list[BaseException] = []

    def ours() -> None:
        try:
            gateway.update_scale_set(RG, "web", {"tags": {"by": "autoheal"}})
        except BaseException as exc:
            caught.append(exc)

    worker = threading.Thread(target=ours)
    worker.start()
    deadline = time.monotonic() + 60  # a timeout for a slow machine, not a speed bound
    while emu.stats()["byOperation"].get("VirtualMachineScaleSets_Update", 0) < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    other = gateway_for(emu)  # Azure's own autoscale, say
    other.update_scale_set(RG, "web", {"sku": {"capacity": 5}})
    worker.join(timeout=30)
    assert len(caught) == 1 and isinstance(caught[0], ArmError)
    assert caught[0].preempted and caught[0].transient and caught[0].code == "OperationPreempted"


def test_server_errors_are_retried_then_reported(emu, gateway_for):
    gateway = gateway_for(emu, retry_total=1)
    emu.set_faults(
        {
            "injections": [
                {"method": "GET", "pathContains": "/web", "status": 503, "code": "ServiceUnavailable", "count": 5}
            ]
        }
    )
    with pytest.raises(ArmError) as caught:
        gateway.get_scale_set(RG, "web")
    assert caught.value.status == 503 and caught.value.transient
    assert gateway.meter.reads == 2  # first try + one retry


def test_next_link_to_another_host_is_refused(gateway):
    with pytest.raises(ArmError) as caught:
        gateway._check_next_link("https://evil.example.com/subscriptions/x?$skiptoken=1")
    assert caught.value.code == "InvalidNextLink"


# -- writes: every one an LRO that changes the fleet -------------------------------------------------------


def test_update_scale_set_patch(gateway, emu):
    after = gateway.update_scale_set(
        RG, "jobs", {"properties": {"automaticRepairsPolicy": {"enabled": False}}, "tags": {"a": "b"}}
    )
    assert after["properties"]["automaticRepairsPolicy"]["enabled"] is False
    assert emu.scale_set(RG, "jobs")["tags"] == {"a": "b"}
    assert emu.stats()["byOperation"]["VirtualMachineScaleSets_Update"] == 1


def test_set_orchestration_service_state(gateway):
    gateway.set_orchestration_service_state(RG, "web", "AutomaticRepairs", "Suspend")
    assert gateway.snapshot_by_name(RG, "web").repairs_service_state == "Suspended"
    gateway.set_orchestration_service_state(RG, "web", "AutomaticRepairs", "Resume")
    assert gateway.snapshot_by_name(RG, "web").repairs_service_state == "Running"


def test_azure_refusal_is_an_arm_error(gateway):
    with pytest.raises(ArmError) as caught:
        gateway.update_scale_set(
            RG, "web", {"properties": {"automaticRepairsPolicy": {"enabled": True, "gracePeriod": "PT5M"}}}
        )
    assert caught.value.status == 400 and caught.value.code == "InvalidParameter"


@pytest.mark.parametrize("name", ["web", "jobs"])
def test_delete_instances_then_restore_capacity(gateway, emu, name):
    snap = gateway.snapshot_by_name(RG, name)
    victim = snap.instances[-1].instance_id
    gateway.delete_instances(snap, [victim])
    after = gateway.snapshot_by_name(RG, name)
    assert victim not in [i.instance_id for i in after.instances]
    assert after.capacity == snap.capacity - 1
    gateway.set_capacity(RG, name, snap.capacity)
    grown = gateway.snapshot_by_name(RG, name)
    assert grown.capacity == snap.capacity and len(grown.instances) == snap.capacity
    ops = emu.stats()["byOperation"]
    assert ops["VirtualMachineScaleSets_Update"] == 1
    assert ops.get("VirtualMachineScaleSets_DeleteInstances", 0) + ops.get("VirtualMachines_Delete", 0) == 1


@pytest.mark.parametrize(
    ("name", "verb"),
    [
        ("web", "restart"),
        ("web", "reimage"),
        ("web", "redeploy"),
        ("jobs", "restart"),
        ("jobs", "reimage"),
        ("jobs", "redeploy"),
    ],
)
def test_instance_operations(gateway, emu, name, verb):
    snap = gateway.snapshot_by_name(RG, name)
    target = snap.instances[1].instance_id
    getattr(gateway, f"{verb}_instance")(snap, target)
    after = gateway.snapshot_by_name(RG, name).instance(target)
    assert after.provisioning_state == "Succeeded" and after.health is not HealthState.UNHEALTHY
    prefix = "VirtualMachines" if name == "jobs" else "VirtualMachineScaleSetVMs"
    assert emu.stats()["byOperation"][f"{prefix}_{verb.title()}"] == 1


def test_conflicting_write_is_transient(gateway, emu):
    emu.set_faults(
        {
            "injections": [
                {"method": "PATCH", "pathContains": "/web", "status": 409, "code": "OperationNotAllowed", "count": 1}
            ]
        }
    )
    with pytest.raises(ArmError) as caught:
        gateway.set_capacity(RG, "web", 5)
    assert caught.value.status == 409 and caught.value.transient


def test_every_gateway_method_declares_its_rbac_actions():
    public = [
        name
        for name in dir(ComputeGateway)
        if not name.startswith("_") and callable(getattr(ComputeGateway, name)) and name not in {"close", "client"}
    ]
    undeclared = [n for n in public if n not in gw.REQUIRED_ACTIONS and n not in {"snapshot", "snapshot_by_name"}]
    assert undeclared == []
    # scaleOut/action is in no published permission list and the gateway never calls it: not asked for
    assert "Microsoft.Compute/virtualMachineScaleSets/scaleOut/action" not in all_required_actions()
    assert "Microsoft.Compute/virtualMachineScaleSets/write" in gw.REQUIRED_ACTIONS["set_capacity"]


def test_flexible_delete_suspects_get_their_resilient_deletion_status(start_emulator, gateway_for):
    emu = start_emulator(
        fleetgen.fleet(
            fleetgen.scale_set(
                "flex", orchestration="Flexible", capacity=3, deletion_failed=[1], resilient_deletion=True
            )
        )
    )
    gateway = gateway_for(emu)
    resource = gateway.get_scale_set(RG, "flex")
    emu.reset_stats()
    snap = gateway.snapshot(resource)
    # one list, plus one resiliencyView read for the single Failed VM (not for the healthy ones)
    assert emu.stats()["byOperation"] == {"VirtualMachines_List": 1, "VirtualMachineScaleSetVMs_Get": 1}
    failed = next(i for i in snap.instances if i.failed)
    assert failed.resilient_deletion_status == "Failed"
    others = [i for i in snap.instances if not i.failed]
    assert others and all(i.resilient_deletion_status is None for i in others)


class NoToken:
    def get_token(self, *scopes, **kwargs):
        from azure.core.exceptions import ClientAuthenticationError

        raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")

    get_token_info = get_token


def test_missing_credentials_are_explained(emu, gateway_for, capsys, monkeypatch):
    gateway = gateway_for(emu, credential=NoToken())
    with pytest.raises(ArmError) as caught:
        gateway.list_scale_sets()
    assert (caught.value.code, caught.value.status) == ("CredentialUnavailable", 401)
    assert not caught.value.transient

    from autoheal import cli, runtime

    real = runtime.build_gateway
    monkeypatch.setattr(cli, "build_gateway", lambda settings, **kw: real(settings, credential=NoToken(), **kw))
    code = cli.main(
        ["diagnose", "--subscription", emu.subscription_id, "--endpoint", emu.endpoint, "--ca-bundle", emu.ca_bundle]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: could not get an Azure token: run `az login` or configure a managed identity")


@pytest.mark.parametrize(
    ("health", "mode", "problem"),
    [("both", "Uniform", "two-health-sources"), ("probe", "Flexible", "flexible-lb-probe")],
)
def test_health_source_conflicts_read_from_azure_are_diagnosed(start_emulator, gateway_for, health, mode, problem):
    """Both health sources (health-extension doc: "remove one") and a Flexible scale set with only an LB probe
    (orchestration-modes doc): the snapshot carries every source, the diagnosis says which to change, and
    enabling repairs is not proposed (Azure refuses it; the emulator too)."""
    from autoheal.diagnosis import diagnose
    from autoheal.model import FindingCode
    from autoheal.settings import default_settings

    emu = start_emulator(
        fleetgen.fleet(fleetgen.scale_set("odd", health=health, orchestration=mode, automatic_repairs=False))
    )
    gateway = gateway_for(emu)
    snap = gateway.snapshot_by_name(RG, "odd")
    findings = {f.code: f for f in diagnose(snap, default_settings(), snap.read_at)}
    assert findings[FindingCode.HEALTH_MONITORING_MISCONFIGURED].evidence["problem"] == problem
    assert findings[FindingCode.REPAIRS_DISABLED].proposed_action.reason_code == problem
    with pytest.raises(ArmError) as caught:
        gateway.update_scale_set(RG, "odd", {"properties": {"automaticRepairsPolicy": {"enabled": True}}})
    assert caught.value.status == 400 and not caught.value.transient
