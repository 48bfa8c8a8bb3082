"""Counter-based random numbers: u = hash(key, counter, stream), vectorized over runs.

A run's random stream depends only on its own key, never on which other runs share its
batch. This makes run i of a vector env (or of a batched agent) bit-identical to a single
run with the same seed, results independent of the number of workers, and common random
numbers across agents trivial. The hash is SplitMix64's finalizer applied twice.
"""

from __future__ import annotations

import numpy as np

__all__ = ["counter_uniform", "counter_normal", "key_from_generator", "stream_state",
           "uniform_from_state", "MASK53"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_STREAM = np.uint64(0xD1B54A32D192ED03)
MASK53 = float(2.0**-53)
_TWO64 = 2**64
_GOLDEN_INT, _M2_INT = int(_GOLDEN), int(_M2)


_SHIFT11, _SHIFT27, _SHIFT30, _SHIFT31 = (np.uint64(n) for n in (11, 27, 30, 31))


def _mix(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> _SHIFT30)
    x = x * _M1
    x = x ^ (x >> _SHIFT27)
    x = x * _M2
    return x ^ (x >> _SHIFT31)


def stream_state(key, stream: int = 0) -> np.ndarray:
    """The first half of the hash, which depends on (key, stream) only.

    A caller that draws many counters from fixed keys computes this once and passes it to
    :func:`uniform_from_state`; ``uniform_from_state(stream_state(k, s), c)`` is
    ``counter_uniform(k, c, s)`` bit for bit.

    Args:
        key: Per-run keys, uint64-compatible array of shape (B,) or scalar.
        stream: Stream id, scalar or broadcastable array.

    Returns:
        uint64 array of the broadcast shape of ``key`` and ``stream``.
    """
    with np.errstate(over="ignore"):
        k = np.asarray(key, dtype=np.uint64)
        s = np.asarray(stream, dtype=np.uint64)
        return _mix(k * _GOLDEN + s * _STREAM)


def _counter_half(counter) -> np.uint64 | None:
    """The counter's half of the hash, c * GOLDEN + M2 mod 2^64, for an int c in [0, 2^64).

    None for anything else (arrays, negative or too large values). Python-int arithmetic:
    the same value as the uint64 one, without numpy's scalar overflow checks.
    """
    if isinstance(counter, (int, np.integer)) and 0 <= counter < _TWO64:
        return np.uint64((int(counter) * _GOLDEN_INT + _M2_INT) % _TWO64)
    return None


def uniform_from_state(state: np.ndarray, counter) -> np.ndarray:
    """Uniforms in [0, 1) from a :func:`stream_state` and counters (the second half).

    Args:
        state: uint64 array from :func:`stream_state`.
        counter: Counters, broadcast against ``state``.

    Returns:
        float64 array of the broadcast shape, entries in [0, 1), 53-bit resolution.
    """
    half = _counter_half(counter) if state.ndim else None
    if half is not None:  # array arithmetic wraps around without overflow checks
        x = _mix(state ^ half)
    elif state.ndim and isinstance(counter, np.ndarray) and counter.ndim and (
            counter.dtype == np.uint64):
        x = _mix(state ^ (counter * _GOLDEN + _M2))
    else:  # scalars: numpy checks their overflow
        with np.errstate(over="ignore"):
            c = np.asarray(counter, dtype=np.uint64)
            x = _mix(state ^ (c * _GOLDEN + _M2))
    return (x >> _SHIFT11).astype(np.float64) * MASK53


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
    return uniform_from_state(stream_state(key, stream), counter)


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
