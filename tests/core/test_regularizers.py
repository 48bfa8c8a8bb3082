"""Tests for rlhf_gbpm.regularizers: values, gradients, best responses, beta, registry."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import optimize, special

from rlhf_gbpm.regularizers import (
    REGULARIZER_NAMES,
    KLRegularizer,
    Regularizer,
    SeparableRegularizer,
    get_regularizer,
    register_regularizer,
    sum_of,
)

K = 7
RNG = np.random.default_rng(12345)
RHO = RNG.dirichlet(np.ones(K))

BUILTINS = [
    ("kl", {}),
    ("shannon", {}),
    ("l2", {}),
    ("chi2_half", {}),
    ("chi2", {}),
    ("tsallis", {"q": 0.5}),
    ("tsallis", {"q": 0.25}),
    ("tsallis", {"q": 1.5}),
    ("tsallis", {"q": 2.0}),
    ("tsallis_half", {}),
    ("kl_plus_chi2", {}),
]
IDS = [n + "".join(f"-{k}{v}" for k, v in kw.items()) for n, kw in BUILTINS]


def make(name, kw, reference=RHO):
    takes_ref = name not in ("shannon", "tsallis", "tsallis_half")
    return get_regularizer(name, reference=reference if takes_ref else None, **kw)


def psi_formula(name, kw, p, rho):
    """psi written out independently of the package (spec gbpm.md section 2.1)."""
    u = np.full_like(p, 1.0 / p.shape[-1])
    if name == "kl":
        return np.sum(special.xlogy(p, p) - special.xlogy(p, rho), axis=-1)
    if name == "shannon":
        return np.sum(special.xlogy(p, p), axis=-1) + np.log(p.shape[-1]) + 0 * u.sum(-1)
    if name == "l2":
        return 0.5 * np.sum((p - rho) ** 2, axis=-1)
    if name == "chi2_half":
        return 0.5 * np.sum((p - rho) ** 2 / rho, axis=-1)
    if name == "chi2":
        return np.sum((p - rho) ** 2 / rho, axis=-1)
    if name == "tsallis_half" or (name == "tsallis" and kw["q"] == 0.5):
        return 2.0 * (1.0 - np.sum(np.sqrt(p), axis=-1))
    if name == "tsallis":
        q = kw["q"]
        return (np.sum(p**q, axis=-1) - 1.0) / (q - 1.0)
    if name == "kl_plus_chi2":
        return psi_formula("kl", {}, p, rho) + psi_formula("chi2", {}, p, rho)
    raise AssertionError(name)


BETA = {"kl": 1.0, "shannon": 1.0, "l2": float(K), "chi2_half": 1.0, "chi2": 0.5,
        "tsallis_half": 2.0, "kl_plus_chi2": 1.0 / 3.0}


def beta_expected(name, kw):
    if name == "tsallis":
        q = kw["q"]
        return 1.0 / q if q < 1 else K ** (q - 1) / q
    return BETA[name]


@pytest.mark.parametrize(("name", "kw"), BUILTINS, ids=IDS)
def test_value_matches_formula(name, kw):
    reg = make(name, kw)
    rho = RHO if reg.reference is not None else np.full(K, 1.0 / K)
    p = RNG.dirichlet(np.ones(K), size=5)
    np.testing.assert_allclose(reg.value(p), psi_formula(name, kw, p, rho), rtol=1e-12,
                               atol=1e-13)


@pytest.mark.parametrize(("name", "kw"), BUILTINS, ids=IDS)
def test_grad_is_derivative_of_value(name, kw):
    reg = make(name, kw)
    p = RNG.dirichlet(np.ones(K))
    direction = RNG.standard_normal(K)
    direction -= direction.mean()
    h = 1e-6
    fd = (reg.value(p + h * direction) - reg.value(p - h * direction)) / (2 * h)
    np.testing.assert_allclose(reg.grad(p) @ direction, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(("name", "kw"), BUILTINS, ids=IDS)
@pytest.mark.parametrize("eta", [0.05, 1.0, 30.0])
def test_best_response_satisfies_kkt(name, kw, eta):
    """q = BR(y) iff eta*y_i - f'(q_i) = lam on the support and <= lam off it."""
    reg = make(name, kw)
    y = RNG.uniform(-0.5, 0.5, size=(4, K))
    q = reg.best_response(y, eta)
    assert q.shape == y.shape
    np.testing.assert_allclose(q.sum(-1), 1.0, atol=1e-12)
    assert np.all(q >= 0)
    rho = np.broadcast_to(RHO if reg.reference is not None else np.full(K, 1 / K), q.shape)
    with np.errstate(divide="ignore"):
        slack = eta * y - reg.f_prime(q, rho)
    for row, qrow in zip(slack, q):
        supp = qrow > 1e-14
        lam = np.median(row[supp])
        scale = max(1.0, abs(lam))
        np.testing.assert_allclose(row[supp], lam, atol=1e-8 * scale)
        with np.errstate(invalid="ignore"):
            assert np.all(row[~supp] <= lam + 1e-8 * scale)


