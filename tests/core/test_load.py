import numpy as np
import pytest

from sfu_balancer.core import CostTable, Thresholds, join_cost, stress
from sfu_balancer.core.load import join_streams, room_streams
from sfu_balancer.core.model import CPU, EGRESS, INGRESS


def test_stress_is_max_over_cpu_and_bandwidth() -> None:
    capacity = np.array([[1.0, 100.0, 100.0], [1.0, 100.0, 100.0]])
    load = np.array([[0.4, 10.0, 5.0], [0.16, 90.0, 5.0]])  # 2nd: NIC full at 16 % CPU
    s = stress(load, capacity, Thresholds())
    assert s == pytest.approx([0.5, 1.125])
    assert s[1] >= 1.0  # overloaded by bandwidth alone


def test_thresholds_validate() -> None:
    with pytest.raises(ValueError, match="cpu_threshold"):
        Thresholds(cpu=0)
    with pytest.raises(ValueError, match="bandwidth_threshold"):
        Thresholds(bandwidth=1.5)


def test_join_streams_star_room_and_relay() -> None:
    # newcomer joins a room of 3 on one bridge: 1 in, 3 to itself + 3 to the others = 6 out
    egress, ingress = join_streams(np.array([3]), np.array([3]), np.array([1]), last_n=25)
    assert (egress[0], ingress[0]) == (6.0, 1.0)
    # the same room, but the join lands on a new bridge: it receives 3 over the relay, sends
    # 3 to the newcomer and relays the newcomer once to the room's bridge
    egress, ingress = join_streams(np.array([0]), np.array([3]), np.array([1]), last_n=25)
    assert (egress[0], ingress[0]) == (4.0, 4.0)


def test_last_n_caps_streams() -> None:
    egress, _ = join_streams(np.array([60]), np.array([60]), np.array([1]), last_n=25)
    assert egress[0] == 50.0
    room_out, room_in = room_streams(np.array([30]), last_n=25)
    assert (room_out[0], room_in[0]) == (30 * 25, 30)


def test_join_cost_uses_cost_table() -> None:
    costs = CostTable(video_kbps=460, audio_kbps=40, packets_per_s=100,
                      cpu_us_per_packet_out=10, cpu_us_per_packet_in=20)
    cost = join_cost(np.array([[1, 0]]), np.array([[1]]), np.array([[1]]), costs)
    assert cost.shape == (1, 2, 3)
    # bridge 0: 2 out, 1 in
    assert cost[0, 0, EGRESS] == pytest.approx(1.0)
    assert cost[0, 0, INGRESS] == pytest.approx(0.5)
    assert cost[0, 0, CPU] == pytest.approx(2 * 100 * 10e-6 + 100 * 20e-6)


def test_cost_table_rejects_bad_values_and_unknown_keys() -> None:
    with pytest.raises(ValueError, match="video_kbps"):
        CostTable(video_kbps=-1)
    with pytest.raises(ValueError, match="last_n"):
        CostTable(last_n=0)
    with pytest.raises(ValueError, match="unknown cost keys"):
        CostTable.from_mapping({"video_kbps": 300, "bogus": 1})
    assert CostTable.from_mapping({"video_kbps": 300}).video_kbps == 300
