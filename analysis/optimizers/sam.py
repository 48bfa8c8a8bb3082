"""Sharpness-aware minimization (Foret et al., 2021) wrapping any base optimizer.

One SAM step at parameters ``w`` with gradient ``g = grad L(w)``:

1. perturb ``w <- w + e`` with
   ``e = rho * g / ||g||_2`` (``norm="l2"``), ``e = rho * sign(g)`` (``norm="linf"``, the
   maximizer of the linearized loss over the l-infinity ball) or ``e = rho * g``
   (``norm="none"``, unnormalized SAM or USAM);
2. recompute the gradient at ``w + e``, restore ``w`` and let the base optimizer step with that
   gradient. With ``torch.optim.SGD`` this is ``w <- w - lr * grad L(w + e)``.

The l2 norm is taken over all parameters of a parameter group (a single group reproduces
Foret et al.). ``batch_dims=k`` treats the first ``k`` axes of every parameter in the group as
independent problems, each normalized on its own, so many runs can share one tensor. Each group
may set its own ``rho`` and ``norm`` (``rho=0`` gives the base optimizer).

References:
    P. Foret, A. Kleiner, H. Mobahi, B. Neyshabur, "Sharpness-Aware Minimization for
    Efficiently Improving Generalization", ICLR 2021 (arXiv:2010.01412).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable

import torch

from rlhf_gbpm._validation import check_scalar

__all__ = ["SAM", "SAM_NORMS"]

SAM_NORMS: tuple[str, ...] = ("l2", "linf", "none")

# smallest l2 norm treated as non-zero; a zero gradient gives a zero perturbation
_TINY = 1e-300


def _check_group(rho, norm, batch_dims):
    check_scalar(rho, "rho", numbers.Real, min_val=0.0, max_val=math.inf,
                 include_boundaries="left")
    if norm not in SAM_NORMS:
        raise ValueError(f"norm == {norm!r}, must be one of {SAM_NORMS}.")
    check_scalar(batch_dims, "batch_dims", numbers.Integral, min_val=0)


class SAM(torch.optim.Optimizer):
    """SAM with l2, l-infinity or unnormalized perturbations around a base optimizer.

    Args:
        params: Parameters or parameter groups (groups may override ``rho``, ``norm``,
            ``batch_dims`` and base-optimizer options).
        base_optimizer: A ``torch.optim.Optimizer`` subclass, built on the same groups.
        rho: Perturbation radius, >= 0.
        norm: ``"l2"``, ``"linf"`` or ``"none"`` (USAM).
        batch_dims: Number of leading axes that index independent problems, >= 0.
        **base_kwargs: Options of the base optimizer (e.g. ``lr``).

    Examples:
        >>> w = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
        >>> opt = SAM([w], torch.optim.SGD, rho=0.5, lr=0.1)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = 0.5 * (w ** 2).sum()
        ...     loss.backward()
        ...     return loss
        >>> _ = opt.step(closure)  # gradient at w + 0.5 * w / 5 = 1.1 * w
        >>> w.detach()
        tensor([2.6700, 3.5600])
    """

    def __init__(
        self,
        params: Iterable,
        base_optimizer: type[torch.optim.Optimizer] = torch.optim.SGD,
        rho: float = 0.05,
        *,
        norm: str = "l2",
        batch_dims: int = 0,
        **base_kwargs,
    ):
        if not (isinstance(base_optimizer, type)
                and issubclass(base_optimizer, torch.optim.Optimizer)):
            raise TypeError(
                "base_optimizer must be a torch.optim.Optimizer subclass, not "
                f"{type(base_optimizer).__name__}."
            )
        _check_group(rho, norm, batch_dims)
        defaults = {"rho": rho, "norm": norm, "batch_dims": batch_dims, **base_kwargs}
        super().__init__(params, defaults)
        for group in self.param_groups:
            _check_group(group["rho"], group["norm"], group["batch_dims"])
        self.base_optimizer = base_optimizer(self.param_groups, **base_kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.base_optimizer.state = self.state  # one state dict: state_dict() saves both
        self.defaults.update(self.base_optimizer.defaults)

    def _perturbations(self, group) -> list[torch.Tensor | None]:
        params = group["params"]
        rho, norm, k = group["rho"], group["norm"], group["batch_dims"]
        grads = [p.grad for p in params]
        if norm == "linf":
            return [None if g is None else rho * torch.sign(g) for g in grads]
        if norm == "none":
            return [None if g is None else rho * g for g in grads]
        sq = None
        for g in grads:
            if g is None:
                continue
            part = (g * g).sum(dim=tuple(range(k, g.dim()))) if g.dim() > k else g * g
            sq = part if sq is None else sq + part
        if sq is None:
            return [None] * len(params)
        scale = rho / torch.sqrt(sq).clamp_min(_TINY)
        return [None if g is None else g * scale.reshape(scale.shape + (1,) * (g.dim() - k))
                for g in grads]

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        """Take one SAM step.

        Args:
            closure: Callable that zeroes the gradients, evaluates the loss at the current
                parameters, calls ``backward()`` and returns the loss. Required: it is called
                twice (at ``w`` and at ``w + e``).

        Returns:
            The loss at the unperturbed parameters (first closure call).

        Raises:
            ValueError: If ``closure`` is None.
        """
        if closure is None:
            raise ValueError("SAM.step needs a closure that recomputes the loss and gradients.")
        with torch.enable_grad():
            loss = closure()
        offsets = []
        for group in self.param_groups:
            eps = self._perturbations(group) if group["rho"] > 0 else [None] * len(
                group["params"])
            for p, e in zip(group["params"], eps):
                if e is not None:
                    p.add_(e)
                    offsets.append((p, e))
        if offsets:
            self.zero_grad(set_to_none=False)
            with torch.enable_grad():
                closure()
            for p, e in offsets:
                p.sub_(e)
        self.base_optimizer.step()
        return loss

    def load_state_dict(self, state_dict):
        """Load the state and re-share the groups and state with the base optimizer."""
        super().load_state_dict(state_dict)
        self.base_optimizer.param_groups = self.param_groups
        self.base_optimizer.state = self.state
