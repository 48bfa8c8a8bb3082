"""Baseline agents, each named after the paper it adapts (``rlhf_gbpm.agents.baselines``)."""

from rlhf_gbpm.agents.baselines.nash_md import OnlineNashMD
from rlhf_gbpm.agents.baselines.omg import OptimisticMatrixGame
from rlhf_gbpm.agents.baselines.symmetric_gs import SymmetricGreedySampling
from rlhf_gbpm.agents.baselines.uniform import UniformAgent

__all__ = [
    "OnlineNashMD",
    "OptimisticMatrixGame",
    "SymmetricGreedySampling",
    "UniformAgent",
]
