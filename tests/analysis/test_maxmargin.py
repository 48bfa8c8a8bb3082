"""Tests for rlhf_gbpm.analysis._maxmargin against closed forms, brute force and cvxpy."""

import cvxpy as cp
import numpy as np
import pytest

from rlhf_gbpm.analysis._maxmargin import cosine, max_margin, min_norm_point, normalized_margin


def _qp_reference(Z, metric):
    """Independent reference: min w^T M w s.t. Z w >= 1 with cvxpy's interior-point solver."""
    w = cp.Variable(Z.shape[1])
    prob = cp.Problem(cp.Minimize(cp.quad_form(w, cp.psd_wrap(metric))), [Z @ w >= 1])
    prob.solve(solver=cp.CLARABEL, tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
    assert prob.status == "optimal"
    return w.value


def _brute_2d(Z, p):
    theta = np.linspace(0, 2 * np.pi, 400_001)
    u = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    u = u / np.linalg.norm(u, ord=p, axis=1, keepdims=True)
    return np.max(np.min(u @ Z.T, axis=1))


@pytest.fixture
def gauss():
    rng = np.random.default_rng(3)
    return rng.normal(size=(8, 12))


def test_l2_matches_slsqp_and_kkt(gauss):
    res = max_margin(gauss, "l2")
    assert res.success and res.status == 0 and res.message == "solved"
    np.testing.assert_allclose(res.w, _qp_reference(gauss, np.eye(12)), atol=1e-6)
    # KKT: w = Z^T lam, lam >= 0, complementary slackness, primal feasibility
    np.testing.assert_allclose(gauss.T @ res.dual, res.w, atol=1e-10)
    slack = gauss @ res.w - 1.0
    assert np.all(res.dual >= 0) and np.all(slack >= -1e-10)
    np.testing.assert_allclose(res.dual * slack, 0.0, atol=1e-10)
    assert res.margin == pytest.approx(1 / np.linalg.norm(res.w))


@pytest.mark.parametrize("metric_kind", ["diag", "full"])
def test_mahalanobis_matches_qp_reference(gauss, metric_kind):
    rng = np.random.default_rng(1)
    if metric_kind == "diag":
        diag = rng.uniform(0.2, 3.0, size=12)
        metric, M = diag, np.diag(diag)
    else:
        A = rng.normal(size=(12, 12))
        metric = M = A @ A.T + 0.5 * np.eye(12)
    res = max_margin(gauss, "mahalanobis", metric=metric)
    ref = _qp_reference(gauss, M)
    np.testing.assert_allclose(res.w, ref, atol=1e-6)
    np.testing.assert_allclose(np.linalg.solve(M, gauss.T @ res.dual), res.w, atol=1e-9)
    assert res.margin == pytest.approx(1 / np.sqrt(ref @ M @ ref), rel=1e-6)


def test_single_example_closed_forms():
    z = np.array([[1.0, -2.0, 3.0, 0.5]])
    assert max_margin(z, "l2").margin == pytest.approx(np.linalg.norm(z))
    np.testing.assert_allclose(max_margin(z, "l2").direction, z[0] / np.linalg.norm(z))
    lin = max_margin(z, "linf")
    assert lin.margin == pytest.approx(np.abs(z).sum())
    np.testing.assert_allclose(lin.w, np.sign(z[0]) / np.abs(z).sum())
    l1 = max_margin(z, "l1")
    assert l1.margin == pytest.approx(3.0)
    np.testing.assert_allclose(l1.w, [0, 0, 1 / 3, 0], atol=1e-12)


@pytest.mark.parametrize(("norm", "p"), [("l2", 2), ("l1", 1), ("linf", np.inf)])
def test_margin_matches_brute_force_2d(norm, p):
    Z = np.array([[1.0, 2.0], [2.0, -0.5], [1.5, 0.3]])
    res = max_margin(Z, norm)
    brute = _brute_2d(Z, p)  # a grid maximum: below the optimum, by less than the grid error
    assert brute <= res.margin + 1e-12
    assert res.margin - brute < 2e-5
    assert normalized_margin(res.w, Z, norm) == pytest.approx(res.margin, rel=1e-9)


def test_not_separable_is_a_result():
    Z = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    for norm in ("l2", "l1", "linf"):
        res = max_margin(Z, norm)
        assert not res.success and res.status == 2 and np.isnan(res.margin)
        assert "not linearly separable" in res.message


def test_min_norm_point_halfspace_projection():
    a = np.array([[3.0, 4.0]])
    x, lam, ok = min_norm_point(a, np.array([10.0]))
    assert ok
    np.testing.assert_allclose(x, 10 * a[0] / 25)
    np.testing.assert_allclose(lam, [10 / 25])
    x, lam, ok = min_norm_point(a, np.array([-1.0]))  # origin already feasible
    assert ok and np.allclose(x, 0) and np.allclose(lam, 0)


def test_normalized_margin_batch_and_cosine(gauss):
    res = max_margin(gauss, "linf")
    w = np.stack([res.w, 2 * res.w, -res.w])
    got = normalized_margin(w, gauss, "linf")
    np.testing.assert_allclose(got[:2], res.margin)
    assert got[2] < 0
    np.testing.assert_allclose(cosine(w, res.w), [1.0, 1.0, -1.0])
    assert np.isnan(normalized_margin(np.zeros(12), gauss))


def test_validation():
    Z = np.ones((3, 2))
    with pytest.raises(ValueError, match=r"norm == 'l3', must be one of"):
        max_margin(Z, "l3")
    with pytest.raises(ValueError, match="metric is required"):
        max_margin(Z, "mahalanobis")
    with pytest.raises(ValueError, match="metric must have positive entries"):
        max_margin(Z, "mahalanobis", metric=np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match=r"metric must have shape \(d,\), got \(3,\)"):
        max_margin(Z, "mahalanobis", metric=np.ones(3))
    with pytest.raises(ValueError, match=r"Z must have shape \(n, d\)"):
        max_margin(np.ones(3))


def test_normalized_margin_mahalanobis_and_l1(gauss):
    diag = np.linspace(0.5, 2.0, 12)
    res = max_margin(gauss, "mahalanobis", metric=diag)
    got = normalized_margin(res.w, gauss, "mahalanobis", metric=diag)
    assert got == pytest.approx(res.margin, rel=1e-9)
    np.testing.assert_allclose(normalized_margin(res.w, gauss, "mahalanobis",
                                                 metric=np.diag(diag)), got)
    l1 = max_margin(gauss, "l1")
    assert normalized_margin(l1.w, gauss, "l1") == pytest.approx(l1.margin, rel=1e-9)
    # each solver's own margin beats the other solvers' separators in its norm
    for norm in ("l1", "l2", "linf"):
        best = max_margin(gauss, norm)
        for other in ("l1", "l2", "linf"):
            assert normalized_margin(max_margin(gauss, other).w, gauss, norm) <= (
                best.margin * (1 + 1e-9))
