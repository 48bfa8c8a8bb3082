"""Tests for rlhf_gbpm.agents.baselines.omg (Optimistic Matrix Game)."""

import numpy as np
import pytest
from _agent_sim import Sim, run

from rlhf_gbpm.agents import OptimisticMatrixGame
from rlhf_gbpm.equilibrium import best_response, solve_sne
from rlhf_gbpm.instances import random_instance
from rlhf_gbpm.links import LinearLink
from rlhf_gbpm.skew import pair_features, skew_to_vec, vec_to_skew

SLOPE = 0.125


def _linear_instances(seeds, K=6, d=4):
    return [random_instance(d=d, K=K, rank=1, S=3.0, link=LinearLink(slope=SLOPE), seed=s)
            for s in seeds]


def _replay(insts, keys, out, T):
    xs, rs = [], []
    sim = Sim(insts, keys)
    for t in range(T):
        obs = sim.observe(t)
        f, pair = obs["features"], out["pairs"][:, t]
        rows = np.arange(len(insts))
        xs.append(pair_features(f[rows, pair[:, 0]], f[rows, pair[:, 1]]))
        rs.append(sim.reward(obs, pair, t))
    return np.stack(xs, 1), np.stack(rs, 1)


def test_ridge_estimate_base_ne_and_optimistic_response():
    insts = _linear_instances([1, 2])
    T = 20
    agent = OptimisticMatrixGame(regularizer="kl", eta=2.0, slope=SLOPE, ridge=1.5, bonus=0.3,
                                 refresh=1)
    out = run(agent, Sim(insts, [5, 6]), T, record=True)
    ag = out["agents"][0]
    x, r = _replay(insts, [5, 6], out, T)
    # ridge regression on the targets (r - 1/2) / c: closed form
    y = (r - 0.5) / SLOPE
    V = 1.5 * np.eye(6) + np.einsum("btd,bte->bde", x, x)
    theta = np.linalg.solve(V, np.einsum("btd,bt->bd", x, y)[..., None])[..., 0]
    np.testing.assert_allclose(ag.theta_vec_, theta, atol=1e-10)
    # the next round's base NE and optimistic best response, rebuilt independently
    feats = np.stack([i.feature_map.arms for i in insts])
    z = np.einsum("bkd,bde,ble->bkl", feats, vec_to_skew(theta, 4), feats)
    G = np.clip(SLOPE * z, -0.5, 0.5)
    base = solve_sne(G, "kl", 2.0).policy
    v_inv = np.linalg.inv(V)
    bonus = np.zeros((2, 6, 6))
    for b in range(2):
        for i in range(6):
            for j in range(6):
                xij = pair_features(feats[b, i], feats[b, j])
                bonus[b, i, j] = 0.3 * np.sqrt(xij @ v_inv[b] @ xij)
    opt = best_response(np.einsum("bij,bj->bi", G + bonus, base), "kl", 2.0)
    act = ag.act(Sim(insts, [5, 6]).observe(T))
    np.testing.assert_allclose(act.max_policy, base, atol=1e-8)  # declared: the base NE
    np.testing.assert_allclose(act.min_policy, opt, atol=1e-8)
    np.testing.assert_allclose(ag.sampling_policy_, opt, atol=1e-8)


def test_zero_bonus_plays_the_base_ne():
    """With alpha = 0 the optimistic best response to the SNE is the SNE (BR(A p*) = p*)."""
    insts = _linear_instances([3])
    agent = OptimisticMatrixGame(regularizer="l2", eta=4.0, bonus=0.0)
    out = run(agent, Sim(insts, [1]), 12, record=True)
    np.testing.assert_allclose(out["min"][0, 4:], out["max"][0, 4:], atol=1e-7)


def test_learns_on_the_linear_link():
    seeds = [0, 1, 2]
    insts = _linear_instances(seeds, K=8)
    assert np.all(np.array([skew_to_vec(i.theta) for i in insts]).any(axis=1))
    agent = OptimisticMatrixGame(regularizer="kl", eta=5.0, slope=SLOPE, bonus=0.05)
    out = run(agent, Sim(insts, seeds), 300, regularizer="kl", eta=5.0)
    assert out["mbr"][:, -50:].mean() < 0.5 * out["mbr"][:, :10].mean()


@pytest.mark.parametrize("kwargs,exc,msg", [
    ({"slope": 0.0}, ValueError, "slope == 0.0, must be > 0"),
    ({"ridge": -1.0}, ValueError, "ridge == -1.0, must be > 0"),
    ({"bonus": -0.1}, ValueError, "bonus == -0.1, must be >= 0"),
    ({"refresh": 0}, ValueError, "refresh == 0, must be >= 1."),
])
def test_bad_hyperparameters(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        OptimisticMatrixGame(**kwargs)
