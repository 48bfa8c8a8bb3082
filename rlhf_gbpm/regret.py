"""Regret from played policies: MBR and ABR bookkeeping, online-to-batch, rate fits.

With (pi1_t, pi2_t) the policies played at round t (spec gbpm.md section 2.4):

* MBR-Reg_eta(T) = sum_t DGap_eta(pi1_t), the main metric (only the max-player counts);
* ABR-Reg_eta(T) = sum_t [DGap_eta(pi1_t) + DGap_eta(pi2_t)];
* online-to-batch (Prop. D.2): the average max-player policy is a 2 MBR/T-approximate SNE.

Regret curves are fitted, per run and for t >= t_min, by least squares to
Reg(t) ~ a log t + b and Reg(t) ~ c sqrt(t) + d, with the coefficient of determination R^2
of each fit (spec section 6.2: small eta gives the log regime, large eta the sqrt regime).

References:
    Lee, Hong, Jun, Yun, Yun. "Regularized Online RLHF with Generalized Bilinear
    Preferences", arXiv:2602.23116, 2026, Definition 2.5, appendix D.
"""

from __future__ import annotations

import logging
import numbers
from dataclasses import dataclass

import numpy as np

from rlhf_gbpm._validation import check_array, check_eta, check_scalar, check_simplex

__all__ = [
    "policy_dual_gaps",
    "mbr_regret",
    "abr_regret",
    "average_policy",
    "online_to_batch_bound",
    "RateFit",
    "fit_regret_rates",
    "RegretLog",
]

logger = logging.getLogger(__name__)

_CHUNK_ENTRIES = 1 << 22


