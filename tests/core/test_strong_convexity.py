"""Tests for rlhf_gbpm.strong_convexity."""

import warnings

import numpy as np
import pytest
import torch

import rlhf_gbpm as rg
from rlhf_gbpm.custom_regularizers import TorchRegularizer
from rlhf_gbpm.errors import GBPMWarning, NotStronglyConvexError
from rlhf_gbpm.strong_convexity import check_regularizer, estimate_beta

# spec gbpm.md section 2.1: beta per regularizer (K-dependent for l2 and Tsallis q > 1)
SPEC_BETA = {
    "kl": lambda K: 1.0,
    "shannon": lambda K: 1.0,
    "chi2_half": lambda K: 1.0,
    "chi2": lambda K: 0.5,
    "l2": lambda K: float(K),
    "tsallis_half": lambda K: 2.0,
    "kl_plus_chi2": lambda K: 1.0 / 3.0,
}


@pytest.mark.parametrize("name", list(SPEC_BETA))
@pytest.mark.parametrize("K", [4, 7])
def test_estimate_brackets_spec_beta(name, K):
    reference = np.random.default_rng(K).dirichlet(np.full(K, 4.0))
    reg = (rg.get_regularizer(name) if name in ("shannon", "tsallis_half")
           else rg.get_regularizer(name, reference=reference))
    est = estimate_beta(reg, K)
    spec = SPEC_BETA[name](K)
    # sampled ratios give a rigorous lower bound; the Hessian bound a rigorous upper bound
    assert est.beta <= spec * (1 + 1e-6)
    assert est.beta_upper == pytest.approx(spec, rel=1e-6)
    # and the lower bound is not vacuous: within the known gap (Tsallis-1/2: sqrt(2) vs 2;
    # odd K: balanced splits are not exact)
    assert est.beta >= 0.6 * spec
    check_regularizer(reg, K)  # no exception, no warning beyond the declared beta


def test_rejects_non_strongly_convex():
    linear = TorchRegularizer(fn=lambda p: torch.sum(p * torch.arange(4.0)), label="linear")
    with pytest.raises(NotStronglyConvexError, match="'linear' is not strongly convex"):
        check_regularizer(linear, 4)
    flat = TorchRegularizer(fn=lambda p: torch.sum(torch.clamp(p - 0.5, min=0) ** 2),
                            label="flat")
    with pytest.raises(NotStronglyConvexError, match="'flat'"):
        check_regularizer(flat, 4)
    concave = TorchRegularizer(fn=lambda p: -torch.sum(p**2), label="concave")
    with pytest.raises(NotStronglyConvexError, match="'concave' is not convex"):
        check_regularizer(concave, 4)


def test_wrong_declared_beta_warns():
    # 0.5 ||p||^2 has beta == K; declaring 1.0 contradicts the estimate
    reg = TorchRegularizer(fn=lambda p: 0.5 * torch.sum(p**2), declared_beta=1.0, label="l2u")
    with pytest.warns(GBPMWarning, match="declares beta == 1"):
        check_regularizer(reg, 6)
    ok = TorchRegularizer(fn=lambda p: 0.5 * torch.sum(p**2), declared_beta=6.0, label="l2ok")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = check_regularizer(ok, 6)
    assert est.beta == pytest.approx(6.0, rel=1e-3)


# Tsallis-q, psi = (sum p^q - 1)/(q - 1), Hessian q p^{q-2}: by Cauchy-Schwarz (spec 2.1) beta is
# max_p sum_i p_i^{2-q} / q, i.e. 1/q for q < 1 (at a vertex) and K^{q-1}/q for q > 1 (uniform)
@pytest.mark.parametrize("q", [1 / 3, 0.8, 1.5, 2.0])
@pytest.mark.parametrize("K", [4, 7])
def test_estimate_brackets_tsallis_q_beta(q, K):
    reg = rg.get_regularizer("tsallis", q=q)
    beta = 1.0 / q if q < 1 else K ** (q - 1) / q
    est = estimate_beta(reg, K)
    assert est.beta <= beta * (1 + 1e-6)
    assert est.beta_upper == pytest.approx(beta, rel=1e-6)
    assert est.beta >= 0.5 * beta  # q < 1: the vertex worst case is approached, not reached
    assert reg.beta(K) == pytest.approx(beta, rel=1e-12)
    check_regularizer(reg, K)
