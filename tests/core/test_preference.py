"""Tests for rlhf_gbpm.preference."""

import numpy as np
import pytest

from rlhf_gbpm.instances import random_skew_theta
from rlhf_gbpm.links import LogisticLink, ProbitLink
from rlhf_gbpm.preference import payoff_matrix, preference_probability


def test_payoff_matches_elementwise_definition_and_is_skew():
    rng = np.random.default_rng(2)
    K, d = 7, 4
    phi = rng.standard_normal((K, d))
    phi /= np.linalg.norm(phi, axis=1, keepdims=True)
    theta = random_skew_theta(d, 2, 3.0, seed=3)
    for link in (LogisticLink(), ProbitLink()):
        a = payoff_matrix(phi, theta, link)
        brute = np.array([[link.mu(phi[i] @ theta @ phi[j]) - 0.5 for j in range(K)]
                          for i in range(K)])
        np.testing.assert_allclose(a, brute, atol=1e-15)
        np.testing.assert_array_equal(a, -a.T)
        p = preference_probability(phi[:, None, :], phi[None, :, :], theta, link)
        np.testing.assert_allclose(p - 0.5, a, atol=1e-15)


def test_payoff_batches_over_leading_axes():
    rng = np.random.default_rng(4)
    phi = rng.standard_normal((3, 5, 4)) / 2.0
    thetas = np.stack([random_skew_theta(4, 1, 2.0, seed=s) for s in range(3)])
    batched = payoff_matrix(phi, thetas)
    for b in range(3):
        np.testing.assert_allclose(batched[b], payoff_matrix(phi[b], thetas[b]))
    shared = payoff_matrix(phi, thetas[0])  # theta broadcast over the batch
    np.testing.assert_allclose(shared[2], payoff_matrix(phi[2], thetas[0]))


def test_payoff_bad_input():
    phi = np.eye(3)
    with pytest.raises(ValueError, match="theta must be skew-symmetric"):
        payoff_matrix(phi, np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"theta must have shape \(\.\.\., 3, 3\)"):
        payoff_matrix(phi, np.zeros((4, 4)))
    with pytest.raises(ValueError, match="features must be finite"):
        payoff_matrix(np.full((3, 3), np.nan), np.zeros((3, 3)))
