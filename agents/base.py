"""The agent interface shared by every agent of ``rlhf_gbpm.agents``.

An agent plays the contextual dueling protocol of ``rlhf_gbpm.protocol``: each round it reads
an observation, answers with a :class:`~rlhf_gbpm.protocol.DuelAction` (the pair and the two
policies it sampled them from) and learns from the preference bit. One agent object runs B
independent runs at once; it is batched iff ``obs["features"].ndim == 3``.

Life cycle::

    agent = GreedySampling(regularizer="shannon", eta=1.0)   # validate and store hyperparameters
    agent.reset(seed=[0, 1, 2])                               # B = 3 runs, one key per run
    action = agent.act(obs)                                   # DuelAction, arrays (B, ...)
    agent.update(obs, action, reward)                         # reward shape (B,)

Randomness: run i draws its actions from counter-based uniforms
``counter_uniform(key_i, t, STREAM_MAX)`` (max-player) and ``STREAM_MIN`` (min-player) with the
inverse CDF of its policy, so a batched run equals the single run with the same seed.
Hyperparameters are stored unchanged; learned state lives in attributes ending in ``_``.
"""

from __future__ import annotations

import inspect
import logging
import numbers
import warnings
from collections.abc import Sequence

import numpy as np

from rlhf_gbpm._random import stream_state, uniform_from_state
from rlhf_gbpm._validation import check_eta, check_scalar, check_simplex
from rlhf_gbpm.errors import ConvergenceWarning
from rlhf_gbpm.preference import payoff_matrix
from rlhf_gbpm.protocol import STREAM_MAX, STREAM_MIN, DuelAction
from rlhf_gbpm.skew import vec_to_skew

__all__ = ["Agent", "sample_actions", "seed_keys", "resolve_regularizer"]

logger = logging.getLogger(__name__)

# salt mixed into every agent key, so that an agent seeded like an env never shares its stream
_AGENT_SALT = 0x5EED_A6E7
# the counter streams of the pair's two actions, in pair order
_PAIR_STREAMS = np.array([STREAM_MAX, STREAM_MIN], dtype=np.uint64)


def seed_keys(seeds: Sequence[int]) -> np.ndarray:
    """Per-run uint64 keys from non-negative integer seeds.

    Args:
        seeds: One seed per run, length B.

    Returns:
        Keys, uint64 array of shape (B,); key i depends on seed i only.
    """
    keys = [np.random.SeedSequence([int(s), _AGENT_SALT]).generate_state(1, np.uint64)[0]
            for s in seeds]
    return np.asarray(keys, dtype=np.uint64)


