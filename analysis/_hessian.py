"""Sharpness: the top eigenvalues of a loss Hessian, from Hessian-vector products.

Three methods share one Hessian-vector product (double back-propagation through the loss):

* ``"exact"`` assembles the dense Hessian column by column (``p`` products) and calls
  ``eigvalsh``; use it for models with up to a few hundred parameters;
* ``"lanczos"`` runs ``scipy.sparse.linalg.eigsh`` (implicitly restarted Lanczos) on the product,
  as Cohen et al. (2021) do for the edge-of-stability measurements;
* ``"power"`` is plain power iteration; it converges to the eigenvalue of largest *magnitude*,
  which is the sharpness near a minimum (where the Hessian is close to positive semi-definite).

References:
    J. Cohen, S. Kaur, Y. Li, J. Z. Kolter, A. Talwalkar, *Gradient Descent on Neural Networks
    Typically Occurs at the Edge of Stability*, ICLR 2021, arXiv:2103.00065.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, eigsh

from rlhf_gbpm._validation import as_generator, check_scalar

__all__ = ["hessian_vector_product", "dense_hessian", "top_hessian_eigenvalues", "sharpness"]

_METHODS = ("exact", "lanczos", "power", "auto")


def hessian_vector_product(
    loss_fn: Callable[[], torch.Tensor], params: Sequence[torch.Tensor]
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Build ``v -> H v`` for the Hessian of ``loss_fn`` with respect to ``params``.

    The gradient graph is built once; each product is one extra backward pass.

    Args:
        loss_fn: Callable with no arguments returning the scalar loss; it must read ``params``.
        params: Tensors with ``requires_grad=True``; their total size is ``p``.

    Returns:
        A function mapping a flat vector of shape (p,) (same dtype as the parameters) to the
        flat product ``H v`` of shape (p,).
    """
    params = list(params)
    if not params or not all(p.requires_grad for p in params):
        raise ValueError("params must be a non-empty sequence of tensors with requires_grad.")
    with torch.enable_grad():
        loss = loss_fn()
        if loss.ndim != 0:
            raise ValueError(f"loss_fn must return a scalar, got shape {tuple(loss.shape)}.")
        grads = torch.autograd.grad(loss, params, create_graph=True)
    flat_grad = torch.cat([g.reshape(-1) for g in grads])
    size = flat_grad.numel()

    def hvp(vec: torch.Tensor) -> torch.Tensor:
        if vec.shape != (size,):
            raise ValueError(f"vec must have shape ({size},), got {tuple(vec.shape)}.")
        with torch.enable_grad():
            parts = torch.autograd.grad(flat_grad, params, grad_outputs=vec, retain_graph=True,
                                        allow_unused=True)
        return torch.cat([
            (torch.zeros_like(p) if h is None else h).reshape(-1)
            for p, h in zip(params, parts)
        ]).detach()

    hvp.size = size  # type: ignore[attr-defined]
    return hvp


def dense_hessian(loss_fn: Callable[[], torch.Tensor],
                  params: Sequence[torch.Tensor]) -> torch.Tensor:
    """Assemble the dense Hessian from ``p`` Hessian-vector products.

    Args:
        loss_fn: Callable with no arguments returning the scalar loss.
        params: Tensors with ``requires_grad=True`` of total size ``p``.

    Returns:
        Symmetrized Hessian, shape (p, p).
    """
    hvp = hessian_vector_product(loss_fn, params)
    ref = params[0]
    eye = torch.eye(hvp.size, dtype=ref.dtype, device=ref.device)
    cols = torch.stack([hvp(eye[i]) for i in range(hvp.size)], dim=1)
    return 0.5 * (cols + cols.T)


