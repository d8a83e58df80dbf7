"""The ARM surface around the operations: authentication, api-version, routing, headers, keep-alive,
the request log, and loading fleets (capturedAt shift, validation)."""

from __future__ import annotations

import http.client
import json
import ssl
import threading
from datetime import timedelta

import pytest
from azure.core.exceptions import ClientAuthenticationError

from emulator import Emulator, fleetgen, payloads
from emulator.testing import compute_client

from .conftest import NOW, SAMPLE_FLEET, Raw, small_fleet


def test_missing_token_is_401_authentication_failed(raw):
    response = raw("GET", raw.vmss(), token=None)
    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "code": "AuthenticationFailed",
            "message": "Authentication failed. The 'Authorization' header is missing.",
        }
    }
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert "x-ms-request-id" in response.headers


def test_other_auth_schemes_are_refused(raw):
    response = raw("GET", raw.vmss(), token="Basic dXNlcjpwYXNz")
    assert response.status_code == 401
    assert "invalid format" in response.json()["error"]["message"]


def test_sdk_surfaces_401_as_client_authentication_error(emu):
    class NoToken:
        def get_token(self, *scopes, **kwargs):
            from azure.core.credentials import AccessToken

            return AccessToken("", 2**31)

    from azure.mgmt.compute import ComputeManagementClient

    client = ComputeManagementClient(
        NoToken(), emu.subscription_id, base_url=emu.endpoint, connection_verify=emu.ca_bundle, retry_total=0
    )
    with pytest.raises(ClientAuthenticationError):
        client.virtual_machine_scale_sets.get("rg-app", "web")


@pytest.mark.parametrize(
    ("version", "code"),
    [
        (None, "MissingApiVersionParameter"),
        ("2023-03-01", "InvalidApiVersionParameter"),
        ("2015-06-15", "InvalidApiVersionParameter"),
        ("latest", "InvalidApiVersionParameter"),
    ],
)
def test_api_version_is_required_and_not_older_than_2023_07_01(raw, version, code):
    response = raw("GET", raw.vmss(), api_version=version)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    if version:
        assert response.json()["error"]["message"].startswith(f"The api-version '{version}' is invalid.")


@pytest.mark.parametrize("version", ["2023-07-01", "2024-07-01", "2025-04-01", "2026-04-01", "2026-09-01-preview"])
def test_supported_api_versions(raw, version):
    assert raw("GET", raw.vmss(), api_version=version).status_code == 200


def test_routing_is_case_insensitive(raw, emu):
    path = (
        f"/SUBSCRIPTIONS/{emu.subscription_id}/resourcegroups/RG-APP/providers/microsoft.compute"
        "/virtualmachinescalesets/WEB/virtualmachines/1/restart"
    )
    assert raw("POST", path).status_code == 202
    assert raw("GET", path.rsplit("/", 3)[0] + "/VirtualMachines/1/INSTANCEVIEW").status_code == 200


def test_unknown_routes_and_methods(raw):
    assert raw("GET", raw.vmss(suffix="/rollingUpgrades/latest")).status_code == 404
    assert raw("GET", raw.sub("/providers/Microsoft.Compute/disks")).json()["error"]["code"] == "InvalidResourceType"
    assert raw("PUT", raw.vmss(suffix="/virtualMachines/0/instanceView"), json={}).status_code == 405


def test_every_answer_carries_arm_headers(raw):
    read = raw("GET", raw.vmss(), headers={"x-ms-correlation-request-id": "c0ffee"})
    assert read.headers["x-ms-correlation-request-id"] == "c0ffee"
    assert read.headers["x-ms-request-id"]
    assert "x-ms-ratelimit-remaining-subscription-reads" in read.headers
    assert read.headers["x-ms-ratelimit-remaining-resource"] == (
        "Microsoft.Compute/GetVMScaleSetSubscriptionMaximum;2399,Microsoft.Compute/GetVMScaleSetResource;35"
    )
    listing = raw("GET", raw.vmss(suffix="/virtualMachines"))
    assert (
        listing.headers["x-ms-ratelimit-remaining-resource"]
        == "Microsoft.Compute/HighCostGetVMScaleSetSubscriptionMaximum;1079,"
        "Microsoft.Compute/HighCostGetVMScaleSetResource;29,"
        "Microsoft.Compute/VMScaleSetVMViewsSubscriptionMaximum;29999"
    )  # the stems and levels of Microsoft's 2024 az vmss list-instances recording (tests/recorded/headers.json)
    write = raw("POST", raw.vmss(suffix="/virtualMachines/0/restart"))
    assert "x-ms-ratelimit-remaining-subscription-writes" in write.headers
    # as Microsoft recorded a scale-set VM restart (tests/recorded/net-vmss-vm-restart-post.json)
    assert "VMScaleSetVMActionsResource;11" in write.headers["x-ms-ratelimit-remaining-resource"]
    delete = raw("DELETE", raw.vmss(suffix="/virtualMachines/2"))
    assert "x-ms-ratelimit-remaining-subscription-deletes" in delete.headers
    missing = raw("GET", raw.vmss("nope"))
    assert missing.status_code == 404 and missing.headers["x-ms-request-id"]


def test_connections_are_kept_alive(emu):
    context = ssl.create_default_context(cafile=emu.ca_bundle)
    connection = http.client.HTTPSConnection("127.0.0.1", emu.port, context=context, timeout=5)
    path = f"/subscriptions/{emu.subscription_id}/providers/Microsoft.Compute/virtualMachineScaleSets"
    path += "?api-version=2026-04-01"
    sockets = set()
    for _ in range(3):
        connection.request("GET", path, headers={"Authorization": "Bearer x"})
        response = connection.getresponse()
        assert response.status == 200 and int(response.headers["Content-Length"]) == len(response.read())
        sockets.add(id(connection.sock))
    assert len(sockets) == 1
    connection.close()


