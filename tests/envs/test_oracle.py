"""Tests for rlhf_gbpm.envs.oracle against the core and independent references."""

import itertools

import gymnasium as gym
import numpy as np
import pytest
from scipy.special import logsumexp, ndtri

from rlhf_gbpm.envs.bradley_terry_duel import BradleyTerryDuelEnv
from rlhf_gbpm.envs.cyclic_duel import CyclicDuelEnv
from rlhf_gbpm.envs.gbpm_duel import GBPMDuelEnv
from rlhf_gbpm.envs.oracle import DuelOracle
from rlhf_gbpm.equilibrium import dual_gap
from rlhf_gbpm.instances import cyclic_instance, random_instance
from rlhf_gbpm.preference import payoff_matrix


def _kl_gap_closed_form(p, a, eta):
    """KL to uniform: DGap = KL(p||u)/eta + log(sum_j u_j exp(eta (A p)_j))/eta."""
    k = p.shape[-1]
    kl = np.sum(np.where(p > 0, p * np.log(np.maximum(p, 1e-300) * k), 0.0))
    return kl / eta + (logsumexp(eta * (a @ p)) - np.log(k)) / eta


@pytest.fixture(scope="module")
def ctx_instance():
    return random_instance(d=5, K=7, rank=2, S=4.0, contexts=3, seed=5)


def test_payoff_matches_core_for_finite_and_continuous_contexts(ctx_instance):
    oracle = DuelOracle(ctx_instance)
    ref = payoff_matrix(ctx_instance.feature_map.table, ctx_instance.theta, "logistic")
    np.testing.assert_allclose(oracle.payoff(), ref, atol=1e-15)
    np.testing.assert_allclose(oracle.payoff(2), ref[2], atol=1e-15)
    cont = random_instance(d=4, K=6, contexts="continuous", seed=1)
    x = np.random.default_rng(0).standard_normal((5, 3))
    np.testing.assert_allclose(DuelOracle(cont).payoff(x), cont.payoff(x), atol=1e-14)
    single = random_instance(d=4, K=6, seed=2)
    assert DuelOracle(single).payoff().shape == (6, 6)  # no contexts: the single game


@pytest.mark.parametrize("eta", [0.3, 5.0, np.inf])
def test_oracle_dual_gap_equals_core_and_closed_form(ctx_instance, eta):
    oracle = DuelOracle(ctx_instance)
    p = np.random.default_rng(1).dirichlet(np.ones(7), size=3)
    gaps = oracle.dual_gap(p, "kl", eta)  # one policy per context
    core = dual_gap(p, ctx_instance.payoff(np.arange(3)), "kl", eta)
    np.testing.assert_allclose(gaps, core, rtol=1e-12, atol=1e-15)
    for c in range(3):
        a = ctx_instance.payoff(c)
        ref = np.max(a @ p[c]) if np.isinf(eta) else _kl_gap_closed_form(p[c], a, eta)
        assert oracle.dual_gap(p[c], "kl", eta, context=c) == pytest.approx(ref, rel=1e-9,
                                                                            abs=1e-13)


def test_sne_has_zero_gap_and_is_the_kl_fixed_point(ctx_instance):
    oracle = DuelOracle(ctx_instance)
    eta = 3.0
    p = oracle.sne("kl", eta)
    assert p.shape == (3, 7)
    np.testing.assert_allclose(oracle.dual_gap(p, "kl", eta), 0.0, atol=1e-10)
    a = oracle.payoff()
    logits = eta * np.einsum("cij,cj->ci", a, p)
    fixed = np.exp(logits - logsumexp(logits, axis=-1, keepdims=True))
    np.testing.assert_allclose(p, fixed, atol=1e-8)


def test_expected_dual_gap_finite_is_the_d0_average(ctx_instance):
    oracle = DuelOracle(ctx_instance)
    pol = np.random.default_rng(2).dirichlet(np.ones(7), size=3)
    ref = sum(ctx_instance.feature_map.probs[c]
              * _kl_gap_closed_form(pol[c], ctx_instance.payoff(c), 2.0) for c in range(3))
    assert oracle.expected_dual_gap(pol, "kl", 2.0) == pytest.approx(ref, rel=1e-10)
    shared = oracle.expected_dual_gap(pol[0], "kl", 2.0)
    ref0 = np.mean([_kl_gap_closed_form(pol[0], ctx_instance.payoff(c), 2.0) for c in range(3)])
    assert shared == pytest.approx(ref0, rel=1e-10)
    via_callable = oracle.expected_dual_gap(lambda c: pol[c], "kl", 2.0)
    assert via_callable == pytest.approx(ref, rel=1e-12)


def test_expected_dual_gap_continuous_is_a_monte_carlo_mean_over_stated_draws():
    inst = random_instance(d=4, K=5, contexts="continuous", seed=3)
    oracle = DuelOracle(inst)

    def policy(x):
        logits = x[..., :1] * np.arange(5)  # depends on x
        return np.exp(logits - logsumexp(logits, axis=-1, keepdims=True))

    n = 300
    got = oracle.expected_dual_gap(policy, "kl", 1.5, num_samples=n, seed=4)
    u = np.random.default_rng(4).random((n, 3))
    x = ndtri(np.clip(u, 2.0**-53, 1 - 2.0**-53))
    ref = np.mean([_kl_gap_closed_form(policy(xi), inst.payoff(xi), 1.5) for xi in x])
    assert got == pytest.approx(ref, rel=1e-9)
    batched = DuelOracle([inst, inst])
    np.testing.assert_allclose(batched.expected_dual_gap(policy, "kl", [1.5, 1.5],
                                                         num_samples=n, seed=4), [ref, ref],
                               rtol=1e-9)


