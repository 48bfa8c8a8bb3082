"""The ``rlhf-gbpm`` command line.

Subcommands: ``run`` (the default study), ``list``, ``study NAME``. Only this module configures
logging handlers and prints.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]


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


def _cmd_list(args: argparse.Namespace) -> int:
    from rlhf_gbpm.analysis import list_studies

    print("studies:")
    for name in list_studies():
        print(f"  {name}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    import numpy as np

    from rlhf_gbpm import dual_gap, get_regularizer, random_instance, solve_sne

    inst = random_instance(d=5, K=20, rank=1, S=5.0, seed=0)
    payoff = inst.payoff()
    reg = get_regularizer("kl")
    for eta in (0.01, 1.0, 100.0):
        res = solve_sne(payoff, reg, eta)
        gap = float(np.asarray(dual_gap(res.policy, payoff, reg, eta)))
        print(f"eta={eta:g}: SNE dual gap {gap:.3e}, max prob {res.policy.max():.3f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="rlhf-gbpm", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    p_run = sub.add_parser("run", help="run an experiment (default: the demo study)")
    p_run.set_defaults(func=_cmd_run)

    p_list = sub.add_parser("list", help="list environments, agents, regularizers, configs")
    p_list.set_defaults(func=_cmd_list)

    p_study = sub.add_parser("study", help="run an auxiliary optimizer study")
    p_study.add_argument("name", nargs="?", help="study name (see --list)")
    p_study.add_argument("--list", action="store_true", help="list the studies")
    p_study.add_argument("--config", type=Path, default=None, help="TOML file of overrides")
    p_study.add_argument("--out", type=Path, default=Path("out/studies"), help="output folder")
    p_study.set_defaults(func=_cmd_study)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rlhf-gbpm``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
