"""Exact answers about a duel env's hidden instance (one run or B runs).

The oracle reads Theta_star; agents never do. It gives the skew payoff
A(x) = mu(Phi(x) Theta_star Phi(x)^T) - 1/2 per context, the regularized symmetric Nash
equilibrium (SNE), dual gaps, the expected dual gap over the context distribution d0, and
diagnostics of intransitivity: Condorcet winner, Copeland scores, the von Neumann winner
(the eta = inf SNE), the number of preference 3-cycles and the 2x2-block spectral
decomposition of Theta_star.

Context arguments: for finite contexts an index (int, or an array with the run axis first
for a batched oracle) or None for every context (shape (C, ...); an env without contexts,
C = 1, then gives its single game without a context axis); for continuous contexts the raw
x, shape (..., m) (batched: (B, ..., m) or (m,) for all runs).

References:
    Lee, Hong, Jun, Yun, Yun. "Regularized Online RLHF with Generalized Bilinear
    Preferences", arXiv:2602.23116, 2026, eq. (6) (dual gap) and section 2.2.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg
from scipy.special import ndtri

from rlhf_gbpm._validation import as_generator, check_eta, check_scalar, check_simplex
from rlhf_gbpm.instances import GBPMInstance

from ._engine import StackedInstances

__all__ = ["DuelOracle", "SkewBlocks", "MC_SAMPLES"]

MC_SAMPLES = 4096
"""Default Monte Carlo sample size of ``expected_dual_gap`` for continuous contexts."""

_CHUNK_ENTRIES = 1 << 22


def _regularizer(regularizer):
    from rlhf_gbpm.regularizers import get_regularizer

    return get_regularizer(regularizer) if isinstance(regularizer, str) else regularizer


@dataclass(frozen=True)
class SkewBlocks:
    """Theta = sum_i values[i] (u_i v_i^T - v_i u_i^T) with orthonormal u_1, v_1, u_2, ...

    Attributes:
        values: Block values s_i >= 0, descending, shape (..., d // 2). The singular values
            of Theta are these values, each twice.
        u: First vectors of the pairs, shape (..., d, d // 2).
        v: Second vectors of the pairs, shape (..., d, d // 2).
        rank: Rank of Theta, 2 * (number of values above tolerance), shape (...).
    """

    values: np.ndarray
    u: np.ndarray
    v: np.ndarray
    rank: np.ndarray

    def reconstruct(self) -> np.ndarray:
        """Theta from the blocks, shape (..., d, d)."""
        uv = np.einsum("...ir,...r,...jr->...ij", self.u, self.values, self.v)
        return uv - np.swapaxes(uv, -1, -2)


def _skew_blocks(theta: np.ndarray, tol: float) -> tuple[np.ndarray, ...]:
    d = theta.shape[0]
    half = d // 2
    t, q = scipy.linalg.schur(theta, output="real")
    values, us, vs, rest = [], [], [], []
    i = 0
    while i < d:
        if i + 1 < d and abs(t[i + 1, i]) > 0.0:
            s = 0.5 * (t[i, i + 1] - t[i + 1, i])
            u, v = q[:, i], q[:, i + 1]
            if s < 0:
                s, u, v = -s, v, u
            values.append(s)
            us.append(u)
            vs.append(v)
            i += 2
        else:
            rest.append(q[:, i])
            i += 1
    for j in range(0, len(rest) - 1, 2):  # zero blocks: pair the null-space basis
        values.append(0.0)
        us.append(rest[j])
        vs.append(rest[j + 1])
    order = np.argsort(-np.asarray(values), kind="stable")[:half]
    vals = np.asarray(values)[order]
    u = np.stack(us, axis=1)[:, order]
    v = np.stack(vs, axis=1)[:, order]
    scale = max(1.0, float(vals.max(initial=0.0)))
    rank = 2 * int(np.sum(vals > tol * scale))
    return vals, u, v, rank


class DuelOracle:
    """Oracle over one instance (plain env) or B instances (vector env, run axis first).

    Args:
        instances: A GBPMInstance, or a sequence of B instances sharing K, d, the kind of
            contexts and the link.

    Attributes:
        batched: Whether outputs carry a leading run axis B.
        stack: The stacked instance arrays.
    """

    def __init__(self, instances: GBPMInstance | Sequence[GBPMInstance]):
        self.batched = not isinstance(instances, GBPMInstance)
        self.stack = StackedInstances(list(instances) if self.batched else [instances])

    # ----------------------------------------------------------------- basic quantities
    @property
    def num_actions(self) -> int:
        """K."""
        return self.stack.num_actions

    @property
    def num_contexts(self) -> int | None:
        """C for finite contexts, None for continuous ones."""
        return self.stack.num_contexts

    @property
    def theta(self) -> np.ndarray:
        """Theta_star, shape (d, d) or (B, d, d)."""
        return self._out(self.stack.theta)

    @property
    def context_probs(self) -> np.ndarray:
        """Finite contexts: d0, shape (C,) or (B, C)."""
        if self.stack.continuous:
            raise ValueError("context_probs is defined for finite contexts only.")
        return self._out(self.stack.probs)

    def _out(self, arr):
        return arr if self.batched else arr[0]

    def _contexts(self, context, *, default_all: bool) -> np.ndarray:
        """Context array with the run axis first."""
        b = self.stack.num_runs
        if self.stack.continuous:
            if context is None:
                raise ValueError("context must be given (the raw x, shape (..., m)) for "
                                 "continuous contexts.")
            x = np.asarray(context, dtype=float)
            m = self.stack.uniforms_per_context
            if x.shape[-1:] != (m,):
                raise ValueError(f"context must have shape (..., m) == (..., {m}), got "
                                 f"{x.shape}.")
            if not self.batched:
                return x[None]
            return np.broadcast_to(x, (b,) + x.shape[1:]) if x.ndim == 1 else x
        if context is None:
            if not default_all or self.num_contexts == 1:
                context = 0
            else:
                return np.broadcast_to(np.arange(self.stack.num_contexts), (b,
                                                                          self.num_contexts))
        c = np.asarray(context)
        if not np.issubdtype(c.dtype, np.integer):
            raise TypeError(f"context must be an integer index, got dtype {c.dtype}.")
        if c.size and (c.min() < 0 or c.max() >= self.num_contexts):
            raise ValueError(f"context must lie in [0, C) == [0, {self.num_contexts}), got "
                             f"{c.min() if c.min() < 0 else c.max()}.")
        if not self.batched:
            return c[None]
        if c.ndim == 0:
            return np.broadcast_to(c, (b,))
        if c.shape[0] != b:
            raise ValueError(f"context must have the run axis first, length B == {b}, got "
                             f"shape {c.shape}.")
        return c

    def payoff(self, context=None) -> np.ndarray:
        """Skew payoff matrices A = mu(Phi Theta_star Phi^T) - 1/2.

        Args:
            context: See the module docstring; None gives every finite context.

        Returns:
            A, shape ([B,] ..., K, K) (for None: ([B,] C, K, K)), entries in [-1/2, 1/2].
        """
        return self._out(self.stack.payoff(self._contexts(context, default_all=True)))

    def preference_matrix(self, context=None) -> np.ndarray:
        """P(a beats b) = 1/2 + A[a, b], same shapes as :meth:`payoff`."""
        return 0.5 + self.payoff(context)

    # ----------------------------------------------------------------- equilibria, gaps
    def _eta_for(self, eta, batch_shape: tuple[int, ...]) -> np.ndarray:
        eta = check_eta(eta)
        if eta.ndim == 0:
            return np.broadcast_to(eta, batch_shape)
        if not self.batched or eta.shape != (self.stack.num_runs,):
            want = f"() or (B,) == ({self.stack.num_runs},)" if self.batched else "()"
            raise ValueError(f"eta must have shape {want}, got {eta.shape}.")
        return np.broadcast_to(eta.reshape((-1,) + (1,) * (len(batch_shape) - 1)), batch_shape)

    def sne(self, regularizer, eta, context=None, **solver_kwargs) -> np.ndarray:
        """Regularized symmetric Nash equilibria of the per-context games.

        Args:
            regularizer: A regularizer or its name (see ``rlhf_gbpm.regularizers``).
            eta: Regularization strength in (0, inf] (inf: unregularized, by LP); scalar or,
                batched, shape (B,).
            context: See the module docstring; None gives every finite context.
            **solver_kwargs: Passed to ``rlhf_gbpm.equilibrium.solve_sne``.

        Returns:
            Policies, shape ([B,] ..., K) (for None: ([B,] C, K)).
        """
        from rlhf_gbpm.equilibrium import solve_sne

        a = self.stack.payoff(self._contexts(context, default_all=True))
        eta_b = self._eta_for(eta, a.shape[:-2])
        result = solve_sne(a, _regularizer(regularizer), eta_b, **solver_kwargs)
        return self._out(np.asarray(result.policy))

    def _check_policy(self, policy, name: str = "policy") -> np.ndarray:
        k = self.num_actions
        p = np.asarray(policy, dtype=float)
        if p.shape[-1:] != (k,):
            raise ValueError(f"{name} must have shape (..., K) == (..., {k}), got {p.shape}.")
        return check_simplex(p, name)

    def dual_gap(self, policy, regularizer, eta, context=None) -> np.ndarray:
        """Dual gap DGap_eta(policy) = psi(p)/eta + max_q [q^T A p - psi(q)/eta] per context.

        Args:
            policy: Policies, shape (..., K), broadcast against the payoff's batch shape
                (e.g. (K,) for one context, (C, K) for every context, (B, K) batched).
            regularizer: A regularizer or its name.
            eta: Regularization strength in (0, inf]; scalar or, batched, (B,).
            context: See the module docstring; None gives every finite context.

        Returns:
            Gaps >= 0, of the broadcast batch shape ([B,] ...).
        """
        from rlhf_gbpm.equilibrium import dual_gap

        p = self._check_policy(policy)
        a = self.stack.payoff(self._contexts(context, default_all=True))
        a = self._out(a)
        shape = np.broadcast_shapes(a.shape[:-2], p.shape[:-1])
        a = np.broadcast_to(a, shape + a.shape[-2:])
        p = np.broadcast_to(p, shape + p.shape[-1:])
        return np.asarray(dual_gap(p, a, _regularizer(regularizer), self._eta_for(eta, shape)))

    def expected_dual_gap(self, policies: np.ndarray | Callable, regularizer, eta, *,
                          num_samples: int = MC_SAMPLES, seed=0) -> np.ndarray:
        """Expected dual gap E_{x ~ d0} DGap_eta(pi(.|x)) of a contextual policy.

        Exact for finite contexts; a Monte Carlo mean over ``num_samples`` contexts (the
        same draws for every run) for continuous ones.

        Args:
            policies: Finite contexts: an array ([B,] C, K) (or (C, K) or (K,) shared), or
                a callable mapping context indices ([B,] C) to ([B,] C, K). Continuous: a
                callable mapping x ([B,] N, m) to ([B,] N, K).
            regularizer: A regularizer or its name.
            eta: Regularization strength in (0, inf]; scalar or, batched, (B,).
            num_samples: Monte Carlo sample size N (continuous contexts).
            seed: Seed of the Monte Carlo contexts.

        Returns:
            The expected gap: a float, or shape (B,) batched.
        """
        from rlhf_gbpm.equilibrium import dual_gap

        reg = _regularizer(regularizer)
        b = self.stack.num_runs
        if not self.stack.continuous:
            ctx = np.broadcast_to(np.arange(self.num_contexts), (b, self.num_contexts))
            pol = policies(self._out(ctx)) if callable(policies) else policies
            pol = self._check_policy(pol, "policies")
            a = self.stack.payoff_table()
            pol = np.broadcast_to(pol, a.shape[:-1])
            gaps = dual_gap(pol, a, reg, self._eta_for(eta, a.shape[:-2]))
            return self._out(np.sum(self.stack.probs * np.asarray(gaps), axis=-1))
        if not callable(policies):
            raise TypeError("policies must be a callable x -> pi(.|x) for continuous contexts.")
        check_scalar(num_samples, "num_samples", numbers.Integral, min_val=1)
        m = self.stack.uniforms_per_context
        u = as_generator(seed).random((num_samples, m))
        x = ndtri(np.clip(u, 2.0**-53, 1.0 - 2.0**-53))
        chunk = max(1, _CHUNK_ENTRIES // (b * self.num_actions**2))
        total = np.zeros(b)
        for start in range(0, num_samples, chunk):
            xs = x[start:start + chunk]
            xb = np.broadcast_to(xs, (b,) + xs.shape)
            pol = self._check_policy(policies(xb if self.batched else xs), "policies")
            pol = np.broadcast_to(pol, (b, len(xs), self.num_actions))
            a = self.stack.payoff(xb)
            gaps = dual_gap(pol, a, reg, self._eta_for(eta, a.shape[:-2]))
            total += np.sum(gaps, axis=-1)
        return self._out(total / num_samples)

    # ----------------------------------------------------------------- diagnostics
    def copeland_scores(self, context=None, *, tol: float = 1e-12) -> np.ndarray:
        """Copeland scores: arms beaten (P > 1/2 + tol) plus one half per tie.

        Args:
            context: One context (default: context 0 for finite contexts).
            tol: Margin under which a preference counts as a tie.

        Returns:
            Scores, shape ([B,] ..., K), in [0, K - 1].
        """
        a = self.stack.payoff(self._contexts(context, default_all=False))
        wins = np.sum(a > tol, axis=-1)
        ties = np.sum(np.abs(a) <= tol, axis=-1) - 1  # the diagonal is a tie with itself
        return self._out(wins + 0.5 * ties)

    def condorcet_winner(self, context=None, *, tol: float = 1e-12):
        """The arm that beats every other arm, if any.

        Args:
            context: One context (default: context 0 for finite contexts).
            tol: Margin under which a preference counts as a tie (no win).

        Returns:
            Plain oracle and one context: the arm index or None. Otherwise an int64 array of
            shape ([B,] ...) with -1 where no Condorcet winner exists.
        """
        a = self.stack.payoff(self._contexts(context, default_all=False))
        k = self.num_actions
        beats_all = np.sum(a > tol, axis=-1) == k - 1
        winner = np.where(beats_all.any(axis=-1), np.argmax(beats_all, axis=-1), -1)
        out = self._out(winner)
        if np.ndim(out) == 0:
            return None if out < 0 else int(out)
        return out.astype(np.int64)

    def count_three_cycles(self, context=None, *, tol: float = 1e-12) -> np.ndarray:
        """Number of preference 3-cycles a > b > c > a among the arms (each counted once).

        Args:
            context: One context (default: context 0 for finite contexts).
            tol: Margin under which a preference counts as a tie (no edge).

        Returns:
            Counts, int shape ([B,] ...); 0 for transitive preferences.
        """
        a = self.stack.payoff(self._contexts(context, default_all=False))
        w = (a > tol).astype(np.float64)
        cycles = np.trace(w @ w @ w, axis1=-2, axis2=-1) / 3.0
        out = self._out(np.rint(cycles).astype(np.int64))
        return out if np.ndim(out) else int(out)

    def von_neumann_winner(self, context=None, **solver_kwargs) -> np.ndarray:
        """The von Neumann winner: the unregularized (eta = inf) SNE, found by LP.

        Args:
            context: One context (default: context 0 for finite contexts).
            **solver_kwargs: Passed to ``rlhf_gbpm.equilibrium.solve_sne``.

        Returns:
            A policy p with p^T A >= 0 (no arm beats it on average), shape ([B,] ..., K).
        """
        if not self.stack.continuous and context is None:
            context = 0
        return self.sne("shannon", np.inf, context, **solver_kwargs)

    def spectral_blocks(self, *, tol: float = 1e-10) -> SkewBlocks:
        """2x2-block decomposition Theta_star = sum_i s_i (u_i v_i^T - v_i u_i^T).

        Computed from the real Schur form (block diagonal for a normal matrix).

        Args:
            tol: Relative threshold under which a block value counts as zero (for ``rank``).

        Returns:
            The blocks, without (plain) or with (batched) a leading run axis.
        """
        parts = [_skew_blocks(th, tol) for th in self.stack.theta]
        values = np.stack([p[0] for p in parts])
        u = np.stack([p[1] for p in parts])
        v = np.stack([p[2] for p in parts])
        rank = np.array([p[3] for p in parts])
        if not self.batched:
            return SkewBlocks(values[0], u[0], v[0], rank[0])
        return SkewBlocks(values, u, v, rank)
