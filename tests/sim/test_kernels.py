"""The compiled tick passes equal the numpy computations they replaced, on random inputs.

Each reference below is the numpy form the engine used before the passes were compiled; the
compiled passes promise the same numbers (floats included: same operations, same order) and
the same random stream, except the true load: ``rooms.change_rooms`` adds each change's load
difference at once (event order), so it equals the reference, and the sum of ``room_load``
over all rooms, up to float rounding (``_assert_true_load``)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sfu_balancer.core import CostTable, JoinSequence, Thresholds, stress
from sfu_balancer.core.model import REASON_INDEX, Reason
from simulations import kernels, rooms
from simulations.costmodel import CostModel
from simulations.fleet import DRAINING, FAILED, OFF, PROVISIONING, SERVING
from simulations.generator_cell import generator_cell
from simulations.joins import IS_SPLIT, NEW_ROOM

COSTS = CostModel(CostTable(last_n=5))
STICKY = REASON_INDEX[Reason.STICKY]
STATES = np.array([OFF, PROVISIONING, SERVING, SERVING, DRAINING, FAILED], dtype=np.int8)


def _room_delta(true_load: np.ndarray, members: np.ndarray, rows: np.ndarray,
                slots: np.ndarray, change) -> None:  # type: ignore[no-untyped-def]
    """The numpy form: one load difference per unique room, added in key order."""
    key = np.unique(rows * members.shape[1] + slots)
    u_rows, u_slots = key // members.shape[1], key % members.shape[1]
    before = COSTS.room_load(members[u_rows, u_slots])
    change()
    after = COSTS.room_load(members[u_rows, u_slots])
    np.add.at(true_load, u_rows, after - before)


def _assert_close(got: np.ndarray, want: np.ndarray) -> None:
    """Equal up to float rounding: within 1e-9 of the largest magnitude of each quantity
    (cpu, egress, ingress), whose scales differ by orders of magnitude."""
    scale = np.maximum(np.abs(want).reshape(-1, 3).max(axis=0, initial=0.0), 1.0)
    assert got.shape == want.shape
    assert np.all(np.abs(got - want) <= 1e-9 * scale)


def _assert_true_load(true_load: np.ndarray, members: np.ndarray) -> None:
    """``true_load`` (R, B, 3) is the sum of ``rooms_load`` over each row's rooms."""
    flat = np.ascontiguousarray(members.reshape(-1, members.shape[-1]), dtype=np.float64)
    want = rooms.rooms_load(flat, COSTS.params).reshape(*members.shape, 3).sum(axis=1)
    _assert_close(true_load, want)


def _state(rng: np.random.Generator, r: int, slots: int, b: int, m: int,  # type: ignore[no-untyped-def]
           size_max: int | None = None):
    """Rooms with members spread over bridges, sessions consistent with them; sessions
    ``size_max`` and up are free. Member ``member`` of room slot ``s`` has session slot
    ``s * m + member`` (``where`` and ``tag`` are (r, slots * m))."""
    members = np.zeros((r, slots, b), np.int8)
    where = np.full((r, slots * m), -1, np.int16)
    tag = np.zeros((r, slots * m), np.int32)
    for row in range(r):
        for s in range(slots):
            size = int(rng.integers(0, (m if size_max is None else size_max) + 1))
            for member in range(size):
                bridge = int(rng.integers(0, b)) if rng.random() < 0.3 else s % b
                where[row, s * m + member] = bridge
                tag[row, s * m + member] = s * kernels.TAG + member
                members[row, s, bridge] += 1
    count = members.sum(axis=1).astype(np.int64)
    true_load = COSTS.room_load(members).sum(axis=1)
    return members, where, tag, count, true_load


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_change_rooms_equals_the_numpy_room_delta(seed: int) -> None:
    rng = np.random.default_rng(seed)
    members, _, _, _, true_load = _state(rng, 4, 6, 3, 8)
    n = int(rng.integers(0, 20))
    rows, slots, bridges = rng.integers(0, 4, n), rng.integers(0, 6, n), rng.integers(0, 3, n)
    steps = np.ones(n, np.int64)
    ref_members, ref_load = members.copy(), true_load.copy()

    def change() -> None:
        np.add.at(ref_members, (rows, slots, bridges), 1)
    _room_delta(ref_load, ref_members, rows, slots, change)
    rooms.change_rooms(members, rows, slots, bridges, steps, n, COSTS.params, true_load)
    assert np.array_equal(members, ref_members)
    _assert_close(true_load, ref_load)
    _assert_true_load(true_load, members)


