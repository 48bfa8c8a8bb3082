"""Argument types shared by the benchmark scripts: counts are checked when parsed."""

from __future__ import annotations

import argparse


def at_least(low: int):
    """An argparse type: an integer >= ``low``, else a message naming the bound."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an integer >= {low}, got {value!r}") from None
        if number < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {number}")
        return number

    parse.__name__ = f"integer >= {low}"  # argparse names the type in some messages
    return parse


positive_int = at_least(1)  # run, seed, round, worker and repeat counts
non_negative_int = at_least(0)  # warm-up rounds
