"""Online Nash-MD: one Nash mirror-descent step per round on the estimated preference.

Nash-MD (Munos et al. 2024) for the tau-regularized preference game, tau = 1/eta, with step
size eta_t and mixing weight w_t = eta_t tau (spec gbpm.md section 7.4):

    pi_mix(a) ∝ pi_t(a)^(1 - w_t) rho(a)^(w_t)            (geometric mixture)
    pi_{t+1}(a) ∝ pi_mix(a) exp(eta_t P_hat(a ≻ pi_mix))

with P_hat = mu(Phi Theta_hat Phi^T) from the current estimate (MLE or ONS). For a general
regularizer psi the same step is written with the mirror map of psi (magnetic mirror
descent): pi_mix = BR_1((1 - w_t) grad psi(pi_t)) and
pi_{t+1} = BR_1(eta_t P_hat pi_mix + (1 - w_t) grad psi(pi_t)), where
BR_1(y) = argmax_q <q, y> - psi(q); for KL to rho this is exactly the update above.
Each round a1 ~ pi_t and a2 ~ pi_mix; MBR regret scores pi_t. The policy is tabular per
context, so only finite contexts are supported.

References:
    Munos et al. "Nash Learning from Human Feedback", arXiv:2312.00886, ICML 2024.
"""

from __future__ import annotations

import numbers

import numpy as np

from rlhf_gbpm._validation import check_scalar
from rlhf_gbpm.links import Link
from rlhf_gbpm.preference import payoff_matrix
from rlhf_gbpm.skew import vec_to_skew

from .._estimators import MLEEstimator, ONSEstimator, _grow, check_estimator_options
from ..base import Agent, check_policy_param, policy_for_k

__all__ = ["OnlineNashMD"]


