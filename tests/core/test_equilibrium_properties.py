"""Property tests (hypothesis) for the regularized game: identities, dual gap, Thm 3.1 bound."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlhf_gbpm import get_link, payoff_matrix
from rlhf_gbpm.equilibrium import best_response, dual_gap, j_eta, solve_sne
from rlhf_gbpm.instances import random_skew_theta
from rlhf_gbpm.regularizers import get_regularizer

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
NAMES = ["kl", "shannon", "l2", "chi2_half", "chi2", "tsallis_half", "tsallis", "kl_plus_chi2"]


@st.composite
def games(draw, max_k=12):
    """A GBPM payoff from random unit features and a random skew Theta, plus a seed."""
    seed = draw(st.integers(0, 2**32 - 1))
    K = draw(st.integers(2, max_k))
    d = draw(st.integers(2, 6))
    S = draw(st.floats(0.5, 8.0))
    rng = np.random.default_rng(seed)
    phi = rng.standard_normal((K, d))
    phi /= np.linalg.norm(phi, axis=1, keepdims=True)
    theta = random_skew_theta(d, rank=draw(st.integers(1, d // 2)), S=S, seed=rng)
    return payoff_matrix(phi, theta, "logistic"), phi, theta, rng


def regularizer(name, K, rng):
    if name in ("shannon", "tsallis_half"):
        return get_regularizer(name)
    if name == "tsallis":
        return get_regularizer("tsallis", q=float(rng.choice([0.3, 0.7, 1.3, 2.0])))
    return get_regularizer(name, reference=rng.dirichlet(np.ones(K)))


@SETTINGS
@given(game=games(), name=st.sampled_from(NAMES), log_eta=st.floats(-2, 4))
def test_payoff_skew_and_j_eta_identities(game, name, log_eta):
    A, _, _, rng = game
    K = A.shape[-1]
    np.testing.assert_array_equal(A, -A.T)
    reg = regularizer(name, K, rng)
    eta = 10.0**log_eta
    p, q = rng.dirichlet(np.ones(K), size=2)
    np.testing.assert_allclose(j_eta(p, q, A, reg, eta) + j_eta(q, p, A, reg, eta), 1.0,
                               atol=1e-12)
    np.testing.assert_allclose(j_eta(p, p, A, reg, eta), 0.5, atol=1e-12)


@SETTINGS
@given(game=games(), name=st.sampled_from(NAMES), log_eta=st.floats(-2, 4))
def test_dual_gap_nonnegative_zero_only_at_sne(game, name, log_eta):
    """0 = DGap(p*) and DGap(p) >= ||p - p*||_1^2 / (2 eta beta) (strong convexity)."""
    A, _, _, rng = game
    K = A.shape[-1]
    reg = regularizer(name, K, rng)
    eta = 10.0**log_eta
    sne = solve_sne(A, reg, eta)
    assert sne.success
    assert sne.dual_gap <= 1e-9
    p = rng.dirichlet(np.full(K, 0.7), size=16)
    gaps = dual_gap(p, A, reg, eta)
    assert np.all(gaps >= 0)
    dist = np.abs(p - sne.policy).sum(-1)
    assert np.all(gaps >= dist**2 / (2 * eta * reg.beta(K)) * (1 - 1e-9) - 1e-14)


@SETTINGS
@given(game=games(), name=st.sampled_from(NAMES), log_eta=st.floats(-2, 3))
def test_dual_gap_is_value_of_best_response(game, name, log_eta):
    """DGap(p) = psi(p)/eta + max_q [q^T A p - psi(q)/eta]; BR attains the max."""
    A, _, _, rng = game
    K = A.shape[-1]
    reg = regularizer(name, K, rng)
    eta = 10.0**log_eta
    p = rng.dirichlet(np.ones(K))
    y = A @ p
    br = best_response(y, reg, eta)

    def inner(q):
        return q @ y - reg.value(q) / eta

    direct = reg.value(p) / eta + inner(br)
    np.testing.assert_allclose(dual_gap(p, A, reg, eta), direct, rtol=1e-7, atol=1e-11)
    others = rng.dirichlet(np.full(K, 0.5), size=64)
    assert np.all(np.array([inner(q) for q in others]) <= inner(br) + 1e-12)
    # ... and it is 1/2 - J_eta(p, BR(Ap)) (the min-player's best response)
    np.testing.assert_allclose(dual_gap(p, A, reg, eta), 0.5 - j_eta(p, br, A, reg, eta),
                               rtol=1e-7, atol=1e-11)


@SETTINGS
@given(game=games(max_k=14), log_eta=st.floats(-2, 3), err=st.floats(0.01, 2.0))
def test_dual_gap_bound_theorem_3_1(game, log_eta, err):
    """Spec section 5.1 / Appendix test 4: DGap(p_hat; Theta*) <= the two bounds (KL, logistic)."""
    _, phi, theta_star, rng = game
    d = theta_star.shape[0]
    e = rng.standard_normal((d, d))
    e = (e - e.T) * err / np.linalg.norm(e - e.T)
    theta_hat = theta_star - e
    eta = 10.0**log_eta
    reg = get_regularizer("kl")
    link = get_link("logistic")
    p_hat = solve_sne(payoff_matrix(phi, theta_hat, link), reg, eta).policy
    gap = dual_gap(p_hat, payoff_matrix(phi, theta_star, link), reg, eta)
    norms = np.linalg.norm(phi @ e.T, axis=1)  # ||E phi_a||_2
    m1, m2 = p_hat @ norms, p_hat @ norms**2
    L, beta = link.L_mu, reg.beta(phi.shape[0])
    assert gap <= L**2 * eta * beta * m1**2 + L * m2 + 1e-12
    assert gap <= L * m1 + 0.5 * L * m2 + 1e-12
