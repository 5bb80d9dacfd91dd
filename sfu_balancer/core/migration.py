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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from .config import RoutingConfig
from .load import CostTable, FloatArray, room_streams
from .model import Migration, Reason
from .placement import checked_choice
from .policies.base import NO_BRIDGE, FleetView, PlacementRequest, Policy


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


def _portion_load(members: int, costs: CostTable) -> FloatArray:
    egress, ingress = room_streams(np.array([members]), costs.last_n)
    result: FloatArray = costs.streams_to_load(egress, ingress)[0]
    return result


_ROW0 = np.zeros(1, dtype=np.int64)


def _move(
    view: FleetView,
    load: FloatArray,
    portion: RoomPortion,
    ids: Sequence[str],
    policy: Policy,
    costs: CostTable,
    limit_stress: float,
    rng: np.random.Generator,
) -> int:
    """Choose a target for ``portion`` given current ``load`` (B, 3); -1 if none fits."""
    portion_load = _portion_load(portion.members, costs)
    projected = np.max((load + portion_load) / view.limit, axis=-1)
    eligible = view.open_for_new[0].copy()
    eligible[list(portion.bridges)] = False
    eligible &= projected < limit_stress
    bridges = len(ids)
    moved_view = replace(view, pending=(load - view.load[0])[None])
    request = PlacementRequest(
        eligible=eligible[None],
        cost=np.broadcast_to(portion_load, (1, bridges, 3)).copy(),
        region=np.array([-1]),
        room_members=np.zeros((1, bridges), dtype=np.int64),
        new_room=np.array([False]),
        costs=costs,
        expected_growth=np.zeros((1, bridges, 3)),  # a moved room has already grown
    )
    choice = policy.choose(moved_view, request, rng)
    return int(checked_choice(policy, choice, request.eligible, _ROW0)[0])


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
    plan = MigrationPlan()
    load = view.expected_load[0].copy()
    stress = np.max(load / view.limit, axis=-1)
    cooled = now - last_rebalanced >= config.move_cooldown_s
    hot = np.flatnonzero(view.available[0] & cooled & (stress >= config.hot_stress))
    for source in hot[np.argsort(-stress[hot], kind="stable")]:
        budget = config.max_moves
        local = sorted((p for p in portions if p.bridge == source), key=lambda p: p.members)
        for portion in local:
            if np.max(load[source] / view.limit[source]) < config.hot_stress:
                break
            if portion.members > budget:
                continue
            target = _move(view, load, portion, ids, policy, costs, config.hot_stress, rng)
            if target == NO_BRIDGE:
                continue
            moved = _portion_load(portion.members, costs)
            load[source] -= moved
            load[target] += moved
            budget -= portion.members
            plan.moves.append(Migration(portion.room, ids[source], ids[target],
                                        portion.members, Reason.MIGRATE_HOT))
        if budget < config.max_moves:
            plan.rebalanced.append(int(source))
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
    plan = MigrationPlan()
    load = view.expected_load[0].copy()
    due = set(np.flatnonzero(drain_deadline <= now).tolist())
    for portion in sorted(portions, key=lambda p: -p.members):
        if portion.bridge not in due:
            continue
        target = _move(view, load, portion, ids, policy, costs, np.inf, rng)
        if target == NO_BRIDGE:
            plan.stranded.append(portion)
            continue
        moved = _portion_load(portion.members, costs)
        load[portion.bridge] -= moved
        load[target] += moved
        plan.moves.append(Migration(portion.room, ids[portion.bridge], ids[target],
                                    portion.members, Reason.MIGRATE_DRAIN))
    return plan
