"""Counter-based random numbers: u = hash(key, counter, stream), vectorized over runs.

A run's random stream depends only on its own key, never on which other runs share its
batch. This makes run i of a vector env (or of a batched agent) bit-identical to a single
run with the same seed, results independent of the number of workers, and common random
numbers across agents trivial. The hash is SplitMix64's finalizer applied twice.
"""

from __future__ import annotations

import numpy as np

__all__ = ["counter_uniform", "counter_normal", "key_from_generator", "MASK53"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_STREAM = np.uint64(0xD1B54A32D192ED03)
MASK53 = float(2.0**-53)


def _mix(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def counter_uniform(key, counter, stream: int = 0) -> np.ndarray:
    """Uniform numbers in [0, 1) from (key, counter, stream).

    Args:
        key: Per-run keys, uint64-compatible array of shape (B,) or scalar.
        counter: Counters (e.g. the round index), broadcast against ``key``.
        stream: Small integer naming the use (action of player 1, noise, context, ...),
            scalar or broadcastable array.

    Returns:
        float64 array of the broadcast shape, entries in [0, 1), 53-bit resolution.
    """
    with np.errstate(over="ignore"):
        k = np.asarray(key, dtype=np.uint64)
        c = np.asarray(counter, dtype=np.uint64)
        s = np.asarray(stream, dtype=np.uint64)
        x = _mix(k * _GOLDEN + s * _STREAM)
        x = _mix(x ^ (c * _GOLDEN + _M2))
    return (x >> np.uint64(11)).astype(np.float64) * MASK53


def counter_normal(key, counter, stream: int = 0) -> np.ndarray:
    """Standard normal numbers from (key, counter, stream) by the inverse CDF.

    Args:
        key: Per-run keys, shape broadcastable with ``counter``.
        counter: Counters.
        stream: Stream id.

    Returns:
        float64 array of the broadcast shape.
    """
    from scipy.special import ndtri

    u = counter_uniform(key, counter, stream)
    return ndtri(np.clip(u, MASK53, 1.0 - MASK53))


def key_from_generator(rng: np.random.Generator, size=None) -> np.ndarray:
    """Draw uint64 keys from a numpy Generator.

    Args:
        rng: Source generator (e.g. an env's ``np_random``).
        size: Output shape, or None for a scalar.

    Returns:
        uint64 keys.
    """
    return rng.integers(0, 2**63 - 1, size=size, dtype=np.int64, endpoint=False).astype(np.uint64)
