"""Reference SNE solver: the convex program of spec gbpm.md section 8.2, one cvxpy solve each.

The SNE minimizes the dual gap, which for separable psi = sum_i f(p_i; rho_i) is

    DGap(p) = psi(p)/eta + min_lam [lam + (1/eta) sum_i f*(eta ((A p)_i - lam); rho_i)],

jointly convex in (p, lam), with optimal value 0. For KL the inner minimum is the
log-sum-exp; for a weighted sum of regularizers the conjugate of the sum is the infimal
convolution of the conjugates, written with one split variable per term. Slow (a Python loop
of cone programs); it exists as an independent check of :func:`rlhf_gbpm.solve_sne` and as
the baseline of ``benchmarks/bench_equilibrium.py``.
"""

from __future__ import annotations

import numpy as np

from rlhf_gbpm.errors import missing_dependency
from rlhf_gbpm.regularizers import (
    Chi2HalfRegularizer,
    KLRegularizer,
    L2Regularizer,
    SeparableRegularizer,
    SumRegularizer,
    TsallisRegularizer,
)

__all__ = ["solve_sne_cvxpy", "sne_problem"]

# Clarabel's defaults stop near 1e-8; the reference needs the tightest it can reach
_CLARABEL_TIGHT = {"tol_gap_abs": 1e-13, "tol_gap_rel": 1e-13, "tol_feas": 1e-13,
                   "tol_ktratio": 1e-10, "max_iter": 400}


def _import_cvxpy():
    try:
        import cvxpy as cp
    except ImportError as err:  # pragma: no cover - cvxpy is a core dependency
        raise missing_dependency("cvxpy", "cvxpy") from err
    return cp


def _psi(cp, reg: SeparableRegularizer, p, rho):
    """psi(p) as a cvxpy expression (up to an additive constant)."""
    if isinstance(reg, SumRegularizer):
        return sum(w * _psi(cp, c, p, rho) for w, c in zip(reg.weights, reg.components))
    if isinstance(reg, KLRegularizer):
        return cp.sum(cp.kl_div(p, rho))
    if isinstance(reg, Chi2HalfRegularizer):  # includes chi2 (scale 1)
        return reg._scale * cp.sum(cp.multiply(1.0 / rho, cp.square(p - rho)))
    if isinstance(reg, L2Regularizer):
        return 0.5 * cp.sum_squares(p - rho)
    if isinstance(reg, TsallisRegularizer):
        q = reg.q
        return cp.sum(cp.power(p, q)) / (q - 1.0)
    raise TypeError(f"no cvxpy form for {type(reg).__name__}.")


def _conj(cp, reg: SeparableRegularizer, z, rho):
    """sum_i f*(z_i; rho_i) as a cvxpy expression (convex in the affine z)."""
    if isinstance(reg, KLRegularizer):
        return cp.sum(cp.multiply(rho, cp.exp(z - 1.0)))
    if isinstance(reg, Chi2HalfRegularizer):
        c = reg._scale
        return c * cp.sum(cp.multiply(rho, cp.square(cp.pos(1.0 + z / (2.0 * c))))) - c
    if isinstance(reg, L2Regularizer):
        return 0.5 * cp.sum_squares(cp.pos(rho + z)) - 0.5 * float(np.sum(rho**2))
    if isinstance(reg, TsallisRegularizer):
        q = reg.q
        arg = (1.0 + (q - 1.0) * z) / q
        if q < 1.0:
            return cp.sum(cp.power(arg, q / (q - 1.0)))
        return cp.sum(cp.power(cp.pos(arg), q / (q - 1.0)))
    raise TypeError(f"no cvxpy form for {type(reg).__name__}.")


def sne_problem(A: np.ndarray, reg: SeparableRegularizer, eta: float, rho: np.ndarray):
    """Build the cvxpy problem whose minimizer is the SNE of one game.

    Args:
        A: Skew payoff, shape (K, K).
        reg: A built-in separable regularizer (KL, l2, chi2, chi2_half, Tsallis or a sum).
        eta: Finite strength > 0.
        rho: Reference policy, shape (K,).

    Returns:
        Tuple (problem, p) of the cvxpy Problem and its policy variable.
    """
    cp = _import_cvxpy()
    K = A.shape[-1]
    p = cp.Variable(K, nonneg=True)
    y = A @ p
    cons = [cp.sum(p) == 1]
    if isinstance(reg, KLRegularizer):
        inner = cp.log_sum_exp(eta * y + np.log(rho)) / eta
    else:
        lam = cp.Variable()
        parts = list(zip(reg.weights, reg.components)) if isinstance(reg, SumRegularizer) \
            else [(1.0, reg)]
        if len(parts) == 1:
            w, comp = parts[0]
            inner = lam + w * _conj(cp, comp, eta * (y - lam) / w, rho) / eta
        else:
            vs = [cp.Variable(K) for _ in parts]
            cons.append(sum(vs) == y - lam)
            inner = lam + sum(w * _conj(cp, comp, eta * v / w, rho) for v, (w, comp)
                              in zip(vs, parts)) / eta
    objective = _psi(cp, reg, p, rho) / eta + inner
    return cp.Problem(cp.Minimize(objective), cons), p


def solve_sne_cvxpy(A: np.ndarray, reg: SeparableRegularizer, eta: np.ndarray,
                    rho: np.ndarray, *, solver: str = "CLARABEL", **solver_options):
    """Solve flat problems one at a time with cvxpy.

    Args:
        A: Skew payoffs, shape (B, K, K).
        reg: The regularizer.
        eta: Finite strengths, shape (B,).
        rho: References, shape (B, K).
        solver: cvxpy solver name.
        **solver_options: Passed to ``Problem.solve``.

    Returns:
        Tuple (policy (B, K), status (B,), nit (B,)); status 5 where the solver failed.
    """
    cp = _import_cvxpy()
    B, K = rho.shape
    policy = np.full((B, K), 1.0 / K)
    status = np.zeros(B, dtype=int)
    nit = np.zeros(B, dtype=int)
    if solver == "CLARABEL" and not solver_options:
        solver_options = dict(_CLARABEL_TIGHT)
    for b in range(B):
        prob, p = sne_problem(A[b], reg, float(eta[b]), rho[b])
        try:
            prob.solve(solver=solver, **solver_options)
        except cp.error.SolverError:
            status[b] = 5
            continue
        if prob.status not in ("optimal", "optimal_inaccurate") or p.value is None:
            status[b] = 5
            continue
        x = np.clip(np.asarray(p.value, dtype=float), 0.0, None)
        policy[b] = x / x.sum()
        stats = prob.solver_stats
        nit[b] = int(stats.num_iters) if stats is not None and stats.num_iters else 0
    return policy, status, nit
