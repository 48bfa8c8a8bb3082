"""The ``rlhf-gbpm`` command line.

Subcommands: ``run`` (a sweep; no argument = the default study), ``plot`` (figures and
summary of a results folder), ``list`` (environments, agents, regularizers, built-in configs,
studies), ``study NAME`` (an auxiliary optimizer study) and ``bench-regularizers`` (the
regularizer benchmark). Only this module configures
logging handlers and prints.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]

logger = logging.getLogger(__name__)


def _cmd_study(args: argparse.Namespace) -> int:
    from rlhf_gbpm.analysis import claims_table, list_studies, run_study

    if args.list or args.name is None:
        for name in list_studies():
            print(name)
        return 0
    out = run_study(args.name, config=args.config, out_dir=args.out)
    print(claims_table(out.claims))
    for path in out.files:
        print(f"wrote {path}")
    return 0 if out.all_hold else 1


def _safe_list(fn) -> list[str]:
    try:
        return list(fn())
    except ImportError as err:  # a sub-package that is not installed
        return [f"(unavailable: {err})"]


def _envs() -> list[str]:
    import gymnasium as gym

    import rlhf_gbpm.envs  # noqa: F401  (registers the ids)

    return sorted(k for k in gym.registry if k.startswith("rlhf_gbpm/"))


def _regularizers() -> list[str]:
    from rlhf_gbpm import regularizers

    names = getattr(regularizers, "_REGISTRY", None) or regularizers.REGULARIZER_NAMES
    return sorted(names)


def _cmd_list(args: argparse.Namespace) -> int:
    from rlhf_gbpm.analysis import list_studies
    from rlhf_gbpm.experiments.config import AGENTS, builtin_configs, load_config

    print("environments:")
    for name in _safe_list(_envs):
        print(f"  {name}")
    print("agents:")
    for name, target in AGENTS.items():
        print(f"  {name:<28} {target}")
    print("regularizers:")
    for name in _safe_list(_regularizers):
        print(f"  {name}")
    print("configs:")
    for name in builtin_configs():
        cfg = load_config(name)
        print(f"  {name:<14} {cfg.num_runs:>5} runs, T = {cfg.horizon}: {cfg.description}")
    print("studies:")
    for name in list_studies():
        print(f"  {name}")
    return 0


def _write_report(table, out: Path, *, min_t: int, plots: bool) -> list[Path]:
    from rlhf_gbpm.experiments.summary import write_summary

    files = write_summary(table, out, min_t=min_t)
    if plots:
        import matplotlib

        matplotlib.use("Agg")
        from rlhf_gbpm.experiments.plots import make_figures, save_figures

        files += save_figures(make_figures(table, min_t=min_t), out / "figures")
    return files


def _cmd_run(args: argparse.Namespace) -> int:
    from rlhf_gbpm.experiments.config import load_config
    from rlhf_gbpm.experiments.runner import run_sweep
    from rlhf_gbpm.experiments.store import ResultsStore

    if args.resume and args.config is None and args.out is not None:
        if not ResultsStore(args.out).exists():
            raise FileNotFoundError(
                f"{args.out} holds no results to resume (no manifest.json); run without "
                "--resume to start a sweep, or name its CONFIG."
            )
        config = load_config(ResultsStore(args.out).read_manifest()["config"])
    else:
        config = load_config(args.config)
    config = config.with_backend(name=args.backend, address=args.address,
                                 workers=args.workers)
    out = args.out if args.out is not None else Path("out") / config.name
    print(f"{config.name}: {config.num_runs} runs x T = {config.horizon} on "
          f"{config.backend.name} -> {out}")
    result = run_sweep(config, out, resume=args.resume, progress=not args.no_progress)
    print(f"ran {result.chunks_run} chunk(s), skipped {result.chunks_skipped} finished, "
          f"{len(result.table)} rows, {result.seconds:.1f} s")
    files = _write_report(result.table, Path(out), min_t=config.fit_min_t,
                          plots=not args.no_plots)
    print((Path(out) / "summary.md").read_text())
    for path in [Path(out) / "manifest.json", Path(out) / "index.jsonl", *files]:
        print(f"wrote {path}")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from rlhf_gbpm.experiments.config import load_config
    from rlhf_gbpm.experiments.store import ResultsStore

    store = ResultsStore(args.results)
    manifest = store.read_manifest()
    table = store.load()
    if not len(table):
        print(f"{args.results} holds no finished runs yet.", file=sys.stderr)
        return 1
    min_t = args.min_t if args.min_t is not None else \
        load_config(manifest["config"]).fit_min_t
    out = args.out if args.out is not None else Path(args.results)
    files = _write_report(table, Path(out), min_t=min_t, plots=True)
    print((Path(out) / "summary.md").read_text())
    for path in files:
        print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand.

    Returns:
        The parser of ``rlhf-gbpm``.
    """
    parser = argparse.ArgumentParser(prog="rlhf-gbpm", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    p_run = sub.add_parser(
        "run", help="run a sweep (default: the built-in 'default' study)",
        description="Run a sweep described by a TOML config (a path or a built-in name; see "
                    "'rlhf-gbpm list'), writing the results table, manifest, summary and "
                    "figures to --out.")
    p_run.add_argument("config", nargs="?", default=None,
                       help="config file or built-in name (default: 'default')")
    p_run.add_argument("--out", type=Path, default=None,
                       help="results folder (default: out/<config name>)")
    p_run.add_argument("--resume", action="store_true",
                       help="continue an interrupted sweep in --out, skipping finished runs")
    p_run.add_argument("--backend", choices=("inprocess", "process", "ray"), default=None,
                       help="where runs execute (default: the config's backend)")
    p_run.add_argument("--address", default=None,
                       help="Ray cluster address (default: start a local Ray)")
    p_run.add_argument("--workers", type=int, default=None,
                       help="worker processes or concurrent Ray tasks (default: CPU count)")
    p_run.add_argument("--no-plots", action="store_true", help="skip the figures")
    p_run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p_run.set_defaults(func=_cmd_run)

    p_plot = sub.add_parser(
        "plot", help="figures and summary table of a results folder",
        description="Verify and load a results folder, then write summary.md/.csv, fits.csv "
                    "and figures/*.png|pdf.")
    p_plot.add_argument("results", type=Path, help="results folder written by 'run'")
    p_plot.add_argument("--out", type=Path, default=None,
                        help="destination folder (default: the results folder)")
    p_plot.add_argument("--min-t", type=int, default=None,
                        help="first round used by the rate fits (default: the config's)")
    p_plot.set_defaults(func=_cmd_plot)

    p_list = sub.add_parser("list", help="list environments, agents, regularizers, configs",
                            description="List what a config can name.")
    p_list.set_defaults(func=_cmd_list)

    p_study = sub.add_parser("study", help="run an auxiliary optimizer study")
    p_study.add_argument("name", nargs="?", help="study name (see --list)")
    p_study.add_argument("--list", action="store_true", help="list the studies")
    p_study.add_argument("--config", type=Path, default=None, help="TOML file of overrides")
    p_study.add_argument("--out", type=Path, default=Path("out/studies"), help="output folder")
    p_study.set_defaults(func=_cmd_study)

    from rlhf_gbpm.experiments.regularizer_bench import add_cli_parser

    add_cli_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rlhf-gbpm``.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    from rlhf_gbpm.errors import ConfigError, RegularizerError, ResultsCorruptedError

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (ConfigError, ResultsCorruptedError, RegularizerError, FileExistsError,
            FileNotFoundError, BlockingIOError) as err:
        print(f"rlhf-gbpm {args.command}: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.command != "run":
            raise
        out = args.out if args.out is not None else "out/<config name>"
        print(f"\nrlhf-gbpm run: interrupted; finished chunks are recorded. Continue with: "
              f"rlhf-gbpm run --resume --out {out}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
