"""GBPM problem instances: Theta_star, a feature map and a link.

Norm convention: ``S`` bounds ``||Theta_star||`` in the norm named by ``norm``. The random
recipe of the authors' experiments (spec gbpm.md section 6.2) rescales to Frobenius norm S;
the theory's class Skew(d; 2r, S) uses the nuclear norm. Both are available; the instance
records which one it used.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from rlhf_gbpm._validation import as_generator, check_scalar, check_skew_symmetric
from rlhf_gbpm.features import (
    ArmTable,
    ContinuousContexts,
    FeatureMap,
    FiniteContexts,
    random_unit_features,
)
from rlhf_gbpm.links import NORMS, Link, get_link
from rlhf_gbpm.preference import payoff_matrix

__all__ = [
    "GBPMInstance",
    "random_skew_theta",
    "random_instance",
    "bradley_terry_instance",
    "cyclic_instance",
    "custom_instance",
]


def _norm_of(theta: np.ndarray, norm: str) -> float:
    if norm == "frobenius":
        return float(np.linalg.norm(theta))
    return float(np.linalg.svd(theta, compute_uv=False).sum())


@dataclass(frozen=True)
class GBPMInstance:
    """A GBPM instance: P(a1 beats a2 | x) = mu(phi(x,a1)^T theta phi(x,a2)).

    Attributes:
        theta: Theta_star, skew-symmetric, shape (d, d).
        feature_map: The feature map (arm table, finite or continuous contexts).
        link: The link function.
        S: The norm of theta in the norm ``norm``.
        norm: ``"frobenius"`` or ``"nuclear"``: which norm ``S`` measures.
    """

    theta: np.ndarray
    feature_map: FeatureMap
    link: Link
    S: float
    norm: str = "frobenius"

    @property
    def d(self) -> int:
        """Feature dimension."""
        return self.theta.shape[0]

    @property
    def K(self) -> int:
        """Number of actions."""
        return self.feature_map.num_actions

    @property
    def rank(self) -> int:
        """Numerical rank of theta (even): 2r."""
        s = np.linalg.svd(self.theta, compute_uv=False)
        return int(np.sum(s > 1e-10 * max(1.0, s.max(initial=0.0))))

    def payoff(self, context=0) -> np.ndarray:
        """Payoff matrices mu(Phi Theta Phi^T) - 1/2 of contexts, shape (..., K, K)."""
        return payoff_matrix(self.feature_map.features(context), self.theta, self.link,
                             validate=False)


def random_skew_theta(d: int, rank: int = 1, S: float = 1.0, *, norm: str = "frobenius",
                      seed=None) -> np.ndarray:
    """Random skew Theta of rank 2r and norm S (the authors' recipe).

    Q is an orthonormal basis of a d x 2r Gaussian matrix, B = blockdiag of r blocks
    [[0, s_i], [-s_i, 0]] with s_i ~ U(0.1, 1), Theta = Q B Q^T rescaled to norm S.

    Args:
        d: Dimension, >= 2.
        rank: r, the number of 2x2 blocks; 2r <= d.
        S: Target norm, > 0.
        norm: ``"frobenius"`` (the recipe's choice) or ``"nuclear"``.
        seed: Seed or Generator.

    Returns:
        Theta, shape (d, d), skew-symmetric with rank 2r and the requested norm.
    """
    check_scalar(d, "d", numbers.Integral, min_val=2)
    check_scalar(rank, "rank", numbers.Integral, min_val=1)
    if 2 * rank > d:
        raise ValueError(f"rank == {rank}, must satisfy 2*rank <= d == {d}.")
    check_scalar(S, "S", numbers.Real, min_val=0.0, include_boundaries="neither")
    if norm not in NORMS:
        raise ValueError(f"norm == {norm!r}, must be one of {NORMS}.")
    rng = as_generator(seed)
    q, _ = np.linalg.qr(rng.standard_normal((d, 2 * rank)))
    b = np.zeros((2 * rank, 2 * rank))
    s = rng.uniform(0.1, 1.0, size=rank)
    for i in range(rank):
        b[2 * i, 2 * i + 1] = s[i]
        b[2 * i + 1, 2 * i] = -s[i]
    theta = q @ b @ q.T
    theta = 0.5 * (theta - theta.T)
    return theta * (S / _norm_of(theta, norm))


def _make_feature_map(K: int, d: int, contexts, rng, context_scale: float) -> FeatureMap:
    if contexts is None or contexts == 1:
        return ArmTable(random_unit_features((K, d), rng))
    if contexts == "continuous":
        return ContinuousContexts.random(K, d, m=3, scale=context_scale, seed=rng)
    if isinstance(contexts, numbers.Integral) and not isinstance(contexts, bool):
        check_scalar(contexts, "contexts", numbers.Integral, min_val=1)
        return FiniteContexts(random_unit_features((int(contexts), K, d), rng))
    raise ValueError(
        f"contexts == {contexts!r}, must be None, a positive int (finite contexts) or "
        "'continuous'."
    )


def random_instance(d: int = 5, K: int = 20, rank: int = 1, S: float = 5.0, *,
                    link: str | Link = "logistic", norm: str = "frobenius", contexts=None,
                    context_scale: float = 0.5, seed=None) -> GBPMInstance:
    """A random low-rank GBPM instance with unit-norm Gaussian features.

    Args:
        d: Feature dimension, >= 2.
        K: Number of actions, >= 2.
        rank: r (Theta has rank 2r), 2r <= d.
        S: Norm of Theta, > 0 (see ``norm``).
        link: Link name or object; the linear link refuses an S that would leave [0, 1].
        norm: Which norm S measures.
        contexts: None (one arm table), a positive int C (finite contexts) or
            ``"continuous"``.
        context_scale: Strength of the context effect for continuous contexts.
        seed: Seed or Generator; features are drawn before Theta.

    Returns:
        The instance.
    """
    check_scalar(K, "K", numbers.Integral, min_val=2)
    link = get_link(link)
    link.check_bound(S, norm)
    rng = as_generator(seed)
    fmap = _make_feature_map(K, d, contexts, rng, context_scale)
    theta = random_skew_theta(d, rank, S, norm=norm, seed=rng)
    return GBPMInstance(theta=theta, feature_map=fmap, link=link, S=float(S), norm=norm)


def bradley_terry_instance(rewards=None, *, K: int = 10, d: int = 2, scale: float = 4.0,
                           link: str | Link = "logistic", seed=None) -> GBPMInstance:
    """Bradley-Terry preferences as a rank-2 GBPM through a constant feature.

    With phi_a = (1, u_a, 0, ...)/sqrt(2) and Theta = (scale) [[0, -1], [1, 0]] in the first
    two coordinates, phi_a^T Theta phi_b = r_a - r_b with rewards r_a = scale * u_a / 2, so
    P(a beats b) = mu(r_a - r_b): transitive by construction.

    Args:
        rewards: Optional latent values u_a in [-1, 1], shape (K,); drawn uniformly if None.
        K: Number of actions when ``rewards`` is None.
        d: Feature dimension (>= 2; extra coordinates are zero).
        scale: Theta's block entry s > 0; rewards are s * u / 2.
        link: Link name or object.
        seed: Seed or Generator for ``rewards``.

    Returns:
        The instance (``norm="frobenius"``, S = sqrt(2) * scale).
    """
    check_scalar(d, "d", numbers.Integral, min_val=2)
    check_scalar(scale, "scale", numbers.Real, min_val=0.0, include_boundaries="neither")
    if rewards is None:
        check_scalar(K, "K", numbers.Integral, min_val=2)
        rewards = as_generator(seed).uniform(-1.0, 1.0, size=K)
    u = np.asarray(rewards, dtype=float)
    if u.ndim != 1 or u.shape[0] < 2:
        raise ValueError(f"rewards must have shape (K,) with K >= 2, got {u.shape}.")
    if np.any(np.abs(u) > 1.0):
        raise ValueError("rewards must lie in [-1, 1] (they are scaled by `scale`).")
    phi = np.zeros((u.shape[0], d))
    phi[:, 0] = 1.0 / math.sqrt(2.0)
    phi[:, 1] = u / math.sqrt(2.0)
    theta = np.zeros((d, d))
    theta[0, 1], theta[1, 0] = -scale, scale
    link = get_link(link)
    S = math.sqrt(2.0) * scale
    link.check_bound(S, "frobenius")
    return GBPMInstance(theta=theta, feature_map=ArmTable(phi), link=link, S=S, norm="frobenius")


def cyclic_instance(K: int = 3, *, d: int = 2, scale: float = 4.0,
                    link: str | Link = "logistic") -> GBPMInstance:
    """Rock-paper-scissors-like instance: arms evenly spaced on a circle.

    phi_a = (cos(2 pi a/K), sin(2 pi a/K), 0, ...) and Theta = s [[0, 1], [-1, 0]] give
    phi_a^T Theta phi_b = s sin(2 pi (b - a)/K): every arm beats the arms just ahead of it
    on the circle, so preferences cycle and no Condorcet winner exists.

    Args:
        K: Number of actions, >= 3.
        d: Feature dimension, >= 2.
        scale: s > 0.
        link: Link name or object.

    Returns:
        The instance (``norm="frobenius"``, S = sqrt(2) * scale).
    """
    check_scalar(K, "K", numbers.Integral, min_val=3)
    check_scalar(d, "d", numbers.Integral, min_val=2)
    check_scalar(scale, "scale", numbers.Real, min_val=0.0, include_boundaries="neither")
    angles = 2.0 * math.pi * np.arange(K) / K
    phi = np.zeros((K, d))
    phi[:, 0], phi[:, 1] = np.cos(angles), np.sin(angles)
    theta = np.zeros((d, d))
    theta[0, 1], theta[1, 0] = scale, -scale
    link = get_link(link)
    S = math.sqrt(2.0) * scale
    link.check_bound(S, "frobenius")
    return GBPMInstance(theta=theta, feature_map=ArmTable(phi), link=link, S=S, norm="frobenius")


def custom_instance(theta, features, *, link: str | Link = "logistic",
                    norm: str = "frobenius") -> GBPMInstance:
    """An instance from a user-supplied Theta and features.

    Args:
        theta: Skew-symmetric matrix, shape (d, d).
        features: An arm table (K, d), finite-context tables (C, K, d), or a FeatureMap.
        link: Link name or object.
        norm: Norm in which ``S`` is reported.

    Returns:
        The instance, with S = norm of theta.
    """
    theta = check_skew_symmetric(theta, "theta")
    if theta.ndim != 2:
        raise ValueError(f"theta must have shape (d, d), got {theta.shape}.")
    if isinstance(features, FeatureMap):
        fmap = features
    else:
        arr = np.asarray(features, dtype=float)
        fmap = ArmTable(arr) if arr.ndim == 2 else FiniteContexts(arr)
    if fmap.dim != theta.shape[0]:
        raise ValueError(
            f"features must have d == {theta.shape[0]} columns to match theta, got {fmap.dim}."
        )
    if norm not in NORMS:
        raise ValueError(f"norm == {norm!r}, must be one of {NORMS}.")
    link = get_link(link)
    S = _norm_of(theta, norm)
    if S > 0:
        link.check_bound(S, norm)
    return GBPMInstance(theta=0.5 * (theta - theta.T), feature_map=fmap, link=link, S=S, norm=norm)
