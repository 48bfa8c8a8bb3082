"""Regret monitors: record MBR and ABR regret from the policies an agent declares.

An agent declares, every round, the two policies it sampled its pair from, in one of two
ways:

* step with a :class:`~rlhf_gbpm.protocol.DuelAction` ``(pair, max_policy, min_policy)``;
  the monitor records the gaps and forwards only ``pair`` to the env;
* call ``monitor.declare(max_policy, min_policy)`` and step with plain pairs; the declared
  policies stay in force until the next ``declare`` (convenient when a policy is fixed for
  many rounds, as in Explore-Then-Commit).

A policy of shape (K,) is evaluated at the round's context: the round's increment is
DGap_eta(pi(.|x_t)) on that context's game. With finite contexts a policy of shape (C, K)
(one row per context) is evaluated exactly in expectation over d0:
sum_c d0(c) DGap_eta(pi(.|c)) -- the regret of the paper's definition, without the
sampling noise of x_t. Continuous contexts take (K,) policies only.

MBR increments are DGap_eta(pi1_t); ABR increments are DGap_eta(pi1_t) + DGap_eta(pi2_t)
(spec gbpm.md section 2.4). The evaluation eta is the monitor's own, separate from any
agent's eta (spec section 9, item 18).
"""

from __future__ import annotations

import logging
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import VectorEnv, VectorWrapper

from rlhf_gbpm._validation import check_eta, check_simplex
from rlhf_gbpm.protocol import DuelAction
from rlhf_gbpm.regret import RegretLog

from ._engine import StackedInstances

__all__ = ["RegretMonitor", "VectorRegretMonitor"]

logger = logging.getLogger(__name__)


def _resolve_regularizer(regularizer):
    from rlhf_gbpm.regularizers import get_regularizer

    return get_regularizer(regularizer) if isinstance(regularizer, str) else regularizer


def _check_policies(policy, lead: tuple[int, ...], k: int, c: int | None, name: str):
    """Validate a policy batch of shape lead + (K,) or lead + (C, K)."""
    p = np.asarray(policy, dtype=float)
    shapes = [lead + (k,)] + ([lead + (c, k)] if c is not None else [])
    if p.shape not in shapes:
        want = " or ".join(str(s) for s in shapes)
        raise ValueError(f"{name} must have shape {want}, got {p.shape}.")
    return check_simplex(p, name)


class _RegretViews:
    """Views of the current episode's log shared by both monitors.

    Shapes are (T,) for :class:`RegretMonitor` and (B, T) for :class:`VectorRegretMonitor`.
    """

    log: RegretLog

    @property
    def dgap_max(self) -> np.ndarray:
        """Per-round DGap_eta(pi1_t) (the MBR increments)."""
        return self.log.max_gaps

    @property
    def dgap_min(self) -> np.ndarray:
        """Per-round DGap_eta(pi2_t)."""
        return self.log.min_gaps

    @property
    def mbr_curve(self) -> np.ndarray:
        """Cumulative MBR regret of the current episode."""
        return self.log.mbr_curve

    @property
    def abr_curve(self) -> np.ndarray:
        """Cumulative ABR regret of the current episode."""
        return self.log.abr_curve