def _change(rng: np.random.Generator, ref: np.ndarray, r: int, s: int) -> tuple[int, int]:
    """A valid (bridge, step) for room (r, s) of ``ref``, applied to ``ref``: a leave from a
    bridge holding members, or a join, mostly on a bridge the room already holds (it stays
    as split or unsplit as it was), else on any bridge (it may split)."""
    room = ref[r, s]
    held = np.flatnonzero(room > 0)
    if held.size and (rng.random() < 0.45 or room.sum() >= 100):
        b, step = int(rng.choice(held)), -1
    elif held.size and rng.random() < 0.7:
        b, step = int(rng.choice(held)), 1
    else:
        b, step = int(rng.integers(0, room.size)), 1
    ref[r, s, b] += step
    return b, step


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_random_changes_keep_the_true_load_the_sum_of_room_loads(seed: int) -> None:
    """Joins, leaves (alone or batched, a room changed several times in one call), moves and
    failures, on split and unsplit rooms: after each, members are exact and the true load is
    the sum of the rooms' loads up to rounding (the drift stays rounding over many steps)."""
    rng = np.random.default_rng(seed)
    n_rows, n_slots, width = 3, 4, 4
    members, _, _, _, true_load = _state(rng, n_rows, n_slots, width, 8)
    ref = members.astype(np.int64)
    for _ in range(150):
        kind = rng.random()
        if kind < 0.6:  # one call of 1-8 changes, over few rooms so that some repeat
            k = int(rng.integers(1, 9))
            picks = [(int(rng.integers(0, n_rows)), int(rng.integers(0, n_slots)))
                     for _ in range(2)]
            rows, slots = np.empty(k, np.int64), np.empty(k, np.int64)
            bridges, steps = np.empty(k, np.int64), np.empty(k, np.int64)
            for j in range(k):
                r, s = picks[int(rng.integers(0, 2))]
                rows[j], slots[j] = r, s
                bridges[j], steps[j] = _change(rng, ref, r, s)
            rooms.change_rooms(members, rows, slots, bridges, steps, k, COSTS.params,
                               true_load)
        elif kind < 0.95:  # a move of one portion (possibly empty) to another bridge
            r, s = int(rng.integers(0, n_rows)), int(rng.integers(0, n_slots))
            src = int(rng.integers(0, width))
            dst = (src + int(rng.integers(1, width))) % width
            moved = int(ref[r, s, src])
            ref[r, s, dst] += moved
            ref[r, s, src] = 0
            assert rooms.move_portion(members, r, s, src, dst, COSTS.params,
                                      true_load) == moved
        else:
            gone = int(rng.integers(0, width))
            ref[:, :, gone] = 0
            rooms.fail_bridge(members, gone, COSTS.params, true_load)
        assert np.array_equal(members, ref)
        _assert_true_load(true_load, members)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), groups=st.integers(1, 2))
