"""Tests for rlhf_gbpm.agents.greedy_sampling (and its estimator plumbing)."""

import numpy as np
import pytest
from _agent_sim import Sim, run

from rlhf_gbpm.agents import GreedySampling
from rlhf_gbpm.envs import GBPMDuelVectorEnv, VectorRegretMonitor
from rlhf_gbpm.equilibrium import dual_gap, solve_sne
from rlhf_gbpm.estimation import OnlineNewtonStep, mle_cvxpy
from rlhf_gbpm.instances import random_instance
from rlhf_gbpm.preference import payoff_matrix
from rlhf_gbpm.skew import pair_features, skew_to_vec


def _authors_instances(seeds, **kw):
    """The authors' setting: d = 5, K = 20, r = 1, S = 5, logistic (spec 6.2)."""
    return [random_instance(d=5, K=20, rank=1, S=5.0, seed=s, **kw) for s in seeds]


def _raw_data(sim, out, T):
    """Skew features and outcomes of every round, rebuilt from the recorded pairs."""
    xs, rs = [], []
    for t in range(T):
        obs = sim.observe(t)
        f = obs["features"]
        rows = np.arange(sim.B)
        pair = out["pairs"][:, t]
        xs.append(pair_features(f[rows, pair[:, 0]], f[rows, pair[:, 1]]))
        rs.append(sim.reward(obs, pair, t))
    return np.stack(xs, axis=1), np.stack(rs, axis=1)


def _r2(curves, f):
    """R^2 of least-squares fits y ~ a f(t) + b on t >= 10, one per curve (spec 6.2)."""
    t = np.arange(1, curves.shape[1] + 1)
    m = t >= 10
    X = np.stack([f(t[m]), np.ones(m.sum())], axis=1)
    out = []
    for y in curves[:, m]:
        coef, *_ = np.linalg.lstsq(X, y, rcond=None)
        res = y - X @ coef
        out.append(1.0 - res @ res / np.sum((y - y.mean()) ** 2))
    return np.array(out)


@pytest.mark.parametrize("contexts", [None, 3, "continuous"])
def test_batched_run_equals_single_runs(contexts):
    seeds = [4, 9]
    insts = [random_instance(d=4, K=6, rank=1, S=3.0, contexts=contexts, seed=s)
             for s in seeds]
    agent = GreedySampling(regularizer="kl", eta=np.array([0.5, 20.0]), estimator="mle")
    T = 25
    a = run(agent, Sim(insts, [7, 8]), T, seeds=seeds, record=True)
    b = run(agent, Sim(insts, [7, 8]), T, seeds=seeds, record=True, batched=False)
    np.testing.assert_array_equal(a["pairs"], b["pairs"])
    np.testing.assert_allclose(a["max"], b["max"], atol=1e-9)
    np.testing.assert_allclose(a["min"], b["min"], atol=1e-12)


def test_greedy_policy_is_the_sne_of_the_estimate_and_min_player_explores():
    insts = _authors_instances([1, 2])
    sim = Sim(insts, [3, 4])
    rho = np.linspace(1.0, 2.0, 20)
    rho /= rho.sum()
    agent = GreedySampling(regularizer="l2", eta=3.0, exploration=rho)
    out = run(agent, sim, 30, record=True)
    np.testing.assert_allclose(out["max"][:, 0], np.broadcast_to(rho, (2, 20)))  # pi_1 = rho
    np.testing.assert_allclose(out["min"], np.broadcast_to(rho, (2, 30, 20)))
    # the last declared max policy was the SNE of the estimate fitted on rounds 1..29
    feats = np.stack([i.feature_map.arms for i in insts])
    ag = out["agents"][0]
    agent2 = GreedySampling(regularizer="l2", eta=3.0, exploration=rho)
    out2 = run(agent2, Sim(insts, [3, 4]), 29)
    A_hat = payoff_matrix(feats, out2["agents"][0].theta_, "logistic")
    want = solve_sne(A_hat, "l2", 3.0).policy
    np.testing.assert_allclose(out["max"][:, -1], want, atol=1e-7)
    assert np.all(dual_gap(out["max"][:, -1], A_hat, "l2", 3.0) < 1e-8)
    assert ag.version_ == 30


def test_mle_estimate_matches_cvxpy_on_all_raw_data():
    """Per-pair sufficient statistics give the exact MLE over every comparison."""
    insts = [random_instance(d=4, K=8, rank=1, S=4.0, contexts=2, seed=s) for s in (5, 6)]
    sim = Sim(insts, [1, 2])
    T = 60
    out = run(GreedySampling(eta=1.0, S=4.0, mle_tol=1e-10), sim, T)
    x, r = _raw_data(Sim(insts, [1, 2]), out, T)
    ref = mle_cvxpy(x, r, S=4.0)
    np.testing.assert_allclose(skew_to_vec(out["agents"][0].theta_), ref.theta, atol=1e-5)