class OnlineNashMD(Agent):
    """Online Nash-MD baseline: a mirror-descent step per round on the estimated game.

    Args:
        regularizer: Regularizer name or object (its mirror map defines the step).
        eta: Regularization strength in (0, inf] (tau = 1/eta), scalar or shape (B,).
        reference: Reference policy of a named regularizer, shape (K,), or None.
        initial: Starting policy pi_1: None (uniform), ``"reference"`` or an array (K,).
        learning_rate: ``"auto"`` (eta_t = 2 eta / (t + 2), so w_t = 2/(t + 2); for
            eta = inf, eta_t = 1/sqrt(t + 1)) or a constant step > 0 (w_t = step / eta must
            be <= 1).
        estimator: ``"ons"`` or ``"mle"`` (as in Greedy Sampling).
        S: Frobenius-ball radius of the estimator, > 0.
        link: Link of the estimator.
        mle_tol: KKT tolerance of the MLE, > 0.
        mle_max_iter: Newton iterations per MLE refit, >= 1.
        ons_a0: Initial ONS matrix A = a0 I, > 0.
        ons_step: ONS step size, > 0.

    Attributes:
        policies_: Current policy per context, shape (B, C, K).
        theta_: Current estimate, shape (B, d, d).

    References:
        Munos et al. "Nash Learning from Human Feedback", arXiv:2312.00886, ICML 2024.
    """

    def __init__(self, *, regularizer="shannon", eta=1.0, reference=None, initial=None,
                 learning_rate="auto", estimator: str = "ons", S: float = 5.0,
                 link: str | Link = "logistic", mle_tol: float = 1e-8, mle_max_iter: int = 50,
                 ons_a0: float = 1.0, ons_step: float = 1.0):
        self.initial = initial
        self.learning_rate = learning_rate
        self.estimator = estimator
        self.S = S
        self.link = link
        self.mle_tol = mle_tol
        self.mle_max_iter = mle_max_iter
        self.ons_a0 = ons_a0
        self.ons_step = ons_step
        super().__init__(regularizer=regularizer, eta=eta, reference=reference)

    def _validate_params(self) -> None:
        super()._validate_params()
        check_policy_param(self.initial, "initial", allow=("reference",))
        if isinstance(self.learning_rate, str):
            if self.learning_rate != "auto":
                raise ValueError(
                    f"learning_rate == {self.learning_rate!r}, must be 'auto' or a number > 0."
                )
        else:
            check_scalar(self.learning_rate, "learning_rate", numbers.Real, min_val=0.0,
                         include_boundaries="neither")
            eta_min = float(np.min(np.asarray(self.eta, dtype=float)))
            if self.learning_rate > eta_min:
                raise ValueError(
                    f"learning_rate == {self.learning_rate!r}, must be <= eta == {eta_min!r} "
                    "(the mixing weight learning_rate / eta must be <= 1)."
                )
        self._link = check_estimator_options(self)

    def _check_first_obs(self, feats):
        super()._check_first_obs(feats)
        if self._context_kind == "continuous":
            raise ValueError(
                "OnlineNashMD keeps a tabular policy per context and supports finite contexts "
                "only; got continuous contexts (obs has 'x')."
            )
        B, K = self.num_runs_, self.K_
        if isinstance(self.initial, str):
            self._initial = policy_for_k(self.reference, "reference", K, B)
        else:
            self._initial = policy_for_k(self.initial, "initial", K, B)

    def _start(self, feats):
        B, K, d = feats.shape
        if self.estimator == "mle":
            self._estimator = MLEEstimator(B, K, d, S=self.S, link=self._link, tol=self.mle_tol,
                                           max_iter=self.mle_max_iter, finite=True)
        else:
            self._estimator = ONSEstimator(B, d, S=self.S, link=self._link, a0=self.ons_a0,
                                           step=self.ons_step)
        self.policies_ = self._initial[:, None, :].copy()
        self.theta_vec_ = np.zeros((B, d * (d - 1) // 2))

    @property
    def theta_(self) -> np.ndarray:
        """Current estimate, shape (B, d, d)."""
        return vec_to_skew(self.theta_vec_, self.d_)

    def _step_sizes(self) -> tuple[np.ndarray, np.ndarray]:
        """Step eta_t and mixing weight w_t per run, shapes (B,)."""
        t = self.t_
        finite = np.isfinite(self.eta_)
        if self.learning_rate == "auto":
            lr = np.where(finite, 2.0 * np.where(finite, self.eta_, 1.0) / (t + 2.0),
                          1.0 / np.sqrt(t + 1.0))
        else:
            lr = np.full(self.num_runs_, float(self.learning_rate))
        w = np.where(finite, lr / np.where(finite, self.eta_, 1.0), 0.0)
        return lr, np.clip(w, 0.0, 1.0)

    def _current(self, ctx) -> np.ndarray:
        need = int(ctx.max()) + 1
        if need > self.policies_.shape[1]:
            old = self.policies_.shape[1]
            self.policies_ = _grow(self.policies_, 1, need)
            self.policies_[:, old:] = self._initial[:, None, :]
        return self.policies_[np.arange(self.num_runs_), ctx]

    def _mixture(self, pi: np.ndarray, w: np.ndarray) -> np.ndarray:
        from rlhf_gbpm.equilibrium import best_response

        return best_response(self._damped_grad(pi, w), self.regularizer_, 1.0)

    def _damped_grad(self, pi: np.ndarray, w: np.ndarray) -> np.ndarray:
        """(1 - w) grad psi(pi), exactly zero where w == 1 (grad may be infinite at 0)."""
        keep = (1.0 - w)[:, None]
        with np.errstate(invalid="ignore"):
            out = keep * self.regularizer_.grad(pi)
        return np.where(keep > 0.0, out, 0.0)

    def _policies(self, feats, ctx):
        pi = self._current(ctx)
        _, w = self._step_sizes()
        return pi, self._mixture(pi, w)

    def _learn(self, feats, ctx, pair, reward):
        from rlhf_gbpm.equilibrium import best_response

        self._estimator.observe(feats, ctx, pair, reward)
        self.theta_vec_ = np.array(self._estimator.fit(), dtype=float)
        pi = self._current(ctx)
        lr, w = self._step_sizes()
        mix = self._mixture(pi, w)
        a_hat = payoff_matrix(feats, vec_to_skew(self.theta_vec_, feats.shape[-1]), self._link,
                              validate=False)
        g = np.einsum("bij,bj->bi", a_hat, mix)  # P_hat(a > pi_mix) - 1/2
        y = lr[:, None] * g + self._damped_grad(pi, w)
        self.policies_[np.arange(self.num_runs_), ctx] = best_response(y, self.regularizer_, 1.0)
