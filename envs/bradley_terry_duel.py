"""Transitive dueling: Bradley-Terry preferences written as a rank-2 GBPM.

With phi_a = (1, u_a, 0, ...)/sqrt(2) and Theta_star = s [[0, -1], [1, 0]] on the first two
coordinates, phi_a^T Theta_star phi_b = s (u_a - u_b)/2, so P(a beats b) = mu(r_a - r_b)
with latent rewards r_a = s u_a / 2 (``rlhf_gbpm.instances.bradley_terry_instance``).
"""

from __future__ import annotations

import math

from rlhf_gbpm.instances import GBPMInstance, bradley_terry_instance
from rlhf_gbpm.links import Link

from .gbpm_duel import GBPMDuelEnv, GBPMDuelVectorEnv

__all__ = ["BradleyTerryDuelEnv", "BradleyTerryDuelVectorEnv"]


def _block_scale(S: float, norm: str) -> float:
    # Theta_star has one 2x2 block of value s: Frobenius norm sqrt(2) s, nuclear norm 2 s.
    return S / math.sqrt(2.0) if norm == "frobenius" else S / 2.0


def _check_rank1_no_contexts(name: str, rank: int, contexts) -> None:
    if rank != 1:
        raise ValueError(f"rank == {rank}, must be 1 for {name} (Theta_star has one block).")
    if contexts not in (None, 1):
        raise ValueError(f"contexts == {contexts!r}, must be None for {name}.")


class BradleyTerryDuelEnv(GBPMDuelEnv):
    """Dueling with transitive Bradley-Terry preferences (a rank-2 GBPM).

    ## Description

    Every arm a has a latent reward r_a = s u_a / 2 with u_a ~ U(-1, 1), drawn from the
    instance seed, and P(a beats b) = mu(r_a - r_b). Preferences are transitive: the arm
    with the largest reward is a Condorcet winner and there are no preference cycles.
    Features are phi_a = (1, u_a, 0, ...)/sqrt(2) (the constant coordinate makes the
    difference of rewards bilinear).

    ## Action Space

    `MultiDiscrete([K, K])`, as in :class:`GBPMDuelEnv`.

    ## Observation Space

    `{"features": Box(-1, 1, (K, d)), "context": Discrete(1)}`.

    ## Rewards

    The preference bit 1[a1 beats a2]; `info` as in :class:`GBPMDuelEnv`.

    ## Starting State

    As in :class:`GBPMDuelEnv` (the instance seed draws the latent rewards).

    ## Episode End

    Truncation after `horizon` rounds.

    ## Arguments

    | parameter | type | default | description |
    |---|---|---|---|
    | `d` | int | 2 | feature dimension, >= 2 (extra coordinates are zero) |
    | `K` | int | 10 | number of actions, >= 2 |
    | `rank` | int | 1 | must be 1 |
    | `S` | float | 5.0 | norm of Theta_star; the block value is s = S/sqrt(2) (Frobenius) or S/2 |
    | `link` | str or Link | "logistic" | the link |
    | `contexts` | None | None | must be None |
    | `horizon` | int | 10000 | rounds per episode |
    | `norm` | str | "frobenius" | which norm S measures |

    ## Vectorized environment

    :class:`BradleyTerryDuelVectorEnv`.

    ## Version History

    * v0: initial version.
    """

    def __init__(self, *, d: int = 2, K: int = 10, **kwargs):
        super().__init__(d=d, K=K, **kwargs)

    @classmethod
    def make_instance(cls, *, d: int, K: int, rank: int, S: float, link: Link, contexts,
                      norm: str, context_scale: float, seed: int) -> GBPMInstance:
        """Bradley-Terry instance with latent values drawn from ``seed``.

        Args:
            d: Feature dimension.
            K: Number of actions.
            rank: Must be 1.
            S: Norm of Theta_star in the norm ``norm``.
            link: The link.
            contexts: Must be None.
            norm: Which norm S measures.
            context_scale: Unused.
            seed: Instance seed.

        Returns:
            The instance.
        """
        del context_scale
        _check_rank1_no_contexts("BradleyTerryDuel", rank, contexts)
        inst = bradley_terry_instance(K=K, d=d, scale=_block_scale(S, norm), link=link,
                                      seed=seed)
        return GBPMInstance(theta=inst.theta, feature_map=inst.feature_map, link=inst.link,
                            S=float(S), norm=norm)


class BradleyTerryDuelVectorEnv(GBPMDuelVectorEnv):
    """Vector twin of :class:`BradleyTerryDuelEnv` (see :class:`GBPMDuelVectorEnv`)."""

    env_class = BradleyTerryDuelEnv
