"""Regularized symmetric Nash equilibria (SNE) of skew-symmetric games, best responses, J_eta.

For a skew payoff A (J(p, q) = 1/2 + p^T A q) and a regularizer psi, the eta-regularized game
has a unique SNE p* = BR(A p*) with BR(y) = argmax_q <q, y> - psi(q)/eta (spec gbpm.md
section 8). Its dual gap

    DGap(p) = psi(p)/eta + max_q [q^T A p - psi(q)/eta] = D_psi(p, BR(A p)) / eta

is non-negative and zero exactly at the SNE; the Bregman form on the right (valid because
p^T A p = 0) is how it is computed, free of cancellation.

Solver ("newton", the default for finite eta). Write s = eta * A p for the scores and
BR_1(s) = argmax_q <q, s> - psi(q), so that p = BR_1(s). The SNE is the root of

    F(s) = s - eta * A BR_1(s).

The Jacobian of BR_1 is J = diag(d) - d d^T / sum(d) (symmetric PSD, d_i = h_i'), so the
eigenvalues of A J are imaginary and I - eta A J is always invertible: Newton's method in
score space is well defined at every eta. It is globalized by a backtracking line search on
||F||^2: a cold start with eta <= 1e3 first runs it at the target directly, from s = 0 (the
reference policy) or from the linear predictor eta A BR_1(0), whichever has the smaller
residual; otherwise, and where that fails, it runs inside a homotopy from a known root:
eta-continuation along s*(eta) (tangent predictor, Newton corrector, steps that shrink after
a failure and grow after a success). Warm starts follow a path of skew games whose first
member has the warm start as its exact solution (``rlhf_gbpm._sne_newton``). Everything is
batched: every problem of the batch has its own eta, continuation stage and step length.
eta = inf is solved by a linear program per problem (scipy HiGHS). See ``docs/core.md`` for
the details and measurements.

References:
    Lee, Hong, Jun, Yun, Yun. "Regularized Online RLHF with Generalized Bilinear
    Preferences", arXiv:2602.23116, 2026.
"""

from __future__ import annotations

import logging
import numbers
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rlhf_gbpm._results import SolverResult, messages_for
from rlhf_gbpm._sne_newton import NewtonProblems, newton_solve, single_thread_blas
from rlhf_gbpm._validation import check_array, check_eta, check_scalar, check_simplex
from rlhf_gbpm.regularizers import (
    Regularizer,
    SeparableRegularizer,
    _as_regularizer,
    _probe_user_regularizer,
)

__all__ = ["SNEResult", "solve_sne", "best_response", "dual_gap", "j_eta", "SNE_METHODS"]

logger = logging.getLogger(__name__)

SNE_METHODS = ("auto", "newton", "lp", "cvxpy")
"""Valid ``method`` names of :func:`solve_sne`."""

_CHECK_BLOCK = 32768  # matrix entries per block of the skew-symmetry check (256 KiB)



@dataclass(frozen=True)
class SNEResult(SolverResult):
    """Outcome of :func:`solve_sne`, batch-first.

    Attributes:
        x: The equilibrium policies, shape (*batch, K) (also :attr:`policy`).
        success: Converged, bool of shape batch.
        status: 0 converged, 1 iteration limit, 2 line search/continuation failed,
            3 stopped by the callback, 4 non-finite values, 5 LP failure; shape batch.
        message: One message per problem (``rlhf_gbpm._results.STATUS_MESSAGES``).
        nit: Newton iterations (LP: simplex/IPM iterations), shape batch.
        dual_gap: DGap_eta of the returned policy, shape batch (the certificate).
        residual: ||BR(A p) - p||_inf, shape batch.
        eta: The strengths the problems were solved at, shape batch.
        scores: The solver's dual variables s = eta A p, shape (*batch, K) (None for the
            LP); passing the result as ``warm_start`` reuses them.
    """

    dual_gap: np.ndarray
    residual: np.ndarray
    eta: np.ndarray
    scores: np.ndarray | None = None

    @property
    def policy(self) -> np.ndarray:
        """The equilibrium policies, shape (*batch, K)."""
        return self.x


# ---------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------


