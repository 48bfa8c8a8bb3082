"""Constrained skew-symmetric MLE of the GBPM by a batched, ball-constrained Newton method.

The problem (spec gbpm.md section 3.1, eq. (10)-(11)), in the orthonormal skew coordinates of
:mod:`rlhf_gbpm.skew`:

    min_theta  sum_s w_s [ m(theta . x_s) - r_s theta . x_s ]   s.t.  ||theta||_2 <= S,

where m is the link's log-partition function (m' = mu) and ||theta||_2 = ||Theta||_F.
Each iteration minimizes the second-order model of the loss over the ball exactly (a linear
solve when the Newton point lies inside the ball; otherwise a trust-region subproblem centred
at the origin, solved by Newton's method on the ball's multiplier with linear solves, or
through an eigendecomposition of the D x D Hessian and a Newton iteration on the secular
equation), then takes an Armijo step along the segment towards that minimizer. Converged
fits take one more (polishing) Newton step, so the estimate is exact to rounding.
Warm-started solves typically need three iterations.
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
# Newton steps on the ball's multiplier from a guess before the eigendecomposition fallback
_MS_ITERS = 8
_RIDGE = 1e-12
# problems are solved on their weighted rows, padded to a power of two >= this many rows
_MIN_ROWS = 32
# the fast linear-solve step is kept only where it changes by less than this (relative)
# when the ridge doubles, i.e. where the Hessian is numerically nonsingular
_RIDGE_FREE = 1e-8
# a converged fit takes one more Newton step unless its estimated distance to the optimum
# (last step length x last residual ratio) is below this, relative to max(1, ||theta||)
_EXACT = 1e-12
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


def _gram_hessian(x: np.ndarray, curv: np.ndarray) -> np.ndarray:
    """Batched Hessian x^T diag(curv) x as the Gram matrix of sqrt(curv) x.

    Args:
        x: Features, shape (b, N, D).
        curv: Non-negative curvatures w mu'(z), shape (b, N).

    Returns:
        Symmetric PSD matrices, shape (b, D, D).
    """
    xs = x * np.sqrt(np.maximum(curv, 0.0))[:, :, None]
    return np.matmul(np.swapaxes(xs, 1, 2), xs)


def _ball_newton_point(hess, c, radius, nu):
    """Minimize 1/2 t^T H t + c^T t over ||t|| <= radius, batched.

    Fast path: a linear solve (H + tiny ridge) t = -c, kept where it lands inside the ball
    and does not depend on the ridge (solved with ridges eps and 2 eps in one call: on a
    singular Hessian the null-space part of t is rounding noise / eps, and the min-norm
    point is wanted there). Where the optimum is on the sphere and a multiplier guess is
    known, Newton's method on the multiplier (:func:`_boundary_solve`). Elsewhere the exact
    trust-region solution from an eigendecomposition.

    Args:
        hess: PSD matrices, shape (b, D, D).
        c: Linear terms, shape (b, D).
        radius: Ball radii, shape (b,) (``inf`` for no constraint).
        nu: Guesses of the ball's multiplier, shape (b,) (0: none).

    Returns:
        (minimizers of shape (b, D), their multipliers (b,), 0 inside the ball).
    """
    b, dim = c.shape
    trace = np.trace(hess, axis1=1, axis2=2)
    # H == 0 (no informative data) still gets a positive ridge, so no problem's solve fails
    ridge = _RIDGE * np.where(trace > 0, trace / dim, 1.0)
    ridges = np.concatenate([ridge, 2.0 * ridge])[:, None, None] * np.eye(dim)
    try:
        both = -np.linalg.solve(np.concatenate([hess, hess]) + ridges,
                                np.concatenate([c, c])[:, :, None])[..., 0]
    except np.linalg.LinAlgError:
        both = np.full((2 * b, dim), np.inf)
    out, other = both[:b], both[b:]
    norm = np.linalg.norm(out, axis=-1)
    with np.errstate(invalid="ignore"):
        steady = np.linalg.norm(out - other, axis=-1) <= _RIDGE_FREE * np.maximum(norm, 1.0)
    slow = ~(np.all(np.isfinite(out), axis=-1) & steady & (norm <= radius * (1.0 - 1e-12)))
    # a multiplier guess at rounding level of the Hessian is no guess: H + nu I may be singular
    nu = np.where(slow & (nu > ridge), nu, 0.0)
    guess = np.flatnonzero(nu > 0)
    if guess.size:
        t, nu[guess], ok = _boundary_solve(hess[guess], c[guess], radius[guess], nu[guess])
        out[guess[ok]] = t[ok]
        slow[guess[ok]] = False
    if np.any(slow):
        lam, q = np.linalg.eigh(hess[slow])
        out[slow], nu[slow] = _trust_region_eigh(lam, q, c[slow], radius[slow])
    return out, nu


def _boundary_solve(hess, c, radius, nu):
    """Boundary trust-region solutions by Newton's method on the multiplier (Moré-Sorensen).

    Solves (H + nu I) t = -c with ||t|| = radius from a guess of nu > 0 (the previous
    iteration's multiplier): two linear solves per Newton step on 1/||t(nu)|| - 1/radius,
    safeguarded by bisection inside the bracket of nu that the iterates establish. Each
    problem stops on its own (results independent of the batch). Problems that do not
    converge in ``_MS_ITERS`` steps (e.g. an interior optimum on a singular Hessian) are
    reported, for the eigendecomposition path.

    Args:
        hess: PSD matrices, shape (b, D, D).
        c: Linear terms, shape (b, D).
        radius: Ball radii, shape (b,).
        nu: Positive multiplier guesses, shape (b,).

    Returns:
        (t of shape (b, D) projected onto the sphere, nu (b,), converged bool (b,)).
    """
    nu = nu.copy()
    lo, hi = np.zeros(nu.shape), np.full(nu.shape, np.inf)
    out = np.zeros(c.shape)
    ok = np.zeros(nu.shape, dtype=bool)
    live = np.arange(nu.size)
    eye = np.eye(c.shape[-1])
    for _ in range(_MS_ITERS):
        mat = hess[live] + nu[live, None, None] * eye
        try:
            t = -np.linalg.solve(mat, c[live, :, None])[..., 0]
        except np.linalg.LinAlgError:
            break
        n = np.linalg.norm(t, axis=-1)
        out[live] = t
        rad = radius[live]
        done = np.abs(n - rad) <= 1e-13 * rad
        ok[live[done]] = True
        rest = ~done & np.isfinite(n)
        if not np.any(rest):
            break
        live, t, n, mat, rad = live[rest], t[rest], n[rest], mat[rest], rad[rest]
        above = n > rad
        lo[live[above]] = nu[live[above]]
        hi[live[~above]] = nu[live[~above]]
        w2 = np.sum(t * np.linalg.solve(mat, t[:, :, None])[..., 0], axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            new = nu[live] + (n - rad) / rad * n * n / w2
        inside = (new > lo[live]) & (new < hi[live])
        nu[live] = np.where(inside, new, 0.5 * (lo[live] + hi[live]))
    return _project_ball(out, radius[:, None]), nu, ok


def _trust_region_eigh(lam, q, c, radius):
    """Exact trust-region solution from the Hessian's eigendecomposition H = q diag(lam) q^T.

    Args:
        lam: Eigenvalues (ascending), shape (b, D).
        q: Eigenvectors, shape (b, D, D).
        c: Linear terms, shape (b, D).
        radius: Ball radii, shape (b,).

    Returns:
        (minimizers of 1/2 t^T H t + c^T t over ||t|| <= radius, shape (b, D), the
        multipliers of the ball (b,), 0 inside).
    """
    lam = np.maximum(lam, 0.0)
    ct = np.matmul(c[:, None, :], q)[:, 0, :]
    null = lam <= 1e-12 * np.maximum(lam[:, -1:], 1e-300)
    # the gradient lies in the span of the data, hence of the Hessian's range; components on
    # the numerical null space are rounding noise and are dropped (min-norm Newton point)
    ct = np.where(null, 0.0, ct)
    out = -ct / np.where(null, 1.0, lam)
    nu = np.zeros(len(c))
    hit = np.linalg.norm(out, axis=-1) > radius
    if np.any(hit):
        out[hit], nu[hit] = _secular_solution(lam[hit], ct[hit], radius[hit], null[hit])
    return np.matmul(q, out[:, :, None])[:, :, 0], nu


def _secular_solution(lam, ct, radius, null):
    """Boundary solution t(nu) = -ct / (lam + nu) with ||t(nu)|| = radius, nu > 0.

    Newton's method on 1/||t(nu)|| - 1/radius from a lower bound on the root (monotone
    convergence: the function is concave and increasing); each problem stops on its own, so
    its result does not depend on the others in the batch.

    Args:
        lam: Non-negative eigenvalues, shape (b, D).
        ct: Linear terms in the eigenbasis (0 on the null space), shape (b, D).
        radius: Ball radii, shape (b,).
        null: Numerical null space of the Hessian, bool (b, D).

    Returns:
        (the boundary solutions in the eigenbasis, shape (b, D), of norm ``radius``, the
        multipliers nu (b,)).
    """
    # lower bound on the root: ||t(nu)|| >= ||c|| / (lam_max + nu)
    nu = np.maximum(np.linalg.norm(ct, axis=-1) / radius - lam[:, -1], 0.0)
    moving = np.ones(nu.shape, dtype=bool)
    for _ in range(_SECULAR_ITERS):
        # null-space coordinates of c are 0 and contribute nothing; a unit denominator there
        # keeps 0/0 (a singular Hessian at nu == 0) from poisoning the norm
        den = np.where(null, 1.0, lam + nu[:, None])
        with np.errstate(divide="ignore", invalid="ignore"):
            t = ct / den
            n = np.sqrt(np.sum(t * t, axis=-1))
            d3 = np.sum(ct * ct / den**3, axis=-1)
            step = (1.0 / radius - 1.0 / n) * n**3 / d3
        moving &= ~(np.abs(n - radius) <= 1e-14 * radius)
        if not np.any(moving):
            break
        step = np.where(np.isfinite(step) & moving, step, 0.0)
        nu = nu + np.maximum(step, 0.0)
    den = lam + nu[:, None]
    # a zero eigenvalue with nu == 0 has no curvature and (at the KKT point) no gradient
    # component: its coordinate of the step is 0, not 0/0
    safe = den > 0
    th = np.where(safe, -ct / np.where(safe, den, 1.0), 0.0)
    return _project_ball(th, radius[:, None]), nu


def _multiplier_guess(theta, grad, radius):
    """KKT multiplier of the ball at points on the sphere, -g.theta / S^2 (0 inside), (b,)."""
    on = np.linalg.norm(theta, axis=-1) >= radius * (1.0 - 1e-9)
    return np.where(on, np.maximum(-np.sum(grad * theta, axis=-1), 0.0) / radius**2, 0.0)


def _needs_polish(theta, moved, res, prev_res):
    """Whether a converged problem takes one more Newton step (batched).

    At a KKT residual <= tol the estimate is still about residual / curvature away from the
    optimum. Newton's local convergence estimates that distance as the last step's length
    times the residual's last reduction ratio; one more step squares it, so it is taken
    unless the distance is already at rounding level. A problem that has not moved (a warm
    start at the optimum) is left as is.

    Args:
        theta: Current points, shape (b, D).
        moved: Length of the last step, shape (b,) (0 before the first step).
        res: KKT residuals now, shape (b,).
        prev_res: KKT residuals before the last step, shape (b,).

    Returns:
        Bool, shape (b,).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(prev_res > 0, np.minimum(res / prev_res, 1.0), 0.0)
    scale = np.maximum(np.linalg.norm(theta, axis=-1), 1.0)
    return moved * ratio > _EXACT * scale


