"""Data stores and estimator adapters shared by the agents (private).

* :class:`PairStatistics`: finite contexts. A comparison (a1, a2, r) at context c only enters the
  likelihood through z = theta . x(c, a1, a2), and x(c, a2, a1) = -x(c, a1, a2), x(c, a, a) = 0,
  so the data compress exactly to the number of plays n and wins w of each unordered pair
  i < j per context: the MLE over all rounds is a weighted MLE over C K(K-1)/2 rows.
* :class:`RawData`: continuous contexts (or any data), the comparisons themselves.
* :class:`MLEEstimator` / :class:`ONSEstimator`: the Greedy Sampling estimators on top.

Everything is batched over runs (leading axis B).
"""

from __future__ import annotations

import numbers

import numpy as np

from rlhf_gbpm._validation import check_scalar
from rlhf_gbpm.links import Link, get_link
from rlhf_gbpm.skew import pair_features, skew_dim

# per-pair statistics are used while K(K-1)/2 stays below this; beyond it (K > 91) the
# (B, C, K(K-1)/2, D) pair-feature table costs more memory than the raw comparisons
MAX_PAIRS = 4096


ESTIMATORS = ("mle", "ons")


def check_estimator_options(agent) -> Link:
    """Validate the estimator options an agent shares with Greedy Sampling.

    Checks ``estimator`` (one of ``ESTIMATORS``), ``S`` (> 0 and admissible for the link),
    ``mle_tol`` (> 0), ``mle_max_iter`` (>= 1), ``ons_a0`` (> 0) and ``ons_step`` (> 0).

    Args:
        agent: An agent with those attributes and ``link``.

    Returns:
        The link object.
    """
    if agent.estimator not in ESTIMATORS:
        raise ValueError(f"estimator == {agent.estimator!r}, must be one of {ESTIMATORS}.")
    check_scalar(agent.S, "S", numbers.Real, min_val=0.0, include_boundaries="neither")
    link = get_link(agent.link)
    link.check_bound(agent.S, "frobenius")
    check_scalar(agent.mle_tol, "mle_tol", numbers.Real, min_val=0.0,
                 include_boundaries="neither")
    check_scalar(agent.mle_max_iter, "mle_max_iter", numbers.Integral, min_val=1)
    check_scalar(agent.ons_a0, "ons_a0", numbers.Real, min_val=0.0, include_boundaries="neither")
    check_scalar(agent.ons_step, "ons_step", numbers.Real, min_val=0.0,
                 include_boundaries="neither")
    return link


def use_pair_statistics(finite: bool, K: int) -> bool:
    """Whether comparisons are stored as exact per-pair counts (finite contexts, moderate K)."""
    return finite and K * (K - 1) // 2 <= MAX_PAIRS


def _grow(arr: np.ndarray, axis: int, size: int, fill=0) -> np.ndarray:
    """Extend ``arr`` along ``axis`` to at least ``size`` (capacity doubling)."""
    old = arr.shape[axis]
    if size <= old:
        return arr
    new = max(size, 2 * old)
    shape = list(arr.shape)
    shape[axis] = new - old
    return np.concatenate([arr, np.full(shape, fill, dtype=arr.dtype)], axis=axis)


