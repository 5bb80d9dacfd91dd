"""Azar, Broder, Karlin, Upfal: n balls into n bins, through our own policies.

Random placement gives a maximum load near ln n / ln ln n (≥ 6 at n = 10^4 in practice); the
best of two choices gives ln ln n / ln 2 + O(1) (≤ 4). The replica axis carries the seeds.
"""

from dataclasses import replace

import numpy as np
import pytest

from sfu_balancer.core import create_policy
from sfu_balancer.core.model import CPU

from .fleet import request, view

N = 10_000
SEEDS = 4


def _max_loads(policy_name: str, **params: object) -> list[int]:
    policy = create_policy(policy_name, **params)
    empty = view(np.zeros((SEEDS, N)))
    req = request(empty)
    rng = np.random.default_rng(2024)
    counts = np.zeros((SEEDS, N))
    rows = np.arange(SEEDS)
    load = np.zeros_like(empty.load)
    for _ in range(N):
        load[..., CPU] = counts  # fresh, exact information: the classic setting
        v = replace(empty, load=load)
        choice = policy.choose(v, req, rng)
        counts[rows, choice] += 1
    assert counts.sum() == SEEDS * N
    return counts.max(axis=1).astype(int).tolist()


@pytest.mark.slow
def test_one_choice_max_load_is_at_least_six() -> None:
    assert min(_max_loads("random")) >= 6


@pytest.mark.slow
def test_two_choices_max_load_is_at_most_four() -> None:
    assert max(_max_loads("power_of_d", d=2)) <= 4
