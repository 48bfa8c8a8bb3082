"""Benchmark regularizers: strong convexity, SNE cost and accuracy, regret, bypass factor.

For each regularizer (built-in names, ``module:factory`` / ``path/file.py:factory`` targets,
or Regularizer objects) this measures, on random GBPM instances and a grid of eta:

* beta: the declared constant, the sampled lower bound and the Hessian upper bound
  (:func:`rlhf_gbpm.strong_convexity.check_regularizer`; a psi that is not strongly convex is
  rejected before anything else runs);
* the batched SNE solve time per problem and its accuracy (max dual gap, max residual,
  fraction converged);
* the SNE's maximal density ratio max_a p*(a)/rho(a) to the reference (the bypass factor h(eta)
  of spec gbpm.md section 4: e^eta for KL, 1 + eta for 1/2 chi2);
* the final MBR regret of Greedy Sampling and Explore-Then-Commit at a fixed budget, mean and a
  95% confidence interval over seeds (the sweep runner, in process).

Results: a tidy table (pandas), a markdown table, and one seaborn figure per metric.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import math
import numbers
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from rlhf_gbpm._validation import check_scalar
from rlhf_gbpm.errors import ConfigError
from rlhf_gbpm.regularizers import Regularizer, get_regularizer, register_regularizer

__all__ = ["BenchConfig", "BenchReport", "benchmark_regularizers", "load_regularizer",
           "DEFAULT_REGULARIZERS"]

logger = logging.getLogger(__name__)

DEFAULT_REGULARIZERS = ("kl", "l2", "chi2_half", "chi2", "tsallis_half", "kl_plus_chi2")


@dataclass(frozen=True)
class BenchConfig:
    """Settings of :func:`benchmark_regularizers` (defaults finish in about a minute)."""

    regularizers: tuple = DEFAULT_REGULARIZERS
    """Names, ``"module:factory"`` / ``"file.py:factory"`` targets or Regularizer objects."""
    etas: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0)
    """The eta grid."""
    d: int = 5
    """Feature dimension of the random instances."""
    K: int = 20
    """Number of actions."""
    rank: int = 1
    """r: Theta has rank 2r."""
    S: float = 5.0
    """Frobenius norm of Theta."""
    num_instances: int = 64
    """Random payoffs per eta for the SNE timing, accuracy and density ratio."""
    seeds: int = 5
    """Seeds of the regret runs (each a different instance)."""
    horizon: int = 1000
    """T, the fixed regret budget."""
    gs_kwargs: dict = field(default_factory=lambda: {"estimator": "ons", "refresh": 2})
    """Greedy Sampling's keyword arguments (``S`` is added)."""
    etc_kwargs: dict = field(default_factory=lambda: {"exploration": "uniform"})
    """ETC's keyword arguments (``S`` and, unless given, ``exploration_length = T^(2/3)``)."""
    seed: int = 0
    """Seed of the instances used for the SNE measurements and the convexity check."""

    def __post_init__(self):
        if isinstance(self.regularizers, (str, Regularizer)):
            object.__setattr__(self, "regularizers", (self.regularizers,))
        if not self.regularizers:
            raise ConfigError("regularizers must be a non-empty list.")
        object.__setattr__(self, "regularizers", tuple(self.regularizers))
        etas = tuple(float(e) for e in self.etas)
        if not etas or any(not (e > 0) or math.isinf(e) for e in etas):
            raise ConfigError(f"etas == {etas!r}, every eta must be a finite number > 0.")
        object.__setattr__(self, "etas", etas)
        check_scalar(self.d, "d", numbers.Integral, min_val=2)
        check_scalar(self.K, "K", numbers.Integral, min_val=2)
        check_scalar(self.rank, "rank", numbers.Integral, min_val=1)
        check_scalar(self.S, "S", numbers.Real, min_val=0.0, include_boundaries="neither")
        check_scalar(self.num_instances, "num_instances", numbers.Integral, min_val=1)
        check_scalar(self.seeds, "seeds", numbers.Integral, min_val=1)
        check_scalar(self.horizon, "horizon", numbers.Integral, min_val=10)
        check_scalar(self.seed, "seed", numbers.Integral, min_val=0)