def _armijo(link, x, r, w, theta, z, f, g, step):
    """Backtracking (Armijo) step lengths along ``step``, batched.

    Args:
        link: Link object.
        x: Features, shape (b, N, D).
        r: Outcomes, shape (b, N).
        w: Weights, shape (b, N).
        theta: Current points, shape (b, D).
        z: Margins x theta at ``theta``, shape (b, N).
        f: Losses at ``theta``, shape (b,).
        g: Gradients at ``theta``, shape (b, D).
        step: Search directions, shape (b, D).

    Returns:
        (step lengths in {1, 1/2, ...} (b,), 0 where no decrease was found; the margins
        (b, N) and losses (b,) at theta + length * step, for the next iteration).
    """
    slope = np.sum(g * step, axis=-1)
    alpha = np.ones(len(theta))
    z_new, f_new = z.copy(), f.copy()
    # at the level of rounding the full Newton step is the best available move
    pending = slope < -1e-13 * np.maximum(np.abs(f), 1.0)
    unseen = ~pending  # full steps taken without evaluating the loss there
    for _ in range(_MAX_HALVINGS):
        if not np.any(pending):
            break
        idx = np.flatnonzero(pending)
        every = idx.size == len(theta)
        cand = theta[idx] + alpha[idx, None] * step[idx]
        zc = _mv(_take(x, idx, every), cand)
        fc = _loss(link, zc, _take(r, idx, every), _take(w, idx, every))
        ok = fc <= f[idx] + _ARMIJO * alpha[idx] * slope[idx]
        z_new[idx[ok]], f_new[idx[ok]] = zc[ok], fc[ok]
        pending[idx[ok]] = False
        alpha[idx[~ok]] *= 0.5
    # no decrease found: keep the point (the status stays at "max iterations")
    alpha[pending] = 0.0
    if np.any(unseen):
        idx = np.flatnonzero(unseen)
        every = idx.size == len(theta)
        z_new[idx] = _mv(_take(x, idx, every), theta[idx] + alpha[idx, None] * step[idx])
        f_new[idx] = _loss(link, z_new[idx], _take(r, idx, every), _take(w, idx, every))
    return alpha, z_new, f_new


