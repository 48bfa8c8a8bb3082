"""Tests for rlhf_gbpm.equilibrium: solve_sne, best_response, j_eta, dual_gap."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
from scipy import special

from rlhf_gbpm import (
    bradley_terry_instance,
    cyclic_instance,
    random_instance,
)
from rlhf_gbpm.equilibrium import (
    SNE_METHODS,
    SNEResult,
    best_response,
    dual_gap,
    j_eta,
    solve_sne,
)
from rlhf_gbpm.regularizers import SeparableRegularizer, get_regularizer

ETAS = np.array([1e-2, 1.0, 1e2, 1e4])
REGS = [
    ("kl", {}),
    ("shannon", {}),
    ("l2", {}),
    ("chi2_half", {}),
    ("chi2", {}),
    ("tsallis_half", {}),
    ("tsallis", {"q": 1.5}),
    ("kl_plus_chi2", {}),
]
REG_IDS = [n + "".join(f"-{k}{v}" for k, v in kw.items()) for n, kw in REGS]


def make_reg(name, kw, K, seed=0):
    if name in ("shannon", "tsallis", "tsallis_half"):
        return get_regularizer(name, **kw)
    return get_regularizer(name, reference=np.random.default_rng(seed).dirichlet(np.ones(K)),
                           **kw)


def payoffs(K, n_random=2):
    """Random low-rank instances plus the cyclic one, stacked: (n, K, K)."""
    mats = [random_instance(d=5, K=K, S=5.0, seed=s).payoff() for s in range(n_random)]
    if K >= 3:
        mats.append(cyclic_instance(K).payoff())
    return np.stack(mats)


def random_skew(K, rng, scale=0.5):
    m = rng.uniform(-scale, scale, size=(K, K))
    return np.triu(m, 1) - np.triu(m, 1).T


# ---------------------------------------------------------------------------------------
# acceptance: dual gap on the full grid (batched: one call per regularizer and K)
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "kw"), REGS, ids=REG_IDS)
@pytest.mark.parametrize("K", [2, 20, 200])
def test_dual_gap_certificate_on_grid(name, kw, K):
    A = payoffs(K, n_random=2 if K < 200 else 1)[:, None]  # (n, 1, K, K) x eta (4,)
    reg = make_reg(name, kw, K)
    res = solve_sne(A, reg, ETAS)
    assert res.policy.shape == (A.shape[0], 4, K)
    assert np.all(res.success), res.message
    assert np.all(res.status == 0)
    assert np.all(res.dual_gap <= 1e-9), res.dual_gap.max()
    assert np.all(res.residual <= 1e-9), res.residual.max()
    np.testing.assert_allclose(res.policy.sum(-1), 1.0, atol=1e-12)
    # the reported certificate equals a fresh evaluation through the public function
    np.testing.assert_allclose(res.dual_gap, dual_gap(res.policy, A, reg, ETAS), atol=1e-15)


# ---------------------------------------------------------------------------------------
# acceptance: agreement with the cvxpy convex program (independent reference)
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "kw"), REGS, ids=REG_IDS)
@pytest.mark.parametrize("K", [2, 20])
def test_agrees_with_cvxpy_program(name, kw, K):
    A = payoffs(K, n_random=1)[:, None]
    reg = make_reg(name, kw, K, seed=K)
    ours = solve_sne(A, reg, ETAS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # cvxpy: "solution may be inaccurate"
        ref = solve_sne(A, reg, ETAS, method="cvxpy")
    assert np.all(ref.status == 0)
    l1 = np.abs(ours.policy - ref.policy).sum(-1)
    accurate = (ref.dual_gap <= 1e-11) & (ref.eta <= 1e2)
    # where the reference is accurate the two policies agree; everywhere our certificate is
    # at least as good as the reference's (the large-eta programs are badly scaled)
    assert np.all(l1[accurate] <= 1e-6), l1[accurate].max()
    assert np.mean(accurate[ref.eta <= 1e2]) >= 0.75
    assert np.all(ours.dual_gap <= np.maximum(ref.dual_gap, 1e-13))


def test_agrees_with_cvxpy_large_k():
    A = payoffs(200, n_random=1)[:1]
    for name in ("kl", "l2"):
        reg = make_reg(name, {}, 200, seed=3)
        ours = solve_sne(A, reg, 1.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            ref = solve_sne(A, reg, 1.0, method="cvxpy")
        assert np.abs(ours.policy - ref.policy).sum() <= 1e-6
        assert ours.dual_gap[0] <= max(ref.dual_gap[0], 1e-13)


@pytest.mark.parametrize(("name", "kw"),
                         [("chi2_half", {}), ("chi2", {}), ("tsallis_half", {}),
                          ("tsallis", {"q": 1.5}), ("kl_plus_chi2", {})])
def test_agrees_with_cvxpy_large_k_other_regularizers(name, kw):
    """K = 200 for the remaining built-ins (KL and l2 above), eta = 1, one random game."""
    A = payoffs(200, n_random=1)[:1]
    reg = make_reg(name, kw, 200, seed=3)
    ours = solve_sne(A, reg, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref = solve_sne(A, reg, 1.0, method="cvxpy")
    assert ref.status[0] == 0
    assert np.abs(ours.policy - ref.policy).sum() <= 1e-6
    assert ours.dual_gap[0] <= max(ref.dual_gap[0], 1e-13)


# ---------------------------------------------------------------------------------------
# structure of the equilibria
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["kl", "l2", "chi2_half", "tsallis_half"])
def test_bradley_terry_concentrates_on_best_arm(name):
    inst = bradley_terry_instance(K=8, seed=4)
    A = inst.payoff()
    u = inst.feature_map.features(0)[:, 1]  # latent rewards (scaled)
    best = int(np.argmax(u))
    etas = np.array([0.1, 1.0, 10.0, 100.0, 1e3, 1e4])
    res = solve_sne(A, name, etas)
    assert np.all(res.success)
    mass = res.policy[:, best]
    # non-decreasing in eta, strictly until the sparse regularizers reach the vertex
    assert np.all(np.diff(mass) >= -1e-12), mass
    assert np.all(np.diff(mass)[mass[:-1] < 1 - 1e-12] > 0), mass
    assert mass[-1] >= 0.99
    assert np.argmax(res.policy[-1]) == best
    lp = solve_sne(A, name, np.inf)
    assert lp.policy[best] == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("name", ["shannon", "l2", "tsallis_half", "tsallis"])
def test_cyclic_sne_is_fully_mixed(name):
    K = 7
    A = cyclic_instance(K).payoff()
    res = solve_sne(A, name, np.array([1e-2, 1.0, 1e2, 1e4, np.inf]))
    assert np.all(res.success)
    # the circulant game is symmetric under rotation: its unique SNE is uniform
    np.testing.assert_allclose(res.policy, 1.0 / K, atol=1e-9)


def test_kl_sne_fully_mixed_on_cyclic_with_reference():
    K = 5
    A = cyclic_instance(K).payoff()
    rho = np.random.default_rng(1).dirichlet(np.ones(K))
    res = solve_sne(A, "kl", [0.1, 10.0, 1e3], reference=rho)
    assert np.all(res.policy > 0)
    assert np.all(res.dual_gap <= 1e-9)


def test_density_ratio_bounds_appendix_6():
    """KL SNE: max p/rho <= e^eta; 1/2 chi^2 SNE: max p/rho <= 1 + eta."""
    rng = np.random.default_rng(7)
    A = payoffs(12, n_random=6)[:, None]
    etas = np.array([0.1, 0.5, 1.0, 3.0, 10.0])
    rho = rng.dirichlet(np.ones(12), size=(A.shape[0], 1))
    kl = solve_sne(A, "kl", etas, reference=rho)
    ratio = np.max(kl.policy / rho, axis=-1)
    assert np.all(ratio <= np.exp(etas) * (1 + 1e-12))
    chi = solve_sne(A, "chi2_half", etas, reference=rho)
    ratio = np.max(chi.policy / rho, axis=-1)
    assert np.all(ratio <= 1.0 + etas + 1e-12)
    assert np.all(ratio >= 1.0 - 1e-12)  # some action always gets at least its reference mass


def test_unregularized_lp():
    A = payoffs(15, n_random=4)
    res = solve_sne(A, "kl", np.inf)
    assert res.scores is None
    assert np.all(res.success)
    # value of a symmetric zero-sum game is 0: the LP policy guarantees min_j (A^T p)_j >= 0
    assert np.all(res.dual_gap <= 1e-9)
    np.testing.assert_allclose(res.dual_gap, np.max(np.einsum("bij,bj->bi", A, res.policy), -1),
                               atol=1e-15)
    # large eta approaches the unregularized game
    big = solve_sne(A, "l2", 1e6)
    assert np.all(dual_gap(big.policy, A, "l2", np.inf) <= 1e-5)


def test_mixed_finite_and_infinite_eta():
    A = payoffs(6, n_random=1)[0]
    res = solve_sne(A, "chi2", np.array([1.0, np.inf, 10.0]))
    assert np.all(res.success)
    single = solve_sne(A, "chi2", 10.0)
    np.testing.assert_allclose(res.policy[2], single.policy, atol=1e-12)
    assert np.isnan(res.scores[1]).all()


# ---------------------------------------------------------------------------------------
# batching, references, warm starts, user regularizers
# ---------------------------------------------------------------------------------------


def test_batched_reference_matches_individual_solves():
    K = 9
    A = payoffs(K, n_random=3)
    refs = np.random.default_rng(2).dirichlet(np.ones(K), size=A.shape[0])
    res = solve_sne(A, "kl_plus_chi2", 5.0, reference=refs)
    for b in range(A.shape[0]):
        one = solve_sne(A[b], get_regularizer("kl_plus_chi2", reference=refs[b]), 5.0)
        np.testing.assert_allclose(res.policy[b], one.policy, atol=1e-12)


@pytest.mark.parametrize("name", ["kl", "chi2", "tsallis_half", "kl_plus_chi2"])
def test_warm_start_needs_few_newton_steps(name):
    rng = np.random.default_rng(5)
    A = payoffs(20, n_random=4)
    first = solve_sne(A, name, 50.0)
    A2 = A + 1e-3 * np.stack([random_skew(20, rng) for _ in range(A.shape[0])])
    cold = solve_sne(A2, name, 50.0)
    warm = solve_sne(A2, name, 50.0, warm_start=first)
    warm_policy = solve_sne(A2, name, 50.0, warm_start=first.policy)
    assert np.all(warm.success) and np.all(warm_policy.success)
    np.testing.assert_allclose(warm.policy, cold.policy, atol=1e-9)
    assert np.all(warm.nit <= 3), warm.nit
    assert np.all(warm_policy.nit <= 3), warm_policy.nit
    assert warm.nit.sum() < cold.nit.sum()


def test_warm_start_l2_and_rescaled_eta():
    """Piecewise-linear l2: warm starts stay exact (more steps where the support changes)."""
    rng = np.random.default_rng(6)
    A = payoffs(20, n_random=4)
    first = solve_sne(A, "l2", 50.0)
    A2 = A + 1e-4 * np.stack([random_skew(20, rng) for _ in range(A.shape[0])])
    warm = solve_sne(A2, "l2", 50.0, warm_start=first)
    cold = solve_sne(A2, "l2", 50.0)
    np.testing.assert_allclose(warm.policy, cold.policy, atol=1e-9)
    assert np.all(warm.nit <= 3), warm.nit
    # a result solved at another eta is rescaled and still converges to the new SNE
    other = solve_sne(A2, "l2", 60.0, warm_start=first)
    np.testing.assert_allclose(other.policy, solve_sne(A2, "l2", 60.0).policy, atol=1e-9)


class UserKL(SeparableRegularizer):
    name = "user_kl"

    def f(self, p, rho):
        return special.rel_entr(p, rho)

    def f_prime(self, p, rho):
        with np.errstate(divide="ignore"):
            return np.log(p / rho) + 1.0


def test_user_regularizer_sne_matches_builtin():
    K = 10
    A = payoffs(K, n_random=2)[:, None]
    rho = np.random.default_rng(9).dirichlet(np.ones(K))
    etas = np.array([0.1, 10.0, 1e3])
    ours = solve_sne(A, UserKL(reference=rho), etas)
    ref = solve_sne(A, "kl", etas, reference=rho)
    assert np.all(ours.success)
    np.testing.assert_allclose(ours.policy, ref.policy, atol=1e-9)
    assert np.all(ours.dual_gap <= 1e-9)


class Burg(SeparableRegularizer):
    """psi = -sum log p: no closed-form inverse given, so the generic route is exercised."""

    name = "burg"

    def f(self, p, rho):
        return -np.log(p)

    def f_prime(self, p, rho):
        return -1.0 / p


def test_user_regularizer_generic_route_satisfies_kkt():
    """SNE optimality: eta (A p)_i - f'(p_i) is the same for every action (p interior)."""
    A = payoffs(8, n_random=1)[:, None]
    etas = np.array([0.1, 10.0, 1e3])
    res = solve_sne(A, Burg(), etas)
    assert np.all(res.success)
    slack = etas[:, None] * np.einsum("...ij,...j->...i", A, res.policy) + 1.0 / res.policy
    spread = slack.max(-1) - slack.min(-1)
    assert np.all(spread <= 1e-8 * np.abs(slack).max(-1)), spread.max()
    assert Burg().beta(8) == pytest.approx(1.0, rel=1e-6)  # max_p sum p_i^2 = 1


