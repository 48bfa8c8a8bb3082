"""Steps per second: the native GBPMDuelVectorEnv against B plain envs stepped in a loop.

Usage:
    python benchmarks/bench_vector_env.py [--num-envs 1000] [--steps 200] [--contexts 4]

Both sides play the same random pairs on the same B instances and seeds (their outputs
are identical, see tests/envs/test_gbpm_duel.py); the reference is the straightforward
implementation: a Python list of B ``GBPMDuelEnv`` and one ``step`` per env per round.
Throughput is counted in env-steps (rounds x runs) per CPU second (``time.process_time``)
in the steady state: both sides are reset once and play ``--warmup`` untimed rounds (without
contexts both switch from computing each pair's probability to a (K, K) table after K^2/4
rounds, which costs about as much as those rounds), then ``--repeats`` timings of further
rounds give the median and the range.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
from _cli import non_negative_int, positive_int
from _timing import spread

from rlhf_gbpm.envs.gbpm_duel import GBPMDuelEnv, GBPMDuelVectorEnv


def _contexts(value: str):
    if value in ("none", "None"):
        return None
    return value if value == "continuous" else int(value)


def _rates(step_round, num_envs, steps, repeats, warmup):
    """Env-steps per CPU second, one rate per repeat, shape (repeats,).

    ``step_round(t)`` plays round t in every env; ``warmup`` untimed rounds come first, then
    each repeat times ``steps`` further rounds (the steady state of a long sweep).
    """
    for t in range(warmup):
        step_round(t)
    rates = np.empty(repeats)
    for r in range(repeats):
        first = warmup + r * steps
        start = time.process_time()
        for t in range(first, first + steps):
            step_round(t)
        rates[r] = num_envs * steps / (time.process_time() - start)
    return rates


def bench_vector(num_envs, steps, actions, kwargs, repeats, warmup):
    """The native vector env, reset once."""
    venv = GBPMDuelVectorEnv(num_envs=num_envs, **kwargs)
    venv.reset(seed=0)
    return _rates(lambda t: venv.step(actions[t]), num_envs, steps, repeats, warmup)


def bench_loop(num_envs, steps, actions, kwargs, repeats, warmup):
    """B plain envs stepped in a Python loop, each reset once."""
    envs = [GBPMDuelEnv(**kwargs) for _ in range(num_envs)]
    for i, env in enumerate(envs):
        env.reset(seed=i)

    def step_round(t):
        for env, action in zip(envs, actions[t]):
            env.step(action)

    return _rates(step_round, num_envs, steps, repeats, warmup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=positive_int, default=1000)
    parser.add_argument("--steps", type=positive_int, default=200, help="rounds for the vector env")
    parser.add_argument("--loop-steps", type=positive_int, default=20, help="rounds for the loop")
    parser.add_argument("--contexts", type=_contexts, default=None)
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument("--warmup", type=non_negative_int, default=120,
                        help="untimed rounds after reset (without contexts the envs switch to "
                             "a pair-probability table after K^2/4 = 100 rounds)")
    args = parser.parse_args()
    kwargs = dict(d=5, K=20, rank=1, S=5.0, contexts=args.contexts, horizon=100_000)
    rng = np.random.default_rng(0)
    rounds = args.warmup + args.repeats * max(args.steps, args.loop_steps)
    actions = rng.integers(0, 20, size=(rounds, args.num_envs, 2))
    vec = bench_vector(args.num_envs, args.steps, actions, kwargs, args.repeats, args.warmup)
    loop = bench_loop(args.num_envs, args.loop_steps, actions, kwargs, args.repeats,
                      args.warmup)
    print(f"machine: {platform.processor() or platform.machine()}, numpy {np.__version__}")
    print(f"B = {args.num_envs}, d = 5, K = 20, contexts = {args.contexts}, timed after "
          f"{args.warmup} rounds")
    print(f"{'implementation':<34}  env-steps/s: median (range)")
    for label, rates in (("GBPMDuelVectorEnv (native)", vec),
                         ("B plain GBPMDuelEnv in a loop", loop)):
        print(f"{label:<34}  {spread(rates, ',.0f')}")
    print(f"ratio (vector / loop, medians): {np.median(vec) / np.median(loop):.1f}x")


if __name__ == "__main__":
    main()
