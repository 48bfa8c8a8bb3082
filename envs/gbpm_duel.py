"""Contextual dueling under a Generalized Bilinear Preference Model, plain and vectorized.

Each round reveals a context x, the agent plays a pair (a1, a2) and observes the preference
bit 1[a1 beats a2] ~ Ber(mu(phi(x, a1)^T Theta_star phi(x, a2))). The protocol is the one of
the paper's section 2.1 (spec gbpm.md section 1.4); the default instance is the authors'
experiment setting (d = 5, K = 20, r = 1, S = 5, logistic link, no contexts).

References:
    Lee, Hong, Jun, Yun, Yun. "Regularized Online RLHF with Generalized Bilinear
    Preferences", arXiv:2602.23116, 2026, section 2.1 and appendix A.
"""

from __future__ import annotations

import inspect
import logging
import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from rlhf_gbpm._validation import check_scalar
from rlhf_gbpm.errors import GBPMWarning
from rlhf_gbpm.instances import GBPMInstance, random_instance
from rlhf_gbpm.links import NORMS, Link, get_link
from rlhf_gbpm.protocol import DuelAction

from ._engine import (
    CONTEXT_BOUND,
    DuelEngine,
    StackedInstances,
    draw_episode_seeds,
    keys_from_noise_seed,
)
from .oracle import DuelOracle

__all__ = ["GBPMDuelEnv", "GBPMDuelVectorEnv"]

logger = logging.getLogger(__name__)

_OPTION_KEYS = ("instance_seed", "noise_seed")


def _check_seed_value(seed, name: str):
    if seed is None:
        return None
    check_scalar(seed, name, numbers.Integral, min_val=0)
    return int(seed)


def _check_options(options) -> dict:
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise TypeError(f"options must be a dict or None, not {type(options).__name__}.")
    unknown = sorted(set(options) - set(_OPTION_KEYS))
    if unknown:
        raise ValueError(f"options has unknown keys {unknown}; valid keys are {_OPTION_KEYS}.")
    return options


def _check_pairs(action, num_actions: int, name: str = "action") -> np.ndarray:
    """Validate action pairs, shape (..., 2), ints in [0, K); returns an int64 array."""
    arr = np.asarray(action)
    if arr.shape[-1:] != (2,):
        raise ValueError(f"{name} must be a pair (a1, a2) of shape (..., 2), got shape "
                         f"{arr.shape}.")
    if arr.dtype.kind not in "iu":  # np.issubdtype(dtype, np.integer), without its cost
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}.")
    if arr.size and (arr.min() < 0 or arr.max() >= num_actions):
        bad = arr[(arr < 0) | (arr >= num_actions)][0]
        raise ValueError(f"{name} entries must lie in [0, K) == [0, {num_actions}), got {bad}.")
    return arr.astype(np.int64, copy=False)


class _DuelConfig:
    """Validated constructor arguments shared by a plain env and its vector twin."""

    def __init__(self, env_cls, *, d, K, rank, S, link, contexts, horizon, norm, context_scale,
                 instance_seed, noise_seed):
        check_scalar(d, "d", numbers.Integral, min_val=2)
        check_scalar(K, "K", numbers.Integral, min_val=2)
        check_scalar(rank, "rank", numbers.Integral, min_val=1)
        if 2 * rank > d:
            raise ValueError(f"rank == {rank}, must satisfy 2*rank <= d == {d}.")
        check_scalar(S, "S", numbers.Real, min_val=0.0, include_boundaries="neither")
        check_scalar(horizon, "horizon", numbers.Integral, min_val=1)
        if norm not in NORMS:
            raise ValueError(f"norm == {norm!r}, must be one of {NORMS}.")
        check_scalar(context_scale, "context_scale", numbers.Real, min_val=0.0)
        self.env_cls = env_cls
        self.kwargs = dict(d=int(d), K=int(K), rank=int(rank), S=float(S), link=get_link(link),
                           contexts=contexts, norm=norm, context_scale=float(context_scale))
        self.horizon = int(horizon)
        self.instance_seed = _check_seed_value(instance_seed, "instance_seed")
        self.noise_seed = _check_seed_value(noise_seed, "noise_seed")

    def make_instance(self, seed: int) -> GBPMInstance:
        return self.env_cls.make_instance(seed=seed, **self.kwargs)