@pytest.mark.parametrize(("name", "kw"), BUILTINS, ids=IDS)
def test_best_response_maximizes_objective(name, kw):
    """Compare with a general-purpose constrained optimizer (SLSQP) on the objective."""
    reg = make(name, kw)
    eta = 2.0
    y = RNG.uniform(-0.5, 0.5, size=K)
    q = reg.best_response(y, eta)

    def neg(x):
        return -(x @ y - reg.value(np.clip(x, 1e-300, None)) / eta)

    res = optimize.minimize(neg, np.full(K, 1.0 / K), method="SLSQP", bounds=[(0, 1)] * K,
                            constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1}],
                            options={"ftol": 1e-15, "maxiter": 1000})
    assert neg(q) <= res.fun + 1e-10
    np.testing.assert_allclose(q, res.x, atol=2e-4)


def test_kl_best_response_is_softmax():
    y = RNG.standard_normal((3, K))
    q = get_regularizer("kl", reference=RHO).best_response(y, 3.0)
    expect = RHO * np.exp(3.0 * y)
    np.testing.assert_allclose(q, expect / expect.sum(-1, keepdims=True), rtol=1e-12)


def test_l2_best_response_is_euclidean_projection():
    y = RNG.standard_normal(K)
    q = get_regularizer("l2", reference=RHO).best_response(y, 2.0)
    target = RHO + 2.0 * y
    res = optimize.minimize(lambda x: 0.5 * np.sum((x - target) ** 2), np.full(K, 1 / K),
                            method="SLSQP", bounds=[(0, None)] * K,
                            constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1}],
                            options={"ftol": 1e-15})
    np.testing.assert_allclose(q, res.x, atol=1e-7)


def test_tsallis_half_closed_form_best_response():
    """q_i = 1/(eta^2 (lam - y_i)^2): 1/(eta sqrt(q_i)) + y_i is constant."""
    y = RNG.uniform(-0.5, 0.5, size=K)
    eta = 4.0
    q = get_regularizer("tsallis_half").best_response(y, eta)
    lam = 1.0 / (eta * np.sqrt(q)) + y
    np.testing.assert_allclose(lam, lam[0], rtol=1e-12)
    assert np.all(lam > y.max())


def test_tsallis_sparsity_pattern():
    y = np.array([0.5, 0.4, -0.5, -0.5, 0.0, 0.1, -0.2])
    assert np.all(get_regularizer("tsallis", q=0.3).best_response(y, 50.0) > 0)
    assert np.any(get_regularizer("tsallis", q=1.5).best_response(y, 50.0) == 0)


def test_best_response_batched_eta_and_reference():
    refs = RNG.dirichlet(np.ones(K), size=3)
    y = RNG.standard_normal((3, K))
    eta = np.array([0.5, 2.0, 10.0])
    for name in ("kl", "chi2", "l2", "kl_plus_chi2"):
        q = get_regularizer(name, reference=refs).best_response(y, eta)
        for b in range(3):
            qb = get_regularizer(name, reference=refs[b]).best_response(y[b], eta[b])
            np.testing.assert_allclose(q[b], qb, atol=1e-14)


@pytest.mark.parametrize(("name", "kw"), BUILTINS, ids=IDS)
def test_beta_constant_and_strong_convexity(name, kw):
    reg = make(name, kw)
    beta = reg.beta(K)
    assert beta == pytest.approx(beta_expected(name, kw), rel=1e-12)
    # psi(p') >= psi(p) + <grad psi(p), p' - p> + ||p' - p||_1^2 / (2 beta)
    p = RNG.dirichlet(np.ones(K), size=200)
    p2 = RNG.dirichlet(np.full(K, 0.5), size=200)
    lhs = reg.value(p2)
    rhs = reg.value(p) + np.sum(reg.grad(p) * (p2 - p), -1) + np.abs(p2 - p).sum(-1) ** 2 / (
        2 * beta)
    assert np.all(lhs >= rhs - 1e-12)


def test_beta_of_separable_estimate_matches_table():
    """The generic numerical beta (max_p sum 1/f'') reproduces known constants."""

    class MyKL(SeparableRegularizer):
        name = "my_kl"

        def f(self, p, rho):
            return special.rel_entr(p, rho)

        def f_prime(self, p, rho):
            return np.log(p / rho) + 1.0

    assert MyKL().beta(K) == pytest.approx(1.0, rel=1e-9)


