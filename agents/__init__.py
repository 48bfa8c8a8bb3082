"""Agents for the regularized GBPM preference game (``rlhf_gbpm.agents``).

Every agent follows :class:`~rlhf_gbpm.agents.base.Agent`: keyword hyperparameters validated
at construction, ``reset(seed)``, ``act(obs) -> DuelAction``, ``update(obs, action, reward)``,
``get_config()``; batched iff ``obs["features"].ndim == 3``.
"""

from rlhf_gbpm.agents.base import Agent, sample_actions
from rlhf_gbpm.agents.baselines import (
    OnlineNashMD,
    OptimisticMatrixGame,
    SymmetricGreedySampling,
    UniformAgent,
)
from rlhf_gbpm.agents.explore_then_commit import ExploreThenCommit
from rlhf_gbpm.agents.greedy_sampling import GreedySampling

AGENTS = {
    "greedy_sampling": GreedySampling,
    "explore_then_commit": ExploreThenCommit,
    "uniform": UniformAgent,
    "symmetric_greedy_sampling": SymmetricGreedySampling,
    "optimistic_matrix_game": OptimisticMatrixGame,
    "online_nash_md": OnlineNashMD,
}

__all__ = [
    "AGENTS",
    "Agent",
    "ExploreThenCommit",
    "GreedySampling",
    "OnlineNashMD",
    "OptimisticMatrixGame",
    "SymmetricGreedySampling",
    "UniformAgent",
    "sample_actions",
]
