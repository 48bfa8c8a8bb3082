"""User-defined regularizers: from a cvxpy expression, from a torch function, or by subclassing.

Three routes, from least to most work for the user:

1. :class:`CvxpyRegularizer` — psi as a DCP cvxpy expression. Best responses are convex
   programs; gradients come from cvxpy's atom derivatives, and the SNE from the exact generic
   Newton method of ``rlhf_gbpm._sne_generic`` (certified by the dual gap).
2. :class:`TorchRegularizer` — psi as a differentiable torch function of p. Gradient and
   Hessian by autograd (``torch.func``); best response and SNE by the same exact Newton method.
3. A subclass of :class:`~rlhf_gbpm.regularizers.SeparableRegularizer` with a closed-form
   inverse gradient — the fast, batched path used by the built-ins.

All three give the same SNE for the same psi (tested on KL, l2 and Tsallis-1/2). Every call
into user code is wrapped: an exception, a NaN or a non-convex psi raises
:class:`~rlhf_gbpm.errors.RegularizerError` naming the regularizer.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable
from contextlib import nullcontext as _nullcontext
from dataclasses import dataclass, field

import numpy as np

from rlhf_gbpm._sne_generic import solve_vi
from rlhf_gbpm._validation import check_eta, check_scalar
from rlhf_gbpm.errors import RegularizerError, missing_dependency
from rlhf_gbpm.regularizers import Regularizer, _check_reference

__all__ = ["GenericRegularizer", "TorchRegularizer", "CvxpyRegularizer"]


@dataclass(frozen=True, eq=False, repr=False)
class GenericRegularizer(Regularizer):
    """A smooth strongly convex psi given by value and gradient (not necessarily separable).

    Subclasses implement :meth:`_value_one` and :meth:`_grad_one` for one policy of shape (K,)
    (and optionally :meth:`_hess_one`; the default is a central finite difference of the
    gradient). Best responses and equilibria use the exact generic Newton method.

    Attributes:
        reference: Reference policy passed to the user function, shape (K,), or None (uniform).
        declared_beta: The user's claimed beta (checked by
            :func:`rlhf_gbpm.strong_convexity.check_regularizer`), or None to estimate it.
        label: A name for messages and tables.
    """

    declared_beta: float | None = None
    label: str = "custom"

    @property
    def name(self) -> str:  # noqa: D102
        return self.label

    def __post_init__(self):
        object.__setattr__(self, "reference",
                           _check_reference(self.reference, self.label, positive=False))
        if self.declared_beta is not None:
            check_scalar(self.declared_beta, "beta", numbers.Real, min_val=0.0,
                         include_boundaries="neither")

    # --- user-facing hooks (one policy at a time) ---------------------------------------
    def _value_one(self, p: np.ndarray, rho: np.ndarray) -> float:
        raise NotImplementedError

    def _grad_one(self, p: np.ndarray, rho: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _hess_one(self, p: np.ndarray, rho: np.ndarray) -> np.ndarray:
        K = p.shape[0]
        h = 1e-6 * max(1e-3, float(np.min(p[p > 0]))) if np.any(p > 0) else 1e-9
        out = np.empty((K, K))
        for j in range(K):
            e = np.zeros(K)
            e[j] = h
            lo = p - e
            if lo[j] <= 0:  # one-sided difference at the boundary
                out[:, j] = (self._grad_checked(p + e, rho) - self._grad_checked(p, rho)) / h
            else:
                out[:, j] = (self._grad_checked(p + e, rho) - self._grad_checked(lo, rho)) / (2 * h)
        return 0.5 * (out + out.T)

    # --- wrapped calls ---------------------------------------------------------------------
    def _call(self, what: str, fn: Callable, p: np.ndarray, rho: np.ndarray):
        try:
            out = fn(p, rho)
        except RegularizerError:
            raise
        except Exception as err:  # noqa: BLE001 - user code: report it with context
            raise RegularizerError(
                f"regularizer {self.label!r} raised {type(err).__name__} in its {what} at "
                f"p = {np.array2string(p, precision=4)}: {err}"
            ) from err
        out = np.asarray(out, dtype=float)
        if np.any(np.isnan(out)):
            raise RegularizerError(
                f"regularizer {self.label!r} returned NaN in its {what} at "
                f"p = {np.array2string(p, precision=4)}."
            )
        return out

    def _value_checked(self, p, rho) -> float:
        return float(self._call("value", self._value_one, p, rho))

    def _grad_checked(self, p, rho) -> np.ndarray:
        zero = p <= 0.0
        if not np.any(zero):
            return self._call("gradient", self._grad_one, p, rho)
        # On a face of the simplex a Legendre psi (KL, Tsallis q < 1) has gradient -inf on the
        # zero coordinates; autograd reports that as NaN. Treat it as the barrier it is.
        try:
            with np.errstate(all="ignore"):
                g = np.asarray(self._grad_one(p, rho), dtype=float)
        except Exception:  # noqa: BLE001 - user code may refuse zeros: barrier there
            g = np.full(p.shape, np.nan)
        if np.any(np.isnan(g[~zero])):
            return self._call("gradient", self._grad_one, p, rho)  # raises with context
        return np.where(zero & ~np.isfinite(g), -np.inf, g)

    def _hess_checked(self, p, rho) -> np.ndarray:
        H = self._call("Hessian", self._hess_one, p, rho)
        return H

    # --- Regularizer API ---------------------------------------------------------------------
    def _flat(self, p):
        p = np.asarray(p, dtype=float)
        rho = self._ref_for(p)
        return p.reshape(-1, p.shape[-1]), np.ascontiguousarray(rho).reshape(-1, p.shape[-1])

    def value(self, p) -> np.ndarray:  # noqa: D102
        flat, rho = self._flat(p)
        out = np.array([self._value_checked(x, r) for x, r in zip(flat, rho)])
        return out.reshape(np.shape(p)[:-1])

    def grad(self, p) -> np.ndarray:  # noqa: D102
        flat, rho = self._flat(p)
        out = np.stack([self._grad_checked(x, r) for x, r in zip(flat, rho)])
        return out.reshape(np.shape(p))

    def hessian(self, p) -> np.ndarray:
        """Hessian of psi, shape (..., K, K)."""
        flat, rho = self._flat(p)
        out = np.stack([self._hess_checked(x, r) for x, r in zip(flat, rho)])
        return out.reshape(np.shape(p) + (np.shape(p)[-1],))

    def beta(self, K: int) -> float:  # noqa: D102
        if self.declared_beta is not None:
            return float(self.declared_beta)
        from rlhf_gbpm.strong_convexity import estimate_beta

        return estimate_beta(self, K).beta

    def _solve(self, A, c, eta, p0, tol, max_iter):
        """Batched loop over problems of the generic VI solver."""
        c = np.asarray(c, dtype=float)
        K = c.shape[-1]
        batch = c.shape[:-1]
        flat_c = c.reshape(-1, K)
        n = flat_c.shape[0]
        flat_A = None if A is None else np.broadcast_to(A, batch + (K, K)).reshape(n, K, K)
        rho = np.ascontiguousarray(self._ref_for(c)).reshape(n, K)
        eta = np.broadcast_to(np.asarray(eta, dtype=float), batch).reshape(n)
        p0 = rho if p0 is None else np.broadcast_to(p0, batch + (K,)).reshape(n, K)
        out = np.empty((n, K))
        ok = np.empty(n, dtype=bool)
        nit = np.empty(n, dtype=np.int64)
        for b in range(n):
            r = rho[b]
            try:
                out[b], ok[b], nit[b] = solve_vi(
                    None if flat_A is None else flat_A[b], flat_c[b], float(eta[b]),
                    lambda x, r=r: self._grad_checked(x, r),
                    lambda x, r=r: self._hess_checked(x, r),
                    np.array(p0[b], dtype=float), tol=tol, max_iter=max_iter)
            except np.linalg.LinAlgError as err:
                raise RegularizerError(
                    f"regularizer {self.label!r}: singular Newton system; is psi strictly "
                    f"convex on the simplex? ({err})"
                ) from err
        return out.reshape(batch + (K,)), ok.reshape(batch), nit.reshape(batch)

    def best_response(self, y, eta) -> np.ndarray:  # noqa: D102
        eta = check_eta(eta)
        y = np.asarray(y, dtype=float)
        q, _, _ = self._solve(None, y, eta, None, 1e-12, 100)
        return q

    def solve_sne_generic(self, A, eta, *, warm_start=None, tol: float = 1e-12,
                          max_iter: int = 100):
        """SNE by the generic Newton method (used by ``solve_sne`` for this class).

        Args:
            A: Skew payoffs, shape (..., K, K).
            eta: Strengths (0, inf), broadcast against the batch.
            warm_start: Optional starting policies, shape (..., K).
            tol: Natural-residual tolerance.
            max_iter: Newton iterations per continuation stage.

        Returns:
            (policies (..., K), converged (...), iterations (...)).
        """
        A = np.asarray(A, dtype=float)
        c = np.zeros(A.shape[:-1])
        return self._solve(A, c, eta, warm_start, tol, max_iter)

    def _params(self) -> dict:
        return {"declared_beta": self.declared_beta, "label": self.label}


def _arity(fn: Callable) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    return sum(1 for p in params if p.default is inspect.Parameter.empty
               and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


@dataclass(frozen=True, eq=False, repr=False)
class TorchRegularizer(GenericRegularizer):
    """psi from a differentiable torch function (route 2).

    Attributes:
        fn: ``fn(p)`` or ``fn(p, rho)`` mapping a float64 tensor of shape (K,) (and the
            reference, shape (K,)) to a scalar tensor. Gradient and Hessian come from
            ``torch.func``.

    Examples:
        >>> import torch
        >>> kl = TorchRegularizer(lambda p, rho: torch.sum(p * torch.log(p / rho)), label="kl")
    """

    fn: Callable = None
    _nargs: int = field(init=False, repr=False, default=1)

    def __post_init__(self):
        super().__post_init__()
        if not callable(self.fn):
            raise TypeError(f"fn must be callable, not {type(self.fn).__name__}.")
        object.__setattr__(self, "_nargs", _arity(self.fn))

    def _f(self, p, rho):
        return self.fn(p, rho) if self._nargs >= 2 else self.fn(p)

    def _torch(self, p, rho, what):
        import torch

        tp = torch.tensor(np.array(p, dtype=float), dtype=torch.float64)
        tr = torch.tensor(np.array(rho, dtype=float), dtype=torch.float64)
        if what == "value":
            out = self._f(tp, tr)
        elif what == "grad":
            out = torch.func.grad(self._f)(tp, tr)
        else:
            out = torch.func.hessian(self._f)(tp, tr)
        return out.detach().numpy()

    def _batched(self, p, what: str) -> np.ndarray:
        """Evaluate a flat batch with torch.func.vmap (None: use the checked loop)."""
        import torch

        flat, rho = self._flat(p)
        if np.any(flat <= 0):
            return None
        fn = self._f if what == "value" else torch.func.grad(self._f)
        try:
            with torch.no_grad() if what == "value" else _nullcontext():
                out = torch.func.vmap(fn)(torch.tensor(flat, dtype=torch.float64),
                                          torch.tensor(np.array(rho), dtype=torch.float64))
            out = out.detach().numpy()
        except Exception:  # noqa: BLE001 - user code: the checked loop reports it
            return None
        if np.any(np.isnan(out)):
            return None
        return out.reshape(np.shape(p)[:-1] + (() if what == "value" else np.shape(p)[-1:]))

    def value(self, p) -> np.ndarray:  # noqa: D102
        out = self._batched(p, "value")
        return super().value(p) if out is None else out

    def grad(self, p) -> np.ndarray:  # noqa: D102
        out = self._batched(p, "grad")
        return super().grad(p) if out is None else out

    def _value_one(self, p, rho):  # noqa: D102
        return self._torch(p, rho, "value")

    def _grad_one(self, p, rho):  # noqa: D102
        return self._torch(p, rho, "grad")

    def _hess_one(self, p, rho):  # noqa: D102
        return self._torch(p, rho, "hess")

    def _params(self) -> dict:
        return {**super()._params(), "fn": getattr(self.fn, "__name__", "fn")}

    def with_reference(self, reference) -> TorchRegularizer:  # noqa: D102
        return TorchRegularizer(fn=self.fn, reference=reference,
                                declared_beta=self.declared_beta, label=self.label)


@dataclass(frozen=True, eq=False, repr=False)
class CvxpyRegularizer(GenericRegularizer):
    """psi from a DCP cvxpy expression (route 1).

    Attributes:
        expr: ``expr(q)`` or ``expr(q, rho)`` building a convex scalar cvxpy expression of a
            cvxpy Variable ``q`` of shape (K,) (``rho`` is a numpy reference of shape (K,)).
            Best responses solve max <q, y> - psi(q)/eta over the simplex as a convex program
            (then polished by a few Newton steps on its KKT conditions); gradients come from
            cvxpy's atom derivatives.
        solver: cvxpy solver name for the best-response programs.

    Examples:
        >>> import cvxpy as cp
        >>> l2 = CvxpyRegularizer(lambda q, rho: 0.5 * cp.sum_squares(q - rho), label="l2")
    """

    expr: Callable = None
    solver: str = "CLARABEL"
    _cache: dict = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self):
        super().__post_init__()
        if not callable(self.expr):
            raise TypeError(f"expr must be callable, not {type(self.expr).__name__}.")

    def _cp(self):
        try:
            import cvxpy as cp
        except ImportError as err:  # pragma: no cover - cvxpy is a core dependency
            raise missing_dependency("cvxpy", "cvxpy") from err
        return cp

    def _compiled(self, rho: np.ndarray):
        key = (rho.shape[0], rho.tobytes())
        if key not in self._cache:
            cp = self._cp()
            q = cp.Variable(rho.shape[0], nonneg=True)
            try:
                e = self.expr(q, rho) if _arity(self.expr) >= 2 else self.expr(q)
            except Exception as err:  # noqa: BLE001 - user code
                raise RegularizerError(
                    f"regularizer {self.label!r}: building the cvxpy expression raised "
                    f"{type(err).__name__}: {err}"
                ) from err
            if not isinstance(e, cp.Expression) or e.size != 1:
                raise RegularizerError(
                    f"regularizer {self.label!r}: expr must return a scalar cvxpy expression, "
                    f"got {type(e).__name__}."
                )
            if not e.is_convex():
                raise RegularizerError(
                    f"regularizer {self.label!r}: the expression is not DCP-convex, so it "
                    "cannot define a strongly convex regularizer."
                )
            self._cache[key] = (q, e)
        return self._cache[key]

    def _value_one(self, p, rho):  # noqa: D102
        q, e = self._compiled(rho)
        q.value = np.maximum(p, 0.0)
        return float(np.asarray(e.value).reshape(()))

    def _grad_one(self, p, rho):  # noqa: D102
        q, e = self._compiled(rho)
        q.value = np.maximum(p, 0.0)
        g = e.grad[q]
        if g is None:
            return np.full(p.shape, -np.inf)  # outside the smooth domain (e.g. log at 0)
        g = g.toarray() if hasattr(g, "toarray") else np.asarray(g)
        return np.asarray(g, dtype=float).reshape(p.shape)

    def best_response(self, y, eta) -> np.ndarray:
        """Best responses by convex programs (one per problem).

        Args:
            y: Payoff vectors, shape (..., K).
            eta: Strength in (0, inf), scalar or broadcast to the batch.

        Returns:
            Policies, shape (..., K).
        """
        cp = self._cp()
        eta_arr = check_eta(eta)
        y = np.asarray(y, dtype=float)
        K = y.shape[-1]
        flat_y = y.reshape(-1, K)
        rho = np.ascontiguousarray(self._ref_for(y)).reshape(-1, K)
        etas = np.broadcast_to(eta_arr, y.shape[:-1]).reshape(-1)
        out = np.empty_like(flat_y)
        for b in range(flat_y.shape[0]):
            q, e = self._compiled(rho[b])
            prob = cp.Problem(cp.Maximize(flat_y[b] @ q - e / float(etas[b])), [cp.sum(q) == 1])
            try:
                prob.solve(solver=self.solver)
            except cp.error.SolverError as err:
                raise RegularizerError(
                    f"regularizer {self.label!r}: the best-response program failed: {err}"
                ) from err
            if q.value is None:
                raise RegularizerError(
                    f"regularizer {self.label!r}: the best-response program is {prob.status}."
                )
            v = np.maximum(q.value, 0.0)
            v /= v.sum()
            # polish the interior-point solution on the KKT conditions (exact gradients)
            r = rho[b]
            polished, ok, _ = solve_vi(None, flat_y[b], float(etas[b]),
                                       lambda x, r=r: self._grad_checked(x, r),
                                       lambda x, r=r: self._hess_checked(x, r),
                                       0.99 * v + 0.01 / K, tol=1e-12, max_iter=20,
                                       continuation=0.0)
            out[b] = polished if ok else v
        return out.reshape(y.shape)

    def _params(self) -> dict:
        return {**super()._params(), "expr": getattr(self.expr, "__name__", "expr")}

    def with_reference(self, reference) -> CvxpyRegularizer:  # noqa: D102
        return CvxpyRegularizer(expr=self.expr, reference=reference, solver=self.solver,
                                declared_beta=self.declared_beta, label=self.label)
