"""Tests for the regret monitors' reuse of work between rounds (rlhf_gbpm.envs.wrappers).

The monitors compute gaps on the env's own payoffs without re-validating them and reuse
the gaps and validation of a repeated policy. Every recorded gap must be bit-for-bit the
public ``dual_gap`` of the same policy on the same payoff (a fresh computation), and agree
with the oracle's gap to rounding.
"""

import gymnasium as gym
import numpy as np
import pytest

import rlhf_gbpm.envs  # noqa: F401  (registers the ids)
from rlhf_gbpm.envs.gbpm_duel import GBPMDuelEnv, GBPMDuelVectorEnv
from rlhf_gbpm.envs.wrappers import RegretMonitor, VectorRegretMonitor, _env_gaps
from rlhf_gbpm.equilibrium import _check_payoff, dual_gap
from rlhf_gbpm.protocol import DuelAction
from rlhf_gbpm.regularizers import get_regularizer

REGULARIZERS = ["kl", "tsallis", "l2", "chi2", "kl_plus_chi2"]


def _policies(rng, *shape):
    return rng.dirichlet(np.full(shape[-1], 0.7), size=shape[:-1])


def _schedule(rng, T, shape):
    """Max policies that change every third round, as Greedy Sampling's do at a refresh."""
    out, current = [], None
    for t in range(T):
        if t % 3 == 0:
            current = _policies(rng, *shape)
        out.append(current.copy())
    return out


@pytest.mark.parametrize("contexts", [None, 3, "continuous"])
def test_env_payoffs_are_exactly_skew_so_the_public_check_returns_them_unchanged(contexts):
    env = GBPMDuelVectorEnv(num_envs=3, K=5, d=4, contexts=contexts)
    env.reset(seed=0)
    engine = env.unwrapped.engine
    a = engine.stack.payoff(engine.context)
    assert _check_payoff(a) is a
    if contexts == 3:
        table = engine.stack.payoff_table()
        assert _check_payoff(table) is table


@pytest.mark.parametrize("regularizer", REGULARIZERS + ["shannon", "tsallis_half"])
def test_env_gaps_equal_public_dual_gap_bit_for_bit(regularizer):
    rng = np.random.default_rng(1)
    n, k = 12, 6
    a = rng.uniform(-0.5, 0.5, (n, k, k))
    a = 0.5 * (a - np.swapaxes(a, -1, -2))
    p = _policies(rng, n, k)
    p[0] = np.eye(k)[2]  # a vertex: zeros in the policy
    eta = np.resize([0.05, 1.0, 30.0, 1e4, np.inf], n)
    reg = get_regularizer(regularizer)
    np.testing.assert_array_equal(_env_gaps(p, a, reg, eta), dual_gap(p, a, reg, eta))


def test_env_gaps_of_a_bad_payoff_raise_the_public_error():
    a = np.zeros((2, 3, 3))
    a[1, 0, 1], a[1, 1, 0] = np.nan, np.nan
    with pytest.raises(ValueError, match="A must be finite"):
        _env_gaps(np.full((2, 3), 1 / 3), a, get_regularizer("kl"), np.ones(2))


def _fresh_vector_gaps(vm, policy, played, reg):
    """The public dual_gap on the env's payoffs of the played contexts, or over d0."""
    stack = vm.env.unwrapped.engine.stack
    if policy.ndim == 3:
        gaps = dual_gap(policy, stack.payoff_table(), reg, vm.eta[:, None])
        return np.sum(stack.probs * gaps, axis=-1)
    return dual_gap(policy, stack.payoff(played), reg, vm.eta)


def _oracle_vector_gaps(vm, policy, played, reg):
    if policy.ndim == 3:
        return vm.oracle.expected_dual_gap(policy, reg, vm.eta)
    return vm.oracle.dual_gap(policy, reg, vm.eta, context=played)


@pytest.mark.parametrize("regularizer", REGULARIZERS)
@pytest.mark.parametrize("contexts,per_context", [(None, False), (3, False), (3, True),
                                                  ("continuous", False)])
