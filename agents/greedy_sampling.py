"""Greedy Sampling (GS): the max-player plays the estimated game's SNE, the min-player explores.

Each round (spec gbpm.md section 3.1): observe the context; sample a1 from the greedy policy
pi_hat (the regularized symmetric Nash equilibrium of the game estimated so far, at this
context) and a2 from the exploration policy rho; observe the preference bit; refit the skew
estimate Theta_hat on every comparison so far and re-solve the SNE. pi_hat starts at rho.

Sign convention: z = phi1^T Theta phi2 (spec section 9, item 2). Estimates are kept in the
orthonormal skew coordinates of :mod:`rlhf_gbpm.skew`.

References:
    Lee, Hong, Jun, Yun, Yun. "Regularized Online RLHF with Generalized Bilinear
    Preferences", arXiv:2602.23116, 2026, Algorithm 1 and Theorem 4.2.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from rlhf_gbpm._validation import check_scalar
from rlhf_gbpm.errors import ConvergenceWarning
from rlhf_gbpm.links import Link
from rlhf_gbpm.regularizers import KLRegularizer, SeparableRegularizer
from rlhf_gbpm.skew import vec_to_skew

from ._estimators import ESTIMATORS, MLEEstimator, ONSEstimator, check_estimator_options
from .base import Agent, SNECache, check_policy_param, policy_for_k

__all__ = ["GreedySampling", "ESTIMATORS"]

_EPS = np.finfo(float).eps

class GreedySampling(Agent):
    """Greedy Sampling for the regularized GBPM preference game.

    Args:
        regularizer: Regularizer name (``"kl"``, ``"shannon"``, ``"l2"``, ``"chi2_half"``,
            ``"chi2"``, ``"tsallis"``, ``"kl_plus_chi2"``, ...) or a regularizer object.
        eta: Regularization strength in (0, inf], scalar or one per run, shape (B,).
        reference: Reference policy of a named regularizer, shape (K,); None = uniform.
        exploration: The min-player's exploration policy rho: None (uniform), ``"reference"``
            (the regularizer's reference, the choice of Prop. B.5) or an array (K,).
        estimator: ``"mle"`` (exact constrained MLE over all data, warm-started Newton; with
            finite contexts on per-pair sufficient statistics, O(C K^2 D) per refit) or
            ``"ons"`` (one-pass Online Newton Step, the authors' shortcut).
        refresh: Refit and re-solve the SNE every ``refresh`` rounds (>= 1; the authors use 2).
        S: Radius of the Frobenius ball ``||Theta||_F <= S`` of the estimator, > 0.
        link: Link name or :class:`~rlhf_gbpm.links.Link` of the estimator.
        mle_tol: KKT tolerance of the MLE, > 0.
        mle_max_iter: Newton iterations per MLE refit, >= 1.
        ons_a0: Initial ONS matrix A = a0 I, > 0.
        ons_step: ONS step size, > 0.

    Attributes:
        theta_: Current estimate Theta_hat used by the greedy policy, shape (B, d, d).
        version_: Number of refits so far.
        exploration_: rho broadcast to (B, K).

    References:
        Lee, Hong, Jun, Yun, Yun. "Regularized Online RLHF with Generalized Bilinear
        Preferences", arXiv:2602.23116, 2026, Algorithm 1.
    """

    def __init__(self, *, regularizer="shannon", eta=1.0, reference=None, exploration=None,
                 estimator: str = "mle", refresh: int = 1, S: float = 5.0,
                 link: str | Link = "logistic", mle_tol: float = 1e-8, mle_max_iter: int = 50,
                 ons_a0: float = 1.0, ons_step: float = 1.0):
        self.exploration = exploration
        self.estimator = estimator
        self.refresh = refresh
        self.S = S
        self.link = link
        self.mle_tol = mle_tol
        self.mle_max_iter = mle_max_iter
        self.ons_a0 = ons_a0
        self.ons_step = ons_step
        super().__init__(regularizer=regularizer, eta=eta, reference=reference)

    def _validate_params(self) -> None:
        super()._validate_params()
        check_policy_param(self.exploration, "exploration", allow=("reference",))
        check_scalar(self.refresh, "refresh", numbers.Integral, min_val=1)
        self._link = check_estimator_options(self)

    # ------------------------------------------------------------------ state
    def _check_first_obs(self, feats):
        super()._check_first_obs(feats)
        B, K = self.num_runs_, self.K_
        if isinstance(self.exploration, str):  # "reference"
            self.exploration_ = policy_for_k(self.reference, "reference", K, B)
        else:
            self.exploration_ = policy_for_k(self.exploration, "exploration", K, B)

    def _start(self, feats):
        B, K, d = feats.shape
        finite = self._context_kind == "finite"
        if self.estimator == "mle":
            self._estimator = MLEEstimator(B, K, d, S=self.S, link=self._link, tol=self.mle_tol,
                                           max_iter=self.mle_max_iter, finite=finite)
        else:
            self._estimator = ONSEstimator(B, d, S=self.S, link=self._link, a0=self.ons_a0,
                                           step=self.ons_step)
        self._cache = SNECache(B, K)
        self.theta_vec_ = np.zeros((B, d * (d - 1) // 2))
        self.version_ = 0
        self._warm = None
        self._played_warm = False  # the last greedy policy came from self._warm
        if (self._context_kind == "finite" and isinstance(self.regularizer_, SeparableRegularizer)
                and np.all(np.isfinite(self.eta_))):
            self._warm = _ChordSNE(self.regularizer_, self.eta_, K)

    @property
    def theta_(self) -> np.ndarray:
        """Estimate used by the greedy policy, shape (B, d, d)."""
        return vec_to_skew(self.theta_vec_, self.d_)

    @property
    def ne_residual_(self) -> np.ndarray | None:
        """Dual gap of the greedy policy in the game of the current estimate, shape (B,).

        The runner's NE residual DGap_eta(pi_hat) at this round's features, computed from the
        payoff cached by the SNE re-solve. None where the last greedy policy did not come
        from that solver (a context other than 0, a non-separable regularizer, eta = inf,
        before the first refit) or between a refit and the next ``act``; the runner then
        computes the gap itself.
        """
        warm = getattr(self, "_warm", None)
        if warm is None or not self._played_warm or warm.version != self.version_:
            return None
        return warm.dual_gap()

    def greedy_policy(self, feats, ctx) -> np.ndarray:
        """The greedy policy pi_hat at the given contexts, shape (B, K).

        Args:
            feats: Features, shape (B, K, d).
            ctx: Context indices (B,) or continuous contexts (B, m).

        Returns:
            rho before the first refit, else the SNE of the estimated game.
        """
        # ctx holds integers when the chord solver exists (finite contexts)
        self._played_warm = self.version_ > 0 and self._warm is not None and not ctx.any()
        if self.version_ == 0:
            return self.exploration_
        if self._played_warm:
            return self._warm.policy(feats, self.theta_vec_, self.version_, self._link)
        return self._cache.get(
            feats, ctx, self.theta_vec_, np.full(self.num_runs_, self.version_),
            regularizer=self.regularizer_, eta=self.eta_, link=self._link,
            continuous=self._context_kind == "continuous")

    # ------------------------------------------------------------------ round
    def _policies(self, feats, ctx):
        return self.greedy_policy(feats, ctx), self.exploration_

    def _learn(self, feats, ctx, pair, reward):
        self._estimator.observe(feats, ctx, pair, reward)
        if (self.t_ + 1) % self.refresh == 0:
            self.theta_vec_ = np.array(self._estimator.fit(), dtype=float)
            self.version_ += 1


class _ChordSNE:
    """Re-solves of the SNE after a small change of the estimate, for one context per run.

    Between two refits the estimated payoff A changes a little, so the previous solution's
    scores s = eta A p and an approximate inverse G of the Newton matrix M = I - eta A J (J the
    Jacobian of the unit best response at s) make a very good chord iteration
    s <- s - h, h ~ M^{-1} F(s), F(s) = s - eta A BR_1(s), with no K x K factorization:
    h = G F is corrected once with the exact Newton matrix of the current scores and payoff,
    h += G (F - M h) (M h costs one product with A), which squares the contraction
    ||I - G M||; a step costs four matrix-vector products per run. G is kept current by a
    Newton-Schulz step G <- G (2 I - M G) (two K x K products, quadratic convergence to
    M^{-1}) for the runs whose step shrinks ||F||_inf less than ``_RATE``; a run whose G is
    too far from M^{-1} for that (max |M G - I| >= ``_NS_OK``) gets a fresh inverse, and runs
    that still do not converge fall back to :func:`~rlhf_gbpm.equilibrium.solve_sne`. The
    stopping rule is solve_sne's (||BR(A p) - p||_inf <= tol or F at rounding level), so both
    give the same policies up to that tolerance. Every decision is taken per run, so a run's
    numbers do not depend on the runs that share its batch.

    Used by Greedy Sampling for separable regularizers at finite eta when every run plays
    context 0 (the setting without contexts); other cases use :class:`SNECache`.
    """

    _MAX_IT = 12  # chord steps before the fallback
    _RATE = 0.003  # a step must shrink ||F||_inf at least this much, else G is refined
    _STALL = 0.1  # ... and at least this much, else a residual at rounding level has stalled
    _NS_OK = 0.9  # a Newton-Schulz step is kept if max |M G - I| < this, else G is rebuilt
    _INNER = 1  # corrections of each chord step with the current Newton matrix

    def __init__(self, reg: SeparableRegularizer, eta: np.ndarray, K: int, tol: float = 1e-12):
        self.reg, self.eta, self.tol = reg, eta, tol
        B = eta.shape[0]
        self.rho = np.ascontiguousarray(reg._ref_for(np.empty((B, K))))
        # best responses: a softmax for KL (with log rho, none for a uniform reference)
        self._softmax = isinstance(reg, KLRegularizer)
        if not self._softmax:
            self._ref = self.rho
        else:
            self._ref = None if reg.reference is None else np.log(self.rho)
        self.s = None  # scores (B, K)
        self.g = None  # approximate inverse Newton matrices (B, K, K), float32
        self.p = None  # policies (B, K)
        self.a = None  # payoffs of the current version (B, K, K)
        self.version = -1
        self._p_is_br = False  # p == BR_1(s) bit for bit (every run ended in the chord loop)
        self.stats = {"solves": 0, "iterations": 0, "refined": 0, "rebuilt": 0, "fallback": 0}

    def _br(self, s: np.ndarray, ref: np.ndarray | None) -> np.ndarray:
        """Unit best responses BR_1(s) of the rows of s, shape (n, K).

        Args:
            s: Scores, shape (n, K).
            ref: This object's reference rows (log rho for KL, rho else; None: uniform KL),
                shape (n, K).
        """
        if not self._softmax:
            return self.reg.br1(s, ref)[0]
        z = s if ref is None else s + ref
        e = z - _rowmax(z)[:, None]
        np.exp(e, out=e)  # underflow to 0 is expected (the callers ignore it)
        e /= np.add.reduce(e, axis=-1, keepdims=True)
        return e

    @staticmethod
    def _newton_matrix(a, eta, dd) -> np.ndarray:
        """M = I - eta A J for a batch, shape (n, K, K), in float32.

        J = diag(d) - d d^T / sum(d) with d the best response's Jacobian diagonal at the
        scores (d = p for KL). M and its inverse G only precondition the chord steps (the
        residual F is evaluated in float64), so single precision costs nothing in accuracy
        and halves the cost of the products.

        Args:
            a: Payoffs, shape (n, K, K).
            eta: Regularization strengths, shape (n,).
            dd: Jacobian diagonals d, shape (n, K); overwritten (tiny entries flushed).
        """
        # entries below 1e-20 of the largest change M by less than float32 resolves, and
        # subnormal ones would slow every product down several times
        dd[dd < 1e-20 * _rowmax(dd)[:, None]] = 0.0
        ad = _matvec(a, dd) / np.add.reduce(dd, axis=-1, keepdims=True)  # A d / sum(d)
        # M_ij = delta_ij + eta d_j (ad_i - a_ij), assembled in float32 (three passes)
        m = a.astype(np.float32)
        np.subtract(ad.astype(np.float32)[:, :, None], m, out=m)
        m *= (eta[:, None] * dd).astype(np.float32)[:, None, :]
        _diagonal(m)[...] += 1.0
        return m

    def policy(self, feats, theta, version, link) -> np.ndarray:
        """SNE policies of the estimated games, shape (B, K) (solved once per version)."""
        if version == self.version:
            return self.p
        a = _payoff(feats, vec_to_skew(theta, feats.shape[-1]), link)
        with np.errstate(under="ignore"):  # exp of very negative scores in the softmax
            if self.s is None:
                self._cold(a)
            else:
                self._chord(a)
        self.a = a
        self.version = version
        return self.p

    def dual_gap(self) -> np.ndarray:
        """Dual gaps of the current policies in the current estimated games, shape (B,)."""
        from rlhf_gbpm.equilibrium import _dual_gap_flat

        return _dual_gap_flat(self.p, self.a, self.reg, self.eta, self.rho, residual=False)[0]

    def _cold(self, a, idx=None):
        from rlhf_gbpm.equilibrium import solve_sne

        if idx is None:  # the first solve: every run, cold
            idx = np.arange(a.shape[0])
            res = solve_sne(a, self.reg, self.eta)
            scores, policy, success, gap = res.scores, res.policy, res.success, res.dual_gap
        else:
            # fallback runs one at a time (rare): a warm batched solve_sne takes batch-level
            # branches, and a run's numbers must not depend on which runs share its chunk
            parts = [solve_sne(a[i:i + 1], self.reg, self.eta[i:i + 1],
                               warm_start=self.p[i:i + 1]) for i in idx]
            scores = np.concatenate([r.scores for r in parts])
            policy = np.concatenate([r.policy for r in parts])
            success = np.concatenate([r.success for r in parts])
            gap = np.concatenate([r.dual_gap for r in parts])
        if not np.all(success):
            warnings.warn(
                f"solve_sne did not converge for {int(np.sum(~success))} run(s) (max dual "
                f"gap {float(np.max(gap)):.3g}); playing its last iterate.",
                ConvergenceWarning, stacklevel=4,
            )
        s = np.asarray(scores, dtype=float)
        ok = np.all(np.isfinite(s), axis=-1)
        s = np.where(ok[:, None], s, 0.0)
        ref = None if self._ref is None else self._ref[idx]
        g = np.linalg.inv(self._newton_matrix(a[idx], self.eta[idx], self._br_jac(s, ref)[1]))
        if self.s is None:
            self.s, self.p, self.g = s, np.array(policy, dtype=float), g
        else:
            self.s[idx], self.p[idx], self.g[idx] = s, policy, g
        self._p_is_br = False
        self.stats["fallback"] += idx.size

    def _refine(self, sel, idx, la, lg, leta, d) -> None:
        """One Newton-Schulz step of G toward M(s)^{-1} for the live rows in mask sel.

        ``d`` holds the Jacobian diagonals at the current scores s, shape (n, K). Where G is
        too far from M^{-1} for the step to converge, a fresh inverse replaces it. The new
        G is written to lg and self.g.
        """
        m = self._newton_matrix(la[sel], leta[sel], d[sel])
        g = lg[sel]
        e = np.matmul(m, g)  # M G - I after the next line
        _diagonal(e)[...] -= 1.0
        far = ~(_stack_absmax(e) < self._NS_OK)
        new = np.matmul(g, e)
        np.subtract(g, new, out=new)  # G (2 I - M G)
        if np.count_nonzero(far):
            new[far] = np.linalg.inv(m[far])
            self.stats["rebuilt"] += int(np.count_nonzero(far))
        self.stats["refined"] += int(np.count_nonzero(sel))
        lg[sel] = new
        if lg is not self.g:
            self.g[idx[sel]] = new

    def _br_jac(self, s, ref) -> tuple[np.ndarray, np.ndarray]:
        """Best responses p and the Jacobian diagonal d (d = p for KL), shapes (n, K)."""
        if self._softmax:
            p = self._br(s, ref)
            return p, p
        p, d, _ = self.reg.br1(s, ref)
        return p, d

    def _step(self, a, g, eta, d, y, f, hold) -> np.ndarray:
        """Chord step h ~ M^{-1} F with ``_INNER`` corrections h += G (F - M h), shape (n, K).

        M = I - eta A J (J = diag(d) - d d^T / sum(d)) is the exact Newton matrix at the
        current scores, applied in O(K^2) (one product with A), so each correction squares
        the chord's contraction ||I - G M|| at the cost of two matrix-vector products.
        ``eta`` is a column (n, 1); rows in mask ``hold`` (None: no row) take no step.
        """
        h = _matvec(g, f.astype(np.float32)).astype(float)
        if self._softmax:
            w = y  # eta A d / sum(d) with d = p
        else:
            w = _matvec(a, d)
            w *= eta / np.add.reduce(d, axis=-1, keepdims=True)
        for _ in range(self._INNER):
            dh = d * h
            r = _matvec(a, dh)
            r *= eta
            np.subtract(h, r, out=r)
            r += w * np.add.reduce(dh, axis=-1, keepdims=True)  # M h
            np.subtract(f, r, out=r)  # F - M h
            if hold is not None:
                r[hold] = 0.0
            h += _matvec(g, r.astype(np.float32))
        return h

    def _chord(self, a):
        self.stats["solves"] += 1
        prev = self.p
        self.p = prev.copy()  # the previous policies may be held by the caller (DuelAction)
        # working copies of the runs still iterating; compacted when half of them are done
        idx = np.arange(self.s.shape[0])
        la, lg, leta, lref = a, self.g, self.eta, self._ref
        ls = self.s.copy()
        lscale = self.eta * _stack_absmax(a) * np.sqrt(a.shape[-1]) + 1.0
        fn_prev = np.full(idx.size, np.inf)
        live = np.ones(idx.size, dtype=bool)
        p = d = prev if self._softmax and self._p_is_br else None  # BR_1(s) of every run
        for _ in range(self._MAX_IT):
            if p is None:
                p, d = self._br_jac(ls, lref)
            eta = leta[:, None]
            y = _matvec(la, p)
            y *= eta  # eta A p
            f = ls - y
            fn = _absmax(f)  # NaN or inf for a non-finite row
            q = self._br(y, lref)
            q -= p
            done = self._converged(ls, fn, fn_prev, _absmax(q), lscale, live)
            if np.count_nonzero(done):
                self.p[idx[done]] = p[done]
                self.s[idx[done]] = ls[done]
                live &= ~done
            n_live = int(np.count_nonzero(live))
            if n_live == 0:
                self._p_is_br = True
                return
            hold = ~(live & (fn < np.inf))  # no step (G is refined below)
            if np.count_nonzero(hold):
                f[hold] = 0.0
            else:
                hold = None
            refine = fn <= self._RATE * fn_prev
            np.logical_not(refine, out=refine)
            refine &= live
            if np.count_nonzero(refine):
                self._refine(refine, idx, la, lg, leta, d)
            ls -= self._step(la, lg, eta, d, y, f, hold)
            p = None
            fn_prev = fn
            self.stats["iterations"] += n_live
            if 2 * n_live <= idx.size:
                lref = None if lref is None else lref[live]
                idx, la, lg, leta, ls, lscale, fn_prev = (
                    x[live] for x in (idx, la, lg, leta, ls, lscale, fn_prev))
                live = np.ones(idx.size, dtype=bool)
        todo = idx[live]
        self.s[todo] = ls[live]
        self._cold(a, todo)

    def _converged(self, s, fn, fn_prev, pres, scale, live) -> np.ndarray:
        """solve_sne's stopping rule for the live rows, shape (n,) bool (False off ``live``).

        A row is done when ||BR(A p) - p||_inf = ``pres`` <= tol, when ||F||_inf = ``fn`` is
        at the rounding level ``noise`` = 64 eps (||s||_inf + scale), or when it has stalled
        near that level (the last step shrank it by less than ``_STALL`` and it is below
        1e3 noise). The noise tests are evaluated only if a live row with pres > tol has
        fn <= 4e-11 scale: |s|_inf <= |eta A p|_inf + fn and |eta A p|_inf <= eta max|A|
        <= scale, so fn <= 1e3 noise implies fn <= 2e3 (64 eps) scale (1 + 1e-10), below
        2.9e-11 scale.

        Args:
            s: Scores, shape (n, K).
            fn: ||F||_inf now, shape (n,).
            fn_prev: ||F||_inf before the last step (inf: none), shape (n,).
            pres: Best-response residuals, shape (n,).
            scale: eta max|A| sqrt(K) + 1, shape (n,).
            live: Rows still iterating, shape (n,) bool.
        """
        done = pres <= self.tol
        done &= live
        rest = live ^ done  # live rows not done by pres
        rest &= fn <= 4e-11 * scale
        if not np.count_nonzero(rest):
            return done
        noise = _absmax(s)
        noise += scale
        noise *= 64.0 * _EPS
        near = fn <= 1e3 * noise
        near &= ~(fn <= self._STALL * fn_prev)  # stalled
        near |= fn <= noise
        near &= live
        done |= near
        return done


# Row maxima of (n, K) arrays on a transposed copy: numpy reduces a short last axis row by
# row (about 55 ns per row at K = 20-40), a leading axis with vectorized elementwise maxima
# (2-3x faster overall). A maximum is exact, so a row's result does not depend on the other
# rows; sums stay along the last axis (pairwise per row, the same for any batch).


def _rowmax(x: np.ndarray) -> np.ndarray:
    """Row maxima of x (n, K), shape (n,)."""
    return np.maximum.reduce(np.ascontiguousarray(x.T), axis=0)


def _absmax(x: np.ndarray) -> np.ndarray:
    """Row infinity norms of x (n, K), shape (n,) (NaN for a row with a NaN)."""
    buf = np.empty(x.shape[::-1])
    np.abs(x.T, out=buf)
    return np.maximum.reduce(buf, axis=0)


def _stack_absmax(m: np.ndarray) -> np.ndarray:
    """Largest |entry| of each matrix of the contiguous stack m (n, K, K), shape (n,)."""
    flat = m.reshape(m.shape[0], -1)
    return np.maximum(np.maximum.reduce(flat, axis=1), -np.minimum.reduce(flat, axis=1))


def _diagonal(m: np.ndarray) -> np.ndarray:
    """Writable view of the diagonals of the contiguous stack m (n, K, K), shape (n, K)."""
    return m.reshape(m.shape[0], -1)[:, ::m.shape[-1] + 1]


_NP_MATVEC = getattr(np, "matvec", None)  # numpy >= 2.2


def _matvec(m: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Batched products m v, m: (n, K, K), v: (n, K) -> (n, K) (BLAS, one run at a time).

    ``np.matvec`` where numpy has it (the same BLAS product per run as ``np.matmul`` on a
    column, without its (n, K, 1) views), else ``np.matmul``.
    """
    if _NP_MATVEC is not None:
        return _NP_MATVEC(m, v)
    return np.matmul(m, v[:, :, None])[:, :, 0]


def _payoff(feats: np.ndarray, theta: np.ndarray, link: Link) -> np.ndarray:
    """Estimated payoffs mu(Phi Theta Phi^T) - 1/2, shape (B, K, K).

    For the logistic link, mu(z) - 1/2 = 1/2 - 1/(1 + e^z): one exp per entry (tanh(z/2)/2,
    the same value, costs twice as much), exact in the limits (e^z = inf gives 1/2, e^z = 0
    gives -1/2) and equal to ``payoff_matrix`` (expit and the skew projection) up to the
    rounding of 1/2 (~1e-16 absolute); skew to that rounding. Other links go through
    ``payoff_matrix`` (exactly skew).

    Args:
        feats: Features Phi, shape (B, K, d).
        theta: Skew estimates Theta, shape (B, d, d).
        link: The link.
    """
    if link.name != "logistic":
        from rlhf_gbpm.preference import payoff_matrix

        return payoff_matrix(feats, theta, link, validate=False)
    # Phi Theta Phi^T with Phi^T contiguous: the product is twice as fast as on the view
    a = np.matmul(np.matmul(feats, theta), np.ascontiguousarray(np.swapaxes(feats, -1, -2)))
    with np.errstate(over="ignore"):  # e^z = inf: the payoff is 1/2
        np.exp(a, out=a)
    a += 1.0
    np.divide(-1.0, a, out=a)
    a += 0.5
    return a
