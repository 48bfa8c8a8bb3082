"""Hypothesis fuzz tests of the regularized-game identities (the checks of tools/fuzz.py).

Each example draws a game (K, d, rank, S, link), a regularizer (every built-in; Tsallis with a
random q; random, tiny-entry or no reference), eta in [1e-4, 1e5] and random policies, and
requires J(p, q) + J(q, p) = 1, DGap(SNE) <= 1e-9, DGap >= 0 with the strong-convexity lower
bound, DGap equal to its definition through the best response, best-response optimality
against vertices, random policies and small feasible moves, and no NaN/inf. The same checks
run 10,000 times in ``tools/fuzz.py`` (result in docs/reliability.md).
"""

from __future__ import annotations

import numpy as np
import pytest
from _reliability_helpers import load_tool
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlhf_gbpm.regularizers import KLRegularizer

fuzz = load_tool("fuzz")

SETTINGS = settings(max_examples=80, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def cases(draw):
    K = draw(st.integers(2, 40))
    d = draw(st.integers(2, 16))
    rank = draw(st.integers(1, d // 2))
    link = draw(st.sampled_from(["logistic", "probit", "linear"]))
    S = draw(st.floats(0.05, 1.0) if link == "linear" else st.floats(0.1, 50.0))
    name = draw(st.sampled_from(fuzz.REGULARIZERS))
    q = draw(st.one_of(st.floats(0.05, 0.95), st.floats(1.05, 2.0)))
    reference = draw(st.sampled_from(["dirichlet", "tiny", "none"]))
    eta = 10.0 ** draw(st.floats(-4.0, 5.0))
    seed = draw(st.integers(0, 2**32 - 1))
    return fuzz.make_case(K=K, d=d, rank=rank, S=S, link=link, regularizer=name, q=q,
                          reference=reference, eta=eta, seed=seed)


@SETTINGS
@given(case=cases())
def test_identities_hold_on_random_games(case):
    ratios = fuzz.check_case(case)
    assert set(ratios) == set(fuzz.CHECKS)
    failed = {k: v for k, v in ratios.items() if not v <= 1.0}
    assert not failed, f"{case['desc']}: {failed}"


@settings(max_examples=25, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1))
def test_fuzz_script_cases_pass(seed):
    """The script's own case generator (the 10,000-case run draws from it)."""
    case = fuzz.draw_case(seed)
    ratios = fuzz.check_case(case)
    assert all(v <= 1.0 for v in ratios.values()), (case["desc"], ratios)


class _WrongBestResponse(KLRegularizer):
    """KL whose best response ignores y (returns the reference): a planted bug."""

    def best_response(self, y, eta):
        y = np.asarray(y, dtype=float)
        return np.broadcast_to(self._ref_for(y), y.shape).copy()


def test_checks_catch_a_wrong_best_response():
    """The checker is not vacuous: a best response that ignores y violates optimality."""
    case = fuzz.make_case(K=6, d=4, rank=1, S=8.0, link="logistic", regularizer="kl", q=None,
                          reference="dirichlet", eta=10.0, seed=3)
    case["reg"] = _WrongBestResponse(reference=case["reg"].reference)
    ratios = fuzz.check_case(case)
    assert ratios["br_opt"] > 1.0 and ratios["br_value"] > 1.0
    assert ratios["j_sum"] <= 1.0 and ratios["finite"] == 0.0


def test_run_aggregates_and_reports_failures(monkeypatch):
    """run() counts violations per check and lists the failing cases."""
    real = fuzz.check_case
    calls = []

    def flaky(case):
        out = real(case)
        calls.append(case["desc"])
        if len(calls) == 2:
            out["sne"] = 5.0
        return out

    monkeypatch.setattr(fuzz, "check_case", flaky)
    summary = fuzz.run(3, seed=7, progress=False)
    assert summary["cases"] == 3 and len(calls) == 3
    assert summary["violations"]["sne"] == 1 and summary["worst"]["sne"] == 5.0
    assert sum(summary["violations"].values()) == 1
    assert summary["failures"] == [f"case 1: {calls[1]} failed ['sne']"]


@pytest.mark.parametrize("seed", [0, 1])
def test_cases_are_reproducible(seed):
    a, b = fuzz.draw_case([seed, 5]), fuzz.draw_case([seed, 5])
    assert a["desc"] == b["desc"]
    np.testing.assert_array_equal(a["A"], b["A"])
    np.testing.assert_array_equal(a["p"], b["p"])


@settings(max_examples=60, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(2, 5), n=st.integers(1, 14),
       log_s=st.floats(np.log(0.1), np.log(50.0)), kind=st.sampled_from(["bits", "fractions"]))
def test_fit_mle_meets_kkt_on_random_small_problems(seed, d, n, log_s, kind):
    """Few weighted comparisons (singular Hessians, boundary optima): KKT from the formula."""
    from rlhf_gbpm import fit_mle
    from rlhf_gbpm.features import random_unit_features
    from rlhf_gbpm.skew import pair_features

    rng = np.random.default_rng(seed)
    S = float(np.exp(log_s))
    phi = random_unit_features((n, 2, d), seed=rng)
    x = pair_features(phi[:, 0], phi[:, 1])
    r = (rng.random(n) < 0.5).astype(float) if kind == "bits" else rng.random(n)
    w = rng.integers(0, 4, size=n).astype(float)
    w[0] = max(w[0], 1.0)
    res = fit_mle(x, r, S=S, weights=w, max_iter=100)
    assert res.success and np.all(np.isfinite(res.theta))
    z = x @ res.theta
    g = x.T @ (w * (0.5 * (1.0 + np.tanh(0.5 * z)) - r)) / w.sum()
    v = res.theta - g
    proj = v if np.linalg.norm(v) <= S else v * (S / np.linalg.norm(v))
    assert np.linalg.norm(res.theta - proj) <= 1e-8
