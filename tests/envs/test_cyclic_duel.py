"""Tests for rlhf_gbpm.envs.cyclic_duel."""

import numpy as np
import pytest
from scipy.special import expit

from rlhf_gbpm.envs.cyclic_duel import CyclicDuelEnv, CyclicDuelVectorEnv


@pytest.mark.parametrize("K", [3, 5, 6])
def test_preferences_follow_the_circle_and_are_intransitive(K):
    env = CyclicDuelEnv(K=K, S=5.0)
    env.reset(seed=0)
    s = 5.0 / np.sqrt(2.0)
    a = np.arange(K)
    expected = expit(s * np.sin(2 * np.pi * (a[None, :] - a[:, None]) / K))
    np.testing.assert_allclose(env.oracle.preference_matrix(), expected, atol=1e-12)
    assert env.oracle.condorcet_winner() is None
    assert env.oracle.count_three_cycles() > 0
    p = env.oracle.von_neumann_winner()
    assert np.min(p @ env.oracle.payoff()) >= -1e-8  # unbeaten on average


def test_instance_is_deterministic_and_noise_follows_the_seed():
    venv = CyclicDuelVectorEnv(num_envs=2, K=3)
    venv.reset(seed=[4, 5])
    np.testing.assert_array_equal(venv.instances[0].theta, venv.instances[1].theta)
    rewards = np.array([venv.step(np.array([[0, 1], [0, 1]]))[1] for _ in range(200)])
    assert not np.array_equal(rewards[:, 0], rewards[:, 1])


def test_k_below_three_raises():
    with pytest.raises(ValueError, match="K == 2, must be >= 3"):
        CyclicDuelEnv(K=2)