class RegretMonitor(_RegretViews, gym.Wrapper):
    """Record per-round MBR/ABR regret of one run from declared policies.

    Args:
        env: A duel env (``rlhf_gbpm/...`` ids, possibly wrapped).
        regularizer: The evaluation regularizer or its name (e.g. ``"kl"``).
        eta: The evaluation strength in (0, inf] (inf: unregularized).

    Attributes:
        log: The :class:`~rlhf_gbpm.regret.RegretLog` of the current episode.

    Examples:
        >>> import gymnasium as gym, numpy as np
        >>> import rlhf_gbpm.envs
        >>> from rlhf_gbpm.envs.wrappers import RegretMonitor
        >>> env = RegretMonitor(gym.make("rlhf_gbpm/GBPMDuel-v0"), "kl", eta=1.0)
        >>> _ = env.reset(seed=0)
        >>> env.declare(np.full(20, 0.05), np.full(20, 0.05))
        >>> _ = env.step(np.array([0, 1]))
        >>> env.mbr_curve.shape
        (1,)
    """

    def __init__(self, env: gym.Env, regularizer, eta: float):
        super().__init__(env)
        self.regularizer = _resolve_regularizer(regularizer)
        self.eta = check_eta(eta)
        if self.eta.ndim != 0:
            raise ValueError(f"eta must be a scalar for RegretMonitor, got shape "
                             f"{self.eta.shape}; use VectorRegretMonitor for one eta per run.")
        self.log = RegretLog()
        self._declared: tuple[np.ndarray, np.ndarray] | None = None
        self._cache: dict[int, tuple] = {}

    @property
    def oracle(self):
        """The wrapped env's oracle (``env.unwrapped.oracle``)."""
        return self.env.unwrapped.oracle

    def _spec(self) -> tuple[int, int | None]:
        stack = self.env.unwrapped.engine.stack
        return stack.num_actions, stack.num_contexts

    def declare(self, max_policy, min_policy=None) -> None:
        """Declare the policies of the following rounds (until the next declare).

        Args:
            max_policy: The max-player's policy, shape (K,) or (C, K).
            min_policy: The min-player's policy, same shapes; ``max_policy`` when None.
        """
        k, c = self._spec()
        p1 = _check_policies(max_policy, (), k, c, "max_policy").copy()
        p2 = p1 if min_policy is None else _check_policies(min_policy, (), k, c,
                                                           "min_policy").copy()
        self._declared = (p1, p2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Reset the env and start a new regret log (declared policies stay in force)."""
        out = self.env.reset(seed=seed, options=options)
        self.log = RegretLog()
        self._cache = {}
        return out

    def _gap(self, slot: int, policy: np.ndarray) -> float:
        from rlhf_gbpm.equilibrium import dual_gap

        engine = self.env.unwrapped.engine
        stack = engine.stack
        if policy.ndim == 2:  # (C, K): exact expectation over d0
            ctx_key: Any = None
        elif stack.continuous:
            ctx_key = engine.context[0].tobytes()
        else:
            ctx_key = int(engine.context[0])
        cached = self._cache.get(slot)
        if cached is not None and cached[1] == ctx_key and cached[0].shape == policy.shape \
                and np.array_equal(cached[0], policy) and cached[3] is stack:
            return cached[2]
        if policy.ndim == 2:
            gaps = dual_gap(policy, stack.payoff_table()[0], self.regularizer, self.eta)
            gap = float(np.dot(stack.probs[0], gaps))
        else:
            a = stack.payoff(engine.context[:1])[0]
            gap = float(dual_gap(policy, a, self.regularizer, self.eta))
        self._cache[slot] = (policy.copy(), ctx_key, gap, stack)
        return gap

    def step(self, action):
        """Record this round's gaps, then step the env with the pair.

        Args:
            action: A DuelAction, or a plain pair after :meth:`declare`.

        Returns:
            The env's step, with info keys ``"dgap_max"``, ``"dgap_min"`` (this round) and
            ``"mbr_regret"``, ``"abr_regret"`` (cumulative).
        """
        k, c = self._spec()
        if isinstance(action, DuelAction):
            p1 = _check_policies(action.max_policy, (), k, c, "max_policy")
            p2 = _check_policies(action.min_policy, (), k, c, "min_policy")
            pair = action.pair
        elif self._declared is None:
            raise ValueError("action carries no policies: step with a DuelAction(pair, "
                             "max_policy, min_policy) or call declare(max_policy, min_policy) "
                             "first.")
        else:
            p1, p2 = self._declared
            pair = action
        g1, g2 = self._gap(0, p1), self._gap(1, p2)
        obs, reward, terminated, truncated, info = self.env.step(pair)
        self.log.record(g1, g2)
        info = dict(info)
        info.update(dgap_max=g1, dgap_min=g2, mbr_regret=self.log.mbr_total,
                    abr_regret=self.log.abr_total)
        return obs, reward, terminated, truncated, info


class _SyncSource:
    """Instances and current contexts of a SyncVectorEnv over plain duel envs."""

    def __init__(self, venv):
        self.venv = venv

    @property
    def stack(self) -> StackedInstances:
        insts = [e.unwrapped.instance for e in self.venv.envs]
        key = tuple(id(i) for i in insts)
        if getattr(self, "_key", None) != key:
            self._stack = StackedInstances(insts)
            self._key = key
        return self._stack

    @property
    def context(self) -> np.ndarray:
        return np.stack([e.unwrapped.engine.context[0] for e in self.venv.envs])


class VectorRegretMonitor(_RegretViews, VectorWrapper):
    """Record per-round MBR/ABR regret of B runs (arrays of shape (B,)).

    Wraps a native duel vector env (or a ``SyncVectorEnv`` of plain duel envs). Gaps of
    all runs are computed in one batched ``dual_gap`` call. ``eta`` is a scalar or one
    evaluation strength per run, shape (B,), so an eta sweep runs in one vector env.

    Autoreset: the log holds the current episode; the autoreset step (no round is played)
    moves the finished log to ``episode_logs`` and starts a new one.

    Args:
        env: The vector env.
        regularizer: The evaluation regularizer or its name.
        eta: Evaluation strength in (0, inf], scalar or shape (B,).
    """

    def __init__(self, env: VectorEnv, regularizer, eta):
        super().__init__(env)
        self.regularizer = _resolve_regularizer(regularizer)
        b = self.num_envs
        eta = check_eta(eta)
        if eta.shape not in ((), (b,)):
            raise ValueError(f"eta must have shape () or (B,) == ({b},), got {eta.shape}.")
        self.eta = np.broadcast_to(eta, (b,)).copy()
        self.log = RegretLog(b)
        self.episode_logs: list[RegretLog] = []
        self._declared: tuple[np.ndarray, np.ndarray] | None = None
        self._prev_done = np.zeros(b, dtype=bool)
        self._last = (np.zeros(b), np.zeros(b))
        inner = env.unwrapped
        self._source = _SyncSource(inner) if hasattr(inner, "envs") else None

    @property
    def oracle(self):
        """Batched oracle over the B runs' instances."""
        if self._source is not None:
            from .oracle import DuelOracle

            return DuelOracle(list(self._source.stack.instances))
        return self.env.unwrapped.oracle

    def _state(self):
        if self._source is not None:
            return self._source.stack, self._source.context
        engine = self.env.unwrapped.engine
        return engine.stack, engine.context

    def _spec(self) -> tuple[int, int | None]:
        stack, _ = self._state()
        return stack.num_actions, stack.num_contexts

    def declare(self, max_policy, min_policy=None) -> None:
        """Declare the policies of the following rounds for every run.

        Args:
            max_policy: Shape (B, K) or (B, C, K).
            min_policy: Same shapes; ``max_policy`` when None.
        """
        k, c = self._spec()
        lead = (self.num_envs,)
        p1 = _check_policies(max_policy, lead, k, c, "max_policy").copy()
        p2 = p1 if min_policy is None else _check_policies(min_policy, lead, k, c,
                                                           "min_policy").copy()
        self._declared = (p1, p2)

    def reset(self, *, seed=None, options: dict[str, Any] | None = None):
        """Reset every run and start a new log."""
        out = self.env.reset(seed=seed, options=options)
        self.log = RegretLog(self.num_envs)
        self._prev_done[:] = False
        self._last = (np.zeros(self.num_envs), np.zeros(self.num_envs))
        return out

    def _gaps(self, policy: np.ndarray) -> np.ndarray:
        from rlhf_gbpm.equilibrium import dual_gap

        stack, context = self._state()
        if policy.ndim == 3:
            gaps = dual_gap(policy, stack.payoff_table(), self.regularizer, self.eta[:, None])
            return np.sum(stack.probs * gaps, axis=-1)
        return dual_gap(policy, stack.payoff(context), self.regularizer, self.eta)

    def step(self, actions):
        """Record this round's gaps for every run, then step the runs with the pairs.

        Args:
            actions: A DuelAction with ``pair`` (B, 2) and policies (B, K) or (B, C, K),
                or plain pairs (B, 2) after :meth:`declare`.

        Returns:
            The vector env's step, with info arrays ``"dgap_max"``, ``"dgap_min"``,
            ``"mbr_regret"`` and ``"abr_regret"`` (shape (B,)).
        """
        k, c = self._spec()
        lead = (self.num_envs,)
        if isinstance(actions, DuelAction):
            p1 = _check_policies(actions.max_policy, lead, k, c, "max_policy")
            p2 = _check_policies(actions.min_policy, lead, k, c, "min_policy")
            pairs = actions.pair
        elif self._declared is None:
            raise ValueError("actions carry no policies: step with a DuelAction(pair, "
                             "max_policy, min_policy) or call declare(max_policy, min_policy) "
                             "first.")
        else:
            p1, p2 = self._declared
            pairs = actions
        done = self._prev_done
        if done.all():
            self.episode_logs.append(self.log)
            self.log = RegretLog(self.num_envs)
            g1 = g2 = np.zeros(self.num_envs)
        else:
            g1, g2 = self._gaps(p1), self._gaps(p2)
            g1, g2 = np.where(done, 0.0, g1), np.where(done, 0.0, g2)
        obs, reward, terminated, truncated, info = self.env.step(pairs)
        if not done.all():
            self.log.record(g1, g2)
        self._prev_done = np.logical_or(terminated, truncated)
        info = dict(info)
        self._last = (g1, g2)
        info["dgap_max"], info["dgap_min"] = g1, g2
        info["mbr_regret"], info["abr_regret"] = self.log.mbr_total, self.log.abr_total
        return obs, reward, terminated, truncated, info

    @property
    def mbr_last(self) -> np.ndarray:
        """The last step's MBR increment DGap_eta(pi1_t) per run, shape (B,) (0 before)."""
        return self._last[0].copy()

    @property
    def abr_last(self) -> np.ndarray:
        """The last step's ABR increment DGap(pi1_t) + DGap(pi2_t), shape (B,)."""
        return self._last[0] + self._last[1]
