"""A small fake vector env, agent and regularizer that follow the runner's contract.

They draw from counter-based per-run streams like the real ones (a run's numbers depend only
on its own seed), so they exercise planning, chunking, backends, the store and resume
without the real agents. Used through ``"_experiment_fakes:..."`` entry points; subprocess
and Ray tests put this folder on PYTHONPATH.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from rlhf_gbpm._random import counter_uniform
from rlhf_gbpm.protocol import DuelAction


class FakeRegularizer:
    """Stands in for a regularizer object (the fakes only read its name)."""

    def __init__(self, scale: float = 1.0):
        if scale <= 0:
            raise ValueError(f"scale == {scale!r}, must be > 0.")
        self.scale = scale
        self.name = "fake"


def make_regularizer(scale: float = 1.0) -> FakeRegularizer:
    return FakeRegularizer(scale)


class FakeDuelVectorEnv:
    """B runs; run i's instance is drawn from seed i; reports regrets in ``info``."""

    def __init__(self, num_envs, horizon, regularizer, eta, K=4, d=3):
        if K < 2:
            raise ValueError(f"K == {K!r}, must be >= 2.")
        self.num_envs, self.horizon, self.K, self.d = num_envs, horizon, K, d
        self.eta = np.broadcast_to(np.asarray(eta, dtype=float), (num_envs,))
        self.scale = regularizer.scale

    def reset(self, *, seed):
        feats, thetas = [], []
        for s in seed:
            rng = np.random.default_rng(int(s))
            phi = rng.normal(size=(self.K, self.d))
            feats.append(phi / np.linalg.norm(phi, axis=1, keepdims=True))
            m = rng.normal(size=(self.d, self.d))
            thetas.append(2.0 * (m - m.T) / np.linalg.norm(m - m.T))
        self.features = np.stack(feats)
        self.theta_star = np.stack(thetas)
        self.payoff = 1 / (1 + np.exp(-np.einsum("bkd,bde,ble->bkl", self.features,
                                                  self.theta_star, self.features))) - 0.5
        self.keys = np.asarray(seed, dtype=np.uint64) * np.uint64(7919) + np.uint64(11)
        self.t = 0
        return self._obs(), {}

    def _obs(self):
        return {"features": self.features.copy(), "context": np.zeros(self.num_envs, int)}

    def step(self, action: DuelAction):
        rows = np.arange(self.num_envs)
        a1, a2 = action.pair[:, 0], action.pair[:, 1]
        prob = 0.5 + self.payoff[rows, a1, a2]
        reward = (counter_uniform(self.keys, self.t, 1) < prob).astype(float)
        gap = lambda p: np.max(np.einsum("bkl,bl->bk", self.payoff, p), axis=1)  # noqa: E731
        g1 = gap(action.max_policy) + 0.01 * self.scale / self.eta
        g2 = gap(action.min_policy)
        self.t += 1
        trunc = np.full(self.num_envs, self.t >= self.horizon)
        info = {"dgap_max": g1, "dgap_min": g2}
        return self._obs(), reward, np.zeros(self.num_envs, bool), trunc, info

    def close(self):
        self.closed = True


def make_env(*, num_envs, horizon, regularizer, eta, **params):
    return FakeDuelVectorEnv(num_envs, horizon, regularizer, eta, **params)


class FakeAgent:
    """Plays softmax(eta * empirical scores) against uniform; learns a skew estimate."""

    def __init__(self, *, regularizer, eta, temperature=1.0, delay=0.0, horizon=None):
        if temperature <= 0:
            raise ValueError(f"temperature == {temperature!r}, must be > 0.")
        self.regularizer, self.eta = regularizer, np.asarray(eta, dtype=float)
        self.temperature, self.delay, self.horizon = temperature, delay, horizon

    def reset(self, seed):
        self.keys_ = np.asarray(seed, dtype=np.uint64) * np.uint64(104729) + np.uint64(3)
        self.t_ = 0
        self.scores_ = None

    def act(self, obs):
        feats = obs["features"]
        B, K, d = feats.shape
        if self.scores_ is None:
            self.scores_ = np.zeros((B, K))
            self.theta_ = np.zeros((B, d, d))
        if self.delay:
            time.sleep(self.delay)
        z = np.clip(self.eta[:, None] * self.scores_ / self.temperature, -30, 30)
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        q = np.full((B, K), 1.0 / K)
        a1 = np.minimum((np.cumsum(p, 1) <= counter_uniform(self.keys_, self.t_, 2)[:, None])
                        .sum(1), K - 1)
        a2 = np.minimum((counter_uniform(self.keys_, self.t_, 3) * K).astype(int), K - 1)
        self.ne_residual_ = np.abs(p - q).max(axis=1)
        return DuelAction(np.stack([a1, a2], axis=1), p, q)

    def update(self, obs, action, reward):
        rows = np.arange(reward.shape[0])
        a1, a2 = action.pair[:, 0], action.pair[:, 1]
        self.t_ += 1
        self.scores_[rows, a1] += (reward - 0.5) / self.t_
        self.scores_[rows, a2] -= (reward - 0.5) / self.t_
        f1 = obs["features"][rows, a1]
        f2 = obs["features"][rows, a2]
        outer = np.einsum("bi,bj->bij", f1, f2)
        self.theta_ += ((reward - 0.5)[:, None, None] * (outer - outer.transpose(0, 2, 1))
                        - self.theta_ / 50) / 10


FAKE_CONFIG = {
    "name": "fake",
    "horizon": 40,
    "eta": [0.1, 10.0],
    "seeds": [0, 1, 2],
    "env": {"id": "_experiment_fakes:make_env", "params": {"d": 3}},
    "sizes": [{"K": 3}, {"K": 5}],
    "agents": [
        {"name": "_experiment_fakes:FakeAgent", "label": "fake-a"},
        {"name": "_experiment_fakes:FakeAgent", "label": "fake-b",
         "kwargs": {"temperature": 2.0}, "eta": [1.0]},
    ],
    "regularizers": [{"name": "_experiment_fakes:make_regularizer"}],
    "checkpoints": {"every": 5},
    "backend": {"chunk_size": 2},
}


# ----------------------------------------------------------------- synthetic results tables

T = np.array([1, 5, 10, 20, 50, 100, 200, 500, 1000])


def synthetic_table(etas=(0.01, 1.0, 100.0), seeds=(0, 1, 2), sizes=("d=5", "d=10")):
    """Cumulative regret a*log t + b below eta = 1, c*sqrt t above, plus seed noise."""
    rows = []
    run_id = 0
    for size in sizes:
        for eta in etas:
            for seed in seeds:
                rng = np.random.default_rng(seed)
                if eta < 1:
                    cum = eta * (3.0 + seed) * np.log(T) + 1.0
                elif eta == 1:
                    cum = 2.0 * np.log(T) + 0.5 * np.sqrt(T)
                else:
                    cum = (0.2 + 0.1 * seed) * np.sqrt(T) + 0.3
                cum = cum + 1e-3 * rng.normal(size=T.size)
                for t, c in zip(T, cum):
                    rows.append(dict(run_id=run_id, agent="GS", regularizer="kl", eta=eta,
                                     seed=seed, size=size, t=t, cum_mbr_regret=c,
                                     cum_abr_regret=2 * c, estimation_error=1 / np.sqrt(t)))
                run_id += 1
    return pd.DataFrame(rows)


