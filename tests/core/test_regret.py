"""Tests for rlhf_gbpm.regret: MBR/ABR bookkeeping, online-to-batch, rate fits."""

import numpy as np
import pytest

from rlhf_gbpm.equilibrium import dual_gap
from rlhf_gbpm.instances import random_instance
from rlhf_gbpm.regret import (
    RegretLog,
    abr_regret,
    average_policy,
    fit_regret_rates,
    mbr_regret,
    online_to_batch_bound,
    policy_dual_gaps,
)


@pytest.fixture(scope="module")
def game():
    inst = random_instance(d=5, K=6, rank=2, S=5.0, seed=0)
    rng = np.random.default_rng(1)
    p1 = rng.dirichlet(np.ones(6), size=(3, 50))
    p2 = rng.dirichlet(np.ones(6), size=(3, 50))
    return inst.payoff(), p1, p2


def test_mbr_and_abr_are_cumulative_sums_of_per_round_gaps(game):
    a, p1, p2 = game
    etas = np.array([0.5, 4.0, np.inf])
    mbr = mbr_regret(p1, a, "kl", etas)
    abr = abr_regret(p1, p2, a, "kl", etas)
    for b in range(3):
        g1 = [float(dual_gap(p1[b, t], a, "kl", etas[b])) for t in range(50)]
        g2 = [float(dual_gap(p2[b, t], a, "kl", etas[b])) for t in range(50)]
        np.testing.assert_allclose(mbr[b], np.cumsum(g1), rtol=1e-12)
        np.testing.assert_allclose(abr[b], np.cumsum(g1) + np.cumsum(g2), rtol=1e-12)
    # eta = inf: DGap(p) = max_j (A p)_j, an independent closed form
    np.testing.assert_allclose(np.diff(mbr[2], prepend=0.0), np.max(p1[2] @ a.T, axis=-1),
                               rtol=1e-12)


def test_per_round_payoffs_and_chunking_agree(game, monkeypatch):
    a, p1, _ = game
    per_round = np.broadcast_to(a, (3, 50, 6, 6))
    ref = policy_dual_gaps(p1, a, "kl", 2.0)
    import rlhf_gbpm.regret as regret_module

    monkeypatch.setattr(regret_module, "_CHUNK_ENTRIES", 200)  # force many chunks
    np.testing.assert_allclose(policy_dual_gaps(p1, per_round, "kl", 2.0, per_round=True), ref,
                               rtol=1e-13)


def test_online_to_batch_average_is_no_worse_than_the_average_gap(game):
    a, p1, _ = game
    for eta in (0.3, 10.0, np.inf):
        mbr_t = mbr_regret(p1, a, "kl", eta)[:, -1]
        avg = average_policy(p1)
        gap_avg = dual_gap(avg, a, "kl", eta)
        # DGap is convex, so DGap(mean policy) <= MBR/T; Prop. D.2 states 2 DGap <= 2 MBR/T
        assert np.all(2 * gap_avg <= online_to_batch_bound(mbr_t, 50) + 1e-12)
    running = average_policy(p1, running=True)
    np.testing.assert_allclose(running[:, -1], p1.mean(axis=1))
    np.testing.assert_allclose(running[:, 9], p1[:, :10].mean(axis=1))


def test_rate_fits_recover_exact_models_and_match_polyfit():
    t = np.arange(1, 2001, dtype=float)
    log_curve = 3.0 * np.log(t) + 1.0
    sqrt_curve = 0.5 * np.sqrt(t) - 2.0
    fit = fit_regret_rates(np.stack([log_curve, sqrt_curve]))
    np.testing.assert_allclose(fit.log_slope[0], 3.0)
    np.testing.assert_allclose(fit.log_intercept[0], 1.0)
    np.testing.assert_allclose(fit.sqrt_slope[1], 0.5)
    np.testing.assert_allclose(fit.sqrt_intercept[1], -2.0)
    np.testing.assert_allclose([fit.log_r2[0], fit.sqrt_r2[1]], 1.0)
    assert fit.log_better.tolist() == [True, False]
    noisy = sqrt_curve + np.random.default_rng(0).normal(0, 2.0, t.size)
    f = fit_regret_rates(noisy, t_min=10)
    keep = t >= 10
    slope, intercept = np.polyfit(np.log(t[keep]), noisy[keep], 1)
    assert f.log_slope == pytest.approx(slope) and f.log_intercept == pytest.approx(intercept)
    resid = noisy[keep] - (slope * np.log(t[keep]) + intercept)
    r2 = 1 - resid @ resid / np.sum((noisy[keep] - noisy[keep].mean()) ** 2)
    assert f.log_r2 == pytest.approx(r2)
    summary = fit_regret_rates(np.stack([noisy, noisy + 1.0])).summary()
    mean, std = summary["sqrt_slope"]
    assert mean == pytest.approx(fit_regret_rates(noisy).sqrt_slope) and std == pytest.approx(0)
    const = fit_regret_rates(np.zeros(100))
    assert const.log_r2 == 1.0 and const.sqrt_slope == 0.0


def test_regret_log_accumulates_rounds():
    log = RegretLog(2)
    rng = np.random.default_rng(0)
    g = rng.random((100, 2, 2))
    for row in g:
        log.record(row[0], row[1])
    assert log.rounds == 100
    np.testing.assert_allclose(log.mbr_curve, np.cumsum(g[:, 0], axis=0).T)
    np.testing.assert_allclose(log.abr_curve, np.cumsum(g[:, 0] + g[:, 1], axis=0).T)
    np.testing.assert_allclose(log.mbr_total, log.mbr_curve[:, -1])
    single = RegretLog()
    single.record(0.25, 0.5)
    assert single.mbr_total == 0.25 and single.abr_curve.tolist() == [0.75]


def test_bad_inputs_raise(game):
    a, p1, _ = game
    with pytest.raises(ValueError, match="t_min == 2000, must leave at least two rounds"):
        fit_regret_rates(np.ones(100), t_min=2000)
    with pytest.raises(ValueError, match="policies must lie on the probability simplex"):
        mbr_regret(p1 * 2, a, "kl", 1.0)
    with pytest.raises(ValueError, match="payoff must have shape"):
        mbr_regret(p1, a[:5, :5], "kl", 1.0)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., T, K, K\) with T == 50"):
        mbr_regret(p1, a, "kl", 1.0, per_round=True)
    with pytest.raises(ValueError, match="eta == -2.0, must be > 0"):
        mbr_regret(p1, a, "kl", -2.0)
