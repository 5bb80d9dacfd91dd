import numpy as np
import pytest

from sfu_balancer.core import RoutingConfig, Tier, admit_tiers, fleet_utilization, within_quota
from sfu_balancer.core.admission import TIER_INDEX
from sfu_balancer.core.model import REASON_CODES, Reason

from .fleet import view

TIERS = np.array([TIER_INDEX[Tier.CRITICAL], TIER_INDEX[Tier.STANDARD], TIER_INDEX[Tier.BULK]])


def _admit(stress: float, **config: object) -> list[bool]:
    v = view(np.full((3, 4), stress))
    admitted, reason = admit_tiers(v, TIERS, RoutingConfig(**config))  # type: ignore[arg-type]
    for ok, code in zip(admitted, reason, strict=True):
        assert ok or REASON_CODES[int(code)] is Reason.CAPACITY
    return admitted.tolist()


def test_utilization_counts_available_bridges_up_to_their_limit() -> None:
    v = view([[0.5, 2.0, 0.0]], available=np.array([[True, True, False]]))
    assert fleet_utilization(v).tolist() == pytest.approx([0.75])
    none = view([[0.5]], available=np.array([[False]]))
    assert fleet_utilization(none).tolist() == [1.0]


def test_lower_tiers_are_refused_first() -> None:
    assert _admit(0.5) == [True, True, True]
    assert _admit(0.9) == [True, True, False]  # bulk keeps 15 % free
    assert _admit(0.97) == [True, False, False]  # standard keeps 5 %
    assert _admit(1.5) == [True, False, False]  # critical is never refused by admission


def test_reserves_are_configurable() -> None:
    assert _admit(0.6, tier_reserve={"bulk": 0.5}) == [True, True, False]
    with pytest.raises(ValueError, match="unknown tier 'gold'"):
        RoutingConfig(tier_reserve={"gold": 0.1})


def test_tenant_quota() -> None:
    config = RoutingConfig(tenant_quotas={"school": 2})
    assert within_quota("school", 1, config)
    assert not within_quota("school", 2, config)
    assert within_quota("other", 10_000, config)
    assert within_quota(None, 10_000, config)


def test_room_rules_raise_the_tier() -> None:
    config = RoutingConfig(room_tiers={"hospital-*": "critical", "class-*": "bulk"})
    assert config.tier_for_room("hospital-ward3", Tier.BULK) is Tier.CRITICAL
    assert config.tier_for_room("class-5b", Tier.STANDARD) is Tier.STANDARD
    assert config.tier_for_room("class-5b", Tier.CRITICAL) is Tier.CRITICAL
    assert config.tier_for_room("other", Tier.BULK) is Tier.BULK
