"""Tests for rlhf_gbpm.analysis.incremental_gd."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from rlhf_gbpm.analysis import incremental_gd as igd
from rlhf_gbpm.analysis._framework import load_config
from rlhf_gbpm.errors import ConfigError


def _grad(inst, i, x):
    if isinstance(inst, igd.DenseQuadratics):
        return (x - inst.c[i]) @ inst.A[i].T
    return inst.h[i] * x + inst.b[i]


def _simulate(inst, eta, orders):
    """Brute-force component-by-component run; orders has shape (K, n)."""
    x = np.broadcast_to(inst.x0, (eta.size, inst.x0.size)).astype(float).copy()
    for order in orders:
        for i in order:
            x = x - eta[:, None] * _grad(inst, i, x)
    return inst.gap(x)


@pytest.fixture(scope="module")
def default_result():
    return igd.run(igd.Config())


def test_igd_closed_form_matches_brute_force():
    eta = np.geomspace(1e-4, 1.5e-2, 7)
    for inst in (igd.identical_hessian_instance(10, 1.0, 100.0, 1.0, 7),
                 igd.nonconvex_instance(8, 50.0, 1.0), igd.rotating_instance(9, 1.0, 60.0, 1.0)):
        K = 7
        ref = _simulate(inst, eta, np.tile(np.arange(inst.n), (K, 1)))
        np.testing.assert_allclose(igd.igd_gap(inst, eta, K), ref, rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("kind", ["shared", "separable", "dense"])
def test_rr_matches_brute_force_with_same_permutations(kind):
    rng = np.random.default_rng(3)
    inst = {"shared": igd.identical_hessian_instance(10, 1.0, 100.0, 1.0, 5),
            "separable": igd.nonconvex_instance(8, 50.0, 1.0),
            "dense": igd.rotating_instance(8, 1.0, 60.0, 1.0)}[kind]
    K, runs = 5, 3
    perms = np.argsort(rng.random((runs, K, inst.n)), axis=-1)
    eta = np.geomspace(1e-3, 1e-2, 5)
    ref = np.mean([_simulate(inst, eta, perms[r]) for r in range(runs)], axis=0)
    np.testing.assert_allclose(igd.rr_gap(inst, eta, K, perms=perms), ref, rtol=1e-9)


def test_sgd_exact_moments_match_monte_carlo():
    inst = igd.nonconvex_instance(6, 20.0, 1.0)
    eta = np.array([5e-3, 2e-2])
    K = 4
    rng = np.random.default_rng(0)
    reps = 20000
    x = np.zeros((reps, eta.size))
    for _ in range(inst.n * K):
        i = rng.integers(inst.n, size=reps)
        x = x - eta * (inst.h[i] * x + inst.b[i])
    mc = inst.gap(x[..., None]).mean(axis=0)
    exact = igd.sgd_gap_exact(inst, eta, K)
    # relative standard error of a mean of squares with 2e4 draws is about 1%
    np.testing.assert_allclose(exact, mc, rtol=0.05)


def test_theory_bounds_closed_forms():
    K = np.array([1.0, 10.0, 100.0, 1000.0])
    b = igd.theory_bounds(K, n=10, mu=1.0, L=1e4, G=1.0)
    np.testing.assert_allclose(b["nc_lb"], 1e-4 * (1 + 1e4 / (20 * K)) ** 10)
    np.testing.assert_allclose(b["sc_lb"][:2], [1e4, 1e4])  # flat below sqrt(kappa) = 100
    np.testing.assert_allclose(b["sc_lb"][2], b["sc_ub"][2])  # they meet at sqrt(kappa)
    np.testing.assert_allclose(b["sgd_ub"] * 10, b["ih_ub"])


def test_default_claims_hold(default_result):
    cl = igd.claims(default_result)
    assert len(cl) == 12
    failed = [c for c in cl if not c.holds]
    assert not failed, failed
    # spec P1 calibration values (deterministic): IGD 1.11e-2 at K=20, SGD 6.8e-4
    np.testing.assert_allclose(default_result.best_a["igd"][0], 1.11e-2, rtol=0.02)
    np.testing.assert_allclose(default_result.best_a["sgd"][0], 6.8e-4, rtol=0.02)
    # spec P2: 66.5, 0.140, 3.05e-3
    np.testing.assert_allclose(default_result.best_b["igd"], [66.5, 0.140, 3.05e-3], rtol=0.02)


def test_contrasts_fail_for_the_wrong_algorithm(default_result):
    r, cfg = default_result, default_result.config
    K = np.asarray(cfg.K_list, dtype=float)
    # the 1/K law with the IGD constant does not describe with-replacement SGD
    assert np.all(K * r.best_a["sgd"] < 0.1)
    # random reshuffling shows no exponential blow-up on the nonconvex instance
    assert np.all(r.best_b["rr"] / r.pred_b < 0.03)
    # RR is not n/10 times slower than SGD on instance A
    assert np.all(r.best_a["rr"] / r.best_a["sgd"] < cfg.n / 10)


def test_rotating_instance_properties():
    inst = igd.rotating_instance(12, 2.0, 50.0, 1.5)
    np.testing.assert_allclose(inst.x_star, 0.0, atol=1e-12)
    np.testing.assert_allclose(inst.hessian, 26.0 * np.eye(2), atol=1e-12)
    grads = np.einsum("nij,nj->ni", inst.A, -inst.c)  # gradients at x* = 0
    np.testing.assert_allclose(np.linalg.norm(grads, axis=1), 1.5)


def test_large_epoch_instance_a_stops_biting():
    # with K >= kappa the middle curvature caps at L and IGD is no longer n/10 times slower
    cfg = igd.Config(n=20, L=50.0, K_list=(50,), n_eta=200)
    inst = igd.identical_hessian_instance(cfg.n, cfg.mu, cfg.L, cfg.G, 400)
    eta = cfg.eta_grid_a
    ratio = igd.igd_gap(inst, eta, 400).min() / igd.sgd_gap_exact(inst, eta, 400).min()
    assert ratio < cfg.n / 10


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"n": 7}, ValueError, "n == 7, must be even"),
        ({"mu": -1.0}, ValueError, "mu == -1.0, must be > 0.0"),
        ({"L": 0.5}, ValueError, "L == 0.5, must be > mu"),
        ({"K_list": (20, 5000)}, ValueError, "must be <= kappa"),
        ({"K_list_b": (10,)}, ValueError, "admissible"),
        ({"rr_runs": 0}, ValueError, "rr_runs == 0, must be >= 1"),
        ({"n_eta": 2.5}, TypeError, "n_eta must be an instance of"),
        ({"K_list": ()}, TypeError, "non-empty tuple"),
    ],
)
def test_config_validation(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        igd.Config(**kwargs)


def test_load_config_names_bad_key():
    with pytest.raises(ConfigError, match="unknown config key 'kappa'"):
        load_config(igd.Config, {"kappa": 3})


def test_cli_smoke(tmp_path):
    toml = tmp_path / "tiny.toml"
    toml.write_text(
        "n = 20\nL = 100.0\nK_list = [5, 10, 20, 40]\nn_eta = 60\nn_b = 20\nL_b = 200.0\n"
        "K_list_b = [10, 20]\nK_list_large_b = [800, 1600]\nrr_runs = 3\nn_c = 10\n"
        "L_c = 100.0\nK_list_c = [2, 4]\n"
    )
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "rlhf_gbpm.experiments.cli", "study", "incremental_gd",
         "--config", str(toml), "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
    assert (out / "incremental_gd_headline.png").is_file()
    assert (out / "incremental_gd_claims.csv").read_text().startswith("name,expected")
