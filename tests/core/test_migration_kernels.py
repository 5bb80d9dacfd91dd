"""The compiled migration plans equal the numpy form they replaced, on random fleets.

``_reference_rebalance`` and ``_reference_drain`` are the numpy form of ``plan_rebalance`` and
``plan_drain`` before the plans were compiled (a ``PlacementRequest`` and ``Policy.choose`` per
move). The compiled plans promise the same moves, the same floats, the same random stream and
the same policy state, for built-in policies (chosen in the kernel) and for policies asked from
Python (round_robin's per-row cursor, a registered policy without a kernel)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfu_balancer.core import (
    CostTable,
    FleetView,
    PlacementRequest,
    Policy,
    RoomPortion,
    RoutingConfig,
    plan_drain,
    plan_rebalance,
)
from sfu_balancer.core.load import room_streams
from sfu_balancer.core.migration import (
    MigrationPlan,
    RowPortions,
    rebalance_due,
    rebalance_moves,
    rebalance_moves_rows,
)
from sfu_balancer.core.model import Migration, Reason
from sfu_balancer.core.placement import checked_choice

from .custom import LeastProjected
from .fleet import view as make_view

COSTS = CostTable(last_n=5)
POLICIES = ["balanced", "fill_first", "jicofo_single", "least_loaded", "power_of_d", "random",
            "region_aware", "round_robin", "custom"]


def _portion_load(members: int, costs: CostTable) -> np.ndarray:
    egress, ingress = room_streams(np.array([members]), costs.last_n)
    result: np.ndarray = costs.streams_to_load(egress, ingress)[0]
    return result


def _move(view: FleetView, load: np.ndarray, portion: RoomPortion, policy: Policy,
          costs: CostTable, limit_stress: float, rng: np.random.Generator) -> int:
    portion_load = _portion_load(portion.members, costs)
    projected = np.max((load + portion_load) / view.limit, axis=-1)
    eligible = view.open_for_new[0].copy()
    eligible[list(portion.bridges)] = False
    eligible &= projected < limit_stress
    bridges = view.bridges
    moved_view = replace(view, pending=(load - view.load[0])[None])
    request = PlacementRequest(
        eligible=eligible[None], cost=np.broadcast_to(portion_load, (1, bridges, 3)).copy(),
        region=np.array([-1]), room_members=np.zeros((1, bridges), dtype=np.int64),
        new_room=np.array([False]), costs=costs, expected_growth=np.zeros((1, bridges, 3)))
    choice = policy.choose(moved_view, request, rng)
    return int(checked_choice(policy, choice, request.eligible, np.zeros(1, np.int64))[0])


def _reference_rebalance(view: FleetView, ids: Sequence[str], portions: list[RoomPortion],
                         last: np.ndarray, now: float, policy: Policy, config: RoutingConfig,
                         costs: CostTable, rng: np.random.Generator
                         ) -> tuple[MigrationPlan, np.ndarray]:
    plan = MigrationPlan()
    load = view.expected_load[0].copy()
    stress = np.max(load / view.limit, axis=-1)
    cooled = now - last >= config.move_cooldown_s
    hot = np.flatnonzero(view.available[0] & cooled & (stress >= config.hot_stress))
    for source in hot[np.argsort(-stress[hot], kind="stable")]:
        budget = config.max_moves
        for portion in sorted((p for p in portions if p.bridge == source),
                              key=lambda p: p.members):
            if np.max(load[source] / view.limit[source]) < config.hot_stress:
                break
            if portion.members > budget:
                continue
            target = _move(view, load, portion, policy, costs, config.hot_stress, rng)
            if target == -1:
                continue
            moved = _portion_load(portion.members, costs)
            load[source] -= moved
            load[target] += moved
            budget -= portion.members
            plan.moves.append(Migration(portion.room, ids[source], ids[target],
                                        portion.members, Reason.MIGRATE_HOT))
        if budget < config.max_moves:
            plan.rebalanced.append(int(source))
    return plan, load


def _reference_drain(view: FleetView, ids: Sequence[str], portions: list[RoomPortion],
                     deadline: np.ndarray, now: float, policy: Policy, costs: CostTable,
                     rng: np.random.Generator) -> tuple[MigrationPlan, np.ndarray]:
    plan = MigrationPlan()
    load = view.expected_load[0].copy()
    due = set(np.flatnonzero(deadline <= now).tolist())
    for portion in sorted(portions, key=lambda p: -p.members):
        if portion.bridge not in due:
            continue
        target = _move(view, load, portion, policy, costs, np.inf, rng)
        if target == -1:
            plan.stranded.append(portion)
            continue
        moved = _portion_load(portion.members, costs)
        load[portion.bridge] -= moved
        load[target] += moved
        plan.moves.append(Migration(portion.room, ids[portion.bridge], ids[target],
                                    portion.members, Reason.MIGRATE_DRAIN))
    return plan, load


def _fleet(seed: int) -> tuple[FleetView, list[str], list[RoomPortion], np.ndarray]:
    """A one-row view with a few hot bridges, a ledger, closed bridges, and rooms (some split)
    whose sizes tie often."""
    rng = np.random.default_rng(seed)
    bridges = int(rng.integers(2, 7))
    stress = rng.uniform(0.2, 1.5, (1, bridges))
    available = rng.random((1, bridges)) < 0.9
    pending = np.zeros((1, bridges, 3))
    pending[..., 0] = rng.uniform(0.0, 0.1, (1, bridges))
    v = make_view(stress, pending=pending, available=available,
                  open_for_new=available & (rng.random((1, bridges)) < 0.8),
                  age=rng.uniform(0.0, 3.0, (1, bridges)),
                  region=rng.integers(0, 2, bridges).tolist(),
                  recent=rng.integers(0, 5, (1, bridges)).astype(float))
    portions = []
    for room in range(int(rng.integers(0, 25))):
        hosts = np.flatnonzero(rng.random(bridges) < 0.3)
        hosts = hosts if hosts.size else np.array([int(rng.integers(0, bridges))])
        for b in hosts.tolist():
            portions.append(RoomPortion(f"r{room}", b, int(rng.integers(1, 7)),
                                        tuple(hosts.tolist())))
    rng.shuffle(portions)  # type: ignore[arg-type]
    last = np.where(rng.random(bridges) < 0.2, 950.0, -1e9)
    return v, [f"b{i}" for i in range(bridges)], portions, last


def _policy(name: str) -> Policy:
    if name == "custom":
        return LeastProjected()
    policy = RoutingConfig(policy=name).build_policy()
    policy.reset(1)
    return policy


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), name=st.sampled_from(POLICIES),
       budget=st.sampled_from([3, 10, 40]))
def test_rebalance_equals_the_numpy_plan(seed: int, name: str, budget: int) -> None:
    v, ids, portions, last = _fleet(seed)
    config = RoutingConfig(max_moves=budget, hot_stress=0.9)
    a_policy, b_policy = _policy(name), _policy(name)
    a_rng, b_rng = np.random.default_rng(seed), np.random.default_rng(seed)
    want, _ = _reference_rebalance(v, ids, portions, last, 1000.0, a_policy, config, COSTS,
                                   a_rng)
    got = plan_rebalance(v, ids, portions, last, 1000.0, b_policy, config, COSTS, b_rng)
    assert got.moves == want.moves
    assert got.rebalanced == want.rebalanced
    assert a_rng.random() == b_rng.random()  # the same draws were consumed
    assert a_policy.state() == b_policy.state()


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), name=st.sampled_from(POLICIES))
def test_drain_equals_the_numpy_plan(seed: int, name: str) -> None:
    v, ids, portions, _ = _fleet(seed)
    deadline = np.where(np.random.default_rng(seed + 1).random(len(ids)) < 0.5, 10.0, np.inf)
    a_policy, b_policy = _policy(name), _policy(name)
    a_rng, b_rng = np.random.default_rng(seed), np.random.default_rng(seed)
    want, _ = _reference_drain(v, ids, portions, deadline, 20.0, a_policy, COSTS, a_rng)
    got = plan_drain(v, ids, portions, deadline, 20.0, b_policy, COSTS, b_rng)
    assert got.moves == want.moves
    assert got.stranded == want.stranded
    assert a_rng.random() == b_rng.random()
    assert a_policy.state() == b_policy.state()


def test_a_row_of_a_larger_view_plans_as_that_row_alone() -> None:
    """The simulator's form: one row of a many-row view, portions as arrays."""
    views = [_fleet(s) for s in range(40)]
    width = max(v.bridges for v, *_ in views)
    hot_rows = 0
    for seed, (v, ids, portions, last) in enumerate(views):
        if v.bridges != width or not portions:
            continue
        stack = replace(v, load=np.concatenate([v.load * 0.5, v.load]),
                        pending=np.concatenate([v.pending, v.pending]),
                        report_age=np.concatenate([v.report_age, v.report_age]),
                        available=np.concatenate([v.available, v.available]),
                        open_for_new=np.concatenate([v.open_for_new, v.open_for_new]),
                        recent_placements=np.concatenate([v.recent_placements] * 2))
        config = RoutingConfig()
        policy = _policy("random")
        want = plan_rebalance(v, ids, portions, last, 1000.0, policy, config, COSTS,
                              np.random.default_rng(seed))
        hosts = np.zeros((len(portions), width), np.bool_)
        for i, p in enumerate(portions):
            hosts[i, list(p.bridges)] = True
        moved, targets, shed = rebalance_moves(
            stack, 1, np.array([p.bridge for p in portions]),
            np.array([p.members for p in portions]), hosts, last, 1000.0, policy, config,
            COSTS, np.random.default_rng(seed))
        assert [(portions[i].room, ids[t]) for i, t in zip(moved, targets, strict=True)] == \
            [(m.room, m.to_bridge) for m in want.moves]
        assert shed.tolist() == want.rebalanced
        hot_rows += bool(want.moves)
    assert hot_rows >= 3  # the comparison saw real moves


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), name=st.sampled_from(["random", "balanced",
                                                            "power_of_d", "least_loaded"]))
