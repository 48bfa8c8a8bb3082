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

Both monitors reuse work between rounds, exactly: a policy bit-for-bit equal to the one
validated last in its slot is not validated again, and gaps whose inputs (policy, instances,
contexts, eta, regularizer) are bit-for-bit those of the slot's last computation are reused
(in a sweep the min-player's rho never changes and Greedy Sampling's pi_hat changes only at
a refresh). Gaps are computed on the env's own payoffs, which are exactly skew by
construction (``StackedInstances.payoff``), without re-validating them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import VectorEnv, VectorWrapper

from rlhf_gbpm._validation import check_eta, check_simplex, on_simplex
from rlhf_gbpm.equilibrium import _dual_gap_flat, _flat_reference, dual_gap
from rlhf_gbpm.protocol import DuelAction
from rlhf_gbpm.regret import RegretLog
from rlhf_gbpm.regularizers import Regularizer, SeparableRegularizer, _as_regularizer

from ._engine import StackedInstances

__all__ = ["RegretMonitor", "VectorRegretMonitor"]

logger = logging.getLogger(__name__)


def _check_policies(policy, lead: tuple[int, ...], k: int, c: int | None, name: str):
    """Validate a policy batch of shape lead + (K,) or lead + (C, K)."""
    p = np.asarray(policy, dtype=float)
    shapes = [lead + (k,)] + ([lead + (c, k)] if c is not None else [])
    if p.shape not in shapes:
        want = " or ".join(str(s) for s in shapes)
        raise ValueError(f"{name} must have shape {want}, got {p.shape}.")
    if on_simplex(p):
        return p
    return check_simplex(p, name)  # raises its message


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """True when two arrays have the same shape, dtype and bits (-0.0 differs from 0.0)."""
    return a is b or (a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes())


def _same_state(old: tuple, new: tuple) -> bool:
    """Entry-wise: arrays with the same bits, anything else the same object (None included)."""
    for a, b in zip(old, new):  # a plain loop: cheaper than all() over a generator here
        if a is not b and not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
                               and _same(a, b)):
            return False
    return True


def _env_gaps(policy: np.ndarray, payoff: np.ndarray, regularizer: Regularizer,
              eta: np.ndarray) -> np.ndarray:
    """Dual gaps of flat problems on the env's own payoffs, without re-validating them.

    Bit-for-bit ``dual_gap(policy, payoff, regularizer, eta)``: the env's payoffs are exactly
    skew (built as (a - a^T)/2), so the public check would return them unchanged. Should a
    gap come out non-finite, the public, validated path is taken instead (it raises on a bad
    payoff, or returns the same gaps).

    Args:
        policy: Validated policies, shape (n, K).
        payoff: The env's payoffs, shape (n, K, K).
        regularizer: The evaluation regularizer (an instance).
        eta: Strengths in (0, inf], shape (n,).

    Returns:
        Gaps, shape (n,).
    """
    reg = regularizer
    sep = isinstance(reg, SeparableRegularizer)
    rho = _flat_reference(reg, policy.shape) if sep else None
    gaps = _dual_gap_flat(policy, payoff, reg, eta, rho, residual=False)[0]
    if np.isfinite(np.add.reduce(gaps)):  # the gaps are >= 0 or NaN: a finite sum is enough
        return gaps
    return dual_gap(policy, payoff, reg, eta)


class _SlotMemo:
    """The last policy of one declared slot (max or min player), validated, and its gaps.

    Reuse is exact: a policy bit-for-bit equal to the slot's last one passes the same checks,
    and gaps of bit-for-bit equal inputs (policy, instances, contexts, eta, regularizer) come
    from the same computation. The memo keeps private copies; the gaps it returns must not be
    modified by the caller.
    """

    def __init__(self) -> None:
        self._policy: np.ndarray | None = None  # private copy, validated for self._spec
        self._spec: tuple | None = None
        self._state: tuple = ()  # what self._gaps depend on besides the policy
        self._gaps: Any = None

    def check(self, policy, lead: tuple[int, ...], k: int, c: int | None,
              name: str) -> np.ndarray:
        """``_check_policies``, skipped for a repeat of the slot's last policy.

        A new policy becomes the slot's last one once it passes (its gaps are computed by
        the next :meth:`gaps`), so :meth:`gaps` recognizes it by identity.

        Returns:
            The memo's copy of the policy as a float array, shape lead + (K,) or
            lead + (C, K).
        """
        p = np.asarray(policy, dtype=float)
        last = self._policy
        if last is not None and self._spec == (lead, k, c) and _same(last, p):
            return last
        p = _check_policies(p, lead, k, c, name)
        self._policy, self._gaps, self._spec = p.copy(), None, (lead, k, c)
        return self._policy

    def gaps(self, policy: np.ndarray, spec: tuple, state: tuple, compute: Callable[[], Any]):
        """The gaps of a validated policy, reused when nothing they depend on changed.

        Args:
            policy: The slot's policy this round, validated for ``spec`` = (lead, K, C).
            spec: The shapes it was validated for.
            state: The stacked instances, the contexts (None for per-context policies), eta
                and the regularizer; arrays are compared by bits, the rest by identity.
            compute: Computes the gaps when something changed.
        """
        last = self._policy
        if policy is not last and (last is None or not _same(last, policy)):
            self._policy, self._gaps = policy.copy(), None
        self._spec = spec
        if self._gaps is not None and _same_state(self._state, state):
            return self._gaps
        self._gaps = compute()
        self._state = tuple(x.copy() if isinstance(x, np.ndarray) else x for x in state)
        return self._gaps


