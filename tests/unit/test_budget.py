"""Compute budget arithmetic on plain data (issue 12): header parsing, our share, floors, deferral."""

from __future__ import annotations

import pytest

from autoheal.gateway.budget import (
    VMSS_HIGH_COST_GET,
    BudgetExhausted,
    ComputeBudget,
    parse_readings,
    parse_remaining,
    resource_of,
)

VMSS = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web"


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def budget(share: float = 0.25) -> tuple[ComputeBudget, FakeTime]:
    clock = FakeTime()
    return ComputeBudget(share=share, monotonic=clock.monotonic, sleep=clock.sleep), clock


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        (
            "Microsoft.Compute/HighCostGetVMScaleSetSubscription;1079,Microsoft.Compute/HighCostGetVMScaleSetResource;29",
            {"HighCostGetVMScaleSetSubscription": 1079, "HighCostGetVMScaleSetResource": 29},
        ),
        (
            "Microsoft.Compute/HighCostGetVMScaleSet3Min;170,Microsoft.Compute/HighCostGetVMScaleSet30Min;852",
            {"HighCostGetVMScaleSet3Min": 170, "HighCostGetVMScaleSet30Min": 852},
        ),
        (" Microsoft.Compute/GetOperation;-3 , junk, Other/Thing;4,", {"GetOperation": 0}),
        (None, {}),
        ("", {}),
    ],
)
def test_header_parsing(header, parsed):
    assert parse_remaining(header) == parsed


def test_resource_of_request_urls():
    assert resource_of(f"https://management.azure.com{VMSS}/instanceView?api-version=1") == VMSS.lower()
    assert resource_of("https://x/subscriptions/s/providers/Microsoft.Compute/virtualMachineScaleSets") == ""


def test_our_share_bursts_a_quarter_of_the_bucket_then_paces_at_a_quarter_of_the_refill():
    b, _ = budget()
    for _ in range(270):  # 25 % of the 1,080-token subscription bucket
        assert b.acquire(VMSS_HIGH_COST_GET) == 0
    wait = b.acquire(VMSS_HIGH_COST_GET)
    assert wait == pytest.approx(60 / 90)  # 25 % of 360/min = 90/min
    assert b.figures()["spent"] == {VMSS_HIGH_COST_GET: 271}


def test_a_bucket_others_drained_below_the_floor_makes_us_wait_for_its_refill():
    b, clock = budget()
    b.observe("Microsoft.Compute/HighCostGetVMScaleSetSubscription;800", VMSS, VMSS_HIGH_COST_GET)
    # floor = 75 % of 1,080 = 810; we need 811 after refilling at 6 tokens/s
    wait = b.acquire(VMSS_HIGH_COST_GET)
    assert wait == pytest.approx((811 - 800) / 6)
    assert clock.slept == [pytest.approx(wait)]


def test_per_resource_buckets_are_kept_per_resource():
    b, _ = budget()
    b.observe("Microsoft.Compute/HighCostGetVMScaleSetResource;20", VMSS, VMSS_HIGH_COST_GET)
    other = VMSS.replace("/web", "/api")
    assert b.acquire(VMSS_HIGH_COST_GET, other.lower()) == 0  # another scale set's bucket is untouched
    wait = b.acquire(VMSS_HIGH_COST_GET, VMSS.lower())
    assert wait == pytest.approx((0.75 * 30 + 1 - 20) / (10 / 60))


def test_a_wait_past_the_deadline_defers_instead_of_sleeping():
    b, clock = budget()
    b.observe("Microsoft.Compute/HighCostGetVMScaleSetSubscription;500", VMSS, VMSS_HIGH_COST_GET)
    with pytest.raises(BudgetExhausted) as raised:
        b.acquire(VMSS_HIGH_COST_GET, deadline=clock.now + 5)
    assert raised.value.wait > 5 and clock.slept == []
    assert b.figures()["deferred"] == 1


