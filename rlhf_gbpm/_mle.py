"""Constrained skew-symmetric MLE of the GBPM by a batched, ball-constrained Newton method.

The problem (spec gbpm.md section 3.1, eq. (10)-(11)), in the orthonormal skew coordinates of
:mod:`rlhf_gbpm.skew`:

    min_theta  sum_s w_s [ m(theta . x_s) - r_s theta . x_s ]   s.t.  ||theta||_2 <= S,

where m is the link's log-partition function (m' = mu) and ||theta||_2 = ||Theta||_F.
Each iteration minimizes the second-order model of the loss over the ball exactly (a linear
solve when the Newton point lies inside the ball; otherwise a trust-region subproblem centred
at the origin, solved through an eigendecomposition of the D x D Hessian and a Newton
iteration on the secular equation), then takes an Armijo step along the segment towards that
minimizer. Warm-started solves typically need two iterations.
"""

from __future__ import annotations

import logging
import numbers
import warnings
from dataclasses import dataclass

import numpy as np

from rlhf_gbpm._results import SolverResult, messages_for, warn_unconverged
from rlhf_gbpm._validation import check_array, check_scalar
from rlhf_gbpm.errors import missing_dependency
from rlhf_gbpm.links import Link, get_link

__all__ = ["MLEResult", "fit_mle", "mle_cvxpy"]

logger = logging.getLogger(__name__)

_ARMIJO = 1e-4
_MAX_HALVINGS = 40
_SECULAR_ITERS = 60
_RIDGE = 1e-12
_CHORD_RATIO = 1e-2
# tight interior-point tolerances for reference solves
_CLARABEL_TIGHT = {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10,
                   "tol_ktratio": 1e-10, "max_iter": 500}


@dataclass(frozen=True)
class MLEResult(SolverResult):
    """Outcome of a (batched) maximum-likelihood fit in skew coordinates.

    Attributes:
        fun: Objective value at the solution, shape batch.
        grad_norm: KKT residual ``||theta - P(theta - grad / W)||`` of the mean loss
            (P the projection onto the ball, W the total weight), shape batch; zero exactly
            at a solution.
    """

    fun: np.ndarray = None
    grad_norm: np.ndarray = None

    @property
    def theta(self) -> np.ndarray:
        """The estimate in skew coordinates, shape (*batch, D); same array as ``x``."""
        return self.x


def _check_data(x, r, weights, *, need_positive_weight: bool = False):
    """Validate (x, r, weights) and flatten the batch axes.

    Returns:
        x (B, N, D), r (B, N), w (B, N), batch shape.
    """
    x = check_array(x, "x", shape=("...", "N", "D"))
    sizes = {"N": x.shape[-2]}
    r = check_array(r, "r", shape=x.shape[:-2] + ("N",), sizes=sizes)
    if r.size and (r.min() < 0.0 or r.max() > 1.0):
        bad = float(r.min() if r.min() < 0.0 else r.max())
        raise ValueError(f"r must lie in [0, 1], got an entry == {bad!r}.")
    batch = x.shape[:-2]
    if weights is None:
        w = np.ones(r.shape)
    else:
        w = check_array(weights, "weights", shape=x.shape[:-2] + ("N",), sizes=sizes)
        if w.size and w.min() < 0.0:
            raise ValueError(f"weights must be >= 0, got an entry == {float(w.min())!r}.")
    if need_positive_weight and np.any(w.sum(axis=-1) <= 0.0):  # also N = 0
        raise ValueError("weights must have a positive sum in every problem of the batch.")
    n, dim = x.shape[-2], x.shape[-1]
    nb = int(np.prod(batch, dtype=int))  # explicit: reshape(-1, 0, D) is ambiguous for N = 0
    return (x.reshape(nb, n, dim), r.reshape(nb, n), w.reshape(nb, n), batch)


def _check_warm_start(warm_start, nb: int, dim: int, batch: tuple) -> np.ndarray:
    if warm_start is None:
        return np.zeros((nb, dim))
    theta0 = check_array(warm_start, "warm_start")
    want = batch + (dim,)
    if theta0.shape == (dim,):
        theta0 = np.broadcast_to(theta0, want)
    if theta0.shape != want:
        raise ValueError(f"warm_start must have shape {want}, got {theta0.shape}.")
    return np.array(theta0, dtype=float).reshape(nb, dim)


