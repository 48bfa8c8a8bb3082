"""Tests for rlhf_gbpm.links."""

import math

import numpy as np
import pytest

from rlhf_gbpm.links import LinearLink, LogisticLink, ProbitLink, get_link, z_bound

Z = np.linspace(-6, 6, 241)
LINKS = [LogisticLink(), LinearLink(slope=0.05), ProbitLink(scale=1.3)]


@pytest.mark.parametrize("link", LINKS, ids=lambda lk: lk.name)
def test_antisymmetry_and_derivatives(link):
    np.testing.assert_allclose(link.mu(Z) + link.mu(-Z), 1.0, atol=1e-15)
    h = 1e-5
    fd = (link.mu(Z + h) - link.mu(Z - h)) / (2 * h)
    np.testing.assert_allclose(link.mu_dot(Z), fd, atol=1e-9)
    fd2 = (link.mu_dot(Z + h) - link.mu_dot(Z - h)) / (2 * h)
    np.testing.assert_allclose(link.mu_ddot(Z), fd2, atol=1e-8)
    # m' = mu: the quasi-likelihood loss m(z) - r z has gradient mu(z) - r
    fdm = (link.log_partition(Z + h) - link.log_partition(Z - h)) / (2 * h)
    np.testing.assert_allclose(fdm, link.mu(Z), atol=1e-8)
    # L_mu bounds mu_dot and is attained at 0 (mu_dot is even and unimodal)
    assert link.mu_dot(Z).max() <= link.L_mu + 1e-15
    assert link.mu_dot(np.array(0.0)) == pytest.approx(link.L_mu)


def test_logistic_constants():
    lk = LogisticLink()
    assert lk.L_mu == 0.25 and lk.R_s == 1.0
    s = 5.0
    expected = math.exp(-s / 2) / (1 + math.exp(-s / 2)) ** 2  # spec section 1.3
    assert lk.kappa(s) == pytest.approx(expected, rel=1e-12)
    assert lk.kappa(s, "frobenius") == pytest.approx(float(lk.mu_dot(np.array(s / math.sqrt(2)))))
    # self-concordance |mu''| <= R_s mu'
    assert np.all(np.abs(lk.mu_ddot(Z)) <= lk.R_s * lk.mu_dot(Z) + 1e-15)


def test_z_bound_matches_worst_case_skew_form():
    rng = np.random.default_rng(0)
    # rank-2 skew with nuclear norm S: max phi1^T Theta phi2 over unit vectors is S/2
    q, _ = np.linalg.qr(rng.standard_normal((4, 2)))
    S = 3.0
    theta = q @ np.array([[0, S / 2], [-S / 2, 0]]) @ q.T
    assert np.linalg.svd(theta, compute_uv=False).sum() == pytest.approx(S)
    assert np.linalg.norm(theta, 2) == pytest.approx(z_bound(S, "nuclear"))
    assert np.linalg.norm(theta, 2) <= z_bound(np.linalg.norm(theta), "frobenius") + 1e-12


def test_linear_link_refuses_out_of_range():
    lk = LinearLink(slope=0.125)  # the rebuttal code's 1/2 + z/8
    assert lk.check_bound(8.0, "nuclear") == 8.0  # |z| <= 4 -> mu in [0, 1]
    with pytest.raises(ValueError, match="S == 8.5"):
        lk.check_bound(8.5, "nuclear")
    with pytest.raises(ValueError, match="slope == 0"):
        LinearLink(slope=0)
    assert lk.kappa(8.0) == 0.125


def test_get_link():
    assert isinstance(get_link("logistic"), LogisticLink)
    assert get_link("linear", slope=0.1).slope == 0.1
    lk = ProbitLink()
    assert get_link(lk) is lk
    with pytest.raises(ValueError, match="link == 'cauchit'"):
        get_link("cauchit")
    with pytest.raises(TypeError):
        get_link(3)


def test_link_and_feature_map_are_abstract():
    from rlhf_gbpm.features import FeatureMap
    from rlhf_gbpm.links import Link

    with pytest.raises(TypeError, match="abstract"):
        Link()
    with pytest.raises(TypeError, match="abstract"):
        FeatureMap()
