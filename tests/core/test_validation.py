"""Tests for rlhf_gbpm._validation."""

import numbers

import numpy as np
import pytest

from rlhf_gbpm._validation import (
    as_generator,
    check_array,
    check_eta,
    check_scalar,
    check_simplex,
    check_skew_symmetric,
)


def test_check_scalar_messages():
    assert check_scalar(3, "K", numbers.Integral, min_val=2) == 3
    with pytest.raises(ValueError, match=r"^K == 1, must be >= 2\.$"):
        check_scalar(1, "K", numbers.Integral, min_val=2)
    with pytest.raises(ValueError, match=r"^eta == -1.0, must be > 0\.$"):
        check_scalar(-1.0, "eta", numbers.Real, min_val=0, include_boundaries="neither")
    with pytest.raises(TypeError, match="K must be an instance of Integral, not float"):
        check_scalar(2.0, "K", numbers.Integral)
    with pytest.raises(TypeError, match="not bool"):
        check_scalar(True, "K", numbers.Integral)
    with pytest.raises(ValueError, match="nan"):
        check_scalar(float("nan"), "x", numbers.Real)
    with pytest.raises(ValueError, match="x == 5, must be < 5"):
        check_scalar(5, "x", numbers.Real, max_val=5, include_boundaries="left")


def test_check_array_named_shapes():
    sizes = {}
    a = check_array(np.zeros((2, 3, 3)), "payoff", shape=("...", "K", "K"), sizes=sizes)
    assert sizes == {"K": 3} and a.dtype == float
    with pytest.raises(ValueError, match=r"payoff must have shape \(B, K, K\), got \(3, 4\)\."):
        check_array(np.zeros((3, 4)), "payoff", shape=("B", "K", "K"))
    with pytest.raises(ValueError, match=r"must have shape \(\.\.\., K, K\), got \(3, 4\)"):
        check_array(np.zeros((3, 4)), "payoff", shape=("...", "K", "K"))
    with pytest.raises(ValueError, match="finite"):
        check_array([1.0, np.inf], "x")
    with pytest.raises(TypeError):
        check_array(["a", "b"], "x")


def test_simplex_skew_eta_generator():
    check_simplex([0.2, 0.8], "p")
    with pytest.raises(ValueError, match="policy must lie on the probability simplex: entries"):
        check_simplex([-0.1, 1.1])
    with pytest.raises(ValueError, match="rows must sum to 1"):
        check_simplex([[0.5, 0.6]])
    with pytest.raises(ValueError, match="skew-symmetric"):
        check_skew_symmetric(np.eye(2))
    assert check_eta(float("inf")) == np.inf
    with pytest.raises(ValueError, match=r"eta == 0.0, must be > 0"):
        check_eta([1.0, 0.0])
    with pytest.raises(ValueError, match="nan"):
        check_eta(float("nan"))
    g = np.random.default_rng(0)
    assert as_generator(g) is g
    assert as_generator(3).integers(100) == np.random.default_rng(3).integers(100)
    with pytest.raises(ValueError, match="seed == -1"):
        as_generator(-1)
    with pytest.raises(TypeError, match="seed must be None"):
        as_generator(1.5)
