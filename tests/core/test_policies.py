import numpy as np
import pytest

from sfu_balancer.core import create_policy, policy_names
from sfu_balancer.core.policies.base import NO_BRIDGE

from .fleet import request, view

ALL = policy_names()


def test_registry_lists_every_builtin() -> None:
    assert set(ALL) == {"least_loaded", "power_of_d", "region_aware", "fill_first",
                        "round_robin", "random", "jicofo_single", "balanced"}


def test_unknown_policy_lists_known_names() -> None:
    with pytest.raises(ValueError, match="known policies: balanced, fill_first"):
        create_policy("least_busy")


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("power_of_d", {"d": 0}, "d must be an integer >= 1"),
        ("power_of_d", {"d": 2.5}, "d must be an integer"),
        ("balanced", {"headroom": 2}, "headroom must be a number in"),
        ("fill_first", {"fill_limit": 0}, "fill_limit"),
        ("least_loaded", {"use_ledger": "yes"}, "use_ledger"),
        ("random", {"d": 2}, "its parameters are: none"),
    ],
)
def test_bad_parameters_raise_clear_errors(name: str, params: dict[str, object],
                                           message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_policy(name, **params)


@pytest.mark.parametrize("name", ALL)
def test_no_bridges_gives_no_bridge(name: str) -> None:
    v = view(np.zeros((2, 0)))
    assert create_policy(name).choose(v, request(v), np.random.default_rng(0)).tolist() == [-1, -1]


@pytest.mark.parametrize("name", ALL)
def test_nothing_eligible_gives_no_bridge(name: str) -> None:
    v = view([[0.1, 0.2, 0.3]])
    req = request(v, eligible=np.zeros((1, 3), bool))
    assert create_policy(name).choose(v, req, np.random.default_rng(0))[0] == NO_BRIDGE


@pytest.mark.parametrize("name", ALL)
def test_all_overloaded_still_places(name: str) -> None:
    # Overload filtering is the placement's job; a policy given eligible bridges picks one.
    v = view([[1.3, 1.1, 1.2]])
    choice = create_policy(name).choose(v, request(v), np.random.default_rng(0))[0]
    assert 0 <= choice < 3


@pytest.mark.parametrize("name", ["least_loaded", "region_aware", "balanced", "jicofo_single"])
def test_load_aware_policies_pick_the_least_loaded(name: str) -> None:
    v = view([[0.5, 0.1, 0.3], [0.05, 0.6, 0.3]])
    assert create_policy(name).choose(v, request(v), np.random.default_rng(0)).tolist() == [1, 0]


@pytest.mark.parametrize("name", ALL)
def test_ties_are_broken_at_random_not_by_index(name: str) -> None:
    # Equal bridges: fill_first's "fullest that fits" is a tie too, and round_robin's first
    # pick (its start) is random, so every bridge is picked by some seed.
    v = view(np.full((1, 4), 0.2))
    picks = {int(create_policy(name).choose(v, request(v), np.random.default_rng(s))[0])
             for s in range(60)}
    assert picks == {0, 1, 2, 3}


@pytest.mark.parametrize("name", ALL)
def test_deterministic_for_a_seed(name: str) -> None:
    v = view(np.random.default_rng(5).random((8, 20)))
    first = create_policy(name).choose(v, request(v), np.random.default_rng(42))
    again = create_policy(name).choose(v, request(v), np.random.default_rng(42))
    assert first.tolist() == again.tolist()


def test_round_robin_cycles_over_eligible_per_replica() -> None:
    v = view(np.zeros((2, 3)))
    eligible = np.array([[True, True, True], [True, False, True]])
    policy = create_policy("round_robin")
    rng = np.random.default_rng(0)
    picks = np.array([policy.choose(v, request(v, eligible=eligible), rng) for _ in range(6)])
    assert ((picks[1:, 0] - picks[:-1, 0]) % 3 == 1).all()  # 0 -> 1 -> 2 -> 0 from any start
    assert set(picks[:, 1]) == {0, 2} and (picks[1:, 1] != picks[:-1, 1]).all()


def test_round_robin_starts_at_random_but_the_same_per_seed() -> None:
    v = view(np.zeros((1, 5)))
    eligible = np.array([[False, True, True, True, True]])

    def start(seed: int) -> int:
        policy = create_policy("round_robin")
        return int(policy.choose(v, request(v, eligible=eligible), np.random.default_rng(seed))[0])
    starts = [start(s) for s in range(40)]
    assert set(starts) == {1, 2, 3, 4}  # never the ineligible bridge, never always bridge 0/1
    assert starts == [start(s) for s in range(40)]


def test_fill_first_packs_the_fullest_bridge_that_fits() -> None:
    v = view([[0.2, 0.7, 0.95, 0.1]])
    assert create_policy("fill_first").choose(v, request(v), np.random.default_rng(0))[0] == 1
    # nothing fits below the fill limit: least projected stress instead
    v = view([[0.95, 0.97]])
    assert create_policy("fill_first").choose(v, request(v), np.random.default_rng(0))[0] == 0


def test_power_of_d_with_d_equal_fleet_is_least_loaded() -> None:
    v = view([[0.5, 0.4, 0.1, 0.3]])
    policy = create_policy("power_of_d", d=4)
    assert all(policy.choose(v, request(v), np.random.default_rng(s))[0] == 2 for s in range(20))


def test_region_aware_prefers_region_then_spills() -> None:
    v = view([[0.1, 0.5, 0.6]], region=[0, 1, 1])
    assert create_policy("region_aware").choose(v, request(v, region=1),
                                                np.random.default_rng(0))[0] == 1
    full = view([[0.1, 1.2, 1.3]], region=[0, 1, 1])
    assert create_policy("region_aware").choose(full, request(full, region=1),
                                                np.random.default_rng(0))[0] == 0


def test_jicofo_counts_recent_endpoints_and_ignores_bandwidth() -> None:
    recent = np.array([[30.0, 0.0]])
    v = view([[0.1, 0.2]], recent=recent)  # 0.1/0.8*0.8/0.9 + 0.3 > 0.2/0.9
    assert create_policy("jicofo_single").choose(v, request(v), np.random.default_rng(0))[0] == 1
    v = view([[0.1, 0.2]])
    v.load[0, 0, 1] = 999.0  # a full NIC: Jicofo does not see it
    assert create_policy("jicofo_single").choose(v, request(v), np.random.default_rng(0))[0] == 0
    assert create_policy("balanced").choose(v, request(v), np.random.default_rng(0))[0] == 1


def test_ledger_turns_a_stale_herd_into_a_spread() -> None:
    # Ten joins within one report interval: reports never change, only the ledger does.
    reported = [[0.1, 0.2, 0.3, 0.4, 0.0]]
    distinct = {}
    for name in ("least_loaded", "balanced"):
        policy = create_policy(name)
        pending = np.zeros((1, 5, 3))
        chosen = []
        rng = np.random.default_rng(3)
        for _ in range(10):
            v = view(reported, pending=pending.copy())
            req = request(v, cost_cpu=0.05)
            choice = int(policy.choose(v, req, rng)[0])
            pending[0, choice] += req.cost[0, choice]
            chosen.append(choice)
        distinct[name] = set(chosen)
    assert distinct["least_loaded"] == {4}  # the herd: every join on the idle-looking bridge
    assert len(distinct["balanced"]) >= 3


# Bridge 0 reports idle but has been silent for 30 intervals; 1 and 2 are fresh at 0.3, 0.6.
# Only balanced reads report age; the others take the stale report at face value (fill_first
# packs the fullest that fits; power_of_d's best of two is never the most loaded).
STALE_PICKS = {"balanced": {1}, "least_loaded": {0}, "region_aware": {0}, "jicofo_single": {0},
               "fill_first": {2}, "power_of_d": {0, 1}, "random": {0, 1, 2},
               "round_robin": {0, 1, 2}}


@pytest.mark.parametrize("name", ALL)
def test_stale_reports(name: str) -> None:
    v = view([[0.0, 0.3, 0.6]], age=np.array([[30.0, 0.5, 0.5]]))
    picks = {int(create_policy(name).choose(v, request(v), np.random.default_rng(s))[0])
             for s in range(40)}
    assert picks == STALE_PICKS[name]
    # every report equally stale (even never refreshed): still a placement, on an eligible
    # bridge, and the load-aware policies still prefer the least loaded
    for age in (30.0, np.inf):
        old = view([[0.5, 0.1, 0.3]], age=age)
        eligible = np.array([[True, True, False]])
        choice = int(create_policy(name).choose(old, request(old, eligible=eligible),
                                                np.random.default_rng(0))[0])
        assert choice in (0, 1)
        if name in ("least_loaded", "region_aware", "jicofo_single") or (
                name == "balanced" and age < np.inf):
            assert choice == 1


def test_balanced_samples_d_on_large_fleets() -> None:
    v = view(np.linspace(0.0, 0.9, 200)[None, :])
    policy = create_policy("balanced", d=2, sample_above=64)
    picks = {int(policy.choose(v, request(v), np.random.default_rng(s))[0]) for s in range(50)}
    assert len(picks) > 5  # not always the single least loaded
    small = create_policy("balanced", sample_above=1000)
    assert small.choose(v, request(v), np.random.default_rng(0))[0] == 0


def test_policy_params_round_trip() -> None:
    policy = create_policy("power_of_d", d=3)
    assert policy.params() == {"d": 3, "use_ledger": False}
    assert create_policy("power_of_d", **policy.params()).params() == policy.params()