def test_vector_monitor_records_the_fresh_gaps_of_repeated_and_new_policies(
        regularizer, contexts, per_context):
    B, K, T = 4, 5, 10
    vm = VectorRegretMonitor(GBPMDuelVectorEnv(num_envs=B, K=K, d=3, contexts=contexts,
                                               horizon=T), regularizer,
                             [0.2, 3.0, np.inf, 40.0])
    vm.reset(seed=7)
    rng = np.random.default_rng(2)
    shape = (B, 3, K) if per_context else (B, K)
    maxes = _schedule(rng, T, shape)
    rho = np.full(shape, 1 / K)
    for t in range(T):
        p2 = maxes[t].copy() if t == 4 else rho  # one round with min == max
        pairs = rng.integers(0, K, size=(B, 2))
        _, _, _, _, info = vm.step(DuelAction(pairs, maxes[t], p2))
        played = info["context"]
        fresh1 = _fresh_vector_gaps(vm, maxes[t], played, regularizer)
        fresh2 = _fresh_vector_gaps(vm, p2, played, regularizer)
        np.testing.assert_array_equal(info["dgap_max"], fresh1)
        np.testing.assert_array_equal(info["dgap_min"], fresh2)
        np.testing.assert_allclose(info["dgap_max"],
                                   _oracle_vector_gaps(vm, maxes[t], played, regularizer),
                                   rtol=1e-12, atol=1e-15)
    assert vm.log.rounds == T


def test_vector_monitor_over_episodes_autoreset_and_partial_done_masks():
    """Runs with horizons 2, 3 and 5 in a SyncVectorEnv: each run's autoreset step records 0."""
    K, horizons = 4, [2, 3, 5]
    vm = VectorRegretMonitor(gym.vector.SyncVectorEnv(
        [lambda h=h: GBPMDuelEnv(K=K, d=3, contexts=3, horizon=h) for h in horizons]),
        "kl", [0.5, 2.0, 8.0])
    vm.reset(seed=3)
    pol = _policies(np.random.default_rng(4), len(horizons), K)
    vm.declare(pol)
    prev_done = np.zeros(len(horizons), dtype=bool)
    partial = 0
    for _ in range(13):
        partial += int(prev_done.any() and not prev_done.all())
        _, _, term, trunc, info = vm.step(np.zeros((len(horizons), 2), dtype=np.int64))
        expected = vm.oracle.dual_gap(pol, "kl", vm.eta, context=info["context"])
        expected = np.where(prev_done, 0.0, expected)
        np.testing.assert_allclose(info["dgap_max"], expected, rtol=1e-12, atol=0.0)
        np.testing.assert_array_equal(info["dgap_min"], info["dgap_max"])
        prev_done = term | trunc
    assert partial >= 4


@pytest.mark.parametrize("per_context", [False, True])
def test_vector_monitor_keeps_its_gaps_right_across_autoreset_and_reset(per_context):
    B, K, horizon = 3, 4, 3
    env = GBPMDuelVectorEnv(num_envs=B, K=K, d=3, contexts=2, horizon=horizon)
    vm = VectorRegretMonitor(env, "tsallis", 2.0)
    vm.reset(seed=0)
    shape = (B, 2, K) if per_context else (B, K)
    pol = _policies(np.random.default_rng(5), *shape)
    vm.declare(pol, np.full(shape, 1 / K))
    pairs = np.zeros((B, 2), dtype=np.int64)

    def step_and_check():
        _, _, _, _, info = vm.step(pairs)
        if not np.all(info["dgap_max"] == 0.0):  # not the autoreset step
            np.testing.assert_array_equal(
                info["dgap_max"], _fresh_vector_gaps(vm, pol, info["context"], "tsallis"))
        return info["dgap_max"]

    first = [step_and_check() for _ in range(2 * horizon + 3)]  # two episodes, a third
    assert len(vm.episode_logs) == 2 and vm.log.rounds == 1
    vm.reset()  # same instances, the next contexts of the stream
    again = step_and_check()
    if per_context:
        np.testing.assert_array_equal(again, first[0])
    vm.reset(seed=11)  # new instances: the cached gaps must not be reused
    new = step_and_check()
    assert not np.allclose(new, first[0])