def _kkt_residual(theta, grad_mean, radius):
    trial = _project_ball(theta - grad_mean, radius[:, None])
    return np.linalg.norm(theta - trial, axis=-1)


def _newton(link, x, r, w, theta, S, tol, max_iter):
    """The Newton loop of :func:`fit_mle` on validated, flattened data.

    Args:
        link: Link object.
        x: Features, shape (b, N, D).
        r: Outcomes, shape (b, N).
        w: Weights, shape (b, N).
        theta: Starting points in the ball, shape (b, D); updated in place.
        S: Ball radius.
        tol: KKT tolerance.
        max_iter: Iteration cap.

    Returns:
        (theta (b, D), status (b,), nit (b,), fun (b,), KKT residual (b,)).
    """
    nb = len(theta)
    radius = np.full(nb, S)
    total = np.maximum(w.sum(axis=-1), 1e-300)
    status = np.ones(nb, dtype=int)
    nit = np.zeros(nb, dtype=int)
    fun = np.zeros(nb)
    res = np.zeros(nb)
    active = np.arange(nb)
    prev_res = np.full(nb, np.inf)
    moved = np.zeros(nb)           # length of the last step (0 before the first)
    polished = np.zeros(nb, dtype=bool)
    nu = np.zeros(nb)              # multiplier of the ball in the last model step
    z = fa = None                  # margins and losses at theta[active], from the line search
    for it in range(max_iter + 1):
        full = active.size == nb
        xa, ra, wa = _take(x, active, full), _take(r, active, full), _take(w, active, full)
        ta = theta[active]
        if z is None:
            z = _mv(xa, ta)
            fa = _loss(link, z, ra, wa)
        ga = _rmv(xa, wa * (link.mu(z) - ra))
        resa = _kkt_residual(ta, ga / total[active, None], radius[active])
        fun[active], res[active] = fa, resa
        bad = ~(np.isfinite(fa) & np.isfinite(resa))
        conv = (resa <= tol) & ~bad
        status[active] = np.where(bad, 4, np.where(conv, 0, 1))
        polish = conv & ~polished[active] & _needs_polish(
            ta, moved[active], resa, prev_res[active])
        polished[active[polish]] = True
        keep = ~((conv & ~polish) | bad)
        if it == max_iter or not np.any(keep):
            break
        if not np.all(keep):
            active = active[keep]
            xa, ra, wa, ta = xa[keep], ra[keep], wa[keep], ta[keep]
            ga, fa, z = ga[keep], fa[keep], z[keep]
        prev_res[active] = resa[keep]
        hess = _gram_hessian(xa, wa * link.mu_dot(z))
        c = ga - np.matmul(hess, ta[:, :, None])[:, :, 0]
        if it == 0:
            nu[active] = _multiplier_guess(ta, ga, radius[active])
        target, nu[active] = _ball_newton_point(hess, c, radius[active], nu[active])
        step = target - ta
        alpha, z, fa = _armijo(link, xa, ra, wa, ta, z, fa, ga, step)
        theta[active] = ta + alpha[:, None] * step
        moved[active] = alpha * np.linalg.norm(step, axis=-1)
        nit[active] += 1

    return theta, status, nit, fun, res