def test_batched_oracle_equals_single_oracles_with_eta_per_run():
    insts = [random_instance(d=4, K=6, contexts=2, seed=s) for s in range(3)]
    batched = DuelOracle(insts)
    etas = np.array([0.5, 2.0, np.inf])
    pols = np.random.default_rng(3).dirichlet(np.ones(6), size=3)
    ctx = np.array([1, 0, 1])
    gaps = batched.dual_gap(pols, "kl", etas, context=ctx)
    sne = batched.sne("kl", etas[:2].tolist() + [1.0], context=ctx)
    for i, inst in enumerate(insts):
        single = DuelOracle(inst)
        assert gaps[i] == pytest.approx(single.dual_gap(pols[i], "kl", etas[i], context=ctx[i]),
                                        rel=1e-12)
        np.testing.assert_allclose(batched.payoff()[i], single.payoff(), atol=0)
        assert single.dual_gap(sne[i], "kl", [0.5, 2.0, 1.0][i], context=ctx[i]) < 1e-10


def _brute_cycles(pref):
    k = pref.shape[0]
    count = 0
    for i, j, m in itertools.combinations(range(k), 3):
        if (pref[i, j] > 0.5 and pref[j, m] > 0.5 and pref[m, i] > 0.5) or \
                (pref[j, i] > 0.5 and pref[m, j] > 0.5 and pref[i, m] > 0.5):
            count += 1
    return count


def test_diagnostics_match_brute_force_on_a_random_instance():
    inst = random_instance(d=5, K=9, rank=2, S=6.0, seed=8)
    oracle = DuelOracle(inst)
    pref = 0.5 + inst.payoff()
    assert oracle.count_three_cycles() == _brute_cycles(pref)
    wins = np.array([sum(pref[a, b] > 0.5 for b in range(9) if b != a) for a in range(9)])
    np.testing.assert_array_equal(oracle.copeland_scores(), wins)
    winner = [a for a in range(9) if wins[a] == 8]
    assert oracle.condorcet_winner() == (winner[0] if winner else None)


def test_cyclic_instance_has_cycles_and_uniform_von_neumann_winner():
    oracle = DuelOracle(cyclic_instance(3))
    assert oracle.condorcet_winner() is None
    assert oracle.count_three_cycles() == 1
    np.testing.assert_allclose(oracle.copeland_scores(), [1.0, 1.0, 1.0])
    np.testing.assert_allclose(oracle.von_neumann_winner(), np.full(3, 1 / 3), atol=1e-8)
    five = DuelOracle(cyclic_instance(5))
    pref = five.preference_matrix()
    assert five.count_three_cycles() == _brute_cycles(pref) > 0


def test_von_neumann_winner_is_unbeaten_on_average():
    oracle = DuelOracle(random_instance(d=6, K=12, rank=2, S=8.0, seed=4))
    p = oracle.von_neumann_winner()
    # J(p, e_j) = 1/2 + (p^T A)_j >= 1/2 for every arm j
    assert np.min(p @ oracle.payoff()) >= -1e-8
    assert p.sum() == pytest.approx(1.0) and p.min() >= -1e-12


@pytest.mark.parametrize("d, rank", [(5, 1), (6, 3), (7, 2)])
def test_spectral_blocks_reconstruct_theta_with_orthonormal_pairs(d, rank):
    inst = random_instance(d=d, K=4, rank=rank, S=3.0, seed=d)
    blocks = DuelOracle(inst).spectral_blocks()
    np.testing.assert_allclose(blocks.reconstruct(), inst.theta, atol=1e-12)
    basis = np.concatenate([blocks.u, blocks.v], axis=1)
    np.testing.assert_allclose(basis.T @ basis, np.eye(2 * (d // 2)), atol=1e-12)
    sv = np.linalg.svd(inst.theta, compute_uv=False)
    np.testing.assert_allclose(np.repeat(blocks.values, 2), sv[: 2 * (d // 2)], atol=1e-12)
    assert blocks.rank == 2 * rank
    assert np.all(np.diff(blocks.values) <= 0)
    # Theta u_i = -s_i v_i and Theta v_i = s_i u_i
    np.testing.assert_allclose(inst.theta @ blocks.u, -blocks.v * blocks.values, atol=1e-12)


def test_env_oracles_plain_and_vector():
    env = BradleyTerryDuelEnv(K=6)
    env.reset(seed=0)
    u = env.instance.feature_map.arms[:, 1]
    assert env.unwrapped.oracle.condorcet_winner() == int(np.argmax(u))
    assert env.unwrapped.oracle.count_three_cycles() == 0
    env2 = CyclicDuelEnv()
    env2.reset(seed=0)
    assert env2.oracle.condorcet_winner() is None


def test_bad_oracle_inputs_raise(ctx_instance):
    oracle = DuelOracle(ctx_instance)
    with pytest.raises(ValueError, match=r"policy must have shape \(\.\.\., K\) == \(\.\.\., 7\)"):
        oracle.dual_gap(np.full(6, 1 / 6), "kl", 1.0, context=0)
    with pytest.raises(ValueError, match="policy must lie on the probability simplex"):
        oracle.dual_gap(np.full(7, 0.2), "kl", 1.0, context=0)
    with pytest.raises(ValueError, match=r"context must lie in \[0, C\) == \[0, 3\)"):
        oracle.payoff(3)
    with pytest.raises(ValueError, match="eta == -1.0, must be > 0"):
        oracle.dual_gap(np.full(7, 1 / 7), "kl", -1.0, context=0)
    with pytest.raises(ValueError, match="context must be given"):
        DuelOracle(random_instance(d=4, K=5, contexts="continuous", seed=0)).payoff()
    env = GBPMDuelEnv(K=4, d=2)
    with pytest.raises(gym.error.ResetNeeded, match="reset"):
        env.oracle  # noqa: B018
