"""Result objects shared by every solver family (SNE, MLE, design, LP)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["SolverResult", "STATUS_MESSAGES", "messages_for", "warn_unconverged"]

STATUS_MESSAGES: dict[int, str] = {
    0: "converged",
    1: "maximum number of iterations reached",
    2: "line search failed to decrease the residual",
    3: "stopped by callback",
    4: "numerical breakdown (non-finite values)",
    5: "solver reported failure",
}


def messages_for(status: np.ndarray) -> tuple[str, ...]:
    """Map status codes to their messages.

    Args:
        status: Integer codes, any shape.

    Returns:
        One message per entry, in C order.
    """
    return tuple(STATUS_MESSAGES.get(int(s), "unknown status") for s in np.ravel(status))


def warn_unconverged(solver: str, status: np.ndarray, *, tol: float, max_iter: int,
                     stacklevel: int = 3) -> None:
    """Warn (ConvergenceWarning) when some problems of a batch did not converge.

    Args:
        solver: Name used in the message, e.g. ``"fit_mle"``.
        status: Status codes of the batch (0 = converged), any shape.
        tol: The tolerance that was not reached.
        max_iter: The iteration budget.
        stacklevel: Passed to ``warnings.warn`` (3 points at the solver's caller).
    """
    from rlhf_gbpm.errors import ConvergenceWarning

    status = np.asarray(status)
    failed = int(np.sum(status != 0))
    if failed:
        warnings.warn(
            f"{solver}: {failed} of {status.size} problems did not reach tol == {tol} in "
            f"max_iter == {max_iter} iterations.",
            ConvergenceWarning,
            stacklevel=stacklevel,
        )


@dataclass(frozen=True)
class SolverResult:
    """Batch-first outcome of a solve.

    Attributes:
        x: Solution, shape (*batch, ...).
        success: Whether each problem converged, bool of shape batch.
        status: Status code per problem (0 = converged), int of shape batch.
        message: One message per problem, from ``STATUS_MESSAGES``.
        nit: Iterations used per problem, int of shape batch.
    """

    x: np.ndarray
    success: np.ndarray
    status: np.ndarray
    message: tuple[str, ...]
    nit: np.ndarray

    @property
    def converged(self) -> np.ndarray:
        """Alias of ``success`` (bool, shape batch)."""
        return self.success
