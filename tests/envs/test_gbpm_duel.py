"""Tests for rlhf_gbpm.envs.gbpm_duel: the plain duel env and its native vector twin."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence

from rlhf_gbpm.envs.gbpm_duel import GBPMDuelEnv, GBPMDuelVectorEnv
from rlhf_gbpm.errors import GBPMWarning
from rlhf_gbpm.features import FiniteContexts, random_unit_features
from rlhf_gbpm.instances import custom_instance, random_instance, random_skew_theta
from rlhf_gbpm.preference import payoff_matrix
from rlhf_gbpm.protocol import DuelAction

CONTEXT_KINDS = [None, 3, "continuous"]


def _actions(seed, steps, batch, K):
    return np.random.default_rng(seed).integers(0, K, size=(steps, batch, 2))


def _plain_rollout(env, seed, actions, options=None):
    obs, info = env.reset(seed=seed, options=options)
    out = [(obs, info)]
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        out.append((obs, r, term, trunc, info))
        if trunc:
            obs, info = env.reset()
            out.append((obs, info))
    return out


@pytest.mark.parametrize("contexts", CONTEXT_KINDS)
def test_vector_run_i_equals_plain_env_with_seed_i_across_autoreset(contexts):
    B, K, T, horizon = 4, 6, 11, 4
    seeds = [5, 17, 17, 2]
    acts = _actions(0, T, B, K)
    venv = GBPMDuelVectorEnv(num_envs=B, K=K, d=4, contexts=contexts, horizon=horizon)
    obs, _ = venv.reset(seed=seeds)
    vec = [obs]
    for a in acts:
        vec.append(venv.step(a))
    for i, seed in enumerate(seeds):
        env = GBPMDuelEnv(K=K, d=4, contexts=contexts, horizon=horizon)
        # next-step autoreset: the step after a truncation is the plain env's reset
        plain_obs = []
        rewards, probs = [], []
        obs, _ = env.reset(seed=seed)
        plain_obs.append(obs)
        done = False
        for a in acts[:, i]:
            if done:
                obs, _ = env.reset()
                r, p, done = 0.0, 0.0, False
            else:
                obs, r, _, done, info = env.step(a)
                p = info["probability"]
            plain_obs.append(obs)
            rewards.append(r)
            probs.append(p)
        for t, o in enumerate(plain_obs):
            vo = vec[0] if t == 0 else vec[t][0]
            assert data_equivalence({k: v[i] for k, v in vo.items()}, o, exact=True)
        np.testing.assert_array_equal([v[1][i] for v in vec[1:]], rewards)
        vec_probs = [v[4].get("probability", np.zeros(B))[i] for v in vec[1:]]
        np.testing.assert_array_equal(vec_probs, probs)
    truncs = np.array([v[3] for v in vec[1:]])
    assert truncs[:, 0].tolist() == [False, False, False, True, False] * 2 + [False]


@pytest.mark.parametrize("contexts", CONTEXT_KINDS)
def test_native_vector_env_equals_sync_vector_env(contexts):
    B, K, T = 3, 5, 9
    kwargs = dict(K=K, d=4, contexts=contexts, horizon=4)
    sync = gym.vector.SyncVectorEnv([lambda: GBPMDuelEnv(**kwargs) for _ in range(B)])
    native = GBPMDuelVectorEnv(num_envs=B, **kwargs)
    a = sync.reset(seed=11)
    b = native.reset(seed=11)
    assert data_equivalence(a, b, exact=True)
    for act in _actions(1, T, B, K):
        a = sync.step(act)
        b = native.step(act)
        assert data_equivalence(a, b, exact=True)


def test_same_seed_same_trajectory_and_instance_noise_seeds_are_separate():
    acts = _actions(2, 30, 1, 8)[:, 0]
    env = GBPMDuelEnv(K=8, horizon=100)
    r1 = _plain_rollout(env, 4, acts)
    theta1 = env.instance.theta.copy()
    r2 = _plain_rollout(env, 4, acts)
    assert data_equivalence(r1, r2, exact=True)
    # same instance, different noise
    _plain_rollout(env, 5, acts, options={"instance_seed": 99})
    theta_a = env.instance.theta.copy()
    rew_a = [s[1] for s in env_steps(env, 5, acts, {"instance_seed": 99, "noise_seed": 1})]
    rew_b = [s[1] for s in env_steps(env, 6, acts, {"instance_seed": 99, "noise_seed": 1})]
    np.testing.assert_array_equal(env.instance.theta, theta_a)
    assert not np.allclose(theta_a, theta1)
    assert rew_a == rew_b  # common random numbers: same instance, same noise
    # the noise of a seed does not depend on the instance: u_t < p_t with the same u_t
    probs_x = [s[4]["probability"] for s in env_steps(env, 6, acts, {"instance_seed": 1})]
    rew_x = [s[1] for s in env_steps(env, 6, acts, {"instance_seed": 1})]
    probs_y = [s[4]["probability"] for s in env_steps(env, 6, acts, {"instance_seed": 2})]
    rew_y = [s[1] for s in env_steps(env, 6, acts, {"instance_seed": 2})]
    for px, rx, py, ry in zip(probs_x, rew_x, probs_y, rew_y):
        if px <= py:
            assert rx <= ry  # 1[u < px] <= 1[u < py]
        else:
            assert rx >= ry


def env_steps(env, seed, acts, options):
    env.reset(seed=seed, options=options)
    return [env.step(a) for a in acts]


def test_constructor_instance_and_unseeded_reset_keep_the_instance():
    inst = random_instance(d=4, K=5, seed=3)
    env = GBPMDuelEnv(instance=inst, K=5, d=4)
    env.reset(seed=1)
    assert env.instance is inst
    env2 = GBPMDuelEnv(K=5, d=4, instance_seed=42)
    env2.reset(seed=1)
    t1 = env2.instance.theta
    env2.reset(seed=2)
    np.testing.assert_array_equal(env2.instance.theta, t1)
    np.testing.assert_array_equal(t1, random_instance(d=4, K=5, seed=42).theta)
    env3 = GBPMDuelEnv(K=5, d=4)
    env3.reset(seed=1)
    first = env3.instance
    env3.reset()
    assert env3.instance is first


def test_share_instance_runs_equal_plain_env_with_that_instance():
    venv = GBPMDuelVectorEnv(num_envs=3, K=5, d=4, contexts=2, share_instance=True)
    venv.reset(seed=[3, 4, 5])
    shared = venv.instances[0]
    assert all(inst is shared for inst in venv.instances)
    acts = _actions(3, 6, 3, 5)
    vec = [venv.step(a) for a in acts]
    env = GBPMDuelEnv(K=5, d=4, contexts=2, instance=shared)
    env.reset(seed=5)
    for t, a in enumerate(acts[:, 2]):
        _, r, _, _, info = env.step(a)
        assert r == vec[t][1][2] and info["probability"] == vec[t][4]["probability"][2]


@pytest.mark.parametrize("contexts", [None, 4])
def test_empirical_win_rates_match_oracle_probabilities(contexts):
    """All K^2 pairs, 250 rounds each: sum of squared z-scores ~ chi^2(K^2)."""
    K, T = 8, 250
    venv = GBPMDuelVectorEnv(num_envs=K * K, K=K, d=4, S=5.0, contexts=contexts,
                             share_instance=True, horizon=T)
    venv.reset(seed=0)
    pairs = np.stack(np.meshgrid(np.arange(K), np.arange(K), indexing="ij"), -1).reshape(-1, 2)
    oracle_p = venv.oracle.preference_matrix(
        np.zeros(K * K, dtype=int) if contexts is None else None)
    wins = np.zeros(K * K)
    expected = np.zeros(K * K)
    var = np.zeros(K * K)
    for _ in range(T):
        ctx = venv.engine.context.copy()
        _, r, _, _, info = venv.step(pairs)
        if contexts is None:
            p = oracle_p[np.arange(K * K), pairs[:, 0], pairs[:, 1]]
        else:
            p = oracle_p[np.arange(K * K), ctx, pairs[:, 0], pairs[:, 1]]
        np.testing.assert_allclose(info["probability"], p, rtol=0, atol=1e-12)
        wins += r
        expected += p
        var += p * (1 - p)
    z = (wins - expected) / np.sqrt(var)
    n = K * K
    # tolerance: chi^2(n) has mean n and sd sqrt(2n); allow 5 sd, and |z| <= 4.5 per pair
    assert abs(np.sum(z**2) - n) < 5 * np.sqrt(2 * n)
    assert np.max(np.abs(z)) < 4.5


def test_plain_env_probability_is_the_payoff_entry_and_bits_follow_it():
    env = GBPMDuelEnv(K=6, d=4, S=6.0, horizon=5000)
    env.reset(seed=9)
    a_star = payoff_matrix(env.instance.feature_map.arms, env.instance.theta, "logistic")
    wins, n = 0.0, 3000
    for _ in range(n):
        _, r, _, _, info = env.step(np.array([1, 4]))
        wins += r
    p = 0.5 + a_star[1, 4]
    assert info["probability"] == pytest.approx(p, abs=1e-12)
    # binomial tolerance: 4.5 standard deviations
    assert abs(wins / n - p) < 4.5 * np.sqrt(p * (1 - p) / n)


def test_truncation_at_horizon_and_never_termination():
    env = GBPMDuelEnv(K=3, d=2, horizon=3)
    env.reset(seed=0)
    flags = [env.step(np.array([0, 1]))[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]
    with pytest.warns(GBPMWarning, match="max_episode_steps == 2 truncates episodes"):
        venv = GBPMDuelVectorEnv(num_envs=2, K=3, d=2, horizon=50, max_episode_steps=2)
    venv.reset(seed=0)
    assert not venv.step(np.zeros((2, 2), int))[3].any()
    assert venv.step(np.zeros((2, 2), int))[3].all()


def test_duel_action_is_accepted_and_its_pair_played():
    env = GBPMDuelEnv(K=4, d=2)
    env.reset(seed=0)
    out_a = env.step(DuelAction(np.array([2, 3]), np.full(4, 0.25), np.full(4, 0.25)))
    env.reset(seed=0)
    out_b = env.step(np.array([2, 3]))
    assert data_equivalence(out_a, out_b, exact=True)


@pytest.mark.parametrize("kwargs, match", [
    (dict(K=1), "K == 1, must be >= 2"),
    (dict(d=4, rank=3), "rank == 3, must satisfy 2\\*rank <= d == 4"),
    (dict(S=0.0), "S == 0.0, must be > 0"),
    (dict(S=-1.0), "S == -1.0, must be > 0"),
    (dict(horizon=0), "horizon == 0, must be >= 1"),
    (dict(norm="max"), "norm == 'max'"),
    (dict(contexts="many"), "contexts == 'many'"),
    (dict(link="cubic"), "link == 'cubic'"),
])
def test_bad_constructor_arguments_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GBPMDuelEnv(**kwargs)
    with pytest.raises(ValueError, match=match):
        GBPMDuelVectorEnv(num_envs=2, **kwargs)


def test_bad_actions_and_options_raise():
    env = GBPMDuelEnv(K=4, d=2)
    with pytest.raises(gym.error.ResetNeeded):
        env.step(np.array([0, 1]))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action entries must lie in \[0, K\) == \[0, 4\)"):
        env.step(np.array([0, 4]))
    with pytest.raises(ValueError, match=r"action entries must lie in \[0, K\)"):
        env.step(np.array([-1, 0]))
    with pytest.raises(ValueError, match="action must be a pair"):
        env.step(np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="action must hold integers"):
        env.step(np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="options has unknown keys"):
        env.reset(options={"instance": 1})
    with pytest.raises(ValueError, match="instance_seed == -1, must be >= 0"):
        env.reset(options={"instance_seed": -1})
    venv = GBPMDuelVectorEnv(num_envs=2, K=4, d=2)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=r"actions must have shape \(B, 2\) == \(2, 2\)"):
        venv.step(np.zeros((3, 2), int))
    with pytest.raises(ValueError, match=r"actions entries must lie in \[0, K\) == \[0, 4\)"):
        venv.step(np.array([[0, 1], [5, 0]]))
    with pytest.raises(ValueError, match="seed must be an int or a list of num_envs == 2"):
        venv.reset(seed=[1, 2, 3])
    with pytest.raises(ValueError, match="seed == -3, must be >= 0"):
        venv.reset(seed=[1, -3])
    venv.reset(seed=[np.int64(1), np.int64(2)])  # numpy ints are fine


def test_context_frequencies_follow_d0_including_non_uniform():
    """Chi-square goodness of fit of 20 000 context draws (3 dof; 5e-4 quantile is 17.7)."""
    table = random_unit_features((3, 4, 3), seed=0)
    probs = np.array([0.6, 0.3, 0.1])
    inst = custom_instance(random_skew_theta(3, 1, 2.0, seed=1),
                           FiniteContexts(table, probs=probs))
    venv = GBPMDuelVectorEnv(num_envs=500, K=4, d=3, instances=inst)
    obs, _ = venv.reset(seed=0)
    counts = np.bincount(obs["context"], minlength=3)
    for _ in range(39):
        obs = venv.step(np.zeros((500, 2), dtype=np.int64))[0]
        counts += np.bincount(obs["context"], minlength=3)
        np.testing.assert_array_equal(obs["features"], table[obs["context"]])
    n = counts.sum()
    chi2 = np.sum((counts - n * probs) ** 2 / (n * probs))
    assert chi2 < 17.7


def test_continuous_contexts_are_standard_normal():
    venv = GBPMDuelVectorEnv(num_envs=400, K=4, d=3, contexts="continuous")
    obs, _ = venv.reset(seed=1)
    xs = [obs["x"]]
    for _ in range(24):
        xs.append(venv.step(np.zeros((400, 2), dtype=np.int64))[0]["x"])
    x = np.concatenate(xs)  # 10 000 draws of x in R^3
    n = x.shape[0]
    # mean: 5 standard errors; covariance entries: 5 standard errors (about sqrt(2/n) or sqrt(1/n))
    assert np.max(np.abs(x.mean(axis=0))) < 5 / np.sqrt(n)
    cov = np.cov(x.T)
    assert np.max(np.abs(np.diag(cov) - 1)) < 5 * np.sqrt(2 / n)
    assert np.max(np.abs(cov - np.diag(np.diag(cov)))) < 5 / np.sqrt(n)


def test_pair_probabilities_are_complementary_and_half_on_the_diagonal():
    venv = GBPMDuelVectorEnv(num_envs=50, K=6, d=5, rank=2, S=9.0, contexts=2)
    venv.reset(seed=2)
    pairs = np.random.default_rng(0).integers(0, 6, size=(50, 2))
    engine = venv.engine
    rows = np.arange(50)
    p_ab = engine.stack.pair_probability(engine.features, pairs[:, 0], pairs[:, 1], rows)
    p_ba = engine.stack.pair_probability(engine.features, pairs[:, 1], pairs[:, 0], rows)
    p_aa = engine.stack.pair_probability(engine.features, pairs[:, 0], pairs[:, 0], rows)
    np.testing.assert_allclose(p_ab + p_ba, 1.0, atol=1e-15)
    np.testing.assert_array_equal(p_aa, 0.5)


@pytest.mark.parametrize("contexts", [None, 3])
def test_vector_pair_probability_is_the_closed_form_for_all_runs_and_for_some(contexts):
    """The every-run step (views of the engine's tables) and a step of some runs (gathers)
    both give p = mu(phi1^T skew(Theta*) phi2) of each run's own instance, to rounding."""
    B, K = 5, 7
    venv = GBPMDuelVectorEnv(num_envs=B, K=K, d=6, rank=2, S=8.0, contexts=contexts)
    venv.reset(seed=[1, 2, 3, 4, 5])
    engine = venv.engine
    rng = np.random.default_rng(3)

    def closed_form(feats, a1, a2, rows):
        theta = np.stack([venv.instances[b].theta for b in rows])
        skew = 0.5 * (theta - np.swapaxes(theta, 1, 2))
        n = np.arange(len(rows))
        z = np.einsum("ni,nij,nj->n", feats[n, a1], skew, feats[n, a2])
        return 1.0 / (1.0 + np.exp(-z))

    for _ in range(4):
        pairs = rng.integers(0, K, size=(B, 2))
        feats = engine.features.copy()
        _, _, _, _, info = venv.step(pairs)
        np.testing.assert_allclose(info["probability"],
                                   closed_form(feats, pairs[:, 0], pairs[:, 1], range(B)),
                                   rtol=0, atol=1e-14)
        rows = np.array([3, 0])
        feats = engine.features[rows].copy()
        t_before = engine.t.copy()
        p, _, _, t = engine.play(pairs[rows, 0], pairs[rows, 1], rows)
        np.testing.assert_allclose(p, closed_form(feats, pairs[rows, 0], pairs[rows, 1], rows),
                                   rtol=0, atol=1e-14)
        np.testing.assert_array_equal(t, t_before[rows])
        np.testing.assert_array_equal(engine.t, t_before + np.isin(np.arange(B), rows))


def test_vector_rewards_are_the_noise_stream_draws_across_autoresets():
    """reward == 1[counter_uniform(noise_key, t, STREAM_NOISE) < p] for every run and round,
    also after the autoreset gives the runs new noise keys (the engine keeps the keys' half
    of the hash between rounds)."""
    from rlhf_gbpm._random import counter_uniform
    from rlhf_gbpm.protocol import STREAM_NOISE

    B, K, T = 4, 5, 3
    venv = GBPMDuelVectorEnv(num_envs=B, K=K, d=4, S=6.0, horizon=T)
    venv.reset(seed=[7, 8, 9, 10])
    engine = venv.engine
    acts = _actions(5, 3 * T + 2, B, K)
    keys_seen = set()
    for a in acts:
        keys, t = engine.noise_key.copy(), engine.t.copy()
        keys_seen.update(int(k) for k in keys)
        _, reward, _, _, info = venv.step(a)
        if "probability" not in info:  # an autoreset step: no round was played
            continue
        u = counter_uniform(keys, t, STREAM_NOISE)
        np.testing.assert_array_equal(reward, (u < info["probability"]).astype(float))
    assert len(keys_seen) == 3 * B  # two autoresets drew new noise keys


@pytest.mark.parametrize("link", ["logistic", "probit"])
def test_probability_table_entries_equal_pair_probability_bit_for_bit(link):
    """Without contexts the engine looks probabilities up in a (B, K, K) table after K^2/4
    rounds; every entry must be pair_probability's own value for that run and pair."""
    B, K, d = 3, 9, 5
    venv = GBPMDuelVectorEnv(num_envs=B, K=K, d=d, rank=2, S=6.0, link=link)
    venv.reset(seed=[4, 8, 15])
    stack = venv.engine.stack
    table = stack.pair_probability_table()
    assert table.shape == (B, K, K)
    a1, a2 = np.divmod(np.arange(K * K), K)
    for b in range(B):
        feats = np.broadcast_to(stack.table[b, 0], (K * K, K, d))
        want = stack.pair_probability(feats, a1, a2, np.full(K * K, b))
        assert table[b].ravel().tobytes() == want.tobytes()
    np.testing.assert_array_equal(table + np.swapaxes(table, 1, 2), 1.0)
    with_contexts = GBPMDuelVectorEnv(num_envs=2, K=K, d=d, contexts=3)
    with_contexts.reset(seed=0)
    with pytest.raises(ValueError, match="one fixed context"):
        with_contexts.engine.stack.pair_probability_table()


def test_vector_env_with_the_probability_table_equals_plain_envs_across_autoreset():
    """Rounds before and after the table takes over (K^2/4 = 9 plays at K = 6), with
    autoresets and steps of some runs: run i equals the plain env seeded with seed i."""
    B, K, T, horizon = 3, 6, 40, 7
    seeds = [3, 30, 300]
    acts = _actions(1, T, B, K)
    venv = GBPMDuelVectorEnv(num_envs=B, K=K, d=4, horizon=horizon)
    venv.reset(seed=seeds)
    out = [venv.step(a) for a in acts]
    assert venv.engine._plays > venv.engine._table_after
    for i, seed in enumerate(seeds):
        env = GBPMDuelEnv(K=K, d=4, horizon=horizon)
        env.reset(seed=seed)
        done = False
        for t, a in enumerate(acts[:, i]):
            if done:
                env.reset()
                done = False
                assert out[t][1][i] == 0.0
                continue
            _, r, _, done, info = env.step(a)
            assert out[t][1][i] == r
            assert out[t][4]["probability"][i] == info["probability"]


def test_vector_features_without_contexts_are_one_read_only_unchanging_array():
    """Without contexts the vector env's observations share one read-only features array
    equal to each plain env's (fresh) features; with contexts every step copies."""
    B, K, d = 3, 5, 4
    venv = GBPMDuelVectorEnv(num_envs=B, K=K, d=d, horizon=3)
    obs0, _ = venv.reset(seed=[1, 2, 3])
    first = obs0["features"].copy()
    seen = [obs0]
    for a in _actions(2, 7, B, K):  # across autoresets
        seen.append(venv.step(a)[0])
    for obs in seen:
        assert not obs["features"].flags.writeable
        assert obs["features"].tobytes() == first.tobytes()
    with pytest.raises(ValueError):
        seen[-1]["features"][0, 0, 0] = 5.0
    assert not np.shares_memory(seen[1]["context"], seen[2]["context"])
    for i, seed in enumerate([1, 2, 3]):
        plain, _ = GBPMDuelEnv(K=K, d=d).reset(seed=seed)
        assert plain["features"].flags.writeable
        np.testing.assert_array_equal(plain["features"], first[i])
    ctx = GBPMDuelVectorEnv(num_envs=B, K=K, d=d, contexts=3)
    o1, _ = ctx.reset(seed=0)
    o2 = ctx.step(_actions(3, 1, B, K)[0])[0]
    assert o1["features"].flags.writeable and not np.shares_memory(o1["features"],
                                                                   o2["features"])


def test_engine_noise_draws_with_shared_and_differing_round_indices():
    """Rounds where every run is at the same t draw the noise with one int counter; after
    some runs played alone (t differs) and after a partial begin, each reward must still be
    1[counter_uniform(noise_key, t_i, STREAM_NOISE) < p_i] of its own run."""
    from rlhf_gbpm._random import counter_uniform
    from rlhf_gbpm.protocol import STREAM_NOISE

    B, K = 4, 5
    venv = GBPMDuelVectorEnv(num_envs=B, K=K, d=4, S=6.0)
    venv.reset(seed=[1, 2, 3, 4])
    engine = venv.engine
    rng = np.random.default_rng(9)
    schedule = [None, None, np.array([1, 3]), None, "begin", None, np.array([0]), None, None]
    for rows in schedule:
        if isinstance(rows, str):
            engine.begin(np.array([2]), np.array([77], dtype=np.uint64),
                         np.array([78], dtype=np.uint64))
            continue
        idx = np.arange(B) if rows is None else rows
        keys, t = engine.noise_key[idx].copy(), engine.t[idx].copy()
        a = rng.integers(0, K, size=(idx.size, 2))
        p, reward, _, t_played = engine.play(a[:, 0], a[:, 1], rows)
        np.testing.assert_array_equal(t_played, t)
        u = counter_uniform(keys, t, STREAM_NOISE)
        np.testing.assert_array_equal(reward, (u < p).astype(float))
    assert len(set(engine.t.tolist())) > 1