def test_ons_estimator_is_the_one_pass_ons_on_the_played_pairs():
    insts = _authors_instances([7])
    T = 40
    out = run(GreedySampling(eta=1.0, estimator="ons", ons_a0=2.0, ons_step=0.5), Sim(insts, [2]),
              T)
    x, r = _raw_data(Sim(insts, [2]), out, T)
    ons = OnlineNewtonStep(10, S=5.0, a0=2.0, step_size=0.5)
    for t in range(T):
        ons.update(x[:, t], r[:, t])
    np.testing.assert_allclose(skew_to_vec(out["agents"][0].theta_), ons.theta_, atol=1e-12)


def test_sign_convention_estimate_approaches_theta_star_not_its_negative():
    insts = _authors_instances([11])
    out = run(GreedySampling(eta=1.0, refresh=5), Sim(insts, [5]), 400)
    est = out["agents"][0].theta_[0]
    err = np.linalg.norm(est - insts[0].theta)
    assert err < 0.5 * np.linalg.norm(insts[0].theta)
    assert err < np.linalg.norm(est + insts[0].theta)


def test_refresh_period_holds_the_policy_between_refits():
    insts = _authors_instances([3])
    out = run(GreedySampling(eta=5.0, refresh=3, estimator="ons"), Sim(insts, [1]), 12,
              record=True)
    pm = out["max"][0]
    for t in range(1, 12):
        changed = not np.array_equal(pm[t], pm[t - 1])
        assert changed == (t % 3 == 0)


def test_ne_residual_is_the_runners_dual_gap():
    """ne_residual_ (from the re-solve's cached payoff) equals the runner's own formula:
    the public dual_gap of the played policy in payoff_matrix of theta_ at this round."""
    from types import SimpleNamespace

    from rlhf_gbpm.experiments.runner import _ne_residual

    etas = np.array([0.05, 1.0, 30.0, 1000.0])
    seeds = [0, 1, 2, 3]
    T = 30
    env = GBPMDuelVectorEnv(num_envs=4, d=4, K=8, rank=1, S=4.0, horizon=T, max_episode_steps=T)
    agent = GreedySampling(regularizer="kl", eta=etas, estimator="ons", refresh=2, S=4.0)
    agent.reset(seed=seeds)
    obs, _ = env.reset(seed=seeds)
    checked = 0
    for t in range(T):
        action = agent.act(obs)
        value = agent.ne_residual_
        if agent.version_ == 0:
            assert value is None  # pi_hat = rho before the first refit: the runner's job
        else:
            runner_view = SimpleNamespace(theta_=agent.theta_, _link=agent._link)
            expected = _ne_residual(runner_view, obs, action, agent.regularizer_, etas)
            np.testing.assert_allclose(value, expected, rtol=0, atol=1e-13)
            checked += 1
        obs_next, reward, _, _, _ = env.step(action)
        agent.update(obs, action, reward)
        if t % 2 == 1:
            assert agent.ne_residual_ is None  # refit, not yet re-solved
        obs = obs_next
    assert checked == T - 2


def test_declared_policy_is_not_changed_by_later_refits():
    """A DuelAction's max_policy keeps its values after the agent re-solves (no aliasing of
    the re-solve's state)."""
    etas = np.array([0.5, 200.0])
    env = GBPMDuelVectorEnv(num_envs=2, d=4, K=6, rank=1, S=3.0, horizon=12,
                            max_episode_steps=12)
    agent = GreedySampling(regularizer="kl", eta=etas, estimator="ons", refresh=2, S=3.0)
    agent.reset(seed=[1, 2])
    obs, _ = env.reset(seed=[1, 2])
    held = []
    for _ in range(12):
        action = agent.act(obs)
        held.append((action.max_policy, action.max_policy.copy()))
        obs_next, reward, _, _, _ = env.step(action)
        agent.update(obs, action, reward)
        obs = obs_next
    for policy, values in held:
        np.testing.assert_array_equal(policy, values)
    assert not np.array_equal(held[2][1], held[-1][1])


def test_ne_residual_is_left_to_the_runner_with_contexts():
    """With several contexts the greedy policy of a round may come from the per-context
    cache, whose game the re-solve's payoff is not: ne_residual_ is then None."""
    etas = np.array([0.5, 20.0])
    env = GBPMDuelVectorEnv(num_envs=2, d=4, K=6, rank=1, S=3.0, contexts=3, horizon=20,
                            max_episode_steps=20)
    agent = GreedySampling(regularizer="kl", eta=etas, estimator="ons", refresh=1, S=3.0)
    agent.reset(seed=[5, 6])
    obs, _ = env.reset(seed=[5, 6])
    seen = set()
    for _ in range(20):
        action = agent.act(obs)
        all_zero = bool(np.all(obs["context"] == 0))
        seen.add(all_zero)
        if not all_zero:
            assert agent.ne_residual_ is None
        obs_next, reward, _, _, _ = env.step(action)
        agent.update(obs, action, reward)
        obs = obs_next
    assert False in seen