class PairStatistics:
    """Per-(run, context, unordered pair) play counts and wins, plus the pair features.

    Args:
        B: Number of runs.
        K: Number of actions.
        d: Feature dimension.
    """

    def __init__(self, B: int, K: int, d: int):
        self.B, self.K, self.d = B, K, d
        self.iu, self.ju = np.triu_indices(K, k=1)
        P = self.iu.size
        self.seen = np.zeros((B, 1), dtype=bool)
        self.x = np.zeros((B, 1, P, skew_dim(d)))      # pair features per context
        self.counts = np.zeros((B, 1, K, K))           # ordered plays (a1, a2)
        self.wins = np.zeros((B, 1, K, K))             # wins of a1 over a2

    @property
    def num_contexts(self) -> int:
        """Context capacity C (at least the largest context index seen + 1)."""
        return self.seen.shape[1]

    def observe_contexts(self, feats: np.ndarray, ctx: np.ndarray) -> None:
        """Record the feature tables of contexts seen for the first time.

        Args:
            feats: Features, shape (B, K, d).
            ctx: Context indices, shape (B,).
        """
        need = int(ctx.max()) + 1
        if need > self.num_contexts:
            self.seen = _grow(self.seen, 1, need, False)
            self.x = _grow(self.x, 1, need)
            self.counts = _grow(self.counts, 1, need)
            self.wins = _grow(self.wins, 1, need)
        rows = np.arange(self.B)
        new = ~self.seen[rows, ctx]
        if np.any(new):
            b = rows[new]
            f = feats[b]
            self.x[b, ctx[new]] = pair_features(f[:, self.iu], f[:, self.ju])
            self.seen[b, ctx[new]] = True

    def add(self, feats: np.ndarray, ctx: np.ndarray, pair: np.ndarray, r: np.ndarray,
            mask: np.ndarray | None = None) -> None:
        """Add one comparison per run.

        Args:
            feats: Features, shape (B, K, d).
            ctx: Context indices, shape (B,).
            pair: Actions, shape (B, 2).
            r: Outcomes in {0, 1}, shape (B,).
            mask: Optional bool (B,): only these runs record their comparison.
        """
        self.observe_contexts(feats, ctx)
        rows = np.arange(self.B)
        if mask is not None:
            rows, ctx, pair, r = rows[mask], ctx[mask], pair[mask], r[mask]
        self.counts[rows, ctx, pair[:, 0], pair[:, 1]] += 1.0
        self.wins[rows, ctx, pair[:, 0], pair[:, 1]] += r

    def data(self, *, with_ties: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Weighted data of the unordered pairs.

        Args:
            with_ties: Append one row x = 0 weighted by the number of plays of a pair (a, a)
                (constant loss m(0), zero gradient), so that the total weight equals the
                number of comparisons: needed where the loss is a mean (nuclear-norm MLE).

        Returns:
            x of shape (B, C*P [+1], D), win fractions r of shape (B, C*P [+1]) (1/2 where
            unplayed) and play counts n of the same shape.
        """
        iu, ju = self.iu, self.ju
        n_ij = self.counts[:, :, iu, ju]
        n_ji = self.counts[:, :, ju, iu]
        n = n_ij + n_ji
        wins_i = self.wins[:, :, iu, ju] + (n_ji - self.wins[:, :, ju, iu])
        r = np.where(n > 0, wins_i / np.maximum(n, 1.0), 0.5)
        B, C, P = n.shape
        x, r, n = self.x.reshape(B, C * P, -1), r.reshape(B, C * P), n.reshape(B, C * P)
        if with_ties:
            ties = np.trace(self.counts, axis1=2, axis2=3).sum(axis=1)  # (B,)
            x = np.concatenate([x, np.zeros((B, 1, x.shape[-1]))], axis=1)
            r = np.concatenate([r, np.full((B, 1), 0.5)], axis=1)
            n = np.concatenate([n, ties[:, None]], axis=1)
        return x, r, n


class RawData:
    """The comparisons themselves: skew features x (B, N, D) and outcomes r (B, N).

    Args:
        B: Number of runs.
        D: Skew dimension d(d-1)/2.
        capacity: Initial capacity in rounds.
    """

    def __init__(self, B: int, D: int, capacity: int = 64):
        self.n = 0
        self.x = np.zeros((B, max(capacity, 1), D))
        self.r = np.zeros((B, max(capacity, 1)))

    def add(self, x: np.ndarray, r: np.ndarray) -> None:
        """Append one comparison per run: x (B, D), r (B,)."""
        self.x = _grow(self.x, 1, self.n + 1)
        self.r = _grow(self.r, 1, self.n + 1)
        self.x[:, self.n] = x
        self.r[:, self.n] = r
        self.n += 1

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """The stored comparisons: x (B, N, D), r (B, N)."""
        return self.x[:, : self.n], self.r[:, : self.n]


class MLEEstimator:
    """Exact constrained MLE over all data so far, warm-started from the previous fit.

    Args:
        B: Number of runs.
        K: Number of actions.
        d: Feature dimension.
        S: Frobenius-ball radius.
        link: Link object.
        tol: KKT tolerance of ``fit_mle``.
        max_iter: Newton iteration cap of ``fit_mle``.
        finite: Finite contexts (pair statistics while K(K-1)/2 <= MAX_PAIRS) or continuous
            (raw data).
        capacity: Initial raw-data capacity (e.g. the horizon).
    """

    def __init__(self, B, K, d, *, S, link, tol, max_iter, finite, capacity=64):
        self.S, self.link, self.tol, self.max_iter = S, link, tol, max_iter
        self.finite = use_pair_statistics(finite, K)
        self.theta = np.zeros((B, skew_dim(d)))
        self.result = None
        if self.finite:
            self.stats = PairStatistics(B, K, d)
        else:
            self.raw = RawData(B, skew_dim(d), capacity)

    def observe(self, feats, ctx, pair, r) -> None:
        """Record one comparison per run (see :meth:`PairStatistics.add`)."""
        if self.finite:
            self.stats.add(feats, ctx, pair, r)
        else:
            rows = np.arange(feats.shape[0])
            self.raw.add(pair_features(feats[rows, pair[:, 0]], feats[rows, pair[:, 1]]), r)

    def fit(self) -> np.ndarray:
        """Refit on all data; returns theta (B, D)."""
        from rlhf_gbpm.estimation import fit_mle

        if self.finite:
            x, r, n = self.stats.data()
        else:
            (x, r), n = self.raw.data(), None
        kw = {"S": self.S, "link": self.link, "tol": self.tol, "max_iter": self.max_iter}
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            self.result = fit_mle(x, r, weights=n, warm_start=self.theta, **kw)
        theta = np.array(self.result.theta, dtype=float)
        bad = ~np.all(np.isfinite(theta), axis=-1)
        if np.any(bad):
            # guard: a warm start on the ball's boundary with a rank-deficient Hessian can
            # break the Newton step; refit those runs from zero, else keep the old estimate
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                cold = fit_mle(x[bad], r[bad], weights=None if n is None else n[bad], **kw)
            fix = np.array(cold.theta, dtype=float)
            ok = np.all(np.isfinite(fix), axis=-1)
            theta[bad] = np.where(ok[:, None], fix, self.theta[bad])
        self.theta = theta
        return self.theta


class ONSEstimator:
    """One-pass Online Newton Step (the authors' estimator), batched over runs.

    Args:
        B: Number of runs.
        d: Feature dimension.
        S: Frobenius-ball radius.
        link: Link object.
        a0: Initial A = a0 I.
        step: Step size.
    """

    def __init__(self, B, d, *, S, link, a0, step):
        from rlhf_gbpm.estimation import OnlineNewtonStep

        self.ons = OnlineNewtonStep(skew_dim(d), batch_size=B, S=S, link=link, a0=a0,
                                    step_size=step)
        self._rows = np.arange(B)

    @property
    def theta(self) -> np.ndarray:
        """Current estimate, shape (B, D)."""
        return self.ons.theta_

    def observe(self, feats, ctx, pair, r) -> None:
        """One ONS step per run on this round's comparison.

        Args:
            feats: Features, shape (B, K, d).
            ctx: Contexts (unused: ONS sees the played features only).
            pair: Actions, int shape (B, 2).
            r: Outcomes, shape (B,), checked to lie in [0, 1].
        """
        if np.minimum.reduce(r) < 0.0 or np.maximum.reduce(r) > 1.0:
            raise ValueError("r must lie in [0, 1].")
        rows = self._rows
        x = pair_features(feats[rows, pair[:, 0]], feats[rows, pair[:, 1]])
        self.ons._step(x, r, None)  # x is built here from the features: shape and dtype hold

    def fit(self) -> np.ndarray:
        """The current estimate (ONS has already used every comparison)."""
        return self.theta
