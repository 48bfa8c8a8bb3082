"""Tests for rlhf_gbpm.envs.pettingzoo_duel (the two-player ParallelEnv view)."""

import warnings

import numpy as np
from pettingzoo.test import parallel_api_test, parallel_seed_test

from rlhf_gbpm.envs.cyclic_duel import CyclicDuelEnv
from rlhf_gbpm.envs.pettingzoo_duel import GBPMDuelParallelEnv, parallel_env


def test_parallel_api_test_passes_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parallel_api_test(parallel_env(horizon=30), num_cycles=100)


def test_parallel_seed_test_passes():
    parallel_seed_test(lambda: parallel_env(horizon=30, contexts=3), num_cycles=50)


def test_rewards_are_complementary_bits_of_the_single_env():
    par = GBPMDuelParallelEnv(CyclicDuelEnv, horizon=50)
    single = CyclicDuelEnv(horizon=50)
    par.reset(seed=3)
    single.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(50):
        a1, a2 = rng.integers(0, 3, size=2)
        _, rew, _, trunc, info = par.step({"max_player": a1, "min_player": a2})
        _, r, _, t, info1 = single.step(np.array([a1, a2]))
        assert rew["max_player"] == r and rew["min_player"] == 1.0 - r
        assert info["max_player"]["probability"] == info1["probability"]
    assert trunc["max_player"] and par.agents == []
