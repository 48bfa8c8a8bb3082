"""Explore-Then-Commit (ETC): explore with rho, fit a nuclear-norm MLE, commit to its SNE.

For the first T0 rounds both players sample from the exploration policy rho (the E-optimal
design by default). After round T0 the agent fits the nuclear-norm-penalized skew MLE

    Theta_hat = argmin (1/T0) sum_t [m(<Theta, X_t>) - r_t <Theta, X_t>] + lambda ||Theta||_nuc

with lambda = lambda_theory(T0) (spec gbpm.md section 3.2) unless given, and from then on both
players play the SNE of the estimated game at each round's context (symmetric commit). During
exploration the declared max-player policy, the one MBR regret scores, is rho.

T0 is given, or chosen by the theory from the horizon T (both tunings of spec section 3.2,
every constant exposed through :func:`rlhf_gbpm.design.etc_exploration_length`). With a
per-run eta the theory gives a per-run T0.

References:
    Lee, Hong, Jun, Yun, Yun. "Regularized Online RLHF with Generalized Bilinear
    Preferences", arXiv:2602.23116, 2026, Algorithm 2 and Theorem 5.2.
"""

from __future__ import annotations

import numbers

import numpy as np

from rlhf_gbpm._validation import check_scalar
from rlhf_gbpm.links import Link, get_link
from rlhf_gbpm.skew import pair_features, skew_dim, vec_to_skew

from ._estimators import PairStatistics, RawData, use_pair_statistics
from .base import Agent, SNECache, check_policy_param, policy_for_k

__all__ = ["ExploreThenCommit", "TUNINGS"]

TUNINGS = ("auto", "eta", "free")
EXPLORATIONS = ("e_optimal", "uniform")


