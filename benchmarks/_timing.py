"""Repeated timings shared by the benchmark scripts: run a function several times, report the
median with its range."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def timed(fn: Callable, repeats: int, clock: Callable[[], float] = time.process_time):
    """Run ``fn`` ``repeats`` times.

    Returns:
        (the last value, median, min and max of the times in seconds).
    """
    times = np.empty(repeats)
    value = None
    for r in range(repeats):
        start = clock()
        value = fn()
        times[r] = clock() - start
    return value, float(np.median(times)), float(times.min()), float(times.max())


def spread(values, fmt: str = ".1f") -> str:
    """Median of repeated measurements with their range, e.g. ``26.1 (25.8-27.0)``."""
    values = np.asarray(values, dtype=float)
    if values.size == 1:
        return f"{values[0]:{fmt}}"
    return f"{np.median(values):{fmt}} ({np.min(values):{fmt}}-{np.max(values):{fmt}})"
