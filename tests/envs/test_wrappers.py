"""Tests for rlhf_gbpm.envs.wrappers: the regret monitors."""

import gymnasium as gym
import numpy as np
import pytest

import rlhf_gbpm.envs  # noqa: F401  (registers the ids)
from rlhf_gbpm.envs.gbpm_duel import GBPMDuelEnv, GBPMDuelVectorEnv
from rlhf_gbpm.envs.wrappers import RegretMonitor, VectorRegretMonitor
from rlhf_gbpm.protocol import DuelAction


def _policies(rng, n, k):
    return rng.dirichlet(np.full(k, 0.7), size=n)


@pytest.mark.parametrize("contexts", [None, 3, "continuous"])
def test_cumulative_mbr_equals_sum_of_oracle_gaps_of_declared_max_policies(contexts):
    K, T, eta = 6, 40, 2.0
    env = RegretMonitor(GBPMDuelEnv(K=K, d=4, contexts=contexts, horizon=T), "kl", eta)
    env.reset(seed=3)
    oracle = env.unwrapped.oracle
    rng = np.random.default_rng(0)
    ref_max, ref_min = [], []
    for _ in range(T):
        p1, p2 = _policies(rng, 2, K)
        pair = rng.integers(0, K, size=2)
        _, _, _, _, info = env.step(DuelAction(pair, p1, p2))
        ctx = info["context"]  # the context the round was played in
        ref_max.append(float(oracle.dual_gap(p1, "kl", eta, context=ctx)))
        ref_min.append(float(oracle.dual_gap(p2, "kl", eta, context=ctx)))
    np.testing.assert_allclose(env.mbr_curve, np.cumsum(ref_max), rtol=1e-12)
    np.testing.assert_allclose(env.abr_curve, np.cumsum(ref_max) + np.cumsum(ref_min),
                               rtol=1e-12)
    np.testing.assert_allclose(env.dgap_max, ref_max, rtol=1e-12)
    assert info["mbr_regret"] == pytest.approx(env.mbr_curve[-1])
    assert info["abr_regret"] == pytest.approx(env.abr_curve[-1])


def test_declared_per_context_policies_give_the_exact_expectation_over_d0():
    K, C = 5, 4
    env = RegretMonitor(gym.make("rlhf_gbpm/ContextualGBPMDuel-v0", K=K, contexts=C),
                        "chi2_half", 0.7)
    env.reset(seed=1)
    pol = _policies(np.random.default_rng(2), C, K)
    env.declare(pol, np.full((C, K), 1 / K))
    for a in range(6):
        env.step(np.array([a % K, (a + 1) % K]))
    oracle = env.unwrapped.oracle
    expected = oracle.expected_dual_gap(pol, "chi2_half", 0.7)
    uniform = oracle.expected_dual_gap(np.full(K, 1 / K), "chi2_half", 0.7)
    np.testing.assert_allclose(env.dgap_max, expected, rtol=1e-12)
    np.testing.assert_allclose(env.abr_curve, np.arange(1, 7) * (expected + uniform),
                               rtol=1e-12)
    env.reset(seed=2)
    assert env.mbr_curve.shape == (0,)


def test_vector_monitor_with_eta_per_run_equals_plain_monitors():
    B, K, T = 3, 5, 7
    etas = np.array([0.1, 3.0, np.inf])
    seeds = [4, 9, 13]
    rng = np.random.default_rng(5)
    p1 = rng.dirichlet(np.ones(K), size=(T, B))
    p2 = rng.dirichlet(np.ones(K), size=(T, B))
    pairs = rng.integers(0, K, size=(T, B, 2))
    vm = VectorRegretMonitor(GBPMDuelVectorEnv(num_envs=B, K=K, d=4, contexts=2), "kl", etas)
    vm.reset(seed=seeds)
    for t in range(T):
        _, _, _, _, info = vm.step(DuelAction(pairs[t], p1[t], p2[t]))
    np.testing.assert_allclose(vm.mbr_last, info["dgap_max"])
    for i in range(B):
        m = RegretMonitor(GBPMDuelEnv(K=K, d=4, contexts=2), "kl", etas[i])
        m.reset(seed=seeds[i])
        for t in range(T):
            m.step(DuelAction(pairs[t, i], p1[t, i], p2[t, i]))
        np.testing.assert_allclose(vm.mbr_curve[i], m.mbr_curve, rtol=1e-12)
        np.testing.assert_allclose(vm.abr_curve[i], m.abr_curve, rtol=1e-12)
        assert info["mbr_regret"][i] == pytest.approx(m.mbr_curve[-1])


