"""Tests for rlhf_gbpm.custom_regularizers: the three routes give the same SNE."""

import cvxpy as cp
import numpy as np
import pytest
import torch

import rlhf_gbpm as rg
from rlhf_gbpm.custom_regularizers import CvxpyRegularizer, TorchRegularizer
from rlhf_gbpm.errors import RegularizerError

ROUTES = {
    "kl": (lambda p, r: torch.sum(p * torch.log(p / r)), lambda q, r: cp.sum(cp.kl_div(q, r))),
    "l2": (lambda p, r: 0.5 * torch.sum((p - r) ** 2), lambda q, r: 0.5 * cp.sum_squares(q - r)),
    "chi2": (lambda p, r: torch.sum((p - r) ** 2 / r), lambda q, r: cp.sum(cp.square(q - r) / r)),
    "tsallis_half": (lambda p: 2 * (1 - torch.sum(torch.sqrt(p))),
                     lambda q: 2 - 2 * cp.sum(cp.sqrt(q))),
}


@pytest.fixture(scope="module")
def game():
    inst = rg.random_instance(d=5, K=8, rank=1, S=5.0, seed=3)
    reference = np.random.default_rng(0).dirichlet(np.full(8, 3.0))
    return inst.payoff(), reference


@pytest.mark.parametrize("name", list(ROUTES))
@pytest.mark.parametrize("eta", [0.1, 10.0, 300.0])
def test_routes_reproduce_builtin_sne(game, name, eta):
    A, ref = game
    reference = None if name == "tsallis_half" else ref
    builtin = rg.get_regularizer(name, reference=reference) if reference is not None else \
        rg.get_regularizer(name)
    expected = rg.solve_sne(A, builtin, eta).policy
    torch_fn, cvx_fn = ROUTES[name]
    for reg in (TorchRegularizer(fn=torch_fn, reference=reference, label=f"{name}_torch"),
                CvxpyRegularizer(expr=cvx_fn, reference=reference, label=f"{name}_cvxpy")):
        res = rg.solve_sne(A, reg, eta)
        assert bool(res.success)
        assert np.abs(res.policy - expected).sum() <= 1e-6
        # the user route's own values agree with the built-in closed forms
        np.testing.assert_allclose(reg.value(expected), builtin.value(expected), atol=1e-10)
        # gradients on the simplex are defined up to a constant (the tangent space is 1^T v = 0)
        g_user, g_builtin = reg.grad(expected), builtin.grad(expected)
        np.testing.assert_allclose(g_user - g_user.mean(), g_builtin - g_builtin.mean(),
                                   atol=1e-8)


@pytest.mark.parametrize("name", ["kl", "l2", "tsallis_half"])
def test_best_response_routes(game, name):
    A, ref = game
    reference = None if name == "tsallis_half" else ref
    builtin = rg.get_regularizer(name, reference=reference) if reference is not None else \
        rg.get_regularizer(name)
    y = A @ np.full(8, 1 / 8) + np.linspace(-0.2, 0.2, 8)
    expected = builtin.best_response(y, 5.0)
    torch_fn, cvx_fn = ROUTES[name]
    t = TorchRegularizer(fn=torch_fn, reference=reference)
    c = CvxpyRegularizer(expr=cvx_fn, reference=reference)
    np.testing.assert_allclose(t.best_response(y, 5.0), expected, atol=1e-10)
    # convex-program best response, polished on its KKT conditions
    np.testing.assert_allclose(c.best_response(y, 5.0), expected, atol=1e-9)


def test_non_separable_regularizer_equilibrium_is_certified(game):
    A, _ = game
    # psi(p) = ||p||^2 + 0.5 (p^T M p) with M PSD, not separable
    M = torch.tensor(np.random.default_rng(1).standard_normal((8, 8)))
    M = M @ M.T / 8
    reg = TorchRegularizer(fn=lambda p: torch.sum(p**2) + 0.5 * p @ M @ p, label="coupled")
    res = rg.solve_sne(A, reg, 50.0)
    p = res.policy
    # certificate: p is the best response to A p, checked by an independent convex program
    Mn = M.numpy()
    q = cp.Variable(8, nonneg=True)
    prob = cp.Problem(cp.Maximize(q @ (A @ p) - (cp.sum_squares(q) + 0.5 * cp.quad_form(q, Mn))
                                  / 50.0), [cp.sum(q) == 1])
    prob.solve(solver="CLARABEL")
    assert np.abs(q.value - p).sum() < 1e-5
    assert float(rg.dual_gap(p, A, reg, 50.0)) <= 1e-9


