"""Admission: who may join when the fleet is nearly full.

Rules:
- Fleet utilization = max over resources of (sum over available bridges of expected load,
  each bridge counted up to its limit) / (sum of their limits). It is 1.0 with no bridge.
- Each tier keeps a reserve: a join of tier t is refused with ``capacity`` once utilization
  exceeds 1 - reserve[t]. Defaults keep 15 % for ``critical`` and ``standard`` (bulk refused
  first), then 5 % for ``critical`` (standard refused next); ``critical`` has no reserve and is
  refused only when no bridge can take it.
- A tenant at its quota of concurrent participants is refused with ``quota``, whatever the load.
"""

from __future__ import annotations

import numpy as np

from ._place import utilization_rows
from .config import RoutingConfig
from .load import FloatArray, IntArray
from .model import REASON_INDEX, TIER_ORDER, Reason, Tier
from .policies.base import BoolArray, FleetView, f64

TIER_INDEX: dict[Tier, int] = {tier: i for i, tier in enumerate(TIER_ORDER)}


def fleet_utilization(view: FleetView) -> FloatArray:
    """(R,) share of the available fleet's overload limits in use, 0..1."""
    result: FloatArray = utilization_rows(
        f64(view.load), f64(view.pending), f64(view.capacity), view.thresholds.as_array(),
        np.ascontiguousarray(view.available, dtype=np.bool_))
    return result


def tier_reserves(config: RoutingConfig) -> FloatArray:
    return np.array([config.tier_reserve.get(t.value, 0.0) for t in TIER_ORDER], np.float64)


def admit_tiers(
    view: FleetView, tiers: IntArray, config: RoutingConfig
) -> tuple[BoolArray, IntArray]:
    """Per row: admitted?, and the reason code (``capacity``) where refused.

    ``tiers`` holds indices into ``model.TIER_ORDER`` (0 = critical).
    """
    reserve = tier_reserves(config)[tiers]
    utilization = fleet_utilization(view)
    admitted: BoolArray = (reserve <= 0) | (utilization <= 1.0 - reserve)
    reason = np.where(admitted, -1, REASON_INDEX[Reason.CAPACITY]).astype(np.int64)
    return admitted, reason


def within_quota(tenant: str | None, current: int, config: RoutingConfig) -> bool:
    """May one more participant of ``tenant`` join, given ``current`` of theirs connected?"""
    if tenant is None or tenant not in config.tenant_quotas:
        return True
    return current < config.tenant_quotas[tenant]
