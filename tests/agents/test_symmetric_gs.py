"""Tests for rlhf_gbpm.agents.baselines.symmetric_gs."""

import numpy as np
from _agent_sim import Sim, run

from rlhf_gbpm.agents import GreedySampling, SymmetricGreedySampling
from rlhf_gbpm.equilibrium import dual_gap, solve_sne
from rlhf_gbpm.instances import random_instance
from rlhf_gbpm.preference import payoff_matrix


def test_both_players_play_the_greedy_sne():
    insts = [random_instance(d=4, K=8, rank=1, S=3.0, seed=s) for s in (2, 3)]
    agent = SymmetricGreedySampling(regularizer="kl", eta=2.0, S=3.0)
    out = run(agent, Sim(insts, [1, 2]), 15, record=True)
    np.testing.assert_array_equal(out["max"], out["min"])
    np.testing.assert_allclose(out["max"][:, 0], 1.0 / 8)  # pi_1 = rho
    # the next policy is the SNE of the agent's estimate
    ag = out["agents"][0]
    feats = np.stack([i.feature_map.arms for i in insts])
    act = ag.act(Sim(insts, [1, 2]).observe(15))
    want = solve_sne(payoff_matrix(feats, ag.theta_, "logistic"), "kl", 2.0).policy
    np.testing.assert_allclose(act.max_policy, want, atol=1e-8)
    np.testing.assert_allclose(act.min_policy, want, atol=1e-8)


def test_differs_from_gs_only_through_the_min_player():
    """Round 1 is identical (pi_1 = rho for both players, same streams); afterwards the
    min-player of GS keeps exploring with rho while the symmetric one plays the SNE."""
    insts = [random_instance(d=4, K=8, rank=1, S=3.0, seed=4)]
    sym = run(SymmetricGreedySampling(eta=1.0, S=3.0), Sim(insts, [0]), 20, record=True)
    gs = run(GreedySampling(eta=1.0, S=3.0), Sim(insts, [0]), 20, record=True)
    np.testing.assert_array_equal(sym["pairs"][:, 0], gs["pairs"][:, 0])
    np.testing.assert_allclose(gs["min"], 1.0 / 8)
    A = insts[0].payoff()[None]
    gap_min = [float(dual_gap(sym["min"][:, t], A, "shannon", 1.0)[0]) for t in (0, 19)]
    assert gap_min[1] < gap_min[0]  # the symmetric min-player moves towards the SNE
