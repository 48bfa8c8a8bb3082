"""Tests for rlhf_gbpm/experiments/summary.py on synthetic tables with known rates."""

import numpy as np
import pandas as pd
import pytest
from _experiment_fakes import synthetic_table

from rlhf_gbpm.experiments.summary import (
    crossover_eta,
    fit_curves,
    fit_rates,
    summarize,
    summary_markdown,
    write_summary,
)


def test_fit_curves_matches_polyfit():
    rng = np.random.default_rng(0)
    t = np.arange(10, 300, 7)
    y = rng.normal(size=(4, t.size)).cumsum(axis=1)
    fits = fit_curves(t, y)
    for name, f in (("log", np.log(t)), ("sqrt", np.sqrt(t))):
        for i in range(4):
            slope, intercept = np.polyfit(f, y[i], 1)
            pred = slope * f + intercept
            r2 = 1 - np.sum((y[i] - pred) ** 2) / np.sum((y[i] - y[i].mean()) ** 2)
            np.testing.assert_allclose(fits[f"{name}_slope"][i], slope, rtol=1e-10)
            np.testing.assert_allclose(fits[f"{name}_intercept"][i], intercept, rtol=1e-9,
                                       atol=1e-12)
            np.testing.assert_allclose(fits[f"{name}_r2"][i], r2, rtol=1e-10)


def test_fit_curves_exact_models_and_constant():
    t = np.arange(10, 1000, 10, dtype=float)
    fits = fit_curves(t, np.stack([2 * np.log(t) + 1, 3 * np.sqrt(t) - 2, np.full(t.size, 4.0)]))
    np.testing.assert_allclose(fits["log_slope"][0], 2.0)
    np.testing.assert_allclose(fits["log_r2"][0], 1.0)
    np.testing.assert_allclose(fits["sqrt_slope"][1], 3.0)
    np.testing.assert_allclose(fits["sqrt_intercept"][1], -2.0, atol=1e-9)
    np.testing.assert_allclose(fits["sqrt_r2"][1], 1.0)
    assert fits["log_r2"][1] < 0.99 and fits["sqrt_r2"][0] < 0.99
    assert fits["log_r2"][2] == 1.0 and fits["log_slope"][2] == 0.0
    with pytest.raises(ValueError, match="at least two distinct rounds"):
        fit_curves(np.array([5.0]), np.ones((1, 1)))


def test_fit_rates_recovers_slopes_per_run():
    table = synthetic_table()
    fits = fit_rates(table, min_t=10)
    assert len(fits) == table["run_id"].nunique()
    small = fits[fits["eta"] == 0.01]
    np.testing.assert_allclose(small["log_slope"], 0.01 * (3.0 + small["seed"]), rtol=1e-2)
    large = fits[fits["eta"] == 100.0]
    np.testing.assert_allclose(large["sqrt_slope"], 0.2 + 0.1 * large["seed"], rtol=1e-3)
    last = table.sort_values("t").groupby("run_id").tail(1).set_index("run_id")
    np.testing.assert_allclose(fits.set_index("run_id")["final"],
                               last["cum_mbr_regret"].loc[fits["run_id"]])
    assert (fits["horizon"] == 1000).all()


def test_min_t_drops_early_rounds():
    table = synthetic_table(etas=(100.0,), seeds=(0,), sizes=("s",))
    # corrupt the rounds below 10: the fit with min_t=10 must not see them
    table.loc[table["t"] < 10, "cum_mbr_regret"] = 1e6
    fit = fit_rates(table, min_t=10).iloc[0]
    np.testing.assert_allclose(fit["sqrt_slope"], 0.2, rtol=1e-3)


def test_summarize_and_crossover():
    summary = summarize(synthetic_table(), min_t=10)
    assert len(summary) == 2 * 3
    assert (summary["seeds"] == 3).all()
    by_eta = summary.set_index(["size", "eta"])
    assert by_eta.loc[("d=5", 0.01), "better_fit"] == "log"
    assert by_eta.loc[("d=5", 100.0), "better_fit"] == "sqrt"
    np.testing.assert_allclose(by_eta.loc[("d=5", 100.0), "sqrt_slope_mean"], 0.3, rtol=1e-3)
    np.testing.assert_allclose(by_eta.loc[("d=5", 100.0), "final_abr_mean"],
                               2 * by_eta.loc[("d=5", 100.0), "final_mbr_mean"])
    cross = crossover_eta(summary)
    assert len(cross) == 2
    # the sign of R2(sqrt) - R2(log) flips between eta = 0.01 and eta = 1 or 1 and 100
    assert ((cross["crossover_eta"] > 0.01) & (cross["crossover_eta"] < 100.0)).all()


def test_crossover_interpolates_in_log_eta():
    summary = pd.DataFrame(dict(agent="a", regularizer="kl", size="s",
                                eta=[0.1, 1.0, 10.0, 100.0],
                                log_r2_mean=[0.99, 0.98, 0.90, 0.80],
                                sqrt_r2_mean=[0.90, 0.94, 0.96, 0.99]))
    # diff: -0.09, -0.04, +0.06 -> zero at 40% of the way from log10 0 to log10 1
    value = crossover_eta(summary)["crossover_eta"].iloc[0]
    np.testing.assert_allclose(value, 10 ** 0.4)
    never = crossover_eta(summary.assign(sqrt_r2_mean=0.5)).iloc[0]
    assert np.isnan(never["crossover_eta"]) and never["note"].startswith("log t fits best")
    always = crossover_eta(summary.assign(sqrt_r2_mean=1.0)).iloc[0]
    assert np.isnan(always["crossover_eta"]) and always["note"].startswith("sqrt t fits best")


def test_summary_keeps_plan_order():
    table = synthetic_table(sizes=("d=5", "d=10"))
    summary = summarize(table)
    assert list(dict.fromkeys(summary["size"])) == ["d=5", "d=10"]
    assert summary.groupby("size", sort=False)["eta"].apply(
        lambda e: e.is_monotonic_increasing).all()


def test_markdown_and_files(tmp_path):
    table = synthetic_table()
    summary = summarize(table)
    text = summary_markdown(summary, crossover_eta(summary))
    lines = [ln for ln in text.splitlines() if ln.startswith("| GS")]
    assert len(lines) == 6 + 2
    paths = write_summary(table, tmp_path)
    assert [p.name for p in paths] == ["summary.md", "summary.csv", "fits.csv"]
    back = pd.read_csv(tmp_path / "summary.csv")
    np.testing.assert_allclose(back["final_mbr_mean"], summary["final_mbr_mean"], rtol=1e-12)
    assert len(pd.read_csv(tmp_path / "fits.csv")) == table["run_id"].nunique()
