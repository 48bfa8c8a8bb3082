"""Tests for rlhf_gbpm.skew."""

import numpy as np

from rlhf_gbpm.skew import pair_features, skew_dim, skew_part, skew_to_vec, vec_to_skew


def test_roundtrip_norm_and_bilinear_identity():
    rng = np.random.default_rng(1)
    d = 6
    theta = skew_part(rng.standard_normal((3, d, d)))
    vec = skew_to_vec(theta)
    assert vec.shape == (3, skew_dim(d)) == (3, 15)
    np.testing.assert_allclose(vec_to_skew(vec, d), theta, atol=1e-15)
    np.testing.assert_allclose(np.linalg.norm(vec, axis=-1), np.linalg.norm(theta, axis=(1, 2)))
    phi1, phi2 = rng.standard_normal((2, 3, d))
    z = np.einsum("bi,bij,bj->b", phi1, theta, phi2)
    np.testing.assert_allclose(np.sum(vec * pair_features(phi1, phi2), axis=-1), z, atol=1e-13)
    # pair features are the coordinates of the skew part of phi1 phi2^T
    outer = phi1[:, :, None] * phi2[:, None, :]
    np.testing.assert_allclose(pair_features(phi1, phi2), skew_to_vec(skew_part(outer)), atol=1e-14)
    # antisymmetry of pairs
    np.testing.assert_allclose(pair_features(phi2, phi1), -pair_features(phi1, phi2))
