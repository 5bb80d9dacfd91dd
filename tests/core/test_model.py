import math

import pytest

from sfu_balancer.core import (
    BridgeInfo,
    BridgeState,
    Capacity,
    Decision,
    JoinRequest,
    LoadReport,
    Placement,
    Reason,
)


def test_capacity_rejects_non_positive_and_non_finite() -> None:
    with pytest.raises(ValueError, match=r"capacity\.cpu"):
        Capacity(cpu=0)
    with pytest.raises(ValueError, match=r"capacity\.egress_mbps"):
        Capacity(egress_mbps=math.inf)


def test_draining_requires_a_deadline_and_only_then() -> None:
    with pytest.raises(ValueError, match="drain_deadline"):
        BridgeInfo("b1", "h", state=BridgeState.DRAINING)
    with pytest.raises(ValueError, match="drain_deadline"):
        BridgeInfo("b1", "h", drain_deadline=5.0)
    assert BridgeInfo("b1", "h", state=BridgeState.DRAINING, drain_deadline=5.0).drain_deadline == 5


def test_bridge_needs_id_and_host() -> None:
    with pytest.raises(ValueError, match="bridge id"):
        BridgeInfo("", "h")
    with pytest.raises(ValueError, match="host"):
        BridgeInfo("b", "")


def test_load_report_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="cpu"):
        LoadReport("b", 1.0, cpu=-0.1)
    with pytest.raises(ValueError, match="host_cpu"):
        LoadReport("b", 1.0, host_cpu=1.5)
    with pytest.raises(ValueError, match="measured_at"):
        LoadReport("b", math.nan)


def test_load_vector_converts_bytes_to_megabits() -> None:
    report = LoadReport("b", 0.0, cpu=0.5, bytes_out_per_s=1_250_000, bytes_in_per_s=125_000)
    assert report.load_vector() == pytest.approx((0.5, 10.0, 1.0))


def test_placement_sizes_and_decision_admitted() -> None:
    placement = Placement("r", (("b1", 3), ("b2", 2)))
    assert placement.bridge_ids == ("b1", "b2")
    assert placement.size == 5
    assert not Decision("r", "p", None, Reason.NO_BRIDGE).admitted
    assert Decision("r", "p", "b1", Reason.STICKY).admitted


def test_join_request_needs_room_and_participant() -> None:
    with pytest.raises(ValueError, match="room"):
        JoinRequest("", "p")
    with pytest.raises(ValueError, match="participant"):
        JoinRequest("r", "")


def test_value_types_are_frozen() -> None:
    cap = Capacity()
    with pytest.raises(AttributeError):
        cap.cpu = 2.0  # type: ignore[misc]
