"""Input validation helpers; each returns the checked (and converted) value.

Messages follow one form: ``"eta == -1.0, must be > 0."`` and
``"payoff must have shape (B, K, K), got (3, 4)."``. A wrong type raises ``TypeError``,
a wrong value ``ValueError``. Check once at public entry points, never in hot loops.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

__all__ = [
    "check_scalar",
    "check_array",
    "check_skew_symmetric",
    "check_simplex",
    "on_simplex",
    "check_eta",
    "as_generator",
]

_BOUND_CHOICES = ("both", "left", "right", "neither")


def check_scalar(
    x,
    name: str,
    target_type,
    *,
    min_val: float | None = None,
    max_val: float | None = None,
    include_boundaries: str = "both",
):
    """Check the type and range of a scalar parameter.

    Args:
        x: The value to check.
        name: Parameter name used in messages.
        target_type: A type or tuple of types (``numbers.Real``, ``numbers.Integral``, ...).
        min_val: Smallest allowed value, or None.
        max_val: Largest allowed value, or None.
        include_boundaries: Which bounds are closed: "both", "left", "right" or "neither".

    Returns:
        The value, unchanged.

    Raises:
        TypeError: If ``x`` is not an instance of ``target_type`` (bools are rejected for
            numeric types).
        ValueError: If ``x`` is NaN or outside the range.
    """
    if include_boundaries not in _BOUND_CHOICES:
        raise ValueError(
            f"include_boundaries == {include_boundaries!r}, must be one of {_BOUND_CHOICES}."
        )
    types = target_type if isinstance(target_type, tuple) else (target_type,)
    is_bool = isinstance(x, (bool, np.bool_))
    numeric_target = any(
        t in (numbers.Real, numbers.Integral, int, float, numbers.Number) for t in types
    )
    if not isinstance(x, types) or (is_bool and numeric_target and bool not in types):
        names = " or ".join(getattr(t, "__name__", str(t)) for t in types)
        raise TypeError(f"{name} must be an instance of {names}, not {type(x).__name__}.")
    if isinstance(x, numbers.Real) and not isinstance(x, numbers.Integral) and np.isnan(x):
        raise ValueError(f"{name} == nan, must be a number.")
    closed_left = include_boundaries in ("both", "left")
    closed_right = include_boundaries in ("both", "right")
    if min_val is not None:
        bad = x < min_val if closed_left else x <= min_val
        if bad:
            op = ">=" if closed_left else ">"
            raise ValueError(f"{name} == {x!r}, must be {op} {min_val}.")
    if max_val is not None:
        bad = x > max_val if closed_right else x >= max_val
        if bad:
            op = "<=" if closed_right else "<"
            raise ValueError(f"{name} == {x!r}, must be {op} {max_val}.")
    return x


def _shape_str(shape: Sequence) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def check_array(
    x,
    name: str,
    *,
    shape: Sequence | None = None,
    ndim: int | tuple[int, ...] | None = None,
    dtype=float,
    finite: bool = True,
    sizes: dict[str, int] | None = None,
) -> np.ndarray:
    """Convert to an array and check its shape, dtype and finiteness.

    Args:
        x: Array-like input.
        name: Parameter name used in messages.
        shape: Expected trailing shape; entries are ints, letters (named sizes that must be
            consistent, e.g. ``("K", "K")``) or ``None`` (anything). A leading ``"..."``
            allows arbitrary batch axes.
        ndim: Allowed number of dimensions (int or tuple), checked when ``shape`` is None.
        dtype: Target dtype (converted with ``np.asarray``); ``None`` keeps the input's.
        finite: Reject NaN and infinities.
        sizes: Named sizes already known (updated in place with newly bound letters).

    Returns:
        The converted array.

    Raises:
        TypeError: If ``x`` cannot be converted to ``dtype``.
        ValueError: On a shape mismatch or non-finite entries.
    """
    try:
        arr = np.asarray(x, dtype=dtype) if dtype is not None else np.asarray(x)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{name} must be array-like of {np.dtype(dtype).name}, got {type(x).__name__}."
        ) from err
    if arr.dtype == object:
        raise TypeError(f"{name} must be a numeric array, got dtype object.")
    if shape is not None:
        shape = tuple(shape)
        batch = len(shape) > 0 and shape[0] == "..."
        core = shape[1:] if batch else shape
        ok = arr.ndim >= len(core) if batch else arr.ndim == len(core)
        bound = dict(sizes) if sizes is not None else {}
        if ok:
            for want, got in zip(core, arr.shape[arr.ndim - len(core):]):
                if want is None:
                    continue
                if isinstance(want, str):
                    if want in bound and bound[want] != got:
                        ok = False
                        break
                    bound[want] = got
                elif want != got:
                    ok = False
                    break
        if not ok:
            raise ValueError(
                f"{name} must have shape {_shape_str(shape)}, got {_shape_str(arr.shape)}."
            )
        if sizes is not None:
            sizes.update(bound)
    elif ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            raise ValueError(f"{name} must have ndim in {allowed}, got {arr.ndim}.")
    if finite and np.issubdtype(arr.dtype, np.number) and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf).")
    return arr


def check_skew_symmetric(theta, name: str = "theta", *, tol: float = 1e-10) -> np.ndarray:
    """Check that square matrices are skew-symmetric.

    Args:
        theta: Matrices of shape (..., d, d).
        name: Parameter name used in messages.
        tol: Allowed ``max|theta + theta^T|`` relative to ``max(1, max|theta|)``.

    Returns:
        The array (float64).

    Raises:
        ValueError: If not square or not skew-symmetric.
    """
    arr = check_array(theta, name, shape=("...", "d", "d"))
    err = np.max(np.abs(arr + np.swapaxes(arr, -1, -2)), initial=0.0)
    scale = max(1.0, float(np.max(np.abs(arr), initial=0.0)))
    if err > tol * scale:
        raise ValueError(
            f"{name} must be skew-symmetric (theta^T == -theta), got max|theta + theta^T| == "
            f"{err:.3g}."
        )
    return arr


def on_simplex(p: np.ndarray, tol: float = 1e-8) -> bool:
    """Whether :func:`check_simplex` accepts the float array p (..., K), in fewer operations.

    The same tests on the same values: min(p) >= -tol (False for NaN and -inf) and
    max |sum(p) - 1| <= tol * K over the rows (False where a row holds +inf or NaN), so
    every entry is also finite. For callers that validate often and need the message only
    on failure.
    """
    if p.size == 0:
        return False
    sums = np.add.reduce(p, axis=-1)
    return bool(np.minimum.reduce(p, axis=None) >= -tol
                and np.maximum.reduce(np.abs(sums - 1.0), axis=None) <= tol * max(1, p.shape[-1]))


def check_simplex(p, name: str = "policy", *, tol: float = 1e-8, shape=None,
                  sizes: dict[str, int] | None = None) -> np.ndarray:
    """Check that vectors are probability distributions (last axis).

    Args:
        p: Array of shape (..., K).
        name: Parameter name used in messages.
        tol: Tolerance on negativity and on ``|sum - 1|``.
        shape: Optional shape spec passed to :func:`check_array` (default ``("...", "K")``).
        sizes: Named sizes shared with other checks.

    Returns:
        The array (float64).

    Raises:
        ValueError: If an entry is negative or a row does not sum to one.
    """
    arr = check_array(p, name, shape=shape if shape is not None else ("...", "K"), sizes=sizes)
    if arr.size and np.min(arr) < -tol:
        raise ValueError(
            f"{name} must lie on the probability simplex: entries must be >= 0, got "
            f"min == {np.min(arr):.3g}."
        )
    sums = arr.sum(axis=-1)
    if sums.size and np.max(np.abs(sums - 1.0)) > tol * max(1, arr.shape[-1]):
        raise ValueError(
            f"{name} must lie on the probability simplex: rows must sum to 1, got "
            f"sum == {float(np.ravel(sums)[np.argmax(np.abs(np.ravel(sums) - 1))]):.6g}."
        )
    return arr


def check_eta(eta, name: str = "eta") -> np.ndarray:
    """Check regularization strengths: scalars or arrays with every entry in (0, inf].

    Args:
        eta: A positive number (``float('inf')`` allowed) or an array of them.
        name: Parameter name used in messages.

    Returns:
        A float64 array (0-d for a scalar input).

    Raises:
        TypeError: If ``eta`` is not numeric.
        ValueError: If an entry is NaN or <= 0.
    """
    if isinstance(eta, (bool, np.bool_)):
        raise TypeError(f"{name} must be a real number, not bool.")
    arr = check_array(eta, name, dtype=float, finite=False)
    if np.any(np.isnan(arr)):
        raise ValueError(f"{name} == nan, must be > 0.")
    if np.any(arr <= 0):
        bad = float(np.ravel(arr)[np.argmax(np.ravel(arr) <= 0)])
        raise ValueError(f"{name} == {bad!r}, must be > 0 (use float('inf') for unregularized).")
    return arr


def as_generator(seed) -> np.random.Generator:
    """Convert a seed to a numpy Generator.

    Args:
        seed: None, a non-negative int, a ``np.random.SeedSequence`` or a Generator.

    Returns:
        A ``np.random.Generator``.

    Raises:
        TypeError: For other types.
        ValueError: For a negative int.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(
            f"seed must be None, an int or a numpy Generator, got {type(seed).__name__}: {seed!r}."
        )
    if seed < 0:
        raise ValueError(f"seed == {seed!r}, must be >= 0.")
    return np.random.default_rng(int(seed))
