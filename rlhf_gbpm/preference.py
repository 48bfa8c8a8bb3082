"""The Generalized Bilinear Preference Model and its skew-symmetric payoff.

P(a1 beats a2 | x) = mu(phi(x, a1)^T Theta phi(x, a2)) with Theta skew-symmetric, so the
payoff A = mu(Phi Theta Phi^T) - 1/2 is skew and J(p, q) = 1/2 + p^T A q.
"""

from __future__ import annotations

import numpy as np

from rlhf_gbpm._validation import check_array, check_skew_symmetric
from rlhf_gbpm.links import Link, get_link

__all__ = ["payoff_matrix", "preference_probability", "bilinear_scores"]


def bilinear_scores(features: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Skew score matrices Z = Phi Theta Phi^T, exactly skew in floating point.

    Args:
        features: Feature tables, shape (..., K, d).
        theta: Skew matrices, shape (..., d, d), broadcast against ``features``' batch axes.

    Returns:
        Z, shape (..., K, K), with Z^T == -Z exactly.
    """
    z = features @ theta @ np.swapaxes(features, -1, -2)
    return 0.5 * (z - np.swapaxes(z, -1, -2))


def payoff_matrix(features, theta, link: str | Link = "logistic", *, validate: bool = True):
    """Skew-symmetric payoff A = mu(Phi Theta Phi^T) - 1/2.

    Args:
        features: Feature tables Phi, shape (..., K, d); rows usually of unit norm.
        theta: Skew-symmetric Theta, shape (..., d, d); batch axes broadcast.
        link: A link name or :class:`~rlhf_gbpm.links.Link`.
        validate: Check shapes, finiteness and skew-symmetry (turn off in hot loops).

    Returns:
        A, shape (..., K, K), skew-symmetric exactly, entries in [-1/2, 1/2].

    Raises:
        ValueError: If ``theta`` is not skew or the shapes do not match.
    """
    link = get_link(link)
    if validate:
        sizes: dict[str, int] = {}
        features = check_array(features, "features", shape=("...", "K", "d"), sizes=sizes)
        theta = check_skew_symmetric(theta, "theta")
        if theta.shape[-1] != sizes["d"]:
            raise ValueError(
                f"theta must have shape (..., {sizes['d']}, {sizes['d']}) to match features, got "
                f"{theta.shape}."
            )
    z = bilinear_scores(features, theta)
    a = link.mu(z) - 0.5
    return 0.5 * (a - np.swapaxes(a, -1, -2))


def preference_probability(phi1, phi2, theta, link: str | Link = "logistic") -> np.ndarray:
    """P(a1 beats a2) = mu(phi1^T Theta phi2).

    Args:
        phi1: Features of the first actions, shape (..., d).
        phi2: Features of the second actions, shape (..., d).
        theta: Skew matrices, shape (..., d, d).
        link: A link name or object.

    Returns:
        Probabilities, shape (...).
    """
    link = get_link(link)
    phi1 = np.asarray(phi1, dtype=float)
    phi2 = np.asarray(phi2, dtype=float)
    z = np.einsum("...i,...ij,...j->...", phi1, np.asarray(theta, dtype=float), phi2)
    return link.mu(z)
