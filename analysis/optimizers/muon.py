"""Orthogonalized-update optimizers: exact spectral gradient descent (SpecGD) and Muon.

Both replace a matrix gradient ``G = U diag(s) V^T`` by (an approximation of) its polar factor
``U V^T`` before the step, so every singular direction moves at the same speed:

* :class:`SpecGD` uses the exact polar factor from an SVD (optionally the smoothed operator
  ``s -> s / sqrt(s^2 + beta)``, which recovers the polar factor as ``beta -> 0``);
* :class:`Muon` applies (Nesterov) momentum and then five quintic Newton-Schulz iterations, which
  map the singular values into roughly [0.5, 1.5] instead of exactly 1.

Parameters with more than two axes are flattened to ``(shape[0], -1)``; a vector of shape
``(n,)`` is treated as the row matrix ``(1, n)``, whose polar factor is ``g / ||g||``.

References:
    Kang, Yun, Shin, Cho, Yun, *Uniform Spectral Growth and Convergence of Muon in LoRA-Style
    Matrix Factorization*, arXiv:2602.06385, 2026.
    K. Jordan et al., *Muon: An optimizer for hidden layers in neural networks*, 2024,
    https://kellerjordan.github.io/posts/muon/.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable

import torch

from rlhf_gbpm._validation import check_scalar

__all__ = ["Muon", "SpecGD", "newton_schulz", "polar"]

# quintic Newton-Schulz coefficients of the reference Muon implementation
_NS_COEFFS = (3.4445, -4.7750, 2.0315)


def polar(grad: torch.Tensor, *, beta: float = 0.0, rel_tol: float = 1e-12) -> torch.Tensor:
    """Polar factor ``U V^T`` of matrices (exact, via SVD), or its smoothed version.

    Args:
        grad: Matrices, shape (..., m, n); leading axes are independent problems.
        beta: Smoothing, >= 0. With ``beta == 0`` every singular value above
            ``rel_tol * s_max`` becomes 1 and the others 0; with ``beta > 0`` each singular value
            ``s`` becomes ``s / sqrt(s^2 + beta)``.
        rel_tol: Relative threshold, in [0, 1), below which a singular value counts as zero
            (exact polar only). It keeps rounding noise from being blown up to unit size.

    Returns:
        Tensor of shape (..., m, n). ``polar(0) == 0``.
    """
    check_scalar(beta, "beta", numbers.Real, min_val=0.0, max_val=math.inf,
                 include_boundaries="left")
    check_scalar(rel_tol, "rel_tol", numbers.Real, min_val=0.0, max_val=1.0,
                 include_boundaries="left")
    if grad.ndim < 2:
        raise ValueError(f"grad must have shape (..., m, n), got {tuple(grad.shape)}.")
    u, s, vh = torch.linalg.svd(grad, full_matrices=False)
    if beta > 0:
        scale = s / torch.sqrt(s * s + beta)
    else:
        s_max = s.amax(dim=-1, keepdim=True)
        scale = ((s > rel_tol * s_max) & (s > 0)).to(grad.dtype)
    return (u * scale.unsqueeze(-2)) @ vh


def newton_schulz(grad: torch.Tensor, steps: int = 5, *, eps: float = 1e-7) -> torch.Tensor:
    """Approximate polar factor by quintic Newton-Schulz iterations (Muon's ``NS5``).

    The input is scaled to unit Frobenius norm, then ``X <- a X + (b A + c A^2) X`` with
    ``A = X X^T`` and ``(a, b, c) = (3.4445, -4.7750, 2.0315)`` is applied ``steps`` times (on
    the wide orientation of the matrix).

    Args:
        grad: Matrices, shape (..., m, n).
        steps: Number of iterations, >= 0.
        eps: Added to the Frobenius norm before scaling, > 0.

    Returns:
        Tensor of shape (..., m, n) whose singular values lie roughly in [0.5, 1.5] (exactly the
        same singular vectors as ``grad``).
    """
    check_scalar(steps, "steps", numbers.Integral, min_val=0)
    check_scalar(eps, "eps", numbers.Real, min_val=0.0, include_boundaries="neither")
    if grad.ndim < 2:
        raise ValueError(f"grad must have shape (..., m, n), got {tuple(grad.shape)}.")
    a, b, c = _NS_COEFFS
    tall = grad.shape[-2] > grad.shape[-1]
    x = grad.mT if tall else grad
    x = x / (torch.linalg.matrix_norm(x, keepdim=True) + eps)
    for _ in range(steps):
        gram = x @ x.mT
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.mT if tall else x


def _as_matrix(t: torch.Tensor) -> torch.Tensor:
    if t.ndim == 0:
        raise ValueError("orthogonalized optimizers need parameters with at least one axis.")
    if t.ndim == 1:
        return t.unsqueeze(0)
    return t.reshape(t.shape[0], -1)


class SpecGD(torch.optim.Optimizer):
    """Spectral gradient descent: ``W <- (1 - lr * wd) W - lr * polar(grad)``.

    Each parameter is orthogonalized on its own (for a factorization ``A B`` the two factors get
    separate polar factors). With ``beta > 0`` the smoothed operator ``s / sqrt(s^2 + beta)`` is
    used instead of the exact polar factor.

    Args:
        params: Parameters or parameter groups.
        lr: Step size, > 0.
        beta: Smoothing of the orthogonalization, >= 0 (0: exact polar factor).
        weight_decay: Decoupled weight decay, >= 0.
        rel_tol: Relative singular-value threshold of the exact polar factor, in [0, 1).

    Examples:
        >>> w = torch.nn.Parameter(torch.zeros(3, 2, dtype=torch.float64))
        >>> opt = SpecGD([w], lr=0.1)
        >>> w.grad = torch.tensor([[3.0, 0.0], [0.0, 0.5], [0.0, 0.0]], dtype=torch.float64)
        >>> _ = opt.step()
        >>> w.data.diagonal().tolist()
        [-0.1, -0.1]
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 0.01,
        *,
        beta: float = 0.0,
        weight_decay: float = 0.0,
        rel_tol: float = 1e-12,
    ):
        check_scalar(lr, "lr", numbers.Real, min_val=0.0, max_val=math.inf,
                     include_boundaries="neither")
        check_scalar(beta, "beta", numbers.Real, min_val=0.0, max_val=math.inf,
                     include_boundaries="left")
        check_scalar(weight_decay, "weight_decay", numbers.Real, min_val=0.0, max_val=math.inf,
                     include_boundaries="left")
        check_scalar(rel_tol, "rel_tol", numbers.Real, min_val=0.0, max_val=1.0,
                     include_boundaries="left")
        defaults = {"lr": lr, "beta": beta, "weight_decay": weight_decay, "rel_tol": rel_tol}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None):
        """Take one step.

        Args:
            closure: Optional callable that re-evaluates the model and returns the loss.

        Returns:
            The loss returned by ``closure``, or None.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = _as_matrix(p.grad)
                direction = polar(g, beta=group["beta"], rel_tol=group["rel_tol"])
                if group["weight_decay"] != 0:
                    p.mul_(1.0 - group["lr"] * group["weight_decay"])
                p.add_(direction.reshape(p.shape), alpha=-group["lr"])
        return loss


class Muon(torch.optim.Optimizer):
    """Muon: momentum, then Newton-Schulz orthogonalization of the update.

    Per parameter, with gradient ``G`` and buffer ``M`` (zero at start)::

        M <- momentum * M + (1 - momentum) * G
        U <- G + momentum * (M - G)   if nesterov else M
        O <- NS(U) * (max(1, rows / cols) ** 0.5 if shape_scale else 1)
        W <- (1 - lr * weight_decay) * W - lr * O

    Args:
        params: Parameters or parameter groups.
        lr: Step size, > 0.
        momentum: Momentum coefficient, in [0, 1).
        nesterov: Use the Nesterov look-ahead direction.
        ns_steps: Newton-Schulz iterations, >= 1.
        weight_decay: Decoupled weight decay, >= 0.
        shape_scale: Multiply by ``sqrt(max(1, rows / cols))`` as the reference code does. Off
            by default: in a factorization it gives the tall factor a larger step.
        exact: Use the exact polar factor (SVD) instead of Newton-Schulz.

    Examples:
        >>> w = torch.nn.Parameter(torch.zeros(2, 2, dtype=torch.float64))
        >>> opt = Muon([w], lr=0.1, momentum=0.0)
        >>> w.grad = torch.eye(2, dtype=torch.float64)
        >>> _ = opt.step()
        >>> bool(torch.all(w.diagonal() < -0.05))
        True
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 0.02,
        momentum: float = 0.95,
        *,
        nesterov: bool = True,
        ns_steps: int = 5,
        weight_decay: float = 0.0,
        shape_scale: bool = False,
        exact: bool = False,
    ):
        check_scalar(lr, "lr", numbers.Real, min_val=0.0, max_val=math.inf,
                     include_boundaries="neither")
        check_scalar(momentum, "momentum", numbers.Real, min_val=0.0, max_val=1.0,
                     include_boundaries="left")
        check_scalar(nesterov, "nesterov", bool)
        check_scalar(ns_steps, "ns_steps", numbers.Integral, min_val=1)
        check_scalar(weight_decay, "weight_decay", numbers.Real, min_val=0.0, max_val=math.inf,
                     include_boundaries="left")
        check_scalar(shape_scale, "shape_scale", bool)
        check_scalar(exact, "exact", bool)
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "nesterov": nesterov,
            "ns_steps": ns_steps,
            "weight_decay": weight_decay,
            "shape_scale": shape_scale,
            "exact": exact,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None):
        """Take one step.

        Args:
            closure: Optional callable that re-evaluates the model and returns the loss.

        Returns:
            The loss returned by ``closure``, or None.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta = group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = _as_matrix(p.grad)
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(g)
                buf = state["momentum_buffer"]
                buf.lerp_(g, 1.0 - beta)
                update = g.lerp(buf, beta) if group["nesterov"] else buf
                if group["exact"]:
                    ortho = polar(update)
                else:
                    ortho = newton_schulz(update, group["ns_steps"])
                if group["shape_scale"]:
                    ortho = ortho * max(1.0, g.shape[0] / g.shape[1]) ** 0.5
                if group["weight_decay"] != 0:
                    p.mul_(1.0 - group["lr"] * group["weight_decay"])
                p.add_(ortho.reshape(p.shape), alpha=-group["lr"])
        return loss
