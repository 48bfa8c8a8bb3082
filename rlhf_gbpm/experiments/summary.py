"""Fitted regret rates and the summary table of a sweep.

Following the authors' analysis (spec gbpm.md section 6.2), each run's cumulative regret
curve, restricted to checkpoints ``t >= min_t``, is fitted by least squares twice:

    Reg(t) ~ a log t + b        and        Reg(t) ~ c sqrt(t) + e,

and the coefficient of determination R^2 of each fit tells which growth law describes the
run (log T regime at small eta, sqrt T regime at large eta). The fits are computed for all
runs at once (closed-form simple regression on the runs x checkpoints matrix).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from rlhf_gbpm.experiments.store import atomic_write_bytes

__all__ = [
    "RUN_KEYS",
    "fit_curves",
    "fit_rates",
    "summarize",
    "crossover_eta",
    "summary_markdown",
    "write_summary",
]

logger = logging.getLogger(__name__)

# the columns that identify a run's setting (the size label stands for the size columns)
RUN_KEYS = ("agent", "regularizer", "size", "eta")


def fit_curves(t: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Least-squares fits y ~ a log t + b and y ~ c sqrt t + e for many curves at once.

    A thin batch wrapper of :func:`rlhf_gbpm.regret.fit_regret_rates` (all given rounds are
    used; select them beforehand).

    Args:
        t: Rounds, shape (n,), all >= 1, at least two distinct values.
        y: Curves, shape (R, n) (one row per run).

    Returns:
        Dict of arrays of shape (R,): ``log_slope``, ``log_intercept``, ``log_r2``,
        ``sqrt_slope``, ``sqrt_intercept``, ``sqrt_r2``. R^2 is 1 for a curve the model
        fits exactly, including a constant curve.

    Raises:
        ValueError: If ``t`` has fewer than two distinct values or shapes disagree.
    """
    from rlhf_gbpm.regret import fit_regret_rates

    t = np.asarray(t, dtype=float)
    y = np.atleast_2d(np.asarray(y, dtype=float))
    if t.ndim != 1 or y.shape[-1] != t.shape[0]:
        raise ValueError(f"y must have shape (R, {t.shape[0]}), got {y.shape}.")
    if np.unique(t).size < 2:
        raise ValueError("t must hold at least two distinct rounds to fit a rate.")
    fit = fit_regret_rates(y, t, t_min=0)
    return {name: np.asarray(getattr(fit, name), dtype=float) for name in
            ("log_slope", "log_intercept", "log_r2", "sqrt_slope", "sqrt_intercept",
             "sqrt_r2")}


def fit_rates(table: pd.DataFrame, *, min_t: int = 10,
              metric: str = "cum_mbr_regret") -> pd.DataFrame:
    """Per-run log-t and sqrt-t fits of a cumulative regret column.

    Runs are fitted in batches that share their checkpoints.

    Args:
        table: Results table (one row per run x checkpoint).
        min_t: Only checkpoints with ``t >= min_t`` enter the fits (when fewer than two
            remain, all checkpoints are used).
        metric: The cumulative column to fit.

    Returns:
        One row per run: ``run_id``, the :data:`RUN_KEYS`, ``seed``, ``final`` (the metric at
        the last checkpoint), ``horizon`` and the six fit columns of :func:`fit_curves`.
    """
    rows = []
    keys = ["run_id", *RUN_KEYS, "seed"]
    table = table.sort_values(["run_id", "t"], kind="stable")
    # runs with the same checkpoint set are fitted together
    signature = table.groupby("run_id", sort=True)["t"].agg(tuple)
    for ts, run_ids in signature.groupby(signature).groups.items():
        t_all = np.asarray(ts, dtype=float)
        sub = table[table["run_id"].isin(run_ids)]
        y_all = sub[metric].to_numpy(dtype=float).reshape(len(run_ids), t_all.size)
        keep = t_all >= min_t
        if keep.sum() < 2:
            keep = np.ones_like(keep)
        fits = fit_curves(t_all[keep], y_all[:, keep])
        meta = sub.groupby("run_id", sort=True)[keys[1:]].first().reset_index()
        frame = meta.assign(final=y_all[:, -1], horizon=int(t_all[-1]), **fits)
        rows.append(frame)
    if not rows:
        return pd.DataFrame(columns=[*keys, "final", "horizon"])
    return pd.concat(rows, ignore_index=True).sort_values("run_id").reset_index(drop=True)


def summarize(table: pd.DataFrame, *, min_t: int = 10) -> pd.DataFrame:
    """Summary per (agent, regularizer, size, eta) across seeds.

    Args:
        table: Results table.
        min_t: First round used by the rate fits.

    Returns:
        One row per setting with ``seeds``, ``horizon``, final cumulative MBR and ABR regret
        (mean and std), final estimation error (mean), the log and sqrt fit slopes and R^2
        (mean and std) and ``better_fit`` (``"log"`` or ``"sqrt"``, by mean R^2).
    """
    fits = fit_rates(table, min_t=min_t)
    last = table.sort_values("t").groupby("run_id").tail(1).set_index("run_id")
    fits = fits.join(last[["cum_abr_regret", "estimation_error"]], on="run_id")
    agg = {
        "seeds": ("seed", "nunique"),
        "horizon": ("horizon", "max"),
        "final_mbr_mean": ("final", "mean"),
        "final_mbr_std": ("final", "std"),
        "final_abr_mean": ("cum_abr_regret", "mean"),
        "final_abr_std": ("cum_abr_regret", "std"),
        "final_est_error": ("estimation_error", "mean"),
    }
    for name in ("log_slope", "log_r2", "sqrt_slope", "sqrt_r2"):
        agg[f"{name}_mean"] = (name, "mean")
        agg[f"{name}_std"] = (name, "std")
    agg["first_run"] = ("run_id", "min")
    out = fits.groupby(list(RUN_KEYS), sort=False).agg(**agg).reset_index()
    # plan order: sizes, agents and regularizers as in the config, eta ascending
    order = out.groupby(["size", "agent", "regularizer"], sort=False)["first_run"] \
        .transform("min")
    out = out.assign(_order=order).sort_values(["_order", "eta"], kind="stable") \
        .drop(columns=["_order", "first_run"]).reset_index(drop=True)
    out["better_fit"] = np.where(out["log_r2_mean"] >= out["sqrt_r2_mean"], "log", "sqrt")
    return out