def test_log_regime_small_eta_sqrt_regime_large_eta_and_regret_linear_in_eta():
    """Authors' setting (d = 5, K = 20, r = 1, S = 5, logistic, KL to uniform, rho uniform,
    ONS, refresh 2), a cheap version of spec 6.2: T = 2000 instead of 10^4, 6 seeds.

    eta = 0.01: log t fits the cumulative MBR regret better than sqrt t; eta = 1000: the
    reverse, and the regret still grows at T; eta = 0.04 vs 0.01: final regret ratio ~ 4.
    """
    seeds = list(range(6)) * 3
    eta = np.repeat([0.01, 0.04, 1000.0], 6)
    T = 2000
    venv = VectorRegretMonitor(GBPMDuelVectorEnv(num_envs=18, horizon=T), "shannon", eta=eta)
    agent = GreedySampling(eta=eta, estimator="ons", refresh=2).reset(seed=seeds)
    obs, _ = venv.reset(seed=seeds)
    for _ in range(T):
        action = agent.act(obs)
        nxt, reward, _, _, _ = venv.step(action)
        agent.update(obs, action, reward)
        obs = nxt
    cum = venv.mbr_curve
    small, mid, large = cum[:6], cum[6:12], cum[12:]
    assert _r2(small, np.log).mean() > _r2(small, np.sqrt).mean()
    assert _r2(large, np.sqrt).mean() > _r2(large, np.log).mean()
    assert np.mean(large[:, -1] / large[:, T // 2 - 1]) > 1.2  # sqrt: 1.41, log: about 1.1
    np.testing.assert_allclose(mid[:, -1] / small[:, -1], 4.0, rtol=0.15)


@pytest.mark.parametrize("kwargs,exc,msg", [
    ({"estimator": "sgd"}, ValueError, r"estimator == 'sgd', must be one of \('mle', 'ons'\)"),
    ({"refresh": 0}, ValueError, "refresh == 0, must be >= 1."),
    ({"refresh": 1.5}, TypeError, "refresh must be an instance of Integral"),
    ({"S": 0.0}, ValueError, "S == 0.0, must be > 0"),
    ({"mle_tol": -1.0}, ValueError, "mle_tol == -1.0, must be > 0"),
    ({"mle_max_iter": 0}, ValueError, "mle_max_iter == 0, must be >= 1."),
    ({"ons_a0": 0.0}, ValueError, "ons_a0 == 0.0, must be > 0"),
    ({"ons_step": -2.0}, ValueError, "ons_step == -2.0, must be > 0"),
    ({"exploration": "e_optimal"}, ValueError, "exploration == 'e_optimal'"),
    ({"exploration": [0.7, 0.7]}, ValueError, "exploration must lie on the probability simplex"),
    ({"link": "linear", "S": 5.0}, ValueError, "S == 5.0 with the linear link"),
])
def test_bad_hyperparameters(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        GreedySampling(**kwargs)


def test_exploration_of_wrong_size_is_caught_at_first_act():
    agent = GreedySampling(exploration=[0.5, 0.5]).reset(seed=0)
    with pytest.raises(ValueError, match=r"exploration must have shape \(3,\)"):
        agent.act({"features": np.eye(3), "context": 0})


@pytest.mark.parametrize("agent_cls", ["gs", "etc"])
def test_pair_statistics_and_raw_data_give_the_same_estimate(monkeypatch, agent_cls):
    """Per-pair counts are an exact compression (also of ETC's mean loss, ties included)."""
    import rlhf_gbpm.agents._estimators as est
    from rlhf_gbpm.agents import ExploreThenCommit

    insts = [random_instance(d=4, K=6, rank=1, S=3.0, contexts=2, seed=s) for s in (1, 2)]

    def make():
        if agent_cls == "gs":
            return GreedySampling(eta=1.0, S=3.0, mle_tol=1e-11, refresh=25)
        return ExploreThenCommit(exploration="uniform", exploration_length=25, lam=0.01,
                                 nuclear_tol=1e-11)

    compressed = run(make(), Sim(insts, [1, 2]), 25)["agents"][0]
    assert hasattr(compressed, "_stats") or compressed._estimator.finite
    monkeypatch.setattr(est, "MAX_PAIRS", 0)
    raw = run(make(), Sim(insts, [1, 2]), 25)["agents"][0]
    assert hasattr(raw, "_data") or not raw._estimator.finite
    np.testing.assert_allclose(compressed.theta_, raw.theta_, atol=1e-7)
