"""place_sequence: several joins per row in one call, each seeing the ones before it."""

import numpy as np
import pytest

from sfu_balancer.core import (
    JoinSequence,
    RoutingConfig,
    create_policy,
    place_joins,
    place_sequence,
    policy_names,
)
from sfu_balancer.core.admission import TIER_INDEX
from sfu_balancer.core.model import REASON_CODES, Reason, Tier

from .fleet import COSTS, batch, view

STANDARD = TIER_INDEX[Tier.STANDARD]


def _seq(rows: list[int], members: np.ndarray, keys: list[int] | None = None,
         tier: int = STANDARD) -> JoinSequence:
    m = np.asarray(members, dtype=np.int64)
    return JoinSequence(rows=np.asarray(rows, np.int64), room_members=m,
                        room_recent_joins=np.zeros_like(m),
                        prev=JoinSequence.link(np.asarray(keys if keys is not None else
                                                          range(len(rows)), np.int64)),
                        region=np.full(len(rows), -1, np.int64),
                        tiers=np.full(len(rows), tier, np.int64))


def test_link_points_to_the_latest_earlier_join_of_the_same_room() -> None:
    assert JoinSequence.link(np.array([5, 7, 5, 5, 7])).tolist() == [-1, -1, 0, 2, 1]


@pytest.mark.parametrize("name", policy_names())
def test_one_join_per_row_matches_place_joins(name: str) -> None:
    v = view([[0.5, 0.1, 0.3, 0.1], [0.2, 0.2, 0.9, 0.0]])
    members = np.array([[0, 0, 0, 0], [0, 3, 0, 0]])
    cfg = RoutingConfig(policy=name, tier_reserve={"standard": 0.0, "bulk": 0.0})
    one = place_joins(v, batch(members), create_policy(name), cfg, COSTS,
                      np.random.default_rng(4))
    seq = place_sequence(v, _seq([0, 1], members), create_policy(name), cfg, COSTS,
                         np.random.default_rng(4), charge=False)
    assert seq.bridge.tolist() == one.bridge.tolist()
    assert seq.reason.tolist() == one.reason.tolist()
    assert np.allclose(seq.cost, one.cost)


def test_joins_of_one_room_see_each_other() -> None:
    v = view([[0.3, 0.1, 0.3]])
    cfg = RoutingConfig()
    out = place_sequence(v, _seq([0, 0, 0], np.zeros((3, 3)), keys=[1, 1, 1]),
                         cfg.build_policy(), cfg, COSTS, np.random.default_rng(0))
    reasons = [REASON_CODES[int(r)] for r in out.reason]
    assert reasons == [Reason.NEW_ROOM, Reason.STICKY, Reason.STICKY]
    assert len(set(out.bridge.tolist())) == 1
    assert out.cost[2, 1] > out.cost[1, 1] > out.cost[0, 1]  # egress grows with the room


def test_each_placement_is_charged_before_the_next_join() -> None:
    v = view([[0.2, 0.2, 0.2, 0.2]])
    cfg = RoutingConfig(policy="least_loaded", params={"use_ledger": True})
    out = place_sequence(v, _seq([0] * 8, np.zeros((8, 4))), cfg.build_policy(), cfg, COSTS,
                         np.random.default_rng(1))
    assert np.bincount(out.bridge, minlength=4).tolist() == [2, 2, 2, 2]
    assert out.recent[0].tolist() == [2.0] * 4 and (out.pending[0, :, 0] > 0).all()
    assert not v.pending.any()  # the view itself is untouched
    still = place_sequence(v, _seq([0] * 8, np.zeros((8, 4))), cfg.build_policy(), cfg,
                           COSTS, np.random.default_rng(1), charge=False)
    assert not still.pending.any()


