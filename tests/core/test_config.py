import pytest

from sfu_balancer.core import RoutingConfig


def test_defaults_follow_jitsi_numbers() -> None:
    config = RoutingConfig()
    assert (config.policy, config.cpu_threshold, config.max_per_bridge) == ("balanced", 0.8, 80)
    assert (config.hot_stress, config.max_moves, config.move_cooldown_s) == (0.9, 10, 180.0)


def test_from_mapping_builds_policy_with_params() -> None:
    config = RoutingConfig.from_mapping({"policy": "power_of_d", "params": {"d": 3}})
    assert config.build_policy().params()["d"] == 3


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"polcy": "random"}, r"unknown \[routing\] key\(s\) \['polcy'\]"),
        ({"policy": "nope"}, "known policies"),
        ({"params": 3}, "routing.params must be a table"),
        ({"cpu_threshold": 1.5}, "cpu_threshold must be in"),
        ({"max_per_bridge": 0}, "max_per_bridge must be an integer >= 1"),
        ({"max_per_bridge": True}, "max_per_bridge must be an integer"),
        ({"rampup_s": -1}, "rampup_s must be a number >= 0"),
        ({"tenant_quotas": {"a": -1}}, "tenant_quotas.a"),
        ({"room_tiers": {"x-*": "vip"}}, "unknown tier 'vip'"),
        ({"policy": "balanced", "params": {"d": 0}}, "balanced: d must be"),
    ],
)
def test_bad_tables_name_the_key(table: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RoutingConfig.from_mapping(table)


def test_partial_tier_reserve_keeps_other_defaults() -> None:
    config = RoutingConfig.from_mapping({"tier_reserve": {"bulk": 0.3}})
    assert config.tier_reserve == {"critical": 0.0, "standard": 0.05, "bulk": 0.3}
