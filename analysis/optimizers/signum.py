"""Signum and signSGD (Bernstein et al., 2018) as a ``torch.optim.Optimizer``.

Update per parameter, with gradient ``g``:

    ``m <- momentum * m + (1 - momentum) * g``,  ``p <- p - lr * sign(m)``  (``m`` starts at 0).

``momentum == 0`` is signSGD (``p <- p - lr * sign(g)``). Optional decoupled weight decay
shrinks ``p`` by ``lr * weight_decay * p`` before the sign step.

References:
    J. Bernstein, Y.-X. Wang, K. Azizzadenesheli, A. Anandkumar, "signSGD: Compressed
    Optimisation for Non-Convex Problems", ICML 2018 (arXiv:1802.04434).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable

import torch

from rlhf_gbpm._validation import check_scalar

__all__ = ["Signum"]


class Signum(torch.optim.Optimizer):
    """Sign of the (momentum-averaged) gradient; ``momentum=0`` gives signSGD.

    Args:
        params: Parameters or parameter groups.
        lr: Step size, > 0.
        momentum: Averaging factor of the gradient, in [0, 1).
        weight_decay: Decoupled weight decay, >= 0.

    Examples:
        >>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        >>> opt = Signum([w], lr=0.1, momentum=0.0)
        >>> w.grad = torch.tensor([3.0, -0.5])
        >>> _ = opt.step()
        >>> w.detach()
        tensor([ 0.9000, -1.9000])
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        momentum: float = 0.9,
        *,
        weight_decay: float = 0.0,
    ):
        check_scalar(lr, "lr", numbers.Real, min_val=0.0, max_val=math.inf,
                     include_boundaries="neither")
        check_scalar(momentum, "momentum", numbers.Real, min_val=0.0, max_val=1.0,
                     include_boundaries="left")
        check_scalar(weight_decay, "weight_decay", numbers.Real, min_val=0.0, max_val=math.inf,
                     include_boundaries="left")
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        """Take one step.

        Args:
            closure: Optional callable that re-evaluates the model and returns the loss.

        Returns:
            The closure's loss, or None.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, beta, wd = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if beta > 0:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = torch.zeros_like(p)
                    buf = state["momentum_buffer"]
                    buf.mul_(beta).add_(p.grad, alpha=1.0 - beta)
                    direction = torch.sign(buf)
                else:
                    direction = torch.sign(p.grad)
                if wd > 0:
                    p.mul_(1.0 - lr * wd)
                p.add_(direction, alpha=-lr)
        return loss