def _project_ball(theta: np.ndarray, radius) -> np.ndarray:
    """Euclidean projection of rows onto the ball of the given radius (inf = no-op)."""
    norm = np.linalg.norm(theta, axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(norm > radius, radius / np.where(norm > 0, norm, 1.0), 1.0)
    return theta * scale


def _mv(x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Batched x @ theta: (b, N, D), (b, D) -> (b, N), through BLAS."""
    return np.matmul(x, theta[:, :, None])[:, :, 0]


def _rmv(x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Batched x^T v: (b, N, D), (b, N) -> (b, D), through BLAS."""
    return np.matmul(v[:, None, :], x)[:, 0, :]


def _take(arr: np.ndarray, idx: np.ndarray, full: bool) -> np.ndarray:
    """arr[idx] without a copy when idx covers the whole batch."""
    return arr if full else arr[idx]


def _loss(link: Link, z: np.ndarray, r: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Sum of w [m(z) - r z] over the last axis."""
    return np.sum(w * (link.log_partition(z) - r * z), axis=-1)


def _ball_newton_point(hess, c, radius):
    """Minimize 1/2 t^T H t + c^T t over ||t|| <= radius, batched.

    Fast path: a linear solve (H + tiny ridge) t = -c, kept where it lands inside the ball.
    Elsewhere the exact trust-region solution from an eigendecomposition.

    Args:
        hess: PSD matrices, shape (b, D, D).
        c: Linear terms, shape (b, D).
        radius: Ball radii, shape (b,) (``inf`` for no constraint).

    Returns:
        Minimizers, shape (b, D).
    """
    dim = hess.shape[-1]
    ridge = _RIDGE * np.maximum(np.trace(hess, axis1=1, axis2=2) / dim, 1e-300)
    try:
        t_fast = -np.linalg.solve(hess + ridge[:, None, None] * np.eye(dim), c[:, :, None])[..., 0]
    except np.linalg.LinAlgError:
        t_fast = np.full(c.shape, np.inf)
    inside = np.all(np.isfinite(t_fast), axis=-1) & (
        np.linalg.norm(t_fast, axis=-1) <= radius * (1.0 - 1e-12))
    if np.all(inside):
        return t_fast
    out = t_fast
    slow = ~inside
    out[slow] = _ball_newton_point_eigh(hess[slow], c[slow], radius[slow])
    return out


def _ball_newton_point_eigh(hess, c, radius):
    """Exact trust-region solution through eigh and the secular equation (see above)."""
    lam, q = np.linalg.eigh(hess)
    lam = np.maximum(lam, 0.0)
    ct = np.matmul(c[:, None, :], q)[:, 0, :]
    big = lam[:, -1:]
    null = lam <= 1e-12 * np.maximum(big, 1e-300)
    # the gradient lies in the span of the data, hence of the Hessian's range; components on
    # the numerical null space are rounding noise and are dropped (min-norm Newton point)
    ct = np.where(null, 0.0, ct)
    safe = np.where(null, 1.0, lam)
    t0 = -ct / safe
    norm0 = np.linalg.norm(t0, axis=-1)
    out = t0
    hit = norm0 > radius
    if np.any(hit):
        lh, ch, rh, nh = lam[hit], ct[hit], radius[hit], null[hit]
        cnorm = np.linalg.norm(ch, axis=-1)
        # lower bound on the root: ||t(nu)|| >= ||c|| / (lam_max + nu)
        nu = np.maximum(cnorm / rh - lh[:, -1], 0.0)
        for _ in range(_SECULAR_ITERS):
            # null-space coordinates of c are 0 and contribute nothing; a unit denominator
            # there keeps 0/0 (a singular Hessian at nu == 0) from poisoning the norm
            den = np.where(nh, 1.0, lh + nu[:, None])
            with np.errstate(divide="ignore", invalid="ignore"):
                t = ch / den
                n2 = np.sum(t * t, axis=-1)
                n = np.sqrt(n2)
                d3 = np.sum(ch * ch / den**3, axis=-1)
                step = (1.0 / rh - 1.0 / n) * n**3 / d3
            step = np.where(np.isfinite(step), step, 0.0)
            nu = nu + np.maximum(step, 0.0)
            if np.all(np.abs(n - rh) <= 1e-14 * rh):
                break
        den = lh + nu[:, None]
        # a zero eigenvalue with nu == 0 has no curvature and (at the KKT point) no gradient
        # component: its coordinate of the step is 0, not 0/0
        safe = den > 0
        th = np.where(safe, -ch / np.where(safe, den, 1.0), 0.0)
        out = out.copy()
        out[hit] = _project_ball(th, rh[:, None])
    return np.matmul(q, out[:, :, None])[:, :, 0]


def _kkt_residual(theta, grad_mean, radius):
    trial = _project_ball(theta - grad_mean, radius[:, None])
    return np.linalg.norm(theta - trial, axis=-1)


def fit_mle(
    x,
    r,
    *,
    S: float,
    link: str | Link = "logistic",
    weights=None,
    warm_start=None,
    tol: float = 1e-10,
    max_iter: int = 50,
) -> MLEResult:
    """Skew-symmetric GBPM maximum-likelihood estimate in a Frobenius ball (batched).

    Solves ``min sum_s w_s [m(theta . x_s) - r_s theta . x_s]`` subject to
    ``||theta||_2 <= S`` for every problem of the batch, where ``m`` is the link's
    log-partition function (the Bernoulli negative log-likelihood for the logistic link, a
    quasi-likelihood otherwise). Data from a finite arm table compress exactly to one row
    per unordered arm pair: pass that pair's skew features, ``weights`` = number of plays
    and ``r`` = fraction won (a play of (j, i) with outcome b counts as (i, j) with 1 - b).

    Each iteration minimizes the quadratic model over the ball exactly (a linear solve when
    the Newton point is inside the ball, else an eigendecomposition of the Hessian plus a
    secular-equation solve) and takes an Armijo step towards it. In the local regime (the
    last step was full and cut the residual by 100x) the previous Hessian is reused (a
    chord step). It stops when the KKT residual of the mean loss is at most ``tol``; at the
    default 1e-10 the estimate is typically within 1e-7 of the exact optimum.

    Args:
        x: Skew features of the comparisons, shape (*batch, N, D) (see
            :func:`rlhf_gbpm.skew.pair_features`).
        r: Outcomes or win fractions in [0, 1], shape (*batch, N).
        S: Radius of the Frobenius ball, > 0 (``inf`` allowed: unconstrained).
        link: Link name or object.
        weights: Non-negative weights (counts), shape (*batch, N); default all ones.
        warm_start: Starting point, shape (*batch, D) or (D,); projected onto the ball.
            Default zero.
        tol: Tolerance on the KKT residual of the mean loss, > 0.
        max_iter: Maximum number of Newton iterations, >= 1.

    Returns:
        :class:`MLEResult` with ``theta`` of shape (*batch, D), ``fun`` and ``grad_norm`` of
        shape batch. Problems that hit ``max_iter`` have ``success == False``.

    Raises:
        ValueError: On bad shapes, ``r`` outside [0, 1], negative weights, ``S <= 0``,
            ``tol <= 0`` or ``max_iter < 1``.
    """
    check_scalar(S, "S", numbers.Real, min_val=0.0, include_boundaries="neither")
    check_scalar(tol, "tol", numbers.Real, min_val=0.0, include_boundaries="neither")
    check_scalar(max_iter, "max_iter", numbers.Integral, min_val=1)
    link = get_link(link)
    x, r, w, batch = _check_data(x, r, weights)
    nb, _, dim = x.shape
    theta = _project_ball(_check_warm_start(warm_start, nb, dim, batch), float(S))
    radius = np.full(nb, float(S))
    total = np.maximum(w.sum(axis=-1), 1e-300)

    status = np.ones(nb, dtype=int)
    nit = np.zeros(nb, dtype=int)
    fun = np.zeros(nb)
    res = np.zeros(nb)
    active = np.arange(nb)
    prev_res = np.full(nb, np.inf)
    prev_full = np.zeros(nb, dtype=bool)
    hess_store = np.zeros((nb, dim, dim))
    for it in range(max_iter + 1):
        full = active.size == nb
        xa, ra, wa = _take(x, active, full), _take(r, active, full), _take(w, active, full)
        ta = theta[active]
        z = _mv(xa, ta)
        fa = _loss(link, z, ra, wa)
        ga = _rmv(xa, wa * (link.mu(z) - ra))
        resa = _kkt_residual(ta, ga / total[active, None], radius[active])
        fun[active], res[active] = fa, resa
        bad = ~(np.isfinite(fa) & np.isfinite(resa))
        done = (resa <= tol) | bad
        status[active[done & ~bad]] = 0
        status[active[bad]] = 4
        keep = ~done
        if it == max_iter or not np.any(keep):
            break
        if not np.all(keep):
            active = active[keep]
            xa, ra, wa, ta = xa[keep], ra[keep], wa[keep], ta[keep]
            ga, fa, z = ga[keep], fa[keep], z[keep]
        # chord step: in the local regime (full step last time and a residual cut by 100x)
        # the previous Hessian is kept; the line search and the true residual keep it safe
        reuse = prev_full[active] & (resa[keep] <= _CHORD_RATIO * prev_res[active])
        if np.all(reuse):
            hess = hess_store[active]
        else:
            new_rows = np.flatnonzero(~reuse)
            every = new_rows.size == active.size
            xn = _take(xa, new_rows, every)
            curv = _take(wa, new_rows, every) * link.mu_dot(_take(z, new_rows, every))
            fresh = np.matmul(np.swapaxes(xn, 1, 2) * curv[:, None, :], xn)
            if every:
                hess = fresh
            else:
                hess = hess_store[active]
                hess[new_rows] = fresh
            hess_store[active[new_rows]] = fresh
        prev_res[active] = resa[keep]
        c = ga - np.matmul(hess, ta[:, :, None])[:, :, 0]
        target = _ball_newton_point(hess, c, radius[active])
        step = target - ta
        slope = np.sum(ga * step, axis=-1)
        alpha = np.ones(len(active))
        pending = np.ones(len(active), dtype=bool)
        # at the level of rounding the full Newton step is the best available move
        flat = slope >= -1e-13 * np.maximum(np.abs(fa), 1.0)
        pending &= ~flat
        for _ in range(_MAX_HALVINGS):
            if not np.any(pending):
                break
            idx = np.flatnonzero(pending)
            cand = ta[idx] + alpha[idx, None] * step[idx]
            every = idx.size == len(active)
            fc = _loss(link, _mv(_take(xa, idx, every), cand), _take(ra, idx, every),
                       _take(wa, idx, every))
            ok = fc <= fa[idx] + _ARMIJO * alpha[idx] * slope[idx]
            pending[idx[ok]] = False
            alpha[idx[~ok]] *= 0.5
        if np.any(pending):
            # no decrease found: keep the point (status stays at "max iterations")
            alpha[pending] = 0.0
        theta[active] = ta + alpha[:, None] * step
        prev_full[active] = alpha == 1.0
        nit[active] += 1

    warn_unconverged("fit_mle", status, tol=tol, max_iter=max_iter)
    return MLEResult(
        x=theta.reshape(batch + (dim,)),
        success=(status == 0).reshape(batch),
        status=status.reshape(batch),
        message=messages_for(status),
        nit=nit.reshape(batch),
        fun=fun.reshape(batch),
        grad_norm=res.reshape(batch),
    )


def _import_cvxpy():
    try:
        import cvxpy as cp
    except ImportError as err:  # pragma: no cover - cvxpy is a core dependency
        raise missing_dependency("cvxpy", "cvxpy") from err
    return cp


def _cvxpy_loss(cp, link: Link, z, r, w):
    if link.name == "logistic":
        return cp.sum(cp.multiply(w, cp.logistic(z) - cp.multiply(r, z)))
    if link.name == "linear":
        c = float(link.get_config()["slope"])
        return cp.sum(cp.multiply(w, 0.5 * z + 0.5 * c * cp.square(z) - cp.multiply(r, z)))
    raise ValueError(f"link == {link.name!r} has no cvxpy form; use 'logistic' or 'linear'.")


def mle_cvxpy(
    x,
    r,
    *,
    S: float,
    link: str | Link = "logistic",
    weights=None,
    solver: str | None = None,
) -> MLEResult:
    """Reference solve of the :func:`fit_mle` problem with cvxpy, one problem at a time.

    Slow; for tests and benchmarks. Logistic loss through ``cp.logistic``.

    Args:
        x: Skew features, shape (*batch, N, D).
        r: Outcomes in [0, 1], shape (*batch, N).
        S: Frobenius-ball radius, > 0.
        link: ``"logistic"`` or ``"linear"``.
        weights: Non-negative weights, shape (*batch, N).
        solver: A cvxpy solver name; default Clarabel with tolerances 1e-10.

    Returns:
        :class:`MLEResult` (``grad_norm`` is the KKT residual at the returned point).
    """
    check_scalar(S, "S", numbers.Real, min_val=0.0, include_boundaries="neither")
    link = get_link(link)
    cp = _import_cvxpy()
    x, r, w, batch = _check_data(x, r, weights)
    nb, _, dim = x.shape
    theta = np.zeros((nb, dim))
    status = np.zeros(nb, dtype=int)
    for b in range(nb):
        var = cp.Variable(dim)
        z = x[b] @ var
        cons = [cp.norm(var, 2) <= S] if np.isfinite(S) else []
        prob = cp.Problem(cp.Minimize(_cvxpy_loss(cp, link, z, r[b], w[b])), cons)
        with warnings.catch_warnings():
            # tight tolerances often end as "optimal_inaccurate" at ~1e-9; that is accepted
            warnings.filterwarnings("ignore", message="Solution may be inaccurate")
            if solver is None:
                prob.solve(solver=cp.CLARABEL, **_CLARABEL_TIGHT)
            else:
                prob.solve(solver=solver)
        if var.value is None or prob.status not in ("optimal", "optimal_inaccurate"):
            status[b] = 5
            continue
        theta[b] = var.value
    z = _mv(x, theta)
    fun = _loss(link, z, r, w)
    grad = _rmv(x, w * (link.mu(z) - r)) / np.maximum(w.sum(-1), 1e-300)[:, None]
    res = _kkt_residual(theta, grad, np.full(nb, float(S)))
    return MLEResult(
        x=theta.reshape(batch + (dim,)),
        success=(status == 0).reshape(batch),
        status=status.reshape(batch),
        message=messages_for(status),
        nit=np.zeros(batch, dtype=int),
        fun=fun.reshape(batch),
        grad_norm=res.reshape(batch),
    )