def _slot_gaps(memos: tuple[_SlotMemo, _SlotMemo], p1: np.ndarray, p2: np.ndarray,
               spec: tuple, state: Callable[[np.ndarray], tuple],
               compute: Callable[[np.ndarray], Any]) -> tuple[Any, Any]:
    """Gaps of the max and min policies; computed once when both are the same policy.

    Args:
        memos: The two slots' memos.
        p1: The max-player's validated policy.
        p2: The min-player's validated policy.
        spec: The shapes both were validated for, (lead, K, C).
        state: A policy's state (:meth:`_SlotMemo.gaps`).
        compute: A policy's gaps.
    """
    g1 = memos[0].gaps(p1, spec, state(p1), lambda: compute(p1))
    g2 = memos[1].gaps(p2, spec, state(p2), lambda: g1 if _same(p1, p2) else compute(p2))
    return g1, g2


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
        self.regularizer = _as_regularizer(regularizer)
        self.eta = check_eta(eta)
        if self.eta.ndim != 0:
            raise ValueError(f"eta must be a scalar for RegretMonitor, got shape "
                             f"{self.eta.shape}; use VectorRegretMonitor for one eta per run.")
        self.log = RegretLog()
        self._declared: tuple[np.ndarray, np.ndarray] | None = None
        self._memos = (_SlotMemo(), _SlotMemo())

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
        self._memos = (_SlotMemo(), _SlotMemo())
        return out

    def _gap(self, policy: np.ndarray) -> float:
        """DGap of a (K,) policy at the round's context, or of a (C, K) one over d0."""
        engine = self.env.unwrapped.engine
        stack = engine.stack
        eta = np.reshape(self.eta, 1)
        if policy.ndim == 2:  # (C, K): exact expectation over d0
            c = policy.shape[0]
            gaps = _env_gaps(policy, stack.payoff_table()[0], self.regularizer, np.repeat(eta, c))
            return float(np.dot(stack.probs[0], gaps))
        a = stack.payoff(engine.context[:1])
        return float(_env_gaps(policy[None], a, self.regularizer, eta)[0])

    def _gap_state(self, policy: np.ndarray) -> tuple:
        """What a policy's gap depends on (the round's context only for a (K,) policy)."""
        engine = self.env.unwrapped.engine
        context = None if policy.ndim == 2 else engine.context[:1]
        return engine.stack, context, self.eta, self.regularizer

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
            p1 = self._memos[0].check(action.max_policy, (), k, c, "max_policy")
            p2 = self._memos[1].check(action.min_policy, (), k, c, "min_policy")
            pair = action.pair
        elif self._declared is None:
            raise ValueError("action carries no policies: step with a DuelAction(pair, "
                             "max_policy, min_policy) or call declare(max_policy, min_policy) "
                             "first.")
        else:
            p1, p2 = self._declared
            pair = action
        g1, g2 = _slot_gaps(self._memos, p1, p2, ((), k, c), self._gap_state, self._gap)
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
    all runs are computed in one batched dual-gap evaluation, and reused for the whole batch
    while a slot's policies, the instances and the contexts do not change (see the module
    docstring). ``eta`` is a scalar or one evaluation strength per run, shape (B,), so an
    eta sweep runs in one vector env.

    Autoreset: the log holds the current episode; the autoreset step (no round is played)
    moves the finished log to ``episode_logs`` and starts a new one.

    Args:
        env: The vector env.
        regularizer: The evaluation regularizer or its name.
        eta: Evaluation strength in (0, inf], scalar or shape (B,).
    """

    def __init__(self, env: VectorEnv, regularizer, eta):
        super().__init__(env)
        self.regularizer = _as_regularizer(regularizer)
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
        self._memos = (_SlotMemo(), _SlotMemo())
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
        self._memos = (_SlotMemo(), _SlotMemo())
        return out

    def _gaps(self, policy: np.ndarray) -> np.ndarray:
        """Gaps of every run, shape (B,): (B, K) at the round's contexts, (B, C, K) over d0."""
        stack, context = self._state()
        if policy.ndim == 3:
            b, c, k = policy.shape
            eta = np.repeat(self.eta, c)
            gaps = _env_gaps(policy.reshape(b * c, k), stack.payoff_table().reshape(b * c, k, k),
                             self.regularizer, eta)
            return np.sum(stack.probs * gaps.reshape(b, c), axis=-1)
        return _env_gaps(policy, stack.payoff(context), self.regularizer, self.eta)

    def _gap_state(self, policy: np.ndarray) -> tuple:
        """What the gaps of a policy batch depend on (contexts only for (B, K) policies)."""
        stack, context = self._state()
        return stack, None if policy.ndim == 3 else context, self.eta, self.regularizer

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
            p1 = self._memos[0].check(actions.max_policy, lead, k, c, "max_policy")
            p2 = self._memos[1].check(actions.min_policy, lead, k, c, "min_policy")
            pairs = actions.pair
        elif self._declared is None:
            raise ValueError("actions carry no policies: step with a DuelAction(pair, "
                             "max_policy, min_policy) or call declare(max_policy, min_policy) "
                             "first.")
        else:
            p1, p2 = self._declared
            pairs = actions
        done = self._prev_done
        all_done = done.all()
        if all_done:
            self.episode_logs.append(self.log)
            self.log = RegretLog(self.num_envs)
            g1 = g2 = np.zeros(self.num_envs)
        else:
            g1, g2 = _slot_gaps(self._memos, p1, p2, (lead, k, c), self._gap_state,
                                self._gaps)
            if done.any():
                g1, g2 = np.where(done, 0.0, g1), np.where(done, 0.0, g2)  # fresh arrays
            else:  # fresh arrays: the memo's gaps must not leave it
                g1, g2 = g1.copy(), g2.copy()
        obs, reward, terminated, truncated, info = self.env.step(pairs)
        if not all_done:
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
