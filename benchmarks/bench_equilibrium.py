"""Throughput of the batched SNE solver against cvxpy and a per-problem scipy loop.

For each (K, batch size, regularizer, eta) the script solves the same random GBPM games
(``random_instance``, d = 5, rank 1, S = 5) three ways and prints one table row:

* ``rlhf_gbpm.solve_sne``: one batched call (score-space Newton with continuation);
* cvxpy: the convex program of spec gbpm.md section 8.2, one Clarabel solve per problem,
  tolerances tightened to the solver's limit (``method="cvxpy"``), timed on a subset;
* scipy: ``scipy.optimize.root(method="hybr")`` per problem on the same score-space
  equation s = eta A BR(s), xtol 1e-12 (for KL the log-ratio root finding of the authors'
  code, up to a change of coordinates);
* Newton loop: the per-problem Newton method written here, one problem at a time (damped
  Newton on the same equation directly at the target eta, Armijo backtracking on ||F||^2,
  stopped at ||BR(A p) - p||_inf <= 1e-12 or when no step decreases ||F||).

All four start cold (s = 0: the uniform policy, the regularizers' reference).

Accuracy is reported next to the time as the largest dual gap DGap_eta over the problems
(the certificate is computed the same way for all four), with the share of problems each
per-problem reference solved; the ratios compare CPU seconds per problem
(``time.process_time``, BLAS on one thread); each time is the median of ``--repeat`` runs
(default 5). The batched solver and the Newton loop are timed in turns, and the "x loop"
column is the median of the ratios of the pairs, with their range: on a shared machine a
pair sees one state of the machine, two medians taken minutes apart need not. As in the
sweep's worker processes (``rlhf_gbpm.experiments.backends``), glibc keeps freed heap
memory, so the batched solver's (B, K, K) temporaries are not mapped and unmapped again at
every Newton step (``--default-malloc`` keeps glibc's defaults; the per-problem references
only allocate arrays below glibc's mmap threshold either way). Run
``python benchmarks/bench_equilibrium.py`` (about fifteen minutes on one core) or ``--quick``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from _cli import positive_int
from _timing import spread, timed
from scipy import optimize
from threadpoolctl import threadpool_limits

from rlhf_gbpm import dual_gap, get_regularizer, random_instance, solve_sne
from rlhf_gbpm.experiments.backends import _keep_heap_memory


def make_games(K: int, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([random_instance(d=5, K=K, rank=1, S=5.0, seed=rng).payoff()
                     for _ in range(n)])


def scipy_loop(A: np.ndarray, reg, eta: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-problem scipy root finding in score space; returns (policies, success)."""
    B, K = A.shape[0], A.shape[-1]
    rho = np.full((1, K), 1.0 / K)
    out = np.empty((B, K))
    ok = np.zeros(B, dtype=bool)
    for b in range(B):
        Ab = A[b]

        def fun(s, Ab=Ab):
            p, _, _ = reg.br1(s[None], rho)
            return s - eta * (Ab @ p[0])

        res = optimize.root(fun, np.zeros(K), method="hybr", options={"xtol": 1e-12})
        out[b] = reg.br1(res.x[None], rho)[0][0]
        ok[b] = res.success
    return out, ok