def test_sum_of_beta_and_value():
    kl, chi2 = get_regularizer("kl", reference=RHO), get_regularizer("chi2", reference=RHO)
    reg = sum_of(kl, chi2, weights=[2.0, 0.5])
    assert reg.beta(K) == pytest.approx(1.0 / (2.0 / 1.0 + 0.5 / 0.5))
    p = RNG.dirichlet(np.ones(K), size=3)
    np.testing.assert_allclose(reg.value(p), 2 * kl.value(p) + 0.5 * chi2.value(p))
    y = RNG.standard_normal(K)
    q = reg.best_response(y, 3.0)
    slack = 3.0 * y - 2 * kl.grad(q) - 0.5 * chi2.grad(q)  # constant on the full support
    np.testing.assert_allclose(slack, slack[0], atol=1e-10)


def test_sum_generic_inverse_matches_wright_closed_form():
    """KL + chi2 through Wright omega equals the generic Newton/bisection inverse."""
    reg = get_regularizer("kl_plus_chi2", reference=RHO)
    u = np.linspace(-30, reg.f_prime(np.ones(K), RHO).min(), K)
    closed = reg.f_prime_inverse(u, RHO)
    generic = SeparableRegularizer.f_prime_inverse(reg, u, RHO)
    np.testing.assert_allclose(closed, generic, rtol=1e-10, atol=1e-300)


class UserKL(SeparableRegularizer):
    """KL written by a user with only the elementwise value and gradient."""

    name = "user_kl"

    def f(self, p, rho):
        return special.rel_entr(p, rho)

    def f_prime(self, p, rho):
        with np.errstate(divide="ignore"):
            return np.log(p / rho) + 1.0


def test_user_regularizer_best_response_matches_builtin():
    y = RNG.standard_normal((5, K))
    user = UserKL(reference=RHO)
    np.testing.assert_allclose(user.best_response(y, 3.0),
                               KLRegularizer(reference=RHO).best_response(y, 3.0),
                               rtol=1e-9, atol=1e-14)


def test_registry_and_config_roundtrip():
    assert set(REGULARIZER_NAMES) == {"kl", "shannon", "l2", "chi2_half", "chi2", "tsallis",
                                      "tsallis_half", "kl_plus_chi2"}
    from rlhf_gbpm import regularizers as registry

    register_regularizer("user_kl_test", UserKL)
    try:
        reg = get_regularizer("user_kl_test", reference=RHO)
        assert isinstance(reg, UserKL)
        with pytest.raises(ValueError, match="already registered"):
            register_regularizer("user_kl_test", UserKL)
    finally:  # leave the global registry as other tests expect it
        registry._REGISTRY.pop("user_kl_test", None)
    cfg = get_regularizer("tsallis", q=0.3).get_config()
    assert cfg == {"name": "tsallis", "reference": None, "q": 0.3}
    again = get_regularizer(cfg.pop("name"), **cfg)
    assert again.q == 0.3
    cfg = get_regularizer("kl", reference=RHO).get_config()
    np.testing.assert_allclose(cfg["reference"], RHO)


def test_frozen():
    reg = get_regularizer("kl")
    with pytest.raises(dataclasses.FrozenInstanceError):
        reg.reference = RHO
    assert isinstance(reg, Regularizer)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match=r"regularizer == 'entropy', must be one of \("):
        get_regularizer("entropy")


@pytest.mark.parametrize("name", ["kl", "chi2", "chi2_half", "kl_plus_chi2"])
def test_reference_with_zeros_rejected(name):
    ref = np.array([0.5, 0.5, 0.0])
    with pytest.raises(ValueError, match="reference must be > 0 everywhere for the (kl|chi2)"):
        get_regularizer(name, reference=ref)


def test_l2_accepts_reference_with_zeros():
    q = get_regularizer("l2", reference=[0.5, 0.5, 0.0]).best_response([0.0, 0.0, 0.0], 1.0)
    np.testing.assert_allclose(q, [0.5, 0.5, 0.0])


def test_bad_parameters():
    with pytest.raises(ValueError, match="reference must lie on the probability simplex"):
        get_regularizer("kl", reference=[0.5, 0.6])
    with pytest.raises(ValueError, match="q == 2.5, must be <= 2.0"):
        get_regularizer("tsallis", q=2.5)
    with pytest.raises(ValueError, match=r"q == 1.0, must be in \(0, 1\) or \(1, 2\]"):
        get_regularizer("tsallis", q=1.0)
    with pytest.raises(ValueError, match="reference must be None or uniform"):
        get_regularizer("shannon", reference=RHO)
    with pytest.raises(ValueError, match="reference has K == 7 actions but the input has"):
        get_regularizer("kl", reference=RHO).value(np.full(3, 1 / 3))
    with pytest.raises(TypeError, match="sum_of combines SeparableRegularizer"):
        sum_of(get_regularizer("kl"), Regularizer())