def test_vector_monitor_over_sync_vector_env_equals_native_and_handles_autoreset():
    B, K, horizon = 2, 4, 3
    kwargs = dict(K=K, d=2, horizon=horizon)
    native = VectorRegretMonitor(GBPMDuelVectorEnv(num_envs=B, **kwargs), "kl", 1.0)
    sync = VectorRegretMonitor(
        gym.vector.SyncVectorEnv([lambda: GBPMDuelEnv(**kwargs) for _ in range(B)]), "kl", 1.0)
    pol = _policies(np.random.default_rng(6), B, K)
    for mon in (native, sync):
        mon.reset(seed=0)
        mon.declare(pol)
        for _ in range(horizon + 2):  # one full episode, the autoreset step, one round
            mon.step(np.zeros((B, 2), dtype=np.int64))
    for mon in (native, sync):
        assert len(mon.episode_logs) == 1
        assert mon.episode_logs[0].rounds == horizon and mon.log.rounds == 1
        np.testing.assert_allclose(mon.episode_logs[0].mbr_curve,
                                   native.episode_logs[0].mbr_curve, rtol=1e-12)
    gap = native.oracle.dual_gap(pol, "kl", 1.0, context=0)
    np.testing.assert_allclose(sync.oracle.theta, native.oracle.theta)
    np.testing.assert_allclose(native.episode_logs[0].max_gaps, np.repeat(gap[:, None], 3, 1))
    np.testing.assert_allclose(native.abr_curve[:, -1], 2 * gap)  # min policy = max policy


def test_monitor_bad_inputs_raise():
    env = RegretMonitor(GBPMDuelEnv(K=4, d=2), "kl", 1.0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="declare"):
        env.step(np.array([0, 1]))
    with pytest.raises(ValueError, match=r"max_policy must have shape \(4,\)"):
        env.step(DuelAction(np.array([0, 1]), np.full(3, 1 / 3), np.full(4, 0.25)))
    with pytest.raises(ValueError, match="min_policy must lie on the probability simplex"):
        env.step(DuelAction(np.array([0, 1]), np.full(4, 0.25), np.full(4, 0.3)))
    with pytest.raises(ValueError, match="max_policy must lie on the probability simplex"):
        env.declare(np.array([1.5, -0.5, 0.0, 0.0]))
    with pytest.raises(ValueError, match="eta == 0.0, must be > 0"):
        RegretMonitor(GBPMDuelEnv(K=4, d=2), "kl", 0.0)
    with pytest.raises(ValueError, match=r"eta must have shape \(\) or \(B,\) == \(2,\)"):
        VectorRegretMonitor(GBPMDuelVectorEnv(num_envs=2, K=4, d=2), "kl", [1.0, 2.0, 3.0])
    vm = VectorRegretMonitor(GBPMDuelVectorEnv(num_envs=2, K=4, d=2), "kl", 1.0)
    vm.reset(seed=0)
    with pytest.raises(ValueError, match=r"max_policy must have shape \(2, 4\)"):
        vm.declare(np.full(4, 0.25))


def test_random_agent_regret_is_linear_in_t():
    """Uniform play every round: MBR(t) = t DGap(uniform), ABR(t) = 2 t DGap(uniform)."""
    env = RegretMonitor(gym.make("rlhf_gbpm/GBPMDuel-v0", horizon=200), "kl", 100.0)
    obs, _ = env.reset(seed=0)
    K = obs["features"].shape[0]
    uniform, rng = np.full(K, 1 / K), np.random.default_rng(0)
    for _ in range(200):
        env.step(DuelAction(rng.choice(K, size=2, p=uniform), uniform, uniform))
    gap = env.oracle.dual_gap(uniform, "kl", 100.0)
    assert gap > 0.01  # far from the eta = 100 equilibrium
    np.testing.assert_allclose(env.mbr_curve, gap * np.arange(1, 201), rtol=1e-12)
    np.testing.assert_allclose(env.abr_curve, 2 * gap * np.arange(1, 201), rtol=1e-12)


def test_fast_simplex_test_agrees_with_check_simplex():
    """The monitor's quick check (_validation.on_simplex) passes exactly the policies
    check_simplex accepts (NaN, +-inf, negatives around -tol, row sums around 1 +- tol K)."""
    from rlhf_gbpm._validation import check_simplex
    from rlhf_gbpm._validation import on_simplex as _on_simplex

    rng = np.random.default_rng(0)
    K = 5
    base = rng.dirichlet(np.ones(K), size=3)
    cases = [base, base[0]]
    for value in (np.nan, np.inf, -np.inf, -2e-8, -5e-9, 0.0):
        p = base.copy()
        p[1, 2] = value
        cases.append(p)
    for off in (3e-8, 6e-8, -6e-8, 4.9e-8, 5.1e-8):
        p = base.copy()
        p[2, 0] += off
        cases.append(p)
    cases.append(np.zeros((2, 0)))
    for p in cases:
        try:
            check_simplex(p, "p")
            accepted = True
        except ValueError:
            accepted = False
        assert _on_simplex(p) == accepted or (p.size == 0 and not _on_simplex(p))