def policy_dual_gaps(policies, payoff, regularizer, eta, *, per_round: bool = False
                     ) -> np.ndarray:
    """DGap_eta of a sequence of policies, round by round.

    Args:
        policies: Played policies, shape (..., T, K), rows on the simplex.
        payoff: Skew payoffs: one game for every round, shape (..., K, K) (batch axes
            broadcast against the policies' leading axes), or with ``per_round`` one game
            per round, shape (..., T, K, K).
        regularizer: A regularizer or its name (``rlhf_gbpm.regularizers``).
        eta: Evaluation strength in (0, inf]; scalar or broadcast against the leading batch
            shape (...) (e.g. one eta per run, shape (B,)).
        per_round: Whether ``payoff`` has a round axis T.

    Returns:
        Gaps, shape (..., T), non-negative.

    Raises:
        ValueError: On shapes that do not match, policies off the simplex or eta <= 0.
    """
    from rlhf_gbpm.equilibrium import dual_gap

    p = check_simplex(policies, "policies", shape=("...", "T", "K"))
    a = check_array(payoff, "payoff", shape=("...", "K", "K"))
    if a.shape[-1] != p.shape[-1]:
        raise ValueError(f"payoff must have shape (..., K, K) with K == {p.shape[-1]}, got "
                         f"{a.shape}.")
    if not per_round:
        a = a[..., None, :, :]
    elif a.ndim < 3 or a.shape[-3] != p.shape[-2]:
        raise ValueError(f"payoff must have shape (..., T, K, K) with T == {p.shape[-2]} "
                         f"when per_round is True, got {a.shape}.")
    eta = check_eta(eta)[..., None]
    n_rounds, k = p.shape[-2], p.shape[-1]
    batch = np.broadcast_shapes(p.shape[:-2], a.shape[:-3], eta.shape[:-1])
    chunk = max(1, _CHUNK_ENTRIES // max(1, int(np.prod(batch, dtype=int)) * k * k))
    out = np.empty(batch + (n_rounds,))
    for start in range(0, n_rounds, chunk):
        sl = slice(start, start + chunk)
        a_sl = a[..., sl, :, :] if a.shape[-3] != 1 else a
        out[..., sl] = dual_gap(p[..., sl, :], a_sl, regularizer, eta)
    return out


def mbr_regret(max_policies, payoff, regularizer, eta, *, per_round: bool = False
               ) -> np.ndarray:
    """Cumulative Max-Best-Response regret sum_{s<=t} DGap_eta(pi1_s).

    Args:
        max_policies: The max-player's policies, shape (..., T, K).
        payoff: Payoffs, shape (..., K, K), or (..., T, K, K) with ``per_round``.
        regularizer: A regularizer or its name.
        eta: Evaluation strength, scalar or broadcast against (...).
        per_round: Whether ``payoff`` has a round axis T.

    Returns:
        The curve, shape (..., T), non-decreasing.
    """
    gaps = policy_dual_gaps(max_policies, payoff, regularizer, eta, per_round=per_round)
    return np.cumsum(gaps, axis=-1)


def abr_regret(max_policies, min_policies, payoff, regularizer, eta, *,
               per_round: bool = False) -> np.ndarray:
    """Cumulative Average-Best-Response regret sum_{s<=t} [DGap(pi1_s) + DGap(pi2_s)].

    Args:
        max_policies: The max-player's policies, shape (..., T, K).
        min_policies: The min-player's policies, shape (..., T, K).
        payoff: Payoffs, shape (..., K, K), or (..., T, K, K) with ``per_round``.
        regularizer: A regularizer or its name.
        eta: Evaluation strength, scalar or broadcast against (...).
        per_round: Whether ``payoff`` has a round axis T.

    Returns:
        The curve, shape (..., T), non-decreasing.
    """
    gaps = policy_dual_gaps(max_policies, payoff, regularizer, eta, per_round=per_round)
    gaps = gaps + policy_dual_gaps(min_policies, payoff, regularizer, eta, per_round=per_round)
    return np.cumsum(gaps, axis=-1)


def average_policy(policies, *, running: bool = False) -> np.ndarray:
    """Online-to-batch average of played policies, pi_bar_T = (1/T) sum_t pi_t.

    Args:
        policies: Policies, shape (..., T, K).
        running: Return every prefix average pi_bar_1, ..., pi_bar_T instead of the last.

    Returns:
        Shape (..., K), or (..., T, K) when ``running``; rows on the simplex.
    """
    p = check_simplex(policies, "policies", shape=("...", "T", "K"))
    if not running:
        return p.mean(axis=-2)
    t = np.arange(1, p.shape[-2] + 1, dtype=float)[:, None]
    return np.cumsum(p, axis=-2) / t


def online_to_batch_bound(mbr, num_rounds: int) -> np.ndarray:
    """Prop. D.2: max_pi [J_eta(pi, pi_bar) - J_eta(pi_bar, pi)] <= 2 MBR-Reg_eta(T) / T.

    For a symmetric game the left side is 2 DGap_eta(pi_bar), so this also bounds
    DGap_eta(pi_bar) by MBR/T (convexity of the dual gap).

    Args:
        mbr: MBR regret after ``num_rounds`` rounds, any shape.
        num_rounds: T >= 1.

    Returns:
        The bound 2 MBR / T, same shape as ``mbr``.
    """
    check_scalar(num_rounds, "num_rounds", numbers.Integral, min_val=1)
    return 2.0 * np.asarray(mbr, dtype=float) / num_rounds


@dataclass(frozen=True)
class RateFit:
    """Least-squares fits Reg(t) ~ a log t + b and Reg(t) ~ c sqrt(t) + d, per curve.

    Attributes:
        log_slope: a, shape (...).
        log_intercept: b, shape (...).
        log_r2: R^2 of the log fit, shape (...).
        sqrt_slope: c, shape (...).
        sqrt_intercept: d, shape (...).
        sqrt_r2: R^2 of the sqrt fit, shape (...).
        t_min: First round used in the fits.
    """

    log_slope: np.ndarray
    log_intercept: np.ndarray
    log_r2: np.ndarray
    sqrt_slope: np.ndarray
    sqrt_intercept: np.ndarray
    sqrt_r2: np.ndarray
    t_min: int

    @property
    def log_better(self) -> np.ndarray:
        """Whether the log fit has the larger R^2 (the log T regime), bool shape (...)."""
        return self.log_r2 > self.sqrt_r2

    def summary(self, axis: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Mean and sample standard deviation (ddof = 1) of every field over runs.

        Args:
            axis: The run (seed) axis.

        Returns:
            ``{field: (mean, std)}`` for the six fitted quantities; std is 0 for one run.
        """
        out = {}
        for name in ("log_slope", "log_intercept", "log_r2", "sqrt_slope", "sqrt_intercept",
                     "sqrt_r2"):
            x = np.asarray(getattr(self, name))
            n = x.shape[axis]
            std = x.std(axis=axis, ddof=1) if n > 1 else np.zeros_like(x.mean(axis=axis))
            out[name] = (x.mean(axis=axis), std)
        return out


def _linear_fit(f: np.ndarray, y: np.ndarray):
    fc = f - f.mean()
    yc = y - y.mean(axis=-1, keepdims=True)
    slope = (yc @ fc) / (fc @ fc)
    intercept = y.mean(axis=-1) - slope * f.mean()
    resid = yc - slope[..., None] * fc
    ss_res = np.sum(resid * resid, axis=-1)
    ss_tot = np.sum(yc * yc, axis=-1)
    safe = np.where(ss_tot > 0, ss_tot, 1.0)
    r2 = np.where(ss_tot > 0, 1.0 - ss_res / safe, 1.0)
    return slope, intercept, r2


def fit_regret_rates(regret, t=None, *, t_min: int = 10) -> RateFit:
    """Fit cumulative regret curves with a log t and a sqrt(t) model (spec section 6.2).

    Args:
        regret: Cumulative regret, shape (..., T): entry t-1 is Reg(t).
        t: Round numbers of the entries, shape (T,); 1, ..., T when None.
        t_min: Only rounds t >= t_min enter the fits (at least two must remain).

    Returns:
        A :class:`RateFit` with fields of shape (...). A constant curve gets R^2 = 1
        (it is fitted exactly).

    Raises:
        ValueError: If fewer than two rounds satisfy t >= t_min or t is not positive.
    """
    y = check_array(regret, "regret", shape=("...", "T"))
    n_rounds = y.shape[-1]
    if t is None:
        t = np.arange(1, n_rounds + 1, dtype=float)
    else:
        t = check_array(t, "t", shape=(n_rounds,))
        if np.any(t <= 0):
            raise ValueError("t must be positive (rounds are numbered from 1).")
    check_scalar(t_min, "t_min", numbers.Real, min_val=0)
    keep = t >= t_min
    if np.count_nonzero(keep) < 2:
        raise ValueError(f"t_min == {t_min}, must leave at least two rounds to fit, got "
                         f"{np.count_nonzero(keep)} of T == {n_rounds}.")
    tk, yk = t[keep], y[..., keep]
    a, b, r2_log = _linear_fit(np.log(tk), yk)
    c, d, r2_sqrt = _linear_fit(np.sqrt(tk), yk)
    return RateFit(a, b, r2_log, c, d, r2_sqrt, int(np.ceil(t_min)))


class RegretLog:
    """Per-round dual gaps of B runs (or one), appended round by round.

    Used by the regret monitors; the runner can read the curves at checkpoints.

    Args:
        num_runs: B, or None for a single run (arrays then have no run axis).
    """

    def __init__(self, num_runs: int | None = None):
        if num_runs is not None:
            check_scalar(num_runs, "num_runs", numbers.Integral, min_val=1)
        self.num_runs = num_runs
        self._width = 1 if num_runs is None else int(num_runs)
        self.clear()

    def clear(self) -> None:
        """Forget every recorded round."""
        # round-major (capacity, B): a round's record is one contiguous row
        self._max = np.zeros((64, self._width))
        self._min = np.zeros((64, self._width))
        self._sum_max = np.zeros(self._width)
        self._sum_min = np.zeros(self._width)
        self._n = 0

    @property
    def rounds(self) -> int:
        """Number of recorded rounds T."""
        return self._n

    def record(self, dgap_max, dgap_min) -> None:
        """Append one round.

        Args:
            dgap_max: DGap_eta(pi1_t), scalar or shape (B,).
            dgap_min: DGap_eta(pi2_t), scalar or shape (B,).
        """
        if self._n == self._max.shape[0]:
            grow = self._max.shape[0]
            self._max = np.concatenate([self._max, np.zeros((grow, self._width))])
            self._min = np.concatenate([self._min, np.zeros((grow, self._width))])
        row_max, row_min = self._max[self._n], self._min[self._n]
        row_max[...] = dgap_max
        row_min[...] = dgap_min
        self._sum_max += row_max
        self._sum_min += row_min
        self._n += 1

    def _total(self, arr: np.ndarray):
        return float(arr[0]) if self.num_runs is None else arr.copy()

    @property
    def mbr_total(self):
        """MBR regret so far (running sum): a float, or shape (B,)."""
        return self._total(self._sum_max)

    @property
    def abr_total(self):
        """ABR regret so far (running sum): a float, or shape (B,)."""
        return self._total(self._sum_max + self._sum_min)

    def _view(self, arr: np.ndarray) -> np.ndarray:
        out = np.array(arr[: self._n].T, order="C")  # a copy, never a view
        return out[0] if self.num_runs is None else out

    @property
    def max_gaps(self) -> np.ndarray:
        """Per-round DGap_eta(pi1_t): the MBR increments, shape ([B,] T)."""
        return self._view(self._max)

    @property
    def min_gaps(self) -> np.ndarray:
        """Per-round DGap_eta(pi2_t), shape ([B,] T)."""
        return self._view(self._min)

    @property
    def abr_increments(self) -> np.ndarray:
        """Per-round DGap(pi1_t) + DGap(pi2_t), shape ([B,] T)."""
        return self.max_gaps + self.min_gaps

    @property
    def mbr_curve(self) -> np.ndarray:
        """Cumulative MBR regret, shape ([B,] T)."""
        return np.cumsum(self.max_gaps, axis=-1)

    @property
    def abr_curve(self) -> np.ndarray:
        """Cumulative ABR regret, shape ([B,] T)."""
        return np.cumsum(self.abr_increments, axis=-1)