def newton_loop(A: np.ndarray, reg, eta: float, tol: float = 1e-12,
                max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Per-problem damped Newton in score space from s = 0; returns (policies, success)."""
    B, K = A.shape[0], A.shape[-1]
    rho = np.full((1, K), 1.0 / K)
    out = np.empty((B, K))
    ok = np.zeros(B, dtype=bool)

    def residual(s, M):
        p, d, _ = reg.br1(s[None], rho)
        return s - M @ p[0], p[0], d[0]

    for b in range(B):
        M = eta * A[b]
        s = np.zeros(K)
        F, p, d = residual(s, M)
        for _ in range(max_iter):
            pres = np.max(np.abs(reg.br1((s - F)[None], rho)[0][0] - p))
            if pres <= tol:
                ok[b] = True
                break
            # I - M J with J = diag(d) - d d^T / sum(d), in O(K^2)
            jac = np.eye(K) - M * d + np.outer(M @ d, d / d.sum())
            step = np.linalg.solve(jac, -F)
            m0, alpha, moved = F @ F, 1.0, False
            for _ in range(30):
                Ft, pt, dt = residual(s + alpha * step, M)
                if Ft @ Ft <= (1.0 - 1e-4 * alpha) * m0:
                    s, F, p, d, moved = s + alpha * step, Ft, pt, dt, True
                    break
                alpha *= 0.5
            if not moved:  # ||F|| at its rounding floor (s, F and p unchanged)
                ok[b] = pres <= 1e3 * tol
                break
        out[b] = p
    return out, ok


def paired(fn_a, fn_b, repeat: int):
    """Time ``fn_a`` and ``fn_b`` in turns, ``repeat`` times each.

    Each pair runs under one state of a shared machine, so the ratio of a pair is steadier
    than the ratio of two medians taken minutes apart. Returns the two values (of the last
    runs) and the CPU times of both, each of shape (repeat,).
    """
    t_a, t_b = np.empty(repeat), np.empty(repeat)
    for r in range(repeat):
        t0 = time.process_time()
        value_a = fn_a()
        t1 = time.process_time()
        value_b = fn_b()
        t_a[r], t_b[r] = t1 - t0, time.process_time() - t1
    return value_a, value_b, t_a, t_b


def run_row(K, B, name, eta, n_cvx, n_ref, rows, repeat):  # noqa: PLR0913
    """Time the batched solver and the three references on one configuration."""
    A = make_games(K, B, seed=K)
    reg = get_regularizer(name)
    solve_sne(A[:2], reg, eta)  # warm up imports and caches
    sub = A[:n_ref]
    res, (pol_nl, ok_nl), t_all, t_loop = paired(lambda: solve_sne(A, reg, eta),
                                                 lambda: newton_loop(sub, reg, eta), repeat)
    t_ours, t_nl = float(np.median(t_all)), float(np.median(t_loop))
    loop_ratios = (t_loop / n_ref) / (t_all / B)
    gap_ours = float(res.dual_gap.max())
    if n_cvx:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cvx, t_cvx, _, _ = timed(lambda: solve_sne(A[:n_cvx], reg, eta, method="cvxpy"),
                                     repeat if K < 1000 else 1)
        gap_cvx = float(cvx.dual_gap.max())
    else:  # skipped (KL at K = 1000: one exponential-cone solve takes minutes)
        n_cvx, t_cvx, gap_cvx = 1, float("nan"), float("nan")
    (pol_sp, ok_sp), t_sp, _, _ = timed(lambda: scipy_loop(sub, reg, eta), repeat)
    gap_sp = float(np.max(dual_gap(pol_sp, sub, reg, eta)))
    gap_nl = float(np.max(dual_gap(pol_nl, sub, reg, eta)))
    per = (t_ours / B, t_cvx / n_cvx, t_sp / n_ref, t_nl / n_ref)
    rows.append((K, B, name, eta, per, (gap_ours, gap_cvx, gap_sp, gap_nl),
                 (float(ok_sp.mean()), float(ok_nl.mean())), bool(res.success.all()),
                 float(res.nit.mean()), loop_ratios))
    print_row(rows[-1])


HEADER = (f"{'K':>5} {'B':>5} {'psi':>6} {'eta':>6} | {'ours s/prob':>11} {'gap':>8} "
          f"{'nit':>5} | {'cvxpy s/prob':>12} {'gap':>8} | {'scipy s/prob':>12} {'gap':>8} "
          f"{'ok':>4} | {'loop s/prob':>11} {'gap':>8} {'ok':>4} | {'x cvxpy':>7} "
          f"{'x scipy':>7} {'x loop (range)':>18}")


def print_row(row):
    """One table line: times per problem, certificates, and the ratios."""
    K, B, name, eta, per, gaps, oks, success, nit, loop_ratios = row
    print(f"{K:>5} {B:>5} {name:>6} {eta:>6g} | {per[0]:>11.2e} {gaps[0]:>8.1e} {nit:>5.1f} | "
          f"{per[1]:>12.2e} {gaps[1]:>8.1e} | {per[2]:>12.2e} {gaps[2]:>8.1e} {oks[0]:>4.0%} | "
          f"{per[3]:>11.2e} {gaps[3]:>8.1e} {oks[1]:>4.0%} | {per[1] / per[0]:>7.0f} "
          f"{per[2] / per[0]:>7.0f} {spread(loop_ratios):>18}"
          + ("" if success else "  (ours: some not converged)"), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller batches")
    parser.add_argument("--repeat", type=positive_int, default=5,
                        help="timings are the median of this many runs (cvxpy at K = 1000: 1)")
    parser.add_argument("--all-cvxpy", action="store_true",
                        help="also time cvxpy on KL with K = 1000 (about 7 minutes)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 200, 1000],
                        help="the numbers of actions K to run (of 20, 200, 1000)")
    parser.add_argument("--default-malloc", action="store_true",
                        help="keep glibc's default mmap threshold (freed heap returned)")
    args = parser.parse_args()
    if not args.default_malloc:
        _keep_heap_memory()
    scale = 0.2 if args.quick else 1.0
    configs = [  # (K, B, n_cvxpy, n_ref): n_ref problems for the scipy and Newton loops
        (20, int(1000 * scale), max(10, int(100 * scale)), max(10, int(200 * scale))),
        (200, max(4, int(50 * scale)), 4, 10),
        (1000, max(2, int(8 * scale)), 1, 2),
    ]
    rows = []
    print(HEADER)
    with threadpool_limits(1):  # one core for every method
        for K, B, n_cvx, n_sp in (c for c in configs if c[0] in args.sizes):
            for name in ("kl", "l2", "tsallis_half"):
                for eta in (0.01, 1.0, 100.0):
                    skip_cvx = K == 1000 and name == "kl" and not args.all_cvxpy
                    run_row(K, B, name, eta, 0 if skip_cvx else n_cvx, n_sp, rows, args.repeat)


if __name__ == "__main__":
    main()