def test_leave_tick_equals_the_numpy_leave(seed: int, groups: int) -> None:
    rng = np.random.default_rng(seed)
    seeds, slots, m = 3, 5, 6
    members, where, _, count, true_load = _state(rng, seeds * groups, slots, 3, m)
    n = int(rng.integers(0, 25))
    seed_ = np.sort(rng.integers(0, seeds, n)).astype(np.int32)
    slot, member = rng.integers(0, slots, n).astype(np.int32), rng.integers(0, m, n)
    member = member.astype(np.int8)
    # a session leaves once: drop repeated (seed, slot, member)
    _, first = np.unique(np.stack([seed_, slot, member]), axis=1, return_index=True)
    keep = np.sort(first)
    seed_, slot, member = seed_[keep], slot[keep], member[keep]
    ref = [a.copy() for a in (members, where, count, true_load)]
    session = (slot * m + member).astype(np.int16)
    rows = (seed_[None, :] + seeds * np.arange(groups)[:, None]).ravel()
    t_slot, t_session = np.tile(slot, groups), np.tile(session, groups)
    bridge = ref[1][rows, t_session].astype(np.int64)
    ok = bridge >= 0
    rows, t_slot, t_session, bridge = rows[ok], t_slot[ok], t_session[ok], bridge[ok]

    def change() -> None:
        np.add.at(ref[0], (rows, t_slot, bridge), -1)
    _room_delta(ref[3], ref[0], rows, t_slot, change)
    np.add.at(ref[2], (rows, bridge), -1)
    ref[1][rows, t_session] = -1
    kernels.leave_tick(seed_, slot, session, 0, seed_.size, groups, seeds, where, members,
                       count, true_load, COSTS.params)
    for got, want in zip((members, where, count), ref[:3], strict=True):
        assert np.array_equal(got, want)
    _assert_close(true_load, ref[3])
    _assert_true_load(true_load, members)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_gather_and_apply_joins_equal_the_numpy_forms(seed: int) -> None:
    rng = np.random.default_rng(seed)
    seeds, slots, m, b = 3, 4, 8, 3
    # row 0: the other group
    members, where, tag, count, true_load = _state(rng, seeds + 1, slots, b, m, 4)
    x = int(rng.integers(0, 3))
    n = int(rng.integers(0, 12))
    x_rows, x_slots = rng.integers(0, seeds, x), rng.integers(0, slots, x)
    x_members = rng.integers(4, m, x)
    x_sessions = x_slots * m + x_members
    seed_ = np.sort(rng.integers(0, seeds, n)).astype(np.int32)
    slot = rng.integers(0, slots, n).astype(np.int32)
    member = rng.integers(4, m, n).astype(np.int8)
    session = (slot * m + member).astype(np.int16)
    cur = rng.integers(0, 3, members.shape).astype(np.int16)
    old = rng.integers(0, 3, members.shape).astype(np.int16)
    j = x + n
    out = [np.empty(j, np.int64) for _ in range(4)] + [np.empty(j, np.bool_)] + \
        [np.empty((j, b), np.int64), np.empty((j, b), np.int64), np.empty(j, np.int64)]
    last = np.full(seeds + 1, -1, np.int64)
    kernels.gather_joins(x_rows, x_slots, x_sessions, x_members, seed_, slot, session, member,
                         0, 1, members, cur, old, True, last, np.empty(j, np.int64), *out,
                         where, tag)
    rows, g_slots, sess, mems, rejoin, room, rate, prev = out
    assert np.array_equal(rows, np.concatenate([x_rows, seed_]))
    assert np.array_equal(g_slots, np.concatenate([x_slots, slot]))
    assert np.array_equal(sess, np.concatenate([x_sessions, session]))
    assert np.array_equal(mems, np.concatenate([x_members, member]))
    assert rejoin.tolist() == [True] * x + [False] * n
    assert np.array_equal(room, members[1 + rows, g_slots])
    assert np.array_equal(rate, cur[1 + rows, g_slots].astype(np.int64) + old[1 + rows, g_slots])
    assert np.array_equal(prev, JoinSequence.link(rows * slots + g_slots))
    assert np.all(last == -1)

    # outcomes as core would give them: some refused, some new rooms, some splits
    bridge = rng.integers(-1, b, j)
    reason = rng.integers(0, IS_SPLIT.size, j)
    # as in core: no split join of a room comes before its new_room join (here: none at all)
    reason[(reason == NEW_ROOM) & (prev >= 0)] = STICKY
    split = rng.random((seeds + 1, slots)) < 0.5
    metrics = [np.zeros((seeds + 1, IS_SPLIT.size), np.int64)] + \
        [np.zeros(seeds + 1, np.int64) for _ in range(3)]
    ref = [a.copy() for a in (members, where, count, true_load, split, *metrics, cur, tag)]
    grows = 1 + rows
    np.add.at(ref[5], (grows, reason), 1)
    np.add.at(ref[6], grows[~rejoin], 1)
    placed = bridge >= 0
    np.add.at(ref[7], grows[~placed], 1)
    gr, ps, pq, pm = grows[placed], g_slots[placed], sess[placed], mems[placed]
    pb, why = bridge[placed], reason[placed]
    fresh = why == NEW_ROOM
    ref[4][gr[fresh], ps[fresh]] = False
    is_split = IS_SPLIT[why]
    if is_split.any():
        key = np.unique(gr[is_split] * slots + ps[is_split])
        k_rows, k_slots = key // slots, key % slots
        first = ~ref[4][k_rows, k_slots]
        ref[4][k_rows, k_slots] = True
        np.add.at(ref[8], k_rows[first], 1)

    def change() -> None:
        np.add.at(ref[0], (gr, ps, pb), 1)
    if placed.any():
        _room_delta(ref[3], ref[0], gr, ps, change)
    np.add.at(ref[2], (gr, pb), 1)
    ref[1][gr, pq] = pb
    ref[10][gr, pq] = ps * kernels.TAG + pm
    np.add.at(ref[9], (gr, ps, pb), 1)
    kernels.apply_joins(1, rows, g_slots, sess, mems, rejoin, bridge, reason, NEW_ROOM,
                        IS_SPLIT, members, where, tag, count, true_load, split, COSTS.params,
                        *metrics, True, cur)
    got_all = (members, where, count, true_load, split, *metrics, cur, tag)
    for i, (got, want) in enumerate(zip(got_all, ref, strict=True)):
        if i == 3:
            _assert_close(got, want)
        else:
            assert np.array_equal(got, want)
    _assert_true_load(true_load, members)


