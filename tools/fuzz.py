"""Long seeded fuzz run of the regularized-game identities (issue 11).

Each case draws a random GBPM game (K, d, rank, S, link, features), a regularizer (every
built-in; Tsallis with a random index q; random references, some with entries of 1e-12), a
strength eta log-uniform in [1e-4, 1e5] and random policies, then checks:

* ``payoff``: A finite, skew-symmetric, entries in [-1/2, 1/2];
* ``j_sum``: J(p, q) + J(q, p) = 1 and J(p, p) = 1/2;
* ``sne``: ``solve_sne`` converges, its certificate and an independent ``dual_gap`` call are
  <= 1e-9, the policy is on the simplex;
* ``dgap_nonneg``: DGap(p) >= 0 and finite for random p, and DGap(p) >= ||p - p*||_1^2 /
  (2 eta beta) (strong convexity; spec section 5.1);
* ``br_value``: DGap(p) = psi(p)/eta + g(BR(A p)) with g(q) = q^T A p - psi(q)/eta (the
  Bregman form the package computes equals the definition);
* ``br_opt``: no vertex, no random policy and no small feasible move of BR(A p) beats
  g(BR(A p)) (best-response optimality);
* ``finite``: nothing returned is NaN or inf.

Tolerances are absolute plus a rounding allowance proportional to the magnitudes involved
(``psi / eta`` can reach 1e4 * log(1e12) at eta = 1e-4); they are in ``TOLERANCES`` and in
docs/reliability.md. Run it as::

    python tools/fuzz.py --cases 10000 --seed 0

It prints one summary line per check (cases, violations, worst error / tolerance) and exits
with status 1 when anything fails.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings

import numpy as np

from rlhf_gbpm import (
    best_response,
    dual_gap,
    get_link,
    get_regularizer,
    j_eta,
    payoff_matrix,
    random_skew_theta,
    solve_sne,
)
from rlhf_gbpm.features import random_unit_features

CHECKS = ("payoff", "j_sum", "sne", "dgap_nonneg", "br_value", "br_opt", "finite")

TOLERANCES = {
    "abs": 1e-12,  # absolute part of every identity tolerance
    "sne_gap": 1e-9,  # DGap of the computed SNE (certificate and recomputed)
    "simplex": 1e-12,  # |sum p - 1| and min p >= -simplex
    "rel": 64 * np.finfo(float).eps,  # rounding allowance per unit of magnitude
}

REGULARIZERS = ("kl", "shannon", "l2", "chi2_half", "chi2", "tsallis", "tsallis_half",
                "kl_plus_chi2")
_POSITIVE_REF = ("kl", "chi2_half", "chi2", "kl_plus_chi2")


def make_case(*, K: int, d: int, rank: int, S: float, link: str, regularizer: str,
              q: float | None, reference: str, eta: float, seed: int) -> dict:
    """Build one case from its parameters.

    Args:
        K: Number of actions, >= 2.
        d: Feature dimension, >= 2.
        rank: Half-rank r of Theta, 2r <= d.
        S: Nuclear norm of Theta (the linear link needs S <= 1).
        link: ``"logistic"``, ``"probit"`` or ``"linear"`` (slope 1).
        regularizer: A name in ``REGULARIZERS``.
        q: Tsallis index for ``"tsallis"`` (ignored otherwise).
        reference: ``"dirichlet"`` (random), ``"tiny"`` (half the entries 1e-12; zeros for
            l2) or ``"none"``; entropies (shannon, tsallis) always use none.
        eta: Strength in [1e-4, 1e5].
        seed: Seed of the features, Theta, the reference and the policies.

    Returns:
        A dict with keys ``A`` (K, K), ``reg``, ``eta``, ``p`` (6, K), ``q`` (6, K), ``rng``
        and ``desc``.
    """
    rng = np.random.default_rng(seed)
    phi = random_unit_features((K, d), seed=rng)
    theta = random_skew_theta(d, rank=rank, S=S, norm="nuclear", seed=rng)
    A = payoff_matrix(phi, theta, get_link(link))
    params: dict = {}
    ref = None
    if regularizer in _POSITIVE_REF or regularizer == "l2":
        ref = rng.dirichlet(np.full(K, float(np.exp(rng.uniform(-1.5, 1.5)))))
        if reference == "tiny":
            small = rng.random(K) < 0.5
            small[int(rng.integers(K))] = False  # keep some mass
            ref[small] = 0.0 if regularizer == "l2" else 1e-12
        if regularizer in _POSITIVE_REF:
            ref = np.maximum(ref, 1e-12)
        ref = ref / ref.sum()
        if reference != "none":
            params["reference"] = ref
    if regularizer == "tsallis":
        params["q"] = float(q)
    reg = get_regularizer(regularizer, **params)
    alpha = float(np.exp(rng.uniform(-2, 1)))
    p = rng.dirichlet(np.full(K, alpha), size=6)
    qp = rng.dirichlet(np.full(K, alpha), size=6)
    desc = (f"K={K} d={d} rank={rank} S={S:.4g} link={link} reg={regularizer}"
            + (f"(q={q:.3f})" if regularizer == "tsallis" else "")
            + (f" ref={reference}" if "reference" in params else "") + f" eta={eta:.4g}"
            + f" seed={seed}")
    return {"A": A, "reg": reg, "eta": float(eta), "p": p, "q": qp, "desc": desc, "rng": rng}


def draw_case(seed) -> dict:
    """Draw the parameters of one case from its own seed and build it.

    Args:
        seed: Case seed (a non-negative int or a sequence of them).

    Returns:
        The case (see :func:`make_case`).
    """
    rng = np.random.default_rng(seed)
    K = int(np.exp(rng.uniform(np.log(2), np.log(41))))
    d = int(rng.integers(2, 17))
    rank = int(rng.integers(1, d // 2 + 1))
    link = str(rng.choice(["logistic", "logistic", "probit", "linear"]))
    if link == "linear":
        S = float(rng.uniform(0.05, 1.0))  # slope 1 needs S <= 1 (nuclear bound S/2)
    else:
        S = float(np.exp(rng.uniform(np.log(0.1), np.log(50.0))))
    name = str(rng.choice(REGULARIZERS))
    q = float(rng.uniform(0.05, 0.95)) if rng.random() < 0.5 else float(rng.uniform(1.05, 2.0))
    reference = str(rng.choice(["dirichlet", "dirichlet", "tiny", "none"]))
    eta = float(10.0 ** rng.uniform(-4.0, 5.0))
    return make_case(K=K, d=d, rank=rank, S=S, link=link, regularizer=name, q=q,
                     reference=reference, eta=eta, seed=int(rng.integers(2**32)))


def _allow(*mags) -> float:
    """Absolute + rounding tolerance for quantities of the given magnitudes."""
    return TOLERANCES["abs"] + TOLERANCES["rel"] * sum(float(np.max(np.abs(m))) for m in mags)


def _feasible_moves(q: np.ndarray, rng: np.random.Generator, n: int, size: float) -> np.ndarray:
    """Policies q + t v with sum(v) = 0 that stay on the simplex (small moves around q)."""
    K = q.shape[-1]
    v = rng.standard_normal((n, K))
    v -= v.mean(axis=-1, keepdims=True)
    v /= np.abs(v).sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.where(v < 0, q / -v, np.inf).min(axis=-1)  # largest t keeping q + t v >= 0
    t = np.minimum(size, room)[:, None]
    moved = np.clip(q + t * v, 0.0, None)
    return moved / moved.sum(axis=-1, keepdims=True)


def check_case(case: dict) -> dict[str, float]:
    """Run every check on one case.

    Args:
        case: A dict from :func:`draw_case`.

    Returns:
        For each name in ``CHECKS``, the worst error divided by its tolerance (a check passes
        when this is <= 1; NaN counts as a failure).
    """
    A, reg, eta, P, Q, rng = case["A"], case["reg"], case["eta"], case["p"], case["q"], case["rng"]
    K = A.shape[-1]
    out = dict.fromkeys(CHECKS, 0.0)
    finite = [A]

    out["payoff"] = max(float(np.max(np.abs(A + A.T))) / TOLERANCES["abs"],
                        float(np.max(np.abs(A))) / 0.5 if np.all(np.isfinite(A)) else np.inf)

    psi_p, psi_q = reg.value(P), reg.value(Q)
    j_pq, j_qp = j_eta(P, Q, A, reg, eta), j_eta(Q, P, A, reg, eta)
    j_pp = j_eta(P, P, A, reg, eta)
    finite += [psi_p, psi_q, j_pq, j_qp, j_pp]
    tol_j = _allow(1.0, psi_p / eta, psi_q / eta)
    out["j_sum"] = max(float(np.max(np.abs(j_pq + j_qp - 1.0))),
                       float(np.max(np.abs(j_pp - 0.5)))) / tol_j

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sne = solve_sne(A, reg, eta)
    pstar = sne.policy
    gap_star = float(dual_gap(pstar, A, reg, eta))
    finite += [pstar, sne.dual_gap, gap_star]
    simplex_err = max(abs(float(pstar.sum()) - 1.0), max(0.0, -float(pstar.min())))
    out["sne"] = max(0.0 if bool(sne.success) else np.inf,
                     float(sne.dual_gap) / TOLERANCES["sne_gap"],
                     gap_star / TOLERANCES["sne_gap"],
                     simplex_err / TOLERANCES["simplex"])

    gaps = dual_gap(P, A, reg, eta)
    finite.append(gaps)
    dist = np.abs(P - pstar).sum(axis=-1)
    lower = dist**2 / (2.0 * eta * reg.beta(K))
    tol_g = _allow(gaps, psi_p / eta, 1.0) + 1e-9 * lower
    out["dgap_nonneg"] = max(0.0, float(np.max((lower - gaps) / tol_g)))
    if np.any(gaps < 0):
        out["dgap_nonneg"] = np.inf

    Y = P @ A.T  # y = A p per row
    BR = best_response(Y, reg, eta)
    finite.append(BR)
    psi_br = reg.value(BR)
    g_br = np.sum(BR * Y, axis=-1) - psi_br / eta
    direct = psi_p / eta + g_br
    tol_v = _allow(psi_p / eta, psi_br / eta, 1.0) + 1e-9 * np.abs(gaps)
    out["br_value"] = float(np.max(np.abs(direct - gaps) / tol_v))

    worst = 0.0
    cands = [np.eye(K), Q, rng.dirichlet(np.ones(K), size=8)]
    for i in range(P.shape[0]):
        local = _feasible_moves(BR[i], rng, 8, 1e-3)
        for C in cands + [local]:
            psi_c = reg.value(C)
            g_c = C @ Y[i] - psi_c / eta
            ok = np.isfinite(g_c)  # KL at a vertex outside the reference support is +inf
            if not np.any(ok):
                continue
            tol_o = _allow(psi_c[ok] / eta, psi_br[i] / eta, Y[i])
            worst = max(worst, float(np.max((g_c[ok] - g_br[i]) / tol_o)))
    out["br_opt"] = max(worst, 0.0)

    out["finite"] = 0.0 if all(np.all(np.isfinite(x)) for x in finite) else np.inf
    return out


def run(cases: int, seed: int = 0, *, progress: bool = True) -> dict:
    """Run ``cases`` fuzz cases and aggregate the results.

    Args:
        cases: Number of cases, >= 1.
        seed: Master seed; case i uses the seed sequence (seed, i).
        progress: Print a line every 1000 cases to stderr.

    Returns:
        Summary dict: ``cases``, ``seconds``, per check ``violations`` and ``worst`` ratio,
        and ``failures`` (the first 20 failing case descriptions).
    """
    start = time.perf_counter()
    violations = dict.fromkeys(CHECKS, 0)
    worst = dict.fromkeys(CHECKS, 0.0)
    failures: list[str] = []
    for i in range(cases):
        case = draw_case([seed, i])
        try:
            res = check_case(case)
        except Exception as err:  # noqa: BLE001 - a crash is a finding, recorded as such
            res = dict.fromkeys(CHECKS, np.inf)
            case["desc"] += f" raised {type(err).__name__}: {err}"
        bad = [k for k, v in res.items() if not v <= 1.0]
        for k, v in res.items():
            worst[k] = max(worst[k], v) if not math.isnan(v) else math.inf
            violations[k] += int(k in bad)
        if bad and len(failures) < 20:
            failures.append(f"case {i}: {case['desc']} failed {bad}")
        if progress and (i + 1) % 1000 == 0:
            sys.stderr.write(f"{i + 1} cases, {time.perf_counter() - start:.0f} s\n")
    return {"cases": cases, "seed": seed, "seconds": time.perf_counter() - start,
            "violations": violations, "worst": worst, "failures": failures}


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (1 if any violation)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10000, help="number of cases")
    parser.add_argument("--seed", type=int, default=0, help="master seed")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    summary = run(args.cases, args.seed, progress=not args.quiet)
    total = sum(summary["violations"].values())
    _out(f"fuzz: {summary['cases']} cases, seed {summary['seed']}, "
          f"{summary['seconds']:.1f} s, {total} violations")
    _out(f"{'check':<12} {'violations':>10} {'worst err/tol':>14}")
    for k in CHECKS:
        _out(f"{k:<12} {summary['violations'][k]:>10} {summary['worst'][k]:>14.3g}")
    for line in summary["failures"]:
        _out(line)
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
