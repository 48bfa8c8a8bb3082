"""Tests for rlhf_gbpm.instances and rlhf_gbpm.features."""

import math

import numpy as np
import pytest

from rlhf_gbpm.features import ArmTable, ContinuousContexts, FiniteContexts
from rlhf_gbpm.instances import (
    bradley_terry_instance,
    custom_instance,
    cyclic_instance,
    random_instance,
    random_skew_theta,
)
from rlhf_gbpm.links import LinearLink


@pytest.mark.parametrize("d,r", [(2, 1), (5, 1), (10, 3)])
@pytest.mark.parametrize("norm", ["frobenius", "nuclear"])
def test_random_theta_rank_norm_and_paired_spectrum(d, r, norm):
    theta = random_skew_theta(d, r, 5.0, norm=norm, seed=7)
    np.testing.assert_array_equal(theta, -theta.T)
    s = np.linalg.svd(theta, compute_uv=False)
    assert np.sum(s > 1e-10) == 2 * r
    np.testing.assert_allclose(s[: 2 * r : 2], s[1 : 2 * r : 2], rtol=1e-10)  # pairs
    value = np.linalg.norm(theta) if norm == "frobenius" else s.sum()
    assert value == pytest.approx(5.0)


def test_random_instance_reproducible_and_unit_features():
    a = random_instance(d=5, K=20, rank=1, S=5.0, seed=11)
    b = random_instance(d=5, K=20, rank=1, S=5.0, seed=11)
    np.testing.assert_array_equal(a.theta, b.theta)
    np.testing.assert_array_equal(a.payoff(), b.payoff())
    np.testing.assert_allclose(np.linalg.norm(a.feature_map.arms, axis=1), 1.0)
    assert a.rank == 2 and a.K == 20 and a.d == 5
    c = random_instance(d=5, K=20, rank=1, S=5.0, seed=12)
    assert not np.allclose(a.theta, c.theta)


def test_bradley_terry_is_transitive_with_reward_order():
    inst = bradley_terry_instance(K=8, d=4, scale=3.0, seed=0)
    phi = inst.feature_map.arms
    u = phi[:, 1] * math.sqrt(2)
    rewards = 3.0 * u / 2
    a = inst.payoff()
    np.testing.assert_allclose(a + 0.5, 1 / (1 + np.exp(-(rewards[:, None] - rewards[None, :]))),
                               atol=1e-14)
    assert inst.rank == 2
    assert np.all(np.linalg.norm(phi, axis=1) <= 1 + 1e-12)


def test_cyclic_instance_has_a_cycle_and_no_condorcet_winner():
    inst = cyclic_instance(K=5)
    a = inst.payoff()
    for i in range(5):
        assert a[i, (i + 1) % 5] > 0  # every arm beats the next one on the circle
    beats_all = [(np.delete(a[i], i) > 0).all() for i in range(5)]
    assert not any(beats_all)


def test_custom_instance_and_errors():
    theta = np.array([[0.0, 1.0], [-1.0, 0.0]])
    inst = custom_instance(theta, np.eye(2) * 0.5)
    assert inst.S == pytest.approx(math.sqrt(2)) and inst.K == 2
    with pytest.raises(ValueError, match="skew-symmetric"):
        custom_instance(np.eye(2), np.eye(2))
    with pytest.raises(ValueError, match="d == 2 columns"):
        custom_instance(theta, np.eye(3))
    with pytest.raises(ValueError, match="unit ball"):
        custom_instance(theta, 2 * np.eye(2))
    with pytest.raises(ValueError, match="rank == 3, must satisfy 2\\*rank <= d == 5"):
        random_instance(d=5, rank=3)
    with pytest.raises(ValueError, match="K == 1, must be >= 2"):
        random_instance(K=1)
    with pytest.raises(ValueError, match="S == 0"):
        random_instance(S=0.0)
    with pytest.raises(ValueError, match="leaves \\[0, 1\\]"):
        random_instance(S=5.0, link=LinearLink(slope=1.0))


def test_finite_contexts_sampling_frequencies():
    table = np.zeros((3, 2, 2))
    table[:, :, 0] = 0.5
    probs = np.array([0.2, 0.5, 0.3])
    fmap = FiniteContexts(table, probs)
    ctx = fmap.sample(60_000, seed=0)
    freq = np.bincount(ctx, minlength=3) / ctx.size
    # 5 binomial standard deviations
    assert np.all(np.abs(freq - probs) < 5 * np.sqrt(probs * (1 - probs) / ctx.size))
    assert fmap.features(ctx[:4]).shape == (4, 2, 2)
    assert ArmTable(np.eye(2)).num_contexts == 1


def test_continuous_contexts_unit_norm_and_context_dependence():
    fmap = ContinuousContexts.random(K=6, d=4, m=3, scale=0.8, seed=1)
    x = fmap.sample(50, seed=2)
    feats = fmap.features(x)
    assert feats.shape == (50, 6, 4)
    np.testing.assert_allclose(np.linalg.norm(feats, axis=-1), 1.0)
    assert not np.allclose(feats[0], feats[1])
    assert np.abs(x.mean()) < 0.5 and 0.5 < x.std() < 1.5
    inst = random_instance(d=4, K=6, contexts="continuous", seed=3)
    assert inst.payoff(x[:3]).shape == (3, 6, 6)
    inst = random_instance(d=4, K=6, contexts=4, seed=3)
    assert inst.payoff(np.arange(4)).shape == (4, 6, 6)
