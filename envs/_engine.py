"""Private batched engine shared by the plain duel env (B = 1) and its vector twin.

The engine holds B independent runs as stacked arrays: the hidden instance parameters
(Theta_star, feature tables or continuous-context loadings), the per-run counter keys and
the round index. A step gathers the two played feature rows of every run, evaluates the
preference probability and draws the bit from the run's own counter stream, so run i of a
batch is bit-identical to the same run played alone.

Round t of an episode (t = 0, 1, ...) uses

* context: ``counter_uniform(context_key, t * m + j, STREAM_CONTEXT)`` for j < m, with m
  uniforms per context (m = 1 for finite contexts, m = the context dimension otherwise);
* outcome: ``1[u < p]`` with ``u = counter_uniform(noise_key, t, STREAM_NOISE)``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy.special import ndtri

from rlhf_gbpm._random import (
    counter_uniform,
    key_from_generator,
    stream_state,
    uniform_from_state,
)
from rlhf_gbpm.features import ContinuousContexts, FiniteContexts
from rlhf_gbpm.instances import GBPMInstance
from rlhf_gbpm.links import Link
from rlhf_gbpm.preference import payoff_matrix
from rlhf_gbpm.protocol import STREAM_CONTEXT, STREAM_NOISE

logger = logging.getLogger(__name__)

# |x| of a continuous context never exceeds ndtri(1 - 2^-53) ~= 8.13 (53-bit uniforms).
CONTEXT_BOUND = float(-ndtri(2.0**-53))
_MAX_SEED = 2**63 - 1
# rows of Theta (d x d each) gathered at once while building the probability table
_TABLE_CHUNK = 1 << 20
# the probability table is kept while B K^2 stays below this (64 MiB of float64)
_MAX_TABLE = 1 << 23


def draw_episode_seeds(rng: np.random.Generator) -> tuple[int, np.uint64, np.uint64]:
    """Draw one episode's instance seed, noise key and context key from a run's generator.

    The three values are always drawn, in this order, whether or not the instance is
    regenerated, so the noise stream of a seed does not depend on how the instance was
    chosen (common random numbers across instances).

    Args:
        rng: The run's generator (``env.np_random``).

    Returns:
        (instance_seed, noise_key, context_key).
    """
    instance_seed = int(rng.integers(0, _MAX_SEED))
    keys = key_from_generator(rng, size=2)
    return instance_seed, keys[0], keys[1]


def keys_from_noise_seed(noise_seed: int) -> tuple[np.uint64, np.uint64]:
    """Noise and context keys fixed by a user-given ``noise_seed``.

    Args:
        noise_seed: Non-negative int.

    Returns:
        (noise_key, context_key).
    """
    keys = key_from_generator(np.random.default_rng(noise_seed), size=2)
    return keys[0], keys[1]


class StackedInstances:
    """B GBPM instances that share K, d, the context kind and the link, as stacked arrays.

    Attributes:
        theta: Theta_star per run, shape (B, d, d).
        link: The common link.
        table: Finite contexts only: feature tables, shape (B, C, K, d), entries in [-1, 1].
        probs: Finite contexts only: context distributions d0, shape (B, C).
        base: Continuous contexts only: base features, shape (B, K, d).
        mixing: Continuous contexts only: context loadings, shape (B, K, d, m).
    """

    def __init__(self, instances: Sequence[GBPMInstance]):
        if len(instances) == 0:
            raise ValueError("instances must hold at least one instance.")
        first = instances[0]
        self.instances = tuple(instances)
        self.link: Link = first.link
        self.num_actions = first.K
        self.dim = first.d
        self.continuous = isinstance(first.feature_map, ContinuousContexts)
        for inst in instances:
            same_kind = isinstance(inst.feature_map, ContinuousContexts) == self.continuous
            if (inst.K, inst.d) != (self.num_actions, self.dim) or not same_kind:
                raise ValueError("instances must share K, d and the kind of contexts.")
            if inst.link != self.link:
                raise ValueError("instances must share the link function.")
        self.theta = np.stack([inst.theta for inst in instances])
        if self.continuous:
            self.base = np.stack([inst.feature_map.base for inst in instances])
            self.mixing = np.stack([inst.feature_map.mixing for inst in instances])
            self.num_contexts = None
            self.uniforms_per_context = int(self.mixing.shape[-1])
        else:
            fmaps: list[FiniteContexts] = [inst.feature_map for inst in instances]
            if len({f.num_contexts for f in fmaps}) != 1:
                raise ValueError("instances must share the number of contexts.")
            self.table = np.clip(np.stack([f.table for f in fmaps]), -1.0, 1.0)
            self.probs = np.stack([f.probs for f in fmaps])
            cdf = np.cumsum(self.probs, axis=-1)
            cdf[:, -1] = 1.0
            self._cdf = cdf
            self.num_contexts = int(self.table.shape[1])
            self.uniforms_per_context = 1
        self._payoff_table: np.ndarray | None = None
        self._probability_table: np.ndarray | None = None

    @property
    def num_runs(self) -> int:
        """B."""
        return self.theta.shape[0]

    def contexts_from_uniform(self, u: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Contexts of the given runs from uniforms.

        Args:
            u: Uniforms, shape (n, m).
            rows: Run indices, shape (n,).

        Returns:
            Finite: context indices, int64 shape (n,). Continuous: x, shape (n, m).
        """
        if self.continuous:
            return ndtri(np.clip(u, 2.0**-53, 1.0 - 2.0**-53))
        # same rule as FiniteContexts.contexts_from_uniform (searchsorted, side="right")
        idx = np.sum(self._cdf[rows] <= u[:, :1], axis=-1)
        return np.minimum(idx, self.num_contexts - 1).astype(np.int64)

    def features(self, context: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Feature tables of one context per run.

        Args:
            context: Finite: indices, shape (n, ...). Continuous: x, shape (n, ..., m).
            rows: Run index of each leading entry, shape (n,); all runs when None.

        Returns:
            Features, shape (n, ..., K, d), entries in [-1, 1].
        """
        rows = np.arange(self.num_runs) if rows is None else rows
        if self.continuous:
            x = np.asarray(context, dtype=float)
            n, (k, d, m) = len(rows), self.mixing.shape[1:]
            if x.ndim == 2:  # one context per run (the env's step): a batched matmul
                mixed = self.mixing[rows].reshape(n, k * d, m) @ x[:, :, None]
                v = self.base[rows] + mixed.reshape(n, k, d)
            else:
                extra = x.ndim - 2
                mixing = self.mixing[rows].reshape((n,) + (1,) * extra + (k, d, m))
                base = self.base[rows].reshape((n,) + (1,) * extra + (k, d))
                v = base + np.einsum("...kdm,...m->...kd", mixing, x)
            v = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
            return np.clip(v, -1.0, 1.0)
        c = np.asarray(context, dtype=np.intp)
        r = rows.reshape((len(rows),) + (1,) * (c.ndim - 1))
        return self.table[r, c]

    def payoff(self, context: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Payoff matrices A = mu(Phi Theta Phi^T) - 1/2 of one context per run.

        Args:
            context: As in :meth:`features`.
            rows: As in :meth:`features`.

        Returns:
            A, shape (n, ..., K, K), skew-symmetric.
        """
        if not self.continuous:
            table = self.payoff_table()
            c = np.asarray(context, dtype=np.intp)
            if (rows is None and self.num_contexts == 1 and c.shape == (self.num_runs,)
                    and not c.any()):
                # one context: a read-only view of the table instead of a (B, K, K) gather
                # (the regret monitor asks for it twice per round)
                view = table[:, 0]
                view.flags.writeable = False
                return view
            rows = np.arange(self.num_runs) if rows is None else rows
            r = rows.reshape((len(rows),) + (1,) * (c.ndim - 1))
            return table[r, c]
        rows = np.arange(self.num_runs) if rows is None else rows
        feats = self.features(context, rows)
        extra = feats.ndim - 3
        theta = self.theta[rows].reshape((len(rows),) + (1,) * extra + (self.dim, self.dim))
        return payoff_matrix(feats, theta, self.link, validate=False)

    def payoff_table(self) -> np.ndarray:
        """Finite contexts: every payoff matrix, shape (B, C, K, K) (computed once)."""
        if self._payoff_table is None:
            self._payoff_table = payoff_matrix(self.table, self.theta[:, None], self.link,
                                               validate=False)
        return self._payoff_table

    def pair_probability(self, features: np.ndarray, a1: np.ndarray, a2: np.ndarray,
                         rows: np.ndarray | None = None) -> np.ndarray:
        """P(a1 beats a2) of the given runs, consistent with the payoff: 1/2 + A[a1, a2].

        Args:
            features: Current feature tables of the runs, shape (n, K, d).
            a1: First actions, int shape (n,).
            a2: Second actions, int shape (n,).
            rows: Run indices, shape (n,); every run (n = B) when None.

        Returns:
            Probabilities, shape (n,).
        """
        n = np.arange(features.shape[0])
        theta = self.theta if rows is None else self.theta[rows]
        return _pair_probability(features[n, a1], features[n, a2], theta, self.link)

    def pair_probability_table(self) -> np.ndarray:
        """Without contexts: P(a1 beats a2) of every pair, shape (B, K, K) (computed once).

        Entry [b, a1, a2] is :meth:`pair_probability` of run b's pair (a1, a2) bit for bit:
        the same arithmetic on the same rows, in chunks of pairs of every run.
        """
        if self._probability_table is None:
            if self.continuous or self.num_contexts != 1:
                raise ValueError("the probability table needs one fixed context.")
            b, k, d = self.num_runs, self.num_actions, self.dim
            flat = np.empty(b * k * k)
            step = max(1, _TABLE_CHUNK // (d * d))
            for start in range(0, flat.size, step):  # chunks of (run, a1, a2), not a run loop
                f = np.arange(start, min(start + step, flat.size))
                run, pair = np.divmod(f, k * k)
                a1, a2 = np.divmod(pair, k)
                flat[f] = _pair_probability(self.table[run, 0, a1], self.table[run, 0, a2],
                                            self.theta[run], self.link)
            self._probability_table = flat.reshape(b, k, k)
        return self._probability_table


def _pair_probability(phi1: np.ndarray, phi2: np.ndarray, theta: np.ndarray,
                      link: Link) -> np.ndarray:
    """P(phi1 beats phi2) = 1/2 + (mu(z) - mu(-z))/2 with z the skew part of phi1 Theta phi2.

    Args:
        phi1: Features of the first actions, shape (n, d).
        phi2: Features of the second actions, shape (n, d).
        theta: Theta of each row, shape (n, d, d).
        link: The link.

    Returns:
        Probabilities, shape (n,).
    """
    # Theta phi2 and Theta phi1 in one batched product, then z12 = phi1 . Theta phi2 and
    # z21 = phi2 . Theta phi1: the same arithmetic for (a1, a2) and (a2, a1), so
    # z(a, a) == 0 exactly and p(a2, a1) == 1 - p(a1, a2)
    t_phi = np.matmul(theta, np.stack([phi2, phi1], axis=-1))  # (n, d, 2)
    z12 = np.sum(phi1 * t_phi[..., 0], axis=-1)
    z21 = np.sum(phi2 * t_phi[..., 1], axis=-1)
    z = 0.5 * (z12 - z21)
    mu = link.mu
    return 0.5 + 0.5 * (mu(z) - mu(-z))


class DuelEngine:
    """The mutable state of B duel runs and the vectorized step.

    Attributes:
        stack: The runs' instances.
        noise_key: Per-run noise keys, uint64 shape (B,).
        context_key: Per-run context keys, uint64 shape (B,).
        t: Round index of the next round per run, int64 shape (B,) (changed by begin and
            play only).
        context: Current context per run: int64 (B,) or float (B, m).
        features: Current feature tables, shape (B, K, d).
    """

    def __init__(self, stack: StackedInstances):
        b = stack.num_runs
        self.stack = stack
        self.noise_key = np.zeros(b, dtype=np.uint64)
        self._noise_state = stream_state(self.noise_key, STREAM_NOISE)  # per-key hash half
        self.context_key = np.zeros(b, dtype=np.uint64)
        self.t = np.zeros(b, dtype=np.int64)
        self._t_common: int | None = 0  # the round index of every run, when they share one
        m = stack.uniforms_per_context
        self.context = np.zeros((b, m)) if stack.continuous else np.zeros(b, dtype=np.int64)
        self.features = np.zeros((b, stack.num_actions, stack.dim))
        # one fixed context (no contexts): nothing to redraw after a round
        self._static = not stack.continuous and stack.num_contexts == 1
        # ... and, once the runs have played K^2/4 rounds (building the table costs about
        # that many rounds of pair_probability), probabilities are looked up in the table
        k = stack.num_actions
        small = b * k * k <= _MAX_TABLE
        self._table_after = max(1, k * k // 4) if self._static and small else None
        self._plays = 0
        self._rows = np.arange(b)
        # without contexts the features never change: one read-only copy serves every
        # observation that may share it (see observation)
        self._frozen_features: np.ndarray | None = None
        if self._static:
            self._frozen_features = stack.table[:, 0].copy()
            self._frozen_features.flags.writeable = False

    def begin(self, rows: np.ndarray, noise_key: np.ndarray, context_key: np.ndarray) -> None:
        """Start new episodes for some runs: set their keys, t = 0, draw their first context.

        Args:
            rows: Run indices, shape (n,).
            noise_key: Their noise keys, shape (n,).
            context_key: Their context keys, shape (n,).
        """
        self.noise_key[rows] = noise_key
        self._noise_state[rows] = stream_state(self.noise_key[rows], STREAM_NOISE)
        self.context_key[rows] = context_key
        self.t[rows] = 0
        self._sync_t()
        self._draw_contexts(rows)

    def _sync_t(self) -> None:
        """Note the round index every run shares (None when they differ)."""
        t = self.t
        self._t_common = int(t[0]) if bool(np.all(t == t[0])) else None

    def _draw_contexts(self, rows: np.ndarray) -> None:
        m = self.stack.uniforms_per_context
        counters = self.t[rows, None].astype(np.uint64) * np.uint64(m) + np.arange(
            m, dtype=np.uint64)
        u = counter_uniform(self.context_key[rows, None], counters, STREAM_CONTEXT)
        ctx = self.stack.contexts_from_uniform(u, rows)
        self.context[rows] = ctx
        self.features[rows] = self.stack.features(ctx, rows)

    def play(self, a1: np.ndarray, a2: np.ndarray, rows: np.ndarray | None = None):
        """Play one round in the given runs and move them to their next context.

        Args:
            a1: First actions of those runs, int shape (n,).
            a2: Second actions, int shape (n,).
            rows: Run indices, shape (n,); every run when None.

        Returns:
            (probability (n,), reward (n,) in {0., 1.}, played context, played t (n,)).
        """
        if rows is None:  # every run: views instead of gathers of the (B, K, d) tables
            sel, features = slice(None), self.features
        else:
            sel, features = rows, self.features[rows]
        p = self._probability(features, a1, a2, rows)
        t = self.t[sel].copy()
        common = self._t_common if rows is None else None
        # the noise stream, at the shared round index as one int counter when every run
        # plays the same round (the same counters, so the same bits)
        u = uniform_from_state(self._noise_state[sel],
                               t.astype(np.uint64) if common is None else common)
        reward = (u < p).astype(np.float64)
        played_context = self.context[sel].copy()
        self.t[sel] = t + 1
        if common is None:
            self._sync_t()
        else:
            self._t_common = common + 1
        if not self._static:
            self._draw_contexts(np.arange(self.stack.num_runs) if rows is None else rows)
        return p, reward, played_context, t

    def _probability(self, features: np.ndarray, a1: np.ndarray, a2: np.ndarray,
                     rows: np.ndarray | None) -> np.ndarray:
        """:meth:`StackedInstances.pair_probability`, from its table without contexts.

        Args:
            features: The runs' feature tables, shape (n, K, d).
            a1: First actions, int shape (n,).
            a2: Second actions, int shape (n,).
            rows: Run indices, shape (n,); every run when None.

        Returns:
            Probabilities, shape (n,), the same bits either way.
        """
        self._plays += 1
        if self._table_after is None or self._plays < self._table_after:
            return self.stack.pair_probability(features, a1, a2, rows)
        table = self.stack.pair_probability_table()
        return table[self._rows if rows is None else rows, a1, a2]

    def observation(self, rows: np.ndarray | None = None, *,
                    share_static: bool = False) -> dict[str, np.ndarray]:
        """Observation arrays of the given runs, never modified by later steps.

        Args:
            rows: Run indices, shape (n,); every run when None.
            share_static: Without contexts, give every run's features as one read-only
                array shared by every such observation (its contents never change)
                instead of a fresh copy.

        Returns:
            ``{"features": (n, K, d), "context": (n,)}``, or ``"x": (n, m)`` in place of
            ``"context"`` for continuous contexts.
        """
        sel = slice(None) if rows is None else rows
        if share_static and rows is None and self._frozen_features is not None:
            obs = {"features": self._frozen_features}
        else:
            obs = {"features": self.features[sel].copy()}
        key = "x" if self.stack.continuous else "context"
        obs[key] = self.context[sel].copy()
        return obs
