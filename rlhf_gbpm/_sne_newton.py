"""Batched score-space Newton solver for regularized symmetric Nash equilibria (private).

Used by :func:`rlhf_gbpm.equilibrium.solve_sne`; see that module's docstring and
``docs/core.md`` for the method (Newton on F(s; t) = s - M(t) BR_1(s) with an Armijo line
search on ||F||^2; every problem first tries the target t = 1 directly and falls back to a
homotopy t: 0 -> 1 from a known root where that fails).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np

from rlhf_gbpm.regularizers import SeparableRegularizer

__all__ = ["NewtonProblems", "newton_solve", "single_thread_blas"]

_EPS = np.finfo(float).eps
_STAGE_TOL = 1e-2  # relative score residual that ends an intermediate continuation stage
_STAGE_MAXIT = 15  # Newton iterations allowed per continuation stage
_LS_MAXHALF = 8  # step halvings before the line search gives up
_DIRECT_ETA = 1e3  # cold starts up to this eta try damped Newton at the target directly
_COLD_ETA = 30.0  # other cold starts (and failed direct ones) continue from min(eta, this)
_GROWTH0 = 10.0  # initial continuation factor
_WARM_TO_COLD = True  # a failed direct warm step restarts cold instead of walking the warm path
_THREADED_K = 512  # above this K the Newton solves keep BLAS's threads
_GATHER_K = 64  # up to this K Newton matrices are factorized at full size (no support gather)


def _jacobian_solve(M: np.ndarray, d: np.ndarray, rhs: np.ndarray, scale=None):
    """Solve (I - c M J) x = rhs with J = diag(d) - d d^T / sum(d).

    Shapes: M (B, K, K), d and rhs (B, K), c = ``scale`` (B,) or 1.

    Columns of J vanish off the support {d_i > 0} (entries with d_i below 1e-13 max(d) count
    as off the support; this only perturbs the Newton matrix, never the residual), so the
    matrix is the identity in those columns. For K <= ``_GATHER_K`` every problem is solved
    at the full size K; above it only an m x m block needs a dense solve, m the problem's
    support size, and problems are grouped by m. Either way a problem's arithmetic is
    independent of its batch-mates (run i of a sweep == the same run alone).
    """
    B, K = d.shape
    d = np.where(d > 1e-13 * np.max(d, axis=-1, keepdims=True), d, 0.0)
    if scale is not None:
        scale = np.asarray(scale)
    if K <= _GATHER_K:
        return _dense_solve(M, d, rhs, scale)
    sizes = np.sum(d > 0, axis=-1)
    sizes = np.where(sizes >= 0.75 * K, K, sizes)  # (nearly) full support: no gathering
    x = np.empty_like(rhs)
    for m in np.unique(sizes):
        rows = np.flatnonzero(sizes == m)
        sub = (slice(None) if rows.size == B else rows)
        sc = None if scale is None else scale[sub]
        if m == K:
            x[sub] = _dense_solve(M[sub], d[sub], rhs[sub], sc)
        else:
            x[sub] = _support_solve(M[sub], d[sub], rhs[sub], sc, int(m))
    return x


def _dense_solve(M, d, rhs, scale):
    """(I - c M J) x = rhs at full size: M (B, K, K), d and rhs (B, K), c (B,) or None."""
    K = d.shape[-1]
    e = d if scale is None else d * scale[:, None]
    md = np.matmul(M, d[:, :, None]) / d.sum(axis=-1)[:, None, None]  # (B, K, 1)
    mat = md - M
    mat *= e[:, None, :]  # -c M J = c (M d d^T / sum(d) - M diag(d))
    diag = np.arange(K)
    mat[:, diag, diag] += 1.0
    return np.linalg.solve(mat, rhs[..., None])[..., 0]


def _support_solve(M, d, rhs, scale, m: int):
    """(I - c M J) x = rhs for problems whose support has size m < K (dense on the support).

    Shapes: M (B, K, K), d and rhs (B, K), c (B,) or None.
    """
    idx = np.argsort(-d, axis=-1)[:, :m]
    ds = np.take_along_axis(d, idx, axis=-1)
    m_cols = np.take_along_axis(M, idx[:, None, :], axis=-1)  # M[:, :, S], (B, K, m)
    rhs_s = np.take_along_axis(rhs, idx, axis=-1)
    # -c M_{.S} J_SS = -c [M_{.S} diag(d_S) - (M_{.S} d_S) d_S^T / sum(d_S)], no matmul
    md = np.einsum("bkm,bm->bk", m_cols, ds) / ds.sum(axis=-1, keepdims=True)
    neg = md[:, :, None] * ds[:, None, :]
    neg -= m_cols * ds[:, None, :]  # (B, K, m)
    if scale is not None:
        neg *= scale[:, None, None]
    m_ss = np.take_along_axis(neg, idx[:, :, None], axis=1)
    diag = np.arange(m)
    m_ss[:, diag, diag] += 1.0
    x_s = np.linalg.solve(m_ss, rhs_s[..., None])[..., 0]
    x = rhs - np.einsum("bkm,bm->bk", neg, x_s)
    np.put_along_axis(x, idx, x_s, axis=-1)
    return x


_CONTROLLER = None


def single_thread_blas(K: int):
    """Limit BLAS to one thread for small K.

    Batched small solves gain nothing from BLAS threads, and oversubscribed threads slow them
    down by an order of magnitude.
    """
    global _CONTROLLER
    if K > _THREADED_K:
        return contextlib.nullcontext()
    try:
        if _CONTROLLER is None:
            from threadpoolctl import ThreadpoolController

            _CONTROLLER = ThreadpoolController()
        return _CONTROLLER.limit(limits=1, user_api="blas")
    except Exception:  # noqa: BLE001 - threadpoolctl is an optimization only
        return contextlib.nullcontext()


class NewtonProblems:
    """Flat batch of finite-eta problems on the homotopy F(s; t) = s - M(t) BR_1(s).

    M(1) = eta A is the target, which every problem first tries directly (t = 1). Cold
    problems start from s = 0 (the reference policy) or from the linear predictor
    eta A BR_1(0), whichever has the smaller residual, and where the direct solve fails they
    follow M(t) = t eta A from the known root s = 0 at t = 0 (eta-continuation). Warm
    problems follow M(t) = eta A + (1 - t) (r v^T - v r^T) with r = s0 - eta A p0,
    v = p0 / ||p0||^2 and p0 = BR_1(s0), s0 shifted so p0^T s0 = 0: M(0) is skew and s0 is
    its root, so any warm start is the exact solution of a nearby skew game, and the
    Jacobian I - M(t) J stays invertible along the whole path.
    """

    def __init__(self, A, eta, reg: SeparableRegularizer, rho, s0=None):
        self.A, self.eta, self.reg, self.rho = A, eta, reg, rho
        B, K = rho.shape
        self.cold = np.ones(B, dtype=bool)
        self.r = np.zeros((B, K))
        self.v = np.zeros((B, K))
        self.s_start = np.zeros((B, K))
        if s0 is not None:
            ok = np.all(np.isfinite(s0), axis=-1)
            s0 = np.where(ok[:, None], s0, 0.0)
            p0, _, _ = reg.br1(s0, rho)
            s0 = s0 - np.sum(p0 * s0, axis=-1, keepdims=True)
            r = s0 - eta[:, None] * np.einsum("bij,bj->bi", A, p0)
            v = p0 / np.sum(p0 * p0, axis=-1, keepdims=True)
            self.cold = ~ok
            self.r = np.where(ok[:, None], r, 0.0)
            self.v = np.where(ok[:, None], v, 0.0)
            self.s_start = s0
        self.all_cold = bool(np.all(self.cold))
        self._a_idx: np.ndarray | None = None  # last gathered live set and its payoffs
        self._a_sub: np.ndarray | None = None

    def make_cold(self, idx):
        """Switch problems ``idx`` to the cold (eta-continuation) path from s = 0."""
        self.cold[idx] = True
        self.r[idx] = 0.0
        self.v[idx] = 0.0
        self.s_start[idx] = 0.0
        self.all_cold = bool(np.all(self.cold))

    def _a(self, idx):
        """Payoffs of problems ``idx`` (no copy when ``idx`` is the whole batch in order)."""
        if idx.size == self.A.shape[0] and idx[0] == 0 and idx[-1] == idx.size - 1:
            return self.A
        # the same live set is gathered several times per Newton iteration: keep the last
        if self._a_idx is None or not np.array_equal(idx, self._a_idx):
            self._a_idx, self._a_sub = idx.copy(), self.A[idx]
        return self._a_sub

    def _rot(self, idx, x):
        r, v = self.r[idx], self.v[idx]
        return r * np.sum(v * x, -1, keepdims=True) - v * np.sum(r * x, -1, keepdims=True)

    def mvec(self, idx, t, x):
        """M(t) x for problems ``idx`` at homotopy parameters ``t``."""
        ax = self.eta[idx, None] * np.einsum("bij,bj->bi", self._a(idx), x)
        if self.all_cold:
            return t[:, None] * ax
        ca = np.where(self.cold[idx], t, 1.0)
        return ca[:, None] * ax + (1.0 - t)[:, None] * self._rot(idx, x)

    def mmat(self, idx, t):
        """M(t) as matrices, shape (len(idx), K, K)."""
        if self.all_cold:
            return (t * self.eta[idx])[:, None, None] * self._a(idx)
        r, v = self.r[idx], self.v[idx]
        rot = r[:, :, None] * v[:, None, :] - v[:, :, None] * r[:, None, :]
        ca = np.where(self.cold[idx], t, 1.0)
        return ((ca * self.eta[idx])[:, None, None] * self._a(idx)
                + (1.0 - t)[:, None, None] * rot)

    def jsolve(self, idx, t, d, rhs):
        """Solve (I - M(t) J) x = rhs for problems ``idx``."""
        if self.all_cold:
            return _jacobian_solve(self._a(idx), d, rhs, scale=t * self.eta[idx])
        return _jacobian_solve(self.mmat(idx, t), d, rhs)

    def dmvec(self, idx, x):
        """dM/dt x (M(1) - M(0) for both kinds of path)."""
        ax = self.eta[idx, None] * np.einsum("bij,bj->bi", self._a(idx), x)
        if self.all_cold:
            return ax
        return np.where(self.cold[idx, None], ax, -self._rot(idx, x))

    def residual(self, idx, s, t):
        p, d, _ = self.reg.br1(s, self.rho[idx])
        return s - self.mvec(idx, t, p), p, d


def newton_solve(prob: NewtonProblems, *, tol: float, max_iter: int, callback: Callable | None,
            make_result: Callable):
    """Batched Newton with line search and continuation in t.

    Returns (s, p, status, nit): scores (B, K), their best responses p = BR_1(s) (B, K),
    status and iterations (B,).
    """
    A, eta, rho = prob.A, prob.eta, prob.rho
    B, K = rho.shape
    status = np.full(B, -1)
    nit = np.zeros(B, dtype=int)
    stage_it = np.zeros(B, dtype=int)
    t_prev = np.zeros(B)
    s_prev = prob.s_start.copy()
    # cold problems with eta <= _DIRECT_ETA and warm ones try the target t = 1 directly
    direct = prob.cold & (eta <= _DIRECT_ETA)
    t_cur = np.where(prob.cold & ~direct, np.minimum(1.0, _COLD_ETA / eta), 1.0)
    growth = np.full(B, _GROWTH0)
    a_max = np.max(np.abs(A), axis=(-1, -2))

    def predict(idx, tp, sp, tn, pd=None):
        # tangent predictor along s*(t): ds/dt = (I - M(t) J)^{-1} (dM/dt) p, with
        # (p, d) = BR_1(sp) and its Jacobian diagonal (``pd`` when the caller has them)
        p, d = pd if pd is not None else prob.reg.br1(sp, rho[idx])[:2]
        tangent = prob.dmvec(idx, p)
        if np.any(tp > 0) or not np.all(prob.cold[idx]):  # M(0) = 0 on a cold path
            tangent = prob.jsolve(idx, tp, d, tangent)
        return sp + (tn - tp)[:, None] * tangent

    # BR_1 at the start; a direct cold start picks s = 0 or the linear predictor at its first
    # residual (``choose``, below)
    p_start, d_start, _ = prob.reg.br1(s_prev, rho)
    s = predict(np.arange(B), t_prev, s_prev, t_cur, (p_start, d_start))
    choose = direct.copy()

    def restart_cold(idx):
        # a warm start whose direct step failed starts cold (as above)
        prob.make_cold(idx)
        s_prev[idx] = 0.0
        p_start[idx], d_start[idx], _ = prob.reg.br1(s_prev[idx], rho[idx])
        direct[idx] = choose[idx] = eta[idx] <= _DIRECT_ETA
        continuation(idx, np.where(direct[idx], 1.0, np.minimum(1.0, _COLD_ETA / eta[idx])))

    def continuation(idx, t_new):
        # from s = 0 at t = 0 to t_new by the (linear) predictor
        s_prev[idx] = 0.0
        t_cur[idx] = t_new
        s[idx] = predict(idx, t_prev[idx], s_prev[idx], t_new, (p_start[idx], d_start[idx]))
        stage_it[idx] = 0
    # residual, policy and Jacobian diagonal at s, kept from the line search's accepted step
    cached = np.zeros(B, dtype=bool)
    cache_f, cache_p, cache_d = np.zeros((B, K)), np.zeros((B, K)), np.zeros((B, K))
    while True:
        act = np.flatnonzero(status < 0)
        over = nit[act] >= max_iter
        status[act[over]] = 1
        act = act[~over]
        if act.size == 0:
            break
        sa, ta = s[act], t_cur[act]
        F, p, d = cache_f[act], cache_p[act], cache_d[act]
        stale = ~cached[act]
        if np.any(stale):
            F[stale], p[stale], d[stale] = prob.residual(act[stale], sa[stale], ta[stale])
        pick = choose[act]
        if np.any(pick):
            # a cold start stays at s = 0 unless the linear predictor s1 = eta A BR_1(0) has
            # the smaller residual (small eta); F(0) = -s1, BR_1(0) is kept from the start
            zero = pick & ~(np.max(np.abs(F), axis=-1) < np.max(np.abs(sa), axis=-1))
            if np.any(zero):
                rows = act[zero]
                F[zero], p[zero], d[zero] = -sa[zero], p_start[rows], d_start[rows]
                sa[zero] = 0.0
                s[rows] = 0.0
            choose[act[pick]] = False
        bad = ~np.all(np.isfinite(F), axis=-1)
        if np.any(bad):
            status[act[bad]] = 4
            act, sa, ta, F, p, d = (x[~bad] for x in (act, sa, ta, F, p, d))
            if act.size == 0:
                continue
        Fn = np.max(np.abs(F), axis=-1)
        smax = np.max(np.abs(sa), axis=-1)
        noise = 64.0 * _EPS * (smax + eta[act] * a_max[act] * np.sqrt(K) + 1.0)
        final = ta >= 1.0
        # policy residual ||BR(A p) - p||_inf = ||BR_1(s - F) - BR_1(s)||_inf (final stages)
        pres = np.full(act.size, np.inf)
        if np.any(final):
            q, _, _ = prob.reg.br1(sa[final] - F[final], rho[act[final]])
            pres[final] = np.max(np.abs(q - p[final]), axis=-1)
        conv_final = final & ((pres <= tol) | (Fn <= noise))
        conv_stage = ~final & (Fn <= _STAGE_TOL * np.maximum(1.0, smax))
        status[act[conv_final]] = 0
        if np.any(conv_stage):
            idx = act[conv_stage]
            quick = stage_it[idx] <= 6
            growth[idx] = np.where(quick, np.minimum(growth[idx] ** 1.5, 1e3), growth[idx])
            t_prev[idx] = t_cur[idx]
            s_prev[idx] = s[idx]
            t_cur[idx] = np.minimum(1.0, t_cur[idx] * growth[idx])
            s[idx] = predict(idx, t_prev[idx], s_prev[idx], t_cur[idx],
                             (p[conv_stage], d[conv_stage]))
            stage_it[idx] = 0
            cached[idx] = False
        step = ~(conv_final | conv_stage)
        act, sa, ta, F, d, Fn, noise = (x[step] for x in (act, sa, ta, F, d, Fn, noise))
        if act.size:
            s_new, ok, (f_new, p_new, d_new) = _line_search(prob, act, sa, ta, F, d)
            s[act] = s_new
            cached[act] = ok
            cache_f[act[ok]], cache_p[act[ok]], cache_d[act[ok]] = f_new[ok], p_new[ok], d_new[ok]
            nit[act] += 1
            stage_it[act] += 1
            # a stalled final stage at rounding level counts as converged
            stall_conv = ~ok & (ta >= 1.0) & (Fn <= 1e3 * noise)
            status[act[stall_conv]] = 0
            fail = (~ok & ~stall_conv) | (stage_it[act] > _STAGE_MAXIT)
            if np.any(fail):
                bad = act[fail]
                cached[bad] = False
                # a warm start whose direct step failed restarts on the cold path when
                # _WARM_TO_COLD is set (its homotopy can be long for piecewise-linear maps)
                restart = bad[(~prob.cold[bad]) & (t_prev[bad] == 0) & _WARM_TO_COLD]
                if restart.size:
                    restart_cold(restart)
                    bad = np.setdiff1d(bad, restart)
                # a failed direct cold attempt continues from min(eta, _COLD_ETA)
                cont = bad[direct[bad] & (eta[bad] > _COLD_ETA)]
                direct[bad] = False
                if cont.size:
                    continuation(cont, _COLD_ETA / eta[cont])
                    bad = np.setdiff1d(bad, cont)
                if bad.size:
                    _shrink_stage(bad, t_prev, t_cur, growth, s, s_prev, stage_it, status,
                                  predict)
        if callback is not None:
            try:
                callback(make_result(s, status, nit))
            except StopIteration:
                status[status < 0] = 3
    # p = BR_1(s): kept from the last accepted step where it is still current
    p_out = cache_p
    redo = np.flatnonzero(~cached)
    if redo.size:
        p_out[redo], _, _ = prob.reg.br1(s[redo], rho[redo])
    return s, p_out, status, nit


def _shrink_stage(idx, t_prev, t_cur, growth, s, s_prev, stage_it, status, predict):
    """Retreat to a smaller continuation step after a failed stage."""
    tp, tc = t_prev[idx], t_cur[idx]
    new = np.where(tp > 0, np.sqrt(np.maximum(tp, 1e-300) * tc), tc / 10.0)
    stuck = (new - tp) <= 1e-9 * tc
    status[idx[stuck]] = 2
    idx, tp, new = idx[~stuck], tp[~stuck], new[~stuck]
    if idx.size == 0:
        return
    growth[idx] = np.maximum(np.sqrt(growth[idx]), 1.5)
    t_cur[idx] = new
    s[idx] = predict(idx, tp, s_prev[idx], new)
    stage_it[idx] = 0


def _line_search(prob: NewtonProblems, act, s, t, F, d):
    """Backtracking (Armijo) on ||F||^2 along the Newton direction.

    Returns (s_new, ok, (F, p, d) at s_new) where the step was accepted.
    """
    delta = prob.jsolve(act, t, d, -F)
    m0 = np.sum(F * F, axis=-1)
    step = np.ones(act.size)
    s_new = s.copy()
    f_new, p_new, d_new = np.empty_like(F), np.empty_like(F), np.empty_like(F)
    ok = np.zeros(act.size, dtype=bool)
    pending = np.arange(act.size)
    for _ in range(_LS_MAXHALF):
        trial = s[pending] + step[pending, None] * delta[pending]
        Ft, pt, dt = prob.residual(act[pending], trial, t[pending])
        mt = np.sum(Ft * Ft, axis=-1)
        acc = np.isfinite(mt) & (mt <= (1.0 - 1e-4 * step[pending]) * m0[pending])
        hit = pending[acc]
        s_new[hit], f_new[hit], p_new[hit], d_new[hit] = trial[acc], Ft[acc], pt[acc], dt[acc]
        ok[hit] = True
        pending = pending[~acc]
        if pending.size == 0:
            break
        step[pending] *= 0.5
    return s_new, ok, (f_new, p_new, d_new)