def test_best_response_eta_broadcast_and_infinite():
    y = np.array([[0.2, -0.1, 0.2], [0.0, 0.3, -0.3]])
    q = best_response(y, "l2", np.array([np.inf, 1.0]))
    np.testing.assert_allclose(q[0], [0.5, 0.0, 0.5])
    np.testing.assert_allclose(q[1], get_regularizer("l2").best_response(y[1], 1.0))
    q = best_response(y[0], "kl", np.array([1.0, 2.0]))
    assert q.shape == (2, 3)


def test_j_eta_value_and_inf():
    A = payoffs(5, n_random=1)[0]
    p, q = np.full(5, 0.2), np.eye(5)[1]
    reg = get_regularizer("kl")
    val = j_eta(p, q, A, reg, 2.0)
    assert val == pytest.approx(0.5 + p @ A @ q - reg.value(p) / 2 + reg.value(q) / 2)
    assert j_eta(p, q, A, reg, np.inf) == pytest.approx(0.5 + p @ A @ q)


# ---------------------------------------------------------------------------------------
# result object, callback, iteration limits
# ---------------------------------------------------------------------------------------


def test_result_fields_and_callback_stop():
    A = payoffs(20, n_random=2)
    seen = []

    def cb(intermediate):
        assert isinstance(intermediate, SNEResult)
        seen.append(intermediate.nit.copy())
        if len(seen) == 2:
            raise StopIteration

    res = solve_sne(A, "l2", 1e4, callback=cb)
    assert len(seen) == 2
    assert np.all(res.status == 3)
    assert not np.any(res.success)
    assert res.message == ("stopped by callback",) * A.shape[0]
    assert res.policy is res.x
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.x = None


