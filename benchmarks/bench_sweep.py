"""The authors' Greedy Sampling sweep: the package's batched runner against a one-run reference.

Usage::

    python benchmarks/bench_sweep.py                      # ONS, the full sweep (400 runs, T = 1e4)
    python benchmarks/bench_sweep.py --estimator mle      # the same with the exact MLE
    python benchmarks/bench_sweep.py --seeds 2 --T 2000   # a smaller sweep
    python benchmarks/bench_sweep.py --scaling            # cost per round vs B, K and d
    python benchmarks/bench_sweep.py --resolve            # warm SNE re-solves, K = 20..1000
    python benchmarks/bench_sweep.py --breakdown          # act / monitor / update per round

The sweep is the built-in config ``authors_gs`` (spec gbpm.md section 6.2: 2 sizes x 10 eta x
20 seeds, T = 10^4, GS with ONS, NE refresh every 2 rounds, KL to uniform), run through
``rlhf_gbpm.experiments.run_sweep`` on the process backend (``--workers``, one BLAS thread per
worker) and measured in full: wall time, CPU time of the parent and the workers, peak
resident memory (``resource.getrusage``, the largest process).

The reference (``benchmarks/_reference.py``) plays the same runs one at a time, one round at a
time, with one scipy ``root(method="hybr")`` NE solve per refresh and a per-run numpy
estimator. It runs a subset (``--ref-seeds`` seeds x ``--ref-etas`` for each size) for
``--ref-T`` rounds and is extrapolated to every run and T rounds: linearly in runs and T for
ONS (mean CPU per round), with a per-round cost a + b t fitted for the MLE (its refit grows
with the data). Its regret
curves are compared with the sweep's rows of the same (size, eta, seed) at every checkpoint
t <= ref-T: the largest relative difference is printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cli import at_least, non_negative_int, positive_int  # noqa: E402
from _reference import run_reference  # noqa: E402
from _timing import spread  # noqa: E402

from rlhf_gbpm.experiments import load_config, run_sweep  # noqa: E402
from rlhf_gbpm.experiments.backends import _keep_heap_memory  # noqa: E402

SIZES = ({"d": 5, "K": 20, "S": 5.0}, {"d": 10, "K": 40, "S": 10.0})


def sweep_config(*, estimator: str, seeds: int, T: int, workers: int, chunk_size: int,
                 backend: str, every: int):
    """The authors_gs config with the benchmark's overrides."""
    data = load_config("authors_gs").to_dict()
    data["horizon"] = T
    data["seeds"] = {"count": seeds}
    data["checkpoints"] = {"every": every}
    data["agents"][0]["kwargs"] = dict(data["agents"][0]["kwargs"], estimator=estimator)
    data["agents"][0]["label"] = f"GS-{estimator.upper()}"
    data["backend"] = {"name": backend, "chunk_size": chunk_size}
    if backend != "inprocess":
        data["backend"]["workers"] = workers
    data["name"] = f"bench_sweep_{estimator}"
    return load_config(data)


def _cpu_children() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_batched(config) -> dict:
    """Run the sweep; returns times, peak memory and the table."""
    with tempfile.TemporaryDirectory() as tmp:
        cpu0, child0 = time.process_time(), _cpu_children()
        wall0 = time.perf_counter()
        result = run_sweep(config, Path(tmp) / "out", progress=False)
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0 + _cpu_children() - child0
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    rss_child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return {"wall": wall, "cpu": cpu, "rss_mib": max(rss_self, rss_child),
            "table": result.table}


def run_references(*, estimator: str, seeds: int, etas, T: int) -> dict:
    """Reference runs on a subset, per size: curves and the fitted per-round cost."""
    out = {}
    for size in SIZES:
        curves, cost_rows = {}, []
        for eta in etas:
            for seed in range(seeds):
                res = run_reference(seed, float(eta), d=size["d"], K=size["K"], S=size["S"],
                                    T=T, estimator=estimator, refresh=2, clock=True)
                curves[(float(eta), seed)] = np.cumsum(res["mbr"])
                cost_rows.append(res["cpu_at"])
        out[size["d"]] = {"curves": curves, "cpu_at": np.mean(cost_rows, axis=0)}
    return out


