"""Tests for rlhf_gbpm.agents.baselines.nash_md."""

import numpy as np
import pytest
from _agent_sim import Sim, run

from rlhf_gbpm.agents import OnlineNashMD
from rlhf_gbpm.equilibrium import dual_gap
from rlhf_gbpm.instances import random_instance
from rlhf_gbpm.preference import payoff_matrix
from rlhf_gbpm.skew import skew_to_vec


class _KnownModel:
    """Stand-in estimator that always returns a fixed Theta (test only)."""

    def __init__(self, theta_vec):
        self.theta_vec = theta_vec

    def observe(self, *args):
        del args

    def fit(self):
        return self.theta_vec


@pytest.mark.parametrize("reg,eta", [("kl", 0.5), ("kl", 5.0), ("l2", 5.0), ("chi2_half", 5.0),
                                     ("tsallis", 5.0)])
def test_with_the_true_model_nash_md_converges_to_the_sne(reg, eta):
    inst = random_instance(d=4, K=6, rank=1, S=3.0, seed=1)
    obs = {"features": inst.feature_map.arms, "context": 0}
    agent = OnlineNashMD(regularizer=reg, eta=eta).reset(seed=0)
    agent.act(obs)
    agent._estimator = _KnownModel(skew_to_vec(inst.theta)[None])
    A = inst.payoff()
    gaps = []
    for _ in range(150):
        agent.update(obs, agent.act(obs), 1.0)
        gaps.append(float(dual_gap(agent.policies_[0, 0], A, reg, eta)))
    assert gaps[-1] < 1e-3 * gaps[0]  # last-iterate convergence (about 1/t^2 here)
    assert gaps[-1] < gaps[20] < gaps[0]


def test_kl_step_is_the_nash_md_update():
    """One step equals pi' ∝ pi_mix exp(eta_t P_hat(. > pi_mix)), pi_mix ∝ pi^(1-w) rho^w."""
    inst = random_instance(d=4, K=6, rank=1, S=3.0, seed=2)
    rho = np.array([0.1, 0.2, 0.3, 0.1, 0.2, 0.1])
    eta = 3.0
    agent = OnlineNashMD(regularizer="kl", reference=rho, eta=eta, estimator="mle", S=3.0)
    out = run(agent, Sim([inst], [9]), 6, record=True)
    ag = out["agents"][0]
    # replay the last step from the recorded policy before it
    pi = out["max"][0, -1]
    t = 5
    lr, w = 2.0 * eta / (t + 2.0), 2.0 / (t + 2.0)
    mix = pi ** (1 - w) * rho ** w
    mix /= mix.sum()
    np.testing.assert_allclose(out["min"][0, -1], mix, atol=1e-10)
    A_hat = payoff_matrix(inst.feature_map.arms, ag.theta_[0], "logistic")
    new = mix * np.exp(lr * (A_hat @ mix + 0.5))
    new /= new.sum()
    np.testing.assert_allclose(ag.policies_[0, 0], new, atol=1e-10)


def test_online_regret_shrinks_per_round():
    seeds = [0, 1, 2]
    insts = [random_instance(d=4, K=8, rank=1, S=3.0, seed=s) for s in seeds]
    agent = OnlineNashMD(regularizer="kl", eta=2.0, S=3.0)
    out = run(agent, Sim(insts, seeds), 300, regularizer="kl", eta=2.0)
    first, last = out["mbr"][:, :30].mean(), out["mbr"][:, -30:].mean()
    assert last < 0.5 * first


def test_continuous_contexts_are_refused():
    agent = OnlineNashMD().reset(seed=0)
    with pytest.raises(ValueError, match="finite contexts only"):
        agent.act({"features": np.eye(3), "x": np.zeros(2)})


@pytest.mark.parametrize("kwargs,exc,msg", [
    ({"learning_rate": "fast"}, ValueError, "learning_rate == 'fast'"),
    ({"learning_rate": 0.0}, ValueError, "learning_rate == 0.0, must be > 0"),
    ({"learning_rate": 2.0, "eta": 1.0}, ValueError, "must be <= eta == 1.0"),
    ({"estimator": "x"}, ValueError, "estimator == 'x'"),
    ({"initial": [1.2, -0.2]}, ValueError, "initial must lie on the probability simplex"),
    ({"S": -1.0}, ValueError, "S == -1.0, must be > 0"),
])
def test_bad_hyperparameters(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        OnlineNashMD(**kwargs)
