import numpy as np
import pytest

from sfu_balancer.core import RoutingConfig, place_joins
from sfu_balancer.core.model import REASON_CODES, Reason

from .fleet import COSTS, batch, view

RNG = np.random.default_rng


def _place(v, b, policy="balanced", **config):  # type: ignore[no-untyped-def]
    cfg = RoutingConfig(policy=policy, **config)
    out = place_joins(v, b, cfg.build_policy(), cfg, COSTS, RNG(0))
    return out, [REASON_CODES[int(r)] for r in out.reason]


def test_new_room_goes_where_the_policy_says() -> None:
    out, reasons = _place(view([[0.5, 0.1, 0.3]]), batch([[0, 0, 0]]))
    assert out.bridge.tolist() == [1] and reasons == [Reason.NEW_ROOM]
    assert out.cost[0, 2] > 0  # the newcomer's ingress stream is charged


def test_room_is_sticky_even_when_another_bridge_is_idler() -> None:
    out, reasons = _place(view([[0.5, 0.0, 0.0]]), batch([[3, 0, 0]]))
    assert out.bridge.tolist() == [0] and reasons == [Reason.STICKY]
    assert not out.relay_to.any()


def test_split_when_room_bridge_would_overload_with_relay_links() -> None:
    out, reasons = _place(view([[0.999, 0.2, 0.4]]), batch([[5, 0, 0]]))
    assert out.bridge.tolist() == [1] and reasons == [Reason.SPLIT_OVERLOAD]
    assert out.relay_to.tolist() == [[True, False, False]]


def test_split_at_max_per_bridge_cap() -> None:
    out, reasons = _place(view([[0.0, 0.1, 0.2]]), batch([[4, 0, 0]]), max_per_bridge=4)
    assert out.bridge.tolist() == [1] and reasons == [Reason.SPLIT_CAP]
    # a split room fills its second bridge before opening a third
    out, reasons = _place(view([[0.0, 0.1, 0.2]]), batch([[4, 2, 0]]), max_per_bridge=4)
    assert out.bridge.tolist() == [1] and reasons == [Reason.STICKY]


def test_join_rate_cap_splits_only_when_enabled() -> None:
    recent = np.array([[30, 0, 0]])
    out, reasons = _place(view([[0.0, 0.1, 0.2]]), batch([[10, 0, 0]], recent=recent))
    assert reasons == [Reason.STICKY]
    out, reasons = _place(view([[0.0, 0.1, 0.2]]), batch([[10, 0, 0]], recent=recent),
                          join_rate_per_min=30)
    assert out.bridge.tolist() == [1] and reasons == [Reason.SPLIT_JOIN_RATE]


def test_cap_gives_way_only_without_alternative() -> None:
    open_for_new = np.array([[True, False, False]])  # the others drain
    out, reasons = _place(view([[0.0, 0.1, 0.2]], open_for_new=open_for_new),
                          batch([[4, 0, 0]]), max_per_bridge=4)
    assert out.bridge.tolist() == [0] and reasons == [Reason.STICKY_OVERLOADED]


def test_jicofo_single_never_splits() -> None:
    out, reasons = _place(view([[1.5, 0.0]]), batch([[90, 0]]), policy="jicofo_single")
    assert out.bridge.tolist() == [0] and reasons == [Reason.STICKY]


def test_draining_bridge_takes_no_new_rooms_but_keeps_its_rooms() -> None:
    open_for_new = np.array([[False, True]])
    out, reasons = _place(view([[0.0, 0.5]], open_for_new=open_for_new), batch([[0, 0]]))
    assert out.bridge.tolist() == [1]
    out, reasons = _place(view([[0.0, 0.5]], open_for_new=open_for_new), batch([[2, 0]]))
    assert out.bridge.tolist() == [0] and reasons == [Reason.STICKY]


def test_all_draining_refuses_new_rooms() -> None:
    closed = np.zeros((1, 2), bool)
    out, reasons = _place(view([[0.0, 0.5]], open_for_new=closed), batch([[0, 0]]))
    assert out.bridge.tolist() == [-1] and reasons == [Reason.NO_BRIDGE]
    assert out.cost.sum() == 0


def test_failed_room_bridge_is_replaced() -> None:
    available = np.array([[False, True, True]])
    out, reasons = _place(view([[0.0, 0.5, 0.2]], available=available), batch([[3, 0, 0]]))
    assert out.bridge.tolist() == [2] and reasons == [Reason.REPLACE_FAILED]
    assert not out.relay_to.any()  # nothing alive to relay to


def test_inactive_rows_get_nothing() -> None:
    b = batch([[0, 0], [0, 0]])
    b = type(b)(b.room_members, b.room_recent_joins, b.region, np.array([True, False]))
    out, _ = _place(view([[0.1, 0.2], [0.1, 0.2]]), b)
    assert out.bridge.tolist() == [0, -1]


def test_rows_are_independent() -> None:
    single, _ = _place(view([[0.9, 0.1, 0.3]]), batch([[2, 0, 0]]))
    many, _ = _place(view([[0.2, 0.1, 0.3], [0.9, 0.1, 0.3]]), batch([[0, 0, 0], [2, 0, 0]]))
    assert many.bridge[1] == single.bridge[0]


@pytest.mark.parametrize("policy", ["balanced", "least_loaded", "round_robin"])
def test_decisions_are_reproducible(policy: str) -> None:
    v = view(np.random.default_rng(1).random((16, 12)))
    b = batch(np.random.default_rng(2).integers(0, 3, (16, 12)))
    cfg = RoutingConfig(policy=policy)
    one = place_joins(v, b, cfg.build_policy(), cfg, COSTS, RNG(9))
    two = place_joins(v, b, cfg.build_policy(), cfg, COSTS, RNG(9))
    assert one.bridge.tolist() == two.bridge.tolist()
    assert one.reason.tolist() == two.reason.tolist()
