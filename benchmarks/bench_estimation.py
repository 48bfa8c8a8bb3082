"""Benchmarks of the estimators against straightforward references implemented here.

Run:  python benchmarks/bench_estimation.py [--quick] [--sizes 10 20 40]

1. Nuclear-norm MLE (ETC): fit_nuclear_mle (FISTA + SVT) against cvxpy/Clarabel on the same
   problem, d in {10, 20, 40}, one problem each; objective difference and time ratio.
2. Constrained MLE (Greedy Sampling): fit_mle on per-pair sufficient statistics against
   fit_mle on the raw comparisons (identical solutions), and against one cvxpy solve per
   problem; then the warm-started per-round refit the agents do.
3. Online Newton Step: the batched update against one run at a time in R^{d^2}, the way the
   rebuttal code runs it.

Timings: median over repeats, with the spread (min-max) in brackets, in CPU time of the
process by default (the machine is shared; --clock wall for wall time). BLAS runs on one
thread unless --threads says otherwise.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from functools import partial

import _timing
import numpy as np
from threadpoolctl import threadpool_limits

from rlhf_gbpm.estimation import (
    OnlineNewtonStep,
    fit_mle,
    fit_nuclear_mle,
    lambda_theory,
    mle_cvxpy,
)
from rlhf_gbpm.instances import random_skew_theta
from rlhf_gbpm.skew import pair_features, skew_dim, skew_to_vec, vec_to_skew

CLOCK = time.process_time


def timed(fn, repeats):
    """``_timing.timed`` on the clock chosen with ``--clock``."""
    return _timing.timed(fn, repeats, clock=CLOCK)


def fmt(med, lo, hi):
    return f"{med * 1e3:9.2f} ms [{lo * 1e3:.2f}-{hi * 1e3:.2f}]"


def unit(rng, shape):
    v = rng.standard_normal(shape)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def pair_counts(theta, feats, n, rng):
    """n uniform ordered plays folded into unordered-pair counts and win fractions."""
    i, j = np.triu_indices(feats.shape[0], k=1)
    xp = pair_features(feats[i], feats[j])
    B = theta.shape[0]
    counts = rng.multinomial(n, np.full(len(i), 1.0 / len(i)), size=B).astype(float)
    p = 1.0 / (1.0 + np.exp(-(theta @ xp.T)))
    wins = rng.binomial(counts.astype(np.int64), p).astype(float)
    return np.broadcast_to(xp, (B,) + xp.shape), wins / np.maximum(counts, 1), counts


# ----------------------------------------------------------------------------- 1. nuclear


def bench_nuclear(sizes, repeats):
    print("\n## Nuclear-norm MLE: FISTA+SVT vs cvxpy (Clarabel, tol 1e-10)")
    print("T0 = 1e9 uniform exploration samples as pair counts, K = d + 10 arms, rank-2 Theta*,"
          " ||Theta*||_F = 5, lambda = lambda_theory(T0, d, 0.05)")
    print(f"{'d':>4} {'rows':>6} {'lambda':>9} {'fista':>28} {'nit':>5} {'cvxpy':>10} "
          f"{'ratio':>7} {'fun diff':>10} {'rank':>5}")
    rows = []
    for d in sizes:
        rng = np.random.default_rng(d)
        K = d + 10
        feats = unit(rng, (K, d))
        theta = skew_to_vec(random_skew_theta(d, 1, 5.0, seed=d))[None]
        T0 = 10**9
        x, r, n = pair_counts(theta, feats, T0, rng)
        lam = lambda_theory(T0, d, 0.05)
        res, med, lo, hi = timed(
            partial(fit_nuclear_mle, x, r, lam=lam, weights=n), repeats)
        t_cvx, fun_cvx = cvxpy_nuclear(x, r, n, lam)
        diff = float(res.fun[0] - fun_cvx)
        sv = res.singular_values[0]
        rank = int((sv > 1e-6 * sv[0]).sum())
        print(f"{d:>4} {x.shape[1]:>6} {lam:>9.2e} {fmt(med, lo, hi):>28} {int(res.nit[0]):>5} "
              f"{t_cvx:>9.2f}s {t_cvx / med:>6.0f}x {diff:>10.1e} {rank:>5}")
        rows.append((d, med, t_cvx, diff))
    return rows


def cvxpy_nuclear(x, r, n, lam):
    """The straightforward reference: cvxpy + Clarabel (tol 1e-10) on problem 0.

    Returns:
        (time of build + solve, objective at cvxpy's point computed by numpy).
    """
    import warnings

    import cvxpy as cp

    from rlhf_gbpm._mle import _CLARABEL_TIGHT
    from rlhf_gbpm._nuclear import _skew_basis_matrix

    dim = x.shape[-1]
    d = int(round((1 + np.sqrt(1 + 8 * dim)) / 2))
    t = CLOCK()
    var = cp.Variable(dim)
    z = x[0] @ var
    w = n[0]
    obj = cp.sum(cp.multiply(w, cp.logistic(z) - cp.multiply(r[0], z))) / w.sum()
    obj = obj + lam * cp.normNuc(cp.reshape(_skew_basis_matrix(d) @ var, (d, d), order="C"))
    prob = cp.Problem(cp.Minimize(obj))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prob.solve(solver=cp.CLARABEL, **_CLARABEL_TIGHT)
    total = CLOCK() - t
    theta = var.value
    zz = x[0] @ theta
    mat = vec_to_skew(theta, d)
    fun = np.sum(w * (np.logaddexp(0, zz) - r[0] * zz)) / w.sum()
    fun += lam * np.linalg.svd(mat, compute_uv=False).sum()
    return total, float(fun)


# ----------------------------------------------------------------------------- 2. MLE


def bench_mle(repeats, quick):
    print("\n## Constrained MLE (Greedy Sampling): per-pair statistics vs raw data")
    print(f"{'d':>3} {'K':>3} {'B':>4} {'T':>6} {'raw':>28} {'pairs':>28} {'ratio':>6} "
          f"{'max|dtheta|':>11} {'cvxpy/problem':>13}")
    for d, K, S in ((5, 20, 5.0), (10, 40, 10.0)):
        rng = np.random.default_rng(100 + d)
        B, T = (10, 10_000) if not quick else (4, 2_000)
        feats = unit(rng, (K, d))
        theta = np.stack([skew_to_vec(random_skew_theta(d, 1, S, seed=s)) for s in range(B)])
        a1 = rng.integers(0, K, size=(B, T))
        a2 = rng.integers(0, K, size=(B, T))
        x_raw = pair_features(feats[a1], feats[a2])
        p = 1.0 / (1.0 + np.exp(-np.einsum("btd,bd->bt", x_raw, theta)))
        bits = (rng.uniform(size=p.shape) < p).astype(float)
        raw, m_raw, lo_raw, hi_raw = timed(partial(fit_mle, x_raw, bits, S=S), repeats)
        i, j = np.triu_indices(K, k=1)
        xp = pair_features(feats[i], feats[j])
        idx = np.full((K, K), -1)
        idx[i, j] = np.arange(len(i))
        idx[j, i] = np.arange(len(i))
        n = np.zeros((B, len(i)))
        wins = np.zeros((B, len(i)))
        keep = a1 != a2
        rows = np.broadcast_to(np.arange(B)[:, None], a1.shape)[keep]
        k = idx[a1[keep], a2[keep]]
        won = np.where(a1[keep] < a2[keep], bits[keep], 1.0 - bits[keep])
        np.add.at(n, (rows, k), 1.0)
        np.add.at(wins, (rows, k), won)
        xpb = np.broadcast_to(xp, (B,) + xp.shape)
        rp = wins / np.maximum(n, 1)
        pair, m_pair, lo_pair, hi_pair = timed(
            partial(fit_mle, xpb, rp, S=S, weights=n), repeats)
        diff = float(np.abs(pair.theta - raw.theta).max())
        t = CLOCK()
        mle_cvxpy(x_raw[:1], bits[:1], S=S)
        t_cvx = CLOCK() - t
        print(f"{d:>3} {K:>3} {B:>4} {T:>6} {fmt(m_raw, lo_raw, hi_raw):>28} "
              f"{fmt(m_pair, lo_pair, hi_pair):>28} {m_raw / m_pair:>5.0f}x {diff:>11.1e} "
              f"{t_cvx:>12.2f}s")

    print("\n## Warm-started refit per round (the Greedy Sampling hot path), pair statistics")
    print(f"{'d':>3} {'K':>3} {'B':>4} {'per call':>28} {'per run':>10} {'mean nit':>8}")
    for d, K, S in ((5, 20, 5.0), (10, 40, 10.0)):
        rng = np.random.default_rng(200 + d)
        B = 400 if not quick else 40
        feats = unit(rng, (K, d))
        theta = np.stack([skew_to_vec(random_skew_theta(d, 1, S, seed=s)) for s in range(B)])
        x, r, n = pair_counts(theta, feats, 5000, rng)
        prev = fit_mle(x, r, S=S, weights=n).theta
        x2, r2, n2 = pair_counts(theta, feats, 2, rng)
        wins = r * n + r2 * n2
        n_new = n + n2
        r_new = wins / np.maximum(n_new, 1)
        res, med, lo, hi = timed(
            partial(fit_mle, x, r_new, S=S, weights=n_new, warm_start=prev), repeats)
        print(f"{d:>3} {K:>3} {B:>4} {fmt(med, lo, hi):>28} {med / B * 1e6:>8.1f}us "
              f"{res.nit.mean():>8.2f}")


# ----------------------------------------------------------------------------- 3. ONS


def ons_reference(phi1, phi2, r, S):
    """One run at a time in R^{d^2}, like the rebuttal code (Sherman-Morrison, rescale)."""
    B, N, d = phi1.shape
    out = np.zeros((B, d * d))
    for b in range(B):
        theta = np.zeros(d * d)
        a_inv = np.eye(d * d)
        for t in range(N):
            x = np.outer(phi1[b, t], phi2[b, t]).ravel(order="F")
            p = 1.0 / (1.0 + np.exp(-theta @ x))
            g = (p - r[b, t]) * x
            h = min(max(p * (1 - p), 1e-6), 0.25)
            u = np.sqrt(h) * x
            au = a_inv @ u
            a_inv -= np.outer(au, au) / (1.0 + u @ au)
            theta = theta - a_inv @ g
            mat = theta.reshape(d, d, order="F")
            mat = 0.5 * (mat - mat.T)
            nrm = np.linalg.norm(mat)
            if nrm > S:
                mat *= S / nrm
            theta = mat.ravel(order="F")
        out[b] = theta
    return out


def bench_ons(repeats, quick):
    print("\n## Online Newton Step: batched skew-coordinate update vs one run at a time in R^{d^2}")
    print(f"{'d':>3} {'B':>4} {'N':>5} {'batched':>28} {'reference':>12} {'ratio':>7} "
          f"{'batched float32':>28} {'ratio':>7}")
    for d in (5, 10):
        rng = np.random.default_rng(300 + d)
        B, N = (400, 200) if not quick else (40, 50)
        phi = unit(rng, (B, N, 2, d))
        x = pair_features(phi[..., 0, :], phi[..., 1, :])
        r = rng.integers(0, 2, size=(B, N)).astype(float)

        def run(x=x, r=r, B=B, d=d, dtype="float64"):
            ons = OnlineNewtonStep(skew_dim(d), batch_size=B, S=5.0, dtype=dtype)
            return ons.update_sequence(x, r)

        _, med, lo, hi = timed(run, repeats)
        _, med32, lo32, hi32 = timed(partial(run, dtype="float32"), repeats)
        nref = max(1, B // 20)
        t = CLOCK()
        ons_reference(phi[:nref, :, 0], phi[:nref, :, 1], r[:nref], 5.0)
        t_ref = (CLOCK() - t) * B / nref
        print(f"{d:>3} {B:>4} {N:>5} {fmt(med, lo, hi):>28} {t_ref:>11.2f}s {t_ref / med:>6.0f}x"
              f" {fmt(med32, lo32, hi32):>28} {t_ref / med32:>6.0f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help="d values of the nuclear-norm benchmark (default 10 20 40)")
    parser.add_argument("--skip", nargs="*", default=(), choices=("nuclear", "mle", "ons"))
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS threads (default 1: small batched LAPACK calls slow down "
                             "badly with several threads on a loaded machine)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="cpu: process time (fair on a shared machine); wall: perf_counter")
    args = parser.parse_args()
    threadpool_limits(args.threads)
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    repeats = 3 if args.quick else 7
    sizes = args.sizes or ([10, 20] if args.quick else [10, 20, 40])
    print(f"# bench_estimation on {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cpus, numpy {np.__version__}, python {platform.python_version()}, "
          f"BLAS threads {args.threads}, clock {args.clock}")
    if "nuclear" not in args.skip:
        bench_nuclear(sizes, repeats)
    if "mle" not in args.skip:
        bench_mle(repeats, args.quick)
    if "ons" not in args.skip:
        bench_ons(repeats, args.quick)


if __name__ == "__main__":
    main()
