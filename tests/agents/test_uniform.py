"""Tests for rlhf_gbpm.agents.baselines.uniform."""

import numpy as np
import pytest
from _agent_sim import Sim, run

from rlhf_gbpm.agents import UniformAgent
from rlhf_gbpm.equilibrium import dual_gap
from rlhf_gbpm.instances import random_instance


def test_regret_is_t_times_the_gap_of_the_fixed_policy():
    insts = [random_instance(d=3, K=5, rank=1, S=2.0, seed=s) for s in (0, 1)]
    policy = np.array([0.4, 0.1, 0.1, 0.2, 0.2])
    out = run(UniformAgent(policy=policy), Sim(insts, [0, 1]), 50, regularizer="l2", eta=3.0)
    A = np.stack([i.payoff() for i in insts])
    want = 50 * dual_gap(np.broadcast_to(policy, (2, 5)), A, "l2", 3.0)
    np.testing.assert_allclose(out["mbr"].sum(axis=1), want, rtol=1e-12)


def test_empirical_frequencies_match_the_policy():
    policy = np.array([0.5, 0.25, 0.25, 0.0])
    agent = UniformAgent(policy=policy).reset(seed=list(range(4000)))
    act = agent.act({"features": np.tile(np.eye(4), (4000, 1, 1)),
                     "context": np.zeros(4000, int)})
    for col in (0, 1):
        freq = np.bincount(act.pair[:, col], minlength=4) / 4000
        assert np.all(np.abs(freq - policy) <= 5 * np.sqrt(policy * (1 - policy) / 4000) + 1e-12)
    # the two players use different streams
    assert np.mean(act.pair[:, 0] == act.pair[:, 1]) < 0.5


def test_policy_validation():
    with pytest.raises(ValueError, match="policy must lie on the probability simplex"):
        UniformAgent(policy=[0.5, 0.6])
    agent = UniformAgent(policy=[0.5, 0.5]).reset(seed=0)
    with pytest.raises(ValueError, match=r"policy must have shape \(3,\)"):
        agent.act({"features": np.eye(3), "context": 0})
