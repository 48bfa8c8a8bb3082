"""Tests for rlhf_gbpm.envs.bradley_terry_duel."""

import gymnasium as gym
import numpy as np
import pytest
from scipy.special import expit

from rlhf_gbpm.envs.bradley_terry_duel import BradleyTerryDuelEnv, BradleyTerryDuelVectorEnv


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_preferences_are_bradley_terry_and_transitive(seed):
    env = BradleyTerryDuelEnv(K=8, S=4.0)
    env.reset(seed=seed)
    pref = env.oracle.preference_matrix()
    # latent rewards r_a = s u_a / 2 with s = S / sqrt(2) and u_a = sqrt(2) phi_a[1]
    u = np.sqrt(2.0) * env.instance.feature_map.arms[:, 1]
    r = (4.0 / np.sqrt(2.0)) * u / 2.0
    np.testing.assert_allclose(pref, expit(r[:, None] - r[None, :]), atol=1e-12)
    assert env.oracle.count_three_cycles() == 0
    order = np.argsort(-r)
    assert env.oracle.condorcet_winner() == order[0]
    np.testing.assert_array_equal(env.oracle.copeland_scores()[order], np.arange(7, -1, -1))
    np.testing.assert_allclose(np.linalg.norm(env.instance.theta), 4.0)


def test_nuclear_norm_convention_and_vector_twin():
    env = BradleyTerryDuelEnv(K=5, S=3.0, norm="nuclear")
    env.reset(seed=0)
    assert np.linalg.svd(env.instance.theta, compute_uv=False).sum() == pytest.approx(3.0)
    venv = gym.make_vec("rlhf_gbpm/BradleyTerryDuel-v0", num_envs=2, K=5)
    assert isinstance(venv, BradleyTerryDuelVectorEnv)
    obs, _ = venv.reset(seed=[0, 1])
    assert obs["features"].shape == (2, 5, 2)


@pytest.mark.parametrize("kwargs, match", [(dict(rank=2, d=4), "rank == 2, must be 1"),
                                           (dict(contexts=3), "contexts == 3, must be None")])
def test_unsupported_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BradleyTerryDuelEnv(**kwargs)
