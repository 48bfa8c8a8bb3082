"""Nuclear-norm-penalized skew-symmetric MLE (Explore-Then-Commit) by accelerated proximal gradient.

The problem (spec gbpm.md section 3.2 and section 9 item 13), in skew coordinates:

    min_theta  (1/W) sum_s w_s [ m(theta . x_s) - r_s theta . x_s ] + lam ||Theta||_nuc
    (optionally s.t. ||Theta||_F <= S),

with W = sum_s w_s and Theta = vec_to_skew(theta). The proximal map of
tau ||.||_nuc (+ the ball) acts on singular values: soft-threshold them by tau, then rescale
into the ball. A skew matrix is normal with eigenvalues +-i sigma, so thresholding maps Skew(d)
to itself; the result is re-antisymmetrized against rounding.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from rlhf_gbpm._mle import (
    _check_data,
    _check_warm_start,
    _import_cvxpy,
    _mv,
    _project_ball,
    _rmv,
    _solve_program,
    _take,
)
from rlhf_gbpm._results import SolverResult, messages_for, warn_unconverged
from rlhf_gbpm._validation import check_scalar
from rlhf_gbpm.links import Link, get_link
from rlhf_gbpm.skew import skew_part, skew_to_vec, vec_to_skew

__all__ = ["NuclearMLEResult", "fit_nuclear_mle", "nuclear_mle_cvxpy", "lambda_theory"]

_MAX_DOUBLINGS = 60
_POWER_ITERS = 20


@dataclass(frozen=True)
class NuclearMLEResult(SolverResult):
    """Outcome of a (batched) nuclear-norm-penalized MLE.

    Attributes:
        fun: Objective (mean loss + lam * nuclear norm) at the solution, shape batch.
        grad_norm: Norm of the last proximal-gradient mapping L (y - theta+), shape batch.
        singular_values: Singular values of Theta at the solution, descending, shape
            (*batch, d); they come in equal pairs.
    """

    fun: np.ndarray = None
    grad_norm: np.ndarray = None
    singular_values: np.ndarray = None

    @property
    def theta(self) -> np.ndarray:
        """The estimate in skew coordinates, shape (*batch, D); same array as ``x``."""
        return self.x


def _dim_from_skew(dim: int) -> int:
    d = int(round((1.0 + math.sqrt(1.0 + 8.0 * dim)) / 2.0))
    if d * (d - 1) // 2 != dim:
        raise ValueError(
            f"x must have last axis D = d(d-1)/2 for some integer d, got D == {dim}."
        )
    return d


def _prox(v: np.ndarray, tau: np.ndarray, radius: float, d: int):
    """Prox of tau ||.||_nuc + indicator(||.||_F <= radius) in skew coordinates.

    Args:
        v: Points, shape (b, D).
        tau: Thresholds, shape (b,).
        radius: Ball radius (inf for none).
        d: Matrix size.

    Returns:
        (prox points (b, D), their singular values (b, d)).
    """
    mat = vec_to_skew(v, d)
    u, s, vt = np.linalg.svd(mat)
    s = np.maximum(s - tau[:, None], 0.0)
    if np.isfinite(radius):
        fro = np.sqrt(np.sum(s * s, axis=-1))
        s = s * np.minimum(1.0, radius / np.maximum(fro, 1e-300))[:, None]
    out = skew_part((u * s[:, None, :]) @ vt)
    return skew_to_vec(out), s


def _mean_loss(link, x, theta, r, w, total):
    z = _mv(x, theta)
    return np.sum(w * (link.log_partition(z) - r * z), axis=-1) / total, z


def _lipschitz_guess(link, x, w, total, rng_seed=0):
    """L_mu times the top eigenvalue of X^T diag(w) X / W, by power iteration."""
    v = np.random.default_rng(rng_seed).standard_normal((x.shape[0], x.shape[2]))
    est = np.ones(x.shape[0])
    for _ in range(_POWER_ITERS):
        v /= np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-300)
        mv = _rmv(x, w * _mv(x, v)) / total[:, None]
        est = np.linalg.norm(mv, axis=-1)
        v = mv
    return np.maximum(link.L_mu * est, 1e-12)


def fit_nuclear_mle(
    x,
    r,
    *,
    lam: float,
    S: float | None = None,
    link: str | Link = "logistic",
    weights=None,
    warm_start=None,
    tol: float = 1e-8,
    max_iter: int = 1000,
) -> NuclearMLEResult:
    """Nuclear-norm-penalized skew-symmetric MLE by FISTA with restart (batched).

    Solves ``min (1/W) sum_s w_s [m(theta . x_s) - r_s theta . x_s] + lam ||Theta||_nuc``,
    optionally with ``||Theta||_F <= S``, for every problem of the batch, by accelerated
    proximal gradient: Lipschitz backtracking (doubling, started from a power-iteration
    estimate), gradient-based adaptive restart, and singular-value soft-thresholding on
    the d x d skew matrix (``np.linalg.svd`` on the stack). It stops when the
    proximal-gradient mapping has norm at most ``tol``.

    Args:
        x: Skew features, shape (*batch, N, D) with D = d(d-1)/2.
        r: Outcomes or win fractions in [0, 1], shape (*batch, N).
        lam: Penalty weight, >= 0 (see :func:`lambda_theory`).
        S: Optional Frobenius-ball radius, > 0 (spec section 9 item 13); None for none.
        link: Link name or object.
        weights: Non-negative weights (counts), shape (*batch, N), with a positive sum per
            problem; default all ones. Per-pair counts give the same problem as raw data.
        warm_start: Starting point, shape (*batch, D) or (D,). Default zero.
        tol: Tolerance on the proximal-gradient mapping norm, > 0.
        max_iter: Maximum number of iterations, >= 1.

    Returns:
        :class:`NuclearMLEResult` with ``theta`` (*batch, D), ``fun``, ``grad_norm`` and
        ``singular_values`` (*batch, d).

    Raises:
        ValueError: On bad shapes, ``r`` outside [0, 1], ``lam < 0``, ``S <= 0``,
            ``tol <= 0`` or ``max_iter < 1``.

    References:
        Beck, Teboulle. "A fast iterative shrinkage-thresholding algorithm for linear
        inverse problems", SIAM J. Imaging Sci. 2(1), 2009. O'Donoghue, Candes. "Adaptive
        restart for accelerated gradient schemes", Found. Comput. Math. 15, 2015.
    """
    check_scalar(lam, "lam", numbers.Real, min_val=0.0)
    if S is not None:
        check_scalar(S, "S", numbers.Real, min_val=0.0, include_boundaries="neither")
    check_scalar(tol, "tol", numbers.Real, min_val=0.0, include_boundaries="neither")
    check_scalar(max_iter, "max_iter", numbers.Integral, min_val=1)
    link = get_link(link)
    x, r, w, batch = _check_data(x, r, weights, need_positive_weight=True)
    nb, _, dim = x.shape
    d = _dim_from_skew(dim)
    radius = math.inf if S is None else float(S)
    total = w.sum(axis=-1)

    theta = _project_ball(_check_warm_start(warm_start, nb, dim, batch), radius)
    y = theta.copy()
    t_mom = np.ones(nb)
    lip = _lipschitz_guess(link, x, w, total)
    status = np.ones(nb, dtype=int)
    nit = np.zeros(nb, dtype=int)
    gmap = np.full(nb, np.inf)
    active = np.arange(nb)
    for _ in range(max_iter):
        if active.size == 0:
            break
        full = active.size == nb
        xa, ra, wa = _take(x, active, full), _take(r, active, full), _take(w, active, full)
        tot = total[active]
        ta, ya, la = theta[active], y[active], lip[active]
        fy, zy = _mean_loss(link, xa, ya, ra, wa, tot)
        gy = _rmv(xa, wa * (link.mu(zy) - ra)) / tot[:, None]
        new = ya.copy()
        pending = np.ones(active.size, dtype=bool)
        for _ in range(_MAX_DOUBLINGS):
            idx = np.flatnonzero(pending)
            cand, _s = _prox(ya[idx] - gy[idx] / la[idx, None], lam / la[idx], radius, d)
            every = idx.size == active.size
            fc, _z = _mean_loss(link, _take(xa, idx, every), cand, _take(ra, idx, every),
                                _take(wa, idx, every), tot[idx])
            diff = cand - ya[idx]
            model = (fy[idx] + np.sum(gy[idx] * diff, -1)
                     + 0.5 * la[idx] * np.sum(diff * diff, -1))
            ok = fc <= model + 1e-12 * np.maximum(np.abs(fy[idx]), 1.0)
            new[idx[ok]] = cand[ok]
            pending[idx[ok]] = False
            la[idx[~ok]] *= 2.0
            if not np.any(pending):
                break
        lip[active] = la
        step = ya - new
        ga = la * np.linalg.norm(step, axis=-1)
        gmap[active] = ga
        nit[active] += 1
        nonfinite = ~np.all(np.isfinite(new), axis=-1)
        bad = nonfinite | pending
        # gradient-based adaptive restart: momentum against the step direction
        restart = np.sum(step * (new - ta), axis=-1) > 0.0
        t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t_mom[active] ** 2))
        beta = np.where(restart, 0.0, (t_mom[active] - 1.0) / t_next)
        t_mom[active] = np.where(restart, 1.0, t_next)
        y[active] = new + beta[:, None] * (new - ta)
        theta[active] = new
        done = (ga <= tol) | bad
        status[active[done & ~bad]] = 0
        status[active[pending]] = 2
        status[active[nonfinite]] = 4
        active = active[~done]

    mat = vec_to_skew(theta, d)
    svals = np.linalg.svd(mat, compute_uv=False)
    loss, _z = _mean_loss(link, x, theta, r, w, total)
    fun = loss + lam * svals.sum(axis=-1)
    warn_unconverged("fit_nuclear_mle", status, tol=tol, max_iter=max_iter)
    return NuclearMLEResult(
        x=theta.reshape(batch + (dim,)),
        success=(status == 0).reshape(batch),
        status=status.reshape(batch),
        message=messages_for(status),
        nit=nit.reshape(batch),
        fun=fun.reshape(batch),
        grad_norm=gmap.reshape(batch),
        singular_values=svals.reshape(batch + (d,)),
    )


def _skew_basis_matrix(d: int) -> np.ndarray:
    """Matrix M of shape (d*d, D) with vec_C(Theta) = M theta."""
    dim = d * (d - 1) // 2
    return vec_to_skew(np.eye(dim), d).reshape(dim, d * d).T


def nuclear_mle_cvxpy(
    x,
    r,
    *,
    lam: float,
    S: float | None = None,
    link: str | Link = "logistic",
    weights=None,
    solver: str | None = None,
) -> NuclearMLEResult:
    """Reference solve of the :func:`fit_nuclear_mle` problem with cvxpy, one at a time.

    Args:
        x: Skew features, shape (*batch, N, D).
        r: Outcomes in [0, 1], shape (*batch, N).
        lam: Penalty weight, >= 0.
        S: Optional Frobenius-ball radius.
        link: ``"logistic"`` or ``"linear"``.
        weights: Non-negative weights, shape (*batch, N).
        solver: A cvxpy solver name (``"CLARABEL"`` or ``"SCS"``); default Clarabel with
            tolerances 1e-10.

    Returns:
        :class:`NuclearMLEResult` (``nit`` is zero; ``grad_norm`` is NaN).
    """
    from rlhf_gbpm._mle import _cvxpy_loss

    check_scalar(lam, "lam", numbers.Real, min_val=0.0)
    if S is not None:
        check_scalar(S, "S", numbers.Real, min_val=0.0, include_boundaries="neither")
    link = get_link(link)
    cp = _import_cvxpy()
    x, r, w, batch = _check_data(x, r, weights, need_positive_weight=True)
    nb, _, dim = x.shape
    d = _dim_from_skew(dim)
    basis = _skew_basis_matrix(d)
    theta = np.zeros((nb, dim))
    status = np.zeros(nb, dtype=int)
    for b in range(nb):
        var = cp.Variable(dim)
        mat = cp.reshape(basis @ var, (d, d), order="C")
        obj = _cvxpy_loss(cp, link, x[b] @ var, r[b], w[b]) / w[b].sum()
        obj = obj + lam * cp.normNuc(mat)
        cons = [cp.norm(var, 2) <= S] if S is not None else []
        prob = cp.Problem(cp.Minimize(obj), cons)
        value = _solve_program(cp, prob, var, solver)
        if value is None:
            status[b] = 5
            continue
        theta[b] = value
    svals = np.linalg.svd(vec_to_skew(theta, d), compute_uv=False)
    loss, _z = _mean_loss(link, x, theta, r, w, w.sum(axis=-1))
    return NuclearMLEResult(
        x=theta.reshape(batch + (dim,)),
        success=(status == 0).reshape(batch),
        status=status.reshape(batch),
        message=messages_for(status),
        nit=np.zeros(batch, dtype=int),
        fun=(loss + lam * svals.sum(axis=-1)).reshape(batch),
        grad_norm=np.full(batch, np.nan),
        singular_values=svals.reshape(batch + (d,)),
    )


def lambda_theory(T0: int, d: int, delta: float, L_mu: float = 0.25) -> float:
    """Penalty weight of the theory, sqrt(32 L_mu log(4d/delta) / T0) (spec section 3.2).

    Valid (Lemma C.2) when T0 >= (2 / (9 L_mu)) log(4d/delta).

    Args:
        T0: Number of exploration samples, >= 1.
        d: Feature dimension, >= 2.
        delta: Failure probability, in (0, 1).
        L_mu: Upper bound on mu_dot, > 0 (1/4 for the logistic link).

    Returns:
        lambda_{T0}.
    """
    check_scalar(T0, "T0", numbers.Integral, min_val=1)
    check_scalar(d, "d", numbers.Integral, min_val=2)
    check_scalar(delta, "delta", numbers.Real, min_val=0.0, max_val=1.0,
                 include_boundaries="neither")
    check_scalar(L_mu, "L_mu", numbers.Real, min_val=0.0, include_boundaries="neither")
    return math.sqrt(32.0 * L_mu * math.log(4.0 * d / delta) / T0)