def test_reused_validation_still_sees_in_place_changes_and_bad_input():
    B, K = 2, 4
    vm = VectorRegretMonitor(GBPMDuelVectorEnv(num_envs=B, K=K, d=2), "kl", 1.0)
    vm.reset(seed=0)
    rng = np.random.default_rng(6)
    p, rho = _policies(rng, B, K), np.full((B, K), 1 / K)
    pairs = np.zeros((B, 2), dtype=np.int64)
    vm.step(DuelAction(pairs, p, rho))
    p[:] = _policies(rng, B, K)  # the caller reuses its buffer
    _, _, _, _, info = vm.step(DuelAction(pairs, p, rho))
    np.testing.assert_array_equal(info["dgap_max"],
                                  _fresh_vector_gaps(vm, p, info["context"], "kl"))
    p[0] = [1.5, -0.5, 0.0, 0.0]
    with pytest.raises(ValueError, match="max_policy must lie on the probability simplex"):
        vm.step(DuelAction(pairs, p, rho))
    with pytest.raises(ValueError, match="min_policy must be finite"):
        vm.step(DuelAction(pairs, rho, np.full((B, K), np.nan)))
    with pytest.raises(ValueError, match=r"min_policy must have shape \(2, 4\)"):
        vm.step(DuelAction(pairs, rho, rho[0]))


def test_equal_max_and_min_policies_give_equal_gaps():
    B, K = 3, 5
    vm = VectorRegretMonitor(GBPMDuelVectorEnv(num_envs=B, K=K, d=3, contexts=2), "l2", 3.0)
    vm.reset(seed=1)
    p = _policies(np.random.default_rng(7), B, K)
    pairs = np.zeros((B, 2), dtype=np.int64)
    for _ in range(3):
        _, _, _, _, info = vm.step(DuelAction(pairs, p, p.copy()))
        np.testing.assert_array_equal(info["dgap_min"], info["dgap_max"])
        np.testing.assert_array_equal(info["dgap_max"],
                                      _fresh_vector_gaps(vm, p, info["context"], "l2"))
    np.testing.assert_array_equal(vm.abr_curve, 2 * vm.mbr_curve)


@pytest.mark.parametrize("contexts", [None, 3, "continuous"])
def test_plain_monitor_gaps_of_a_repeated_policy_follow_the_context(contexts):
    K, T = 5, 12
    env = RegretMonitor(GBPMDuelEnv(K=K, d=3, contexts=contexts, horizon=T), "chi2", 4.0)
    env.reset(seed=2)
    rng = np.random.default_rng(8)
    maxes = _schedule(rng, T, (K,))
    rho = np.full(K, 1 / K)
    for t in range(T):
        _, _, _, _, info = env.step(DuelAction(rng.integers(0, K, size=2), maxes[t], rho))
        ctx = np.asarray(info["context"])
        a = env.unwrapped.engine.stack.payoff(ctx[None])[0]
        assert info["dgap_max"] == float(dual_gap(maxes[t], a, "chi2", 4.0))
        assert info["dgap_min"] == float(dual_gap(rho, a, "chi2", 4.0))
        assert info["dgap_max"] == pytest.approx(
            float(env.oracle.dual_gap(maxes[t], "chi2", 4.0, context=info["context"])),
            rel=1e-12, abs=1e-15)


def test_plain_monitor_reset_with_a_new_seed_recomputes_the_gaps():
    K = 4
    env = RegretMonitor(GBPMDuelEnv(K=K, d=3), "kl", 1.0)
    pol = _policies(np.random.default_rng(9), 3, K)
    gaps = []
    for seed in (0, 5):
        env.reset(seed=seed)
        if seed == 0:  # declared policies stay in force across resets
            env.declare(pol[0], pol[1])
        _, _, _, _, info = env.step(np.array([0, 1]))
        a = env.unwrapped.engine.stack.payoff(np.zeros(1, dtype=np.int64))[0]
        assert info["dgap_max"] == float(dual_gap(pol[0], a, "kl", 1.0))
        assert info["dgap_min"] == float(dual_gap(pol[1], a, "kl", 1.0))
        gaps.append(info["dgap_max"])
    assert gaps[0] != gaps[1]


