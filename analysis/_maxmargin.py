"""Max-margin directions of linearly separable data (labels absorbed into the rows).

For rows ``z_i = y_i x_i`` of ``Z`` (shape (n, d)) the hard-margin problem in a norm is

    ``w* = argmin ||w||  subject to  <w, z_i> >= 1 for all i``,

and ``gamma* = 1 / ||w*||`` is the normalized max margin ``max_{||w|| = 1} min_i <w, z_i>``.

* ``"l2"`` and ``"mahalanobis"`` (``||w||_M = sqrt(w^T M w)``, M positive definite) are
  least-distance programs solved exactly with Lawson & Hanson's reduction to non-negative least
  squares (``scipy.optimize.nnls``); they also return the dual multipliers ``lam >= 0`` with
  ``w* = M^{-1} Z^T lam``.
* ``"l1"`` and ``"linf"`` are linear programs solved with HiGHS (``scipy.optimize.linprog``);
  their minimizers need not be unique (an LP face), so compare iterates with
  :func:`normalized_margin` rather than with a cosine to ``w*``.

Not separable data is a result (``success=False``, status 2), not an exception.

References:
    C. L. Lawson and R. J. Hanson, *Solving Least Squares Problems*, ch. 23 (1974).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog, nnls

from rlhf_gbpm._validation import check_array

__all__ = [
    "NORMS",
    "MaxMarginResult",
    "max_margin",
    "min_norm_point",
    "normalized_margin",
    "cosine",
]

logger = logging.getLogger(__name__)

NORMS: tuple[str, ...] = ("l2", "l1", "linf", "mahalanobis")

_STATUS = {
    0: "solved",
    2: "infeasible: the data are not linearly separable",
    5: "solver reported failure",
}


@dataclass(frozen=True)
class MaxMarginResult:
    """Outcome of a max-margin solve.

    Attributes:
        w: The minimum-norm separator with all margins >= 1, shape (d,); zeros on failure.
        norm: The norm used (one of :data:`NORMS`).
        margin: Normalized max margin ``1 / ||w||`` (nan on failure).
        dual: Dual multipliers, shape (n,), for ``"l2"``/``"mahalanobis"``; None otherwise.
        success: Whether a separator was found.
        status: 0 solved, 2 not separable, 5 solver failure.
        message: Text for ``status``.
    """

    w: np.ndarray
    norm: str
    margin: float
    dual: np.ndarray | None
    success: bool
    status: int
    message: str

    @property
    def direction(self) -> np.ndarray:
        """Unit-l2 direction of ``w``, shape (d,)."""
        nrm = np.linalg.norm(self.w)
        return self.w / nrm if nrm > 0 else self.w


def _result(w, norm, dual, status) -> MaxMarginResult:
    ok = status == 0
    value = _norm_value(w, norm[0], norm[1]) if ok else np.nan
    return MaxMarginResult(
        w=w,
        norm=norm[0],
        margin=float(1.0 / value) if ok else float("nan"),
        dual=dual,
        success=ok,
        status=status,
        message=_STATUS[status],
    )


def _norm_value(w, norm, metric=None):
    if norm == "l2":
        return np.linalg.norm(w, axis=-1)
    if norm == "l1":
        return np.sum(np.abs(w), axis=-1)
    if norm == "linf":
        return np.max(np.abs(w), axis=-1)
    if metric.ndim == 1:
        return np.sqrt(np.sum(metric * w * w, axis=-1))
    return np.sqrt(np.einsum("...i,ij,...j->...", w, metric, w))


def min_norm_point(G, h, *, tol: float = 1e-12) -> tuple[np.ndarray, np.ndarray, bool]:
    """Least-distance program ``min ||x||_2 s.t. G x >= h`` via non-negative least squares.

    Args:
        G: Constraint rows, shape (n, d).
        h: Right-hand sides, shape (n,).
        tol: Threshold on the NNLS residual below which the constraints are declared
            inconsistent.

    Returns:
        ``(x, lam, feasible)``: the minimizer, shape (d,); multipliers ``lam >= 0``, shape (n,),
        with ``x = G^T lam``; and whether the constraints are consistent (if not, ``x`` and
        ``lam`` are zeros).
    """
    G = np.asarray(G, dtype=float)
    h = np.asarray(h, dtype=float)
    n, d = G.shape
    E = np.vstack([G.T, h[None, :]])
    f = np.zeros(d + 1)
    f[-1] = 1.0
    u, _ = nnls(E, f, maxiter=50 * max(n, d + 1))
    r = E @ u - f
    denom = -r[-1]  # = 1 - h^T u, in (0, 1] when feasible
    if denom <= tol:
        return np.zeros(d), np.zeros(n), False
    lam = u / denom
    return G.T @ lam, lam, True


def _max_margin_l2(Z, metric):
    w, lam, ok = min_norm_point(Z, np.ones(Z.shape[0]))
    return w, lam, 0 if ok else 2


def _max_margin_mahalanobis(Z, metric):
    if metric.ndim == 1:
        scale = 1.0 / np.sqrt(metric)
        v, lam, ok = min_norm_point(Z * scale, np.ones(Z.shape[0]))
        return v * scale, lam, 0 if ok else 2
    chol = np.linalg.cholesky(metric)  # metric = C C^T, v = C^T w
    G = np.linalg.solve(chol, Z.T).T  # Z C^{-T}
    v, lam, ok = min_norm_point(G, np.ones(Z.shape[0]))
    return np.linalg.solve(chol.T, v), lam, 0 if ok else 2


def _lp_status(res) -> int:
    if res.status == 0:
        return 0
    if res.status == 2:
        return 2
    logger.warning("linprog failed: %s", res.message)
    return 5


def _max_margin_linf(Z, metric):
    n, d = Z.shape
    c = np.zeros(d + 1)
    c[-1] = 1.0
    eye = np.eye(d)
    ones = np.ones((d, 1))
    A = np.vstack([np.hstack([-Z, np.zeros((n, 1))]), np.hstack([eye, -ones]),
                   np.hstack([-eye, -ones])])
    b = np.concatenate([-np.ones(n), np.zeros(2 * d)])
    bounds = [(None, None)] * d + [(0, None)]
    res = linprog(c, A_ub=A, b_ub=b, bounds=bounds, method="highs")
    status = _lp_status(res)
    return (res.x[:d] if status == 0 else np.zeros(d)), None, status


def _max_margin_l1(Z, metric):
    n, d = Z.shape
    c = np.ones(2 * d)
    A = np.hstack([-Z, Z])
    res = linprog(c, A_ub=A, b_ub=-np.ones(n), bounds=[(0, None)] * (2 * d), method="highs")
    status = _lp_status(res)
    return (res.x[:d] - res.x[d:] if status == 0 else np.zeros(d)), None, status


_SOLVERS = {
    "l2": _max_margin_l2,
    "l1": _max_margin_l1,
    "linf": _max_margin_linf,
    "mahalanobis": _max_margin_mahalanobis,
}


def max_margin(Z, norm: str = "l2", *, metric=None) -> MaxMarginResult:
    """Minimum-norm separator with unit margins, ``argmin ||w|| s.t. Z w >= 1``.

    Args:
        Z: Label-absorbed data rows ``z_i = y_i x_i``, shape (n, d), finite.
        norm: One of ``"l2"``, ``"l1"``, ``"linf"``, ``"mahalanobis"``.
        metric: For ``"mahalanobis"`` only: the positive diagonal, shape (d,), or a
            symmetric positive definite matrix, shape (d, d), of ``||w||_M^2 = w^T M w``.

    Returns:
        A :class:`MaxMarginResult`; ``success`` is False (status 2) when ``Z`` is not
        separable.

    Raises:
        ValueError: On an unknown norm, bad shapes, a missing or non-positive-definite metric.
    """
    if norm not in _SOLVERS:
        raise ValueError(f"norm == {norm!r}, must be one of {NORMS}.")
    sizes: dict[str, int] = {}
    Z = check_array(Z, "Z", shape=("n", "d"), sizes=sizes)
    if norm == "mahalanobis":
        if metric is None:
            raise ValueError("metric is required for norm == 'mahalanobis'.")
        metric = np.asarray(metric, dtype=float)
        if metric.ndim == 1:
            metric = check_array(metric, "metric", shape=("d",), sizes=sizes)
            if np.any(metric <= 0):
                raise ValueError("metric must have positive entries.")
        else:
            metric = check_array(metric, "metric", shape=("d", "d"), sizes=sizes)
            if not np.allclose(metric, metric.T) or np.linalg.eigvalsh(metric)[0] <= 0:
                raise ValueError("metric must be symmetric positive definite.")
    elif metric is not None:
        raise ValueError(f"metric is only used with norm == 'mahalanobis', got norm == {norm!r}.")
    w, dual, status = _SOLVERS[norm](Z, metric)
    return _result(w, (norm, metric), dual, status)


def normalized_margin(w, Z, norm: str = "l2", *, metric=None) -> np.ndarray:
    """Normalized margin ``min_i <w, z_i> / ||w||`` of one or many separators.

    Args:
        w: Separators, shape (..., d); zero rows give nan.
        Z: Data rows, shape (n, d).
        norm: ``"l2"``, ``"l1"``, ``"linf"`` or ``"mahalanobis"``.
        metric: Diagonal (d,) or matrix (d, d) for ``"mahalanobis"``.

    Returns:
        Margins, shape (...); divide by :attr:`MaxMarginResult.margin` to get a ratio in
        (-inf, 1].
    """
    if norm not in _SOLVERS:
        raise ValueError(f"norm == {norm!r}, must be one of {NORMS}.")
    w = np.asarray(w, dtype=float)
    Z = np.asarray(Z, dtype=float)
    metric = None if metric is None else np.asarray(metric, dtype=float)
    value = _norm_value(w, norm, metric)
    low = np.min(w @ Z.T, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(value > 0, low / np.where(value > 0, value, 1.0), np.nan)


def cosine(a, b) -> np.ndarray:
    """Cosine similarity along the last axis.

    Args:
        a: Vectors, shape (..., d).
        b: Vectors, shape broadcastable with ``a``.

    Returns:
        Cosines, the broadcast shape without the last axis; nan where a vector is zero.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    num = np.sum(a * b, axis=-1)
    den = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
