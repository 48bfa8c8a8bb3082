"""Gymnasium environments for contextual GBPM dueling (``rlhf_gbpm.envs``).

Importing this package registers the environments below (string entry points, so no env
module is imported until an env is made)::

    import gymnasium as gym
    import rlhf_gbpm.envs  # registers the ids

    env = gym.make("rlhf_gbpm/GBPMDuel-v0")
    venv = gym.make_vec("rlhf_gbpm/GBPMDuel-v0", num_envs=1000)

Public names (env classes, the oracle, the regret monitors, the PettingZoo view) are
imported lazily on first access.
"""

from __future__ import annotations

import importlib

from gymnasium.envs.registration import register, registry

_HORIZON = 10_000

# ----------------------------------------------------------------------------------------
# GBPM duels (random low-rank skew Theta_star; the authors' experiment setting by default)
# ----------------------------------------------------------------------------------------
_SPECS = [
    ("rlhf_gbpm/GBPMDuel-v0", "gbpm_duel", "GBPMDuel",
     dict(d=5, K=20, rank=1, S=5.0, link="logistic", contexts=None, horizon=_HORIZON,
          norm="frobenius")),
    ("rlhf_gbpm/ContextualGBPMDuel-v0", "gbpm_duel", "GBPMDuel",
     dict(d=5, K=20, rank=1, S=5.0, link="logistic", contexts=4, horizon=_HORIZON,
          norm="frobenius")),
    ("rlhf_gbpm/ContinuousGBPMDuel-v0", "gbpm_duel", "GBPMDuel",
     dict(d=5, K=20, rank=1, S=5.0, link="logistic", contexts="continuous", horizon=_HORIZON,
          norm="frobenius")),
    # ------------------------------------------------------------------------------------
    # Transitive and intransitive special cases
    # ------------------------------------------------------------------------------------
    ("rlhf_gbpm/BradleyTerryDuel-v0", "bradley_terry_duel", "BradleyTerryDuel",
     dict(d=2, K=10, rank=1, S=5.0, link="logistic", contexts=None, horizon=_HORIZON,
          norm="frobenius")),
    ("rlhf_gbpm/CyclicDuel-v0", "cyclic_duel", "CyclicDuel",
     dict(d=2, K=3, rank=1, S=5.0, link="logistic", contexts=None, horizon=_HORIZON,
          norm="frobenius")),
]

ENV_IDS: tuple[str, ...] = tuple(spec[0] for spec in _SPECS)
"""Every id registered by this package."""

for _id, _module, _name, _kwargs in _SPECS:
    if _id not in registry:
        register(
            id=_id,
            entry_point=f"rlhf_gbpm.envs.{_module}:{_name}Env",
            vector_entry_point=f"rlhf_gbpm.envs.{_module}:{_name}VectorEnv",
            max_episode_steps=_HORIZON,
            kwargs=_kwargs,
        )

_EXPORTS: dict[str, str] = {
    "GBPMDuelEnv": "rlhf_gbpm.envs.gbpm_duel",
    "GBPMDuelVectorEnv": "rlhf_gbpm.envs.gbpm_duel",
    "BradleyTerryDuelEnv": "rlhf_gbpm.envs.bradley_terry_duel",
    "BradleyTerryDuelVectorEnv": "rlhf_gbpm.envs.bradley_terry_duel",
    "CyclicDuelEnv": "rlhf_gbpm.envs.cyclic_duel",
    "CyclicDuelVectorEnv": "rlhf_gbpm.envs.cyclic_duel",
    "DuelOracle": "rlhf_gbpm.envs.oracle",
    "SkewBlocks": "rlhf_gbpm.envs.oracle",
    "RegretMonitor": "rlhf_gbpm.envs.wrappers",
    "VectorRegretMonitor": "rlhf_gbpm.envs.wrappers",
    "GBPMDuelParallelEnv": "rlhf_gbpm.envs.pettingzoo_duel",
}

__all__ = sorted(_EXPORTS) + ["ENV_IDS"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rlhf_gbpm.envs' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
