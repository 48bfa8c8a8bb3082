"""Strongly convex regularizers psi on the simplex and their regularized best responses.

A regularizer psi is beta^{-1}-strongly convex w.r.t. the l1 norm on the simplex (spec gbpm.md
section 2.1). It enters the eta-regularized game through

    BR(y) = argmax_{q in simplex} <q, y> - psi(q) / eta = BR_1(eta * y),

where ``BR_1(s) = argmax_q <q, s> - psi(q)`` is the best response at unit strength. Every
built-in is *separable*, psi(p) = sum_i f(p_i; rho_i) with ``rho`` the reference policy, so
``BR_1(s)_i = h_i(s_i - lam)`` with ``h = (f')^{-1}`` (extended by 0 below ``f'(0+)``) and the
multiplier ``lam`` fixed by ``sum_i BR_1(s)_i = 1``: a monotone one-dimensional root, solved in
closed form (KL), by sorting (piecewise-linear maps: l2, chi2, 1/2 chi2) or by a vectorized
safeguarded Newton/bisection iteration (Tsallis, sums, user regularizers).

User regularizers subclass :class:`SeparableRegularizer` and give only the elementwise ``f`` and
``f_prime``; the best response and the equilibrium solver then work through the generic route
(``f_second`` by a central finite difference, ``h`` by a safeguarded scalar Newton/bisection in
log-space).

References:
    Lee, Hong, Jun, Yun, Yun. "Regularized Online RLHF with Generalized Bilinear
    Preferences", arXiv:2602.23116, 2026 (section 2.1, Prop. B.5).
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from rlhf_gbpm._validation import check_scalar, check_simplex

__all__ = [
    "Regularizer",
    "SeparableRegularizer",
    "KLRegularizer",
    "L2Regularizer",
    "Chi2HalfRegularizer",
    "Chi2Regularizer",
    "TsallisRegularizer",
    "SumRegularizer",
    "get_regularizer",
    "register_regularizer",
    "sum_of",
    "REGULARIZER_NAMES",
]

logger = logging.getLogger(__name__)

_EPS = np.finfo(float).eps
_TINY_LOG = -700.0  # log of the smallest probability the generic inverse resolves


def _readonly(arr: np.ndarray) -> np.ndarray:
    arr = np.array(arr, dtype=float, copy=True)
    arr.setflags(write=False)
    return arr


def _check_reference(reference, name: str, *, positive: bool) -> np.ndarray | None:
    """Validate a reference policy (shape (..., K), on the simplex, positive if required)."""
    if reference is None:
        return None
    ref = check_simplex(reference, "reference", tol=1e-9)
    if ref.ndim < 1 or ref.shape[-1] < 2:
        raise ValueError(f"reference must have shape (..., K) with K >= 2, got {ref.shape}.")
    if positive and np.min(ref) <= 0.0:
        raise ValueError(
            f"reference must be > 0 everywhere for the {name} regularizer (it needs full "
            f"support), got min == {float(np.min(ref)):.3g}."
        )
    ref = np.clip(ref, 0.0, None)
    return _readonly(ref / ref.sum(axis=-1, keepdims=True))


@dataclass(frozen=True, eq=False, repr=False)
class Regularizer:
    """A strongly convex regularizer psi on the simplex (abstract base).

    Subclasses implement :meth:`value`, :meth:`grad`, :meth:`best_response` and :meth:`beta`.
    Built-ins are :class:`SeparableRegularizer` subclasses, which implement everything from an
    elementwise function.

    Attributes:
        reference: Reference policy rho, shape (K,) or (..., K), or None (uniform over the K
            of whatever input it meets).
        name: Registry name (class attribute).
    """

    reference: np.ndarray | None = None
    name = "regularizer"

    def value(self, p) -> np.ndarray:
        """psi(p).

        Args:
            p: Policies, shape (..., K).

        Returns:
            Values, shape (...).
        """
        raise NotImplementedError

    def grad(self, p) -> np.ndarray:
        """Gradient of psi at p (entries may be -inf on the boundary).

        Args:
            p: Policies, shape (..., K).

        Returns:
            Gradients, shape (..., K).
        """
        raise NotImplementedError

    def best_response(self, y, eta) -> np.ndarray:
        """argmax_{q in simplex} <q, y> - psi(q) / eta.

        Args:
            y: Payoff vectors, shape (..., K).
            eta: Strength in (0, inf), scalar or broadcastable to the batch shape (...).

        Returns:
            Policies, shape (..., K).
        """
        raise NotImplementedError

    def beta(self, K: int) -> float:
        """The constant beta such that psi is beta^{-1}-strongly convex w.r.t. l1 on Delta_K.

        Args:
            K: Number of actions.

        Returns:
            beta > 0.
        """
        raise NotImplementedError

    def with_reference(self, reference) -> Regularizer:
        """A copy with another reference policy (validated).

        Args:
            reference: Reference policy, shape (K,) or (..., K), or None.

        Returns:
            The new regularizer.
        """
        return type(self)(**{**self._params(), "reference": reference})

    def get_config(self) -> dict:
        """Constructor arguments for the run manifest (JSON-friendly).

        Returns:
            A dict with ``name``, ``reference`` (a list or None) and the parameters.
        """
        ref = None if self.reference is None else np.asarray(self.reference).tolist()
        return {"name": self.name, "reference": ref, **self._params()}

    def _params(self) -> dict:
        return {}

    def _ref_for(self, x: np.ndarray) -> np.ndarray:
        """Reference broadcast to the shape of x (..., K); uniform if None."""
        K = x.shape[-1]
        if self.reference is None:
            return np.full(x.shape, 1.0 / K)
        if self.reference.shape[-1] != K:
            raise ValueError(
                f"reference has K == {self.reference.shape[-1]} actions but the input has "
                f"K == {K}."
            )
        try:
            return np.broadcast_to(self.reference, np.broadcast_shapes(self.reference.shape,
                                                                       x.shape))
        except ValueError as err:
            raise ValueError(
                f"reference of shape {self.reference.shape} does not broadcast against the "
                f"input of shape {x.shape}."
            ) from err

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        ref = "None" if self.reference is None else f"array{self.reference.shape}"
        return f"{type(self).__name__}({params}{', ' if params else ''}reference={ref})"


@dataclass(frozen=True, eq=False, repr=False)
class SeparableRegularizer(Regularizer):
    """psi(p) = sum_i f(p_i; rho_i) with a strictly convex elementwise f.

    A subclass gives :meth:`f` and :meth:`f_prime` (elementwise, vectorized, with ``rho`` of
    the same shape); optionally :meth:`f_second` (default: central finite difference of
    ``f_prime``), :meth:`f_prime_inverse` (default: safeguarded Newton/bisection in log p) and
    :meth:`beta` (default: a numerical estimate, see its docstring). Best responses and the
    equilibrium solver then follow with no further code.

    Example:
        >>> import numpy as np
        >>> class Burg(SeparableRegularizer):  # psi(p) = -sum log p (log-barrier)
        ...     name = "burg"
        ...     def f(self, p, rho):
        ...         return -np.log(p)
        ...     def f_prime(self, p, rho):
        ...         return -1.0 / p
        >>> q = Burg().best_response(np.array([0.3, 0.0, -0.2]), 2.0)
        >>> bool(abs(q.sum() - 1.0) < 1e-12 and q[0] > q[1] > q[2])
        True
    """

    # ---- elementwise hooks -------------------------------------------------------------
    def f(self, p: np.ndarray, rho: np.ndarray) -> np.ndarray:
        """Elementwise term of psi: the value at p_i given rho_i.

        Args:
            p: Probabilities, shape (..., K), in [0, 1].
            rho: Reference, same shape.

        Returns:
            Values, shape (..., K).
        """
        raise NotImplementedError

    def f_prime(self, p: np.ndarray, rho: np.ndarray) -> np.ndarray:
        """Elementwise derivative f'(p_i; rho_i), increasing in p (may be -inf at 0).

        Args:
            p: Probabilities, shape (..., K).
            rho: Reference, same shape.

        Returns:
            Derivatives, shape (..., K).
        """
        raise NotImplementedError

    def f_second(self, p: np.ndarray, rho: np.ndarray) -> np.ndarray:
        """Elementwise second derivative f''(p_i; rho_i) > 0 for p_i > 0.

        The default is a central finite difference of :meth:`f_prime` with a relative step,
        which is enough for the Newton equilibrium solver (it only shapes the Jacobian).

        Args:
            p: Probabilities, shape (..., K), positive.
            rho: Reference, same shape.

        Returns:
            Second derivatives, shape (..., K).
        """
        step = 1e-5 * np.maximum(p, 1e-300)
        with np.errstate(all="ignore"):
            up = self.f_prime(p + step, rho)
            down = self.f_prime(p - step, rho)
            out = (up - down) / (2.0 * step)
        return out

    def f_prime_inverse(self, u: np.ndarray, rho: np.ndarray) -> np.ndarray:
        """h(u) = (f')^{-1}(u), extended by 0 for u <= f'(0+).

        Only arguments with ``u <= f'(1)`` are needed (the normalization guarantees it).
        The default solves ``f'(e^t) = u`` for ``t = log p`` in [-700, 0] by safeguarded
        Newton/bisection, vectorized over all entries.

        Args:
            u: Arguments, shape (..., K).
            rho: Reference, same shape.

        Returns:
            h(u) in [0, 1], shape (..., K).
        """
        return _generic_inverse(self, u, rho)

    # ---- psi-level API -------------------------------------------------------------------
    def value(self, p) -> np.ndarray:  # noqa: D102
        p = np.asarray(p, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.sum(self.f(p, self._ref_for(p)), axis=-1)

    def grad(self, p) -> np.ndarray:  # noqa: D102
        p = np.asarray(p, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.f_prime(p, self._ref_for(p))

    def best_response(self, y, eta) -> np.ndarray:  # noqa: D102
        y = np.asarray(y, dtype=float)
        eta = np.asarray(eta, dtype=float)
        s = y * eta[..., None] if eta.ndim else y * float(eta)
        rho = self._ref_for(s)
        if rho.shape != s.shape:
            s = np.broadcast_to(s, rho.shape)
        shape = s.shape
        p, _, _ = self.br1(s.reshape(-1, shape[-1]), rho.reshape(-1, shape[-1]))
        return p.reshape(shape)

    def beta(self, K: int) -> float:
        """Beta = max over the simplex of sum_i 1 / f''(p_i) (numerical estimate by default).

        For separable psi the l1 strong-convexity modulus at p is 1 / sum_i (1/f''(p_i))
        (Cauchy-Schwarz), so beta is the maximum of sum_i 1/f''(p_i) over Delta_K. The
        default evaluates it at the uniform policy, the reference, the K near-vertices
        (1 - 1e-9) e_i + 1e-9/K and 128 fixed Dirichlet points; subclasses with a known
        constant override this.

        Args:
            K: Number of actions.

        Returns:
            beta > 0.
        """
        check_scalar(K, "K", numbers.Integral, min_val=2)
        rng = np.random.default_rng(0)
        pts = [np.full(K, 1.0 / K), rng.dirichlet(np.ones(K), size=64),
               rng.dirichlet(np.full(K, 0.2), size=64),
               (1.0 - 1e-9) * np.eye(K) + 1e-9 / K]
        if self.reference is not None and self.reference.ndim == 1:
            pts.append(self.reference)
        p = np.clip(np.vstack([np.atleast_2d(x) for x in pts]), 1e-12, None)
        with np.errstate(all="ignore"):
            inv = 1.0 / self.f_second(p, self._ref_for(p))
        return float(np.nanmax(np.sum(inv, axis=-1)))

    # ---- internals used by the equilibrium solver ----------------------------------------
    def br1(self, s: np.ndarray, rho: np.ndarray):
        """Unit-strength best response with its multiplier and Jacobian diagonal.

        ``p_i = h_i(s_i - lam)`` with ``sum p = 1``; ``d_i = h_i'(s_i - lam)`` (0 off the
        support), so that the Jacobian of ``s -> p`` is ``diag(d) - d d^T / sum(d)``.

        Args:
            s: Scores, shape (B, K).
            rho: Reference, shape (B, K).

        Returns:
            Tuple (p, d, lam) of shapes (B, K), (B, K), (B,).
        """
        lam = self._normalizer(s, rho)
        with np.errstate(all="ignore"):
            p = self.f_prime_inverse(s - lam[:, None], rho)
        p = p / p.sum(axis=-1, keepdims=True)
        return p, self._jac_diag(p, rho), lam

    def _jac_diag(self, p: np.ndarray, rho: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            d = np.where(p > 0, 1.0 / self.f_second(np.where(p > 0, p, 1.0), rho), 0.0)
        return np.where(np.isfinite(d) & (d > 0), d, 0.0)

    def _bregman(self, p: np.ndarray, q: np.ndarray, g: np.ndarray,
                 rho: np.ndarray) -> np.ndarray:
        """sum_i f(p_i) - f(q_i) - g_i (p_i - q_i) with g_i a subgradient of f at q_i."""
        with np.errstate(all="ignore"):
            terms = self.f(p, rho) - self.f(q, rho) - g * (p - q)
        terms = np.where(p == q, 0.0, terms)
        return np.sum(terms, axis=-1)

    def _normalizer(self, s: np.ndarray, rho: np.ndarray) -> np.ndarray:
        """Multiplier lam with sum_i h_i(s_i - lam) = 1 (safeguarded Newton from the left)."""
        ones = np.ones_like(rho)
        with np.errstate(all="ignore"):
            lo = np.max(s - self.f_prime(ones, rho), axis=-1)
            hi = np.max(s - self.f_prime(ones / s.shape[-1], rho), axis=-1)
        hi = np.maximum(hi, lo)
        return _monotone_root(lambda lam: self._norm_eq(s, rho, lam), lo, hi,
                              gscale=float(s.shape[-1]))

    def _norm_eq(self, s, rho, lam):
        with np.errstate(all="ignore"):
            p = self.f_prime_inverse(s - lam[:, None], rho)
            d = self._jac_diag(p, rho)
        # g(lam) = sum p - 1 is decreasing; return it with its derivative -sum(d)
        return p.sum(axis=-1) - 1.0, -d.sum(axis=-1)


def _monotone_root(fun: Callable, lo: np.ndarray, hi: np.ndarray, *, maxiter: int = 200,
                   gscale=1.0):
    """Vectorized root of decreasing functions on brackets [lo, hi] (g(lo) >= 0 >= g(hi)).

    Newton steps from the left end, replaced by bisection whenever they leave the current
    bracket or are longer than half the step before last (slow Newton far from the root, as
    in Numerical Recipes' rtsafe); stops at full double precision.
    """
    lo = lo.astype(float).copy()
    hi = hi.astype(float).copy()
    x = lo.copy()
    gx, dg = fun(x)
    gtol = 4.0 * _EPS * gscale
    dx_prev = dx_prev2 = np.full(lo.shape, np.inf)
    for _ in range(maxiter):
        done = (np.abs(gx) <= gtol) | (hi - lo <= 4 * _EPS * np.maximum(1.0, np.abs(x)))
        if np.all(done):
            break
        pos = gx > 0
        lo = np.where(pos & ~done, np.maximum(lo, x), lo)
        hi = np.where(~pos & ~done, np.minimum(hi, x), hi)
        with np.errstate(all="ignore"):
            newton = x - gx / dg
        slow = np.abs(newton - x) > 0.5 * dx_prev2
        ok = np.isfinite(newton) & (newton > lo) & (newton < hi) & ~slow
        cand = np.where(ok, newton, 0.5 * (lo + hi))
        dx_prev2, dx_prev = dx_prev, np.abs(cand - x)
        tiny = ok & (np.abs(newton - x) <= 2 * _EPS * np.maximum(1.0, np.abs(x)))
        x = np.where(done, x, cand)
        if np.all(done | tiny):
            break
        gx, dg = fun(x)
    return x


def _generic_inverse(reg: SeparableRegularizer, u: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """(f')^{-1}(u) in [0, 1] by Newton/bisection on t = log p in [-700, 0]."""
    u = np.asarray(u, dtype=float)
    rho = np.broadcast_to(rho, u.shape)
    # bracket first on a fixed grid of log p (one vectorized call), then refine
    grid = np.concatenate([_TINY_LOG * 0.5 ** np.arange(12), [0.0]])
    with np.errstate(all="ignore"):
        fp = reg.f_prime(np.exp(grid), rho[..., None])  # (..., G), increasing along G
    fp = np.where(np.isnan(fp), -np.inf, fp)
    zero = u <= fp[..., 0]
    j = np.clip(np.sum(fp < u[..., None], axis=-1), 1, grid.size - 1)  # fp[j-1] < u <= fp[j]
    lo, hi = grid[j - 1], grid[j]

    def fun(t):
        p = np.exp(t)
        with np.errstate(all="ignore"):
            g = u - reg.f_prime(p, rho)
            dg = -reg.f_second(p, rho) * p
        return np.where(zero, 0.0, g).ravel(), np.where(zero, -1.0, dg).ravel()

    t = _monotone_root(lambda t: fun(t.reshape(u.shape)), lo.ravel(), hi.ravel(),
                       gscale=(np.abs(u) + 1.0).ravel())
    return np.where(zero, 0.0, np.exp(t.reshape(u.shape)))


# ---------------------------------------------------------------------------------------
# Built-in regularizers
# ---------------------------------------------------------------------------------------


_TINY = float(np.finfo(float).tiny)


def _kl_subgradient_terms(terms: np.ndarray, small: np.ndarray, p, g, rho) -> np.ndarray:
    """KL Bregman terms with the subgradient form f(p) - g p where ``small`` holds.

    Args:
        terms: The stable terms KL(p || q) - p + q, shape (..., K).
        small: Where q is zero, subnormal or NaN, shape (..., K).
        p: The policies p, broadcast against ``terms``.
        g: The subgradients at q, broadcast against ``terms``.
        rho: The references, broadcast against ``terms``.

    Returns:
        The terms, broadcast to the shape of all inputs (a new array).
    """
    shape = np.broadcast_shapes(terms.shape, np.shape(g), np.shape(rho))
    terms = np.array(np.broadcast_to(terms, shape))
    small = np.broadcast_to(small, shape)
    p_s = np.broadcast_to(p, shape)[small]
    rho_s = np.broadcast_to(rho, shape)[small]
    terms[small] = special.rel_entr(p_s, rho_s) - np.broadcast_to(g, shape)[small] * p_s
    return terms


@dataclass(frozen=True, eq=False, repr=False)
class KLRegularizer(SeparableRegularizer):
    """KL(p || rho) = sum_i p_i log(p_i / rho_i); Shannon (negative entropy + log K) if rho uniform.

    BR(y) is proportional to rho * exp(eta * y); beta = 1 (Pinsker).
    """

    name = "kl"

    def __post_init__(self):
        object.__setattr__(self, "reference", _check_reference(self.reference, self.name,
                                                               positive=True))

    def f(self, p, rho):  # noqa: D102
        return special.rel_entr(p, rho)

    def f_prime(self, p, rho):  # noqa: D102
        with np.errstate(divide="ignore"):
            return np.log(p / rho) + 1.0

    def f_second(self, p, rho):  # noqa: D102
        with np.errstate(divide="ignore"):
            return 1.0 / p

    def f_prime_inverse(self, u, rho):  # noqa: D102
        with np.errstate(over="ignore", under="ignore"):
            return np.minimum(rho * np.exp(u - 1.0), 1.0)

    def beta(self, K: int) -> float:  # noqa: D102
        check_scalar(K, "K", numbers.Integral, min_val=2)
        return 1.0

    def br1(self, s, rho):  # noqa: D102
        z = s + np.log(rho)
        zmax = np.max(z, axis=-1, keepdims=True)
        with np.errstate(under="ignore"):
            e = np.exp(z - zmax)
        tot = e.sum(axis=-1, keepdims=True)
        p = e / tot
        lam = (zmax + np.log(tot))[..., 0] - 1.0
        return p, p.copy(), lam

    def _bregman(self, p, q, g, rho):  # noqa: D102
        # KL(p || q) - sum p + sum q, computed stably where q is a normal float (there
        # g = f'(q) up to rounding); where q underflowed to 0 or to a subnormal (whose few
        # significant bits make log q inaccurate) the subgradient form f(p) - g p is used
        with np.errstate(all="ignore"):
            terms = special.rel_entr(p, q) - p + q
            normal = q >= _TINY  # False for NaN as well
            if np.shape(g) != terms.shape or np.shape(rho) != terms.shape or not normal.all():
                terms = _kl_subgradient_terms(terms, ~normal, p, g, rho)
        return np.sum(np.where(p == q, 0.0, terms), axis=-1)


@dataclass(frozen=True, eq=False, repr=False)
class ShannonRegularizer(KLRegularizer):
    """KL to the uniform policy (Shannon negative entropy plus log K); no other reference."""

    name = "shannon"

    def __post_init__(self):
        if self.reference is not None:
            ref = np.asarray(self.reference, dtype=float)
            if ref.ndim < 1 or not np.allclose(ref, 1.0 / ref.shape[-1], rtol=0, atol=1e-12):
                raise ValueError(
                    "reference must be None or uniform for the shannon regularizer (use 'kl' "
                    "for another reference)."
                )
            object.__setattr__(self, "reference", None)


@dataclass(frozen=True, eq=False, repr=False)
class _PiecewiseLinear(SeparableRegularizer):
    """f quadratic in p, so that h(u) = (a + b u)_+ and BR_1 is found by sorting."""

    def _ab(self, rho):
        raise NotImplementedError

    def f_prime_inverse(self, u, rho):  # noqa: D102
        a, b = self._ab(rho)
        return np.maximum(a + b * u, 0.0)

    def f_second(self, p, rho):  # noqa: D102
        a, b = self._ab(rho)
        return 1.0 / np.broadcast_to(b, np.shape(p))

    def br1(self, s, rho):  # noqa: D102
        a, b = self._ab(rho)
        a = np.broadcast_to(a, s.shape)
        b = np.broadcast_to(b, s.shape)
        with np.errstate(divide="ignore"):
            t = s + a / b  # p_i > 0 iff lam < t_i
        order = np.argsort(-t, axis=-1)
        ts = np.take_along_axis(t, order, axis=-1)
        cum_c = np.cumsum(np.take_along_axis(a + b * s, order, axis=-1), axis=-1)
        cum_b = np.cumsum(np.take_along_axis(b, order, axis=-1), axis=-1)
        lam_k = (cum_c - 1.0) / cum_b
        valid = ts > lam_k
        k = np.maximum(np.sum(valid, axis=-1), 1) - 1
        lam = np.take_along_axis(lam_k, k[:, None], axis=-1)[:, 0]
        p = np.maximum(a + b * (s - lam[:, None]), 0.0)
        p = p / p.sum(axis=-1, keepdims=True)
        d = np.where(p > 0, b, 0.0)
        return p, d, lam


@dataclass(frozen=True, eq=False, repr=False)
class L2Regularizer(_PiecewiseLinear):
    """1/2 ||p - rho||_2^2; BR(y) = Proj_simplex(rho + eta y); beta = K."""

    name = "l2"

    def __post_init__(self):
        object.__setattr__(self, "reference", _check_reference(self.reference, self.name,
                                                               positive=False))

    def _ab(self, rho):
        return rho, np.ones_like(rho)

    def f(self, p, rho):  # noqa: D102
        return 0.5 * (p - rho) ** 2

    def f_prime(self, p, rho):  # noqa: D102
        return p - rho

    def beta(self, K: int) -> float:  # noqa: D102
        check_scalar(K, "K", numbers.Integral, min_val=2)
        return float(K)


@dataclass(frozen=True, eq=False, repr=False)
class Chi2HalfRegularizer(_PiecewiseLinear):
    """1/2 chi^2 = 1/2 sum_i (p_i - rho_i)^2 / rho_i; BR = rho (1 + eta (y - lam))_+; beta = 1."""

    name = "chi2_half"
    _scale = 0.5

    def __post_init__(self):
        object.__setattr__(self, "reference", _check_reference(self.reference, self.name,
                                                               positive=True))

    def _ab(self, rho):
        return rho, rho / (2.0 * self._scale)

    def f(self, p, rho):  # noqa: D102
        return self._scale * (p - rho) ** 2 / rho

    def f_prime(self, p, rho):  # noqa: D102
        return 2.0 * self._scale * (p - rho) / rho

    def beta(self, K: int) -> float:  # noqa: D102
        check_scalar(K, "K", numbers.Integral, min_val=2)
        return 0.5 / self._scale


@dataclass(frozen=True, eq=False, repr=False)
class Chi2Regularizer(Chi2HalfRegularizer):
    """chi^2 = sum_i (p_i - rho_i)^2 / rho_i; BR = rho (1 + eta (y - lam) / 2)_+; beta = 1/2."""

    name = "chi2"
    _scale = 1.0


@dataclass(frozen=True, eq=False, repr=False)
class TsallisRegularizer(SeparableRegularizer):
    """Tsallis entropy psi(p) = (sum_i p_i^q - 1) / (q - 1); 2 (1 - sum sqrt(p)) at q = 1/2.

    ``q`` in (0, 1) (Legendre: every action keeps positive mass) or (1, 2] (sparse best
    responses; q = 2 is sum p^2 - 1 = 2 * (1/2 ||p||^2) - 1). beta = 1/q for q < 1 and
    K^{q-1}/q for q in (1, 2]. An entropy: the reference must be None (or uniform).

    Attributes:
        q: The Tsallis index.
    """

    q: float = 0.5
    name = "tsallis"

    def __post_init__(self):
        check_scalar(self.q, "q", numbers.Real, min_val=0.0, max_val=2.0,
                     include_boundaries="right")
        if self.q == 1.0:
            raise ValueError("q == 1.0, must be in (0, 1) or (1, 2] (q -> 1 is 'shannon').")
        object.__setattr__(self, "q", float(self.q))
        if self.reference is not None:
            ref = np.asarray(self.reference, dtype=float)
            if ref.ndim < 1 or not np.allclose(ref, 1.0 / ref.shape[-1], rtol=0, atol=1e-12):
                raise ValueError(
                    "reference must be None or uniform for the tsallis regularizer (Tsallis "
                    "entropy has no reference policy)."
                )
            object.__setattr__(self, "reference", None)

    def _params(self) -> dict:
        return {"q": self.q}

    # f(p) = (p^q - p)/(q - 1) sums to psi on the simplex
    def f(self, p, rho):  # noqa: D102
        if self.q == 0.5:
            return 2.0 * (p - np.sqrt(p))
        return (p**self.q - p) / (self.q - 1.0)

    def f_prime(self, p, rho):  # noqa: D102
        q = self.q
        with np.errstate(divide="ignore"):
            if q == 0.5:
                return 2.0 - 1.0 / np.sqrt(p)
            return (q * p ** (q - 1.0) - 1.0) / (q - 1.0)

    def f_second(self, p, rho):  # noqa: D102
        with np.errstate(divide="ignore"):
            return self.q * p ** (self.q - 2.0)

    def f_prime_inverse(self, u, rho):  # noqa: D102
        q = self.q
        z = (1.0 + (q - 1.0) * u) / q
        with np.errstate(all="ignore"):
            if q < 1.0:
                if q == 0.5:
                    out = 1.0 / (2.0 - u) ** 2
                else:
                    out = np.where(z > 0, z ** (1.0 / (q - 1.0)), np.inf)
            else:
                out = np.maximum(z, 0.0) ** (1.0 / (q - 1.0))
        return np.minimum(out, 1.0)

    def value(self, p) -> np.ndarray:  # noqa: D102
        p = np.asarray(p, dtype=float)
        if self.q == 0.5:
            return 2.0 * (1.0 - np.sum(np.sqrt(p), axis=-1))
        return (np.sum(p**self.q, axis=-1) - 1.0) / (self.q - 1.0)

    def grad(self, p) -> np.ndarray:  # noqa: D102
        p = np.asarray(p, dtype=float)
        with np.errstate(divide="ignore"):
            return self.q * p ** (self.q - 1.0) / (self.q - 1.0)

    def beta(self, K: int) -> float:  # noqa: D102
        check_scalar(K, "K", numbers.Integral, min_val=2)
        if self.q < 1.0:
            return 1.0 / self.q
        return float(K) ** (self.q - 1.0) / self.q


@dataclass(frozen=True, eq=False, repr=False)
class SumRegularizer(SeparableRegularizer):
    """Weighted sum psi = sum_k w_k psi_k of separable regularizers sharing one reference.

    A sum of beta_k^{-1}-strongly convex terms is (sum_k w_k / beta_k)-strongly convex, so
    beta = 1 / sum_k (w_k / beta_k). KL + (1/2)chi^2 / chi^2 gets a closed-form inverse
    through the Wright omega function; other sums use the generic inverse.

    Attributes:
        components: The summed regularizers.
        weights: Their positive weights.
    """

    components: tuple = field(default=())
    weights: tuple = field(default=())
    label: str | None = None

    def __post_init__(self):
        if len(self.components) < 1:
            raise ValueError("components must hold at least one regularizer.")
        for reg in self.components:
            if not isinstance(reg, SeparableRegularizer):
                raise TypeError(
                    "sum_of combines SeparableRegularizer instances, got "
                    f"{type(reg).__name__}."
                )
        weights = tuple(float(w) for w in (self.weights or (1.0,) * len(self.components)))
        if len(weights) != len(self.components):
            raise ValueError(
                f"weights must have one entry per regularizer ({len(self.components)}), got "
                f"{len(weights)}."
            )
        for w in weights:
            check_scalar(w, "weights", numbers.Real, min_val=0.0, include_boundaries="neither")
        object.__setattr__(self, "weights", weights)
        ref = self.reference
        if ref is None:
            refs = [c.reference for c in self.components if c.reference is not None]
            ref = refs[0] if refs else None
        comps = tuple(c.with_reference(ref) for c in self.components)
        object.__setattr__(self, "components", comps)
        object.__setattr__(self, "reference", comps[0].reference if ref is not None else None)

    @property
    def name(self) -> str:  # noqa: D102
        if self.label is not None:
            return self.label
        return "+".join(c.name for c in self.components)

    def with_reference(self, reference) -> SumRegularizer:  # noqa: D102
        comps = tuple(c.with_reference(reference) for c in self.components)
        return SumRegularizer(reference=reference, components=comps, weights=self.weights,
                              label=self.label)

    def get_config(self) -> dict:  # noqa: D102
        ref = None if self.reference is None else np.asarray(self.reference).tolist()
        return {"name": self.name, "reference": ref,
                "components": [c.get_config() for c in self.components],
                "weights": list(self.weights)}

    def f(self, p, rho):  # noqa: D102
        return sum(w * c.f(p, rho) for w, c in zip(self.weights, self.components))

    def f_prime(self, p, rho):  # noqa: D102
        return sum(w * c.f_prime(p, rho) for w, c in zip(self.weights, self.components))

    def f_second(self, p, rho):  # noqa: D102
        return sum(w * c.f_second(p, rho) for w, c in zip(self.weights, self.components))

    def _wright_params(self):
        """(a, c) if psi = a KL + c sum (p - rho)^2 / rho, else None."""
        a = c = 0.0
        for w, comp in zip(self.weights, self.components):
            if type(comp) in (KLRegularizer, ShannonRegularizer):
                a += w
            elif type(comp) in (Chi2Regularizer, Chi2HalfRegularizer):
                c += w * comp._scale
            else:
                return None
        return (a, c) if a > 0 and c > 0 else None

    def f_prime_inverse(self, u, rho):  # noqa: D102
        params = self._wright_params()
        if params is None:
            return _generic_inverse(self, u, rho)
        # a (log x + 1) + 2 c (x - 1) = u with x = p / rho; y = (2c/a) x solves
        # y + log y = (u - a + 2c)/a + log(2c/a), i.e. y = wrightomega(.)
        a, c = params
        z = (u - a + 2.0 * c) / a + math.log(2.0 * c / a)
        y = np.real(special.wrightomega(z))
        return np.minimum(rho * y * a / (2.0 * c), 1.0)

    def beta(self, K: int) -> float:  # noqa: D102
        check_scalar(K, "K", numbers.Integral, min_val=2)
        return 1.0 / sum(w / c.beta(K) for w, c in zip(self.weights, self.components))


def sum_of(*regularizers: SeparableRegularizer, weights=None, reference=None,
           label: str | None = None) -> SumRegularizer:
    """Compose regularizers as psi = sum_k w_k psi_k; KL + chi^2 is ``sum_of(kl, chi2)``.

    Args:
        *regularizers: Separable regularizers (objects or registry names).
        weights: Positive weights, one per regularizer (default all 1).
        reference: Common reference policy (default: the first one set on a component).
        label: Registry-style name of the sum (default ``"kl+chi2"``-style).

    Returns:
        The sum, a :class:`SeparableRegularizer` with beta = 1 / sum_k (w_k / beta_k).

    Raises:
        TypeError: If a component is not separable.
        ValueError: If weights are not positive or their count differs.
    """
    comps = tuple(get_regularizer(r) if isinstance(r, str) else r for r in regularizers)
    return SumRegularizer(reference=reference, components=comps,
                          weights=tuple(weights) if weights is not None else (), label=label)


# ---------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------

def _kl_plus_chi2(reference=None) -> SumRegularizer:
    return sum_of(KLRegularizer(), Chi2Regularizer(), reference=reference, label="kl_plus_chi2")


def _tsallis_half(reference=None) -> TsallisRegularizer:
    return TsallisRegularizer(q=0.5, reference=reference)


_REGISTRY: dict[str, Callable[..., Regularizer]] = {
    "kl": KLRegularizer,
    "shannon": ShannonRegularizer,
    "l2": L2Regularizer,
    "chi2_half": Chi2HalfRegularizer,
    "chi2": Chi2Regularizer,
    "tsallis": TsallisRegularizer,
    "tsallis_half": _tsallis_half,
    "kl_plus_chi2": _kl_plus_chi2,
}

REGULARIZER_NAMES = tuple(_REGISTRY)


def register_regularizer(name: str, factory: Callable[..., Regularizer], *,
                         overwrite: bool = False) -> None:
    """Add a regularizer factory to the registry used by :func:`get_regularizer`.

    Args:
        name: Registry name (a non-empty string).
        factory: Callable ``factory(reference=None, **params)`` returning a Regularizer
            (a Regularizer subclass works).
        overwrite: Allow replacing an existing name.

    Raises:
        TypeError: If ``name`` is not a string or ``factory`` is not callable.
        ValueError: If the name exists and ``overwrite`` is False.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, not {name!r}.")
    if not callable(factory):
        raise TypeError(f"factory must be callable, not {type(factory).__name__}.")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"name == {name!r} is already registered (pass overwrite=True).")
    _REGISTRY[name] = factory


def get_regularizer(name: str | Regularizer, **params) -> Regularizer:
    """Build a regularizer by name.

    Args:
        name: One of ``kl``, ``shannon``, ``l2``, ``chi2_half``, ``chi2``, ``tsallis``
            (parameter ``q``), ``tsallis_half``, ``kl_plus_chi2`` or a registered name; a
            Regularizer instance is returned as is (with ``reference`` replaced if given).
        **params: ``reference=`` a reference policy of shape (K,) or (..., K) (None: uniform)
            and regularizer parameters such as ``q``.

    Returns:
        The regularizer.

    Raises:
        ValueError: If the name is unknown (the message lists the valid names) or a
            parameter is out of range.
    """
    if isinstance(name, Regularizer):
        if set(params) - {"reference"}:
            raise TypeError(f"unexpected parameters for a Regularizer instance: {sorted(params)}.")
        return name.with_reference(params["reference"]) if "reference" in params else name
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(
            f"regularizer == {name!r}, must be one of {tuple(sorted(_REGISTRY))}."
        )
    return _REGISTRY[name](**params)


def _probe_user_regularizer(reg: Regularizer, K: int) -> None:
    """Evaluate a user-written regularizer's value and gradient once inside the simplex.

    Regularizers defined outside ``rlhf_gbpm`` (e.g. a ``SeparableRegularizer`` subclass) are
    called at one interior point before a solver or a check uses them, so that an exception or
    a NaN in user code surfaces as a :class:`~rlhf_gbpm.errors.RegularizerError` naming the
    regularizer, instead of a trace from inside a solver or a silently wrong equilibrium. The
    package's own classes (built-ins and the wrapped ``custom_regularizers``) are skipped.

    Args:
        reg: The regularizer.
        K: Number of actions, >= 2.

    Raises:
        RegularizerError: If the value or the gradient raises or contains NaN.
    """
    if type(reg).__module__.startswith("rlhf_gbpm."):
        return
    from rlhf_gbpm.errors import RegularizerError

    label = getattr(reg, "name", None) or type(reg).__name__
    p = np.linspace(1.0, 2.0, K)
    p /= p.sum()  # interior and not symmetric
    where = f"at p = {np.array2string(p, precision=4)}"
    for what, fn in (("value", reg.value), ("gradient", reg.grad)):
        try:
            with np.errstate(all="ignore"):
                out = np.asarray(fn(p), dtype=float)
        except RegularizerError:
            raise
        except Exception as err:  # noqa: BLE001 - user code: report it with its name
            raise RegularizerError(
                f"regularizer {label!r} raised {type(err).__name__} in its {what} {where}: {err}"
            ) from err
        if np.any(np.isnan(out)):
            raise RegularizerError(f"regularizer {label!r} returned NaN in its {what} {where}.")


def _as_regularizer(regularizer) -> Regularizer:
    if isinstance(regularizer, Regularizer):
        return regularizer
    if isinstance(regularizer, str):
        return get_regularizer(regularizer)
    raise TypeError(
        f"regularizer must be a name or a Regularizer, not {type(regularizer).__name__}."
    )