def test_max_iter_reports_failure():
    A = payoffs(20, n_random=2)
    res = solve_sne(A, "l2", 1e4, max_iter=1)
    assert np.all(res.status == 1)
    assert np.all(~res.converged)
    assert res.message[0] == "maximum number of iterations reached"
    assert np.all(res.nit == 1)


# ---------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------


def test_validation_messages():
    A = payoffs(4, n_random=1)[0]
    p = np.full(4, 0.25)
    with pytest.raises(ValueError, match=r"A must be skew-symmetric \(A\^T == -A\)"):
        solve_sne(A + np.eye(4), "kl", 1.0)
    with pytest.raises(ValueError, match=r"A must have shape \(\.\.\., K, K\), got \(4, 3\)"):
        solve_sne(A[:, :3], "kl", 1.0)
    with pytest.raises(ValueError, match=r"eta == -1.0, must be > 0"):
        solve_sne(A, "kl", -1.0)
    with pytest.raises(ValueError, match="eta == nan, must be > 0"):
        dual_gap(p, A, "kl", float("nan"))
    with pytest.raises(ValueError, match="eta == 0.0, must be > 0"):
        best_response(p, "kl", 0.0)
    with pytest.raises(ValueError, match="policy must lie on the probability simplex"):
        dual_gap(np.array([0.5, 0.5, 0.5, -0.5]), A, "kl", 1.0)
    with pytest.raises(ValueError, match=r"policy must have shape \(\.\.\., K\), got \(3,\)"):
        dual_gap(np.full(3, 1 / 3), A, "kl", 1.0)
    with pytest.raises(ValueError, match="reference must be > 0 everywhere for the kl"):
        solve_sne(A, "kl", 1.0, reference=[0.5, 0.5, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"regularizer == 'nope', must be one of \("):
        solve_sne(A, "nope", 1.0)
    with pytest.raises(ValueError, match=r"method == 'bfgs', must be one of \('auto'"):
        solve_sne(A, "kl", 1.0, method="bfgs")
    assert SNE_METHODS == ("auto", "newton", "lp", "cvxpy")
    with pytest.raises(ValueError, match="eta must be inf"):
        solve_sne(A, "kl", 1.0, method="lp")
    with pytest.raises(ValueError, match="warm_start must lie on the probability simplex"):
        solve_sne(A, "kl", 1.0, warm_start=np.full(4, 0.3))
    with pytest.raises(TypeError, match="regularizer must be a name or a Regularizer"):
        solve_sne(A, 3, 1.0)


def test_batch_composition_does_not_change_a_problem_bits():
    """A problem solved in a batch gives bit-identical results to the same problem alone.

    Problems with different support sizes (l2 at large eta) share a batch here: the Newton
    matrix of each is factorized at full size (K <= 64; at its own support size above).
    """
    games = np.stack([random_instance(d=5, K=12, rank=1, S=5.0, seed=s).payoff()
                      for s in range(6)])
    eta = np.array([0.3, 1000.0, 5.0, 1000.0, 40.0, 1e4])
    for name in ("kl", "l2", "tsallis_half"):
        batch = solve_sne(games, name, eta).policy
        for i in range(len(eta)):
            alone = solve_sne(games[i], name, eta[i]).policy
            np.testing.assert_array_equal(batch[i], alone)


def test_nearly_unregularized_piecewise_linear_games_converge_with_certificate():
    """The two fuzz cases where Newton stalls (chi2 at eta 4.6e4, l2 at eta 6.7e4, spec 8.3).

    solve_sne falls back to the convex program of spec 8.2 and certifies it: success comes
    with a dual gap <= 1e-9, checked here independently through j_eta at every vertex.
    """
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "tools" / "fuzz.py"
    spec = importlib.util.spec_from_file_location("_fuzz_tool", path)
    fuzz = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fuzz)
    for seed in ([0, 5672], [1, 5632]):
        case = fuzz.draw_case(seed)
        A, reg, eta = case["A"], case["reg"], case["eta"]
        res = solve_sne(A, reg, eta)
        assert bool(res.success) and int(res.status) == 0
        K = A.shape[-1]
        vertices = np.eye(K)
        # DGap(p) = max_q J_eta(q, p) - 1/2 >= value at every vertex (j_eta is linear+psi)
        j = j_eta(vertices, np.broadcast_to(res.policy, (K, K)), A, reg, eta)
        assert np.max(j) - 0.5 <= 1e-9
        assert float(res.dual_gap) <= 1e-9