@pytest.mark.parametrize("regularizer", ["tsallis", "chi2"])
def test_batched_run_gaps_equal_single_run_gaps(regularizer):
    B, K, T = 3, 5, 6
    etas, seeds = np.array([0.3, 5.0, np.inf]), [4, 9, 13]
    rng = np.random.default_rng(10)
    p1 = np.stack(_schedule(rng, T, (B, K)))
    p2 = rng.dirichlet(np.ones(K), size=(T, B))
    pairs = rng.integers(0, K, size=(T, B, 2))
    vm = VectorRegretMonitor(GBPMDuelVectorEnv(num_envs=B, K=K, d=3), regularizer, etas)
    vm.reset(seed=seeds)
    for t in range(T):
        vm.step(DuelAction(pairs[t], p1[t], p2[t]))
    for i in range(B):
        m = RegretMonitor(GBPMDuelEnv(K=K, d=3), regularizer, etas[i])
        m.reset(seed=seeds[i])
        for t in range(T):
            m.step(DuelAction(pairs[t, i], p1[t, i], p2[t, i]))
        np.testing.assert_allclose(vm.dgap_max[i], m.dgap_max, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(vm.dgap_min[i], m.dgap_min, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("regularizer", REGULARIZERS)
def test_gap_only_routine_equals_the_flat_gap_bit_for_bit(regularizer):
    from rlhf_gbpm.equilibrium import _dual_gap_flat, _flat_reference
    from rlhf_gbpm.regularizers import SeparableRegularizer

    rng = np.random.default_rng(5)
    B, K = 9, 6
    reg = get_regularizer(regularizer)
    a = rng.normal(size=(B, K, K)) * 3.0
    a = 0.5 * (a - np.swapaxes(a, 1, 2))
    p = _policies(rng, B, K)
    p[0] = np.eye(K)[2]  # a vertex: zeros in p
    rho = _flat_reference(reg, p.shape) if isinstance(reg, SeparableRegularizer) else None
    for eta in (np.logspace(-2, 4, B), np.r_[np.logspace(-2, 2, B - 1), np.inf]):
        got = _dual_gap_flat(p, a, reg, eta, rho, residual=False)[0]
        want = _dual_gap_flat(p, a, reg, eta, rho)[0]
        assert got.tobytes() == want.tobytes()


def _kl_bregman_reference(p, q, g, rho):
    """The KL Bregman sum with both forms computed everywhere (the definition)."""
    from scipy import special

    with np.errstate(all="ignore"):
        stable = special.rel_entr(p, q) - p + q
        under = special.rel_entr(p, rho) - g * p
    terms = np.where(q >= np.finfo(float).tiny, stable, under)
    return np.sum(np.where(p == q, 0.0, terms), axis=-1)


def test_kl_bregman_with_underflowed_best_responses_equals_its_definition():
    rng = np.random.default_rng(11)
    reg = get_regularizer("kl")
    B, K = 7, 5
    p = _policies(rng, B, K)
    rho = _policies(rng, B, K)
    q = _policies(rng, B, K)
    q[1, 2], q[2, 0], q[3, 4], q[4, 1] = 0.0, 1e-310, np.nan, 5e-324  # zero, subnormal, NaN
    g = rng.normal(size=(B, K))
    assert reg._bregman(p, q, g, rho).tobytes() == _kl_bregman_reference(p, q, g, rho).tobytes()
    # broadcast reference and subgradient (one row for every problem)
    got = reg._bregman(p, q, g[0], rho[0])
    assert got.tobytes() == _kl_bregman_reference(p, q, g[0], rho[0]).tobytes()
    # no underflow: the stable form only
    q2 = _policies(rng, B, K)
    assert reg._bregman(p, q2, g, rho).tobytes() == _kl_bregman_reference(
        p, q2, g, rho).tobytes()
