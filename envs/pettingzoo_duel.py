"""Two-player view of a duel env as a PettingZoo ``ParallelEnv`` (optional extra).

Self-play methods that run one learner per player use this view: the max-player picks a1,
the min-player picks a2, both see the same observation, and the rewards are the two
preference bits, 1[a1 beats a2] for the max-player and 1 - that for the min-player (a
constant-sum game). Install with ``pip install "rlhf-gbpm[pettingzoo]"``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rlhf_gbpm.errors import missing_dependency

try:
    from pettingzoo import ParallelEnv
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise missing_dependency("pettingzoo", "pettingzoo") from err

from gymnasium import spaces

from .gbpm_duel import GBPMDuelEnv

__all__ = ["GBPMDuelParallelEnv", "parallel_env"]

MAX_PLAYER = "max_player"
MIN_PLAYER = "min_player"


class GBPMDuelParallelEnv(ParallelEnv):
    """The duel as a simultaneous two-player game.

    Args:
        env_class: The single-agent duel env class (GBPMDuelEnv or a subclass).
        **kwargs: Its constructor arguments (d, K, rank, S, link, contexts, horizon, ...).

    Attributes:
        env: The underlying single-agent env (its ``oracle`` answers exact questions).
    """

    metadata = {"name": "gbpm_duel_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(self, env_class: type[GBPMDuelEnv] = GBPMDuelEnv, **kwargs):
        self.env = env_class(**kwargs)
        self.possible_agents = [MAX_PLAYER, MIN_PLAYER]
        self.agents: list[str] = []
        self.render_mode = None
        k = int(self.env.action_space.nvec[0])
        self._action_spaces = {a: spaces.Discrete(k) for a in self.possible_agents}
        self._observation_spaces = {a: self.env.observation_space for a in self.possible_agents}

    def observation_space(self, agent: str) -> spaces.Space:
        """The observation space of ``agent`` (the duel's Dict space)."""
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        """The action space of ``agent``: ``Discrete(K)``."""
        return self._action_spaces[agent]

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        """Reset the duel; options other than instance_seed / noise_seed are ignored.

        Returns:
            (observations, infos), one entry per agent.
        """
        known = {k: v for k, v in (options or {}).items() if k in ("instance_seed",
                                                                    "noise_seed")}
        obs, info = self.env.reset(seed=seed, options=known)
        self.agents = list(self.possible_agents)
        return self._split(obs), {a: dict(info) for a in self.agents}

    def _split(self, obs: dict) -> dict[str, dict]:
        return {a: {k: np.copy(v) for k, v in obs.items()} for a in self.agents}

    def step(self, actions: dict[str, int]):
        """Play the pair (actions[max_player], actions[min_player]).

        Returns:
            (observations, rewards, terminations, truncations, infos), dicts over agents;
            after the horizon both agents are truncated and removed.
        """
        pair = np.array([actions[MAX_PLAYER], actions[MIN_PLAYER]], dtype=np.int64)
        obs, reward, terminated, truncated, info = self.env.step(pair)
        agents = list(self.agents)
        rewards = {MAX_PLAYER: float(reward), MIN_PLAYER: 1.0 - float(reward)}
        observations = self._split(obs)
        terminations = dict.fromkeys(agents, bool(terminated))
        truncations = dict.fromkeys(agents, bool(truncated))
        infos = {a: dict(info) for a in agents}
        if terminated or truncated:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def render(self) -> None:
        """No rendering."""
        return None

    def close(self) -> None:
        """Close the underlying env."""
        self.env.close()


def parallel_env(**kwargs) -> GBPMDuelParallelEnv:
    """Build the two-player view (PettingZoo's constructor convention).

    Args:
        **kwargs: Arguments of :class:`GBPMDuelParallelEnv`.

    Returns:
        The parallel env.
    """
    return GBPMDuelParallelEnv(**kwargs)
