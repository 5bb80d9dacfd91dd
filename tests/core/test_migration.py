import numpy as np

from sfu_balancer.core import RoomPortion, RoutingConfig, plan_drain, plan_rebalance
from sfu_balancer.core.model import Reason

from .fleet import COSTS, view

IDS = ["b0", "b1", "b2"]


def _portions(bridge: int, sizes: list[int]) -> list[RoomPortion]:
    return [RoomPortion(f"r{bridge}-{i}", bridge, n, (bridge,)) for i, n in enumerate(sizes)]


def test_hot_bridge_sheds_smallest_rooms_within_budget() -> None:
    v = view([[1.2, 0.1, 0.2]])
    portions = _portions(0, [30, 2, 3, 4, 6])
    config = RoutingConfig(max_moves=10)
    plan = plan_rebalance(v, IDS, portions, np.full(3, -1e9), 1000.0,
                          config.build_policy(), config, COSTS, np.random.default_rng(0))
    moved = [m.participants for m in plan.moves]
    assert sum(moved) <= 10 and moved == sorted(moved)
    assert moved[0] == 2
    assert all(m.from_bridge == "b0" and m.to_bridge in ("b1", "b2") for m in plan.moves)
    assert all(m.reason is Reason.MIGRATE_HOT for m in plan.moves)
    assert plan.rebalanced == [0]


def test_cooldown_and_cool_bridges_are_left_alone() -> None:
    v = view([[1.2, 0.1, 0.2]])
    config = RoutingConfig()
    recently = np.array([900.0, -1e9, -1e9])
    plan = plan_rebalance(v, IDS, _portions(0, [2, 3]), recently, 1000.0,
                          config.build_policy(), config, COSTS, np.random.default_rng(0))
    assert plan.moves == []
    cool = view([[0.5, 0.1, 0.2]])
    plan = plan_rebalance(cool, IDS, _portions(0, [2, 3]), np.full(3, -1e9), 1000.0,
                          config.build_policy(), config, COSTS, np.random.default_rng(0))
    assert plan.moves == []


def test_no_move_to_a_bridge_that_would_become_hot() -> None:
    v = view([[1.2, 0.89, 0.89]])
    config = RoutingConfig()
    plan = plan_rebalance(v, IDS, _portions(0, [8]), np.full(3, -1e9), 1000.0,
                          config.build_policy(), config, COSTS, np.random.default_rng(0))
    assert plan.moves == []


def test_drain_moves_everything_after_the_deadline_only() -> None:
    v = view([[0.5, 0.1, 0.2]], open_for_new=np.array([[False, True, True]]))
    portions = _portions(0, [30, 2]) + _portions(1, [5])
    config = RoutingConfig()
    deadlines = np.array([100.0, np.inf, np.inf])
    early = plan_drain(v, IDS, portions, deadlines, 99.0, config.build_policy(), COSTS,
                       np.random.default_rng(0))
    assert early.moves == []
    plan = plan_drain(v, IDS, portions, deadlines, 100.0, config.build_policy(), COSTS,
                      np.random.default_rng(0))
    assert sorted(m.participants for m in plan.moves) == [2, 30]
    assert {m.to_bridge for m in plan.moves} <= {"b1", "b2"}
    assert all(m.reason is Reason.MIGRATE_DRAIN for m in plan.moves)


def test_drain_with_nowhere_to_go_strands_rooms() -> None:
    v = view([[0.5, 0.1]], open_for_new=np.array([[False, False]]))
    plan = plan_drain(v, IDS[:2], _portions(0, [3]), np.array([0.0, np.inf]), 1.0,
                      RoutingConfig().build_policy(), COSTS, np.random.default_rng(0))
    assert plan.moves == [] and [p.members for p in plan.stranded] == [3]
