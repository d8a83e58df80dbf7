"""Compute budget arithmetic on plain data (issue 12): header parsing, our share, floors, deferral."""

from __future__ import annotations

import pytest

from autoheal.gateway.budget import (
    VMSS_HIGH_COST_GET,
    BudgetExhausted,
    ComputeBudget,
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


def test_names_azure_uses_but_the_table_does_not_are_learned():
    b, _ = budget()
    b.observe("Microsoft.Compute/HighCostGetVMScaleSet30Min;899", VMSS, VMSS_HIGH_COST_GET)
    b.observe("Microsoft.Compute/HighCostGetVMScaleSet30Min;600", VMSS, VMSS_HIGH_COST_GET)
    # capacity learned as 900; floor 675: at 600 we wait for 76 tokens at 900/3 per minute
    wait = b.acquire(VMSS_HIGH_COST_GET)
    assert wait == pytest.approx(76 / (900 / 3 / 60))
    bucket = b.figures()["buckets"]["HighCostGetVMScaleSet30Min"]
    assert bucket == {
        "lowestShareLeft": round(600 / 900, 3),
        "capacity": 900,
        "documented": False,
        "perResource": False,
    }


def test_share_must_be_a_fraction():
    with pytest.raises(ValueError):
        ComputeBudget(share=0)
