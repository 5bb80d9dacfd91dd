"""``decide_join``'s compiled one-join entry (``_place.place_one``) decides exactly as the batch
path (``place_sequence``) does on the same inputs and the same random stream, for every built-in
policy: the live balancer and the simulator share one set of rules."""

from __future__ import annotations

import numpy as np
import pytest

from sfu_balancer.core import (
    BridgeInfo,
    BridgeState,
    Capacity,
    CostTable,
    FleetSnapshot,
    JoinRequest,
    JoinSequence,
    LoadReport,
    RoutingConfig,
    Tier,
    build_view,
    decide_join,
    place_sequence,
    policy_names,
)
from sfu_balancer.core.admission import TIER_INDEX
from sfu_balancer.core.model import REASON_CODES

STATES = (BridgeState.SERVING, BridgeState.SERVING, BridgeState.DRAINING, BridgeState.FAILED)


def _bridge(rng: np.random.Generator, i: int, state: BridgeState) -> BridgeInfo:
    return BridgeInfo(f"b{i}", f"h{i}", region=("eu", "us")[int(rng.integers(2))],
                      capacity=Capacity(float(rng.uniform(0.5, 2)), float(rng.uniform(50, 500)),
                                        float(rng.uniform(50, 500))),
                      state=state,
                      drain_deadline=99.0 if state is BridgeState.DRAINING else None)


def _fleet(rng: np.random.Generator, bridges: int) -> FleetSnapshot:
    infos = tuple(_bridge(rng, i, STATES[int(rng.integers(len(STATES)))]) for i in range(bridges))
    reports = {b.id: LoadReport(b.id, float(rng.uniform(0, 10)), cpu=float(rng.uniform(0, 1)),
                                bytes_out_per_s=float(rng.uniform(0, 5e7)))
               for b in infos if rng.random() < 0.9}
    return FleetSnapshot(infos, reports, now=10.0, report_interval_s=1.0)


@pytest.mark.parametrize("name", policy_names())
def test_live_entry_matches_the_batch_path(name: str) -> None:
    rng = np.random.default_rng(7)
    costs = CostTable()
    checked = refused = split = 0
    for case in range(150):
        bridges = int(rng.integers(1, 40))
        snap = _fleet(rng, bridges)
        config = RoutingConfig(policy=name, max_per_bridge=int(rng.integers(2, 30)),
                               join_rate_per_min=int(rng.integers(0, 4)))
        view = build_view(snap, None, config)
        members = {f"b{i}": int(rng.integers(1, 40)) for i in range(bridges)
                   if rng.random() < 0.2}
        recent = {b: int(rng.integers(0, 5)) for b in members}
        tier = (Tier.CRITICAL, Tier.STANDARD, Tier.BULK)[case % 3]
        region = ("eu", "us", None)[case % 3]
        request = JoinRequest("room", f"p{case}", region=region, tier=tier)
        live_policy, batch_policy = config.build_policy(), config.build_policy()
        decision = decide_join(view, snap, request, members, recent, 0, live_policy, config,
                               costs, np.random.default_rng(case))
        index = snap.index()
        room = np.zeros((1, bridges), np.int64)
        rate = np.zeros((1, bridges), np.int64)
        for bridge_id, n in members.items():
            room[0, index[bridge_id]] = n
            rate[0, index[bridge_id]] = recent[bridge_id]
        joins = JoinSequence(np.zeros(1, np.int64), room, rate, np.full(1, -1, np.int64),
                             np.array([snap.region_codes().get(region or "", -1)]),
                             np.array([TIER_INDEX[tier]]))
        out = place_sequence(view, joins, batch_policy, config, costs,
                             np.random.default_rng(case), charge=False)
        chosen = int(out.bridge[0])
        reason = REASON_CODES[int(out.reason[0])]
        assert decision.reason is reason, case
        assert decision.bridge_id == (snap.ids[chosen] if chosen >= 0 else None), case
        if chosen >= 0:
            assert decision.detail["cost"] == out.cost[0].tolist(), case
            assert decision.detail["stress"] == round(float(out.stress[0]), 4), case
            assert bool(decision.relay_to) == bool(out.split[0] and (room > 0).sum() > 0)
            checked += 1
            split += bool(out.split[0])
        else:
            refused += 1
        assert decision.detail["utilization"] == round(float(out.utilization[0]), 4), case
    assert checked > 50 and refused > 0  # both outcomes were exercised
    if name != "jicofo_single":  # it never splits
        assert split > 0