def sample_actions(policy: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Sample actions by the inverse CDF of each row of ``policy``.

    Action k is returned iff ``cdf[k-1] <= u * cdf[K-1] < cdf[k]``, so an action of probability
    zero is never drawn.

    Args:
        policy: Distributions, shape (B, K).
        u: Uniforms in [0, 1), shape (B,).

    Returns:
        Actions, int64 array of shape (B,).
    """
    return _inverse_cdf(np.cumsum(policy, axis=-1), u)


def _inverse_cdf(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """:func:`sample_actions` from the cumulative sums of the policies.

    Args:
        cdf: ``np.cumsum(policy, axis=-1)``, shape (..., K).
        u: Uniforms in [0, 1), shape (...).

    Returns:
        Actions, int64 array of shape (...).
    """
    a = np.add.reduce(cdf <= (u * cdf[..., -1])[..., None], axis=-1, dtype=np.int64)
    return np.minimum(a, cdf.shape[-1] - 1)


def resolve_regularizer(regularizer, reference=None):
    """Turn a regularizer name or object into a regularizer object.

    Args:
        regularizer: A registered name (``"kl"``, ``"shannon"``, ``"l2"``, ...) or an object with
            ``value``, ``grad``, ``best_response`` and ``beta`` (a built-in or user-defined
            :class:`~rlhf_gbpm.regularizers.Regularizer`).
        reference: Reference policy, shape (K,), or None (the regularizer's own); with an
            object it is applied through ``with_reference``.

    Returns:
        The regularizer object.

    Raises:
        TypeError: For another type, or a reference given to an object without
            ``with_reference``.
        ValueError: For an unknown name.
    """
    from rlhf_gbpm.regularizers import get_regularizer

    if isinstance(regularizer, str):
        if reference is None:
            return get_regularizer(regularizer)
        return get_regularizer(regularizer, reference=np.asarray(reference, dtype=float))
    missing = [m for m in ("value", "grad", "best_response", "beta")
               if not hasattr(regularizer, m)]
    if missing:
        raise TypeError(
            "regularizer must be a registered name or a Regularizer object, got "
            f"{type(regularizer).__name__} without {missing}."
        )
    if reference is not None:
        if not hasattr(regularizer, "with_reference"):
            raise TypeError(
                "reference was given with a regularizer object that has no with_reference(); "
                "build the object with its reference instead."
            )
        return regularizer.with_reference(np.asarray(reference, dtype=float))
    return regularizer


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if hasattr(value, "get_config"):
        return value.get_config()
    return value


class Agent:
    """Base class of the agents: validation, seeding, sampling and the batched round loop.

    Subclasses implement :meth:`_policies` (the two policies of this round) and :meth:`_learn`
    (use the round's feedback), and may extend :meth:`_validate_params`, :meth:`_start` (called
    at the first ``act`` after ``reset``, when K and d are known).

    Args:
        regularizer: Regularizer name or object (see :func:`resolve_regularizer`).
        eta: Regularization strength in (0, inf], a scalar or one value per run, shape (B,)
            (checked at :meth:`reset` against the number of seeds).
        reference: Reference policy of a named regularizer, shape (K,), or None (uniform).

    Attributes:
        t_: Rounds completed (number of ``update`` calls since ``reset``).
        keys_: Per-run keys, uint64 of shape (B,).
        eta_: Per-run eta, shape (B,).
        regularizer_: The resolved regularizer object.
    """

    def __init__(self, *, regularizer="shannon", eta=1.0, reference=None):
        self.regularizer = regularizer
        self.eta = eta
        self.reference = reference
        self._validate_params()

    # ------------------------------------------------------------------ configuration
    def _validate_params(self) -> None:
        """Check the hyperparameters (raise ``TypeError``/``ValueError`` naming them)."""
        eta = check_eta(self.eta, "eta")
        if eta.ndim > 1:
            raise ValueError(f"eta must be a scalar or have shape (B,), got {eta.shape}.")
        if self.reference is not None:
            ref = check_simplex(self.reference, "reference", shape=("K",))
            if ref.shape[0] < 2:
                raise ValueError(f"reference must have K >= 2 entries, got {ref.shape[0]}.")
        self._regularizer_obj = resolve_regularizer(self.regularizer, self.reference)

    def get_config(self) -> dict:
        """Constructor arguments (JSON-friendly) plus the agent's class name, for manifests."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        config = {"agent": type(self).__name__}
        config.update({name: _jsonable(getattr(self, name)) for name in names})
        return config

    def __repr__(self) -> str:
        cfg = self.get_config()
        cfg.pop("agent")
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in cfg.items())})"

    # ------------------------------------------------------------------ seeding
    def reset(self, seed: int | Sequence[int] | None = None) -> Agent:
        """Forget everything learned and set the per-run keys.

        Args:
            seed: None (fresh entropy; B = len(eta) if eta is an array, else 1), a non-negative
                int (one run) or a sequence of B non-negative ints (B runs).

        Returns:
            self.

        Raises:
            TypeError: For a seed of another type.
            ValueError: For a negative seed, an empty sequence, or eta of another length.
        """
        eta = check_eta(self.eta, "eta")
        if seed is None:
            n = eta.shape[0] if eta.ndim == 1 else 1
            seeds = np.random.SeedSequence().generate_state(n, np.uint32).tolist()
        elif isinstance(seed, (numbers.Integral, np.integer)) and not isinstance(seed, bool):
            seeds = [seed]
        elif isinstance(seed, (Sequence, np.ndarray)) and not isinstance(seed, str):
            seeds = list(np.asarray(seed).reshape(-1)) if isinstance(seed, np.ndarray) else list(
                seed)
            if not seeds:
                raise ValueError("seed must contain at least one seed, got an empty sequence.")
        else:
            raise TypeError(
                f"seed must be None, an int or a sequence of ints, got {type(seed).__name__}."
            )
        for s in seeds:
            check_scalar(s, "seed", (numbers.Integral, np.integer), min_val=0)
        B = len(seeds)
        if eta.ndim == 1 and eta.shape[0] != B:
            raise ValueError(
                f"eta has {eta.shape[0]} values but reset got {B} seeds; give one eta per run."
            )
        self.keys_ = seed_keys(seeds)
        self._pair_state = stream_state(self.keys_[:, None], _PAIR_STREAMS)  # (B, 2)
        self.eta_ = np.broadcast_to(eta, (B,)).astype(float).copy()
        self.regularizer_ = self._regularizer_obj
        self.t_ = 0
        self.num_runs_ = B
        self._started = False
        self._context_kind = None
        self._cdf_buf: np.ndarray | None = None  # the pair's cdfs (B, 2, K), see _pair_cdf
        self._cdf_min_src: bytes | None = None  # the bytes of the p_min in the buffer's second row
        return self

    # ------------------------------------------------------------------ observations
    def _read_obs(self, obs) -> tuple[np.ndarray, np.ndarray | None, bool]:
        """Features (B, K, d), contexts ((B,) ints, (B, m) floats or None) and batchedness."""
        if not hasattr(self, "keys_"):
            raise RuntimeError(f"call {type(self).__name__}.reset(seed=...) before act/update.")
        if not isinstance(obs, dict) or "features" not in obs:
            raise TypeError("obs must be a dict with a 'features' entry (see rlhf_gbpm.protocol).")
        feats = np.asarray(obs["features"], dtype=float)
        batched = feats.ndim == 3
        if not batched:
            feats = feats[None]
        if feats.shape[0] != self.num_runs_:
            raise ValueError(
                f"obs['features'] holds {feats.shape[0]} run(s) but the agent was reset with "
                f"{self.num_runs_} seed(s); batched observations have shape (B, K, d)."
            )
        if "context" in obs:
            ctx = np.asarray(obs["context"]).reshape(-1).astype(np.intp)
            kind = "finite"
        elif "x" in obs:
            ctx = np.asarray(obs["x"], dtype=float).reshape(feats.shape[0], -1)
            kind = "continuous"
        else:
            ctx = np.zeros(feats.shape[0], dtype=np.intp)
            kind = "finite"
        if self._context_kind is None:
            self._context_kind = kind
        return feats, ctx, batched

    # ------------------------------------------------------------------ the round
    def act(self, obs: dict) -> DuelAction:
        """Choose this round's pair.

        Args:
            obs: Observation dict: ``"features"`` of shape (K, d) or (B, K, d), plus
                ``"context"`` (finite contexts) or ``"x"`` (continuous contexts).

        Returns:
            A DuelAction: pair (2,) or (B, 2) and the policies (K,) or (B, K) it was sampled from.
        """
        feats, ctx, batched = self._read_obs(obs)
        if not self._started:
            self._check_first_obs(feats)
            self._start(feats)
            self._started = True
        p_max, p_min = self._policies(feats, ctx)
        return self._declare(self._sample_pair(p_max, p_min), p_max, p_min, batched)

    def _sample_pair(self, p_max: np.ndarray, p_min: np.ndarray) -> np.ndarray:
        """This round's pair (B, 2): a1 ~ p_max on STREAM_MAX, a2 ~ p_min on STREAM_MIN.

        Both players in one pass: the uniforms ``counter_uniform(keys_, t_, STREAM_MAX)`` and
        ``(..., STREAM_MIN)`` as the columns of one (B, 2) draw (from the (key, stream) half
        of the hash kept since reset), and the inverse CDF of the stacked (B, 2, K) policies;
        every entry is computed as by two separate calls.
        """
        u = uniform_from_state(self._pair_state, self.t_)
        cdf = self._pair_cdf(p_max, p_min)
        if cdf is None:
            return sample_actions(np.stack([p_max, p_min], axis=1), u)
        return _inverse_cdf(cdf, u)

    def _pair_cdf(self, p_max: np.ndarray, p_min: np.ndarray) -> np.ndarray | None:
        """The cumulative sums of the stacked policies, shape (B, 2, K), or None.

        Written into a buffer kept between rounds; the min-player's row is recomputed only
        when ``p_min`` differs in any bit from the last one (the exploration policy of a
        sweep never changes). Each row is the sequential sum of its own policy, as in
        ``np.cumsum(np.stack([p_max, p_min], axis=1), axis=-1)``. None for policies other
        than float64 arrays of one shape (B, K).
        """
        shape = p_max.shape
        if (p_max.dtype != np.float64 or p_min.dtype != np.float64 or len(shape) != 2
                or p_min.shape != shape):
            return None
        buf, last = self._cdf_buf, self._cdf_min_src
        if buf is None or buf.shape[::2] != shape:
            buf = self._cdf_buf = np.empty((shape[0], 2, shape[1]))
            last = None
        np.cumsum(p_max, axis=-1, out=buf[:, 0])
        src = p_min.tobytes()
        if last != src:
            np.cumsum(p_min, axis=-1, out=buf[:, 1])
            self._cdf_min_src = src
        return buf

    def _declare(self, pair, p_max, p_min, batched) -> DuelAction:
        if batched:
            return DuelAction(pair, p_max, p_min)
        return DuelAction(pair[0], p_max[0], p_min[0])

    def update(self, obs: dict, action: DuelAction | np.ndarray, reward) -> None:
        """Learn from the round's preference bit.

        Args:
            obs: The observation given to :meth:`act` this round.
            action: The DuelAction returned by :meth:`act`, or the pair itself, shape (2,) or
                (B, 2).
            reward: 1.0 if a1 beat a2 else 0.0, shape () or (B,).
        """
        feats, ctx, _ = self._read_obs(obs)
        pair = action.pair if isinstance(action, DuelAction) else action
        pair = np.asarray(pair).reshape(self.num_runs_, 2).astype(np.intp)
        reward = np.asarray(reward, dtype=float).reshape(self.num_runs_)
        if not self._started:
            raise RuntimeError("update was called before the first act after reset.")
        self._learn(feats, ctx, pair, reward)
        self.t_ += 1

    # ------------------------------------------------------------------ hooks
    def _check_first_obs(self, feats: np.ndarray) -> None:
        """Check policies given as hyperparameters against K (first act only)."""
        self.K_ = feats.shape[1]
        self.d_ = feats.shape[2]
        if self.reference is not None and np.asarray(self.reference).shape[0] != self.K_:
            raise ValueError(
                f"reference must have shape ({self.K_},) to match the observed K, got "
                f"{np.asarray(self.reference).shape}."
            )

    def _start(self, feats: np.ndarray) -> None:
        """Allocate learned state once K and d are known."""

    def _policies(self, feats, ctx) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _learn(self, feats, ctx, pair, reward) -> None:
        raise NotImplementedError


