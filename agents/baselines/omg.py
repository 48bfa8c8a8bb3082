"""Optimistic Matrix Game (OMG): ridge estimate, bonus matrix, optimistic best responses.

Adapted to the GBPM as in the co-author's rebuttal code (spec gbpm.md section 7.2): with the
linear link mu(z) = 1/2 + c z, the preference bit is a noisy linear measurement of
z = theta . x, so theta is estimated by ridge regression on the targets (r - 1/2) / c.
Every ``refresh`` rounds the agent solves the SNE pi_base of the estimated game
G_hat = clip(c Z_hat, -1/2, 1/2) and plays the optimistic regularized best responses

    pi1 = BR_eta((G_hat + Bonus) pi_base),    Bonus_ij = alpha ||x_ij||_{V^{-1}},

with V = lambda I + sum_s x_s x_s^T. In skew coordinates x_ji = -x_ij, so the bonus is
symmetric and the min-player's optimistic best response (for itself) is the same policy:
both actions are drawn from pi1. MBR regret scores the base NE (spec section 9, item 15), so
the declared ``max_policy`` is pi_base; the sampling policy is kept in ``sampling_policy_``.

References:
    Nayak et al. (2025), optimistic matrix games for KL-regularized preference games with
    bandit feedback, arXiv:2510.13060.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from rlhf_gbpm._validation import check_scalar
from rlhf_gbpm.links import LinearLink
from rlhf_gbpm.preference import payoff_matrix
from rlhf_gbpm.skew import pair_features, skew_dim, vec_to_skew

from ..base import Agent, SNECache

__all__ = ["OptimisticMatrixGame"]


@dataclass(frozen=True)
class _ClippedLinearLink(LinearLink):
    """1/2 + c z clipped to [0, 1] (estimates may leave the admissible range)."""

    name = "linear_clipped"

    def mu(self, z):  # noqa: D102
        return np.clip(0.5 + self.slope * np.asarray(z, dtype=float), 0.0, 1.0)


class OptimisticMatrixGame(Agent):
    """Optimistic Matrix Game baseline (linear link, ridge regression, bonus matrix).

    Args:
        regularizer: Regularizer name or object.
        eta: Regularization strength in (0, inf], scalar or shape (B,).
        reference: Reference policy of a named regularizer, shape (K,), or None.
        slope: Slope c of the linear link 1/2 + c z the estimator assumes, > 0 (the rebuttal
            code uses 1/8).
        ridge: Ridge parameter lambda > 0 (V starts at lambda I).
        bonus: Bonus scale alpha >= 0.
        refresh: Refit and re-solve every ``refresh`` rounds, >= 1 (the rebuttal code uses 2).

    Attributes:
        theta_vec_: Ridge estimate used by the policies, shape (B, D).
        theta_: The same as skew matrices, shape (B, d, d).
        v_inv_: V^{-1}, shape (B, D, D).
        base_policy_: This round's base NE, shape (B, K).
        sampling_policy_: This round's optimistic best response, shape (B, K).

    References:
        Nayak et al. (2025), arXiv:2510.13060, adapted as in spec gbpm.md section 7.2.
    """

    def __init__(self, *, regularizer="shannon", eta=1.0, reference=None, slope: float = 0.125,
                 ridge: float = 1.0, bonus: float = 0.05, refresh: int = 2):
        self.slope = slope
        self.ridge = ridge
        self.bonus = bonus
        self.refresh = refresh
        super().__init__(regularizer=regularizer, eta=eta, reference=reference)

    def _validate_params(self) -> None:
        super()._validate_params()
        check_scalar(self.slope, "slope", numbers.Real, min_val=0.0, include_boundaries="neither")
        check_scalar(self.ridge, "ridge", numbers.Real, min_val=0.0, include_boundaries="neither")
        check_scalar(self.bonus, "bonus", numbers.Real, min_val=0.0)
        check_scalar(self.refresh, "refresh", numbers.Integral, min_val=1)

    def _start(self, feats):
        B, K, d = feats.shape
        D = skew_dim(d)
        self._link = _ClippedLinearLink(slope=float(self.slope))
        self._v_inv = np.broadcast_to(np.eye(D) / self.ridge, (B, D, D)).copy()
        self._b = np.zeros((B, D))
        self.v_inv_ = self._v_inv.copy()
        self.theta_vec_ = np.zeros((B, D))
        self.version_ = 0
        self._cache = SNECache(B, K)
        self._iu, self._ju = np.triu_indices(K, k=1)

    @property
    def theta_(self) -> np.ndarray:
        """Ridge estimate used by the policies, shape (B, d, d)."""
        return vec_to_skew(self.theta_vec_, self.d_)

    def _bonus_matrix(self, feats: np.ndarray) -> np.ndarray:
        """Bonus alpha ||x_ij||_{V^{-1}} of all pairs, shape (B, K, K), symmetric, zero diagonal."""
        B, K, _ = feats.shape
        x = pair_features(feats[:, self._iu], feats[:, self._ju])  # (B, P, D)
        quad = np.einsum("bpd,bde,bpe->bp", x, self.v_inv_, x)
        out = np.zeros((B, K, K))
        w = self.bonus * np.sqrt(np.maximum(quad, 0.0))
        out[:, self._iu, self._ju] = w
        out[:, self._ju, self._iu] = w
        return out

    def _policies(self, feats, ctx):
        from rlhf_gbpm.equilibrium import best_response

        B, K, d = feats.shape
        if self.version_ == 0:
            base = np.full((B, K), 1.0 / K)
            theta_mat = np.zeros((B, d, d))
        else:
            base = self._cache.get(
                feats, ctx, self.theta_vec_, np.full(B, self.version_),
                regularizer=self.regularizer_, eta=self.eta_, link=self._link,
                continuous=self._context_kind == "continuous")
            theta_mat = vec_to_skew(self.theta_vec_, d)
        g_hat = payoff_matrix(feats, theta_mat, self._link, validate=False)
        y = np.einsum("bij,bj->bi", g_hat + self._bonus_matrix(feats), base)
        optimistic = best_response(y, self.regularizer_, self.eta_)
        self.base_policy_ = base
        self.sampling_policy_ = optimistic
        return optimistic, optimistic

    def _declare(self, pair, p_max, p_min, batched):
        return super()._declare(pair, self.base_policy_, p_min, batched)

    def _learn(self, feats, ctx, pair, reward):
        rows = np.arange(feats.shape[0])
        x = pair_features(feats[rows, pair[:, 0]], feats[rows, pair[:, 1]])  # (B, D)
        target = (reward - 0.5) / self.slope
        v = np.einsum("bde,be->bd", self._v_inv, x)
        denom = 1.0 + np.einsum("bd,bd->b", x, v)
        self._v_inv -= v[:, :, None] * v[:, None, :] / denom[:, None, None]
        self._b += target[:, None] * x
        if (self.t_ + 1) % self.refresh == 0:
            self.theta_vec_ = np.einsum("bde,be->bd", self._v_inv, self._b)
            self.v_inv_ = self._v_inv.copy()
            self.version_ += 1