def _single_spaces(stack: StackedInstances) -> tuple[spaces.Dict, spaces.MultiDiscrete]:
    k, d = stack.num_actions, stack.dim
    obs = {"features": spaces.Box(-1.0, 1.0, (k, d), np.float64)}
    if stack.continuous:
        m = stack.uniforms_per_context
        obs["x"] = spaces.Box(-CONTEXT_BOUND, CONTEXT_BOUND, (m,), np.float64)
    else:
        obs["context"] = spaces.Discrete(stack.num_contexts)
    return spaces.Dict(obs), spaces.MultiDiscrete([k, k])


class GBPMDuelEnv(gym.Env[dict, np.ndarray]):
    """Contextual dueling bandit with GBPM preferences (one run).

    ## Description

    A hidden skew-symmetric Theta_star of rank 2r and norm S defines
    P(a1 beats a2 | x) = mu(phi(x, a1)^T Theta_star phi(x, a2)). Each round the env shows a
    context's feature table, the agent answers with a pair of actions, and the reward is the
    preference bit. Preferences can be intransitive (no Condorcet winner), which is why the
    solution concept is the (regularized) symmetric Nash equilibrium; see the oracle.

    ## Action Space

    `MultiDiscrete([K, K])`: the pair (a1, a2) of the max-player and the min-player. A
    :class:`~rlhf_gbpm.protocol.DuelAction` is accepted too (its `pair` is played).

    ## Observation Space

    A `Dict`:

    | key | meaning | shape | min | max |
    |---|---|---|---|---|
    | `"features"` | the round's feature table Phi(x), rows in the unit ball | (K, d) | -1 | 1 |
    | `"context"` | the context index (finite contexts; 0 when C = 1) | () | 0 | C - 1 |
    | `"x"` | the raw context (continuous contexts only) | (m,) | -8.13 | 8.13 |

    Continuous contexts are x ~ N(0, I_m), computed by the inverse normal CDF from 53-bit
    uniforms, hence never beyond |x| = 8.13.

    ## Rewards

    1.0 if a1 beats a2, else 0.0: `1[u_t < p_t]` with p_t = mu(phi1^T Theta_star phi2) and
    u_t = `counter_uniform(noise_key, t, STREAM_NOISE)`. `info` holds `"probability"` (p_t),
    `"context"` (the context the round was played in) and `"t"` (the round index, from 0).

    ## Starting State

    `reset(seed=s)` seeds `np_random`, from which the instance seed, the noise key and the
    context key are drawn (in this order, always). A new instance is drawn at the first reset,
    at every seeded reset and when `options["instance_seed"]` is given; an unseeded reset
    keeps the instance and starts fresh noise and context streams. Fix the instance with
    `instance_seed` (constructor or reset option) or `instance=...`, and the noise and context
    streams with `noise_seed`, to compare agents on common random numbers.

    ## Episode End

    Never terminates; truncates after `horizon` rounds (also set as the registered
    `max_episode_steps`; with `gym.make`, a `horizon` above 10 000 needs
    `max_episode_steps=horizon` too).

    ## Arguments

    | parameter | type | default | description |
    |---|---|---|---|
    | `d` | int | 5 | feature dimension, >= 2 |
    | `K` | int | 20 | number of actions, >= 2 |
    | `rank` | int | 1 | r: Theta_star has rank 2r, 2r <= d |
    | `S` | float | 5.0 | norm of Theta_star (in the norm `norm`), > 0 |
    | `link` | str or Link | "logistic" | "logistic", "linear", "probit" or a Link |
    | `contexts` | None, int, "continuous" | None | none, C finite ones, or x ~ N(0, I_3) |
    | `horizon` | int | 10000 | rounds per episode |
    | `norm` | str | "frobenius" | which norm S measures ("frobenius" or "nuclear") |
    | `context_scale` | float | 0.5 | strength of the context effect (continuous) |
    | `instance` | GBPMInstance | None | a fixed user-given instance |
    | `instance_seed` | int | None | fixes the instance across resets |
    | `noise_seed` | int | None | fixes the noise and context streams |

    ## Vectorized environment

    :class:`GBPMDuelVectorEnv` steps B runs as arrays; run i equals this env reset with the
    i-th seed.

    ## Version History

    * v0: initial version.

    Examples:
        >>> import gymnasium as gym
        >>> import rlhf_gbpm.envs
        >>> env = gym.make("rlhf_gbpm/GBPMDuel-v0")
        >>> obs, info = env.reset(seed=123)
        >>> obs["features"].shape, int(obs["context"])
        ((20, 5), 0)
    """

    metadata = {"render_modes": []}

    def __init__(self, *, d: int = 5, K: int = 20, rank: int = 1, S: float = 5.0,
                 link: str | Link = "logistic", contexts: int | str | None = None,
                 horizon: int = 10_000, norm: str = "frobenius", context_scale: float = 0.5,
                 instance: GBPMInstance | None = None, instance_seed: int | None = None,
                 noise_seed: int | None = None, render_mode: str | None = None):
        if render_mode is not None:
            raise ValueError(f"render_mode == {render_mode!r}, must be None (no rendering).")
        self._config = _DuelConfig(type(self), d=d, K=K, rank=rank, S=S, link=link,
                                   contexts=contexts, horizon=horizon, norm=norm,
                                   context_scale=context_scale, instance_seed=instance_seed,
                                   noise_seed=noise_seed)
        if instance is not None and not isinstance(instance, GBPMInstance):
            raise TypeError(f"instance must be a GBPMInstance, not {type(instance).__name__}.")
        self._fixed_instance = instance
        probe = instance if instance is not None else self._config.make_instance(0)
        self.observation_space, self.action_space = _single_spaces(StackedInstances([probe]))
        self.horizon = self._config.horizon
        self.render_mode = None
        self._engine: DuelEngine | None = None
        self._instance: GBPMInstance | None = None
        self._oracle: DuelOracle | None = None

    @classmethod
    def make_instance(cls, *, d: int, K: int, rank: int, S: float, link: Link, contexts,
                      norm: str, context_scale: float, seed: int) -> GBPMInstance:
        """Draw this env's kind of instance (here: a random low-rank GBPM).

        Args:
            d: Feature dimension.
            K: Number of actions.
            rank: r.
            S: Norm of Theta_star.
            link: The link.
            contexts: None, an int C, or "continuous".
            norm: Which norm S measures.
            context_scale: Context effect size (continuous contexts).
            seed: Instance seed.

        Returns:
            The instance.
        """
        return random_instance(d=d, K=K, rank=rank, S=S, link=link, norm=norm,
                               contexts=contexts, context_scale=context_scale, seed=seed)

    @property
    def instance(self) -> GBPMInstance:
        """The hidden instance of the current episode (for oracles and monitors only)."""
        if self._instance is None:
            raise gym.error.ResetNeeded("Call reset() before reading the instance.")
        return self._instance

    @property
    def oracle(self) -> DuelOracle:
        """Exact answers from the true Theta_star (payoff, SNE, dual gap, diagnostics)."""
        if self._oracle is None:
            self._oracle = DuelOracle(self.instance)
        return self._oracle

    @property
    def engine(self) -> DuelEngine:
        """The batched state (B = 1); for wrappers that need the current context."""
        if self._engine is None:
            raise gym.error.ResetNeeded("Call reset() before step().")
        return self._engine

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode; see the class docstring for what is redrawn.

        Args:
            seed: Seed of `np_random` (non-negative int) or None.
            options: Optional `{"instance_seed": int, "noise_seed": int}`.

        Returns:
            (observation, info) with info `{"context", "t"}`.
        """
        super().reset(seed=seed)
        options = _check_options(options)
        instance_seed = _check_seed_value(
            options.get("instance_seed", self._config.instance_seed), "instance_seed")
        noise_seed = _check_seed_value(
            options.get("noise_seed", self._config.noise_seed), "noise_seed")
        drawn_seed, noise_key, context_key = draw_episode_seeds(self.np_random)
        if noise_seed is not None:
            noise_key, context_key = keys_from_noise_seed(noise_seed)
        new_instance = self._engine is None or seed is not None or "instance_seed" in options
        if new_instance:
            if self._fixed_instance is not None:
                instance = self._fixed_instance
            else:
                instance = self._config.make_instance(
                    drawn_seed if instance_seed is None else instance_seed)
            self._instance = instance
            self._oracle = None
            self._engine = DuelEngine(StackedInstances([instance]))
        rows = np.zeros(1, dtype=np.intp)
        self._engine.begin(rows, np.array([noise_key]), np.array([context_key]))
        return self._observation(), {"context": self._context_value(), "t": 0}

    def _context_value(self):
        ctx = self._engine.context[0]
        return ctx.copy() if self._engine.stack.continuous else int(ctx)

    def _observation(self) -> dict:
        obs = self._engine.observation()
        key = "x" if self._engine.stack.continuous else "context"
        return {"features": obs["features"][0], key: obs[key][0]}

    def step(self, action):
        """Play one round.

        Args:
            action: The pair (a1, a2), ints in [0, K), or a DuelAction.

        Returns:
            (observation, reward in {0., 1.}, False, truncated, info) with info
            `{"probability", "context", "t"}`.
        """
        engine = self.engine
        if isinstance(action, DuelAction):
            action = action.pair
        pair = _check_pairs(action, self.action_space.nvec[0])
        if pair.ndim != 1:
            raise ValueError(f"action must have shape (2,), got {pair.shape}.")
        p, reward, ctx, t = engine.play(pair[:1], pair[1:])
        played = ctx[0].copy() if engine.stack.continuous else int(ctx[0])
        info = {"probability": float(p[0]), "context": played, "t": int(t[0])}
        truncated = bool(t[0] + 1 >= self.horizon)
        return self._observation(), float(reward[0]), False, truncated, info


class GBPMDuelVectorEnv(VectorEnv):
    """B independent GBPM duel runs stepped as arrays (native vector twin of GBPMDuelEnv).

    Observations are `{"features": (B, K, d), "context": (B,)}` (or `"x": (B, m)`), rewards,
    terminations and truncations have shape (B,), and `info` is a dict of arrays with
    Gymnasium's `"_key"` masks, equal to what `SyncVectorEnv` over plain envs returns.
    Without contexts the feature tables never change, and `"features"` is one read-only
    array shared by every observation of the env (no (B, K, d) copy per step); other
    arrays are fresh.

    Seeding: `reset(seed=s)` seeds run i with s + i (as `SyncVectorEnv` does); a list of B
    seeds seeds run i with `seed[i]`. Run i then equals `GBPMDuelEnv` reset with that seed.
    By default every run draws its own instance (as the authors' experiments do); with
    `share_instance=True` all runs play run 0's instance (each with its own noise).
    Options `instance_seed` / `noise_seed` take one int for every run or a list of B.

    Autoreset: next-step (`metadata["autoreset_mode"]`). The step after a truncation resets
    those runs (new noise and context streams, same instance), ignores their actions and
    returns reward 0 and the reset info.

    Args:
        num_envs: B >= 1.
        max_episode_steps: Truncation length set by `gym.make_vec` (the registered 10 000
            unless given); the effective horizon is `min(horizon, max_episode_steps)`, with a
            GBPMWarning when it cuts `horizon` short.
        share_instance: One instance for every run.
        instances: Optional fixed instances: one for every run or a sequence of B.
        **kwargs: The arguments of :class:`GBPMDuelEnv` (d, K, rank, S, link, contexts,
            horizon, norm, context_scale, instance_seed, noise_seed).
    """

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}
    env_class = GBPMDuelEnv

    def __init__(self, num_envs: int = 1, *, max_episode_steps: int | None = None,
                 share_instance: bool = False,
                 instances: GBPMInstance | Sequence[GBPMInstance] | None = None,
                 render_mode: str | None = None, **kwargs):
        check_scalar(num_envs, "num_envs", numbers.Integral, min_val=1)
        if render_mode is not None:
            raise ValueError(f"render_mode == {render_mode!r}, must be None (no rendering).")
        self._config = _DuelConfig(self.env_class, **self._with_defaults(kwargs))
        horizon = self._config.horizon
        if max_episode_steps is not None:
            check_scalar(max_episode_steps, "max_episode_steps", numbers.Integral, min_val=1)
            if max_episode_steps < horizon:
                warnings.warn(f"max_episode_steps == {max_episode_steps} truncates episodes "
                              f"before horizon == {horizon}; pass max_episode_steps={horizon} "
                              "to gym.make_vec for full episodes.", GBPMWarning, stacklevel=2)
                horizon = int(max_episode_steps)
        self.horizon = horizon
        self.num_envs = int(num_envs)
        self.share_instance = bool(share_instance)
        if isinstance(instances, GBPMInstance):
            instances = [instances] * self.num_envs
        if instances is not None:
            instances = list(instances)
            if len(instances) != self.num_envs:
                raise ValueError(f"instances must hold num_envs == {self.num_envs} instances, "
                                 f"got {len(instances)}.")
        self._fixed_instances = instances
        probe = instances[0] if instances is not None else self._config.make_instance(0)
        single_obs, single_act = _single_spaces(StackedInstances([probe]))
        self.single_observation_space = single_obs
        self.single_action_space = single_act
        self._num_actions = int(single_act.nvec[0])
        self.observation_space = batch_space(single_obs, self.num_envs)
        self.action_space = batch_space(single_act, self.num_envs)
        self.render_mode = None
        self._rngs: list[np.random.Generator] = []
        self._engine: DuelEngine | None = None
        self._oracle: DuelOracle | None = None
        self._prev_done = np.zeros(self.num_envs, dtype=bool)

    @classmethod
    def _with_defaults(cls, kwargs: dict) -> dict:
        defaults: dict[str, Any] = {}
        for klass in cls.env_class.__mro__:
            init = klass.__dict__.get("__init__")
            if init is None or klass is gym.Env or not issubclass(klass, GBPMDuelEnv):
                continue
            for name, param in inspect.signature(init).parameters.items():
                if param.kind is param.KEYWORD_ONLY and name not in defaults:
                    defaults[name] = param.default
        for name in ("instance", "render_mode"):
            defaults.pop(name, None)
        unknown = sorted(set(kwargs) - set(defaults))
        if unknown:
            raise TypeError(f"{cls.__name__} got unexpected arguments {unknown}.")
        defaults.update(kwargs)
        return defaults

    @property
    def instances(self) -> tuple[GBPMInstance, ...]:
        """The hidden instances of the B runs (for oracles and monitors only)."""
        return self.engine.stack.instances

    @property
    def oracle(self) -> DuelOracle:
        """Batched oracle over the B runs' instances."""
        if self._oracle is None:
            self._oracle = DuelOracle(list(self.instances))
        return self._oracle

    @property
    def engine(self) -> DuelEngine:
        """The batched state of the B runs."""
        if self._engine is None:
            raise gym.error.ResetNeeded("Call reset() before step().")
        return self._engine

    def _per_run(self, value, name: str) -> list:
        if value is None or isinstance(value, numbers.Integral):
            return [value] * self.num_envs
        values = list(value)
        if len(values) != self.num_envs:
            raise ValueError(f"{name} must be an int or a list of num_envs == {self.num_envs} "
                             f"values, got {len(values)}.")
        return values

    def reset(self, *, seed: int | Sequence[int] | None = None,
              options: dict[str, Any] | None = None):
        """Reset every run.

        Args:
            seed: None, an int s (run i gets s + i) or a list of B ints.
            options: Optional `{"instance_seed": int | list, "noise_seed": int | list}`.

        Returns:
            (observations, info) with info arrays `"context"`, `"t"` and their masks.
        """
        options = _check_options(options)
        if seed is None:
            seeds = [None] * self.num_envs
        elif isinstance(seed, numbers.Integral):
            check_scalar(seed, "seed", numbers.Integral, min_val=0)
            seeds = [int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = [None if s is None else int(check_scalar(s, "seed", numbers.Integral,
                                                             min_val=0))
                     for s in self._per_run(seed, "seed")]
        if seed is not None or not self._rngs:
            self._rngs = [seeding.np_random(s)[0] for s in seeds]
        instance_seeds = [_check_seed_value(s, "instance_seed") for s in self._per_run(
            options.get("instance_seed", self._config.instance_seed), "instance_seed")]
        noise_seeds = [_check_seed_value(s, "noise_seed") for s in self._per_run(
            options.get("noise_seed", self._config.noise_seed), "noise_seed")]
        plans = [draw_episode_seeds(rng) for rng in self._rngs]
        noise_keys = np.array([p[1] for p in plans], dtype=np.uint64)
        context_keys = np.array([p[2] for p in plans], dtype=np.uint64)
        for i, ns in enumerate(noise_seeds):
            if ns is not None:
                noise_keys[i], context_keys[i] = keys_from_noise_seed(ns)
        if self._engine is None or seed is not None or "instance_seed" in options:
            self._engine = DuelEngine(StackedInstances(self._draw_instances(plans,
                                                                            instance_seeds)))
            self._oracle = None
        rows = np.arange(self.num_envs)
        self._engine.begin(rows, noise_keys, context_keys)
        self._prev_done[:] = False
        info = self._reset_info(rows)
        return self._engine.observation(share_static=True), info

    def _draw_instances(self, plans, instance_seeds) -> list[GBPMInstance]:
        if self._fixed_instances is not None:
            return list(self._fixed_instances)
        chosen = [p[0] if s is None else s for p, s in zip(plans, instance_seeds)]
        if self.share_instance:
            return [self._config.make_instance(chosen[0])] * self.num_envs
        cache: dict[int, GBPMInstance] = {}
        out = []
        for s in chosen:
            if s not in cache:
                cache[s] = self._config.make_instance(s)
            out.append(cache[s])
        return out

    def _reset_info(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        engine = self._engine
        mask = np.zeros(self.num_envs, dtype=bool)
        mask[rows] = True
        ctx = np.zeros_like(engine.context)
        ctx[rows] = engine.context[rows]
        return {"context": ctx, "_context": mask, "t": np.zeros(self.num_envs, dtype=np.int64),
                "_t": mask.copy()}

    def step(self, actions):
        """Step every run; runs truncated at the previous step are reset instead.

        Args:
            actions: Pairs, int array of shape (B, 2) (or a DuelAction with `pair` (B, 2)).

        Returns:
            (observations, rewards (B,), terminations (B,), truncations (B,), info) with info
            arrays `"probability"`, `"context"`, `"t"` and their `"_key"` masks.
        """
        engine = self.engine
        if isinstance(actions, DuelAction):
            actions = actions.pair
        b = self.num_envs
        arr = np.asarray(actions)
        if arr.shape != (b, 2):
            raise ValueError(f"actions must have shape (B, 2) == ({b}, 2), got {arr.shape}.")
        done = self._prev_done
        if done.any():
            return self._step_with_resets(arr, done)
        # the usual round: every run plays, no mask to build
        pairs = _check_pairs(arr, self._num_actions, "actions")
        prob, reward, played, t_info = engine.play(pairs[:, 0], pairs[:, 1])
        truncated = t_info + 1 >= self.horizon
        ones = np.ones(b, dtype=bool)
        info = {"probability": prob, "_probability": ones, "context": played,
                "_context": ones.copy(), "t": t_info, "_t": ones.copy()}
        self._prev_done = truncated.copy()
        obs = engine.observation(share_static=True)
        return obs, reward, np.zeros(b, dtype=bool), truncated, info

    def _step_with_resets(self, arr: np.ndarray, done: np.ndarray):
        """:meth:`step` when some runs were truncated at the previous step (they reset).

        Args:
            arr: The actions, shape (B, 2) (those of the resetting runs are ignored).
            done: The runs to reset, bool shape (B,).
        """
        engine = self._engine
        b = self.num_envs
        reward = np.zeros(b)
        prob = np.zeros(b)
        t_info = np.zeros(b, dtype=np.int64)
        played = np.zeros_like(engine.context)
        active = ~done
        rows = np.flatnonzero(active)
        if rows.size:
            pairs = _check_pairs(arr[rows], self._num_actions, "actions")
            p, r, c, t = engine.play(pairs[:, 0], pairs[:, 1], rows)
            prob[rows], reward[rows], played[rows], t_info[rows] = p, r, c, t
        reset_rows = np.flatnonzero(done)
        keys = [draw_episode_seeds(self._rngs[i])[1:] for i in reset_rows]
        noise_keys = np.array([k[0] for k in keys], dtype=np.uint64)
        context_keys = np.array([k[1] for k in keys], dtype=np.uint64)
        if self._config.noise_seed is not None:
            noise_keys[:], context_keys[:] = keys_from_noise_seed(self._config.noise_seed)
        engine.begin(reset_rows, noise_keys, context_keys)
        played[reset_rows] = engine.context[reset_rows]
        truncated = active & (t_info + 1 >= self.horizon)
        terminated = np.zeros(b, dtype=bool)
        info = {"probability": prob, "_probability": active.copy(), "context": played,
                "_context": np.ones(b, dtype=bool), "t": t_info, "_t": np.ones(b, dtype=bool)}
        if not active.any():  # only resets: like SyncVectorEnv, no probability key
            del info["probability"], info["_probability"]
        self._prev_done = truncated.copy()
        return engine.observation(share_static=True), reward, terminated, truncated, info
