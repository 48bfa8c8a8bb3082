"""Argument types shared by the benchmark scripts: counts are checked when parsed."""

from __future__ import annotations

import argparse


def positive_int(value: str) -> int:
    """An integer >= 1 (run, seed, round, worker and repeat counts)."""
    return _bounded_int(value, 1)


def non_negative_int(value: str) -> int:
    """An integer >= 0 (warm-up rounds)."""
    return _bounded_int(value, 0)


def _bounded_int(value: str, low: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value!r}") from None
    if number < low:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {number}")
    return number