def extrapolate(cpu_at: np.ndarray, T_ref: int, T: int, *, growth: bool):
    """Per-round cost a + b t from the cumulative CPU times; total for one run of T rounds.

    Args:
        cpu_at: Cumulative CPU seconds after each tenth of the T_ref rounds, shape (10,).
        T_ref: Rounds run.
        T: Target rounds.
        growth: Fit the slope b (the MLE refit grows with the data); else b = 0 and a is
            the mean cost per round (linear extrapolation in T).

    Returns:
        (a, b, total seconds for one run of T rounds).
    """
    n = cpu_at.size
    edges = np.linspace(0, T_ref, n + 1)
    per_round = np.diff(np.concatenate([[0.0], cpu_at])) / np.diff(edges)
    mid = 0.5 * (edges[1:] + edges[:-1])
    if not growth:
        a = float(cpu_at[-1] / T_ref)
        return a, 0.0, a * T
    b, a = np.polyfit(mid, per_round, 1)
    b = max(float(b), 0.0)
    a = float(per_round.mean() - b * mid.mean())
    return a, b, a * T + 0.5 * b * T * T


def compare(table, refs, T_ref: int) -> float:
    """Largest relative difference of cumulative MBR regret, reference vs sweep."""
    worst = 0.0
    for size in SIZES:
        rows = table[table["d"] == size["d"]]
        for (eta, seed), curve in refs[size["d"]]["curves"].items():
            run = rows[(np.isclose(rows["eta"], eta)) & (rows["seed"] == seed)
                       & (rows["t"] <= T_ref)]
            t = run["t"].to_numpy()
            ours = run["cum_mbr_regret"].to_numpy()
            theirs = curve[t - 1]
            rel = np.abs(ours - theirs) / np.maximum(np.abs(theirs), 1e-300)
            worst = max(worst, float(np.max(rel, initial=0.0)))
    return worst


def main_sweep(args) -> None:
    config = sweep_config(estimator=args.estimator, seeds=args.seeds, T=args.T,
                          workers=args.workers, chunk_size=args.chunk_size,
                          backend=args.backend, every=args.every)
    etas = np.asarray(config.eta, dtype=float)
    ref_etas = etas[np.linspace(0, etas.size - 1, args.ref_etas).round().astype(int)]
    print(f"# bench_sweep: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"load {os.getloadavg()[0]:.1f}, numpy {np.__version__}, python "
          f"{platform.python_version()}")
    print(f"sweep: 2 sizes x {etas.size} eta x {args.seeds} seeds = {config.num_runs} runs, "
          f"T = {args.T}, estimator {args.estimator}, refresh 2, backend {args.backend} "
          f"({args.workers} workers, chunks of {args.chunk_size})", flush=True)
    T_ref = min(args.ref_T, args.T)
    batched, refs = [], []
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(args.repeat):  # interleaved: each pair sees the machine in one state
            batched.append(run_batched(config))
            refs.append(run_references(estimator=args.estimator, seeds=args.ref_seeds,
                                       etas=ref_etas, T=T_ref))
            print(f"  run {len(batched)}: batched wall {batched[-1]['wall']:.1f} s, CPU "
                  f"{batched[-1]['cpu']:.1f} s", flush=True)
    same = all(b["table"].equals(batched[0]["table"]) for b in batched[1:])
    wall = np.array([b["wall"] for b in batched])
    cpu = np.array([b["cpu"] for b in batched])
    print(f"batched ({args.repeat} runs): wall {spread(wall)} s, CPU {spread(cpu)} s (all "
          f"processes), peak RSS {max(b['rss_mib'] for b in batched):.0f} MiB; tables "
          f"{'identical' if same else 'DIFFERENT'} across runs")
    n_runs = etas.size * args.seeds
    totals = np.zeros(args.repeat)
    print(f"reference: {args.ref_seeds} seeds x eta {np.round(ref_etas, 3).tolist()} per size, "
          f"{T_ref} rounds, timed after each batched run; per-round CPU a + b t extrapolated to "
          f"{n_runs} runs x {args.T} rounds per size (medians over the repeats)")
    for size in SIZES:
        fits = [extrapolate(ref[size["d"]]["cpu_at"], T_ref, args.T,
                            growth=args.estimator == "mle") for ref in refs]
        a, b, one = (float(np.median(x)) for x in zip(*fits))
        totals += [fit[2] * n_runs for fit in fits]
        print(f"  d={size['d']:>2} K={size['K']:>2}: a = {a * 1e6:.0f} us/round, "
              f"b = {b * 1e9:.2f} ns/round^2 -> {one * n_runs:.0f} s")
    worst = compare(batched[0]["table"], refs[0], T_ref)
    print(f"reference total (extrapolated): {spread(totals, '.0f')} s = "
          f"{np.median(totals) / 60:.1f} min (one core)")
    print(f"ratio reference / batched, each run with its own reference timing: wall "
          f"{spread(totals / wall, '.0f')}x, CPU {spread(totals / cpu, '.0f')}x")
    print(f"regret curves: max relative difference {worst:.2e} over "
          f"{2 * len(ref_etas) * args.ref_seeds} runs, checkpoints t <= {T_ref}")


