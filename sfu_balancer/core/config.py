"""``[routing]``: the one table of routing settings.

It has the same keys in ``sfu-balancer.toml`` and in scenario files, so an operator can try a
change in ``sfu-sim`` and paste the same table into production. ``from_mapping`` rejects unknown
keys and wrong forms with a message naming the key and the form it expects.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field, fields
from typing import Any

from .load import Thresholds
from .model import TIER_ORDER, Tier
from .policies import create_policy
from .policies.base import Policy

DEFAULT_TIER_RESERVE: dict[str, float] = {"critical": 0.0, "standard": 0.05, "bulk": 0.15}


def _number(key: str, value: Any, low: float, high: float = math.inf) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
        math.isfinite(value) and low <= value <= high
    ):
        bound = f"in [{low}, {high}]" if math.isfinite(high) else f">= {low}"
        raise ValueError(f"routing.{key} must be a number {bound}, got {value!r}")


def _integer(key: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"routing.{key} must be an integer >= {low}, got {value!r}")


@dataclass(frozen=True)
class RoutingConfig:
    policy: str = "balanced"
    params: dict[str, Any] = field(default_factory=dict)
    cpu_threshold: float = 0.8
    bandwidth_threshold: float = 0.8
    max_per_bridge: int = 80  # members of one room on one bridge before it splits (Jitsi: 80)
    join_rate_per_min: int = 0  # joins of one room to one bridge per minute; 0 = no cap
    rampup_s: float = 20.0
    recent_window_s: float = 20.0
    hot_stress: float = 0.9  # rebalance bridges at or above this stress (Jitsi: 0.9)
    max_moves: int = 10  # participants moved off one bridge per rebalance round (Jitsi: 10)
    move_cooldown_s: float = 180.0  # leave a bridge alone this long after moving (Jitsi: 3 min)
    tier_reserve: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TIER_RESERVE))
    tenant_quotas: dict[str, int] = field(default_factory=dict)
    room_tiers: dict[str, str] = field(default_factory=dict)  # glob -> tier, e.g. hospital-*

    def __post_init__(self) -> None:
        self.build_policy()  # raises for an unknown policy or parameter
        Thresholds(self.cpu_threshold, self.bandwidth_threshold)
        _integer("max_per_bridge", self.max_per_bridge, 1)
        _integer("join_rate_per_min", self.join_rate_per_min, 0)
        for key in ("rampup_s", "recent_window_s", "move_cooldown_s"):
            _number(key, getattr(self, key), 0.0)
        _number("hot_stress", self.hot_stress, 0.0)
        _integer("max_moves", self.max_moves, 0)
        tiers = {t.value for t in TIER_ORDER}
        for tier, reserve in self.tier_reserve.items():
            if tier not in tiers:
                raise ValueError(
                    f"routing.tier_reserve: unknown tier {tier!r}; tiers: {sorted(tiers)}"
                )
            _number(f"tier_reserve.{tier}", reserve, 0.0, 1.0)
        for tenant, quota in self.tenant_quotas.items():
            _integer(f"tenant_quotas.{tenant}", quota, 0)
        for pattern, tier in self.room_tiers.items():
            if tier not in tiers:
                raise ValueError(
                    f"routing.room_tiers.{pattern!r}: unknown tier {tier!r}; tiers: {sorted(tiers)}"
                )

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> RoutingConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown [routing] key(s) {unknown}; known keys: {sorted(known)}")
        for key in ("params", "tier_reserve", "tenant_quotas", "room_tiers"):
            if key in values and not isinstance(values[key], dict):
                raise ValueError(f"routing.{key} must be a table, got {values[key]!r}")
        merged = dict(values)
        if "tier_reserve" in values:
            merged["tier_reserve"] = {**DEFAULT_TIER_RESERVE, **values["tier_reserve"]}
        return cls(**merged)

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(self.cpu_threshold, self.bandwidth_threshold)

    def build_policy(self) -> Policy:
        return create_policy(self.policy, **self.params)

    def tier_for_room(self, room: str, requested: Tier) -> Tier:
        """The higher of the requested tier and the first matching per-room rule."""
        for pattern, tier in self.room_tiers.items():
            if fnmatch.fnmatchcase(room, pattern):
                rule = Tier(tier)
                return min(rule, requested, key=TIER_ORDER.index)
        return requested
