"""Tests for rlhf_gbpm.analysis._pruning_scores."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rlhf_gbpm.analysis import _pruning_scores as ps


def _windows_ref(p, J, fn):
    E = p.shape[0]
    return np.mean([fn(p[k:k + J]) for k in range(E - J + 1)], axis=0)


def test_dual_and_dynunc_match_window_loops():
    rng = np.random.default_rng(0)
    p = rng.random((12, 7))
    ref_dual = _windows_ref(p[:8], 3, lambda w: w.std(axis=0, ddof=1) * (1 - w.mean(axis=0)))
    np.testing.assert_allclose(ps.dual_score(p, 8, 3), ref_dual, rtol=1e-12)
    ref_dyn = _windows_ref(p, 4, lambda w: w.std(axis=0, ddof=1))
    np.testing.assert_allclose(ps.dynunc_score(p, 4), ref_dyn, rtol=1e-12)


def test_dual_ranks_uncertain_hard_above_learned_and_consistently_wrong():
    E = 8
    learned = np.full(E, 0.99)
    wrong = np.full(E, 0.02)  # consistently wrong: s ~ 0
    fluct = np.array([0.1, 0.5, 0.2, 0.6, 0.3, 0.5, 0.2, 0.4])
    easy_fluct = 0.9 + 0.5 * (fluct - 0.35) / 5  # same shape, mean near 0.9
    s = ps.dual_score(np.stack([learned, wrong, fluct, easy_fluct], axis=1), E, 4)
    assert s[2] == s.max()
    assert s[0] < 1e-12 and s[1] < 1e-12
    assert s[3] < s[2]


def test_beta_parameters_formulas():
    mu_D, C, c_D = 0.3, 15.0, 4.0
    r = np.array([0.0, 0.5, 0.9, 0.99])
    a, b = ps.beta_parameters(mu_D, r, C=C, c_D=c_D)
    np.testing.assert_allclose(b, C * (1 - mu_D) * (1 - r**c_D))
    np.testing.assert_allclose(a + b, C + 1)
    mean = a / (a + b)
    assert np.all(np.diff(mean) > 0)
    np.testing.assert_allclose(mean[0], 1 - C * (1 - mu_D) / (C + 1))
    with pytest.raises(ValueError, match="ratio must lie in"):
        ps.beta_parameters(mu_D, 1.0)


def test_beta_sampling_probs_follow_beta_pdf():
    rng = np.random.default_rng(1)
    dual = rng.random(50) + 0.1
    means = rng.uniform(0.05, 0.95, 50)
    r = 0.7
    p = ps.beta_sampling_probs(dual, means, r, weight="pdf")
    top = np.argsort(-dual)[:10]
    a, b = ps.beta_parameters(float(means[top].mean()), r)

    def pdf(x):  # Beta density from Gamma functions (independent of scipy.stats)
        return x ** (a - 1) * (1 - x) ** (b - 1) * math.gamma(a + b) / (
            math.gamma(a) * math.gamma(b))

    ref = np.array([pdf(x) for x in means]) + 1e-12
    np.testing.assert_allclose(p, ref / ref.sum(), rtol=1e-8)
    q = ps.beta_sampling_probs(dual, means, r, weight="pdf*score")
    ref2 = np.array([pdf(x) for x in means]) * dual + 1e-12
    np.testing.assert_allclose(q, ref2 / ref2.sum(), rtol=1e-8)


def test_beta_sample_moves_to_easy_examples_at_high_ratio():
    rng = np.random.default_rng(2)
    means = rng.random(2000)
    dual = np.where(means < 0.3, 1.0, 0.2) * rng.random(2000)  # hard ones score high
    low = ps.beta_sample(dual, means, 0.1, 200, seed=0)
    high = ps.beta_sample(dual, means, 0.95, 200, seed=0)
    assert low.size == high.size == 200 and np.unique(high).size == 200
    assert means[high].mean() > means[low].mean() + 0.2


def test_el2n_entropy_true_class():
    probs = np.array([[1.0, 0.0, 0.0], [0.2, 0.5, 0.3], [1 / 3, 1 / 3, 1 / 3]])
    y = np.array([0, 2, 1])
    np.testing.assert_allclose(ps.el2n_score(probs, y),
                               [0.0, math.sqrt(0.04 + 0.25 + 0.49), math.sqrt(2 / 9 + 4 / 9)])
    np.testing.assert_allclose(ps.entropy_score(probs)[[0, 2]], [0.0, math.log(3)])
    np.testing.assert_allclose(ps.true_class_probs(probs, y), [1.0, 0.3, 1 / 3])
    with pytest.raises(ValueError, match="labels must lie in"):
        ps.el2n_score(probs, np.array([0, 3, 1]))


def test_forgetting_counts_and_never_learned():
    correct = np.array([[1, 0, 1, 1],
                        [0, 0, 1, 1],
                        [1, 0, 0, 1],
                        [0, 0, 1, 1]], dtype=bool)
    # column 0: 1->0, 0->1, 1->0 => 2 events; column 1 never learned => max + 1 = 3
    np.testing.assert_allclose(ps.forgetting_score(correct), [2, 3, 1, 0])


def test_aum_negated_margin():
    probs = np.array([[[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]],
                      [[0.5, 0.4, 0.1], [0.2, 0.2, 0.6]]])
    y = np.array([0, 1])
    # example 0 margins 0.5, 0.1; example 1 margins 0.3, -0.4
    np.testing.assert_allclose(ps.aum_score(probs, y), [-0.3, 0.05])


def test_topk_random_select():
    s = np.array([0.1, 0.9, 0.5, 0.9, 0.0])
    np.testing.assert_array_equal(ps.topk_select(s, 3), [1, 2, 3])
    a = ps.random_select(100, 10, seed=3)
    np.testing.assert_array_equal(a, ps.random_select(100, 10, seed=3))
    assert np.unique(a).size == 10 and a.max() < 100
    with pytest.raises(ValueError, match="n_keep == 11, must be <= 5"):
        ps.topk_select(s, 11)


def test_bin_allocate_redistributes():
    np.testing.assert_array_equal(ps._bin_allocate(np.array([1, 10, 10]), 9), [1, 4, 4])
    np.testing.assert_array_equal(ps._bin_allocate(np.array([0, 3, 10]), 10), [0, 3, 7])


def test_ccs_drops_hardest_and_stratifies():
    s = np.linspace(0.0, 1.0, 1000)  # difficulty, uniform
    kept = ps.ccs_select(s, 100, cutoff=0.2, bins=10, seed=0)
    assert kept.size == 100 and np.unique(kept).size == 100
    assert s[kept].max() <= s[np.argsort(-s)[200]]  # the 200 hardest are gone
    counts = np.histogram(s[kept], bins=np.linspace(0, s[np.argsort(-s)[200]], 11))[0]
    assert counts.max() - counts.min() <= 1


def test_predict_probs_any_torch_model():
    import torch

    torch.manual_seed(0)  # test-local seeding of a throwaway model
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    x = torch.randn(10, 4)
    p = ps.predict_probs(model, x, batch_size=3)
    with torch.no_grad():
        ref = torch.softmax(model(x).double(), dim=-1).numpy()
    np.testing.assert_allclose(p, ref, rtol=1e-6)
    assert model.training


def test_score_validation():
    p = np.random.default_rng(0).random((5, 3))
    with pytest.raises(ValueError, match="T == 6, must be <= 5"):
        ps.dual_score(p, 6, 2)
    with pytest.raises(ValueError, match="J == 4, must be <= 3"):
        ps.dual_score(p, 3, 4)
    with pytest.raises(ValueError, match="weight == 'x'"):
        ps.beta_sampling_probs(np.ones(3), np.full(3, 0.5), 0.5, weight="x")
