"""A registered policy without a compiled kernel runs through core's placement rules via its
``choose``; and that generic path agrees with the compiled one for the built-in policies."""

from __future__ import annotations

import numpy as np
import pytest

from sfu_balancer.core import (
    JoinRequest,
    JoinSequence,
    Reason,
    RoomPortion,
    RoutingConfig,
    Tier,
    build_view,
    create_policy,
    decide_join,
    place_sequence,
    plan_drain,
    policy_names,
)
from sfu_balancer.core.admission import TIER_INDEX
from sfu_balancer.core.model import REASON_CODES
from sfu_balancer.core.policies.kernels import EXTERNAL

from .custom import LeastProjected, custom_policy  # noqa: F401 (the fixture)
from .fleet import COSTS, view
from .test_decide import _snapshot
from .test_sequence import _seq

NAME = LeastProjected.name
IDS = ["b0", "b1", "b2"]


def _decide(snapshot, config, policy, *, members=None, tier=Tier.STANDARD):  # type: ignore[no-untyped-def]
    v = build_view(snapshot, None, config)
    return decide_join(v, snapshot, JoinRequest("room", "p1", tier=tier), members or {}, {}, 0,
                       policy, config, COSTS, np.random.default_rng(0))


@pytest.mark.usefixtures("custom_policy")
def test_registered_policy_decides_live_joins_through_core_rules() -> None:
    assert NAME in policy_names()
    config = RoutingConfig(policy=NAME, max_per_bridge=2)
    policy = config.build_policy()
    assert isinstance(policy, LeastProjected) and policy.kind == EXTERNAL
    new = _decide(_snapshot([0.5, 0.1, 0.3]), config, policy)
    assert (new.bridge_id, new.reason) == ("b1", Reason.NEW_ROOM) and policy.calls == 1
    assert len(new.detail["cost"]) == 3 and new.detail["cost"][0] > 0
    sticky = _decide(_snapshot([0.5, 0.1, 0.3]), config, policy, members={"b2": 1})
    assert (sticky.bridge_id, sticky.reason) == ("b2", Reason.STICKY)
    assert policy.calls == 1  # a sticky join never asks the policy
    split = _decide(_snapshot([0.1, 0.2, 0.3]), config, policy, members={"b0": 2})
    assert (split.bridge_id, split.reason) == ("b1", Reason.SPLIT_CAP)
    assert split.relay_to == ("b0",) and policy.calls == 2
    full = _snapshot([0.79, 0.79])
    bulk = _decide(full, config, policy, tier=Tier.BULK)
    assert bulk.reason is Reason.CAPACITY and bulk.bridge_id is None and policy.calls == 2
    assert _decide(full, config, policy, tier=Tier.CRITICAL).admitted


@pytest.mark.usefixtures("custom_policy")
def test_registered_policy_sees_the_ledger_charged_between_joins() -> None:
    # Eight new rooms per row on four equal bridges, rows interleaved: each join sees the
    # charges of the joins before it in its row, so each row spreads 2-2-2-2.
    v = view([[0.2] * 4, [0.3, 0.3, 0.3, 0.9]])
    cfg = RoutingConfig(policy=NAME)
    rows = [0, 1] * 8
    out = place_sequence(v, _seq(rows, np.zeros((16, 4))), cfg.build_policy(), cfg, COSTS,
                         np.random.default_rng(1))
    assert np.bincount(out.bridge[0::2], minlength=4).tolist() == [2, 2, 2, 2]
    assert 3 not in out.bridge[1::2].tolist()  # the hot bridge of row 1 stays out
    assert out.recent.sum() == 16 and not v.pending.any()
    uncharged = place_sequence(v, _seq(rows, np.zeros((16, 4))), cfg.build_policy(), cfg,
                               COSTS, np.random.default_rng(1), charge=False)
    assert not uncharged.pending.any()
    # joins of one room stick together: the room's first join asks the policy, the rest not
    policy = cfg.build_policy()
    room = place_sequence(v, _seq([0, 0, 0], np.zeros((3, 4)), keys=[7, 7, 7]), policy, cfg,
                          COSTS, np.random.default_rng(2))
    assert [REASON_CODES[int(r)] for r in room.reason] == [Reason.NEW_ROOM, Reason.STICKY,
                                                           Reason.STICKY]
    assert len(set(room.bridge.tolist())) == 1 and isinstance(policy, LeastProjected)
    assert policy.calls == 1


@pytest.mark.usefixtures("custom_policy")
def test_registered_policy_is_admitted_like_the_built_ins() -> None:
    v = view([[0.9, 0.9]])
    cfg = RoutingConfig(policy=NAME)
    bulk = place_sequence(v, _seq([0], np.zeros((1, 2)), tier=TIER_INDEX[Tier.BULK]),
                          cfg.build_policy(), cfg, COSTS, np.random.default_rng(0))
    assert REASON_CODES[int(bulk.reason[0])] is Reason.CAPACITY and bulk.bridge[0] == -1
    assert bulk.utilization[0] == pytest.approx(0.9)


class Stubborn(LeastProjected):
    name = "test_stubborn"

    def choose(self, view, request, rng):  # type: ignore[no-untyped-def]
        return np.zeros(view.replicas, dtype=np.int64)  # bridge 0, eligible or not