def check_policy_param(policy, name: str, *, allow: tuple[str, ...] = ()):
    """Validate a policy hyperparameter: None, an allowed keyword, or a distribution (K,).

    Args:
        policy: The value.
        name: Parameter name for messages.
        allow: Accepted string values.

    Returns:
        The value unchanged (validated).
    """
    if policy is None:
        return None
    if isinstance(policy, str):
        if policy not in allow:
            raise ValueError(f"{name} == {policy!r}, must be one of {allow} or an array (K,).")
        return policy
    arr = check_simplex(policy, name, shape=("K",))
    if arr.shape[0] < 2:
        raise ValueError(f"{name} must have K >= 2 entries, got {arr.shape[0]}.")
    return policy


def policy_for_k(policy, name: str, K: int, B: int) -> np.ndarray:
    """Broadcast a policy hyperparameter (None = uniform, or an array (K,)) to (B, K)."""
    if policy is None:
        return np.full((B, K), 1.0 / K)
    arr = np.asarray(policy, dtype=float)
    if arr.shape != (K,):
        raise ValueError(f"{name} must have shape ({K},) to match the observed K, got {arr.shape}.")
    return np.broadcast_to(arr / arr.sum(), (B, K)).copy()


class SNECache:
    """Per-(run, context) SNE of an estimated game, re-solved only when needed.

    Finite contexts: the SNE of each (run, context) is kept with the estimate version it was
    solved for, and re-solved when the run meets that context with a newer estimate, so a
    fixed estimate costs one solve per context (ETC's commit phase, GS between refits).
    Continuous contexts: every round. Solves are batched over the runs that need one and
    warm-started from the same context's previous solution (else the run's last one).

    Args:
        B: Number of runs.
        K: Number of actions.
    """

    def __init__(self, B: int, K: int):
        self.table = np.full((B, 1, K), 1.0 / K)           # SNE per (run, context)
        self.version = np.full((B, 1), -1, dtype=np.int64)  # estimate version solved for
        self.last = np.full((B, K), 1.0 / K)                # each run's last solution
        self.solved = np.zeros(B, dtype=bool)
        self.result = None  # the last solve's result when it covered every run
        self.result_slot = None  # the contexts of that solve

    def _slots(self, ctx: np.ndarray | None, B: int) -> np.ndarray:
        if ctx is None:
            return np.zeros(B, dtype=np.intp)
        need = int(ctx.max()) + 1
        if need > self.table.shape[1]:
            extra = max(need, 2 * self.table.shape[1]) - self.table.shape[1]
            B_, _, K = self.table.shape
            self.table = np.concatenate([self.table, np.full((B_, extra, K), 1.0 / K)], axis=1)
            self.version = np.concatenate(
                [self.version, np.full((B_, extra), -1, dtype=np.int64)], axis=1)
        return ctx

    def get(self, feats, ctx, theta, version, *, regularizer, eta, link, continuous,
            active=None):
        """SNE policies of the estimated game at this round's contexts, shape (B, K).

        Args:
            feats: Features, shape (B, K, d).
            ctx: Context indices (B,) (ignored when ``continuous``).
            theta: Estimates in skew coordinates, shape (B, D).
            version: Estimate version per run, shape (B,).
            regularizer: Regularizer object.
            eta: Per-run eta, shape (B,).
            link: Link object.
            continuous: Whether contexts are continuous.
            active: Optional bool mask (B,); runs where it is False are not solved (their
                rows hold the last cached value and must not be used).

        Returns:
            Policies, shape (B, K) (a fresh array).
        """
        from rlhf_gbpm.equilibrium import solve_sne

        B = version.shape[0]
        rows = np.arange(B)
        slot = self._slots(None if continuous else ctx, B)
        need = np.ones(B, dtype=bool) if continuous else self.version[rows, slot] != version
        if active is not None:
            need &= active
        if np.any(need):
            idx = np.flatnonzero(need)
            everyone = idx.size == B
            a = payoff_matrix(feats[idx], vec_to_skew(theta[idx], feats.shape[-1]), link,
                              validate=False)
            if everyone and self.result is not None and np.array_equal(slot, self.result_slot):
                warm = self.result  # carries the solver's dual variables
            elif np.all(self.solved[idx]):
                same = (self.version[idx, slot[idx]] >= 0)[:, None]
                warm = np.where(same, self.table[idx, slot[idx]], self.last[idx])
            else:
                warm = None
            res = solve_sne(a, regularizer, eta[idx], warm_start=warm)
            if not np.all(res.success):
                warnings.warn(
                    f"solve_sne did not converge for {int(np.sum(~res.success))} run(s) (max "
                    f"dual gap {float(np.max(res.dual_gap)):.3g}); playing its last iterate.",
                    ConvergenceWarning, stacklevel=3,
                )
            self.table[idx, slot[idx]] = res.policy
            self.version[idx, slot[idx]] = version[idx]
            self.last[idx] = res.policy
            self.solved[idx] = True
            self.result = res if everyone else None
            self.result_slot = slot.copy()
        return self.table[rows, slot]
