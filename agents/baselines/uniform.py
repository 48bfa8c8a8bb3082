"""Uniform play: both players sample from a fixed policy (uniform by default).

The trivial baseline. Its MBR regret is T * DGap_eta(rho): linear in T unless rho happens to
be the SNE.
"""

from __future__ import annotations

from ..base import Agent, check_policy_param, policy_for_k

__all__ = ["UniformAgent"]


class UniformAgent(Agent):
    """Both players play a fixed policy; nothing is learned.

    ``regularizer``, ``eta`` and ``reference`` are accepted (and validated) so that every agent
    shares one constructor signature; they do not change the play.

    Args:
        regularizer: Regularizer name or object (unused by the play).
        eta: Regularization strength (unused by the play), scalar or shape (B,).
        reference: Reference policy of a named regularizer, shape (K,), or None.
        policy: The fixed policy, shape (K,); None = uniform.

    Attributes:
        policy_: The policy broadcast to (B, K).
    """

    def __init__(self, *, regularizer="shannon", eta=1.0, reference=None, policy=None):
        self.policy = policy
        super().__init__(regularizer=regularizer, eta=eta, reference=reference)

    def _validate_params(self) -> None:
        super()._validate_params()
        check_policy_param(self.policy, "policy")

    def _check_first_obs(self, feats):
        super()._check_first_obs(feats)
        self.policy_ = policy_for_k(self.policy, "policy", self.K_, self.num_runs_)

    def _policies(self, feats, ctx):
        return self.policy_, self.policy_

    def _learn(self, feats, ctx, pair, reward):
        del feats, ctx, pair, reward
