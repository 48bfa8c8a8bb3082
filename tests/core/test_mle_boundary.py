"""fit_mle is the exact constrained MLE, also on rank-deficient data and on the ball's boundary.

References, all independent of the package's solver:

* cvxpy (Clarabel) on the same problem (objective to 1e-8, theta to its accuracy);
* the one-run Newton/Brent MLE of ``benchmarks/_reference.py`` (the multiplier of the ball
  by Brent's method on ||theta(nu)|| = S), to 1e-9 in theta;
* closed forms: with linearly independent rows and win fractions strictly inside (0, 1),
  the loss separates in z = X theta, its minimizers have z_s = logit(r_s) and the
  min-norm one is pinv(X) z;
* the KKT conditions written out from the formula.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from rlhf_gbpm.estimation import fit_mle, mle_cvxpy
from rlhf_gbpm.features import random_unit_features
from rlhf_gbpm.skew import pair_features

_REF_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "_reference.py"


def _reference_mle():
    spec = importlib.util.spec_from_file_location("_bench_reference_mle", _REF_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MleRef


def _comparisons(B, N, d, seed):
    """Raw comparisons with unit features and random bits: x (B, N, D), r (B, N)."""
    rng = np.random.default_rng(seed)
    phi = random_unit_features((B, N, 2, d), seed=rng)
    x = pair_features(phi[..., 0, :], phi[..., 1, :])
    return x, (rng.random((B, N)) < 0.5).astype(float)


def _kkt(x, r, w, theta, S):
    """KKT residual ||theta - P(theta - g)|| of the mean logistic loss, from the formula."""
    z = x @ theta
    g = x.T @ (w * (0.5 * (1.0 + np.tanh(0.5 * z)) - r)) / w.sum()
    v = theta - g
    n = np.linalg.norm(v)
    return float(np.linalg.norm(theta - (v if n <= S else v * (S / n))))


def _null_part(x, theta):
    """Norm of theta's component outside the row space of x (N, D)."""
    basis = np.linalg.svd(x, full_matrices=False)[2]
    return float(np.linalg.norm(theta - basis.T @ (basis @ theta)))


@pytest.mark.parametrize("d, S", [(5, 5.0), (10, 10.0), (10, 2.0)])
@pytest.mark.parametrize("N", [1, 2, 5, 8])
def test_rank_deficient_bits_boundary_optimum_matches_cvxpy(d, S, N):
    """N < D comparisons, 0/1 outcomes: no unconstrained MLE, the optimum is on ||theta|| = S."""
    x, r = _comparisons(3, N, d, seed=100 * d + N)
    res = fit_mle(x, r, S=S, max_iter=50)
    assert np.all(res.success) and np.all(np.isfinite(res.theta))
    assert_allclose(np.linalg.norm(res.theta, axis=-1), S, rtol=1e-12)
    ref = mle_cvxpy(x, r, S=S)
    assert_allclose(res.fun, ref.fun, rtol=1e-8, atol=1e-10)
    assert_allclose(res.theta, ref.theta, atol=1e-4 * S)  # cvxpy's accuracy in theta
    for b in range(3):
        assert _kkt(x[b], r[b], np.ones(N), res.theta[b], S) <= 1e-12
        assert _null_part(x[b], res.theta[b]) <= 1e-10


@pytest.mark.parametrize("d, N, S", [(5, 3, 5.0), (5, 30, 5.0), (10, 6, 10.0), (10, 80, 10.0),
                                     (10, 400, 10.0)])
def test_equals_the_newton_brent_reference(d, N, S):
    """Boundary and interior, rank-deficient and full-rank: theta to 1e-9 of the reference."""
    mle_ref = _reference_mle()
    x, r = _comparisons(2, N, d, seed=7 * N + d)
    res = fit_mle(x, r, S=S)
    assert np.all(res.success)
    for b in range(2):
        ref = mle_ref(x.shape[-1], S)
        for xs, rs in zip(x[b], r[b]):
            ref.observe(xs, float(rs))
        assert_allclose(res.theta[b], ref.fit(), atol=1e-9)


@pytest.mark.parametrize("S, inside", [(50.0, True), (0.5, False)])
def test_rank_deficient_fractions_closed_form(S, inside):
    """Independent rows with fractions in (0, 1): min-norm optimum pinv(X) logit(r) if inside."""
    d, N = 10, 12
    rng = np.random.default_rng(3)
    x = _comparisons(1, N, d, seed=11)[0][0]
    r = rng.uniform(0.2, 0.8, N)
    w = rng.integers(1, 5, N).astype(float)
    theta_min_norm = np.linalg.pinv(x) @ np.log(r / (1.0 - r))
    assert (np.linalg.norm(theta_min_norm) <= S) == inside
    res = fit_mle(x, r, S=S, weights=w)
    assert res.success
    assert _kkt(x, r, w, res.theta, S) <= 1e-12
    assert _null_part(x, res.theta) <= 1e-10
    if inside:
        assert_allclose(res.theta, theta_min_norm, atol=1e-10)
    else:
        assert_allclose(np.linalg.norm(res.theta), S, rtol=1e-12)
        ref = mle_cvxpy(x, r, S=S, weights=w)
        assert_allclose(res.fun, ref.fun, rtol=1e-9)


