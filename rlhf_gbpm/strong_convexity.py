"""Numerical strong-convexity check of a regularizer w.r.t. the l1 norm on the simplex.

psi is beta^{-1}-strongly convex w.r.t. ||.||_1 on Delta_K when
D_psi(q, p) = psi(q) - psi(p) - <grad psi(p), q - p> >= ||q - p||_1^2 / (2 beta) for all p, q.
The estimate minimizes the ratio 2 D_psi(q, p) / ||q - p||_1^2 over many pairs: random
Dirichlet points at several concentrations (interior, near faces, near vertices) paired with
(i) small balanced perturbations that move mass between two groups of coordinates (where the
ratio of a separable psi is smallest), (ii) coordinate moves e_i - e_j and (iii) random far
points. Every sampled ratio upper-bounds the true modulus, so ``beta`` = 1 / (smallest ratio) is
a lower bound on the true beta, tight when the sampling finds the worst pair.

A ratio <= 0 (up to rounding) means psi is not strictly convex somewhere (linear, flat or
concave): the check raises :class:`~rlhf_gbpm.errors.NotStronglyConvexError` with the pair that
shows it. A declared beta below the estimate contradicts it and gets a warning.
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass

import numpy as np

from rlhf_gbpm._validation import as_generator, check_scalar
from rlhf_gbpm.errors import GBPMWarning, NotStronglyConvexError, RegularizerError
from rlhf_gbpm.regularizers import Regularizer, _probe_user_regularizer

__all__ = ["BetaEstimate", "estimate_beta", "check_regularizer"]


@dataclass(frozen=True)
class BetaEstimate:
    """Outcome of :func:`estimate_beta`.

    Attributes:
        beta: 1 / min ratio: a lower bound on the true beta (inf if psi is not strongly convex).
        beta_upper: Cauchy-Schwarz upper bound max_p sum_i 1/H_ii(p) / lambda_min(D^-1/2 H D^-1/2)
            over the evaluated points (vertices, uniform, reference, samples), from the Hessian
            H (D = diag H); for a separable psi this is the classical constant of the spec's
            table. None when the regularizer exposes no Hessian.
        modulus: The smallest ratio 2 D_psi(q, p) / ||q - p||_1^2 found.
        p: The base point of the worst pair, shape (K,).
        q: The other point of the worst pair, shape (K,).
        num_pairs: How many pairs were evaluated.
        K: Number of actions.
    """

    beta: float
    beta_upper: float | None
    modulus: float
    p: np.ndarray
    q: np.ndarray
    num_pairs: int
    K: int


def _base_points(K: int, n: int, rng: np.random.Generator) -> np.ndarray:
    conc = np.array([0.05, 0.3, 1.0, 5.0, 50.0])
    alphas = conc[rng.integers(0, conc.size, size=n)]
    pts = rng.gamma(alphas[:, None], size=(n, K))
    pts = np.maximum(pts, 1e-300)
    pts /= pts.sum(axis=1, keepdims=True)
    pts[0] = 1.0 / K  # the uniform point is always included
    # keep base points off the exact boundary where gradients may be infinite
    pts = 0.999 * pts + 0.001 / K
    return pts


def _directions(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Tangent directions of unit l1 norm: balanced group moves, coordinate moves, random."""
    n, K = p.shape
    dirs = []
    # balanced split weighted by p (the worst case for KL-like psi) and by 1 (l2-like)
    for weight in (p, np.ones_like(p), np.sqrt(p), p ** 1.5):
        signs = rng.permutation(np.tile(np.r_[np.ones(K // 2), -np.ones(K - K // 2)], (n, 1)).T).T
        v = signs * weight
        pos = np.where(v > 0, v, 0).sum(1, keepdims=True)
        neg = np.where(v < 0, -v, 0).sum(1, keepdims=True)
        v = np.where(v > 0, v / np.maximum(pos, 1e-300), v / np.maximum(neg, 1e-300)) / 2.0
        dirs.append(v)
    i = rng.integers(0, K, size=n)
    j = (i + rng.integers(1, K, size=n)) % K
    v = np.zeros((n, K))
    v[np.arange(n), i] = 0.5
    v[np.arange(n), j] = -0.5
    dirs.append(v)
    g = rng.standard_normal((n, K))
    g -= g.mean(1, keepdims=True)
    dirs.append(g / np.abs(g).sum(1, keepdims=True))
    return np.stack(dirs, axis=1)  # (n, m, K)


def _ratios(reg: Regularizer, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        fp, fq, gp = reg.value(p), reg.value(q), reg.grad(p)
        dist = np.abs(q - p).sum(-1)
        breg = fq - fp - np.sum(gp * (q - p), axis=-1)
    for arr, what in ((fp, "value"), (fq, "value"), (gp, "gradient")):
        if np.any(np.isnan(arr)):
            raise RegularizerError(
                f"regularizer {getattr(reg, 'name', reg)!r} returned NaN in its {what} on the "
                "simplex."
            )
    return 2.0 * breg / dist**2


def estimate_beta(reg: Regularizer, K: int, *, num_points: int = 64, seed=0) -> BetaEstimate:
    """Estimate beta (psi is beta^{-1}-strongly convex w.r.t. l1 on Delta_K) by sampling.

    Args:
        reg: The regularizer (any :class:`~rlhf_gbpm.regularizers.Regularizer`).
        K: Number of actions, >= 2.
        num_points: Number of base points (each gets several directions and step sizes).
        seed: Seed of the sampling.

    Returns:
        A :class:`BetaEstimate`; ``beta`` is a lower bound on the true constant.
    """
    check_scalar(K, "K", numbers.Integral, min_val=2)
    check_scalar(num_points, "num_points", numbers.Integral, min_val=1)
    _probe_user_regularizer(reg, K)
    rng = as_generator(seed)
    p = _base_points(K, num_points, rng)
    dirs = _directions(p, rng)  # (n, m, K)
    n, m, _ = dirs.shape
    best = (math.inf, None, None)
    pairs = 0
    for scale in (1e-3, 3e-2, 0.3, 1.0):
        # largest step keeping q in the simplex, then a fraction `scale` of it
        v = dirs
        neg = np.where(v < 0, -v, 0.0)
        with np.errstate(divide="ignore"):
            tmax = np.min(np.where(neg > 0, p[:, None, :] / np.maximum(neg, 1e-300), np.inf), -1)
        t = scale * np.minimum(tmax, 2.0)
        q = p[:, None, :] + t[..., None] * v
        q = np.maximum(q, 0.0)
        q /= q.sum(-1, keepdims=True)
        P = np.broadcast_to(p[:, None, :], q.shape).reshape(-1, K)
        Q = q.reshape(-1, K)
        keep = np.abs(Q - P).sum(-1) > 1e-4  # shorter pairs lose the ratio to cancellation
        r = _ratios(reg, P[keep], Q[keep])
        pairs += int(keep.sum())
        r = np.where(np.isfinite(r), r, np.inf)
        k = int(np.argmin(r))
        if r[k] < best[0]:
            best = (float(r[k]), P[keep][k], Q[keep][k])
    modulus, bp, bq = best
    beta = math.inf if modulus <= 0 else 1.0 / modulus
    upper = _beta_upper(reg, K, p)
    return BetaEstimate(beta=beta, beta_upper=upper, modulus=modulus, p=bp, q=bq,
                        num_pairs=pairs, K=K)


def _hessians(reg: Regularizer, p: np.ndarray) -> np.ndarray | None:
    from rlhf_gbpm.regularizers import SeparableRegularizer

    if isinstance(reg, SeparableRegularizer):
        with np.errstate(all="ignore"):
            diag = reg.f_second(p, reg._ref_for(p))
        return diag[..., None] * np.eye(p.shape[-1])
    hess = getattr(reg, "hessian", None)
    return None if hess is None else np.asarray(hess(p), dtype=float)


def _beta_upper(reg: Regularizer, K: int, samples: np.ndarray) -> float | None:
    eps = 1e-9
    vertices = np.full((K, K), eps) + np.eye(K) * (1.0 - K * eps)
    pts = [vertices, np.full((1, K), 1.0 / K), samples]
    ref = getattr(reg, "reference", None)
    if ref is not None and np.ndim(ref) == 1:
        pts.append(np.asarray(ref)[None])
    p = np.vstack(pts)
    H = _hessians(reg, p)
    if H is None:
        return None
    diag = np.diagonal(H, axis1=-2, axis2=-1)
    if np.any(~np.isfinite(diag)) or np.any(diag <= 0):
        ok = np.all(np.isfinite(diag) & (diag > 0), axis=-1)
        if not np.any(ok):
            return math.inf
        H, diag = H[ok], diag[ok]
    scale = 1.0 / np.sqrt(diag)
    normalized = H * scale[..., :, None] * scale[..., None, :]
    lam = np.linalg.eigvalsh(normalized)[..., 0]
    with np.errstate(divide="ignore"):
        bound = np.where(lam > 0, np.sum(1.0 / diag, axis=-1) / lam, np.inf)
    return float(np.max(bound))


def check_regularizer(reg: Regularizer, K: int, *, rtol: float = 1e-6, min_modulus: float = 1e-8,
                      seed=0) -> BetaEstimate:
    """Reject a regularizer that is not strongly convex; warn if its declared beta is wrong.

    Run this before any experiment with a user regularizer.

    Args:
        reg: The regularizer.
        K: Number of actions.
        rtol: Relative slack before a declared beta counts as contradicted.
        min_modulus: Moduli below this count as "not strongly convex" (psi flat or linear).
        seed: Seed of the sampling.

    Returns:
        The :class:`BetaEstimate`.

    Raises:
        NotStronglyConvexError: If some pair shows psi is not strongly convex (the message gives
            the pair and the ratio).
    """
    est = estimate_beta(reg, K, seed=seed)
    name = getattr(reg, "name", type(reg).__name__)
    if not est.modulus > min_modulus:
        kind = "not convex" if est.modulus < -1e-6 else "not strongly convex (flat or linear)"
        raise NotStronglyConvexError(
            f"regularizer {name!r} is {kind} on the simplex: 2 D_psi(q, p)/||q - p||_1^2 == "
            f"{est.modulus:.3g} at p = {np.array2string(est.p, precision=4)}, "
            f"q = {np.array2string(est.q, precision=4)}; the regret theory needs psi to be "
            "beta^-1-strongly convex w.r.t. l1."
        )
    try:
        declared = float(reg.beta(K))
    except NotImplementedError:
        declared = None
    if declared is not None and est.beta > declared * (1.0 + rtol):
        warnings.warn(
            f"regularizer {name!r} declares beta == {declared:.6g} but the numerical check found "
            f"a pair with 2 D_psi/||q - p||_1^2 == {est.modulus:.6g}, i.e. beta >= "
            f"{est.beta:.6g}; the declared constant is too small.",
            GBPMWarning,
            stacklevel=2,
        )
    return est
