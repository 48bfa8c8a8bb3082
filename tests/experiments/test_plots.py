"""Tests for rlhf_gbpm/experiments/plots.py: figures show the table's statistics."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from test_summary import synthetic_table  # noqa: E402

from rlhf_gbpm.experiments.plots import (  # noqa: E402
    FIGURES,
    make_figures,
    plot_estimation_error,
    plot_final_vs_eta,
    plot_fit_r2,
    plot_regret_curves,
    save_figures,
)
from rlhf_gbpm.experiments.summary import summarize  # noqa: E402


@pytest.fixture(scope="module")
def table():
    return synthetic_table()


def _lines_by_label(ax):
    """Plain lines by label, and the data line of each errorbar container by its label."""
    out = {line.get_label(): line for line in ax.get_lines()}
    out.update({c.get_label(): c.lines[0] for c in ax.containers if hasattr(c, "has_yerr")})
    return out


def test_regret_curves_plot_the_mean_per_eta(table):
    fig = plot_regret_curves(table)
    axes = fig.axes
    sizes = sorted(table["size"].unique())
    assert axes[0].get_title() == f"GS | {sizes[0]}"
    sub = table[table["size"] == sizes[0]]
    means = sub.groupby(["eta", "t"])["cum_mbr_regret"].mean()
    curves = [ln for ln in axes[0].get_lines() if len(ln.get_xdata()) == len(np.unique(sub["t"]))]
    assert len(curves) == 3
    got = sorted(tuple(np.round(ln.get_ydata(), 9)) for ln in curves)
    want = sorted(tuple(np.round(means.loc[e].to_numpy(), 9)) for e in (0.01, 1.0, 100.0))
    assert got == want
    plt.close(fig)


def test_final_vs_eta_has_means_and_guides(table):
    fig = plot_final_vs_eta(table)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    size = sorted(table["size"].unique())[0]
    final = table[(table["size"] == size) & (table["t"] == table["t"].max())]
    means = final.groupby("eta")["cum_mbr_regret"].mean()
    lines = _lines_by_label(ax)
    np.testing.assert_allclose(lines["GS"].get_ydata(), means.to_numpy())
    guide = lines["O(eta) guide (GS)"]
    np.testing.assert_allclose(guide.get_ydata(), means.iloc[0] * means.index / means.index[0])
    flat = lines["O(sqrt T) guide (GS)"]
    np.testing.assert_allclose(flat.get_ydata(), [means.max()] * 2)
    plt.close(fig)


def test_fit_r2_plots_mean_r2_per_eta(table):
    fig = plot_fit_r2(table, min_t=10)
    summary = summarize(table, min_t=10)
    for ax, size in zip(fig.axes, sorted(table["size"].unique())):
        lines = _lines_by_label(ax)
        want = summary[summary["size"] == size].sort_values("eta")
        np.testing.assert_allclose(lines["R² of log t fit"].get_ydata(), want["log_r2_mean"])
        np.testing.assert_allclose(lines["R² of sqrt t fit"].get_ydata(), want["sqrt_r2_mean"])
        assert ax.get_xscale() == "log"
    plt.close(fig)


def test_estimation_error_absent_gives_no_figure(table):
    assert plot_estimation_error(table.assign(estimation_error=np.nan)) is None
    figs = make_figures(table.assign(estimation_error=np.nan))
    assert set(figs) == set(FIGURES) - {"estimation_error"}
    for fig in figs.values():
        plt.close(fig)


def test_save_figures_writes_png_and_pdf(table, tmp_path):
    paths = save_figures(make_figures(table), tmp_path / "figs")
    assert sorted(p.name for p in paths) == sorted(f"{n}.{e}" for n in FIGURES
                                                   for e in ("png", "pdf"))
    for p in paths:
        head = p.read_bytes()[:8]
        assert head.startswith(b"\x89PNG" if p.suffix == ".png" else b"%PDF")
    assert not list((tmp_path / "figs").glob(".*"))  # no temporary files left