def _numpy_report(now, next_due, state, interval, true_load, noise, rng, reported,  # type: ignore[no-untyped-def]
                  measured_at):
    live = (state == SERVING) | (state == DRAINING)
    due = (now >= next_due) & live
    if due.any():
        measured = true_load[due]
        if noise > 0:
            # one factor per report, for its three components
            factor = np.maximum(1.0 + noise * rng.standard_normal(measured.shape[0]), 0.0)
            measured = measured * factor[:, None]
        reported[due] = measured
        measured_at[due] = now
    late = now >= next_due
    next_due[:] = np.where(late, next_due + interval * (np.floor((now - next_due) / interval)
                                                         + 1.0), next_due)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 600))
def test_pairwise_sum_is_numpys_sum(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.random(n) * (rng.random(n) < 0.7)
    assert kernels.pairwise_sum(values, 0, n) == values.sum()


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), noise=st.sampled_from([0.0, 0.02, 0.5]),
       b=st.sampled_from([4, 13, 64]))
def test_report_views_and_sample_equal_the_numpy_forms(seed: int, noise: float,
                                                       b: int) -> None:
    rng = np.random.default_rng(seed)
    r = 5
    state = rng.choice(STATES, (r, b))
    true_load = rng.random((r, b, 3)) * np.array([10.0, 1e4, 1e4]) - 0.01  # some drift < 0
    next_due = rng.random((r, b)) * 10.0
    reported, at = rng.random((r, b, 3)), np.where(rng.random((r, b)) < 0.2, -np.inf, 1.0)
    ref = [a.copy() for a in (next_due, reported, at)]
    a_rng, b_rng = np.random.default_rng(seed), np.random.default_rng(seed)
    _numpy_report(7.0, ref[0], state, 5.0, true_load, noise, a_rng, ref[1], ref[2])
    kernels.report(7.0, next_due, state, 5.0, true_load, noise, generator_cell(b_rng), reported,
                   at)
    for got, want in zip((next_due, reported, at), ref, strict=True):
        assert np.array_equal(got, want)
    assert a_rng.random() == b_rng.random()  # the same draws were consumed

    available, open_new, age = (np.empty((r, b), np.bool_), np.empty((r, b), np.bool_),
                                np.empty((r, b)))
    kernels.views(state, at, 7.0, available, open_new, age)
    live = (state == SERVING) | (state == DRAINING)
    assert np.array_equal(available, live & np.isfinite(at))
    assert np.array_equal(open_new, available & (state == SERVING))
    assert np.array_equal(age, np.maximum(7.0 - at, 0.0))

    capacity, thresholds = np.array([[8.0, 1e4, 1e4]] * b), Thresholds()
    count = rng.integers(0, 50, (r, b))
    clamped = np.maximum(true_load, 0.0)
    want_stress = stress(clamped, capacity, thresholds)
    acc = [np.zeros(r) for _ in range(4)] + [np.zeros((r, b), np.int16)] + \
        [np.zeros(r), np.zeros(r, np.int64), np.zeros(r)]
    got_stress, rowstat = np.empty((r, b)), np.empty((r, 5))
    kernels.sample(true_load, capacity * thresholds.as_array(), state, count, 5.0, True, 0.005,
                   1000, got_stress, rowstat, *acc)
    assert np.array_equal(true_load, clamped)
    assert np.array_equal(got_stress, want_stress)
    overload_s, peak, stress_sum, samples, binned, bridge_s, max_up, participant_s = acc
    hist = np.zeros((r, 1001), np.int64)
    kernels.count_bins(np.stack([binned, binned]), 2, hist)  # the same tick queued twice
    masked = np.where(live, want_stress, 0.0)
    up = (state >= PROVISIONING) & (state <= DRAINING)
    assert np.array_equal(overload_s, ((want_stress >= 1.0) & live).sum(axis=1) * 5.0)
    assert np.array_equal(peak, masked.max(axis=1, initial=0.0))
    assert np.array_equal(stress_sum, masked.sum(axis=1))  # numpy's summation order
    assert np.array_equal(samples, live.sum(axis=1))
    bins = np.minimum((want_stress / 0.005).astype(np.int64), 1000)
    want_hist = np.zeros_like(hist)
    np.add.at(want_hist, (np.broadcast_to(np.arange(r)[:, None], (r, b))[live], bins[live]), 2)
    assert np.array_equal(binned, np.where(live, bins, -1))
    assert np.array_equal(hist, want_hist)
    assert np.array_equal(bridge_s, up.sum(axis=1) * 5.0)
    assert np.array_equal(max_up, up.sum(axis=1))
    assert np.array_equal(participant_s, count.sum(axis=1) * 5.0)
    assert np.array_equal(rowstat[:, 0], count.sum(axis=1))
    assert np.array_equal(rowstat[:, 2], masked.max(axis=1))
    assert np.array_equal(rowstat[:, 3], masked.sum(axis=1) / np.maximum(live.sum(axis=1), 1))
    assert np.array_equal(rowstat[:, 4], ((want_stress >= 1.0) & live).sum(axis=1))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_failure_and_move_equal_the_numpy_room_delta(seed: int) -> None:
    rng = np.random.default_rng(seed)
    members, _, _, _, true_load = _state(rng, 3, 5, 3, 6)
    ref_members, ref_load = members.copy(), true_load.copy()
    rows, slots = np.nonzero(ref_members[:, :, 1] > 0)

    def fail() -> None:
        ref_members[rows, slots, 1] = 0
    _room_delta(ref_load, ref_members, rows, slots, fail)
    rooms.fail_bridge(members, 1, COSTS.params, true_load)
    assert np.array_equal(members, ref_members)
    _assert_close(true_load, ref_load)
    _assert_true_load(true_load, members)

    r, s = int(rng.integers(0, 3)), int(rng.integers(0, 5))
    moved = int(ref_members[r, s, 0])

    def move() -> None:
        ref_members[r, s, 2] += moved
        ref_members[r, s, 0] = 0
    _room_delta(ref_load, ref_members, np.array([r]), np.array([s]), move)
    assert rooms.move_portion(members, r, s, 0, 2, COSTS.params, true_load) == moved
    assert np.array_equal(members, ref_members)
    _assert_close(true_load, ref_load)
    _assert_true_load(true_load, members)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_move_rooms_equals_the_numpy_moves(seed: int) -> None:
    """Planned moves of one row, in order, as the numpy form applied them one by one."""
    rng = np.random.default_rng(seed)
    rows, slots, b, m = 3, 5, 3, 6
    members, where, tag, count, true_load = _state(rng, rows, slots, b, m)
    gr = int(rng.integers(0, rows))
    k = int(rng.integers(1, 5))
    move_slots = rng.integers(0, slots, k)
    srcs, dsts = rng.integers(0, b, k), rng.integers(0, b, k)
    dsts = np.where(dsts == srcs, (srcs + 1) % b, dsts)
    ref = [a.copy() for a in (members, where, count, true_load)]
    ref_migrations, ref_migrated = np.zeros(rows, np.int64), np.zeros(rows, np.int64)
    want = []
    for s, src, dst in zip(move_slots.tolist(), srcs.tolist(), dsts.tolist(), strict=True):
        moved = int(ref[0][gr, s, src])

        def move() -> None:
            ref[0][gr, s, dst] += moved  # noqa: B023 (called at once)
            ref[0][gr, s, src] = 0  # noqa: B023
        _room_delta(ref[3], ref[0], np.array([gr]), np.array([s]), move)
        sessions = ref[1][gr]
        sessions[(sessions == src) & (tag[gr] // kernels.TAG == s)] = dst
        ref[2][gr, src] -= moved
        ref[2][gr, dst] += moved
        ref_migrations[gr] += 1
        ref_migrated[gr] += moved
        want.append(moved)
    migrations, migrated = np.zeros(rows, np.int64), np.zeros(rows, np.int64)
    got = kernels.move_rooms(gr, move_slots, srcs, dsts, members, where, tag, count, migrations,
                             migrated, COSTS.params, true_load)
    assert got.tolist() == want
    for a, w in zip((members, where, count, migrations, migrated),
                    (*ref[:3], ref_migrations, ref_migrated), strict=True):
        assert np.array_equal(a, w)
    _assert_close(true_load, ref[3])
    _assert_true_load(true_load, members)
    assert np.array_equal(count, members.sum(axis=1))  # the sessions moved with their rooms
    for bridge in range(b):
        assert np.array_equal(count[:, bridge], (where == bridge).sum(axis=1))
