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

import numpy as np

from rlhf_gbpm._validation import check_scalar
from rlhf_gbpm.links import Link, get_link
from rlhf_gbpm.skew import vec_to_skew

from ._estimators import MLEEstimator, ONSEstimator
from .base import Agent, SNECache, check_policy_param, policy_for_k

__all__ = ["GreedySampling", "ESTIMATORS"]

ESTIMATORS = ("mle", "ons")


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
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator == {self.estimator!r}, must be one of {ESTIMATORS}.")
        check_scalar(self.refresh, "refresh", numbers.Integral, min_val=1)
        check_scalar(self.S, "S", numbers.Real, min_val=0.0, include_boundaries="neither")
        self._link = get_link(self.link)
        self._link.check_bound(self.S, "frobenius")
        check_scalar(self.mle_tol, "mle_tol", numbers.Real, min_val=0.0,
                     include_boundaries="neither")
        check_scalar(self.mle_max_iter, "mle_max_iter", numbers.Integral, min_val=1)
        check_scalar(self.ons_a0, "ons_a0", numbers.Real, min_val=0.0,
                     include_boundaries="neither")
        check_scalar(self.ons_step, "ons_step", numbers.Real, min_val=0.0,
                     include_boundaries="neither")

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

    @property
    def theta_(self) -> np.ndarray:
        """Estimate used by the greedy policy, shape (B, d, d)."""
        return vec_to_skew(self.theta_vec_, self.d_)

    def greedy_policy(self, feats, ctx) -> np.ndarray:
        """The greedy policy pi_hat at the given contexts, shape (B, K).

        Args:
            feats: Features, shape (B, K, d).
            ctx: Context indices (B,) or continuous contexts (B, m).

        Returns:
            rho before the first refit, else the SNE of the estimated game.
        """
        if self.version_ == 0:
            return self.exploration_
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
