"""Tests for rlhf_gbpm.analysis.signsgd_scaling."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest

from rlhf_gbpm.analysis import signsgd_scaling as ss
from rlhf_gbpm.errors import GBPMWarning


@pytest.fixture(scope="module")
def default_result():
    with warnings.catch_warnings():
        warnings.simplefilter("error", GBPMWarning)  # the soft check must not fire either
        # the spec's cheap grid; blocks of 2% of t instead of 1% halve the cost and move the
        # slopes by < 0.002
        res = ss.run(ss.Config(block_frac=0.02))
        cl = ss.claims(res)
    return res, cl


def test_reduction_matches_full_model_risk():
    rng = np.random.default_rng(0)
    d, v, alpha, beta = 6, 24, 1.2, 0.6
    W_big = rng.standard_normal((v, d))
    prob = ss.plrf_problem(d, alpha=alpha, beta=beta, v_ratio=4.0, W_big=W_big)
    W = W_big / math.sqrt(d)
    j = np.arange(1, v + 1)
    Dg, b = j ** (-2.0 * alpha), j ** (-beta)
    for _ in range(3):
        theta = rng.standard_normal(d)
        full = 0.5 * np.sum(Dg * (W @ theta - b) ** 2)  # 1/2 E[(<W^T x, theta> - <x, b>)^2]
        np.testing.assert_allclose(prob.risk(theta), full, rtol=1e-10)
    # theta* minimises the full-model risk: zero gradient W^T D (W theta* - b)
    np.testing.assert_allclose(W.T @ (Dg * (W @ prob.theta_star - b)), 0.0, atol=1e-12)


def test_sgd_recursion_equals_full_covariance_recursion():
    prob = ss.plrf_problem(5, alpha=1.0, beta=0.75, seed=1)
    K, s2, gamma, T = prob.K, prob.sigma2, 0.4 / np.trace(prob.K), 60
    Sigma = np.outer(prob.theta_star, prob.theta_star)
    ref = []
    for _ in range(T):
        KS = K @ Sigma
        Sigma = (Sigma - gamma * (KS + KS.T)
                 + gamma**2 * (2 * K @ Sigma @ K + np.trace(KS) * K + s2 * K))
        ref.append(0.5 * (np.trace(K @ Sigma) + s2))
    times, risk = ss.mf_risk(prob, "sgd", [gamma], [T], exact_steps=T)
    np.testing.assert_array_equal(times[0], np.arange(T + 1))
    np.testing.assert_allclose(risk[0, 0, 1:], ref, rtol=1e-9)


def test_mean_field_matches_monte_carlo_spec_setting():
    # spec 5.4: d = 64, (alpha, beta) = (1, 0.75), T = 2e4; gap < 20% for t >= 3000
    prob = ss.plrf_problem(64, alpha=1.0, beta=0.75, seed=5)
    algos, lrs = ["sgd", "signsgd", "signsgd"], np.array([0.3, 5e-4, 2e-3])
    cps = np.array([3000, 6000, 12000, 20000])
    mc = ss.mc_risk(prob, algos, lrs, 20000, cps, seeds=32, seed=2)
    for r, (a, lr) in enumerate(zip(algos, lrs)):
        t, P = ss.mf_risk(prob, a, [lr], [20000])
        mf = np.interp(cps, t[0], P[0, 0])
        assert np.all(np.abs(mc[r] - mf) / mc[r] < 0.2), (a, lr, mc[r], mf)


def test_noise_identity_and_linear_contrast():
    prob = ss.plrf_problem(8, alpha=1.0, beta=0.75, seed=3)
    rng = np.random.default_rng(4)
    thetas = np.stack([np.zeros(8), prob.theta_star, rng.standard_normal(8)])
    n = 100_000
    err = ss.noise_identity_error(prob, thetas, n_samples=n, seed=0)
    assert np.all(err < 3 / math.sqrt(n))
    # contrast: the linearised (2/pi) K~ (no arcsin) is off by much more than the MC error
    s = 1 / np.sqrt(np.diag(prob.K))
    lin = 2 / np.pi * s[:, None] * prob.K * s[None, :]
    assert np.max(np.abs(lin - prob.sign_noise_covariance())) > 0.2


def test_schedule_multiplier_shapes():
    T = 100.0
    t = np.array([0.0, 50.0, 80.0, 90.0, 100.0])
    np.testing.assert_allclose(ss.schedule_multiplier(t, T, decay_frac=0.2),
                               [1, 1, 1, 0.5, 0])
    np.testing.assert_allclose(
        ss.schedule_multiplier(t, T, decay_frac=0.2, shape="cosine"), [1, 1, 1, 0.5, 0],
        atol=1e-12)
    np.testing.assert_allclose(
        ss.schedule_multiplier(t, T, decay_frac=0.2, shape="1-sqrt")[3], 1 - math.sqrt(0.5))
    np.testing.assert_allclose(ss.schedule_multiplier([5.0], T, warmup_frac=0.1), [0.5])


def test_reference_exponents():
    assert ss.sgd_reference_exponent(1.5, 0.4) == ("Ia", pytest.approx(-0.7))
    assert ss.sgd_reference_exponent(1.0, 0.75) == ("II", pytest.approx(-2.5 / 3.5))
    assert ss.sgd_reference_exponent(1.0, 1.5) == ("III", pytest.approx(-0.75))
    assert math.isnan(ss.sgd_reference_exponent(0.4, 1.0)[1])


def test_default_claims_hold(default_result):
    res, cl = default_result
    assert [c.name for c in cl][:4] == [
        "sgd_slope_matches_paquette", "decay_steepens_signsgd",
        "signsgd_decay_steeper_than_sgd", "signsgd_decay_beats_sgd_at_fmax"]
    failed = [c for c in cl if not c.holds]
    assert not failed, failed


def test_contrasts_fail_for_sgd_and_constant_lr(default_result):
    res, _ = default_result
    s = res.slope
    # the decay does not steepen SGD by the signSGD margin
    assert not s["sgd_sd"] < s["sgd_const"] - 0.03
    # without the decay, signSGD does not beat SGD at the largest compute
    assert res.frontier["signsgd_const"][-1] > res.frontier["sgd_const"][-1]
    # every frontier point is at least the floor of its d* and decreases with compute
    for key, front in res.frontier.items():
        assert np.all(np.diff(front) < 0), key


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"alpha": -1.0}, ValueError, "alpha == -1.0, must be > 0.0"),
        ({"alpha": 0.2, "beta": 0.2}, ValueError, "admissibility"),
        ({"v_ratio": 1.0}, ValueError, "v_ratio == 1.0, must be > 1.0"),
        ({"f_max": 10.0}, ValueError, "f_max == 10.0, must be > 1000.0"),
        ({"decay_frac": 0.0, "warmup_frac": 1.5}, ValueError, "warmup_frac == 1.5"),
        ({"decay_shape": "step"}, ValueError, "decay_shape == 'step'"),
        ({"ds": (8,)}, ValueError, "at least 2 sizes"),
        ({"mc_t_min": 30000}, ValueError, "mc_t_min == 30000, must be < mc_T"),
        ({"n_f": 3.0}, TypeError, "n_f must be an instance of"),
    ],
)
def test_config_validation(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ss.Config(**kwargs)


def test_cli_smoke(tmp_path):
    toml = tmp_path / "tiny.toml"
    toml.write_text(
        "ds = [4, 8]\nn_f = 4\nf_max = 1e4\nn_sign_lr = 5\nn_sketches = 1\nmc_d = 8\n"
        "mc_T = 600\nmc_t_min = 300\nmc_seeds = 2\nnoise_samples = 2000\nnoise_tol = 0.2\n"
    )
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "rlhf_gbpm.experiments.cli", "study", "signsgd_scaling",
         "--config", str(toml), "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
    assert (out / "signsgd_scaling_headline.png").is_file()
    assert "noise_reshaping_identity" in (out / "signsgd_scaling_claims.csv").read_text()


def test_monte_carlo_signsgd_is_the_signum_update():
    # The MC backend's signSGD step is Signum with momentum 0 on the per-sample squared loss.
    import torch

    from rlhf_gbpm.analysis.optimizers import Signum

    prob = ss.plrf_problem(6, alpha=1.0, beta=0.75, seed=7)
    T, lr = 200, 3e-3
    mc = ss.mc_risk(prob, ["signsgd"], [lr], T, [T], seeds=1, seed=11, chunk=T)
    # the documented sample stream: one chunk of N(0, I) rows mapped by chol^T, then the noise
    rng = np.random.default_rng(11)
    chol = np.linalg.cholesky(prob.K)
    z = (rng.standard_normal((T, 1, 6)) @ chol.T)[:, 0]
    eps = math.sqrt(prob.sigma2) * rng.standard_normal((T, 1))[:, 0]
    y = z @ prob.theta_star + eps
    theta = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    opt = Signum([theta], lr=lr, momentum=0.0)
    for t in range(T):
        opt.zero_grad()
        loss = 0.5 * (torch.as_tensor(z[t]) @ theta - float(y[t])) ** 2
        loss.backward()
        opt.step()
    np.testing.assert_allclose(mc[0, 0], prob.risk(theta.detach().numpy()), rtol=1e-10)