def test_a_30_minute_bucket_refills_a_thirtieth_of_its_capacity_a_minute():
    """HighCostGetVMScaleSet30Min refills capacity / 30 a minute (issue 19), not capacity / 3; its capacity is at
    least the table's 1,080 (VMSS High Cost Get), so 899 seen first is not taken for a full bucket of 900."""
    b, _ = budget()
    b.observe("Microsoft.Compute/HighCostGetVMScaleSet30Min;899", VMSS, VMSS_HIGH_COST_GET)
    b.observe("Microsoft.Compute/HighCostGetVMScaleSet30Min;600", VMSS, VMSS_HIGH_COST_GET)
    # capacity 1,080; floor 810: at 600 we wait for 211 tokens at 1,080 / 30 = 36 per minute
    wait = b.acquire(VMSS_HIGH_COST_GET)
    assert wait == pytest.approx(211 / (1080 / 30 / 60))
    bucket = b.figures()["buckets"]["HighCostGetVMScaleSet30Min"]
    assert bucket == {
        "lowestShareLeft": round(600 / 1080, 3),
        "capacity": 1080,
        "refillPerMinute": 36.0,
        "documented": True,
        "policy": VMSS_HIGH_COST_GET,
        "perResource": False,
    }


def test_windowed_entries_are_separate_buckets_and_the_tighter_one_sets_the_wait():
    """Microsoft's capture (azure-cli recording test_vmss_set_orchestration_service_state): 3Min;174, 30Min;891."""
    b, _ = budget()
    b.observe(
        "Microsoft.Compute/HighCostGetVMScaleSet3Min;174,Microsoft.Compute/HighCostGetVMScaleSet30Min;891",
        VMSS,
        VMSS_HIGH_COST_GET,
    )
    buckets = b.figures()["buckets"]
    assert buckets["HighCostGetVMScaleSet3Min"]["capacity"] == 175  # a short window: what Azure reported
    assert buckets["HighCostGetVMScaleSet3Min"]["refillPerMinute"] == pytest.approx(175 / 3, abs=1e-3)
    assert buckets["HighCostGetVMScaleSet30Min"]["refillPerMinute"] == pytest.approx(1080 / 30, abs=1e-3)
    # both full (first sight): a request passes; then others drain the 3-minute bucket to 100 (floor 131.25)
    assert b.acquire(VMSS_HIGH_COST_GET) == 0
    b.observe(
        "Microsoft.Compute/HighCostGetVMScaleSet3Min;100,Microsoft.Compute/HighCostGetVMScaleSet30Min;880",
        VMSS,
        VMSS_HIGH_COST_GET,
    )
    wait = b.acquire(VMSS_HIGH_COST_GET)
    assert wait == pytest.approx((0.75 * 175 + 1 - 100) / (175 / 3 / 60))


def test_a_repeated_name_is_two_buckets_and_the_lowest_wins():
    """Microsoft's 2024 throttling article: `DeleteVMScaleSet;107`, `DeleteVMScaleSet;587` (window stripped)."""
    header = "Microsoft.Compute/DeleteVMScaleSet;107,Microsoft.Compute/DeleteVMScaleSet;587"
    assert parse_remaining(header) == {"DeleteVMScaleSet": 107}
    readings = parse_readings(header)
    assert [(r.key, r.remaining, r.window_minutes, r.long_window) for r in readings] == [
        ("DeleteVMScaleSet#1/2", 107, None, False),
        ("DeleteVMScaleSet#2/2", 587, None, True),
    ]
    assert {r.policy for r in readings} == {"VMSS Delete"}
    b, _ = budget()
    b.observe(header, VMSS, "VMSS Delete")
    buckets = b.figures()["buckets"]
    assert set(buckets) == {"DeleteVMScaleSet#1/2", "DeleteVMScaleSet#2/2"}
    # no window: the slowest refill Azure uses (30 minutes), never above the table's 175 / min
    assert buckets["DeleteVMScaleSet#1/2"]["refillPerMinute"] == pytest.approx(108 / 30, abs=1e-3)
    assert buckets["DeleteVMScaleSet#2/2"]["capacity"] == 588  # above the table's 525: what Azure reported
    # a single entry of the same name (a list's one bucket) is a bucket of its own, not the first of two
    (single,) = parse_readings("Microsoft.Compute/DeleteVMScaleSet;500")
    assert single.key == "DeleteVMScaleSet" and single.long_window


