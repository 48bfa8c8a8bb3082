"""Margin losses computed in the log domain, for numpy arrays and torch tensors.

Every function takes margins ``m = y <w, x>`` and works elementwise (any shape), except the
weight helpers, which normalize along the last axis. Large margins never underflow to a wrong
direction: the loss derivative is carried as ``log|l'(m)|`` and normalized with a softmax.

Supported losses:

* ``"logistic"``: ``l(m) = log(1 + exp(-m))``, ``log|l'(m)| = -softplus(m)``;
* ``"exponential"``: ``l(m) = exp(-m)``, ``log|l'(m)| = -m``.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "LOSSES",
    "check_loss",
    "loss_value",
    "log_neg_dloss",
    "neg_dloss",
    "loss_weights",
]

LOSSES: tuple[str, ...] = ("logistic", "exponential")


def check_loss(loss: str, name: str = "loss") -> str:
    """Check a loss name.

    Args:
        loss: One of :data:`LOSSES`.
        name: Parameter name used in messages.

    Returns:
        The name, unchanged.

    Raises:
        TypeError: If ``loss`` is not a string.
        ValueError: If it is not a known loss.
    """
    if not isinstance(loss, str):
        raise TypeError(f"{name} must be an instance of str, not {type(loss).__name__}.")
    if loss not in LOSSES:
        raise ValueError(f"{name} == {loss!r}, must be one of {LOSSES}.")
    return loss


def _softplus(m):
    if isinstance(m, torch.Tensor):
        return torch.nn.functional.softplus(m)
    return np.logaddexp(0.0, m)


def loss_value(m, loss: str = "logistic"):
    """Loss of margins, without overflow for very negative margins.

    Args:
        m: Margins, numpy array or torch tensor of any shape.
        loss: ``"logistic"`` or ``"exponential"``.

    Returns:
        Losses, same shape and type as ``m``; non-negative. The exponential loss overflows to
        ``inf`` only for margins below about -709 (float64).
    """
    if loss == "logistic":
        return _softplus(-m)
    if loss == "exponential":
        return torch.exp(-m) if isinstance(m, torch.Tensor) else np.exp(-m)
    raise ValueError(f"loss == {loss!r}, must be one of {LOSSES}.")


def log_neg_dloss(m, loss: str = "logistic"):
    """Logarithm of minus the loss derivative, ``log|l'(m)|``, exact for any margin.

    Args:
        m: Margins, numpy array or torch tensor of any shape.
        loss: ``"logistic"`` or ``"exponential"``.

    Returns:
        ``log|l'(m)|``, same shape and type as ``m``; finite for finite margins.
    """
    if loss == "logistic":
        return -_softplus(m)
    if loss == "exponential":
        return -m
    raise ValueError(f"loss == {loss!r}, must be one of {LOSSES}.")


def neg_dloss(m, loss: str = "logistic"):
    """Minus the loss derivative, ``|l'(m)|`` (the stable sigmoid for the logistic loss).

    Args:
        m: Margins, numpy array or torch tensor of any shape.
        loss: ``"logistic"`` or ``"exponential"``.

    Returns:
        ``|l'(m)|``, same shape and type as ``m``, in [0, 1] for the logistic loss; it
        underflows to 0 for margins above about 745.
    """
    log_w = log_neg_dloss(m, loss)
    return torch.exp(log_w) if isinstance(log_w, torch.Tensor) else np.exp(log_w)


def loss_weights(m, loss: str = "logistic", *, log_mask=None):
    """Normalized derivative weights ``p_i = |l'(m_i)| / sum_j |l'(m_j)|`` along the last axis.

    This is the softmax of ``log|l'(m)|``: it stays exact when every ``|l'(m_i)|`` underflows,
    so ``sum_i p_i z_i`` keeps the direction of the gradient at any margin.

    Args:
        m: Margins, shape (..., n), numpy array or torch tensor.
        loss: ``"logistic"`` or ``"exponential"``.
        log_mask: Optional additive log-weights broadcast to ``m`` (use ``-inf`` to drop a
            sample); at least one entry per row must be finite.

    Returns:
        Weights, shape (..., n), non-negative, summing to 1 along the last axis.
    """
    log_w = log_neg_dloss(m, loss)
    if log_mask is not None:
        log_w = log_w + log_mask
    if isinstance(log_w, torch.Tensor):
        return torch.softmax(log_w, dim=-1)
    top = np.max(log_w, axis=-1, keepdims=True)
    w = np.exp(log_w - top)
    return w / np.sum(w, axis=-1, keepdims=True)