def test_user_errors_name_the_regularizer(game):
    A, _ = game

    def boom(p):
        raise RuntimeError("kaboom")

    with pytest.raises(RegularizerError, match="'exploding' raised RuntimeError.*kaboom"):
        rg.solve_sne(A, TorchRegularizer(fn=boom, label="exploding"), 1.0)
    nan_reg = TorchRegularizer(fn=lambda p: torch.sum(p) * torch.tensor(float("nan")),
                               label="nanny")
    with pytest.raises(RegularizerError, match="'nanny' returned NaN"):
        nan_reg.value(np.full(8, 1 / 8))
    with pytest.raises(RegularizerError, match="not DCP-convex"):
        CvxpyRegularizer(expr=lambda q: -cp.sum_squares(q), label="concave").value(
            np.full(8, 1 / 8))
    with pytest.raises(TypeError, match="fn must be callable"):
        TorchRegularizer(fn=3)


# route 3: a SeparableRegularizer subclass with closed-form f'' and (f')^{-1} (the fast path),
# written here from the formulas of spec 2.1, independently of the built-in classes
class _SubclassKL(rg.SeparableRegularizer):
    name = "kl_subclass"

    def f(self, p, rho):
        return np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0) / rho), 0.0)

    def f_prime(self, p, rho):
        with np.errstate(divide="ignore"):
            return np.log(p / rho) + 1.0

    def f_second(self, p, rho):
        return 1.0 / p

    def f_prime_inverse(self, u, rho):
        return rho * np.exp(u - 1.0)


class _SubclassL2(rg.SeparableRegularizer):
    name = "l2_subclass"

    def f(self, p, rho):
        return 0.5 * (p - rho) ** 2

    def f_prime(self, p, rho):
        return p - rho

    def f_second(self, p, rho):
        return np.ones_like(p)

    def f_prime_inverse(self, u, rho):
        return np.maximum(u + rho, 0.0)


class _SubclassChi2(rg.SeparableRegularizer):
    name = "chi2_subclass"

    def f(self, p, rho):
        return (p - rho) ** 2 / rho

    def f_prime(self, p, rho):
        return 2.0 * (p - rho) / rho

    def f_second(self, p, rho):
        return 2.0 / rho

    def f_prime_inverse(self, u, rho):
        return np.maximum(rho * (1.0 + 0.5 * u), 0.0)


class _SubclassTsallisHalf(rg.SeparableRegularizer):
    name = "tsallis_half_subclass"

    def f(self, p, rho):
        return -2.0 * np.sqrt(p) + 2.0 / p.shape[-1]

    def f_prime(self, p, rho):
        with np.errstate(divide="ignore"):
            return -1.0 / np.sqrt(p)

    def f_second(self, p, rho):
        return 0.5 * p ** -1.5

    def f_prime_inverse(self, u, rho):
        # only u <= f'(1) = -1 < 0 is needed
        return 1.0 / u**2


SUBCLASSES = {"kl": _SubclassKL, "l2": _SubclassL2, "chi2": _SubclassChi2,
              "tsallis_half": _SubclassTsallisHalf}


@pytest.mark.parametrize("name", list(SUBCLASSES))
def test_subclass_route_reproduces_builtin_sne(game, name):
    A, ref = game
    reference = None if name == "tsallis_half" else ref
    builtin = rg.get_regularizer(name, reference=reference) if reference is not None else \
        rg.get_regularizer(name)
    etas = np.array([0.1, 10.0, 300.0])
    expected = rg.solve_sne(A, builtin, etas).policy
    res = rg.solve_sne(A, SUBCLASSES[name](reference=reference), etas)
    assert np.all(res.success)
    assert np.all(np.abs(res.policy - expected).sum(-1) <= 1e-6)
    assert np.all(res.dual_gap <= 1e-9)


class _Raises(rg.SeparableRegularizer):
    name = "raising_subclass"

    def f(self, p, rho):
        raise RuntimeError("kaboom")

    def f_prime(self, p, rho):
        raise RuntimeError("kaboom")


class _ReturnsNaN(rg.SeparableRegularizer):
    name = "nan_subclass"

    def f(self, p, rho):
        return p * np.nan

    def f_prime(self, p, rho):
        return p * np.nan


def test_subclass_errors_name_the_regularizer(game):
    """A raising or NaN subclass is reported by name, not solved into a false certificate."""
    A, _ = game
    from rlhf_gbpm.strong_convexity import check_regularizer

    for call in (lambda reg: rg.solve_sne(A, reg, 1.0), lambda reg: check_regularizer(reg, 8)):
        with pytest.raises(RegularizerError, match="'raising_subclass' raised RuntimeError"):
            call(_Raises())
        with pytest.raises(RegularizerError, match="'nan_subclass' returned NaN in its value"):
            call(_ReturnsNaN())
