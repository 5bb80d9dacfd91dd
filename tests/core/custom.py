"""A policy registered from outside core, with no compiled kernel (``kind = EXTERNAL``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from sfu_balancer.core import FleetView, PlacementRequest, Policy, register_policy
from sfu_balancer.core.policies import registry


@dataclass
class LeastProjected(Policy):
    """Least projected stress (report + ledger + this join), ties at random; counts its calls
    so tests can tell when placement asked it."""

    name = "test_least_projected"
    calls: int = 0

    def choose(self, view: FleetView, request: PlacementRequest,
               rng: np.random.Generator) -> np.ndarray:
        self.calls += 1
        score = np.max((view.expected_load + request.cost) * view.inverse_limit, axis=-1)
        score = np.where(request.eligible, score, np.inf)
        best = score.min(axis=1, initial=np.inf)
        tied = request.eligible & (score == best[:, None])
        pick = np.full(view.replicas, -1, dtype=np.int64)
        for r in np.flatnonzero(tied.any(axis=1)):
            pick[r] = rng.choice(np.flatnonzero(tied[r]))
        return pick


@pytest.fixture
def custom_policy(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[LeastProjected]]:
    """``LeastProjected`` registered with ``register_policy`` for one test only (the registry
    is restored afterwards, so the built-in list stays exact)."""
    monkeypatch.setattr(registry, "_POLICIES", dict(registry._POLICIES))
    yield register_policy(LeastProjected)
