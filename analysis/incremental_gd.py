"""Incremental gradient descent with few epochs on ill-conditioned problems.

Study of Kim, Cha & Yun (ICML 2025): with K epochs and K below the condition number kappa,
incremental gradient descent (IGD, a fixed visiting order) is much slower than random reshuffling
(RR) and than with-replacement SGD. The study runs the three algorithms on the project's
reconstructed hard instances (separable quadratics, spec ``incremental_gd.md`` section 2.4):

* instance A (identical Hessian, 3-D): IGD's best gap is about G^2/(mu K), n times above SGD's
  G^2/(mu n K);
* instance B (half convex, half concave components): IGD's best gap blows up like
  (G^2/L)(1 + L/(2 mu n K))^n while RR converges; in the large-epoch regime IGD recovers a 1/K^2
  rate.

Every algorithm is run on a log grid of constant step sizes and the best last-iterate optimality
gap is reported (the "for any step size" reading of a lower bound). The analytic Table-1 bounds of
the paper are evaluated as well (constants set to one) for the Figure-1 analogue.

References:
    Kim, Cha, Yun. "Incremental Gradient Descent with Small Epoch Counts is Surprisingly Slow on
    Ill-Conditioned Problems". ICML 2025, arXiv:2506.04126.
"""

from __future__ import annotations

import logging
import math
import numbers
from dataclasses import dataclass

import numpy as np

from rlhf_gbpm._validation import as_generator, check_array, check_scalar
from rlhf_gbpm.analysis._framework import (
    Claim,
    check_finite_fields,
    fit_loglog_slope,
    plotting_modules,
    study_config,
)

__all__ = [
    "NAME",
    "DESCRIPTION",
    "REFERENCE",
    "Config",
    "Result",
    "SeparableQuadratics",
    "DenseQuadratics",
    "identical_hessian_instance",
    "nonconvex_instance",
    "rotating_instance",
    "igd_gap",
    "rr_gap",
    "sgd_gap_exact",
    "theory_bounds",
    "run",
    "plot",
    "claims",
]

logger = logging.getLogger(__name__)

NAME = "incremental_gd"
DESCRIPTION = (
    "IGD vs random reshuffling vs with-replacement SGD on ill-conditioned finite sums with few "
    "epochs: best-step-size gaps, rates and the paper's Table-1 bounds."
)
REFERENCE = (
    "Kim, Cha, Yun. Incremental Gradient Descent with Small Epoch Counts is Surprisingly Slow on "
    "Ill-Conditioned Problems. ICML 2025, arXiv:2506.04126."
)


# --------------------------------------------------------------------------------------------
# instances
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeparableQuadratics:
    """A finite sum of separable quadratics f_i(x) = sum_j (h_ij/2) x_j^2 + b_ij x_j.

    Attributes:
        h: Per-component curvatures, shape (n, d); may be negative (concave components).
        b: Per-component linear terms, shape (n, d); the gradient of f_i at 0.
        x0: Starting point, shape (d,).
    """

    h: np.ndarray
    b: np.ndarray
    x0: np.ndarray

    @property
    def n(self) -> int:
        """Number of components."""
        return int(self.h.shape[0])

    @property
    def hessian(self) -> np.ndarray:
        """Diagonal Hessian of the average F, shape (d,); must be positive."""
        return self.h.mean(axis=0)

    @property
    def x_star(self) -> np.ndarray:
        """Minimizer of F, shape (d,)."""
        return -self.b.mean(axis=0) / self.hessian

    def gap(self, x: np.ndarray) -> np.ndarray:
        """Optimality gap F(x) - F(x*).

        Args:
            x: Points, shape (..., d).

        Returns:
            Gaps, shape (...); +inf where x is not finite.
        """
        with np.errstate(over="ignore", invalid="ignore"):
            val = 0.5 * np.sum(self.hessian * (x - self.x_star) ** 2, axis=-1)
        return np.where(np.isfinite(val), val, np.inf)

    def gap_from_moments(self, m1: np.ndarray, m2: np.ndarray) -> np.ndarray:
        """Expected gap from per-coordinate first and second moments.

        Args:
            m1: E[x_j], shape (..., d).
            m2: E[x_j^2], shape (..., d).

        Returns:
            E[F(x) - F*], shape (...); +inf where not finite.
        """
        xs = self.x_star
        with np.errstate(over="ignore", invalid="ignore"):
            sq = m2 - 2.0 * xs * m1 + xs**2
            val = 0.5 * np.sum(self.hessian * sq, axis=-1)
        return np.where(np.isfinite(val), val, np.inf)