def test_batch_composition_does_not_change_a_problem_bits_gathered_supports():
    """Same as above at K = 80, where Newton matrices are factorized on each support."""
    games = np.stack([random_instance(d=5, K=80, rank=1, S=5.0, seed=s).payoff()
                      for s in range(4)])
    eta = np.array([0.3, 1000.0, 40.0, 1e4])
    batch = solve_sne(games, "l2", eta).policy
    for i in range(len(eta)):
        np.testing.assert_array_equal(batch[i], solve_sne(games[i], "l2", eta[i]).policy)


@pytest.mark.parametrize("K", [5, 20, 64, 65, 90])
def test_newton_matrix_solve_matches_dense_reference(K):
    """(I - c M J) x = rhs, J = diag(d) - d d^T / sum(d): full-size solve (K <= 64) and
    support-gathered solve (K > 64) against numpy's dense solve of the assembled matrix.

    Supports of different sizes share the batch; entries below 1e-13 max(d) count as 0.
    """
    from rlhf_gbpm._sne_newton import _jacobian_solve

    rng = np.random.default_rng(K)
    B = 7
    M = rng.normal(size=(B, K, K))
    d = rng.uniform(0.1, 1.0, size=(B, K))
    for b in range(1, B):  # problem b keeps about K * b / B entries
        d[b, rng.permutation(K)[: K * b // B]] = 0.0
    d[2, np.flatnonzero(d[2] > 0)[0]] = 1e-15  # below the cut: off the support
    rhs = rng.normal(size=(B, K))
    c = rng.uniform(0.5, 5.0, size=B)
    x = _jacobian_solve(M, d, rhs, scale=c)
    x_unscaled = _jacobian_solve(c[:, None, None] * M, d, rhs)  # c folded into M (warm path)
    for b in range(B):
        db = np.where(d[b] > 1e-13 * d[b].max(), d[b], 0.0)
        J = np.diag(db) - np.outer(db, db) / db.sum()
        ref = np.linalg.solve(np.eye(K) - c[b] * M[b] @ J, rhs[b])
        for got in (x[b], x_unscaled[b]):
            np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-9 * np.abs(ref).max())


@pytest.mark.parametrize("name", ["kl", "l2", "tsallis_half", "kl_plus_chi2"])
def test_policy_is_best_response_of_returned_scores(name):
    """The policy the Newton solver hands back is BR_1 of its returned scores, bit for bit."""
    from rlhf_gbpm.equilibrium import _flat_reference

    games = payoffs(20)
    reg = make_reg(name, {}, 20)
    eta = np.array([1e-2, 1.0, 1e2])[:, None]
    res = solve_sne(games, reg, eta)
    rho = _flat_reference(reg, res.policy.shape)
    p, _, _ = reg.br1(res.scores.reshape(-1, 20), rho)
    np.testing.assert_array_equal(res.policy.reshape(-1, 20), p)


@pytest.mark.parametrize("name", ["kl", "l2", "tsallis_half", "chi2"])
def test_direct_cold_start_matches_continuation(name, monkeypatch):
    """Cold starts up to eta = 1e3 try Newton at the target directly (from s = 0 or the
    linear predictor); the policies equal those of the eta-continuation path they replace."""
    from rlhf_gbpm import _sne_newton

    games = payoffs(20, n_random=3)
    reg = make_reg(name, {}, 20)
    eta = np.array([1e-2, 3.0, 1e2, 1e3])[:, None]
    direct = solve_sne(games, reg, eta)
    monkeypatch.setattr(_sne_newton, "_DIRECT_ETA", 0.0)  # every cold start continues
    path = solve_sne(games, reg, eta)
    assert np.all(direct.success) and np.all(path.success)
    assert np.max(direct.residual) <= 1e-11
    np.testing.assert_allclose(direct.policy, path.policy, rtol=0, atol=2e-12)
