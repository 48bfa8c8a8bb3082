"""Figures of a sweep (seaborn), saved as PNG and PDF.

* ``regret_curves``: mean cumulative MBR regret against t with a standard-error band, one
  line per eta, one panel per method (agent / regularizer) and size;
* ``final_regret_vs_eta``: final regret (mean ± std across seeds) against eta on log-log
  axes, with the O(eta) guide (slope 1 through the first point) and the O(sqrt T) guide
  (horizontal at the maximum), as in the authors' Fig. 3;
* ``fit_r2_vs_eta``: R^2 of the log-t and sqrt-t fits against eta, one panel per size (the
  authors' crossover figure, Fig. 2);
* ``estimation_error``: mean ||Theta_hat - Theta_star||_F against t (log-log), when recorded.

Every function takes the tidy results table and returns a matplotlib Figure.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from rlhf_gbpm.experiments.summary import fit_rates

__all__ = [
    "FIGURES",
    "plot_regret_curves",
    "plot_final_vs_eta",
    "plot_fit_r2",
    "plot_estimation_error",
    "make_figures",
    "save_figures",
]

logger = logging.getLogger(__name__)

FIGURES = ("regret_curves", "final_regret_vs_eta", "fit_r2_vs_eta", "estimation_error")


def _pyplot():
    import matplotlib.pyplot as plt

    return plt


def _with_method(table: pd.DataFrame) -> pd.DataFrame:
    """Add a ``method`` column: the agent, plus the regularizer when several are swept."""
    table = table.copy()
    if table["regularizer"].nunique() > 1:
        table["method"] = table["agent"] + " / " + table["regularizer"]
    else:
        table["method"] = table["agent"]
    return table


def _eta_norm(table: pd.DataFrame):
    from matplotlib.colors import LogNorm, Normalize

    eta = table["eta"].to_numpy(dtype=float)
    eta = eta[np.isfinite(eta)]
    if eta.size and eta.min() > 0 and eta.max() > eta.min():
        return LogNorm(eta.min(), eta.max())
    return Normalize()


def plot_regret_curves(table: pd.DataFrame, *, metric: str = "cum_mbr_regret"):
    """Cumulative regret curves with standard-error bands, per eta.

    Args:
        table: Results table.
        metric: Column to plot (``cum_mbr_regret`` or ``cum_abr_regret``).

    Returns:
        A matplotlib Figure (panels: rows = sizes, columns = methods).
    """
    import seaborn as sns

    plt = _pyplot()
    data = _with_method(table)
    sizes = list(dict.fromkeys(data["size"]))
    methods = list(dict.fromkeys(data["method"]))
    fig, axes = plt.subplots(len(sizes), len(methods), squeeze=False, sharex=True,
                             figsize=(4.2 * len(methods), 3.2 * len(sizes)))
    norm = _eta_norm(data)
    for i, size in enumerate(sizes):
        for j, method in enumerate(methods):
            ax = axes[i, j]
            sub = data[(data["size"] == size) & (data["method"] == method)]
            if len(sub):
                sns.lineplot(data=sub, x="t", y=metric, hue="eta", hue_norm=norm,
                             palette="viridis", errorbar=("se", 1), ax=ax,
                             legend=(i == 0 and j == len(methods) - 1))
            ax.set_title(f"{method} | {size}", fontsize=9)
            ax.set_ylabel(metric.replace("_", " ") if j == 0 else "")
    legend = axes[0, -1].get_legend()
    if legend is not None:
        legend.set_title("eta")
        sns.move_legend(axes[0, -1], "upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7)
    fig.suptitle("Cumulative regret (mean ± SE across seeds)")
    fig.tight_layout()
    return fig


def plot_final_vs_eta(table: pd.DataFrame, *, metric: str = "cum_mbr_regret"):
    """Final regret against eta (log-log) with O(eta) and O(sqrt T) guides.

    Args:
        table: Results table.
        metric: Cumulative column whose last checkpoint is plotted.

    Returns:
        A matplotlib Figure, one panel per size.
    """
    import seaborn as sns

    plt = _pyplot()
    data = _with_method(table)
    last = data.sort_values("t").groupby("run_id").tail(1)
    sizes = list(dict.fromkeys(data["size"]))
    fig, axes = plt.subplots(1, len(sizes), squeeze=False, figsize=(4.6 * len(sizes), 3.6))
    colors = dict(zip(dict.fromkeys(last["method"]),
                      sns.color_palette("deep", last["method"].nunique())))
    for ax, size in zip(axes[0], sizes):
        sub = last[(last["size"] == size) & np.isfinite(last["eta"])]
        stats = sub.groupby(["method", "eta"], sort=True)[metric].agg(["mean", "std"])
        for method, grp in stats.groupby(level="method", sort=False):
            eta = grp.index.get_level_values("eta").to_numpy(dtype=float)
            mean = grp["mean"].to_numpy()
            std = np.nan_to_num(grp["std"].to_numpy())
            ax.errorbar(eta, mean, yerr=std, marker="o", ms=4, capsize=3,
                        color=colors[method], label=method)
            if eta.size >= 2 and mean[0] > 0:
                ax.plot(eta, mean[0] * eta / eta[0], ls="--", lw=1, color=colors[method],
                        alpha=0.6, label=f"O(eta) guide ({method})")
                ax.axhline(mean.max(), ls=":", lw=1, color=colors[method], alpha=0.6,
                           label=f"O(sqrt T) guide ({method})")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("eta")
        ax.set_ylabel(f"final {metric.replace('_', ' ')}")
        ax.set_title(size, fontsize=9)
        ax.legend(fontsize=6)
    fig.suptitle("Final regret vs eta (mean ± std across seeds)")
    fig.tight_layout()
    return fig


def plot_fit_r2(table: pd.DataFrame, *, min_t: int = 10):
    """R^2 of the log-t and sqrt-t fits of cumulative MBR regret against eta, per size.

    Args:
        table: Results table.
        min_t: First round used by the fits.

    Returns:
        A matplotlib Figure, one panel per size (the crossover figure).
    """
    import seaborn as sns

    plt = _pyplot()
    fits = _with_method(fit_rates(table, min_t=min_t))
    fits = fits[np.isfinite(fits["eta"])]
    sizes = list(dict.fromkeys(fits["size"]))
    fig, axes = plt.subplots(1, len(sizes), squeeze=False, sharey=True,
                             figsize=(4.6 * len(sizes), 3.6))
    methods = list(dict.fromkeys(fits["method"]))
    colors = dict(zip(methods, sns.color_palette("deep", len(methods))))
    for ax, size in zip(axes[0], sizes):
        sub = fits[fits["size"] == size]
        for method in methods:
            grp = sub[sub["method"] == method]
            if not len(grp):
                continue
            for k, (col, style, label) in enumerate((("log_r2", "-o", "log t"),
                                                     ("sqrt_r2", "--s", "sqrt t"))):
                stats = grp.groupby("eta", sort=True)[col].agg(["mean", "std"])
                color = colors[method] if len(methods) > 1 else f"C{k}"
                ax.errorbar(stats.index.to_numpy(dtype=float),
                            stats["mean"].to_numpy(dtype=float),
                            yerr=np.nan_to_num(stats["std"].to_numpy()), fmt=style, ms=4,
                            capsize=3, color=color,
                            label=f"{method}: R² {label}" if len(methods) > 1 else
                            f"R² of {label} fit")
        ax.set_xscale("log")
        ax.set_xlabel("eta")
        ax.set_ylabel("R²")
        ax.set_title(size, fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(f"Fit quality of cumulative MBR regret (t >= {min_t}; mean ± std)")
    fig.tight_layout()
    return fig


def plot_estimation_error(table: pd.DataFrame):
    """Mean estimation error ||Theta_hat - Theta_star||_F against t (log-log), per eta.

    Args:
        table: Results table.

    Returns:
        A matplotlib Figure, or None when no run recorded an estimation error.
    """
    import seaborn as sns

    data = _with_method(table)
    data = data[np.isfinite(data["estimation_error"])]
    if not len(data):
        return None
    plt = _pyplot()
    sizes = list(dict.fromkeys(data["size"]))
    methods = list(dict.fromkeys(data["method"]))
    fig, axes = plt.subplots(len(sizes), len(methods), squeeze=False,
                             figsize=(4.2 * len(methods), 3.2 * len(sizes)))
    norm = _eta_norm(data)
    for i, size in enumerate(sizes):
        for j, method in enumerate(methods):
            ax = axes[i, j]
            sub = data[(data["size"] == size) & (data["method"] == method)]
            if len(sub):
                sns.lineplot(data=sub, x="t", y="estimation_error", hue="eta", hue_norm=norm,
                             palette="viridis", errorbar=("se", 1), ax=ax,
                             legend=(i == 0 and j == len(methods) - 1))
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{method} | {size}", fontsize=9)
    fig.suptitle("Estimation error ||Theta_hat - Theta*||_F (mean ± SE)")
    fig.tight_layout()
    return fig


def make_figures(table: pd.DataFrame, *, min_t: int = 10) -> dict:
    """All figures of a results table.

    Args:
        table: Results table.
        min_t: First round used by the rate fits.

    Returns:
        Mapping figure name (see :data:`FIGURES`) -> Figure; figures without data are left
        out.
    """
    figures = {
        "regret_curves": plot_regret_curves(table),
        "final_regret_vs_eta": plot_final_vs_eta(table),
        "fit_r2_vs_eta": plot_fit_r2(table, min_t=min_t),
        "estimation_error": plot_estimation_error(table),
    }
    return {k: v for k, v in figures.items() if v is not None}


def save_figures(figures: dict, out_dir: str | Path, *,
                 formats: tuple[str, ...] = ("png", "pdf"), dpi: int = 130) -> list[Path]:
    """Save figures as ``<out_dir>/<name>.<format>`` and close them.

    Args:
        figures: Mapping name -> Figure.
        out_dir: Destination folder (created when missing).
        formats: File formats.
        dpi: Resolution of raster formats.

    Returns:
        The paths written.
    """
    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in figures.items():
        for fmt in formats:
            path = out / f"{name}.{fmt}"
            tmp = out / f".{name}.tmp.{fmt}"
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
            tmp.replace(path)
            paths.append(path)
        plt.close(fig)
    return paths