def identical_hessian_instance(
    n: int, mu: float, L: float, G: float, K: int
) -> SeparableQuadratics:
    """Instance A: three coordinates with curvatures (mu, min(mu K, L), L), shared by all f_i.

    Components differ only by a linear term +-G on the middle coordinate (the first half +G, the
    second half -G), so x* = 0 and ||grad f_i(x*)|| = G. The start (G/mu, 0, G/L) makes tiny step
    sizes pay on the mu-coordinate and large ones diverge on the L-coordinate.

    Args:
        n: Number of components (even).
        mu: Strong convexity, > 0.
        L: Smoothness, > mu.
        G: Gradient noise at the optimum, > 0.
        K: Number of epochs the instance is built for (the middle curvature is mu K).

    Returns:
        The instance, d = 3.
    """
    lam = min(mu * K, L)
    h = np.tile(np.array([mu, lam, L]), (n, 1))
    sign = np.where(np.arange(n) < n // 2, 1.0, -1.0)
    b = np.zeros((n, 3))
    b[:, 1] = G * sign
    return SeparableQuadratics(h=h, b=b, x0=np.array([G / mu, 0.0, G / L]))


def nonconvex_instance(n: int, L: float, G: float) -> SeparableQuadratics:
    """Instance B: half the components convex (L/2) x^2 - G x, half concave -(L/4) x^2 + G x.

    The average is F(x) = (L/8) x^2 with x* = 0. Step sizes must be restricted to the admissible
    range [1/(mu n K), 1/L], which stands in for a slow noise-free mu-coordinate.

    Args:
        n: Number of components (even).
        L: Smoothness, > 0.
        G: Gradient size at the optimum, > 0.

    Returns:
        The instance, d = 1, started at x0 = 0.
    """
    first = np.arange(n) < n // 2
    h = np.where(first, L, -L / 2.0)[:, None]
    b = np.where(first, -G, G)[:, None]
    return SeparableQuadratics(h=h.astype(float), b=b.astype(float), x0=np.zeros(1))


@dataclass(frozen=True)
class DenseQuadratics:
    """A finite sum of quadratics f_i(x) = 1/2 (x - c_i)^T A_i (x - c_i) (Hessians may differ).

    Attributes:
        A: Symmetric component Hessians, shape (n, d, d).
        c: Component minimizers, shape (n, d).
        x0: Starting point, shape (d,).
    """

    A: np.ndarray
    c: np.ndarray
    x0: np.ndarray

    @property
    def n(self) -> int:
        """Number of components."""
        return int(self.A.shape[0])

    @property
    def hessian(self) -> np.ndarray:
        """Hessian of the average F, shape (d, d); must be positive definite."""
        return self.A.mean(axis=0)

    @property
    def x_star(self) -> np.ndarray:
        """Minimizer of F, shape (d,)."""
        return np.linalg.solve(self.hessian, np.einsum("nij,nj->i", self.A, self.c) / self.n)

    def gap(self, x: np.ndarray) -> np.ndarray:
        """Optimality gap F(x) - F(x*), x shape (..., d) -> (...); +inf where not finite."""
        dx = x - self.x_star
        with np.errstate(over="ignore", invalid="ignore"):
            val = 0.5 * np.einsum("...i,ij,...j->...", dx, self.hessian, dx)
        return np.where(np.isfinite(val), val, np.inf)


def rotating_instance(n: int, mu: float, L: float, G: float) -> DenseQuadratics:
    """Instance C: 2-D components whose curvature directions rotate around a regular n-gon.

    With theta_i = 2 pi i/n, u_i = (cos, sin), v_i = (-sin, cos):
    A_i = mu u_i u_i^T + L v_i v_i^T and c_i = (G/mu) u_i, so x* = 0, the average Hessian is
    (L + mu)/2 I and ||grad f_i(x*)|| = G. Started at x* = 0. Illustrative only (spec
    incremental_gd.md, instance C): it shows a K-independent IGD plateau, not the paper's
    L G^2/mu^2 magnitude.

    Args:
        n: Number of components, >= 3.
        mu: Curvature along the radial direction, > 0.
        L: Curvature along the tangential direction, > mu.
        G: Gradient size at the optimum.

    Returns:
        The instance, d = 2.
    """
    theta = 2.0 * np.pi * np.arange(1, n + 1) / n
    u = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    v = np.stack([-np.sin(theta), np.cos(theta)], axis=1)
    A = mu * u[:, :, None] * u[:, None, :] + L * v[:, :, None] * v[:, None, :]
    return DenseQuadratics(A=A, c=(G / mu) * u, x0=np.zeros(2))


def _dense_igd_gap(inst: DenseQuadratics, eta: np.ndarray, K: int) -> np.ndarray:
    """IGD on dense quadratics: compose the epoch's affine maps, then iterate K times."""
    d = inst.c.shape[1]
    P = np.broadcast_to(np.eye(d), (eta.size, d, d)).copy()
    q = np.zeros((eta.size, d))
    with np.errstate(over="ignore", invalid="ignore"):
        for i in range(inst.n):
            M = np.eye(d) - eta[:, None, None] * inst.A[i]
            P = M @ P
            q = np.einsum("eij,ej->ei", M, q) + eta[:, None] * (inst.A[i] @ inst.c[i])
        x = np.broadcast_to(inst.x0, (eta.size, d)).copy()
        for _ in range(K):
            x = np.einsum("eij,ej->ei", P, x) + q
    return inst.gap(x)


def _dense_rr_gap(inst: DenseQuadratics, eta: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """RR on dense quadratics with given permutations (R, K, n): mean gap over runs, (E,)."""
    R, K, n = perms.shape
    x = np.broadcast_to(inst.x0, (R, eta.size, inst.c.shape[1])).copy()
    e = eta[None, :, None]
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(K):
            for i in range(n):
                idx = perms[:, k, i]
                grad = np.einsum("rij,rej->rei", inst.A[idx], x - inst.c[idx][:, None, :])
                x = x - e * grad
    return inst.gap(x).mean(axis=0)


# --------------------------------------------------------------------------------------------
# algorithms (vectorised over a step-size grid)
# --------------------------------------------------------------------------------------------


def _epoch_map(inst: SeparableQuadratics, eta: np.ndarray, order: np.ndarray):
    """Affine map x -> a x + c of one pass over the components in ``order``.

    Args:
        inst: The instance.
        eta: Step sizes, shape (E,).
        order: Component indices, shape (n,).

    Returns:
        (a, c), each of shape (E, d).
    """
    e = eta[:, None]
    a = np.ones((eta.size, inst.h.shape[1]))
    c = np.zeros_like(a)
    with np.errstate(over="ignore", invalid="ignore"):
        for i in order:
            q = 1.0 - e * inst.h[i]
            a = q * a
            c = q * c - e * inst.b[i]
    return a, c


def _iterate_affine(a: np.ndarray, c: np.ndarray, x0: np.ndarray, K: int) -> np.ndarray:
    """Apply x -> a x + c K times (closed form), shape-broadcast."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        aK = a**K
        near_one = np.abs(1.0 - a) < 1e-12
        geo = np.where(near_one, float(K), (1.0 - aK) / np.where(near_one, 1.0, 1.0 - a))
        return aK * x0 + c * geo


def igd_gap(inst: SeparableQuadratics | DenseQuadratics, eta: np.ndarray,
            K: int) -> np.ndarray:
    """Last-iterate gap of incremental gradient descent (identity order) after K epochs.

    Args:
        inst: The instance (separable or dense quadratics).
        eta: Constant step sizes, shape (E,).
        K: Number of epochs, >= 1.

    Returns:
        F(x_n^K) - F*, shape (E,); +inf on divergence.
    """
    eta = np.asarray(eta, dtype=float)
    if isinstance(inst, DenseQuadratics):
        return _dense_igd_gap(inst, eta, K)
    a, c = _epoch_map(inst, eta, np.arange(inst.n))
    return inst.gap(_iterate_affine(a, c, inst.x0, K))


def rr_gap(inst: SeparableQuadratics | DenseQuadratics, eta: np.ndarray, K: int, *,
           runs: int = 10, seed=None, perms: np.ndarray | None = None) -> np.ndarray:
    """Mean last-iterate gap of random reshuffling (a fresh permutation each epoch).

    Args:
        inst: The instance (separable or dense quadratics).
        eta: Constant step sizes, shape (E,).
        K: Number of epochs, >= 1.
        runs: Number of independent permutation sequences averaged, >= 1.
        seed: Seed for the permutations.
        perms: Optional fixed permutations, shape (runs, K, n) (overrides ``runs``/``seed``).

    Returns:
        Mean gap over runs, shape (E,); +inf where any run diverged.
    """
    eta = np.asarray(eta, dtype=float)
    n = inst.n
    if perms is None:
        rng = as_generator(seed)
        perms = np.argsort(rng.random((runs, K, n)), axis=-1)  # (R, K, n)
    else:
        perms = check_array(perms, "perms", shape=(None, K, n), dtype=np.int64)
        runs = perms.shape[0]
    if isinstance(inst, DenseQuadratics):
        return _dense_rr_gap(inst, eta, perms)
    d = inst.h.shape[1]
    shared = bool(np.all(inst.h == inst.h[:1]))
    x = np.broadcast_to(inst.x0, (runs, eta.size, d)).copy()
    e = eta[None, :, None]
    with np.errstate(over="ignore", invalid="ignore"):
        if shared:
            # Common curvature per coordinate: one epoch is x -> q^n x + sum_p -eta b_sigma(p)
            # q^(n-1-p), computed for every run and epoch at once.
            q = 1.0 - eta[:, None] * inst.h[0]  # (E, d)
            powers = q[:, None, :] ** np.arange(n - 1, -1, -1)[None, :, None]  # (E, n, d)
            b_perm = inst.b[perms]  # (R, K, n, d)
            c_all = -np.einsum("rkpd,epd->rked", b_perm, powers) * eta[None, None, :, None]
            a = q**n
            for k in range(K):
                x = a * x + c_all[:, k]
        else:
            for k in range(K):
                for i in range(n):
                    idx = perms[:, k, i]
                    x = x * (1.0 - e * inst.h[idx][:, None, :]) - e * inst.b[idx][:, None, :]
    gaps = inst.gap(x)  # (R, E)
    return gaps.mean(axis=0)


def _matpow(M: np.ndarray, p: int) -> np.ndarray:
    """Batched matrix power by repeated squaring, M shape (..., m, m)."""
    out = np.broadcast_to(np.eye(M.shape[-1]), M.shape).copy()
    base = M.copy()
    with np.errstate(over="ignore", invalid="ignore"):
        while p > 0:
            if p & 1:
                out = out @ base
            base = base @ base
            p >>= 1
    return out


def sgd_gap_exact(inst: SeparableQuadratics, eta: np.ndarray, K: int) -> np.ndarray:
    """Exact expected gap of with-replacement SGD after n K uniformly sampled steps.

    Separable quadratics keep per-coordinate moments closed: with a = 1 - eta h_i and b_i the
    sampled component, E[x'] = E[a] E[x] - eta E[b] and
    E[x'^2] = E[a^2] E[x^2] - 2 eta E[a b] E[x] + eta^2 E[b^2].

    Args:
        inst: The instance.
        eta: Constant step sizes, shape (E,).
        K: Number of epochs (n K steps).

    Returns:
        E[F(x_T)] - F*, shape (E,); +inf on divergence.
    """
    eta = np.asarray(eta, dtype=float)
    e = eta[:, None]  # (E, 1)
    a = 1.0 - e[:, None, :] * inst.h[None]  # (E, n, d)
    b = inst.b[None]
    Ea, Ea2 = a.mean(axis=1), (a**2).mean(axis=1)  # (E, d)
    Eab = (a * b).mean(axis=1)
    Eb, Eb2 = np.broadcast_to(inst.b.mean(axis=0), Ea.shape), np.broadcast_to(
        (inst.b**2).mean(axis=0), Ea.shape
    )
    M = np.zeros(Ea.shape + (3, 3))
    M[..., 0, 0] = Ea
    M[..., 0, 2] = -e * Eb
    M[..., 1, 0] = -2.0 * e * Eab
    M[..., 1, 1] = Ea2
    M[..., 1, 2] = e**2 * Eb2
    M[..., 2, 2] = 1.0
    P = _matpow(M, inst.n * K)
    s0 = np.stack([inst.x0, inst.x0**2, np.ones_like(inst.x0)], axis=-1)  # (d, 3)
    with np.errstate(over="ignore", invalid="ignore"):
        s = np.einsum("edij,dj->edi", P, s0)
    return inst.gap_from_moments(s[..., 0], s[..., 1])


# --------------------------------------------------------------------------------------------
# analytic bounds (Table 1 with constants set to one)
# --------------------------------------------------------------------------------------------


def theory_bounds(K, *, n: int, mu: float, L: float, G: float) -> dict[str, np.ndarray]:
    """The paper's Table-1 bounds with all constants set to one.

    Args:
        K: Epoch counts, shape (m,).
        n: Number of components.
        mu: Strong convexity.
        L: Smoothness.
        G: Gradient scale (G = G_* for the instances here).

    Returns:
        Dict of arrays of shape (m,): ``ih_lb``/``ih_ub`` (identical Hessian, small epoch),
        ``sc_lb`` (strongly convex components), ``sc_ub`` (L^2 G^2/(mu^3 K^2), any permutation),
        ``nc_lb`` (nonconvex components), ``sgd_ub`` (with replacement), ``le_convex`` and
        ``le_nonconvex`` (large-epoch rates).
    """
    K = np.asarray(K, dtype=float)
    kappa = L / mu
    with np.errstate(over="ignore"):
        nc = (G**2 / L) * np.exp(n * np.log1p(L / (2.0 * mu * n * K)))
    return {
        "ih_lb": G**2 / (mu * K),
        "ih_ub": G**2 / (mu * K),
        "sc_lb": (L * G**2 / mu**2) * np.minimum(1.0, kappa**2 / K**4),
        "sc_ub": L**2 * G**2 / (mu**3 * K**2),
        "nc_lb": nc,
        "sgd_ub": G**2 / (mu * n * K),
        "le_convex": L * G**2 / (mu**2 * K**2),
        "le_nonconvex": L**2 * G**2 / (mu**3 * K**2),
    }


# --------------------------------------------------------------------------------------------
# config / result
# --------------------------------------------------------------------------------------------


def _check_int_tuple(value, name: str, min_val: int) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or len(value) == 0:
        raise TypeError(f"{name} must be a non-empty tuple of ints, got {value!r}.")
    for v in value:
        check_scalar(v, name, numbers.Integral, min_val=min_val)
    return tuple(int(v) for v in value)


@dataclass(frozen=True)
class Config:
    """Configuration of the incremental-gradient study (defaults: spec P1 and P2)."""

    n: int = 100
    """Number of components of instance A (even)."""
    mu: float = 1.0
    """Strong convexity mu (both instances)."""
    L: float = 1000.0
    """Smoothness L of instance A; kappa = L/mu."""
    G: float = 1.0
    """Size of the component gradients at the optimum."""
    K_list: tuple = (20, 40, 80, 160, 320, 640)
    """Epoch counts for instance A (small-epoch regime: K <= kappa)."""
    n_eta: int = 300
    """Log-spaced step sizes in [eta_min, 2.2/L] for instance A."""
    eta_min: float = 1e-7
    """Smallest step size of instance A's grid."""
    n_b: int = 40
    """Number of components of instance B (even)."""
    L_b: float = 1000.0
    """Smoothness of instance B (kappa_b = L_b/mu)."""
    K_list_b: tuple = (32, 64, 128)
    """Small-epoch counts for instance B."""
    n_large_b: int = 20
    """Number of components of the large-epoch run of instance B."""
    L_large_b: float = 200.0
    """Smoothness of the large-epoch run of instance B."""
    K_list_large_b: tuple = (1024, 2048, 4096)
    """Large-epoch counts (>= 4 kappa) for instance B."""
    n_eta_b: int = 40
    """Log-spaced admissible step sizes in [1/(mu n K), 1/L] for instance B."""
    rotating: bool = True
    """Also run the illustrative rotating-Hessian instance C."""
    n_c: int = 50
    """Number of components of instance C."""
    L_c: float = 1e4
    """Smoothness of instance C (kappa_c = L_c/mu)."""
    K_list_c: tuple = (5, 10, 20, 50, 100)
    """Epoch counts for instance C."""
    n_eta_c: int = 20
    """Log-spaced step sizes in [min(1/(mu n K), 1/L), 1/L] for instance C."""
    rr_runs: int = 10
    """Permutation sequences averaged for random reshuffling."""
    seed: int = 0
    """Seed of the permutations."""
    figure_n: int = 100
    """n of the analytic Figure-1 panel."""
    figure_kappa: float = 1e4
    """kappa of the analytic Figure-1 panel."""

    def __post_init__(self):
        for name in ("n", "n_b", "n_large_b"):
            check_scalar(getattr(self, name), name, numbers.Integral, min_val=2)
            if getattr(self, name) % 2:
                raise ValueError(f"{name} == {getattr(self, name)}, must be even.")
        for name in ("mu", "L", "G", "L_b", "L_large_b", "eta_min", "figure_kappa"):
            check_scalar(getattr(self, name), name, numbers.Real, min_val=0.0,
                         include_boundaries="neither")
        for name in ("L", "L_b", "L_large_b"):
            if getattr(self, name) <= self.mu:
                raise ValueError(f"{name} == {getattr(self, name)!r}, must be > mu == {self.mu}.")
        if not isinstance(self.rotating, bool):
            raise TypeError(f"rotating must be a bool, not {type(self.rotating).__name__}.")
        check_scalar(self.n_c, "n_c", numbers.Integral, min_val=3)
        check_scalar(self.L_c, "L_c", numbers.Real, min_val=self.mu, include_boundaries="neither")
        for name in ("n_eta", "n_eta_b", "n_eta_c"):
            check_scalar(getattr(self, name), name, numbers.Integral, min_val=2)
        check_scalar(self.rr_runs, "rr_runs", numbers.Integral, min_val=1)
        check_scalar(self.seed, "seed", numbers.Integral, min_val=0)
        check_scalar(self.figure_n, "figure_n", numbers.Integral, min_val=1)
        if self.eta_min >= 2.2 / self.L:
            raise ValueError(f"eta_min == {self.eta_min!r}, must be < 2.2/L == {2.2 / self.L}.")
        for name in ("K_list", "K_list_b", "K_list_large_b", "K_list_c"):
            object.__setattr__(self, name, _check_int_tuple(getattr(self, name), name, 1))
        if max(self.K_list) > self.kappa:
            raise ValueError(
                f"K_list max == {max(self.K_list)}, must be <= kappa == {self.kappa} "
                "(instance A is a small-epoch construction)."
            )
        kmin_b = self.kappa_b / self.n_b
        if min(self.K_list_b) < kmin_b:
            raise ValueError(
                f"K_list_b min == {min(self.K_list_b)}, must be >= kappa_b/n_b == {kmin_b} "
                "(below it the admissible step-size range [1/(mu n K), 1/L] is empty)."
            )
        check_finite_fields(self)

    @property
    def kappa(self) -> float:
        """Condition number of instance A."""
        return self.L / self.mu

    @property
    def kappa_b(self) -> float:
        """Condition number of instance B (small-epoch runs)."""
        return self.L_b / self.mu

    @property
    def kappa_large_b(self) -> float:
        """Condition number of instance B (large-epoch runs)."""
        return self.L_large_b / self.mu

    @property
    def eta_grid_a(self) -> np.ndarray:
        """Step sizes of instance A, shape (n_eta,)."""
        return np.geomspace(self.eta_min, 2.2 / self.L, self.n_eta)

    def eta_grid_c(self, K: int) -> np.ndarray:
        """Distinct step sizes in [min(1/(mu n_c K), 1/L_c), 1/L_c] of instance C (<= n_eta_c).

        For K < L_c/(mu n_c) the range collapses to the single step size 1/L_c.
        """
        lo = min(1.0 / (self.mu * self.n_c * K), 1.0 / self.L_c)
        return np.unique(np.geomspace(lo, 1.0 / self.L_c, self.n_eta_c))

    def eta_grid_b(self, n: int, L: float, K: int) -> np.ndarray:
        """Admissible step sizes [1/(mu n K), 1/L] of instance B, shape (n_eta_b,)."""
        return np.geomspace(1.0 / (self.mu * n * K), 1.0 / L, self.n_eta_b)


@dataclass
class Result:
    """Gaps over step-size grids and their minima.

    Attributes:
        config: The config.
        eta_a: Step-size grid of instance A, shape (n_eta,).
        gap_a: Per algorithm ("igd", "rr", "sgd"), gaps of shape (len(K_list), n_eta).
        best_a: Per algorithm, min over eta, shape (len(K_list),).
        eta_b: Per K of instance B, the admissible grid, shape (len(K_list_b), n_eta_b).
        gap_b: Per algorithm, gaps of shape (len(K_list_b), n_eta_b).
        best_b: Per algorithm, min over eta, shape (len(K_list_b),).
        argmin_eta_b: IGD's best step size per K, shape (len(K_list_b),).
        pred_b: (G^2/L)(1 + L/(2 mu n K))^n per K, shape (len(K_list_b),).
        best_large_b: IGD's best gap on the large-epoch run, shape (len(K_list_large_b),).
        best_c: Instance C ("igd", "rr"), min over eta, shape (len(K_list_c),); empty
            arrays when ``rotating`` is False.
        figure_K: K grid of the analytic panel, shape (m,).
        figure_bounds: The Table-1 formulas on figure_K (see :func:`theory_bounds`).
    """

    config: Config
    eta_a: np.ndarray
    gap_a: dict[str, np.ndarray]
    best_a: dict[str, np.ndarray]
    eta_b: np.ndarray
    gap_b: dict[str, np.ndarray]
    best_b: dict[str, np.ndarray]
    argmin_eta_b: np.ndarray
    pred_b: np.ndarray
    best_large_b: np.ndarray
    best_c: dict[str, np.ndarray]
    figure_K: np.ndarray
    figure_bounds: dict[str, np.ndarray]


ALGORITHMS = ("igd", "rr", "sgd")


def run(config: Config | None = None) -> Result:
    """Run IGD, RR and SGD on instances A and B over their step-size grids.

    Args:
        config: The study config (defaults if None).

    Returns:
        The :class:`Result`.
    """
    cfg = study_config(config, Config)
    rng = as_generator(cfg.seed)
    eta_a = cfg.eta_grid_a
    gap_a = {a: np.empty((len(cfg.K_list), eta_a.size)) for a in ALGORITHMS}
    for row, K in enumerate(cfg.K_list):
        inst = identical_hessian_instance(cfg.n, cfg.mu, cfg.L, cfg.G, K)
        gap_a["igd"][row] = igd_gap(inst, eta_a, K)
        gap_a["rr"][row] = rr_gap(inst, eta_a, K, runs=cfg.rr_runs, seed=rng)
        gap_a["sgd"][row] = sgd_gap_exact(inst, eta_a, K)
    best_a = {a: g.min(axis=1) for a, g in gap_a.items()}

    inst_b = nonconvex_instance(cfg.n_b, cfg.L_b, cfg.G)
    eta_b = np.stack([cfg.eta_grid_b(cfg.n_b, cfg.L_b, K) for K in cfg.K_list_b])
    gap_b = {a: np.empty_like(eta_b) for a in ALGORITHMS}
    for row, K in enumerate(cfg.K_list_b):
        gap_b["igd"][row] = igd_gap(inst_b, eta_b[row], K)
        gap_b["rr"][row] = rr_gap(inst_b, eta_b[row], K, runs=cfg.rr_runs, seed=rng)
        gap_b["sgd"][row] = sgd_gap_exact(inst_b, eta_b[row], K)
    best_b = {a: g.min(axis=1) for a, g in gap_b.items()}
    argmin_eta_b = eta_b[np.arange(len(cfg.K_list_b)), gap_b["igd"].argmin(axis=1)]
    pred_b = theory_bounds(cfg.K_list_b, n=cfg.n_b, mu=cfg.mu, L=cfg.L_b, G=cfg.G)["nc_lb"]

    inst_large = nonconvex_instance(cfg.n_large_b, cfg.L_large_b, cfg.G)
    best_large = np.array([
        igd_gap(inst_large, cfg.eta_grid_b(cfg.n_large_b, cfg.L_large_b, K), K).min()
        for K in cfg.K_list_large_b
    ])

    best_c = {"igd": np.empty(0), "rr": np.empty(0)}
    if cfg.rotating:
        inst_c = rotating_instance(cfg.n_c, cfg.mu, cfg.L_c, cfg.G)
        best_c = {
            "igd": np.array([igd_gap(inst_c, cfg.eta_grid_c(K), K).min()
                             for K in cfg.K_list_c]),
            "rr": np.array([rr_gap(inst_c, cfg.eta_grid_c(K), K, runs=cfg.rr_runs,
                                   seed=rng).min() for K in cfg.K_list_c]),
        }

    fig_K = np.geomspace(1.0, 1e6, 400)
    fig_bounds = theory_bounds(fig_K, n=cfg.figure_n, mu=1.0, L=cfg.figure_kappa, G=1.0)
    logger.info("incremental_gd: best IGD gaps A %s, B %s", best_a["igd"], best_b["igd"])
    return Result(
        config=cfg, eta_a=eta_a, gap_a=gap_a, best_a=best_a, eta_b=eta_b, gap_b=gap_b,
        best_b=best_b, argmin_eta_b=argmin_eta_b, pred_b=pred_b, best_large_b=best_large,
        best_c=best_c,
        figure_K=fig_K, figure_bounds=fig_bounds,
    )


# --------------------------------------------------------------------------------------------
# claims
# --------------------------------------------------------------------------------------------


def _figure1_checks(K: np.ndarray, bounds: dict[str, np.ndarray], n: int, kappa: float):
    """Properties of the analytic Table-1 curves (spec P5)."""
    ratio = np.abs(np.log(bounds["sc_lb"] / bounds["sc_ub"]))
    k_cross = float(K[np.argmin(ratio)])
    small = K <= kappa / 40
    nc_above = bool(np.all(bounds["nc_lb"][small] >= bounds["sc_lb"][small]))
    mid = (K >= kappa / n) & (K <= kappa)
    lbs = np.minimum.reduce([bounds["ih_lb"][mid], bounds["sc_lb"][mid], bounds["nc_lb"][mid]])
    sgd_below = bool(np.all(bounds["sgd_ub"][mid] < lbs))
    return k_cross, nc_above, sgd_below


def claims(result: Result) -> list[Claim]:
    """The paper's predictions evaluated on the run (spec P1, P2, P5).

    Args:
        result: Output of :func:`run`.

    Returns:
        The claims.
    """
    cfg = result.config
    K = np.asarray(cfg.K_list, dtype=float)
    out: list[Claim] = []
    in_regime = (K >= 20) & (K <= cfg.kappa / 2)
    scaled = K * cfg.mu * result.best_a["igd"] / cfg.G**2
    sel = scaled[in_regime]
    out.append(Claim(
        "igd_gap_one_over_K",
        "IGD best gap K mu gap/G^2 in [0.1, 0.6] for 20 <= K <= kappa/2 (instance A)",
        f"{np.array2string(sel, precision=3)}",
        sel.size > 0 and bool(np.all((sel >= 0.1) & (sel <= 0.6))),
    ))
    slope = fit_loglog_slope(K, result.best_a["igd"])
    out.append(Claim(
        "igd_slope_in_K",
        "log-log slope of IGD best gap vs K in [-1.05, -0.75]",
        slope,
        -1.05 <= slope <= -0.75,
    ))
    sgd_scaled = cfg.n * K * cfg.mu * result.best_a["sgd"] / cfg.G**2
    out.append(Claim(
        "sgd_gap_one_over_nK",
        "with-replacement SGD best gap n K mu gap/G^2 in [1, 2.5]",
        np.array2string(sgd_scaled, precision=3),
        bool(np.all((sgd_scaled >= 1.0) & (sgd_scaled <= 2.5))),
    ))
    ratio_a = result.best_a["igd"] / result.best_a["sgd"]
    out.append(Claim(
        "igd_n_times_slower_than_sgd",
        f"IGD/SGD best-gap ratio >= n/10 = {cfg.n / 10:g} for every K",
        np.array2string(ratio_a, precision=3),
        bool(np.all(ratio_a >= cfg.n / 10)),
    ))
    Kb = np.asarray(cfg.K_list_b, dtype=float)
    ratio_pred = result.best_b["igd"] / result.pred_b
    window = (Kb >= cfg.kappa_b / (2 * cfg.n_b)) & (Kb <= cfg.kappa_b / 8)
    sel_b = ratio_pred[window]
    out.append(Claim(
        "igd_exponential_blowup",
        "instance B: IGD gap / (G^2/L)(1+L/(2 mu n K))^n in [0.03, 1] for kappa/(2n) <= K <= "
        "kappa/8",
        np.array2string(sel_b, precision=3),
        sel_b.size > 0 and bool(np.all((sel_b >= 0.03) & (sel_b <= 1.0))),
    ))
    ratio_rr = result.best_b["igd"] / result.best_b["rr"]
    out.append(Claim(
        "igd_slower_than_rr",
        "instance B, small epoch: IGD/RR best-gap ratio >= 100 for every K",
        np.array2string(ratio_rr, precision=3),
        bool(np.all(ratio_rr >= 100)),
    ))
    eta_lo = result.eta_b[:, 0]
    out.append(Claim(
        "igd_best_eta_is_smallest_admissible",
        "instance B: IGD's best step size is the smallest admissible 1/(mu n K)",
        np.array2string(result.argmin_eta_b / eta_lo, precision=3),
        bool(np.allclose(result.argmin_eta_b, eta_lo)),
    ))
    slope_large = fit_loglog_slope(cfg.K_list_large_b, result.best_large_b)
    out.append(Claim(
        "igd_large_epoch_rate",
        "instance B, K >= 4 kappa: slope of IGD best gap vs K in [-2.3, -1.7]",
        slope_large,
        -2.3 <= slope_large <= -1.7,
    ))
    if cfg.rotating:
        g = result.best_c["igd"]
        flat = float(g.max() / g.min())
        out.append(Claim(
            "igd_plateau_rotating",
            "instance C (illustrative): IGD best gap flat in K, max/min over K_list_c < 1.4",
            f"gaps {np.array2string(g, precision=3)}; max/min {flat:.3f}",
            flat < 1.4,
        ))
        ratio_c = result.best_c["igd"] / result.best_c["rr"]
        out.append(Claim(
            "igd_slower_than_rr_rotating",
            "instance C: IGD/RR best-gap ratio >= 100 for every K",
            np.array2string(ratio_c, precision=3),
            bool(np.all(ratio_c >= 100)),
        ))
    k_cross, nc_above, sgd_below = _figure1_checks(
        result.figure_K, result.figure_bounds, cfg.figure_n, cfg.figure_kappa
    )
    root = math.sqrt(cfg.figure_kappa)
    out.append(Claim(
        "figure1_sc_crossing",
        f"strongly convex LB meets the L^2G^2/(mu^3K^2) UB at K in [0.3, 3] sqrt(kappa) = "
        f"[{0.3 * root:.3g}, {3 * root:.3g}]",
        k_cross,
        0.3 * root <= k_cross <= 3 * root,
    ))
    out.append(Claim(
        "figure1_orderings",
        "nonconvex LB >= strongly convex LB for K <= kappa/40; SGD UB below every IGD LB for "
        "kappa/n <= K <= kappa",
        f"nonconvex above: {nc_above}; SGD below: {sgd_below}",
        nc_above and sgd_below,
    ))
    return out


# --------------------------------------------------------------------------------------------
# plots
# --------------------------------------------------------------------------------------------


def plot(result: Result) -> dict:
    """Figures: empirical rates (headline), the analytic Figure 1, gap vs step size.

    Args:
        result: Output of :func:`run`.

    Returns:
        Dict of matplotlib figures, keys "headline", "figure1", "gap_vs_eta".
    """
    plt, sns = plotting_modules()

    cfg = result.config
    colors = dict(zip(ALGORITHMS, sns.color_palette("colorblind", 3)))
    labels = {"igd": "IGD", "rr": "RR", "sgd": "SGD (with repl.)"}
    figs = {}

    ncols = 3 if cfg.rotating else 2
    fig, axes = plt.subplots(1, ncols, figsize=(5 * ncols, 4))
    K = np.asarray(cfg.K_list, dtype=float)
    th = theory_bounds(K, n=cfg.n, mu=cfg.mu, L=cfg.L, G=cfg.G)
    ax = axes[0]
    for a in ALGORITHMS:
        ax.loglog(K, result.best_a[a], "o-", color=colors[a], label=labels[a])
    ax.loglog(K, th["ih_lb"], "--", color=colors["igd"], alpha=0.6, label="G²/(μK)")
    ax.loglog(K, th["sgd_ub"], "--", color=colors["sgd"], alpha=0.6, label="G²/(μnK)")
    ax.axvline(cfg.kappa / cfg.n, color="grey", ls=":", lw=1)
    ax.set(xlabel="epochs K", ylabel="best gap over η", title="A: identical Hessian")
    ax.legend(fontsize=8)
    ax = axes[1]
    Kb = np.asarray(cfg.K_list_b, dtype=float)
    for a in ALGORITHMS:
        ax.semilogy(Kb, result.best_b[a], "o-", color=colors[a], label=labels[a])
    ax.semilogy(Kb, result.pred_b, "--", color=colors["igd"], alpha=0.6,
                label="(G²/L)(1+κ/(2nK))ⁿ")
    ax.set(xlabel="epochs K", title=f"B: nonconvex components (n={cfg.n_b}, κ={cfg.kappa_b:g})")
    ax.legend(fontsize=8)
    if cfg.rotating:
        ax = axes[2]
        Kc = np.asarray(cfg.K_list_c, dtype=float)
        for a in ("igd", "rr"):
            ax.loglog(Kc, result.best_c[a], "o-", color=colors[a], label=labels[a])
        ax.set(xlabel="epochs K",
               title=f"C: rotating Hessians (n={cfg.n_c}, κ={cfg.L_c / cfg.mu:g})")
        ax.legend(fontsize=8)
    fig.tight_layout()
    figs["headline"] = fig

    fig, ax = plt.subplots(figsize=(6, 4.5))
    Kf, bd = result.figure_K, result.figure_bounds
    kap, nf = cfg.figure_kappa, cfg.figure_n
    small = Kf <= kap
    large = Kf >= kap
    ax.loglog(Kf[small], bd["ih_lb"][small], "-.", label="IGD LB, identical Hessian")
    ax.loglog(Kf[small], bd["sc_lb"][small], "-.", label="IGD LB, s.c. components")
    ax.loglog(Kf[small], bd["nc_lb"][small], "-.", label="IGD LB, nonconvex comp.")
    ax.loglog(Kf, bd["sc_ub"], "-", label="UB L²G²/(μ³K²)")
    ax.loglog(Kf[small], bd["ih_ub"][small], "-", label="UB G²/(μK)")
    ax.loglog(Kf, bd["sgd_ub"], "-", label="SGD UB G²/(μnK)")
    ax.loglog(Kf[large], bd["le_convex"][large], "-", label="large epoch LG²/(μ²K²)")
    ax.axvline(kap, color="k", lw=1)
    ax.axvline(kap / nf, color="grey", ls=":", lw=1)
    finite = bd["sgd_ub"][Kf >= 1]
    ax.set_ylim(finite.min() / 10, bd["sc_lb"].max() * 100)
    ax.set(xlabel="epochs K", ylabel="bound (constants = 1)",
           title=f"Table-1 bounds, n={nf}, κ={kap:g}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    figs["figure1"] = fig

    fig, ax = plt.subplots(figsize=(6, 4))
    row = len(cfg.K_list) // 2
    for a in ALGORITHMS:
        ax.loglog(result.eta_a, result.gap_a[a][row], color=colors[a], label=labels[a])
    ax.set(xlabel="step size η", ylabel="gap", title=f"A: gap vs η at K={cfg.K_list[row]}")
    ax.set_ylim(result.best_a["sgd"].min() / 10, 10 * cfg.G**2 / cfg.mu)
    ax.legend(fontsize=8)
    fig.tight_layout()
    figs["gap_vs_eta"] = fig
    return figs