@dataclass(frozen=True)
class BenchReport:
    """What :func:`benchmark_regularizers` measured.

    Attributes:
        table: One row per (regularizer, eta) with every metric.
        beta: One row per regularizer: declared beta, sampled lower and Hessian upper bounds.
        files: Files written (markdown and CSV tables, PNG and PDF figures).
    """

    table: pd.DataFrame
    beta: pd.DataFrame
    files: list[Path]

    def to_markdown(self) -> str:
        """The main table as markdown."""
        cols = ["regularizer", "eta", "beta", "sne_us_per_problem", "sne_max_dual_gap",
                "max_density_ratio", "gs_regret", "gs_ci95", "etc_regret", "etc_ci95"]
        return _markdown(self.table[cols])


def _markdown(df: pd.DataFrame) -> str:
    def fmt(v):
        if isinstance(v, (float, np.floating)):
            return f"{v:.3g}"
        return str(v)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(fmt(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def load_regularizer(spec) -> tuple[str, Regularizer]:
    """Resolve a benchmark entry to (label, regularizer).

    Args:
        spec: A registered name (``"kl"``), ``"name(q=0.3)"`` style is not parsed — use a dict
            ``{"name": "tsallis", "q": 0.3}``; ``"module:factory"``; ``"path/to/file.py:factory"``
            (the factory is called with no arguments and must return a Regularizer or be one);
            or a Regularizer object.

    Returns:
        (label, regularizer).

    Raises:
        ConfigError: If the target cannot be imported or does not give a Regularizer.
    """
    if isinstance(spec, Regularizer):
        return str(getattr(spec, "name", type(spec).__name__)), spec
    if isinstance(spec, dict):
        params = dict(spec)
        name = params.pop("name")
        label = name + ("(" + ",".join(f"{k}={v}" for k, v in sorted(params.items())) + ")"
                        if params else "")
        return label, get_regularizer(name, **params)
    if not isinstance(spec, str):
        raise ConfigError(f"regularizer entry must be a str, dict or Regularizer, got {spec!r}.")
    if ":" not in spec:
        try:
            return spec, get_regularizer(spec)
        except ValueError as err:
            raise ConfigError(str(err)) from err
    target, attr = spec.rsplit(":", 1)
    try:
        if target.endswith(".py"):
            path = Path(target)
            if not path.is_file():
                raise ConfigError(f"regularizer file {target!r} does not exist.")
            mod_spec = importlib.util.spec_from_file_location(f"_bench_user_{path.stem}", path)
            module = importlib.util.module_from_spec(mod_spec)
            mod_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
        obj = getattr(module, attr)
    except ConfigError:
        raise
    except Exception as err:  # noqa: BLE001 - user module: report it with the target
        raise ConfigError(f"cannot load regularizer {spec!r}: {type(err).__name__}: {err}") from err
    reg = obj if isinstance(obj, Regularizer) else obj()
    if not isinstance(reg, Regularizer):
        raise ConfigError(f"{spec!r} gave {type(reg).__name__}, not a Regularizer.")
    return str(getattr(reg, "name", attr)), reg


def _sne_metrics(reg: Regularizer, A: np.ndarray, eta: float) -> dict:
    from rlhf_gbpm.equilibrium import solve_sne

    times = []
    for _ in range(3):
        start = time.perf_counter()
        res = solve_sne(A, reg, eta)
        times.append(time.perf_counter() - start)
    ref = reg._ref_for(res.policy) if hasattr(reg, "_ref_for") else np.full_like(res.policy,
                                                                                  1 / A.shape[-1])
    ratio = np.max(res.policy / np.maximum(ref, 1e-300), axis=-1)
    return {
        "sne_us_per_problem": 1e6 * float(np.median(times)) / A.shape[0],
        "sne_max_dual_gap": float(np.max(res.dual_gap)),
        "sne_max_residual": float(np.max(res.residual)),
        "sne_converged": float(np.mean(res.success)),
        "max_density_ratio": float(np.max(ratio)),
    }


def _regret(cfg: BenchConfig, names: dict[str, str]) -> pd.DataFrame:
    """Final MBR regret of GS and ETC for every (regularizer, eta), one in-process sweep."""
    from rlhf_gbpm.experiments.config import (
        AgentSpec,
        BackendSpec,
        CheckpointSpec,
        EnvSpec,
        ExperimentConfig,
        RegularizerSpec,
    )
    from rlhf_gbpm.experiments.runner import run_sweep

    T = cfg.horizon
    etc_kwargs = {"exploration_length": max(1, round(T ** (2 / 3))), **cfg.etc_kwargs,
                  "S": cfg.S}
    exp = ExperimentConfig(
        name="bench_regularizers",
        agents=(AgentSpec("greedy_sampling", kwargs={**cfg.gs_kwargs, "S": cfg.S}, label="GS"),
                AgentSpec("explore_then_commit", kwargs=etc_kwargs, label="ETC")),
        eta=cfg.etas,
        seeds=tuple(range(cfg.seeds)),
        horizon=T,
        regularizers=tuple(RegularizerSpec(n) for n in names.values()),
        env=EnvSpec(id="rlhf_gbpm/GBPMDuel-v0", params={"rank": cfg.rank, "link": "logistic"}),
        sizes=({"d": cfg.d, "K": cfg.K, "S": cfg.S},),
        checkpoints=CheckpointSpec(kind="every", value=T),
        backend=BackendSpec(name="inprocess"),
    )
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        result = run_sweep(exp, out=tmp, progress=False)
        table = result.table
    final = table[table["t"] == table["t"].max()]
    back = {v: k for k, v in names.items()}
    rows = []
    for (agent, reg, eta), grp in final.groupby(["agent", "regularizer", "eta"]):
        vals = grp["cum_mbr_regret"].to_numpy(dtype=float)
        ci = 1.96 * vals.std(ddof=1) / math.sqrt(vals.size) if vals.size > 1 else math.nan
        rows.append({"agent": agent, "regularizer": back.get(reg, reg), "eta": float(eta),
                     "regret": float(vals.mean()), "ci95": ci})
    return pd.DataFrame(rows)


def benchmark_regularizers(config: BenchConfig | Sequence | None = None,
                           out_dir: str | Path | None = None) -> BenchReport:
    """Run the regularizer benchmark.

    Args:
        config: A :class:`BenchConfig`, a list of regularizer entries (other settings
            default), or None (the built-in set).
        out_dir: Folder for ``bench_regularizers.md/.csv`` and ``bench_<metric>.png/.pdf``;
            nothing is written when None.

    Returns:
        A :class:`BenchReport`.

    Raises:
        NotStronglyConvexError: If an entry is not strongly convex (before any run).
        ConfigError: If an entry cannot be loaded.
    """
    from rlhf_gbpm.instances import random_instance
    from rlhf_gbpm.strong_convexity import check_regularizer

    if config is None:
        cfg = BenchConfig()
    elif isinstance(config, BenchConfig):
        cfg = config
    else:
        cfg = BenchConfig(regularizers=tuple(config))
    regs = [load_regularizer(spec) for spec in cfg.regularizers]
    labels = [label for label, _ in regs]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"regularizer labels must be unique, got {labels}.")
    # 1. reject anything that is not strongly convex before running experiments
    beta_rows = []
    for label, reg in regs:
        est = check_regularizer(reg, cfg.K, seed=cfg.seed)
        beta_rows.append({"regularizer": label, "beta": float(reg.beta(cfg.K)),
                          "beta_lower": est.beta, "beta_upper": est.beta_upper})
    beta = pd.DataFrame(beta_rows)
    # 2. SNE cost, accuracy, density ratio on random payoffs
    rng = np.random.default_rng(cfg.seed)
    A = np.stack([random_instance(d=cfg.d, K=cfg.K, rank=cfg.rank, S=cfg.S,
                                  seed=int(s)).payoff()
                  for s in rng.integers(0, 2**31, size=cfg.num_instances)])
    rows = []
    for label, reg in regs:
        for eta in cfg.etas:
            rows.append({"regularizer": label, "eta": eta, **_sne_metrics(reg, A, eta)})
    table = pd.DataFrame(rows).merge(beta, on="regularizer")
    # 3. regret at a fixed budget (registered under temporary names for the runner)
    from rlhf_gbpm import regularizers as _registry

    names = {}
    try:
        for label, reg in regs:
            key = f"bench__{label}"
            register_regularizer(key, lambda reference=None, _r=reg, **_: (
                _r if reference is None else _r.with_reference(reference)), overwrite=True)
            names[label] = key
        regret = _regret(cfg, names)
    finally:  # leave the global registry as it was
        for key in names.values():
            _registry._REGISTRY.pop(key, None)
    for agent, prefix in (("GS", "gs"), ("ETC", "etc")):
        part = regret[regret["agent"] == agent].drop(columns="agent").rename(
            columns={"regret": f"{prefix}_regret", "ci95": f"{prefix}_ci95"})
        table = table.merge(part, on=["regularizer", "eta"], how="left")
    files: list[Path] = []
    report = BenchReport(table=table, beta=beta, files=files)
    if out_dir is not None:
        files.extend(_write(report, Path(out_dir)))
    return report


_METRICS = {
    "sne_us_per_problem": "SNE solve time per problem (us)",
    "sne_max_dual_gap": "max dual gap of the computed SNE",
    "max_density_ratio": "max_a p*(a)/rho(a) (bypass factor)",
    "gs_regret": "GS final MBR regret",
    "etc_regret": "ETC final MBR regret",
}


def _write(report: BenchReport, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import seaborn as sns

    out.mkdir(parents=True, exist_ok=True)
    files = []
    md = out / "bench_regularizers.md"
    md.write_text("## beta\n\n" + _markdown(report.beta) + "\n## metrics\n\n"
                  + report.to_markdown())
    csv = out / "bench_regularizers.csv"
    report.table.to_csv(csv, index=False)
    files += [md, csv]
    for metric, title in _METRICS.items():
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        data = report.table.dropna(subset=[metric])
        sns.lineplot(data=data, x="eta", y=metric, hue="regularizer", marker="o", ax=ax)
        ax.set_xscale("log")
        if (data[metric] > 0).all():
            ax.set_yscale("log")
        ax.set_title(title)
        for ext in ("png", "pdf"):
            path = out / f"bench_{metric}.{ext}"
            fig.savefig(path, dpi=110, bbox_inches="tight")
            files.append(path)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    long = report.beta.melt(id_vars="regularizer", value_vars=["beta", "beta_lower",
                                                               "beta_upper"])
    sns.barplot(data=long, x="regularizer", y="value", hue="variable", ax=ax)
    ax.set_yscale("log")
    ax.tick_params(axis="x", rotation=30)
    ax.set_title("strong convexity constant beta (w.r.t. l1)")
    for ext in ("png", "pdf"):
        path = out / f"bench_beta.{ext}"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        files.append(path)
    plt.close(fig)
    return files


def add_cli_parser(subparsers) -> None:
    """Register ``rlhf-gbpm bench-regularizers`` on an argparse subparsers object."""
    p = subparsers.add_parser(
        "bench-regularizers",
        help="benchmark regularizers (beta, SNE cost/accuracy, regret, density ratio)",
        description="Benchmark built-in and user regularizers: strong-convexity constant, SNE "
                    "solve time and accuracy, GS/ETC regret at a fixed budget, and the SNE's "
                    "maximal density ratio to the reference.")
    p.add_argument("regularizers", nargs="*",
                   help="registered names, module:factory or path/file.py:factory "
                        f"(default: {' '.join(DEFAULT_REGULARIZERS)})")
    p.add_argument("--eta", type=float, nargs="+", default=None, help="eta grid")
    p.add_argument("--seeds", type=int, default=None, help="regret seeds")
    p.add_argument("--horizon", type=int, default=None, help="regret budget T")
    p.add_argument("--K", type=int, default=None, help="number of actions")
    p.add_argument("--d", type=int, default=None, help="feature dimension")
    p.add_argument("--instances", type=int, default=None, help="payoffs for the SNE timing")
    p.add_argument("--out", type=Path, default=Path("out/bench_regularizers"),
                   help="output folder")
    p.set_defaults(func=run_cli)


def run_cli(args) -> int:
    """Run the benchmark from parsed CLI arguments and print the markdown table."""
    overrides = {"regularizers": tuple(args.regularizers) or DEFAULT_REGULARIZERS}
    for key, attr in (("etas", "eta"), ("seeds", "seeds"), ("horizon", "horizon"), ("K", "K"),
                      ("d", "d"), ("num_instances", "instances")):
        value = getattr(args, attr)
        if value is not None:
            overrides[key] = tuple(value) if isinstance(value, list) else value
    report = benchmark_regularizers(BenchConfig(**overrides), out_dir=args.out)
    print("## beta\n\n" + _markdown(report.beta))  # noqa: T201 - CLI output
    print(report.to_markdown())  # noqa: T201 - CLI output
    for path in report.files:
        print(f"wrote {path}")  # noqa: T201 - CLI output
    return 0