def test_admission_refuses_lower_tiers_first_with_capacity() -> None:
    v = view([[0.9, 0.9]])
    cfg = RoutingConfig()
    bulk = place_sequence(v, _seq([0], np.zeros((1, 2)), tier=TIER_INDEX[Tier.BULK]),
                          cfg.build_policy(), cfg, COSTS, np.random.default_rng(0))
    assert REASON_CODES[int(bulk.reason[0])] is Reason.CAPACITY
    assert bulk.bridge[0] == -1 and bulk.utilization[0] == pytest.approx(0.9)
    standard = place_sequence(v, _seq([0], np.zeros((1, 2))), cfg.build_policy(), cfg, COSTS,
                              np.random.default_rng(0))
    assert standard.bridge[0] >= 0


def test_round_robin_moves_only_the_cursors_of_rows_that_join() -> None:
    v = view([[0.0, 0.0, 0.0]] * 3)
    cfg = RoutingConfig(policy="round_robin")
    policy = cfg.build_policy()
    policy.reset(3)
    assert policy.state() == {"cursor": [-1, -1, -1]}  # no pick yet: the start is random
    out = place_sequence(v, _seq([1, 1], np.zeros((2, 3))), policy, cfg, COSTS,
                         np.random.default_rng(0))
    start = int(out.bridge[0])
    assert out.bridge.tolist() == [start, (start + 1) % 3]
    assert policy.state() == {"cursor": [-1, (start + 2) % 3, -1]}


def test_same_seed_same_decisions() -> None:
    v = view(np.random.default_rng(3).uniform(0, 0.6, (4, 100)))
    cfg = RoutingConfig()
    rows = np.repeat(np.arange(4), 5).tolist()
    members = np.zeros((20, 100))
    a = place_sequence(v, _seq(rows, members), cfg.build_policy(), cfg, COSTS,
                       np.random.default_rng(8))
    b = place_sequence(v, _seq(rows, members), cfg.build_policy(), cfg, COSTS,
                       np.random.default_rng(8))
    assert a.bridge.tolist() == b.bridge.tolist()


@pytest.mark.parametrize("via_choose", [False, True])
def test_in_place_charges_the_views_arrays_and_decides_the_same(via_choose: bool) -> None:
    from dataclasses import replace

    from sfu_balancer.core import PendingLedger

    v = view([[0.3, 0.1, 0.3], [0.2, 0.6, 0.1]])
    cfg = RoutingConfig()
    seq = _seq([0, 0, 1, 0, 1], np.zeros((5, 3)), keys=[1, 2, 3, 1, 4])
    copied = place_sequence(v, seq, cfg.build_policy(), cfg, COSTS, np.random.default_rng(3),
                            via_choose=via_choose)
    ledger = PendingLedger(2, 3)
    ledger.add(np.array([0, 1]), np.array([1, 2]), np.array([[0.0, 0.0, 0.0]] * 2), 0.0)
    mine = replace(v, pending=ledger.pending(), recent_placements=np.zeros((2, 3)))
    before = ledger.pending().copy()
    moved = place_sequence(mine, seq, cfg.build_policy(), cfg, COSTS,
                           np.random.default_rng(3), via_choose=via_choose, in_place=True)
    assert moved.pending is mine.pending and moved.recent is mine.recent_placements
    assert moved.bridge.tolist() == copied.bridge.tolist()
    # the ledger records the charges without adding them twice: the same floats as adding
    ledger.add(seq.rows, moved.bridge, moved.cost, 1.0, precharged=True)
    fresh = PendingLedger(2, 3)
    fresh.add(np.array([0, 1]), np.array([1, 2]), np.zeros((2, 3)), 0.0)
    fresh.add(seq.rows, moved.bridge, moved.cost, 1.0)
    assert np.array_equal(ledger.pending(), fresh.pending())
    assert not np.array_equal(ledger.pending(), before)


def test_in_place_refuses_arrays_it_would_have_to_convert() -> None:
    from dataclasses import replace

    v = view([[0.3, 0.1, 0.3]])
    cfg = RoutingConfig()
    odd = replace(v, pending=np.zeros((1, 3, 3), np.float32))
    with pytest.raises(ValueError, match="in_place"):
        place_sequence(odd, _seq([0], np.zeros((1, 3))), cfg.build_policy(), cfg, COSTS,
                       np.random.default_rng(0), in_place=True)
