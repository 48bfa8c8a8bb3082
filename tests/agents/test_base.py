"""Tests for rlhf_gbpm.agents.base: sampling, seeding, validation, configs."""

import numpy as np
import pytest

from rlhf_gbpm._random import counter_uniform
from rlhf_gbpm.agents import (
    AGENTS,
    ExploreThenCommit,
    GreedySampling,
    OnlineNashMD,
    OptimisticMatrixGame,
    UniformAgent,
    sample_actions,
)
from rlhf_gbpm.agents.base import seed_keys
from rlhf_gbpm.protocol import STREAM_MAX, STREAM_MIN


def test_sample_actions_is_the_inverse_cdf():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(7), size=500)
    p[:, 3] = 0.0
    p /= p.sum(axis=1, keepdims=True)
    u = rng.random(500)
    a = sample_actions(p, u)
    # brute force: the first k with cdf[k] > u
    cdf = np.cumsum(p, axis=1)
    want = np.array([np.flatnonzero(cdf[i] > u[i] * cdf[i, -1])[0] for i in range(500)])
    np.testing.assert_array_equal(a, want)
    assert not np.any(a == 3)


def test_sample_actions_frequencies_match_policy():
    p = np.array([0.5, 0.0, 0.2, 0.3])
    u = counter_uniform(np.uint64(7), np.arange(20000), 2)
    a = sample_actions(np.broadcast_to(p, (20000, 4)), u)
    freq = np.bincount(a, minlength=4) / 20000
    # 5 sigma of a binomial proportion
    assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / 20000) + 1e-12)


def test_seed_keys_depend_on_own_seed_only():
    a = seed_keys([3, 4, 5])
    b = seed_keys([5, 3])
    assert a[0] == b[1] and a[2] == b[0]
    assert len(set(a.tolist())) == 3


def test_uniform_agent_actions_follow_counter_streams():
    agent = UniformAgent().reset(seed=[11, 12])
    feats = np.tile(np.eye(4)[None], (2, 1, 1))
    act = agent.act({"features": feats, "context": np.zeros(2, int)})
    keys = seed_keys([11, 12])
    want1 = np.floor(counter_uniform(keys, 0, STREAM_MAX) * 4).astype(int)
    want2 = np.floor(counter_uniform(keys, 0, STREAM_MIN) * 4).astype(int)
    np.testing.assert_array_equal(act.pair, np.stack([want1, want2], axis=1))
    np.testing.assert_allclose(act.max_policy, 0.25)


def test_act_pair_is_each_players_own_inverse_cdf_draw():
    """act draws both players in one pass; each action must equal the straightforward
    sample_actions(policy, counter_uniform(key, t, stream)) of its own player and stream,
    and a batched run's pairs must equal the single run's, round after round."""
    from rlhf_gbpm.envs import GBPMDuelVectorEnv

    seeds = [4, 9, 17]
    venv = GBPMDuelVectorEnv(num_envs=3, K=6, d=4, S=4.0)
    agent = GreedySampling(regularizer="kl", eta=[0.3, 2.0, 9.0], estimator="ons",
                           exploration=[0.1, 0.3, 0.0, 0.2, 0.15, 0.25]).reset(seed=seeds)
    singles = [GreedySampling(regularizer="kl", eta=e, estimator="ons",
                              exploration=agent.exploration).reset(seed=s)
               for e, s in zip([0.3, 2.0, 9.0], seeds)]
    obs, _ = venv.reset(seed=seeds)
    keys = seed_keys(seeds)
    for t in range(12):
        act = agent.act(obs)
        want1 = sample_actions(act.max_policy, counter_uniform(keys, t, STREAM_MAX))
        want2 = sample_actions(act.min_policy, counter_uniform(keys, t, STREAM_MIN))
        np.testing.assert_array_equal(act.pair, np.stack([want1, want2], axis=1))
        for i, single in enumerate(singles):
            one = {"features": obs["features"][i], "context": obs["context"][i]}
            np.testing.assert_array_equal(single.act(one).pair, act.pair[i])
        next_obs, reward, _, _, _ = venv.step(act.pair)
        agent.update(obs, act, reward)
        for i, single in enumerate(singles):
            one = {"features": obs["features"][i], "context": obs["context"][i]}
            single.update(one, act.pair[i], reward[i])
        obs = next_obs
    assert not np.all(act.max_policy == act.max_policy[:1])  # the estimates moved


def test_single_run_act_unbatched_and_batch_mismatch():
    agent = UniformAgent().reset(seed=1)
    act = agent.act({"features": np.eye(3), "context": 0})
    assert act.pair.shape == (2,) and act.max_policy.shape == (3,)
    agent.reset(seed=[1, 2])
    with pytest.raises(ValueError, match="holds 1 run"):
        agent.act({"features": np.eye(3), "context": 0})


def test_act_before_reset_raises():
    with pytest.raises(RuntimeError, match="reset"):
        UniformAgent().act({"features": np.eye(3)})


@pytest.mark.parametrize("seed,exc,msg", [
    (-1, ValueError, "seed == -1, must be >= 0."),
    ("a", TypeError, "seed must be None"),
    ([], ValueError, "at least one seed"),
    (1.5, TypeError, "seed must be None"),
])
def test_reset_rejects_bad_seeds(seed, exc, msg):
    with pytest.raises(exc, match=msg):
        UniformAgent().reset(seed=seed)