def top_hessian_eigenvalues(
    loss_fn: Callable[[], torch.Tensor],
    params: Sequence[torch.Tensor],
    k: int = 1,
    *,
    method: str = "auto",
    tol: float = 1e-10,
    max_iter: int = 1000,
    seed=0,
) -> np.ndarray:
    """Largest (algebraic) eigenvalues of the loss Hessian.

    Args:
        loss_fn: Callable with no arguments returning the scalar loss.
        params: Tensors with ``requires_grad=True`` of total size ``p``.
        k: Number of eigenvalues, >= 1 (``"power"`` supports only ``k == 1``; ``"lanczos"``
            needs ``k < p``).
        method: ``"exact"``, ``"lanczos"``, ``"power"`` or ``"auto"`` (exact when ``p <= 300``,
            Lanczos otherwise).
        tol: Relative tolerance of the iterative methods, > 0.
        max_iter: Iteration cap of the iterative methods, >= 1.
        seed: Seed of the random start vector.

    Returns:
        float64 array of shape (k,), descending.

    Raises:
        ValueError: On an unknown method or an out-of-range ``k``.
    """
    if method not in _METHODS:
        raise ValueError(f"method == {method!r}, must be one of {_METHODS}.")
    check_scalar(k, "k", numbers.Integral, min_val=1)
    check_scalar(tol, "tol", numbers.Real, min_val=0.0, include_boundaries="neither")
    check_scalar(max_iter, "max_iter", numbers.Integral, min_val=1)
    params = list(params)
    size = sum(p.numel() for p in params)
    if k > size:
        raise ValueError(f"k == {k}, must be <= the number of parameters {size}.")
    if method == "auto":
        method = "exact" if size <= 300 or k >= size else "lanczos"
    if method == "exact":
        hess = dense_hessian(loss_fn, params).detach().cpu().numpy().astype(np.float64)
        return np.linalg.eigvalsh(hess)[::-1][:k].copy()
    hvp = hessian_vector_product(loss_fn, params)
    ref = params[0]
    rng = as_generator(seed)
    start = rng.standard_normal(size)
    if method == "power":
        if k != 1:
            raise ValueError(f"k == {k}, must be 1 for method 'power'.")
        return np.array([_power_iteration(hvp, start, ref, tol, max_iter)])
    if k >= size:
        raise ValueError(f"k == {k}, must be < the number of parameters {size} for 'lanczos'.")

    def matvec(x: np.ndarray) -> np.ndarray:
        vec = torch.as_tensor(np.ravel(x), dtype=ref.dtype, device=ref.device)
        return hvp(vec).cpu().numpy().astype(np.float64)

    op = LinearOperator((size, size), matvec=matvec, dtype=np.float64)
    vals = eigsh(op, k=k, which="LA", v0=start, tol=tol, maxiter=max_iter,
                 return_eigenvectors=False)
    return np.sort(vals)[::-1].copy()


def _power_iteration(hvp, start: np.ndarray, ref: torch.Tensor, tol: float,
                     max_iter: int) -> float:
    vec = torch.as_tensor(start, dtype=ref.dtype, device=ref.device)
    vec = vec / torch.linalg.vector_norm(vec)
    value = 0.0
    for _ in range(max_iter):
        prod = hvp(vec)
        new_value = float(vec @ prod)
        norm = torch.linalg.vector_norm(prod)
        if float(norm) == 0.0:
            return 0.0
        vec = prod / norm
        if abs(new_value - value) <= tol * max(abs(new_value), 1e-300):
            return new_value
        value = new_value
    return value


def sharpness(
    loss_fn: Callable[[], torch.Tensor],
    params: Sequence[torch.Tensor],
    *,
    method: str = "auto",
    seed=0,
) -> float:
    """Sharpness ``lambda_max`` of the loss Hessian at the current parameters.

    Args:
        loss_fn: Callable with no arguments returning the scalar loss.
        params: Tensors with ``requires_grad=True``.
        method: See :func:`top_hessian_eigenvalues`.
        seed: Seed of the random start vector of the iterative methods.

    Returns:
        The top eigenvalue as a float.
    """
    return float(top_hessian_eigenvalues(loss_fn, params, 1, method=method, seed=seed)[0])
