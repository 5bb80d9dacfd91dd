"""The compiled placement charges exactly the join cost that ``load.join_cost`` forecasts.

The formula exists twice on purpose (numpy for the simulator's cost model and migrations,
compiled inside the placement kernel); this test keeps the two in step.
"""

import numpy as np
import pytest

from sfu_balancer.core import CostTable, RoutingConfig, join_cost, place_joins

from .fleet import batch, view


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("last_n", [25, 3])
def test_charged_cost_equals_the_forecast(seed: int, last_n: int) -> None:
    rng = np.random.default_rng(seed)
    replicas, bridges = 64, 6
    members = rng.integers(0, 5, (replicas, bridges)) * (rng.random((replicas, bridges)) < 0.3)
    costs = CostTable(last_n=last_n, video_kbps=300.0)
    config = RoutingConfig(max_per_bridge=3)
    out = place_joins(view(rng.random((replicas, bridges)) * 0.9), batch(members),
                      config.build_policy(), config, costs, rng)
    total = members.sum(axis=1, keepdims=True)
    on = (members > 0).sum(axis=1, keepdims=True)
    forecast = join_cost(members, total, on, costs)
    placed = np.flatnonzero(out.bridge >= 0)
    assert placed.size > replicas // 2
    np.testing.assert_allclose(out.cost[placed], forecast[placed, out.bridge[placed]],
                               rtol=1e-12, atol=1e-12)
