"""The benchmark scripts refuse bad counts when their arguments are parsed.

A count of zero used to reach the sweep benchmark's extrapolation and fail there with a numpy
traceback after the whole batched sweep had run; now argparse stops it at once (exit 2).
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

_BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _cli():
    spec = importlib.util.spec_from_file_location("_bench_cli", _BENCH / "_cli.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("text, expected", [("1", 1), ("20", 20), ("10000", 10000)])
def test_positive_int_accepts_counts(text, expected):
    assert _cli().positive_int(text) == expected


@pytest.mark.parametrize("text", ["0", "-3", "x", "2.5", ""])
def test_positive_int_refuses_the_rest(text):
    with pytest.raises(argparse.ArgumentTypeError, match="integer >= 1"):
        _cli().positive_int(text)


def test_non_negative_int_accepts_zero_and_refuses_negatives():
    cli = _cli()
    assert cli.non_negative_int("0") == 0
    with pytest.raises(argparse.ArgumentTypeError, match="integer >= 0, got -1"):
        cli.non_negative_int("-1")


@pytest.mark.parametrize("script, args, message", [
    ("bench_sweep.py", ["--ref-seeds", "0"], "--ref-seeds: expected an integer >= 1, got 0"),
    ("bench_sweep.py", ["--ref-T", "5"], "--ref-T: expected an integer >= 10"),
    ("bench_equilibrium.py", ["--repeat", "0"], "--repeat: expected an integer >= 1, got 0"),
    ("bench_vector_env.py", ["--steps", "-3"], "--steps: expected an integer >= 1, got -3"),
])
def test_scripts_stop_before_running(script, args, message):
    proc = subprocess.run([sys.executable, str(_BENCH / script), *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert message in proc.stderr
