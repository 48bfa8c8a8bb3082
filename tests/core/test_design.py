"""Tests for rlhf_gbpm.design (E-optimal design, C_min, ETC exploration length)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from rlhf_gbpm.design import (
    c_min,
    e_optimal_design,
    etc_exploration_length,
    etc_exploration_terms,
)
from rlhf_gbpm.errors import GBPMWarning


def _unit(rng, shape):
    v = rng.standard_normal(shape)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


# ----------------------------------------------------------------------------- c_min


def test_c_min_closed_forms():
    # arms (1, 0) and (0.6, 0.8), equal weights: M = [[.68, .24], [.24, .32]], eigenvalues .8, .2
    feats = np.array([[1.0, 0.0], [0.6, 0.8]])
    assert_allclose(c_min(feats, [0.5, 0.5]), 0.2, atol=1e-14)
    # orthonormal basis under the uniform policy: M = I/d
    basis = np.eye(4)
    assert_allclose(c_min(basis, np.full(4, 0.25)), 0.25, atol=1e-14)
    # batched: (3, K, d) tables against one policy, and per-table policies
    rng = np.random.default_rng(0)
    stack = _unit(rng, (3, 6, 3))
    pol = rng.dirichlet(np.ones(6), size=3)
    want = [np.linalg.eigvalsh(f.T @ np.diag(p) @ f)[0] for f, p in zip(stack, pol)]
    assert_allclose(c_min(stack, pol), want, atol=1e-14)
    assert c_min(stack, np.full(6, 1 / 6)).shape == (3,)


def test_c_min_bad_input():
    with pytest.raises(ValueError, match="policy must lie on the probability simplex"):
        c_min(np.eye(3), [0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="policy must have shape"):
        c_min(np.eye(3), [0.5, 0.5])


# ----------------------------------------------------------------------------- E-optimal design


def test_e_optimal_design_beats_uniform_and_is_certified():
    rng = np.random.default_rng(1)
    feats = _unit(rng, (3, 20, 5))
    res = e_optimal_design(feats)
    assert res.policy.shape == (3, 20) and res.success.all()
    assert_allclose(res.policy.sum(-1), 1.0, atol=1e-12)
    assert (res.policy >= 0).all()
    assert_allclose(res.c_min, c_min(feats, res.policy), atol=1e-12)
    uniform = c_min(feats, np.full(20, 1 / 20))
    assert (res.c_min > uniform + 1e-3).all()
    assert (res.c_min <= 1 / 5 + 1e-12).all()  # Appendix test 8: C_min <= 1/d
    # weak duality with the returned Z (PSD, trace 1) bounds every policy by c_min + gap
    z = res.dual
    assert_allclose(np.trace(z, axis1=-2, axis2=-1), 1.0, atol=1e-12)
    assert (np.linalg.eigvalsh(z) >= -1e-12).all()
    bound = np.einsum("bkp,bpq,bkq->bk", feats, z, feats).max(-1)
    assert_allclose(res.gap, bound - res.c_min, atol=1e-12)
    assert (res.gap <= 1e-6).all()
    # and random policies never beat the design
    rand = c_min(feats[:, None], rng.dirichlet(np.ones(20), size=(3, 200)))
    assert (rand <= res.c_min[:, None] + 1e-9).all()


def test_e_optimal_design_brute_force_small():
    # K = 3 arms in d = 2: grid over the simplex
    feats = np.array([[1.0, 0.0], [0.8, 0.6], [-0.28, 0.96]])
    res = e_optimal_design(feats)
    g = np.linspace(0, 1, 401)
    a, b = np.meshgrid(g, g, indexing="ij")
    mask = a + b <= 1
    grid = np.stack([a[mask], b[mask], 1 - a[mask] - b[mask]], axis=-1)
    best = c_min(feats, np.clip(grid, 0, None)).max()
    assert best <= res.c_min + 1e-9
    assert res.c_min - best <= 2e-3  # grid step 1/400
    assert res.policy.shape == (3,) and res.c_min.shape == ()


def test_e_optimal_design_closed_form_basis_plus_short_arms():
    # an orthonormal basis plus shorter arms: the design is uniform on the basis, C_min = 1/d
    rng = np.random.default_rng(2)
    d = 4
    feats = np.concatenate([np.eye(d), 0.5 * _unit(rng, (6, d))])
    res = e_optimal_design(feats)
    assert_allclose(res.c_min, 1 / d, atol=1e-7)
    assert_allclose(res.policy[:d], 1 / d, atol=1e-6)
    assert_allclose(res.policy[d:], 0.0, atol=1e-6)


def test_e_optimal_design_pooled_contexts():
    rng = np.random.default_rng(3)
    feats = _unit(rng, (3, 4, 3))  # C = 3 contexts of K = 4 arms in d = 3
    per = e_optimal_design(feats)
    pooled = e_optimal_design(feats, pooled=True)
    assert pooled.policy.shape == (3, 4) and pooled.c_min.shape == ()
    assert_allclose(pooled.policy.sum(-1), 1.0, atol=1e-12)
    # the per-context designs are feasible for the pooled problem
    avg = np.mean(np.einsum("ckp,ck,ckq->cpq", feats, per.policy, feats), axis=0)
    assert pooled.c_min >= np.linalg.eigvalsh(avg)[0] - 1e-7
    assert pooled.gap <= 1e-6
    # weighted contexts: all weight on context 0 reproduces its own design value
    w = e_optimal_design(feats, pooled=True, context_weights=[1.0, 0.0, 0.0])
    assert_allclose(w.c_min, per.c_min[0], atol=1e-6)


def test_e_optimal_design_scs_and_bad_input():
    rng = np.random.default_rng(4)
    feats = _unit(rng, (8, 3))
    res = e_optimal_design(feats, solver="SCS")
    ref = e_optimal_design(feats, solver="CLARABEL")
    assert_allclose(res.c_min, ref.c_min, atol=1e-4)
    with pytest.raises(ValueError, match="solver == 'NOPE' is not installed"):
        e_optimal_design(feats, solver="NOPE")
    with pytest.raises(ValueError, match="context_weights is only used with pooled=True"):
        e_optimal_design(feats, context_weights=[1.0])
    with pytest.raises(ValueError, match="features must have shape"):
        e_optimal_design(np.ones(3))


# ----------------------------------------------------------------------------- ETC length


def test_etc_terms_closed_form():
    T, d, r, cm, kap, beta = 10_000, 5, 1, 0.15, 0.1, 1.0
    terms = etc_exploration_terms(T, eta=[0.01, 1.0], beta=beta, rank=r, d=d, c_min=cm,
                                  kappa=kap)
    L = math.log(d * T)  # delta = 1/T
    assert_allclose(terms["eta"], [np.sqrt(T * e * beta * r * L) / (kap * cm**2)
                                   for e in (0.01, 1.0)])
    assert_allclose(terms["free"], (T**2 * r * L / (kap**2 * cm**4)) ** (1 / 3))
    assert_allclose(terms["lower"], d * r * L / (cm**4 * kap**2))
    assert_allclose(terms["upper"], T - 1)


def test_etc_length_tunings_and_clipping():
    # constants chosen so that the rules fall inside (1, T - 1)
    kw = dict(beta=1.0, rank=1, d=5, c_min=1.0, kappa=1.0, c_eta=0.1, c_free=0.1, c_lower=0.0)
    T = 10_000
    L = math.log(5 * T)
    t_eta = 0.1 * math.sqrt(T * 0.5 * L)
    t_free = 0.1 * (T**2 * L) ** (1 / 3)
    assert etc_exploration_length(T, eta=0.5, tuning="eta", **kw) == math.ceil(t_eta)
    assert etc_exploration_length(T, eta=0.5, tuning="free", **kw) == math.ceil(t_free)
    assert etc_exploration_length(T, eta=0.5, **kw) == math.ceil(min(t_eta, t_free))
    # eta = inf: the eta-dependent rule is infinite, auto falls back to the eta-free one
    assert etc_exploration_length(T, eta=math.inf, **kw) == math.ceil(t_free)
    assert etc_exploration_length(T, eta=math.inf, tuning="eta", **kw) == T - 1
    out = etc_exploration_length(T, eta=np.array([0.5, 1e6]), **kw)
    assert out.dtype == np.int64 and list(out) == [math.ceil(t_eta), math.ceil(t_free)]
    # the lower clip: the estimator's requirement d r L / (C_min^4 kappa^2)
    kw_low = dict(kw, c_lower=1.0)
    assert etc_exploration_length(T, eta=0.5, **kw_low) == math.ceil(5 * L)
    # a requirement beyond the horizon clips to T - 1 with a warning
    with pytest.warns(GBPMWarning, match="exceeds T - 1"):
        assert etc_exploration_length(T, eta=0.5, **dict(kw_low, c_min=0.05)) == T - 1


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"T": 1}, ValueError, "T == 1, must be >= 2"),
        ({"eta": 0.0}, ValueError, "eta == 0.0, must be > 0"),
        ({"c_min": -0.1}, ValueError, "c_min == -0.1, must be > 0"),
        ({"kappa": 0.0}, ValueError, "kappa == 0.0, must be > 0"),
        ({"delta": 1.5}, ValueError, "delta == 1.5, must be < 1.0"),
        ({"tuning": "best"}, ValueError, "tuning == 'best', must be one of"),
        ({"rank": 0}, ValueError, "rank == 0, must be >= 1"),
        ({"c_eta": -1.0}, ValueError, "c_eta == -1.0, must be >= 0.0"),
        ({"T": 10.5}, TypeError, "T must be an instance of Integral"),
    ],
)
def test_etc_length_bad_input(kwargs, exc, match):
    base = dict(T=100, eta=1.0, beta=1.0, rank=1, d=3, c_min=0.2, kappa=0.2, c_lower=0.0)
    base.update(kwargs)
    T = base.pop("T")
    with pytest.raises(exc, match=match):
        etc_exploration_length(T, **base)
