"""Migration plans: moving rooms off hot bridges and off draining bridges.

Rules:
- Rebalance: a bridge whose expected stress is at least ``hot_stress``, and that has not been
  rebalanced within ``move_cooldown_s``, sheds rooms smallest first (a small room moves with the
  shortest media gap), at most ``max_moves`` participants per round, until its stress falls
  below ``hot_stress``. A room portion moves only to a bridge that stays below ``hot_stress``
  with it, chosen by the policy among bridges open for new rooms that do not host that room.
- Drain: once a draining bridge passes its deadline, every room portion on it moves, with no
  move budget; a portion with no target at all is left in place and reported in ``stranded``.
- Plans see their own moves: each planned move updates the expected load used for the next.
- Plans are for one replica (R = 1); the simulator calls them per replica.
- The plans are compiled (``_migrate_kernels``); ``rebalance_moves`` and ``drain_moves`` take
  the portions as arrays and one row of a view of many (the simulator's form), and
  ``plan_rebalance`` and ``plan_drain`` are those on ``RoomPortion`` lists and bridge ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from . import _migrate_kernels as _kernels
from .config import RoutingConfig
from .load import CostTable, FloatArray, IntArray
from .model import Migration, Reason
from .placement import checked_choice
from .policies.base import BoolArray, FleetView, PlacementRequest, Policy, f64, i64
from .policies.kernels import EXTERNAL


@dataclass(frozen=True)
class RoomPortion:
    """``members`` of ``room`` on bridge index ``bridge``; ``bridges`` = all bridges of the room."""

    room: str
    bridge: int
    members: int
    bridges: tuple[int, ...]


@dataclass
class MigrationPlan:
    moves: list[Migration] = field(default_factory=list)
    stranded: list[RoomPortion] = field(default_factory=list)
    rebalanced: list[int] = field(default_factory=list)  # bridges that shed load this round


_ROW0 = np.zeros(1, dtype=np.int64)


def asked_from_python(policy: Policy) -> bool:
    """Whether the policy must be asked from Python: no kernel, or per-row state (the kernel
    call of ``Policy.choose`` on a one-row view is what such a policy's state expects)."""
    return policy.kind == EXTERNAL or type(policy).kernel_state is not Policy.kernel_state


class _Row:
    """Row ``row`` of ``view`` as the kernels read it, and the buffers of one plan."""

    def __init__(self, view: FleetView, row: int, portions: int, costs: CostTable) -> None:
        self.view, self.row = view, row
        self.load = f64(view.load[row])
        # the plan's expected load: the reported load plus the ledger, then each planned move
        self.work = self.load + view.pending[row]
        bridges = self.load.shape[0]
        self.args = (self.load, f64(view.limit), f64(view.inverse_limit), f64(view.capacity),
                     f64(view.report_age[row]), float(view.report_interval_s),
                     i64(view.region), f64(view.recent_placements[row]))
        self.cp = costs.kernel_params()
        self.st = np.zeros(_kernels.STATE, dtype=np.int64)
        self.elig = np.zeros(bridges, dtype=np.bool_)
        self.pend, self.cost = np.zeros((bridges, 3)), np.zeros((bridges, 3))
        self.portion = np.zeros(portions, dtype=np.int64)
        self.target = np.zeros(portions, dtype=np.int64)

    def ask(self, policy: Policy, costs: CostTable, rng: np.random.Generator) -> int:
        """The policy's target for the request the kernel stopped at (as ``Policy.choose`` on
        a one-row view whose pending load is the plan's)."""
        v, one = self.view, slice(self.row, self.row + 1)
        bridges = self.load.shape[0]
        moved_view = FleetView(
            load=v.load[one], pending=self.pend[None].copy(), capacity=v.capacity,
            report_age=v.report_age[one], available=v.available[one],
            open_for_new=v.open_for_new[one], region=v.region,
            recent_placements=v.recent_placements[one], thresholds=v.thresholds,
            report_interval_s=v.report_interval_s)
        request = PlacementRequest(
            eligible=self.elig[None].copy(), cost=self.cost[None].copy(),
            region=np.array([-1]), room_members=np.zeros((1, bridges), dtype=np.int64),
            new_room=np.array([False]), costs=costs,
            expected_growth=np.zeros((1, bridges, 3)))  # a moved room has already grown
        choice = policy.choose(moved_view, request, rng)
        return int(checked_choice(policy, choice, request.eligible, _ROW0)[0])


def rebalance_due(view: FleetView, last_rebalanced: FloatArray, now: float,
                  config: RoutingConfig) -> BoolArray:
    """(R, B) the bridges a rebalancing round takes as hot in each row (``rebalance_moves``
    plans only for those): available, cooled since ``last_rebalanced`` (R, B), expected
    stress >= ``hot_stress``. A row with none needs no plan."""
    out = np.empty(view.available.shape, dtype=np.bool_)
    cooled = np.ascontiguousarray(now - last_rebalanced >= config.move_cooldown_s)
    _kernels.hot_bridges(f64(view.load), f64(view.pending), f64(view.limit),
                         np.ascontiguousarray(view.available), cooled,
                         float(config.hot_stress), out)
    return out


def rebalance_moves(
    view: FleetView,
    row: int,
    bridges: IntArray,
    members: IntArray,
    hosts: BoolArray,
    last_rebalanced: FloatArray,
    now: float,
    policy: Policy,
    config: RoutingConfig,
    costs: CostTable,
    rng: np.random.Generator,
) -> tuple[IntArray, IntArray, IntArray]:
    """One rebalancing round of row ``row``: portion i has ``members[i]`` on ``bridges[i]``
    and its room is on the bridges ``hosts[i]`` (P, B). Returns (portion, target) of each move
    in plan order and the bridges that shed load, hottest first."""
    r = _Row(view, row, len(bridges), costs)
    width = r.load.shape[0]
    cooled = np.ascontiguousarray(now - last_rebalanced >= config.move_cooldown_s)
    order, shed = np.zeros(width, dtype=np.int64), np.zeros(width, dtype=np.int64)
    p_bridge, p_members = i64(bridges), i64(members)
    p_hosts = np.ascontiguousarray(hosts, dtype=np.bool_).reshape(len(bridges), width)
    given = _kernels.NOT_GIVEN
    while _kernels.rebalance(
            policy.kind, f64(policy.kernel_params()), asked_from_python(policy), rng,
            policy.draws(), *r.args, np.ascontiguousarray(view.available[row]),
            np.ascontiguousarray(view.open_for_new[row]), cooled, float(config.hot_stress),
            int(config.max_moves), p_bridge, p_members, p_hosts, r.cp, r.work, r.st, given,
            order, r.elig, r.pend, r.cost, r.portion, r.target, shed) == _kernels.ASK:
        given = r.ask(policy, costs, rng)
    moves = int(r.st[_kernels.S_MOVES])
    return r.portion[:moves], r.target[:moves], shed[:int(r.st[_kernels.S_DONE])]


@dataclass(frozen=True)
class RowPortions:
    """The room portions of several rows of a view, one row after the other: row
    ``rows[k]``'s are ``starts[k]:starts[k + 1]`` (portion i: ``members[i]`` on ``bridges[i]``,
    its room on the bridges ``hosts[i]``)."""

    rows: IntArray  # (K,)
    starts: IntArray  # (K + 1,)
    bridges: IntArray  # (P,)
    members: IntArray  # (P,)
    hosts: BoolArray  # (P, B)


def rebalance_moves_rows(view: FleetView, portions: RowPortions, last_rebalanced: FloatArray,
                         now: float, policy: Policy, config: RoutingConfig, costs: CostTable,
                         rng: np.random.Generator
                         ) -> tuple[IntArray, IntArray, IntArray, IntArray, IntArray]:
    """``rebalance_moves`` for each row of ``portions`` in turn, in one compiled call, for a
    policy that is never asked from Python (``asked_from_python``); ``last_rebalanced``
    (K, B) is per row k. Returns (portion, target) with row k's moves from ``starts[k]`` on
    (portion indices within the row's portions), the moves per row, the bridges that shed
    load (K, B) and how many per row: the same plans, drawing from ``rng`` in the same order,
    as the per-row calls."""
    if asked_from_python(policy):
        raise ValueError(f"rebalance_moves_rows: policy {policy.name!r} is asked from Python; "
                         f"call rebalance_moves per row")
    rows, starts = portions.rows, portions.starts
    count, width = len(rows), view.bridges
    total = int(starts[-1]) if count else 0
    portion, target = np.zeros(total, np.int64), np.zeros(total, np.int64)
    moves, shed_count = np.zeros(count, np.int64), np.zeros(count, np.int64)
    shed = np.zeros((count, width), np.int64)
    cooled = np.ascontiguousarray(now - last_rebalanced >= config.move_cooldown_s)
    _kernels.rebalance_rows(
        policy.kind, f64(policy.kernel_params()), rng, policy.draws(), f64(view.load),
        f64(view.pending), f64(view.limit), f64(view.inverse_limit), f64(view.capacity),
        f64(view.report_age), float(view.report_interval_s), i64(view.region),
        f64(view.recent_placements), np.ascontiguousarray(view.available, np.bool_),
        np.ascontiguousarray(view.open_for_new, np.bool_), cooled, float(config.hot_stress),
        int(config.max_moves), i64(rows), i64(starts), i64(portions.bridges),
        i64(portions.members),
        np.ascontiguousarray(portions.hosts, dtype=np.bool_).reshape(total, width),
        costs.kernel_params(), portion, target, moves, shed, shed_count)
    return portion, target, moves, shed, shed_count


def drain_moves(
    view: FleetView,
    row: int,
    bridges: IntArray,
    members: IntArray,
    hosts: BoolArray,
    drain_deadline: FloatArray,
    now: float,
    policy: Policy,
    costs: CostTable,
    rng: np.random.Generator,
) -> tuple[IntArray, IntArray]:
    """Row ``row``'s portions off bridges whose ``drain_deadline`` (B,) has passed (arrays as
    in ``rebalance_moves``): (portion, target) in plan order, target -1 = stranded."""
    r = _Row(view, row, len(bridges), costs)
    width = r.load.shape[0]
    due = np.ascontiguousarray(drain_deadline <= now)
    p_bridge, p_members = i64(bridges), i64(members)
    p_hosts = np.ascontiguousarray(hosts, dtype=np.bool_).reshape(len(bridges), width)
    order = np.zeros(len(bridges), dtype=np.int64)
    given = _kernels.NOT_GIVEN
    while _kernels.drain(
            policy.kind, f64(policy.kernel_params()), asked_from_python(policy), rng,
            policy.draws(), *r.args, np.ascontiguousarray(view.open_for_new[row]), due,
            p_bridge, p_members, p_hosts, r.cp, r.work, r.st, given, order, r.elig, r.pend,
            r.cost, r.portion, r.target) == _kernels.ASK:
        given = r.ask(policy, costs, rng)
    moves = int(r.st[_kernels.S_MOVES])
    return r.portion[:moves], r.target[:moves]


def _arrays(portions: Sequence[RoomPortion], bridges: int
            ) -> tuple[IntArray, IntArray, BoolArray]:
    hosts = np.zeros((len(portions), bridges), dtype=np.bool_)
    for i, p in enumerate(portions):
        hosts[i, list(p.bridges)] = True
    return (np.array([p.bridge for p in portions], dtype=np.int64),
            np.array([p.members for p in portions], dtype=np.int64), hosts)


def plan_rebalance(
    view: FleetView,
    ids: Sequence[str],
    portions: Sequence[RoomPortion],
    last_rebalanced: FloatArray,
    now: float,
    policy: Policy,
    config: RoutingConfig,
    costs: CostTable,
    rng: np.random.Generator,
) -> MigrationPlan:
    """Moves for one round; ``last_rebalanced`` (B,) holds when each bridge last shed load."""
    moved, targets, shed = rebalance_moves(view, 0, *_arrays(portions, len(ids)),
                                           last_rebalanced, now, policy, config, costs, rng)
    plan = MigrationPlan(rebalanced=shed.tolist())
    for i, target in zip(moved.tolist(), targets.tolist(), strict=True):
        p = portions[i]
        plan.moves.append(Migration(p.room, ids[p.bridge], ids[target], p.members,
                                    Reason.MIGRATE_HOT))
    return plan


def plan_drain(
    view: FleetView,
    ids: Sequence[str],
    portions: Sequence[RoomPortion],
    drain_deadline: FloatArray,
    now: float,
    policy: Policy,
    costs: CostTable,
    rng: np.random.Generator,
) -> MigrationPlan:
    """Moves every room portion off bridges whose ``drain_deadline`` (B,) has passed."""
    visited, targets = drain_moves(view, 0, *_arrays(portions, len(ids)), drain_deadline, now,
                                   policy, costs, rng)
    plan = MigrationPlan()
    for i, target in zip(visited.tolist(), targets.tolist(), strict=True):
        p = portions[i]
        if target < 0:
            plan.stranded.append(p)
        else:
            plan.moves.append(Migration(p.room, ids[p.bridge], ids[target], p.members,
                                        Reason.MIGRATE_DRAIN))
    return plan


def warm_up_plans(policy: Policy, config: RoutingConfig, costs: CostTable) -> MigrationPlan:
    """One throwaway rebalancing round and drain on a made-up two-bridge fleet, so that the
    compiled plans are compiled (or loaded from the on-disk cache, ~0.25 s) before a live
    balancer serves anyone: a cold compile takes seconds, which inside the event loop would
    stall every link at the first planned move. ``policy`` is a fresh instance."""
    capacity = np.tile([1.0, 1000.0, 1000.0], (2, 1))
    load = np.zeros((1, 2, 3))
    load[0, 0, 0] = 0.95 * capacity[0, 0] * config.thresholds.cpu  # bridge 0 is hot
    view = FleetView(load=load, pending=np.zeros_like(load), capacity=capacity,
                     report_age=np.zeros((1, 2)), available=np.ones((1, 2), dtype=np.bool_),
                     open_for_new=np.ones((1, 2), dtype=np.bool_),
                     region=np.zeros(2, dtype=np.int64), recent_placements=np.zeros((1, 2)),
                     thresholds=config.thresholds)
    ids, portions = ["warm-up-0", "warm-up-1"], [RoomPortion("warm-up", 0, 1, (0,))]
    rng = np.random.default_rng(0)
    plan_drain(view, ids, portions, np.array([0.0, np.inf]), 1.0, policy, costs, rng)
    return plan_rebalance(view, ids, portions, np.full(2, -np.inf), 1.0, policy, config, costs,
                          rng)