@pytest.mark.parametrize(
    ("name", "policy"),
    [
        ("GetVMScaleSet30Min", "VMSS Low Cost Get"),
        ("HighCostGetVMScaleSet3Min", "VMSS High Cost Get"),
        ("VMScaleSetVMViews3Min", "Scale set VMs Get"),
        ("LowCostGet30Min", "VM Low Cost Get"),
        ("HighCostGet3Min", "VM High Cost Get"),
        ("DeleteVM30Min", "VM Delete"),
        ("GetOperation30Min", "Get Operation"),
        ("PutVM3Min", None),
        ("VMScaleSetBatchedVMRequests5Min", None),
        ("CreateVMScaleSet30Min", None),
        ("HighCostGetVMScaleSetSubscription", "VMSS High Cost Get"),
    ],
)
def test_real_names_map_to_the_documented_policy_stems(name, policy):
    (reading,) = parse_readings(f"Microsoft.Compute/{name};10")
    assert reading.policy == policy


def test_unknown_names_are_learned_conservatively_and_queue_counts_never_block():
    b, _ = budget()
    b.observe(
        "Microsoft.Compute/VMScaleSetActions3Min;238,Microsoft.Compute/VMScaleSetBatchedVMRequests5Min;1188,"
        "Microsoft.Compute/VmssQueuedVMOperations;0",
        VMSS,
        "VMSS Update",
    )
    buckets = b.figures()["buckets"]
    assert "VmssQueuedVMOperations" not in buckets  # `;0` on accepted writes: a count, not tokens
    assert buckets["VMScaleSetBatchedVMRequests5Min"]["refillPerMinute"] == pytest.approx(1189 / 5, abs=1e-3)
    assert buckets["VMScaleSetActions3Min"]["documented"] is False
    assert b.acquire("VMSS Update") == 0


def test_share_must_be_a_fraction():
    with pytest.raises(ValueError):
        ComputeBudget(share=0)


def test_the_2024_names_state_the_tables_rows():
    """azure-cli recording test_vmss_create_and_modify (2024): `...SubscriptionMaximum` and `...Resource` entries."""
    header = ",".join(
        [
            "Microsoft.Compute/HighCostGetVMScaleSetSubscriptionMaximum;1074",
            "Microsoft.Compute/HighCostGetVMScaleSetResource;29",
        ]
    )
    readings = parse_readings(header)
    assert [(r.stem, r.scope, r.policy) for r in readings] == [
        ("HighCostGetVMScaleSet", "subscription", VMSS_HIGH_COST_GET),
        ("HighCostGetVMScaleSet", "resource", VMSS_HIGH_COST_GET),
    ]
    b, _ = budget()
    b.observe(header, VMSS, VMSS_HIGH_COST_GET)
    buckets = b.figures()["buckets"]
    assert buckets["HighCostGetVMScaleSetSubscriptionMaximum"]["capacity"] == 1080  # the table's subscription row
    assert buckets["HighCostGetVMScaleSetResource"] == {
        "lowestShareLeft": round(29 / 30, 3),
        "capacity": 30,
        "refillPerMinute": 10.0,
        "documented": True,
        "policy": VMSS_HIGH_COST_GET,
        "perResource": True,
    }
    # the per-resource bucket is this scale set's: another scale set is not held back by it
    b.observe("Microsoft.Compute/HighCostGetVMScaleSetResource;5", VMSS, VMSS_HIGH_COST_GET)
    assert b.acquire(VMSS_HIGH_COST_GET, VMSS.replace("/web", "/api").lower()) == 0
    assert b.acquire(VMSS_HIGH_COST_GET, VMSS.lower()) > 0
