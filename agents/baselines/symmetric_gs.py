"""Symmetric-play Greedy Sampling: both players sample from the greedy SNE policy.

This is the greedy template of Wu et al. (2025a) with self-play for both responses, and the
"symmetric play" variant of the GBPM paper (section 4.1, third remark), whose guarantee
extends to ABR regret under reverse KL with rho = pi_ref. There is no dedicated exploration:
the only source of diversity is the regularization of the SNE.

References:
    Wu et al. (2025a), greedy sampling for KL-regularized online RLHF with general
    preferences, arXiv:2510.24700, NeurIPS 2025.
    Lee, Hong, Jun, Yun, Yun. "Regularized Online RLHF with Generalized Bilinear
    Preferences", arXiv:2602.23116, 2026, section 4.1.
"""

from __future__ import annotations

from ..greedy_sampling import GreedySampling

__all__ = ["SymmetricGreedySampling"]


class SymmetricGreedySampling(GreedySampling):
    """Greedy Sampling in which the min-player also plays the greedy SNE policy.

    Takes the same arguments as :class:`~rlhf_gbpm.agents.GreedySampling`; ``exploration``
    only sets the first round's policy (pi_hat_1 = rho) of both players.

    References:
        Wu et al. (2025a), arXiv:2510.24700, NeurIPS 2025.
    """

    def _policies(self, feats, ctx):
        policy = self.greedy_policy(feats, ctx)
        return policy, policy
