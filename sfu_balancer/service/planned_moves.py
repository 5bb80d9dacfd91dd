"""Moves the core plans for the whole fleet (drain deadlines, hot bridges), and telling the
participants concerned to rejoin: the router's periodic work, kept apart from the join path.

Rules:
- A plan is made on the view of one instant (``Router._view``); its moves are carried out as
  rejoins, each placed and charged by ``decide_move`` when the participant comes back.
- A participant already told to move is not told again while it rejoins (``move_targets``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from sfu_balancer.core import (
    CostTable,
    FleetView,
    Policy,
    Reason,
    RoomPortion,
    RoutingConfig,
    plan_drain,
    plan_rebalance,
)
from sfu_balancer.core.decide import FleetSnapshot
from sfu_balancer.state import StateStore

from .fleet import Fleet


class PlannedMoves:
    """Mixed into ``Router``, which provides the attributes and the two methods below."""

    clock: Callable[[], float]
    fleet: Fleet
    store: StateStore
    policy: Policy
    config: RoutingConfig
    costs: CostTable
    rng: np.random.Generator
    last_rebalanced: dict[str, float]
    move_targets: dict[tuple[str, str], tuple[str, str, Reason]]

    async def _view(self, now: float) -> tuple[FleetSnapshot, FleetView]:
        raise NotImplementedError

    async def tell_rejoin(self, room: str, participant: str, reason: str) -> None:
        raise NotImplementedError

    async def _portions(self, snapshot: FleetSnapshot) -> list[RoomPortion]:
        index = snapshot.index()
        portions = []
        for room, members in (await self.store.rooms()).items():
            bridges = tuple(index[b] for b in members if b in index)
            portions += [RoomPortion(room, index[b], n, bridges) for b, n in members.items()
                         if b in index]
        return portions

    async def run_drains(self) -> None:
        now = self.clock()
        if not any(b.drain_deadline is not None and b.drain_deadline <= now
                   for b in self.fleet.snapshot(now).bridges):
            return
        snapshot, view = await self._view(now)
        deadlines = np.array([b.drain_deadline if b.drain_deadline is not None else np.inf
                              for b in snapshot.bridges])
        plan = plan_drain(view, snapshot.ids, await self._portions(snapshot), deadlines, now,
                          self.policy, self.costs, self.rng)
        await self._execute(plan.moves, "drain")

    async def rebalance(self) -> None:
        now = self.clock()
        snapshot, view = await self._view(now)
        last = np.array([self.last_rebalanced.get(b, -np.inf) for b in snapshot.ids])
        plan = plan_rebalance(view, snapshot.ids, await self._portions(snapshot), last, now,
                              self.policy, self.config, self.costs, self.rng)
        for index in plan.rebalanced:
            self.last_rebalanced[snapshot.ids[index]] = now
        await self._execute(plan.moves, "migrate")

    async def _execute(self, moves: list[Any], reason: str) -> None:
        for move in moves:
            # Participants already told to move are not told again while they rejoin.
            records = [r for r in await self.store.room_participants(move.room)
                       if r.bridge == move.from_bridge
                       and (r.room, r.participant) not in self.move_targets][: move.participants]
            for record in records:
                self.move_targets[(record.room, record.participant)] = (
                    move.from_bridge, move.to_bridge, move.reason)
                await self.tell_rejoin(record.room, record.participant, reason)