def test_pair_statistics_singular_boundary_matches_cvxpy():
    """Greedy Sampling's data: all K(K-1)/2 pair rows, most with weight 0 (singular Hessian)."""
    d, K, S = 5, 20, 5.0
    rng = np.random.default_rng(5)
    phi = random_unit_features((K, d), seed=rng)
    i, j = np.triu_indices(K, k=1)
    x = pair_features(phi[i], phi[j])
    n = np.zeros(len(i))
    n[rng.choice(len(i), 6, replace=False)] = rng.integers(1, 3, 6)
    wins = np.minimum(rng.integers(0, 3, len(i)), n)
    r = np.where(n > 0, wins / np.maximum(n, 1.0), 0.5)
    res = fit_mle(x, r, S=S, weights=n)
    ref = mle_cvxpy(x, r, S=S, weights=n)
    assert res.success
    assert_allclose(res.fun, ref.fun, rtol=1e-8)
    assert _kkt(x, r, n, res.theta, S) <= 1e-12
    assert _null_part(x[n > 0], res.theta) <= 1e-10


@pytest.mark.parametrize("d, S", [(5, 5.0), (10, 10.0)])
def test_warm_refits_are_short_exact_and_batch_independent(d, S):
    """Refits after every two comparisons (GS's refresh), each from the previous estimate.

    Few iterations (more while the data are rank-deficient and the optimum moves a lot), the
    same estimate as a cold fit, and every problem's numbers equal to its fit alone (bit for
    bit) and to its fit in a sub-batch.
    """
    x, r = _comparisons(6, 60, d, seed=d)
    theta = np.zeros((6, x.shape[-1]))
    late = []
    for n in range(2, 61, 2):
        warm = fit_mle(x[:, :n], r[:, :n], S=S, warm_start=theta)
        assert np.all(warm.success)
        assert np.all(warm.nit <= (5 if n >= 40 else 7))
        if n >= 40:
            late.append(warm.nit)
        theta = warm.theta
    assert np.mean(late) <= 4.0
    cold = fit_mle(x, r, S=S)
    assert np.all(cold.success) and np.all(cold.nit <= 50)
    assert_allclose(warm.theta, cold.theta, atol=1e-10)
    start = fit_mle(x[:, :-2], r[:, :-2], S=S).theta
    batch = fit_mle(x, r, S=S, warm_start=start)
    for b in range(6):
        alone = fit_mle(x[b], r[b], S=S, warm_start=start[b])
        assert_array_equal(alone.theta, batch.theta[b])
    sub = fit_mle(x[2:5], r[2:5], S=S)
    assert_array_equal(sub.theta, cold.theta[2:5])


def test_converged_warm_start_is_returned_unchanged():
    x, r = _comparisons(2, 30, 5, seed=1)
    first = fit_mle(x, r, S=5.0)
    again = fit_mle(x, r, S=5.0, warm_start=first.theta)
    assert np.all(again.nit == 0)
    assert_array_equal(again.theta, first.theta)


def test_no_warning_on_sweep_sized_cold_fits():
    """Cold fits at the sweep's sizes converge within the default max_iter, silently."""
    for d, S in [(5, 5.0), (10, 10.0)]:
        for N in (1, 3, 20, 200):
            x, r = _comparisons(4, N, d, seed=N)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                res = fit_mle(x, r, S=S)
            assert np.all(res.success) and np.all(res.nit <= 20)


def _trust_region_brentq(hess, c, radius):
    """Independent trust-region solution: eigenbasis + brentq on ||t(nu)|| = radius.

    Interior: the min-norm minimizer -H^+ c. Boundary: t(nu) = -(H + nu I)^-1 c.
    """
    from scipy.optimize import brentq

    lam, q = np.linalg.eigh(hess)
    ct = q.T @ c
    keep = lam > 1e-12 * lam[-1]
    t0 = np.where(keep, -ct / np.where(keep, lam, 1.0), 0.0)
    if np.linalg.norm(t0) <= radius:
        return q @ t0

    def step(nu):  # the null-space part of c is rounding noise: dropped
        return np.where(keep, -ct / np.where(keep, lam + nu, 1.0), 0.0)

    nu = brentq(lambda v: np.linalg.norm(step(v)) - radius, 0.0,
                np.linalg.norm(c) / radius + 1.0, xtol=1e-300, rtol=1e-15)
    return q @ step(nu)


