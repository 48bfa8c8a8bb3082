"""Intransitive dueling: arms on a circle, rock-paper-scissors-like preferences.

phi_a = (cos(2 pi a/K), sin(2 pi a/K), 0, ...) and Theta_star = s [[0, 1], [-1, 0]] give
phi_a^T Theta_star phi_b = s sin(2 pi (b - a)/K) (``rlhf_gbpm.instances.cyclic_instance``):
each arm beats the arms just ahead of it on the circle.
"""

from __future__ import annotations

from rlhf_gbpm.instances import GBPMInstance, cyclic_instance
from rlhf_gbpm.links import Link

from .bradley_terry_duel import _block_scale, _check_rank1_no_contexts
from .gbpm_duel import GBPMDuelEnv, GBPMDuelVectorEnv

__all__ = ["CyclicDuelEnv", "CyclicDuelVectorEnv"]


class CyclicDuelEnv(GBPMDuelEnv):
    """Dueling with cyclic (intransitive) preferences.

    ## Description

    K arms evenly spaced on a circle in the first two feature coordinates. Arm a beats
    arm b with probability mu(s sin(2 pi (b - a)/K)), so for K = 3 the preferences are
    rock-paper-scissors: no Condorcet winner, and the von Neumann winner is uniform. The
    instance is deterministic (the seed only drives the noise).

    ## Action Space

    `MultiDiscrete([K, K])`, as in :class:`GBPMDuelEnv`.

    ## Observation Space

    `{"features": Box(-1, 1, (K, d)), "context": Discrete(1)}`.

    ## Rewards

    The preference bit 1[a1 beats a2]; `info` as in :class:`GBPMDuelEnv`.

    ## Starting State

    As in :class:`GBPMDuelEnv`.

    ## Episode End

    Truncation after `horizon` rounds.

    ## Arguments

    | parameter | type | default | description |
    |---|---|---|---|
    | `d` | int | 2 | feature dimension, >= 2 |
    | `K` | int | 3 | number of actions, >= 3 |
    | `rank` | int | 1 | must be 1 |
    | `S` | float | 5.0 | norm of Theta_star; the block value is s = S/sqrt(2) (Frobenius) or S/2 |
    | `link` | str or Link | "logistic" | the link |
    | `contexts` | None | None | must be None |
    | `horizon` | int | 10000 | rounds per episode |
    | `norm` | str | "frobenius" | which norm S measures |

    ## Vectorized environment

    :class:`CyclicDuelVectorEnv`.

    ## Version History

    * v0: initial version.
    """

    def __init__(self, *, d: int = 2, K: int = 3, **kwargs):
        super().__init__(d=d, K=K, **kwargs)

    @classmethod
    def make_instance(cls, *, d: int, K: int, rank: int, S: float, link: Link, contexts,
                      norm: str, context_scale: float, seed: int) -> GBPMInstance:
        """The cyclic instance (deterministic; ``seed`` is unused).

        Args:
            d: Feature dimension.
            K: Number of actions, >= 3.
            rank: Must be 1.
            S: Norm of Theta_star in the norm ``norm``.
            link: The link.
            contexts: Must be None.
            norm: Which norm S measures.
            context_scale: Unused.
            seed: Unused.

        Returns:
            The instance.
        """
        del context_scale, seed
        _check_rank1_no_contexts("CyclicDuel", rank, contexts)
        inst = cyclic_instance(K, d=d, scale=_block_scale(S, norm), link=link)
        return GBPMInstance(theta=inst.theta, feature_map=inst.feature_map, link=inst.link,
                            S=float(S), norm=norm)


class CyclicDuelVectorEnv(GBPMDuelVectorEnv):
    """Vector twin of :class:`CyclicDuelEnv` (see :class:`GBPMDuelVectorEnv`)."""

    env_class = CyclicDuelEnv