def crossover_eta(summary: pd.DataFrame) -> pd.DataFrame:
    """Where the sqrt-t fit overtakes the log-t fit, per (agent, regularizer, size).

    The crossover is the eta at which mean R^2(sqrt) - mean R^2(log) changes sign from
    negative to non-negative for the first time, interpolated linearly in log eta.

    Args:
        summary: Output of :func:`summarize`.

    Returns:
        One row per (agent, regularizer, size) with ``crossover_eta`` (NaN when the sign
        never changes on the grid) and a ``note`` saying which fit wins when it does not.
    """
    rows = []
    for key, grp in summary.groupby(["agent", "regularizer", "size"], sort=False):
        grp = grp.sort_values("eta")
        eta = grp["eta"].to_numpy(dtype=float)
        diff = (grp["sqrt_r2_mean"] - grp["log_r2_mean"]).to_numpy(dtype=float)
        value = np.nan
        for i in range(1, eta.size):
            if diff[i - 1] < 0 <= diff[i] and np.isfinite(eta[i]):
                w = -diff[i - 1] / (diff[i] - diff[i - 1])
                value = float(np.exp((1 - w) * np.log(eta[i - 1]) + w * np.log(eta[i])))
                break
        if np.isfinite(value):
            note = "crossover"
        elif np.all(diff >= 0):
            note = "sqrt t fits best on the whole grid (crossover below it)"
        elif np.all(diff < 0):
            note = "log t fits best on the whole grid (crossover above it)"
        else:
            note = "no log-to-sqrt sign change on the grid"
        rows.append(dict(zip(("agent", "regularizer", "size"), key), crossover_eta=value,
                         note=note))
    return pd.DataFrame(rows, columns=["agent", "regularizer", "size", "crossover_eta", "note"])


def _pm(mean: float, std: float, digits: int = 3) -> str:
    if not np.isfinite(mean):
        return "-"
    if not np.isfinite(std):
        return f"{mean:.{digits}g}"
    return f"{mean:.{digits}g} ± {std:.2g}"


def summary_markdown(summary: pd.DataFrame, crossover: pd.DataFrame | None = None) -> str:
    """Render the summary as a markdown table (mean ± std across seeds).

    Args:
        summary: Output of :func:`summarize`.
        crossover: Optional output of :func:`crossover_eta`, appended as a second table.

    Returns:
        Markdown text.
    """
    head = ("| agent | regularizer | size | eta | seeds | T | final MBR | final ABR | "
            "log slope | R² log | sqrt slope | R² sqrt | better |")
    lines = [head, "|" + "---|" * 13]
    for r in summary.itertuples(index=False):
        lines.append(
            f"| {r.agent} | {r.regularizer} | {r.size} | {r.eta:.3g} | {r.seeds} | "
            f"{r.horizon} | {_pm(r.final_mbr_mean, r.final_mbr_std)} | "
            f"{_pm(r.final_abr_mean, r.final_abr_std)} | "
            f"{_pm(r.log_slope_mean, r.log_slope_std)} | {_pm(r.log_r2_mean, r.log_r2_std)} | "
            f"{_pm(r.sqrt_slope_mean, r.sqrt_slope_std)} | "
            f"{_pm(r.sqrt_r2_mean, r.sqrt_r2_std)} | {r.better_fit} |"
        )
    text = "\n".join(lines) + "\n"
    if crossover is not None and len(crossover):
        text += "\n| agent | regularizer | size | crossover eta (R² sqrt = R² log) |\n"
        text += "|---|---|---|---|\n"
        for r in crossover.itertuples(index=False):
            value = r.note if not np.isfinite(r.crossover_eta) else f"{r.crossover_eta:.3g}"
            text += f"| {r.agent} | {r.regularizer} | {r.size} | {value} |\n"
    return text


def write_summary(table: pd.DataFrame, out_dir: str | Path, *, min_t: int = 10) -> list[Path]:
    """Write ``summary.md``, ``summary.csv`` and ``fits.csv`` (per run) atomically.

    Args:
        table: Results table.
        out_dir: Destination folder (created when missing).
        min_t: First round used by the rate fits.

    Returns:
        The paths written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(table, min_t=min_t)
    cross = crossover_eta(summary)
    files = {
        "summary.md": summary_markdown(summary, cross),
        "summary.csv": summary.to_csv(index=False, lineterminator="\n"),
        "fits.csv": fit_rates(table, min_t=min_t).to_csv(index=False, lineterminator="\n"),
    }
    paths = []
    for name, text in files.items():
        atomic_write_bytes(out / name, text.encode())
        paths.append(out / name)
    return paths
