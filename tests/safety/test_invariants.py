"""The invariant rules of the safety harness on hand-written journal and ledger data (no processes)."""

from __future__ import annotations

from tests.safety import invariants as inv

KEY = "rg/web"


def write(seq, t, operation_id="VirtualMachineScaleSets_DeleteInstances", ids=("2",), status=202, **more):
    return {
        "seq": seq,
        "t": t,
        "at": f"t{t}",
        "operationId": operation_id,
        "scaleSet": KEY,
        "instanceIds": list(ids),
        "status": status,
        "operation": f"op{seq}" if 200 <= status < 300 and status != 204 else None,
        "outcome": more.pop("outcome", "Succeeded"),
        "endedT": more.pop("endedT", t + 2),
        **more,
    }


def point(t, capacity, live, succeeded=None):
    return {
        "t": t,
        "at": f"t{t}",
        "capacity": capacity,
        "live": live,
        "succeeded": live if succeeded is None else succeeded,
    }


def test_write_kinds_follow_the_operation_ids():
    assert inv.write_kind("VirtualMachineScaleSets_DeleteInstances") == "delete"
    assert inv.write_kind("VirtualMachineScaleSetVMs_Delete") == "delete"
    assert inv.write_kind("VirtualMachines_Reimage") == "reimage"
    assert inv.write_kind("VirtualMachineScaleSetVMs_Restart") == "restart"
    assert inv.write_kind("VirtualMachineScaleSets_ScaleOut") is None
    assert inv.write_kind("VirtualMachineScaleSets_Update") is None


def test_a_second_accepted_delete_of_one_instance_is_a_double():
    found = inv.double_actions([write(1, 10.0, outcome="InProgress", endedT=None), write(2, 11.0)])
    assert [v.invariant for v in found] == ["double-action"]
    assert "instance 2" in found[0].detail


def test_a_retry_after_a_failed_or_canceled_delete_is_not_a_double():
    failed = write(1, 10.0, outcome="Failed", endedT=12.0)
    canceled = write(2, 13.0, outcome="Canceled", endedT=14.0)
    assert inv.double_actions([failed, canceled, write(3, 15.0)]) == []
    # ... but a retry while the failed one was still running is
    assert len(inv.double_actions([write(1, 10.0, outcome="Failed", endedT=20.0), write(2, 15.0)])) == 1


def test_refused_writes_other_instances_and_other_kinds_are_not_doubles():
    writes = [
        write(1, 10.0),
        write(2, 11.0, status=409),  # refused
        write(3, 12.0, status=204),  # already gone: no operation
        write(4, 13.0, ids=("3",)),
        write(5, 14.0, operation_id="VirtualMachineScaleSetVMs_Restart"),
        write(6, 15.0, operation_id="VirtualMachineScaleSets_ScaleOut", ids=()),
    ]
    assert inv.double_actions(writes) == []


def test_below_floor_ignores_points_before_the_round_started():
    points = [point(1, 4, 1), point(10, 4, 2), point(11, 4, 1)]
    assert [v.detail.split(":")[0] for v in inv.below_floor(points, floor=2, since=5)] == ["t11"]
    assert inv.capacity_floor(4, 50) == 2 and inv.capacity_floor(1, 50) == 1 and inv.capacity_floor(5, 0) == 1


def test_short_seconds_integrate_the_time_below_target():
    points = [point(0, 4, 3), point(10, 3, 3), point(13, 4, 4), point(20, 3, 3)]
    assert inv.short_seconds(points, target=4, until=25) == 3 + 5
    assert inv.short_seconds(points[:2], target=4, until=10) == 0


def test_capacity_restored_strict_and_lenient():
    assert inv.capacity_restored([point(0, 4, 3), point(9, 4, 4)], 4) is None
    assert inv.capacity_restored([point(0, 4, 3), point(9, 3, 3)], 4).invariant == "capacity-short"
    # the failed instance still there: short of a replacement, fine for a race only
    assert inv.capacity_restored([point(0, 4, 3), point(9, 4, 3)], 4) is not None
    assert inv.capacity_restored([point(0, 4, 3), point(9, 4, 3)], 4, replaced=False) is None
    assert inv.capacity_restored([point(0, 4, 3), point(9, 3, 3)], 4, replaced=False) is not None
    assert inv.capacity_restored([], 4) is not None


def test_records_end_terminal_or_with_a_reason():
    records = [
        {"rowKey": "a|*", "state": "succeeded", "reason": ""},
        {"rowKey": "b|*", "state": "held", "reason": "storm brake"},
        {"rowKey": "c|*", "state": "failed", "reason": ""},
        {"rowKey": "d|*", "state": "running", "reason": "replace-failed-instances started"},
        {"rowKey": "e|*", "state": "verifying", "reason": "waiting for new instance(s) 4"},
    ]
    assert [v.detail.split(":")[0] for v in inv.non_terminal(records)] == ["c|*", "d|*"]


def test_every_resume_needs_a_resume_row_after_the_kill():
    history = [
        {"t": 5.0, "findingCode": "provisioning-failed", "target": "*", "reason": "resumed by run x", "reasonCode": ""},
        {"t": 20.0, "findingCode": "unhealthy-not-repaired", "target": "2", "reason": "", "reasonCode": "resumed"},
        {"t": 21.0, "findingCode": "repairs-disabled", "target": "*", "reason": "Resuming enable-automatic-repairs"},
    ]
    resumed = ["provisioning-failed|*", "unhealthy-not-repaired|2", "repairs-disabled|*"]
    missing = inv.unrecorded_resumes(resumed, history, since=10.0)
    assert [v.detail.split(":")[0] for v in missing] == ["provisioning-failed|*"]  # its row predates the kill
    assert not inv.is_resume_row({"reason": "the finding is gone", "reasonCode": "resolved"})


def test_two_instance_writes_in_flight_at_once_on_one_scale_set_are_caught():
    first = write(1, 10.0, ids=("2",), endedT=12.0)
    overlapping = write(2, 11.0, ids=("5",), endedT=13.0)
    after = write(3, 12.5, ids=("5",), endedT=14.0)
    assert len(inv.concurrent_disruptions([first, overlapping], "rg/web")) == 1
    assert inv.concurrent_disruptions([first, after], "rg/web") == []  # one after the other
    assert inv.concurrent_disruptions([first, write(2, 11.0, ids=("2",))], "rg/web") == []  # same instance: a double