def test_stats_count_requests_by_operation(client, emu, raw):
    list(client.virtual_machine_scale_set_vms.list("rg-app", "web", expand="instanceView"))
    client.virtual_machine_scale_sets.get_instance_view("rg-app", "web")
    client.virtual_machine_scale_set_vms.begin_restart("rg-app", "web", "0").result()
    stats = emu.stats()
    assert stats.pop("computeThrottled") == {}
    policies = stats.pop("computePolicies")
    # Per subscription (issue 22): the one subscription's buckets, each still nearly full.
    assert set(stats.pop("computeBySubscription")) == {emu.subscription_id.lower()}
    # Buckets refill in real time (subscription ones by tens of tokens a second): spent counts are exact.
    spent = {p: {level: b["spent"] for level, b in levels.items()} for p, levels in policies.items()}
    assert spent == {
        "GetOperation": {"Resource": 3, "Subscription": 3},
        "HighCostGetVMScaleSet": {"Resource": 2, "Subscription": 2},
        "VMScaleSetActions": {"Resource": 1, "Subscription": 1},  # the restart, as recorded
        "VMScaleSetBatchedVMRequests": {"Subscription": 1},
        "VMScaleSetVMActions": {"Resource": 1, "Subscription": 1},
        "VMScaleSetVMViews": {"Subscription": 1},
    }
    assert policies["HighCostGetVMScaleSet"]["Resource"] == {"spent": 2, "remaining": 28, "buckets": 1}
    # The restart: POST (202), two status polls (InProgress, Succeeded), the final GET of its Location.
    assert stats == {
        "requests": 6,
        "reads": 5,
        "writes": 1,
        "throttled": 0,
        "faultsInjected": 0,
        "byOperation": {
            "LongRunningOperation_Status": 3,
            "VirtualMachineScaleSetVMs_List": 1,
            "VirtualMachineScaleSetVMs_Restart": 1,
            "VirtualMachineScaleSets_GetInstanceView": 1,
        },
        "peakConcurrentDelayed": 0,  # no latency injected
    }
    served = raw.session.get(f"{emu.endpoint}/_emulator/stats", verify=emu.ca_bundle, timeout=5).json()
    assert {k: v for k, v in served.items() if not k.startswith("compute")} == stats
    reset = raw.session.post(f"{emu.endpoint}/_emulator/reset-stats", verify=emu.ca_bundle, timeout=5)
    assert reset.json()["requests"] == 0
    emu.reset_stats()
    assert emu.stats()["byOperation"] == {}


def test_concurrent_clients(start_emulator):
    # 80 VM lists of one scale set: ten times Compute's per-scale-set capacity, so no 429 interferes here.
    emu = start_emulator(small_fleet(), compute_capacity_scale=10)
    errors: list[BaseException] = []

    def sweep() -> None:
        try:
            client = compute_client(emu)
            for _ in range(5):
                for scale_set in client.virtual_machine_scale_sets.list_all():
                    if scale_set.orchestration_mode == "Uniform":
                        list(client.virtual_machine_scale_set_vms.list("rg-app", scale_set.name, expand="instanceView"))
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=sweep) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert emu.stats()["requests"] == 16 * 5 * 2


def test_captured_at_shifts_every_timestamp(start_emulator):
    captured = NOW - timedelta(days=30)
    fleet = fleetgen.fleet(
        fleetgen.scale_set("web", capacity=1, unhealthy=[0], unhealthy_for=1800, now=captured), captured_at=captured
    )
    emu = start_emulator(fleet)
    vm = emu.instances("rg-app", "web")[0]
    since = payloads.parse_time(vm["properties"]["instanceView"]["vmHealth"]["status"]["time"])
    age = emu.clock.now() - since
    assert timedelta(minutes=29) < age < timedelta(minutes=31)  # still unhealthy for 30 minutes
    created = payloads.parse_time(vm["properties"]["timeCreated"])
    assert timedelta(days=6) < emu.clock.now() - created < timedelta(days=8)


def test_sample_fleet_loads_and_keeps_its_shape(start_emulator):
    document = json.loads(SAMPLE_FLEET.read_text())
    emu = start_emulator(SAMPLE_FLEET)
    client = compute_client(emu)
    names = [s.name for s in client.virtual_machine_scale_sets.list_all()]
    assert names == [entry["resource"]["name"] for entry in document["scaleSets"]]
    api = client.virtual_machine_scale_sets.get_instance_view("rg-web", "api")
    assert api.orchestration_services[0].service_state == "Suspended"


def test_fleet_validation(start_emulator):
    with pytest.raises(ValueError, match="subscriptionId"):
        Emulator.start({"scaleSets": []})
    bad = fleetgen.fleet(fleetgen.scale_set("web"), subscription_id="11111111-1111-1111-1111-111111111111")
    with pytest.raises(ValueError, match="not in subscription"):
        Emulator.start(bad)
    empty = start_emulator(None)
    raw = Raw(empty)
    assert raw("GET", raw.sub("/providers/Microsoft.Compute/virtualMachineScaleSets")).json() == {"value": []}


def test_fleet_round_trips_through_the_control_endpoint(emu):
    document = emu.fleet()
    assert [s["resource"]["name"] for s in document["scaleSets"]] == ["web", "jobs"]
    assert len(document["scaleSets"][0]["virtualMachines"]) == 4