def test_many_rows_in_one_call_plan_as_row_by_row(seed: int, name: str) -> None:
    """``rebalance_moves_rows`` (the simulator's batched form) gives each row the plan
    ``rebalance_moves`` gives it, drawing the same uniforms in the same order."""
    _rows_against_row_by_row(seed, name)


def test_batched_rows_compared_real_moves() -> None:
    assert sum(_rows_against_row_by_row(seed, "random") for seed in range(10)) > 10


def _rows_against_row_by_row(seed: int, name: str) -> int:
    """Plans some rows of a many-row view both ways, asserts they agree; returns the moves."""
    fleets = [_fleet(seed + k) for k in range(12)]
    width = fleets[0][0].bridges
    fleets = [f for f in fleets if f[0].bridges == width]
    view = replace(fleets[0][0], **{
        field: np.concatenate([getattr(f[0], field) for f in fleets])
        for field in ("load", "pending", "report_age", "available", "open_for_new",
                      "recent_placements")})
    rows = np.array([k for k in range(len(fleets)) if k % 3 != 1], np.int64)  # a subset
    config = RoutingConfig(max_moves=10, hot_stress=0.9)
    policy = _policy(name)
    last = np.stack([fleets[k][3] for k in rows.tolist()])
    parts = [fleets[k][2] for k in rows.tolist()]
    starts = np.cumsum([0] + [len(p) for p in parts])
    flat = [p for row in parts for p in row]
    hosts = np.zeros((len(flat), width), np.bool_)
    for i, p in enumerate(flat):
        hosts[i, list(p.bridges)] = True
    bridges = np.array([p.bridge for p in flat], np.int64)
    members = np.array([p.members for p in flat], np.int64)
    a_rng, b_rng = np.random.default_rng(seed), np.random.default_rng(seed)
    found = RowPortions(rows, starts, bridges, members, hosts)
    portion, target, moves, shed, shed_count = rebalance_moves_rows(
        view, found, last, 1000.0, policy, config, COSTS, a_rng)
    planned = 0
    for k, r in enumerate(rows.tolist()):
        lo, hi = starts[k], starts[k + 1]
        want = rebalance_moves(view, r, bridges[lo:hi], members[lo:hi], hosts[lo:hi],
                               last[k], 1000.0, policy, config, COSTS, b_rng)
        assert portion[lo:lo + moves[k]].tolist() == want[0].tolist()
        assert target[lo:lo + moves[k]].tolist() == want[1].tolist()
        assert shed[k, :shed_count[k]].tolist() == want[2].tolist()
        planned += int(moves[k])
    assert a_rng.random() == b_rng.random()  # the same draws were consumed
    with pytest.raises(ValueError, match="asked from Python"):
        rebalance_moves_rows(view, found, last, 1000.0, _policy("custom"), config, COSTS,
                             a_rng)
    return planned


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_rebalance_due_is_the_plans_hot_set(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows, bridges = 6, 5
    v = make_view(rng.uniform(0.5, 1.3, (rows, bridges)),
                  pending=rng.uniform(0.0, 0.1, (rows, bridges, 3)),
                  available=rng.random((rows, bridges)) < 0.8)
    last = np.where(rng.random((rows, bridges)) < 0.3, 950.0, -1e9)
    config = RoutingConfig()
    due = rebalance_due(v, last, 1000.0, config)
    stress = np.max(v.expected_load / v.limit, axis=-1)  # as the numpy plan computed it
    want = v.available & (1000.0 - last >= config.move_cooldown_s) & \
        (stress >= config.hot_stress)
    assert np.array_equal(due, want)


def test_an_asked_policy_that_picks_an_ineligible_bridge_is_refused() -> None:
    class Stubborn(LeastProjected):
        def choose(self, view: FleetView, request: PlacementRequest,
                   rng: np.random.Generator) -> np.ndarray:
            return np.zeros(view.replicas, dtype=np.int64)  # bridge 0: the hot source

    v = make_view([[1.2, 0.1, 0.2]])
    portions = [RoomPortion("r", 0, 2, (0,))]
    with pytest.raises(ValueError, match="not eligible"):
        plan_rebalance(v, ["b0", "b1", "b2"], portions, np.full(3, -1e9), 1000.0, Stubborn(),
                       RoutingConfig(), COSTS, np.random.default_rng(0))


def test_warm_up_plans_compiles_both_plans_with_every_policy() -> None:
    from sfu_balancer.core import _migrate_kernels
    from sfu_balancer.core.migration import warm_up_plans
    from sfu_balancer.core.policies.registry import policy_names

    for name in policy_names():
        config = RoutingConfig(policy=name)
        plan = warm_up_plans(config.build_policy(), config, COSTS)
        assert [m.to_bridge for m in plan.moves] in ([], ["warm-up-1"]), name
        if name == "random":  # the hot bridge sheds its room to the only other one
            assert [(m.room, m.from_bridge) for m in plan.moves] == [("warm-up", "warm-up-0")]
    assert _migrate_kernels.rebalance.signatures and _migrate_kernels.drain.signatures