def test_eta_array_must_match_number_of_seeds():
    agent = UniformAgent(eta=np.array([0.1, 1.0, 10.0]))
    with pytest.raises(ValueError, match="eta has 3 values but reset got 2 seeds"):
        agent.reset(seed=[0, 1])
    agent.reset(seed=[0, 1, 2])
    np.testing.assert_array_equal(agent.eta_, [0.1, 1.0, 10.0])
    assert agent.reset().num_runs_ == 3  # seed=None: one run per eta


@pytest.mark.parametrize("cls", [UniformAgent, GreedySampling, OnlineNashMD,
                                 OptimisticMatrixGame])
@pytest.mark.parametrize("eta,msg", [(0.0, "eta == 0.0, must be > 0"),
                                     (-1.0, "eta == -1.0, must be > 0"),
                                     (np.array([1.0, -2.0]), "eta == -2.0, must be > 0")])
def test_bad_eta_rejected_by_every_agent(cls, eta, msg):
    with pytest.raises(ValueError, match=msg):
        cls(eta=eta)


def test_bad_eta_rejected_by_etc():
    with pytest.raises(ValueError, match="eta == 0.0, must be > 0"):
        ExploreThenCommit(eta=0.0, exploration_length=10)


@pytest.mark.parametrize("kwargs,exc,msg", [
    ({"regularizer": "nope"}, ValueError, "nope"),
    ({"regularizer": 3}, TypeError, "regularizer must be a registered name"),
    ({"reference": [0.5, 0.6]}, ValueError, "reference must lie on the probability simplex"),
    ({"reference": [[0.5, 0.5]]}, ValueError, r"reference must have shape \(K,\)"),
])
def test_bad_regularizer_and_reference(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        GreedySampling(**kwargs)


def test_reference_of_wrong_size_is_caught_at_first_act():
    agent = GreedySampling(regularizer="kl", reference=[0.2, 0.3, 0.5]).reset(seed=0)
    with pytest.raises(ValueError, match=r"reference must have shape \(4,\)"):
        agent.act({"features": np.eye(4), "context": 0})


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_get_config_rebuilds_an_equal_agent(name):
    cls = AGENTS[name]
    kwargs = {"exploration_length": 5} if cls is ExploreThenCommit else {}
    agent = cls(eta=np.array([0.5, 2.0]), **kwargs)
    cfg = agent.get_config()
    assert cfg.pop("agent") == cls.__name__
    assert cfg["eta"] == [0.5, 2.0]
    clone = cls(**cfg)
    assert clone.get_config() == agent.get_config()
    assert repr(clone).startswith(cls.__name__ + "(")


def _splitmix_uniform(key: int, counter: int, stream: int) -> float:
    """counter_uniform in pure Python integers (SplitMix64's finalizer applied twice)."""
    mask = 2**64 - 1

    def mix(x):
        x ^= x >> 30
        x = (x * 0xBF58476D1CE4E5B9) & mask
        x ^= x >> 27
        x = (x * 0x94D049BB133111EB) & mask
        return x ^ (x >> 31)

    state = mix((key * 0x9E3779B97F4A7C15 + stream * 0xD1B54A32D192ED03) & mask)
    x = mix(state ^ ((counter * 0x9E3779B97F4A7C15 + 0x94D049BB133111EB) & mask))
    return (x >> 11) * 2.0**-53


@pytest.mark.parametrize("counter", [0, 1, 12345, 2**40 + 3, 2**63, 2**64 - 1])
def test_uniforms_of_int_and_array_counters_equal_the_pure_python_hash(counter):
    from rlhf_gbpm._random import stream_state, uniform_from_state

    keys = np.array([0, 7, 2**63 + 11], dtype=np.uint64)
    streams = np.array([STREAM_MAX, STREAM_MIN], dtype=np.uint64)
    state = stream_state(keys[:, None], streams)
    want = np.array([[_splitmix_uniform(int(k), counter, int(s)) for s in streams]
                     for k in keys])
    for c in (counter, np.uint64(counter), np.full(3, counter, dtype=np.uint64)[:, None]):
        assert uniform_from_state(state, c).tobytes() == want.tobytes()
    assert counter_uniform(keys[0], counter, STREAM_MAX) == want[0, 0]  # scalar path


def test_pair_sampling_reuses_the_min_cdf_only_while_its_bits_stay():
    """Agent._sample_pair keeps the min-player's cdf between rounds: every pair must equal
    sample_actions of the stacked policies, also after p_min is replaced or changed in
    place, or given in float32."""
    rng = np.random.default_rng(3)
    agent = UniformAgent().reset(seed=[1, 2, 3, 4])
    p_min = rng.dirichlet(np.ones(5), size=4)
    for t in range(8):
        p_max = rng.dirichlet(np.ones(5), size=4)
        if t == 3:
            p_min[1] = rng.dirichlet(np.ones(5))  # in place
        if t == 5:
            p_min = rng.dirichlet(np.ones(5), size=4)  # a new array
        agent.t_ = t
        got = agent._sample_pair(p_max, p_min)
        keys = seed_keys([1, 2, 3, 4])
        u = np.stack([counter_uniform(keys, t, STREAM_MAX), counter_uniform(keys, t, STREAM_MIN)],
                     axis=1)
        want = np.stack([sample_actions(p_max, u[:, 0]), sample_actions(p_min, u[:, 1])], axis=1)
        np.testing.assert_array_equal(got, want)
        assert got.tobytes() == sample_actions(np.stack([p_max, p_min], axis=1), u).tobytes()
    p32 = p_min.astype(np.float32)
    np.testing.assert_array_equal(agent._sample_pair(p32, p32),
                                  sample_actions(np.stack([p32, p32], axis=1), u))
