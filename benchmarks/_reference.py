"""Straightforward references for the sweep benchmark: one run, one round, one solve at a time.

This is Greedy Sampling (spec gbpm.md section 3.1) written the way research code usually is:
a Python loop over runs, an inner loop over rounds, and per round one SNE solve with
``scipy.optimize.root(method="hybr")`` in log-ratio coordinates (the authors' KL solver) and
one Online Newton Step (or exact MLE refit) for this run only, in plain numpy. It shares no
numerical code with the package's agents, solvers or regret monitor: only the environment
(each run is a plain ``GBPMDuelEnv``, which gives the instance and the preference bits) and
the agent's random numbers (the counter streams of ``rlhf_gbpm.protocol``), so that with the
same seeds it plays the same pairs and its regret curves can be compared number for number
with the batched sweep.

Conventions (those of ``rlhf_gbpm.agents.GreedySampling``):

* rounds t = 0, 1, ...; the max-player draws a1 from the greedy policy with the uniform
  ``counter_uniform(key, t, STREAM_MAX)`` by the inverse CDF, the min-player draws a2 from
  rho (uniform) with ``STREAM_MIN``; key = ``seed_keys([seed])``;
* the greedy policy is rho until the first refit, then the SNE of the estimated game;
* after each round the estimator sees x = skew coordinates of phi(a1) phi(a2)^T (the
  orthonormal basis (e_i e_j^T - e_j e_i^T)/sqrt(2), i < j); every ``refresh`` rounds the
  estimate used by the greedy policy is replaced by the current one;
* regret of round t: DGap_eta(pi1_t) in the true game, for KL to rho
  (1/eta) [KL(p || rho) + log sum_i rho_i exp(eta (A p)_i)].
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, special

from rlhf_gbpm._random import counter_uniform
from rlhf_gbpm.agents.base import seed_keys
from rlhf_gbpm.envs.gbpm_duel import GBPMDuelEnv
from rlhf_gbpm.protocol import STREAM_MAX, STREAM_MIN

__all__ = ["run_reference", "kl_sne", "kl_dual_gap", "OnsRef", "MleRef"]


# ----------------------------------------------------------------------------- the game


def skew_coords(phi1: np.ndarray, phi2: np.ndarray) -> np.ndarray:
    """Orthonormal skew coordinates of (phi1 phi2^T - phi2 phi1^T) / 2, length d(d-1)/2."""
    outer = np.outer(phi1, phi2)
    skew = 0.5 * (outer - outer.T)
    i, j = np.triu_indices(len(phi1), k=1)
    return math.sqrt(2.0) * skew[i, j]


def skew_matrix(theta: np.ndarray, d: int) -> np.ndarray:
    """The skew matrix with orthonormal coordinates theta."""
    out = np.zeros((d, d))
    i, j = np.triu_indices(d, k=1)
    out[i, j] = theta / math.sqrt(2.0)
    out[j, i] = -theta / math.sqrt(2.0)
    return out


def payoff(features: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """A = sigmoid(Phi Theta Phi^T) - 1/2 (logistic link), K x K."""
    d = features.shape[1]
    z = features @ skew_matrix(theta, d) @ features.T
    a = special.expit(z) - 0.5
    return 0.5 * (a - a.T)


def kl_dual_gap(p: np.ndarray, A: np.ndarray, eta: float, rho: np.ndarray) -> float:
    """DGap_eta(p) for KL(. || rho): (1/eta) [KL(p || rho) + log sum rho exp(eta A p)]."""
    y = A @ p
    kl = float(np.sum(special.rel_entr(p, rho)))
    return max((kl + float(special.logsumexp(eta * y, b=rho))) / eta, 0.0)


def kl_sne(A: np.ndarray, eta: float, rho: np.ndarray, u0: np.ndarray | None = None):
    """SNE of the KL-regularized game by scipy's hybr root finding in log-ratio coordinates.

    Unknown u (K - 1), p(u) proportional to rho exp([u, 0]), root of
    F(u) = u - eta ((A p)_{1:K-1} - (A p)_K). Starts from ``u0`` (the previous solution);
    if that fails, restarts from zero along eta-continuation (geometric stages from 1).

    Returns:
        (policy (K,), u (K-1,)).
    """
    K = A.shape[0]
    log_rho = np.log(rho)

    def policy(u):
        z = np.append(u, 0.0) + log_rho
        return special.softmax(z)

    def solve(e, start):
        def fun(u):
            y = A @ policy(u)
            return u - e * (y[:-1] - y[-1])

        res = optimize.root(fun, start, method="hybr", options={"xtol": 1e-13})
        p = policy(res.x)
        ok = res.success and np.max(np.abs(policy(e * (A @ p)[:-1] - e * (A @ p)[-1]) - p)) \
            < 1e-10
        return res.x, ok

    if u0 is not None:
        u, ok = solve(eta, u0)
        if ok:
            return policy(u), u
    u = np.zeros(K - 1)
    e = min(eta, 1.0)
    while True:
        u, _ = solve(e, u)
        if e >= eta:
            return policy(u), u
        nxt = min(eta, 4.0 * e)
        u = u * (nxt / e)  # scores scale with eta: a first-order predictor
        e = nxt


# ----------------------------------------------------------------------------- estimators


class OnsRef:
    """Online Newton Step for one run in skew coordinates (as the package's GS uses it)."""

    def __init__(self, dim: int, S: float, a0: float = 1.0, step: float = 1.0):
        self.theta = np.zeros(dim)
        self.a_inv = np.eye(dim) / a0
        self.S, self.step = S, step

    def observe(self, x: np.ndarray, r: float) -> None:
        """One ONS step on (x, r)."""
        z = float(self.theta @ x)
        p = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
        h = min(max(p * (1.0 - p), 1e-6), 0.25)
        u = math.sqrt(h) * x
        au = self.a_inv @ u
        self.a_inv = self.a_inv - np.outer(au, au) / (1.0 + u @ au)
        self.theta = self.theta - self.step * (self.a_inv @ ((p - r) * x))
        norm = np.linalg.norm(self.theta)
        if norm > self.S:
            self.theta = self.theta * (self.S / norm)

    def fit(self) -> np.ndarray:
        """The current estimate."""
        return self.theta.copy()


class MleRef:
    """Exact constrained logistic MLE over all raw comparisons of one run.

    argmin sum_s log(1 + e^{z_s}) - r_s z_s over ||theta|| <= S, z_s = theta . x_s: damped
    Newton from the previous estimate (least-squares steps, so iterates stay in the span of
    the data); if the minimizer leaves the ball, the KKT multiplier nu of
    min L + nu/2 ||theta||^2 is found by Brent's method on ||theta(nu)|| = S.
    """

    def __init__(self, dim: int, S: float):
        self.theta = np.zeros(dim)
        self.S = S
        self.x: list[np.ndarray] = []
        self.r: list[float] = []

    def observe(self, x: np.ndarray, r: float) -> None:
        """Store the comparison."""
        self.x.append(x)
        self.r.append(r)

    @staticmethod
    def _newton(X, r, nu, theta, tol=1e-13, max_iter=100):
        def loss(t):
            z = X @ t
            return float(np.sum(np.logaddexp(0.0, z) - r * z) + 0.5 * nu * t @ t)

        f = loss(theta)
        for _ in range(max_iter):
            z = X @ theta
            p = special.expit(z)
            g = X.T @ (p - r) + nu * theta
            if np.max(np.abs(g)) < tol * max(1.0, len(r)):
                break
            H = (X.T * (p * (1.0 - p))) @ X + nu * np.eye(X.shape[1])
            step = np.linalg.lstsq(H, g, rcond=1e-14)[0]
            a = 1.0
            while a > 1e-10:
                trial = theta - a * step
                ft = loss(trial)
                if ft <= f - 1e-4 * a * float(g @ step):
                    break
                a *= 0.5
            if a <= 1e-10:
                break
            theta, f = trial, ft
        return theta

    def fit(self) -> np.ndarray:
        """Refit on every comparison so far; returns the estimate."""
        X, r = np.array(self.x), np.array(self.r)
        theta = self._newton(X, r, 0.0, self.theta.copy())
        if np.linalg.norm(theta) > self.S * (1.0 + 1e-12) or not np.all(np.isfinite(theta)):
            def gap(log_nu):
                return np.linalg.norm(self._newton(X, r, math.exp(log_nu), start)) - self.S

            start = self.theta.copy()
            lo, hi = -30.0, 0.0
            while gap(hi) > 0:
                hi += 5.0
            log_nu = optimize.brentq(gap, lo, hi, xtol=1e-13, rtol=1e-13)
            theta = self._newton(X, r, math.exp(log_nu), start)
        self.theta = theta
        return theta.copy()


# ----------------------------------------------------------------------------- one run


def run_reference(seed: int, eta: float, *, d: int, K: int, S: float, T: int,
                  estimator: str = "ons", refresh: int = 2, rank: int = 1,
                  clock: bool = False) -> dict:
    """Greedy Sampling with KL to uniform for one run, one round at a time.

    Args:
        seed: The run's seed (env ``reset(seed=...)`` and the agent's key).
        eta: Regularization strength.
        d: Feature dimension.
        K: Number of actions.
        S: Norm bound of the instance and of the estimator.
        T: Rounds.
        estimator: ``"ons"`` or ``"mle"``.
        refresh: Refit period.
        rank: Half-rank r of Theta_star.
        clock: Also return ``"cpu_at"``, the process CPU seconds spent after each tenth of
            the rounds, shape (10,).

    Returns:
        ``{"mbr": per-round DGap of the max policy (T,), "abr": plus that of rho (T,),
        "pairs": (T, 2), "theta": the final estimate (D,)}``.
    """
    import time

    start = time.process_time()
    marks = {int(round(T * (k + 1) / 10)): k for k in range(10)}
    cpu_at = np.zeros(10)
    env = GBPMDuelEnv(d=d, K=K, rank=rank, S=S, horizon=T)
    obs, _ = env.reset(seed=seed)
    a_true = env.unwrapped.instance.payoff()
    key = seed_keys([seed])
    rho = np.full(K, 1.0 / K)
    dim = d * (d - 1) // 2
    est = OnsRef(dim, S) if estimator == "ons" else MleRef(dim, S)
    theta_hat = None
    pi, u = rho, None
    mbr, abr, pairs = np.zeros(T), np.zeros(T), np.zeros((T, 2), dtype=np.int64)
    gap_rho = kl_dual_gap(rho, a_true, eta, rho)
    for t in range(T):
        feats = obs["features"]
        u1 = float(counter_uniform(key, t, STREAM_MAX)[0])
        u2 = float(counter_uniform(key, t, STREAM_MIN)[0])
        a1 = _inverse_cdf(pi, u1)
        a2 = _inverse_cdf(rho, u2)
        mbr[t] = kl_dual_gap(pi, a_true, eta, rho)
        abr[t] = mbr[t] + gap_rho
        pairs[t] = (a1, a2)
        next_obs, reward, _, _, _ = env.step(np.array([a1, a2]))
        est.observe(skew_coords(feats[a1], feats[a2]), float(reward))
        if (t + 1) % refresh == 0:
            theta_hat = est.fit()
            pi, u = kl_sne(payoff(next_obs["features"], theta_hat), eta, rho, u)
        obs = next_obs
        if clock and (t + 1) in marks:
            cpu_at[marks[t + 1]] = time.process_time() - start
    out = {"mbr": mbr, "abr": abr, "pairs": pairs,
           "theta": np.zeros(dim) if theta_hat is None else theta_hat}
    if clock:
        out["cpu_at"] = cpu_at
    return out


def _inverse_cdf(p: np.ndarray, u: float) -> int:
    cdf = np.cumsum(p)
    return int(min(np.searchsorted(cdf, u * cdf[-1], side="right"), len(p) - 1))
