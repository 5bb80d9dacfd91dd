"""Builders for synthetic fleet views used across the core tests."""

from __future__ import annotations

import numpy as np

from sfu_balancer.core import CostTable, FleetView, JoinBatch, PlacementRequest, Thresholds
from sfu_balancer.core.model import CPU


def view(
    stress: np.ndarray | list[float] | list[list[float]],
    *,
    pending: np.ndarray | None = None,
    age: float | np.ndarray = 0.5,
    available: np.ndarray | None = None,
    open_for_new: np.ndarray | None = None,
    region: list[int] | None = None,
    recent: np.ndarray | None = None,
    interval: float = 1.0,
) -> FleetView:
    """A view whose reported CPU stress per bridge is ``stress`` (R, B); capacity is 1 core and
    1000 Mbps each way, thresholds 0.8, so load = 0.8 × stress cores."""
    s = np.atleast_2d(np.asarray(stress, dtype=float))
    replicas, bridges = s.shape
    load = np.zeros((replicas, bridges, 3))
    load[..., CPU] = s * 0.8
    avail = np.ones((replicas, bridges), bool) if available is None else np.asarray(available)
    return FleetView(
        load=load,
        pending=np.zeros_like(load) if pending is None else pending,
        capacity=np.tile([1.0, 1000.0, 1000.0], (bridges, 1)),
        report_age=np.broadcast_to(np.asarray(age, dtype=float), (replicas, bridges)).copy(),
        available=avail,
        open_for_new=avail.copy() if open_for_new is None else np.asarray(open_for_new),
        region=np.zeros(bridges, np.int64) if region is None else np.asarray(region, np.int64),
        recent_placements=np.zeros((replicas, bridges)) if recent is None else recent,
        thresholds=Thresholds(),
        report_interval_s=interval,
    )


def request(v: FleetView, *, eligible: np.ndarray | None = None, region: int = -1,
            cost_cpu: float = 0.0) -> PlacementRequest:
    r, b = v.replicas, v.bridges
    cost = np.zeros((r, b, 3))
    cost[..., CPU] = cost_cpu
    return PlacementRequest(
        eligible=np.ones((r, b), bool) if eligible is None else np.asarray(eligible),
        cost=cost,
        expected_growth=np.zeros((r, b, 3)),
        region=np.full(r, region, np.int64),
        room_members=np.zeros((r, b), np.int64),
        new_room=np.ones(r, bool),
    )


def batch(members: list[list[int]] | np.ndarray, *, recent: np.ndarray | None = None,
          region: int = -1) -> JoinBatch:
    m = np.atleast_2d(np.asarray(members, dtype=np.int64))
    return JoinBatch(
        room_members=m,
        room_recent_joins=np.zeros_like(m) if recent is None else np.asarray(recent, np.int64),
        region=np.full(m.shape[0], region, np.int64),
        active=np.ones(m.shape[0], bool),
    )


COSTS = CostTable()
