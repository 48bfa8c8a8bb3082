"""Coordinates on Skew(d) in an orthonormal basis.

Basis E_k = (e_i e_j^T - e_j e_i^T) / sqrt(2) for the pairs i < j in row-major order, so that
theta = skew_to_vec(Theta) has ||theta||_2 = ||Theta||_F and
phi1^T Theta phi2 = theta . pair_features(phi1, phi2). A skew Theta has only
D = d(d-1)/2 free parameters, which estimators exploit.
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["skew_dim", "skew_to_vec", "vec_to_skew", "pair_features", "skew_part"]

_SQRT2 = math.sqrt(2.0)


def skew_dim(d: int) -> int:
    """Dimension D = d(d-1)/2 of Skew(d)."""
    return d * (d - 1) // 2


@functools.lru_cache(maxsize=64)
def _pairs(d: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(d, k=1)
    return i, j


def skew_to_vec(theta: np.ndarray) -> np.ndarray:
    """Orthonormal coordinates of skew matrices.

    Args:
        theta: Skew-symmetric matrices, shape (..., d, d).

    Returns:
        Coordinates, shape (..., d(d-1)/2).
    """
    theta = np.asarray(theta, dtype=float)
    i, j = _pairs(theta.shape[-1])
    return _SQRT2 * theta[..., i, j]


def vec_to_skew(vec: np.ndarray, d: int) -> np.ndarray:
    """Skew matrices from orthonormal coordinates.

    Args:
        vec: Coordinates, shape (..., d(d-1)/2).
        d: Matrix size.

    Returns:
        Skew-symmetric matrices, shape (..., d, d).
    """
    vec = np.asarray(vec, dtype=float)
    if vec.shape[-1] != skew_dim(d):
        raise ValueError(
            f"vec must have last axis {skew_dim(d)} for d == {d}, got {vec.shape[-1]}."
        )
    i, j = _pairs(d)
    out = np.zeros(vec.shape[:-1] + (d, d))
    out[..., i, j] = vec / _SQRT2
    out[..., j, i] = -vec / _SQRT2
    return out


def pair_features(phi1: np.ndarray, phi2: np.ndarray) -> np.ndarray:
    """Skew coordinates x of the pair (phi1, phi2), so that phi1^T Theta phi2 = theta . x.

    Args:
        phi1: Features of the first action, shape (..., d).
        phi2: Features of the second action, shape (..., d).

    Returns:
        x, shape (..., d(d-1)/2); equals skew_to_vec of (phi1 phi2^T - phi2 phi1^T)/2.
    """
    phi1 = np.asarray(phi1, dtype=float)
    phi2 = np.asarray(phi2, dtype=float)
    i, j = _pairs(phi1.shape[-1])
    return (phi1[..., i] * phi2[..., j] - phi1[..., j] * phi2[..., i]) / _SQRT2


def skew_part(m: np.ndarray) -> np.ndarray:
    """(M - M^T) / 2 over the last two axes."""
    m = np.asarray(m, dtype=float)
    return 0.5 * (m - np.swapaxes(m, -1, -2))