def _row_groups(w):
    """Problems grouped by how many rows carry weight, with those rows' indices.

    Rows of weight 0 add exactly nothing to the loss, gradient and Hessian (e.g. the unplayed
    arm pairs of Greedy Sampling's pair statistics), so each problem is solved on its
    weighted rows only, padded with weight-0 rows to a power of two (at least ``_MIN_ROWS``;
    all N rows unless that at least halves them: few widths, so few groups). The padded
    width depends only on the problem's own weights: its numbers do not depend on the other
    problems of the batch.

    Args:
        w: Weights, shape (b, N).

    Returns:
        List of (problem indices (g,), row indices (g, width)), one per width in use; the
        problems that keep all rows (in their order) come as one group with ``None``.
    """
    n = w.shape[-1]
    count = np.maximum(np.count_nonzero(w, axis=-1), _MIN_ROWS)
    # the next power of two, kept where it halves the rows at least (each group costs its own
    # Newton loop, whose Python overhead dominates small problems)
    width = 2 ** np.ceil(np.log2(count)).astype(int)
    width = np.where(2 * width <= n, width, n)
    groups = [(np.flatnonzero(width == n), None)] if np.any(width == n) else []
    if np.all(width == n):
        return groups
    order = np.argsort(w == 0, axis=-1, kind="stable")  # weighted rows first, in order
    return groups + [(runs, order[runs, :m]) for m in np.unique(width[width < n])
                     for runs in [np.flatnonzero(width == m)]]


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
    the Newton point is inside the ball; on the sphere, Newton's method on the ball's
    multiplier from the previous one, two linear solves per step; else an eigendecomposition
    of the Hessian plus a secular-equation solve. With rank-deficient data, e.g. fewer
    comparisons than coordinates, the Hessian is singular, the optimum typically lies on the
    sphere and the step keeps the iterate in the span of the data; where the optimum is
    inside, it is the minimum-norm one) and takes an Armijo step towards it.
    It stops when the KKT residual of the mean loss is at most ``tol`` and the estimated
    distance to the optimum (last step length times the residual's last reduction) is at
    rounding level (1e-12 relative); a problem that meets ``tol`` but not that takes one
    more Newton step, which squares its error. So the estimate is the exact optimum to
    rounding (about 1e-12 in theta), not only to ``tol``; warm starts from a nearby optimum
    (a refit after a few more comparisons) typically take three iterations, cold fits five
    to eight. Rows of weight 0 are skipped (each problem is solved on its weighted rows).

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
    status = np.ones(nb, dtype=int)
    nit = np.zeros(nb, dtype=int)
    fun = np.zeros(nb)
    res = np.zeros(nb)
    for runs, rows in _row_groups(w):
        if rows is None:  # all rows; C order as the gathered groups (BLAS rounds
            # differently on other layouts, and a problem must not depend on its group)
            every = runs.size == nb
            xg = np.ascontiguousarray(x if every else x[runs])
            rg, wg = (r, w) if every else (r[runs], w[runs])
        else:
            pick = (runs[:, None], rows)
            xg, rg, wg = x[pick], r[pick], w[pick]
        theta[runs], status[runs], nit[runs], fun[runs], res[runs] = _newton(
            link, xg, rg, wg, theta[runs], float(S), tol, max_iter)
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


def _solve_program(cp, prob, var, solver=None) -> np.ndarray | None:
    """Solve a cvxpy reference program; the variable's value, or None when it failed.

    Clarabel at tight tolerances unless ``solver`` names another solver; such solves often
    end as "optimal_inaccurate" at ~1e-9, which is accepted.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        if solver is None:
            prob.solve(solver=cp.CLARABEL, **_CLARABEL_TIGHT)
        else:
            prob.solve(solver=solver)
    if var.value is None or prob.status not in ("optimal", "optimal_inaccurate"):
        return None
    return var.value


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
        value = _solve_program(cp, prob, var, solver)
        if value is None:
            status[b] = 5
            continue
        theta[b] = value
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