def test_a_policy_that_returns_an_ineligible_bridge_is_an_error() -> None:
    v = view([[0.1, 0.2]], open_for_new=np.array([[False, True]]))
    cfg = RoutingConfig()
    with pytest.raises(ValueError, match=r"test_stubborn.*not eligible"):
        place_sequence(v, _seq([0], np.zeros((1, 2))), Stubborn(), cfg, COSTS,
                       np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"test_stubborn.*not eligible"):
        plan_drain(view([[0.5, 0.1, 0.2]]), IDS, [RoomPortion("r", 0, 4, (0,))],
                   np.array([0.0, np.inf, np.inf]), 10.0, Stubborn(), COSTS,
                   np.random.default_rng(0))


@pytest.mark.usefixtures("custom_policy")
def test_registered_policy_chooses_migration_targets() -> None:
    policy = create_policy(NAME)
    portions = [RoomPortion(f"r{i}", 0, n, (0,)) for i, n in enumerate([6, 3, 2])]
    plan = plan_drain(view([[0.5, 0.3, 0.1]]), IDS, portions, np.array([0.0, np.inf, np.inf]),
                      10.0, policy, COSTS, np.random.default_rng(0))
    assert [m.room for m in plan.moves] == ["r0", "r1", "r2"] and not plan.stranded
    assert plan.moves[0].to_bridge == "b2"  # the least loaded takes the largest room first
    assert {m.to_bridge for m in plan.moves} <= {"b1", "b2"}
    assert isinstance(policy, LeastProjected) and policy.calls == 3


def _fleet(seed: int) -> tuple:  # type: ignore[type-arg]
    """Three rows, eight bridges in two regions with continuous (tie-free) loads, one failed
    and one draining bridge per row, and forty joins over nine rooms, some already hosted,
    with mixed tiers: new rooms, sticky joins, splits, fallbacks and refusals all occur."""
    rng = np.random.default_rng(seed)
    rows, bridges, joins = 3, 8, 40
    stress = rng.uniform(0.05, 0.75, (rows, bridges))
    stress[2] = rng.uniform(0.8, 0.97, bridges)  # nearly full: bulk is refused
    available = np.ones((rows, bridges), bool)
    available[np.arange(rows), rng.integers(bridges, size=rows)] = False
    open_new = available.copy()
    open_new[np.arange(rows), rng.integers(bridges, size=rows)] = False
    v = view(stress, available=available, open_for_new=open_new, region=[0, 1] * 4,
             age=rng.uniform(0.0, 8.0, (rows, bridges)), interval=2.0,
             pending=np.zeros((rows, bridges, 3)), recent=rng.integers(0, 9, (rows, bridges))
             .astype(float))
    row = rng.integers(rows, size=joins)
    room = rng.integers(9, size=joins)
    hosted = np.zeros((rows, 9, bridges), np.int64)
    hosted[:, :4, :] = rng.integers(0, 3, (rows, 4, bridges)) * (rng.random((rows, 4, bridges))
                                                                  < 0.3)
    seq = JoinSequence(rows=row, room_members=hosted[row, room],
                       room_recent_joins=rng.integers(0, 4, (joins, bridges)),
                       prev=JoinSequence.link(row * 9 + room),
                       region=rng.integers(-1, 2, size=joins),
                       tiers=rng.integers(0, 3, size=joins))
    return v, seq


@pytest.mark.parametrize(("name", "params"), [
    ("least_loaded", {"use_ledger": True}),
    ("least_loaded", {}),
    ("power_of_d", {"d": 8, "use_ledger": True}),  # d = fleet: no sampling, so no rng
    ("region_aware", {}),
    ("fill_first", {}),
    ("balanced", {}),
    ("jicofo_single", {}),
])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_generic_path_agrees_with_the_compiled_one(name: str, params: dict[str, object],
                                                   seed: int) -> None:
    """The same built-in policy placed by its compiled kernel and through ``choose`` one
    round at a time gives identical decisions, costs and ledgers, on a fleet without ties
    (with ties the two paths draw their random numbers differently)."""
    v, seq = _fleet(seed)
    cfg = RoutingConfig(policy=name, params=params, max_per_bridge=3, join_rate_per_min=3)
    compiled = place_sequence(v, seq, create_policy(name, **params), cfg, COSTS,
                              np.random.default_rng(seed))
    generic = place_sequence(v, seq, create_policy(name, **params), cfg, COSTS,
                             np.random.default_rng(seed), via_choose=True)
    for field in ("bridge", "reason", "split"):
        assert getattr(generic, field).tolist() == getattr(compiled, field).tolist(), field
    for field in ("cost", "utilization", "stress", "pending", "recent"):
        assert np.allclose(getattr(generic, field), getattr(compiled, field), equal_nan=True,
                           rtol=0, atol=1e-12), field
    reasons = {REASON_CODES[int(r)] for r in compiled.reason}
    assert {Reason.NEW_ROOM, Reason.STICKY, Reason.CAPACITY} <= reasons
    if cfg.build_policy().splits:
        assert reasons & {Reason.SPLIT_CAP, Reason.SPLIT_JOIN_RATE, Reason.SPLIT_OVERLOAD}


@pytest.mark.parametrize("name", ["random", "power_of_d", "round_robin"])
def test_generic_path_of_random_policies_is_valid_and_seeded(name: str) -> None:
    v, seq = _fleet(5)
    cfg = RoutingConfig(policy=name, max_per_bridge=3)
    runs = [place_sequence(v, seq, create_policy(name), cfg, COSTS, np.random.default_rng(s),
                           via_choose=True) for s in (3, 3, 4)]
    assert runs[0].bridge.tolist() == runs[1].bridge.tolist()
    placed = runs[0].bridge >= 0
    assert v.available[seq.rows[placed], runs[0].bridge[placed]].all()
