"""Tests for rlhf_gbpm/experiments/plots.py: figures show the table's statistics."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from _experiment_fakes import synthetic_table  # noqa: E402

from rlhf_gbpm.experiments.plots import (  # noqa: E402
    FIGURES,
    make_figures,
    plot_estimation_error,
    plot_final_vs_eta,
    plot_fit_r2,
    save_figures,
)
from rlhf_gbpm.experiments.summary import summarize  # noqa: E402


@pytest.fixture(scope="module")
def table():
    return synthetic_table()


@pytest.fixture(scope="module")
def figures(table):
    figs = make_figures(table, min_t=10)
    yield figs
    for fig in figs.values():
        plt.close(fig)


def _lines_by_label(ax):
    """Plain lines by label, and the data line of each errorbar container by its label."""
    out = {line.get_label(): line for line in ax.get_lines()}
    out.update({c.get_label(): c.lines[0] for c in ax.containers if hasattr(c, "has_yerr")})
    return out


def test_regret_curves_plot_the_mean_per_eta(table, figures):
    fig = figures["regret_curves"]
    axes = fig.axes
    sizes = list(dict.fromkeys(table["size"]))
    assert axes[0].get_title() == f"GS | {sizes[0]}"
    sub = table[table["size"] == sizes[0]]
    means = sub.groupby(["eta", "t"])["cum_mbr_regret"].mean()
    curves = [ln for ln in axes[0].get_lines() if len(ln.get_xdata()) == len(np.unique(sub["t"]))]
    assert len(curves) == 3
    got = sorted(tuple(np.round(ln.get_ydata(), 9)) for ln in curves)
    want = sorted(tuple(np.round(means.loc[e].to_numpy(), 9)) for e in (0.01, 1.0, 100.0))
    assert got == want


def test_final_vs_eta_has_means_and_guides(table, figures):
    fig = figures["final_regret_vs_eta"]
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    size = list(dict.fromkeys(table["size"]))[0]
    final = table[(table["size"] == size) & (table["t"] == table["t"].max())]
    means = final.groupby("eta")["cum_mbr_regret"].mean()
    lines = _lines_by_label(ax)
    np.testing.assert_allclose(lines["GS"].get_ydata(), means.to_numpy())
    guide = lines["O(eta) guide (GS)"]
    np.testing.assert_allclose(guide.get_ydata(), means.iloc[0] * means.index / means.index[0])
    flat = lines["O(sqrt T) guide (GS)"]
    np.testing.assert_allclose(flat.get_ydata(), [means.max()] * 2)


def test_fit_r2_plots_mean_r2_per_eta(table, figures):
    fig = figures["fit_r2_vs_eta"]
    summary = summarize(table, min_t=10)
    for ax, size in zip(fig.axes, list(dict.fromkeys(table["size"]))):
        lines = _lines_by_label(ax)
        want = summary[summary["size"] == size].sort_values("eta")
        np.testing.assert_allclose(lines["R² of log t fit"].get_ydata(), want["log_r2_mean"])
        np.testing.assert_allclose(lines["R² of sqrt t fit"].get_ydata(), want["sqrt_r2_mean"])
        assert ax.get_xscale() == "log"


def test_estimation_error_plots_mean_per_eta(table, figures):
    ax = figures["estimation_error"].axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    sub = table[table["size"] == list(dict.fromkeys(table["size"]))[0]]
    want = sub.groupby("t")["estimation_error"].mean().to_numpy()  # same for every eta
    curves = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == want.size]
    assert len(curves) == 3
    for line in curves:
        np.testing.assert_allclose(line.get_ydata(), want)


def test_estimation_error_absent_gives_no_figure(table, figures):
    assert set(figures) == set(FIGURES)
    assert plot_estimation_error(table.assign(estimation_error=np.nan)) is None


def test_save_figures_writes_png_and_pdf(table, tmp_path):
    figs = {"final_regret_vs_eta": plot_final_vs_eta(table),
            "fit_r2_vs_eta": plot_fit_r2(table)}
    paths = save_figures(figs, tmp_path / "figs")
    assert sorted(p.name for p in paths) == sorted(f"{n}.{e}" for n in figs
                                                   for e in ("png", "pdf"))
    for p in paths:
        head = p.read_bytes()[:8]
        assert head.startswith(b"\x89PNG" if p.suffix == ".png" else b"%PDF")
    assert not list((tmp_path / "figs").glob(".*"))  # no temporary files left