class ExploreThenCommit(Agent):
    """Explore-Then-Commit with a nuclear-norm MLE and a symmetric commit.

    Args:
        regularizer: Regularizer name or object.
        eta: Regularization strength in (0, inf], scalar or shape (B,).
        reference: Reference policy of a named regularizer, shape (K,), or None.
        exploration: rho: ``"e_optimal"`` (the E-optimal design of the first feature table
            a run sees, cvxpy SDP), ``"uniform"`` or an array (K,).
        exploration_length: T0 >= 1, or None to take it from the theory (needs ``horizon``).
        horizon: T, the number of rounds; required when ``exploration_length`` is None, and
            T0 < T is checked when both are given.
        tuning: Theory tuning of T0: ``"eta"`` (T0 ~ sqrt(T eta beta r)), ``"free"``
            (T0 ~ T^(2/3)) or ``"auto"`` (the smaller, clipped; spec section 3.2).
        rank: r, the number of 2x2 blocks assumed for Theta (theory only), >= 1.
        delta: Confidence level in (0, 1) for lambda and T0; None = 1/T (or 1/T0 without T).
        c_min: C_min of Assumption 1 for the theory; None = lambda_min(Phi^T diag(rho) Phi) of
            the first feature table seen.
        kappa: Curvature lower bound for the theory; None = ``link.kappa(S)`` (needs ``S``).
        S: Optional nuclear-norm bound of Theta: sets kappa and adds the constraint
            ||Theta||_F <= S to the estimator (spec section 9, item 13).
        link: Link name or object of the estimator.
        lam: Nuclear-norm penalty; None = lam_scale * lambda_theory(T0, d, delta, L_mu).
        lam_scale: Constant in front of the theory's penalty, > 0 (the theory's value is
            conservative when C_min is far below 1/d; see docs/agents.md).
        length_options: Extra keyword arguments of ``etc_exploration_length`` (its constants).
        nuclear_tol: Tolerance of ``fit_nuclear_mle``, > 0.
        nuclear_max_iter: Iteration cap of ``fit_nuclear_mle``, >= 1.

    Attributes:
        exploration_length_: T0 per run, int array of shape (B,).
        exploration_: rho per run, shape (B, K).
        committed_: Whether each run has committed, bool (B,).
        theta_: The estimate (zero before the commit), shape (B, d, d).
        lam_: The penalty used per run, shape (B,) (NaN before the commit).

    References:
        Lee, Hong, Jun, Yun, Yun. "Regularized Online RLHF with Generalized Bilinear
        Preferences", arXiv:2602.23116, 2026, Algorithm 2.
    """

    def __init__(self, *, regularizer="shannon", eta=1.0, reference=None,
                 exploration="e_optimal", exploration_length: int | None = None,
                 horizon: int | None = None, tuning: str = "auto", rank: int = 1,
                 delta: float | None = None, c_min: float | None = None,
                 kappa: float | None = None, S: float | None = None,
                 link: str | Link = "logistic", lam: float | None = None,
                 lam_scale: float = 1.0, length_options: dict | None = None,
                 nuclear_tol: float = 1e-8,
                 nuclear_max_iter: int = 1000):
        self.exploration = exploration
        self.exploration_length = exploration_length
        self.horizon = horizon
        self.tuning = tuning
        self.rank = rank
        self.delta = delta
        self.c_min = c_min
        self.kappa = kappa
        self.S = S
        self.link = link
        self.lam = lam
        self.lam_scale = lam_scale
        self.length_options = length_options
        self.nuclear_tol = nuclear_tol
        self.nuclear_max_iter = nuclear_max_iter
        super().__init__(regularizer=regularizer, eta=eta, reference=reference)

    # ------------------------------------------------------------------ validation
    def _validate_params(self) -> None:
        super()._validate_params()
        check_policy_param(self.exploration, "exploration", allow=EXPLORATIONS)
        if self.exploration is None:
            raise ValueError(f"exploration must be one of {EXPLORATIONS} or an array (K,).")
        if self.horizon is not None:
            check_scalar(self.horizon, "horizon", numbers.Integral, min_val=2)
        if self.exploration_length is not None:
            check_scalar(self.exploration_length, "exploration_length", numbers.Integral,
                         min_val=1)
            if self.horizon is not None and self.exploration_length >= self.horizon:
                raise ValueError(
                    f"exploration_length == {self.exploration_length}, must be < horizon == "
                    f"{self.horizon}."
                )
        elif self.horizon is None:
            raise ValueError(
                "horizon is required when exploration_length is None (T0 from the theory)."
            )
        if self.tuning not in TUNINGS:
            raise ValueError(f"tuning == {self.tuning!r}, must be one of {TUNINGS}.")
        check_scalar(self.rank, "rank", numbers.Integral, min_val=1)
        if self.delta is not None:
            check_scalar(self.delta, "delta", numbers.Real, min_val=0.0, max_val=1.0,
                         include_boundaries="neither")
        if self.c_min is not None:
            check_scalar(self.c_min, "c_min", numbers.Real, min_val=0.0, max_val=1.0,
                         include_boundaries="right")
        if self.kappa is not None:
            check_scalar(self.kappa, "kappa", numbers.Real, min_val=0.0,
                         include_boundaries="neither")
        self._link = get_link(self.link)
        if self.S is not None:
            check_scalar(self.S, "S", numbers.Real, min_val=0.0, include_boundaries="neither")
            self._link.check_bound(self.S, "nuclear")
        if self.exploration_length is None and self.kappa is None and self.S is None:
            raise ValueError(
                "exploration_length from the theory needs kappa or S (kappa = link.kappa(S))."
            )
        if self.lam is not None:
            check_scalar(self.lam, "lam", numbers.Real, min_val=0.0)
        check_scalar(self.lam_scale, "lam_scale", numbers.Real, min_val=0.0,
                     include_boundaries="neither")
        if self.length_options is not None and not isinstance(self.length_options, dict):
            raise TypeError(
                f"length_options must be a dict, not {type(self.length_options).__name__}."
            )
        check_scalar(self.nuclear_tol, "nuclear_tol", numbers.Real, min_val=0.0,
                     include_boundaries="neither")
        check_scalar(self.nuclear_max_iter, "nuclear_max_iter", numbers.Integral, min_val=1)

    # ------------------------------------------------------------------ setup
    def _check_first_obs(self, feats):
        super()._check_first_obs(feats)
        B, K = self.num_runs_, self.K_
        if isinstance(self.exploration, str):
            if self.exploration == "uniform":
                self.exploration_ = np.full((B, K), 1.0 / K)
            else:
                from rlhf_gbpm.design import e_optimal_design

                # one SDP per run (once, at the first act): a batched call re-solves one
                # compiled problem and agrees with the single solve only to the SDP solver's
                # tolerance, which would break "run i == the single run with seed i"
                design = np.stack([np.asarray(e_optimal_design(feats[b:b + 1]).policy,
                                              dtype=float).reshape(K) for b in range(B)])
                design = np.maximum(design, 0.0)
                self.exploration_ = design / design.sum(axis=-1, keepdims=True)
        else:
            self.exploration_ = policy_for_k(self.exploration, "exploration", K, B)
        self.exploration_length_ = self._lengths(feats)

    def _delta(self, t0=None) -> float:
        if self.delta is not None:
            return float(self.delta)
        return 1.0 / float(self.horizon if self.horizon is not None else max(t0, 2))

    def _lengths(self, feats) -> np.ndarray:
        """T0 per run: given, or from the theory (per-run eta and C_min)."""
        B = self.num_runs_
        if self.exploration_length is not None:
            return np.full(B, int(self.exploration_length), dtype=np.int64)
        from rlhf_gbpm.design import c_min as c_min_fn
        from rlhf_gbpm.design import etc_exploration_length

        if self.c_min is not None:
            cmins = np.full(B, float(self.c_min))
        else:
            cmins = np.asarray(c_min_fn(feats, self.exploration_), dtype=float).reshape(B)
        kappa = self.kappa if self.kappa is not None else self._link.kappa(self.S, "nuclear")
        beta = float(self.regularizer_.beta(self.K_))
        t0 = etc_exploration_length(
            int(self.horizon), eta=self.eta_, beta=beta, rank=int(self.rank), d=self.d_,
            c_min=cmins, kappa=float(kappa), delta=self._delta(), tuning=self.tuning,
            **dict(self.length_options or {}))
        return np.broadcast_to(np.asarray(t0, dtype=np.int64), (B,)).copy()

    def _start(self, feats):
        B, K, d = feats.shape
        self._pairs = use_pair_statistics(self._context_kind == "finite", K)
        if self._pairs:
            # exact compression: per-(context, unordered pair) counts, O(C K^2 D) memory
            self._stats = PairStatistics(B, K, d)
        else:
            self._data = RawData(B, skew_dim(d), int(self.exploration_length_.max()))
        self.theta_vec_ = np.zeros((B, skew_dim(d)))
        self.committed_ = np.zeros(B, dtype=bool)
        self.lam_ = np.full(B, np.nan)
        self._cache = SNECache(B, K)

    @property
    def theta_(self) -> np.ndarray:
        """The committed estimate (zero before the commit), shape (B, d, d)."""
        return vec_to_skew(self.theta_vec_, self.d_)

    # ------------------------------------------------------------------ round
    def _policies(self, feats, ctx):
        if not np.any(self.committed_):
            return self.exploration_, self.exploration_
        sne = self._cache.get(feats, ctx, self.theta_vec_, np.ones(self.num_runs_, np.int64),
                              regularizer=self.regularizer_, eta=self.eta_, link=self._link,
                              continuous=self._context_kind == "continuous",
                              active=self.committed_)
        policy = np.where(self.committed_[:, None], sne, self.exploration_)
        return policy, policy

    def _learn(self, feats, ctx, pair, reward):
        exploring = ~self.committed_
        if not np.any(exploring):
            return  # feedback after the commit is unused
        if self._pairs:
            self._stats.add(feats, ctx, pair, reward, mask=exploring)
        else:
            rows = np.arange(feats.shape[0])
            self._data.add(pair_features(feats[rows, pair[:, 0]], feats[rows, pair[:, 1]]),
                           reward)
        done = exploring & (self.exploration_length_ == self.t_ + 1)
        if np.any(done):
            self._commit(np.flatnonzero(done), self.t_ + 1)

    def _commit(self, idx: np.ndarray, t0: int) -> None:
        """Fit the nuclear-norm MLE on the first t0 comparisons of runs ``idx``."""
        from rlhf_gbpm.estimation import fit_nuclear_mle, lambda_theory

        if self._pairs:
            x, r, n = self._stats.data(with_ties=True)
            x, r, n = x[idx], r[idx], n[idx]
        else:
            x, r = self._data.data()
            x, r, n = x[idx, :t0], r[idx, :t0], None
        lam = (float(self.lam) if self.lam is not None else self.lam_scale
               * float(lambda_theory(t0, self.d_, self._delta(t0), self._link.L_mu)))
        kwargs = {"lam": lam, "link": self._link, "tol": self.nuclear_tol,
                  "max_iter": self.nuclear_max_iter}
        if self.S is not None:
            kwargs["S"] = float(self.S)
        res = fit_nuclear_mle(x, r, weights=n, **kwargs)
        self.theta_vec_[idx] = np.asarray(res.theta, dtype=float)
        self.lam_[idx] = lam
        self.committed_[idx] = True