@pytest.mark.parametrize("rank", [2, 6, 10])
def test_model_step_equals_an_independent_trust_region_solve(rank):
    """The ball-constrained model minimizer, whatever the multiplier guess (none, good, bad)."""
    from rlhf_gbpm._mle import _ball_newton_point

    rng = np.random.default_rng(rank)
    b, dim = 12, 10
    basis = rng.standard_normal((b, dim, rank))
    hess = basis @ np.swapaxes(basis, 1, 2)
    c = (basis @ rng.standard_normal((b, rank, 1)))[..., 0]  # in the range, as in the MLE
    radius = np.linspace(0.05, 3.0, b)
    want = np.stack([_trust_region_brentq(hess[k], c[k], radius[k]) for k in range(b)])
    for guess in (np.zeros(b), np.full(b, 0.3), np.full(b, 1e3)):
        got, nu = _ball_newton_point(hess, c, radius, guess)
        assert_allclose(got, want, atol=1e-9 * np.max(np.abs(want)))
        on = np.linalg.norm(want, axis=-1) > radius * (1 - 1e-12)
        assert np.all(nu[~on] == 0.0) and np.all(nu[on] > 0.0)
        # KKT of the model: (H + nu I) t = -c on the sphere
        resid = (hess @ got[:, :, None])[..., 0] + nu[:, None] * got + c
        assert np.max(np.abs(resid[on])) <= 1e-9 * np.max(np.abs(c))


def test_weight_zero_rows_change_nothing_and_batch_mates_do_not_matter():
    """Problems with many and few weight-0 rows (solved on their weighted rows only)."""
    d, N, S = 5, 150, 5.0
    x, r = _comparisons(5, N, d, seed=21)
    rng = np.random.default_rng(21)
    w = rng.integers(1, 4, (5, N)).astype(float)
    for b, kept in enumerate([3, 20, 40, 100, N]):
        w[b, rng.permutation(N)[kept:]] = 0.0
    batch = fit_mle(x, r, S=S, weights=w)
    assert np.all(batch.success)
    for b in range(5):
        alone = fit_mle(x[b], r[b], S=S, weights=w[b])
        assert_array_equal(alone.theta, batch.theta[b])
        on = w[b] > 0
        dropped = fit_mle(x[b, on], r[b, on], S=S, weights=w[b, on])
        assert_allclose(batch.theta[b], dropped.theta, atol=1e-12)
        assert_allclose(batch.fun[b], dropped.fun, rtol=1e-13)
        assert _kkt(x[b], r[b], w[b], batch.theta[b], S) <= 1e-12


def test_greedy_sampling_mle_equals_the_one_run_reference():
    """GS-MLE (pair statistics, batched) against benchmarks/_reference.py (raw data, per run).

    The first refits have fewer comparisons than coordinates (boundary optima); the pairs
    played are identical, the final estimates agree to 1e-9 and the regret curves to 1e-9
    (relative; eta >= 1, where the closed-form gap of the reference keeps its digits).
    """
    from rlhf_gbpm.agents import GreedySampling
    from rlhf_gbpm.envs import GBPMDuelVectorEnv, VectorRegretMonitor

    spec = importlib.util.spec_from_file_location("_bench_reference_gs", _REF_PATH)
    ref_mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref_mod)
    d, K, S, T = 5, 20, 5.0, 60
    seeds, etas = [0, 1, 0, 1], np.array([1.668, 1.668, 1000.0, 1000.0])
    env = GBPMDuelVectorEnv(num_envs=4, d=d, K=K, rank=1, S=S, horizon=T, max_episode_steps=T)
    venv = VectorRegretMonitor(env, "kl", eta=etas)
    agent = GreedySampling(regularizer="kl", eta=etas, estimator="mle", refresh=2, S=S)
    agent.reset(seed=seeds)
    obs, _ = venv.reset(seed=seeds)
    pairs, regret = [], []
    for _ in range(T):
        action = agent.act(obs)
        next_obs, reward, _, _, info = venv.step(action)
        agent.update(obs, action, reward)
        pairs.append(np.array(action.pair))
        regret.append(np.array(info["mbr_regret"]))
        obs = next_obs
    pairs, regret = np.array(pairs), np.array(regret)
    for b in range(4):
        ref = ref_mod.run_reference(seeds[b], float(etas[b]), d=d, K=K, S=S, T=T,
                                    estimator="mle")
        assert_array_equal(pairs[:, b], ref["pairs"])
        assert_allclose(agent.theta_vec_[b], ref["theta"], atol=1e-9)
        assert_allclose(regret[:, b], np.cumsum(ref["mbr"]), rtol=1e-9)