# ----------------------------------------------------------------------------- scaling


def round_cost(B: int, d: int, K: int, S: float, rounds: int, warmup: int) -> np.ndarray:
    """CPU seconds per round of B monitored GS-ONS runs (after ``warmup`` rounds).

    Returns:
        The cost of ``agent.act``, the regret monitor's ``step`` (with the env step) and
        ``agent.update`` per round, shape (3,).
    """
    from rlhf_gbpm.agents import GreedySampling
    from rlhf_gbpm.envs import GBPMDuelVectorEnv, VectorRegretMonitor

    etas = np.resize(np.logspace(-2, 3, 10), B)
    seeds = list(range(B))
    T = rounds + warmup
    env = GBPMDuelVectorEnv(num_envs=B, d=d, K=K, rank=1, S=S, horizon=T, max_episode_steps=T)
    venv = VectorRegretMonitor(env, "kl", eta=etas)
    agent = GreedySampling(regularizer="kl", eta=etas, estimator="ons", refresh=2, S=S)
    agent.reset(seed=seeds)
    obs, _ = venv.reset(seed=seeds)
    parts = np.zeros(3)
    clock = time.process_time
    for t in range(T):
        c0 = clock()
        action = agent.act(obs)
        c1 = clock()
        next_obs, reward, _, _, _ = venv.step(action)
        c2 = clock()
        agent.update(obs, action, reward)
        if t >= warmup:
            parts += (c1 - c0, c2 - c1, clock() - c2)
        obs = next_obs
    return parts / rounds


def main_breakdown(args) -> None:
    """Per-part cost at B = 2 (the fixed per-round cost) and at the sweep's chunk size."""
    rounds, warmup = args.scaling_rounds, args.scaling_warmup
    print(f"# monitored GS-ONS (refresh 2), CPU time, rounds {warmup + 1}..{warmup + rounds}, "
          "one BLAS thread; act / monitor step / update")
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for size in SIZES:
            for B in (2, args.chunk_size):
                cost = round_cost(B=B, rounds=rounds, warmup=warmup, **size) * 1e6
                per_run = cost / B
                print(f"  d={size['d']:>2} K={size['K']:>2} B={B:>3}: per round "
                      f"{cost[0]:7.1f} / {cost[1]:6.1f} / {cost[2]:6.1f} us; per run-round "
                      f"{per_run[0]:6.2f} / {per_run[1]:5.2f} / {per_run[2]:5.2f} us "
                      f"(total {per_run.sum():.2f})", flush=True)


def main_scaling(args) -> None:
    rounds, warmup = args.scaling_rounds, args.scaling_warmup
    print(f"# cost per round of monitored GS-ONS (refresh 2), CPU time, rounds {warmup + 1}.."
          f"{warmup + rounds}, one BLAS thread")
    series = {
        "B": [(B, dict(B=B, d=5, K=20, S=5.0)) for B in (50, 100, 200, 400)],
        "K": [(K, dict(B=100, d=5, K=K, S=5.0)) for K in (10, 20, 40, 80)],
        "d": [(d, dict(B=100, d=d, K=20, S=5.0)) for d in (3, 5, 10, 20)],
    }
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, points in series.items():
            xs, ys = [], []
            for x, kw in points:
                cost = float(np.sum(round_cost(rounds=rounds, warmup=warmup, **kw)))
                xs.append(x)
                ys.append(cost)
                print(f"  {name} = {x:>4} ({kw}): {cost * 1e3:.2f} ms/round, "
                      f"{cost / kw['B'] * 1e6:.1f} us per run-round", flush=True)
            slope = np.polyfit(np.log(xs), np.log(ys), 1)[0]
            local = np.log(ys[-1] / ys[-2]) / np.log(xs[-1] / xs[-2])
            print(f"exponent in {name}: {slope:.2f} over the range, {local:.2f} between the "
                  "two largest (fixed per-round overhead flattens the small sizes)")


# ----------------------------------------------------------------------------- re-solves


