"""Exact generic solver for variational inequalities on the simplex with a smooth convex psi.

Used by regularizers that are not separable or give no closed-form best response (the torch and
cvxpy routes of ``rlhf_gbpm.custom_regularizers``). It finds p in the simplex with

    <grad psi(p) - eta (A p + c), q - p> >= 0   for every q in the simplex,

which is the SNE for c = 0 (A skew) and the best response BR(c) for A = 0. The map is
strongly monotone (A is skew and psi strongly convex), so the solution is unique.

Method: a primal active-set Newton iteration on the KKT system restricted to the free
coordinates, [H - eta A_ff, -1; 1^T, 0] [delta; lam] = [-F_f; 0], with a ratio test that keeps
p in the simplex (coordinates may reach 0 only when grad psi is finite there), a backtracking
line search on the natural residual ||p - Proj(p - F(p))||^2 (zero exactly at the solution),
coordinates re-entering the free set when their multiplier has the wrong sign, and
eta-continuation when a direct solve stalls. Problems are solved one at a time: this is the
flexible path, not the fast one.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["project_simplex", "solve_vi"]

_MAX_HALVINGS = 40


def project_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection onto the probability simplex along the last axis.

    Args:
        v: Vectors, shape (..., K).

    Returns:
        Projections, shape (..., K).
    """
    v = np.asarray(v, dtype=float)
    u = -np.sort(-v, axis=-1)
    css = np.cumsum(u, axis=-1) - 1.0
    k = np.arange(1, v.shape[-1] + 1)
    cond = u - css / k > 0
    rho = np.sum(cond, axis=-1, keepdims=True)
    theta = np.take_along_axis(css, rho - 1, axis=-1) / rho
    return np.maximum(v - theta, 0.0)


def _natural_residual(p: np.ndarray, F: np.ndarray) -> float:
    return float(np.max(np.abs(p - project_simplex(p - F))))


def _solve_fixed_eta(A, c, eta, grad, hess, p, *, tol, max_iter):
    """Newton iterations at one eta; returns (p, converged, iterations)."""
    K = p.shape[0]
    free = p > 0.0

    def field(x):
        g = grad(x)
        return g - eta * (A @ x + c) if A is not None else g - eta * c

    F = field(p)
    if not np.all(np.isfinite(F)):
        return p, False, 0
    res = _natural_residual(p, F)
    for it in range(1, max_iter + 1):
        if res <= tol:
            return p, True, it - 1
        f = np.flatnonzero(free)
        n = f.size
        H = hess(p)[np.ix_(f, f)]
        if A is not None:
            H = H - eta * A[np.ix_(f, f)]
        M = np.zeros((n + 1, n + 1))
        M[:n, :n] = H
        M[:n, n] = -1.0
        M[n, :n] = 1.0
        rhs = np.zeros(n + 1)
        rhs[:n] = -F[f]
        try:
            sol = np.linalg.solve(M, rhs)
        except np.linalg.LinAlgError:
            return p, False, it
        delta = np.zeros(K)
        delta[f] = sol[:n]
        lam = sol[n]
        neg = delta < 0
        alpha_max = np.min(p[neg] / -delta[neg]) if np.any(neg) else np.inf
        alpha = min(1.0, alpha_max)
        hit = alpha_max <= 1.0
        accepted = False
        for _ in range(_MAX_HALVINGS):
            trial = p + alpha * delta
            if hit and alpha == alpha_max:
                trial[neg & (p / np.maximum(-delta, 1e-300) <= alpha_max * (1 + 1e-12))] = 0.0
            trial = np.maximum(trial, 0.0)
            trial /= trial.sum()
            Ft = field(trial)
            if np.all(np.isfinite(Ft)):  # -inf on a zero coordinate: a barrier, reject
                rt = _natural_residual(trial, Ft)
                if rt <= (1.0 - 1e-4 * alpha) * res or rt <= tol:
                    accepted = True
                    break
            alpha *= 0.5
            hit = False
        if not accepted:
            return p, False, it
        p, F, res = trial, Ft, rt
        free = p > 0.0
        # coordinates at zero whose multiplier says they want mass re-enter the free set
        if np.any(~free):
            lam = float(np.mean(F[free]))
            wants = (~free) & (F < lam - tol)
            free |= wants
    return p, res <= tol, max_iter


def solve_vi(A: np.ndarray | None, c: np.ndarray, eta: float, grad: Callable, hess: Callable,
             p0: np.ndarray, *, tol: float = 1e-11, max_iter: int = 100,
             continuation: float = 4.0) -> tuple[np.ndarray, bool, int]:
    """Solve the simplex VI with field grad psi(p) - eta (A p + c) for one problem.

    Args:
        A: Skew payoff, shape (K, K), or None (best response).
        c: Linear term, shape (K,).
        eta: Strength in (0, inf).
        grad: p (K,) -> grad psi(p) (K,).
        hess: p (K,) -> Hessian of psi (K, K).
        p0: Starting policy in the simplex interior, shape (K,).
        tol: Tolerance on the natural residual (sup norm).
        max_iter: Newton iterations per continuation stage.
        continuation: Growth factor of eta between stages when a direct solve stalls
            (<= 1 disables continuation).

    Returns:
        (policy (K,), converged, total iterations).
    """
    p, ok, nit = _solve_fixed_eta(A, c, eta, grad, hess, p0, tol=tol, max_iter=max_iter)
    if ok or continuation <= 1.0:
        return p, ok, nit
    # eta-continuation from a strength where Newton converges from the start point
    stage_eta = min(eta, 1.0)
    p = p0.copy()
    total = nit
    while True:
        p, ok, n = _solve_fixed_eta(A, c, stage_eta, grad, hess, p, tol=tol, max_iter=max_iter)
        total += n
        if not ok:
            return p, False, total
        if stage_eta >= eta:
            return p, True, total
        stage_eta = min(eta, stage_eta * continuation)