def _check_payoff(A, name: str = "A", sizes: dict | None = None) -> np.ndarray:
    A = check_array(A, name, shape=("...", "K", "K"), sizes=sizes)
    if A.size == 0:
        return A.copy()
    # max|A + A^T| over cache-sized blocks of matrices (one (B, K, K) temporary costs page
    # faults and cache misses: 6-9x slower at B = 100-200, K = 40)
    K = A.shape[-1]
    flat = A.reshape(-1, K, K)
    step = max(1, _CHECK_BLOCK // (K * K))
    err = 0.0
    for start in range(0, flat.shape[0], step):
        blk = flat[start:start + step]
        sym = blk + np.swapaxes(blk, -1, -2)
        err = max(err, float(sym.max()), -float(sym.min()))
    if err == 0.0:  # exactly skew already (e.g. from payoff_matrix): no copy
        return A
    scale = max(1.0, float(np.max(A)), -float(np.min(A)))
    if err > 1e-9 * scale:
        raise ValueError(
            f"{name} must be skew-symmetric (A^T == -A), got max|A + A^T| == {err:.3g}."
        )
    out = A - np.swapaxes(A, -1, -2)  # exactly skew in floating point
    out *= 0.5
    return out


def _resolve_regularizer(regularizer, reference=None) -> Regularizer:
    reg = _as_regularizer(regularizer)
    if reference is not None:
        reg = reg.with_reference(reference)
    return reg


def _ref_batch(reg: Regularizer) -> tuple[int, ...]:
    if reg.reference is None:
        return ()
    return tuple(reg.reference.shape[:-1])


def _flat_reference(reg: Regularizer, shape: tuple[int, ...]) -> np.ndarray:
    """The reference broadcast to shape (..., K) and flattened to (B, K)."""
    return np.ascontiguousarray(reg._ref_for(np.empty(shape))).reshape(-1, shape[-1])


# ---------------------------------------------------------------------------------------
# best response, J_eta, dual gap
# ---------------------------------------------------------------------------------------


def _argmax_uniform(y: np.ndarray) -> np.ndarray:
    """Uniform distribution over the maximizers of each row (eta = inf best response)."""
    top = y >= np.max(y, axis=-1, keepdims=True) - 1e-12 * np.maximum(
        1.0, np.max(np.abs(y), axis=-1, keepdims=True))
    return top / top.sum(axis=-1, keepdims=True)


def best_response(y, regularizer: str | Regularizer, eta) -> np.ndarray:
    """Regularized best response BR(y) = argmax_{q in simplex} <q, y> - psi(q) / eta.

    Args:
        y: Payoff vectors, shape (..., K) (for the game, y = A p).
        regularizer: A regularizer or its registry name.
        eta: Strength in (0, inf], scalar or an array broadcast against the batch shape
            (...); inf gives the uniform distribution over the maximizers of y.

    Returns:
        Best responses, shape (..., K) (batch axes broadcast with ``eta``).

    Raises:
        ValueError: If ``eta <= 0`` or NaN, or shapes do not match.
    """
    reg = _as_regularizer(regularizer)
    y = check_array(y, "y", shape=("...", "K"))
    eta = check_eta(eta)
    batch = np.broadcast_shapes(y.shape[:-1], eta.shape)
    y = np.broadcast_to(y, batch + y.shape[-1:])
    eta = np.broadcast_to(eta, batch)
    finite = np.isfinite(eta)
    out = np.empty(y.shape)
    if np.any(finite):
        out[finite] = reg.best_response(y[finite], eta[finite])
    if np.any(~finite):
        out[~finite] = _argmax_uniform(y[~finite])
    return out


def _psi_over_eta(reg: Regularizer, p: np.ndarray, eta: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        val = reg.value(p) / eta
    return np.where(np.isinf(eta), 0.0, val)


def j_eta(p, q, A, regularizer: str | Regularizer, eta) -> np.ndarray:
    """Regularized payoff J_eta(p, q) = 1/2 + p^T A q - psi(p)/eta + psi(q)/eta.

    Args:
        p: Max-player policies, shape (..., K).
        q: Min-player policies, shape (..., K).
        A: Skew-symmetric payoffs, shape (..., K, K).
        regularizer: A regularizer or its registry name.
        eta: Strength in (0, inf], scalar or broadcast against the batch shape.

    Returns:
        Values, shape (...) (broadcast batch shape).

    Raises:
        ValueError: If A is not skew, a policy is off the simplex, eta <= 0, or shapes
            mismatch.
    """
    reg = _as_regularizer(regularizer)
    sizes: dict[str, int] = {}
    A = _check_payoff(A, sizes=sizes)
    p = check_simplex(p, "p", sizes=sizes)
    q = check_simplex(q, "q", sizes=sizes)
    eta = check_eta(eta)
    bilinear = np.einsum("...i,...ij,...j->...", p, A, q)
    return 0.5 + bilinear - _psi_over_eta(reg, p, eta) + _psi_over_eta(reg, q, eta)


def _dual_gap_flat(p: np.ndarray, A: np.ndarray, reg: Regularizer, eta: np.ndarray,
                   rho: np.ndarray | None, *, residual: bool = True
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """Dual gap and fixed-point residual of trusted flat problems.

    Args:
        p: Policies, shape (B, K).
        A: Skew payoffs, shape (B, K, K).
        reg: The regularizer.
        eta: Strengths in (0, inf], shape (B,).
        rho: The separable regularizer's references, shape (B, K), else None.
        residual: Also compute ||BR(A p) - p||_inf; False skips it (the regret monitor's
            case) and returns None in its place. The gaps are the same bits either way.

    Returns:
        (gaps (B,), residuals (B,) or None).
    """
    y = np.matmul(A, p[:, :, None])[:, :, 0]  # 3x faster than einsum for small K
    gap = np.empty(p.shape[0])
    res = np.empty(p.shape[0]) if residual else None
    inf = np.isinf(eta)
    some_inf = bool(np.any(inf))
    if some_inf:
        gap[inf] = np.max(y[inf], axis=-1)
        if residual:
            res[inf] = np.max(np.abs(_argmax_uniform(y[inf]) - p[inf]), axis=-1)
    # the finite problems: every row when no eta is infinite (no gathers)
    fin = ~inf if some_inf else slice(None)
    if not some_inf or np.any(fin):
        pf, yf, ef = p[fin], y[fin], eta[fin]
        s = yf * ef[:, None]
        if isinstance(reg, SeparableRegularizer):
            rf = rho[fin]
            q, _, lam = reg.br1(s, rf)
            gap[fin] = reg._bregman(pf, q, s - lam[:, None], rf) / ef
        else:
            q = reg.best_response(yf, ef)
            gap[fin] = (reg.value(pf) - reg.value(q)) / ef + np.sum(q * yf, axis=-1)
        if residual:
            res[fin] = np.max(np.abs(q - pf), axis=-1)
    return np.maximum(gap, 0.0), res


def dual_gap(policy, A, regularizer: str | Regularizer, eta) -> np.ndarray:
    """Dual gap DGap_eta(p) = psi(p)/eta + max_q [q^T A p - psi(q)/eta] of policies.

    Computed through the closed-form best response q = BR(A p) as the Bregman divergence
    D_psi(p, q)/eta (no cancellation); eta = inf gives max_j (A p)_j. Rounding below zero
    is clipped at 0.

    Args:
        policy: Policies on the simplex, shape (..., K).
        A: Skew-symmetric payoffs, shape (..., K, K).
        regularizer: A regularizer or its registry name (its reference is used).
        eta: Strength in (0, inf], scalar or broadcast against the batch shape.

    Returns:
        Gaps, shape (...); non-negative, zero exactly at the SNE.

    Raises:
        ValueError: If A is not skew-symmetric, the policy is off the simplex, eta <= 0 or
            NaN, or the shapes do not match.
    """
    reg = _as_regularizer(regularizer)
    sizes: dict[str, int] = {}
    A = _check_payoff(A, sizes=sizes)
    p = check_simplex(policy, "policy", sizes=sizes)
    eta = check_eta(eta)
    K = sizes["K"]
    batch = np.broadcast_shapes(A.shape[:-2], p.shape[:-1], eta.shape, _ref_batch(reg))
    B = int(np.prod(batch, dtype=int))
    pf = np.broadcast_to(p, batch + (K,)).reshape(B, K)
    Af = np.broadcast_to(A, batch + (K, K)).reshape(B, K, K)
    ef = np.broadcast_to(eta, batch).reshape(B)
    rho = _flat_reference(reg, batch + (K,)) if isinstance(reg, SeparableRegularizer) else None
    gap, _ = _dual_gap_flat(pf, Af, reg, ef, rho)
    return gap.reshape(batch)


# ---------------------------------------------------------------------------------------
# eta = inf: linear program
# ---------------------------------------------------------------------------------------


def _solve_lp(A: np.ndarray):
    """Unregularized symmetric NE by the LP max v s.t. A^T p >= v 1, p in simplex."""
    from scipy.optimize import linprog

    B, K = A.shape[0], A.shape[-1]
    policy = np.empty((B, K))
    status = np.zeros(B, dtype=int)
    nit = np.zeros(B, dtype=int)
    c = np.zeros(K + 1)
    c[-1] = -1.0
    a_eq = np.concatenate([np.ones(K), [0.0]])[None]
    bounds = [(0.0, None)] * K + [(None, None)]
    for b in range(B):
        a_ub = np.concatenate([-A[b].T, np.ones((K, 1))], axis=1)
        res = linprog(c, A_ub=a_ub, b_ub=np.zeros(K), A_eq=a_eq, b_eq=[1.0], bounds=bounds,
                      method="highs",
                      options={"primal_feasibility_tolerance": 1e-10,
                               "dual_feasibility_tolerance": 1e-10})
        if res.status != 0 or res.x is None:
            status[b] = 5
            policy[b] = 1.0 / K
        else:
            x = np.clip(res.x[:K], 0.0, None)
            policy[b] = x / x.sum()
            nit[b] = int(getattr(res, "nit", 0))
    return policy, status, nit


# ---------------------------------------------------------------------------------------
# dispatcher
# ---------------------------------------------------------------------------------------


def solve_sne(A, regularizer: str | Regularizer, eta, reference=None, warm_start=None, *,
              method: str = "auto", tol: float = 1e-12, max_iter: int = 500,
              callback: Callable | None = None) -> SNEResult:
    """Regularized symmetric Nash equilibria of skew-symmetric games, batched.

    Args:
        A: Skew-symmetric payoffs (J(p, q) = 1/2 + p^T A q), shape (..., K, K).
        regularizer: A regularizer or its registry name (``get_regularizer``).
        eta: Strength in (0, inf], scalar or an array broadcast against the batch shape
            (a sweep over eta is one call); inf means unregularized (LP).
        reference: Optional reference policy, shape (K,) or (..., K), replacing the
            regularizer's.
        warm_start: A previous policy batch (..., K) or a previous :class:`SNEResult`
            (its scores are reused, rescaled to the new eta): a re-solve after a small change
            of A then takes 1-3 Newton steps.
        method: One of ``SNE_METHODS``: ``"auto"`` (Newton for finite eta, LP for inf),
            ``"newton"``, ``"lp"`` (eta must be inf) or ``"cvxpy"`` (the convex program of
            spec section 8.2 per problem; slow, a reference).
        tol: Target ||BR(A p) - p||_inf (reached up to rounding; see ``success``).
        max_iter: Newton iterations allowed per problem, >= 1.
        callback: Called after each Newton iteration with the intermediate
            :class:`SNEResult`; raising ``StopIteration`` stops with status 3.

    Returns:
        An :class:`SNEResult` with batch shape broadcast(A.shape[:-2], eta.shape,
        reference batch shape).

    Raises:
        ValueError: If A is not skew or square, eta <= 0 or NaN, a reference lacks the
            support its regularizer needs, a warm start is off the simplex, or ``method`` is
            unknown (the message lists ``SNE_METHODS``).
        TypeError: If the regularizer is not a Regularizer or a name.
        RegularizerError: If a user-written separable regularizer raises or returns NaN
            where it is probed (one interior point of the simplex, before solving).
    """
    if method not in SNE_METHODS:
        raise ValueError(f"method == {method!r}, must be one of {SNE_METHODS}.")
    check_scalar(tol, "tol", numbers.Real, min_val=0.0, include_boundaries="neither")
    check_scalar(max_iter, "max_iter", numbers.Integral, min_val=1)
    reg = _resolve_regularizer(regularizer, reference)
    sizes: dict[str, int] = {}
    A = _check_payoff(A, sizes=sizes)
    eta = check_eta(eta)
    K = sizes["K"]
    batch = np.broadcast_shapes(A.shape[:-2], eta.shape, _ref_batch(reg))
    B = int(np.prod(batch, dtype=int))
    Af = np.ascontiguousarray(np.broadcast_to(A, batch + (K, K)).reshape(B, K, K))
    ef = np.broadcast_to(eta, batch).reshape(B).copy()
    sep = isinstance(reg, SeparableRegularizer)
    rho = _flat_reference(reg, batch + (K,)) if sep else None
    if sep:
        _probe_user_regularizer(reg, K)
    inf = np.isinf(ef)
    if method == "lp" and not np.all(inf):
        raise ValueError("method == 'lp' solves the unregularized game only; eta must be inf.")
    if method == "newton" and np.any(inf):
        raise ValueError("method == 'newton' needs finite eta; use 'auto' or 'lp' for inf.")
    generic = not sep and hasattr(reg, "solve_sne_generic")
    if not sep and not generic and np.any(~inf) and method in ("auto", "newton"):
        raise TypeError(
            "solve_sne's Newton method needs a SeparableRegularizer (elementwise f and "
            "f_prime) or a rlhf_gbpm.custom_regularizers.GenericRegularizer (value and "
            f"gradient), got {type(reg).__name__}."
        )
    if generic and method in ("auto", "newton"):
        return _solve_generic(Af, reg, ef, warm_start, batch, K, tol=tol, max_iter=max_iter)

    s0 = _warm_scores(warm_start, Af, ef, batch, K, reg, rho)

    policy = np.empty((B, K))
    scores = np.full((B, K), np.nan)
    status = np.zeros(B, dtype=int)
    nit = np.zeros(B, dtype=int)
    if np.any(inf):
        idx = np.flatnonzero(inf)
        policy[idx], status[idx], nit[idx] = _solve_lp(Af[idx])
    fin = np.flatnonzero(~inf)
    if fin.size and method == "cvxpy" and not sep:
        raise TypeError(
            f"method == 'cvxpy' supports the built-in separable regularizers, got "
            f"{type(reg).__name__}."
        )
    if fin.size and method == "cvxpy":
        from rlhf_gbpm._sne_cvxpy import solve_sne_cvxpy

        policy[fin], status[fin], nit[fin] = solve_sne_cvxpy(Af[fin], reg, ef[fin], rho[fin])
    elif fin.size:
        prob = NewtonProblems(Af[fin], ef[fin], reg, rho[fin], None if s0 is None else s0[fin])

        def make_result(s, st, it):
            p, _, _ = reg.br1(s, prob.rho)
            full = policy.copy()
            full[fin] = p
            stat = status.copy()
            stat[fin] = np.maximum(st, 0)
            its = nit.copy()
            its[fin] = it
            return _build_result(full, Af, reg, ef, rho, stat, its, batch, None)

        with single_thread_blas(K):
            s, policy[fin], st, it = newton_solve(prob, tol=tol, max_iter=max_iter,
                                                  callback=callback, make_result=make_result)
        scores[fin] = s
        status[fin], nit[fin] = st, it
        stalled = (st == 2) | (st == 4)  # not the caller's own stops (max_iter, callback)
        if method == "auto" and np.any(stalled):
            _convex_program_fallback(fin[stalled], policy, status, scores, Af, reg, ef, rho)
    return _build_result(policy, Af, reg, ef, rho, status, nit, batch,
                         scores if fin.size else None)


_FALLBACK_GAP = 1e-9  # certificate a convex-program fallback must reach to count as converged


def _convex_program_fallback(idx, policy, status, scores, Af, reg, ef, rho) -> None:
    """Re-solve the problems where Newton stalled with the convex program of spec section 8.2.

    Newton can stall on piecewise-linear best responses (l2, chi2) at eta >~ 1e4, where the
    game is nearly unregularized. The cvxpy program (Clarabel, tight tolerances) does not; its
    answer is kept only if its dual-gap certificate is <= 1e-9 and beats Newton's. Rare by
    construction, so the per-problem cost does not matter; without cvxpy nothing changes.
    """
    try:
        from rlhf_gbpm._sne_cvxpy import solve_sne_cvxpy

        with warnings.catch_warnings():  # the certificate below judges the answer
            warnings.simplefilter("ignore", UserWarning)
            cand, cstat, _ = solve_sne_cvxpy(Af[idx], reg, ef[idx], rho[idx])
    except (ImportError, TypeError, ValueError) as err:  # no cvxpy form / not installed
        logger.debug("solve_sne: no convex-program fallback (%s)", err)
        return
    cand = np.clip(cand, 0.0, None)
    cand /= cand.sum(axis=-1, keepdims=True)
    new_gap, _ = _dual_gap_flat(cand, Af[idx], reg, ef[idx], rho[idx])
    old_gap, _ = _dual_gap_flat(policy[idx], Af[idx], reg, ef[idx], rho[idx])
    better = (cstat == 0) & (new_gap <= _FALLBACK_GAP) & (new_gap <= old_gap)
    if np.any(better):
        take = idx[better]
        policy[take] = cand[better]
        status[take] = 0
        scores[take] = np.nan  # no Newton scores for these: a warm start re-solves them cold
        logger.debug("solve_sne: convex-program fallback solved %d problem(s)", take.size)


def _solve_generic(Af, reg, ef, warm_start, batch, K, *, tol, max_iter) -> SNEResult:
    """User regularizers without a closed-form best response (generic exact Newton)."""
    B = Af.shape[0]
    policy = np.empty((B, K))
    status = np.zeros(B, dtype=int)
    nit = np.zeros(B, dtype=int)
    inf = np.isinf(ef)
    if np.any(inf):
        idx = np.flatnonzero(inf)
        policy[idx], status[idx], nit[idx] = _solve_lp(Af[idx])
    fin = np.flatnonzero(~inf)
    if fin.size:
        p0 = None
        if warm_start is not None:
            ws = warm_start.policy if isinstance(warm_start, SNEResult) else warm_start
            ws = check_simplex(ws, "warm_start")
            p0 = np.broadcast_to(ws, batch + (K,)).reshape(B, K)[fin]
            p0 = 0.9 * p0 + 0.1 / K  # start strictly inside the simplex
        # the generic method's tolerance is on the natural residual; 1e-12 is its floor
        p, ok, it = reg.solve_sne_generic(Af[fin], ef[fin], warm_start=p0, tol=max(tol, 1e-12),
                                          max_iter=min(max_iter, 200))
        policy[fin], status[fin], nit[fin] = p, np.where(ok, 0, 1), it
    return _build_result(policy, Af, reg, ef, None, status, nit, batch, None)


def _build_result(policy, Af, reg, ef, rho, status, nit, batch, scores) -> SNEResult:
    K = policy.shape[-1]
    gap, res = _dual_gap_flat(policy, Af, reg, ef, rho)
    if np.any(status > 0):
        logger.debug("solve_sne: %d of %d problems did not converge", int(np.sum(status > 0)),
                     status.size)
    return SNEResult(
        x=policy.reshape(batch + (K,)),
        success=(status == 0).reshape(batch),
        status=status.reshape(batch),
        message=messages_for(status),
        nit=nit.reshape(batch),
        dual_gap=gap.reshape(batch),
        residual=res.reshape(batch),
        eta=ef.reshape(batch).copy(),
        scores=None if scores is None else scores.reshape(batch + (K,)),
    )


def _warm_scores(warm_start, Af, ef, batch, K, reg, rho):
    """Initial scores (B, K) from a warm start (rows of NaN start cold), or None."""
    if warm_start is None:
        return None
    B = Af.shape[0]
    if isinstance(warm_start, SNEResult) and warm_start.scores is not None:
        try:
            old_s = np.broadcast_to(warm_start.scores, batch + (K,)).reshape(B, K)
            old_e = np.broadcast_to(warm_start.eta, batch).reshape(B)
        except ValueError as err:
            raise ValueError(
                f"warm_start has batch shape {warm_start.eta.shape}, which does not "
                f"broadcast to {batch}."
            ) from err
        with np.errstate(invalid="ignore"):
            return old_s * (ef / old_e)[:, None]
    if isinstance(warm_start, SNEResult):
        warm_start = warm_start.policy
    p0 = check_simplex(warm_start, "warm_start", shape=("...", K))
    try:
        p0 = np.broadcast_to(p0, batch + (K,)).reshape(B, K)
    except ValueError as err:
        raise ValueError(
            f"warm_start must broadcast to shape {batch + (K,)}, got {p0.shape}."
        ) from err
    if rho is None:
        return None
    # scores whose best response is p0 itself: s = f'(p0) (shift-invariant)
    with np.errstate(all="ignore"):
        s0 = reg.f_prime(np.clip(p0, 1e-300, None), rho)
    return np.where(np.all(np.isfinite(s0), axis=-1, keepdims=True), s0, np.nan)