def main_resolve(args) -> None:
    """Warm SNE re-solves along drifting estimates: chord vs solve_sne vs scipy per problem."""
    from _reference import kl_sne

    from rlhf_gbpm.agents.greedy_sampling import _ChordSNE, _payoff
    from rlhf_gbpm.equilibrium import solve_sne
    from rlhf_gbpm.instances import random_instance
    from rlhf_gbpm.links import get_link
    from rlhf_gbpm.regularizers import get_regularizer
    from rlhf_gbpm.skew import skew_to_vec, vec_to_skew

    reg, link = get_regularizer("kl"), get_link("logistic")
    print("# warm KL SNE re-solves along a random walk of Theta_hat (steps 0.01), d = 5, "
          "eta = logspace(-2, 3) cycled; CPU ms per problem and re-solve; max |p - p_scipy|")
    print(f"{'K':>5} {'B':>4} {'chord':>9} {'solve_sne':>10} {'scipy hybr':>11} "
          f"{'x solve_sne':>12} {'x scipy':>8} {'max diff':>9}")
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for K, B, n in ((20, 200, 10), (200, 20, 6), (1000, 4, 4)):
            rng = np.random.default_rng(K)
            insts = [random_instance(d=5, K=K, rank=1, S=5.0, seed=i) for i in range(B)]
            feats = np.stack([i.feature_map.features(0) for i in insts])
            theta = np.stack([skew_to_vec(i.theta) for i in insts])
            etas = np.resize(np.logspace(-2, 3, 10), B)
            steps = 0.01 * rng.standard_normal((n,) + theta.shape)
            thetas = list(theta + np.cumsum(steps, axis=0))  # a random walk of the estimate
            games = [_payoff(feats, vec_to_skew(t, 5), link) for t in thetas]
            chord = _ChordSNE(reg, etas, K)
            chord.policy(feats, thetas[0], 1, link)
            prev = solve_sne(games[0], reg, etas)
            u = [kl_sne(games[0][b], etas[b], np.full(K, 1.0 / K))[1] for b in range(B)]
            t_c = t_s = t_h = 0.0
            diff = 0.0
            for k in range(1, n):
                t0 = time.process_time()
                pc = chord.policy(feats, thetas[k], k + 1, link)
                t1 = time.process_time()
                prev = solve_sne(games[k], reg, etas, warm_start=prev)
                t2 = time.process_time()
                ph = np.empty((B, K))
                for b in range(B):
                    ph[b], u[b] = kl_sne(games[k][b], etas[b], np.full(K, 1.0 / K), u[b])
                t3 = time.process_time()
                t_c, t_s, t_h = t_c + t1 - t0, t_s + t2 - t1, t_h + t3 - t2
                diff = max(diff, float(np.abs(pc - ph).max()),
                           float(np.abs(prev.policy - ph).max()))
            per = (n - 1) * B
            print(f"{K:>5} {B:>4} {t_c / per * 1e3:>9.3f} {t_s / per * 1e3:>10.3f} "
                  f"{t_h / per * 1e3:>11.3f} {t_s / t_c:>11.1f}x {t_h / t_c:>7.0f}x "
                  f"{diff:>9.1e}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estimator", choices=("ons", "mle"), default="ons")
    parser.add_argument("--seeds", type=positive_int, default=20)
    parser.add_argument("--T", type=positive_int, default=10_000)
    parser.add_argument("--every", type=positive_int, default=25, help="checkpoint period")
    parser.add_argument("--backend", choices=("process", "inprocess"), default="process")
    parser.add_argument("--workers", type=positive_int, default=2)
    parser.add_argument("--chunk-size", type=positive_int, default=100)
    parser.add_argument("--repeat", type=positive_int, default=3,
                        help="times the sweep and the reference subset are timed (medians and "
                             "ranges printed)")
    parser.add_argument("--ref-seeds", type=positive_int, default=1)
    parser.add_argument("--ref-etas", type=positive_int, default=3,
                        help="etas of the grid (spread)")
    parser.add_argument("--ref-T", type=at_least(10), default=500,
                        help="reference rounds (>= 10: it is clocked at each tenth)")
    parser.add_argument("--scaling", action="store_true", help="cost-per-round exponents")
    parser.add_argument("--resolve", action="store_true",
                        help="warm SNE re-solves: chord vs solve_sne vs scipy per problem")
    parser.add_argument("--scaling-rounds", type=positive_int, default=400)
    parser.add_argument("--scaling-warmup", type=non_negative_int, default=400)
    parser.add_argument("--breakdown", action="store_true",
                        help="act / monitor step / update per round at B = 2 and B = chunk size")
    args = parser.parse_args()
    if args.resolve or args.scaling or args.breakdown:
        _keep_heap_memory()  # as the process backend's workers do
    if args.breakdown:
        main_breakdown(args)
    elif args.resolve:
        main_resolve(args)
    elif args.scaling:
        main_scaling(args)
    else:
        main_sweep(args)


if __name__ == "__main__":
    main()
