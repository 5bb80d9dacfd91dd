"""Properties over random fleets: what must hold whatever the load, state or policy."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sfu_balancer.core import RoutingConfig, create_policy, place_joins, policy_names

from .fleet import COSTS, batch, request, view


@st.composite
def fleets(draw):  # type: ignore[no-untyped-def]
    replicas = draw(st.integers(1, 4))
    bridges = draw(st.integers(1, 8))
    stress = draw(st.lists(st.floats(0, 2), min_size=replicas * bridges,
                           max_size=replicas * bridges))
    available = draw(st.lists(st.booleans(), min_size=replicas * bridges,
                              max_size=replicas * bridges))
    draining = draw(st.lists(st.booleans(), min_size=replicas * bridges,
                             max_size=replicas * bridges))
    members = draw(st.lists(st.integers(0, 6), min_size=replicas * bridges,
                            max_size=replicas * bridges))
    shape = (replicas, bridges)
    avail = np.array(available).reshape(shape)
    return (np.array(stress).reshape(shape), avail, avail & ~np.array(draining).reshape(shape),
            np.array(members).reshape(shape))


@settings(max_examples=150, deadline=None)
@given(fleets(), st.sampled_from(policy_names()), st.integers(0, 2**32 - 1))
def test_policies_never_choose_an_ineligible_bridge(fleet, name, seed) -> None:  # type: ignore[no-untyped-def]
    stress, available, _, _ = fleet
    v = view(stress, available=available)
    choice = create_policy(name).choose(v, request(v, eligible=available),
                                        np.random.default_rng(seed))
    rows = np.arange(len(choice))
    assert np.all((choice == -1) == ~available.any(axis=1))
    assert np.all(available[rows[choice >= 0], choice[choice >= 0]])


@settings(max_examples=150, deadline=None)
@given(fleets(), st.sampled_from(policy_names()), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_placement_respects_availability_and_caps_while_alternatives_exist(  # type: ignore[no-untyped-def]
    fleet, name, cap, seed
) -> None:
    stress, available, open_for_new, members = fleet
    v = view(stress, available=available, open_for_new=open_for_new)
    config = RoutingConfig(policy=name, max_per_bridge=cap)
    out = place_joins(v, batch(members), config.build_policy(), config, COSTS,
                      np.random.default_rng(seed))
    rows = np.arange(len(out.bridge))
    placed = out.bridge >= 0
    chosen = out.bridge[placed]
    # never an unavailable bridge
    assert np.all(available[rows[placed], chosen])
    # a new room never lands on a draining bridge
    new = members.sum(axis=1) == 0
    assert np.all(open_for_new[rows[placed & new], out.bridge[placed & new]])
    # a bridge that does not host the room must be open for new rooms
    fresh = placed & (members[rows, np.maximum(out.bridge, 0)] == 0)
    assert np.all(open_for_new[rows[fresh], out.bridge[fresh]])
    # the per-bridge cap holds whenever some open bridge outside the room could take the join
    if config.build_policy().splits:
        alternative = (open_for_new & (members == 0)).any(axis=1)
        over_cap = placed & (members[rows, np.maximum(out.bridge, 0)] >= cap)
        assert not np.any(over_cap & alternative)
    # someone is placed whenever any bridge could take them
    could = (open_for_new.any(axis=1)) | ((members > 0) & available).any(axis=1)
    assert np.all(placed == could)
