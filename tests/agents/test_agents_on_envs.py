"""Every agent with every built-in regularizer and a user-defined one, on the real envs.

Each (agent, regularizer) runs in a plain Gymnasium loop (one env and one agent per seed,
through ``RegretMonitor``) and batched on ``GBPMDuelVectorEnv`` (through
``VectorRegretMonitor``); the action pairs and the regret curves must be identical.
"""

import gymnasium as gym
import numpy as np
import pytest
from scipy.special import lambertw

import rlhf_gbpm.envs  # noqa: F401  (registers the ids)
from rlhf_gbpm.agents import (
    ExploreThenCommit,
    GreedySampling,
    OnlineNashMD,
    OptimisticMatrixGame,
    SymmetricGreedySampling,
    UniformAgent,
)
from rlhf_gbpm.envs import GBPMDuelVectorEnv, RegretMonitor, VectorRegretMonitor
from rlhf_gbpm.regularizers import SeparableRegularizer, get_regularizer


class EntropyPlusQuadratic(SeparableRegularizer):
    """A user-defined psi(p) = sum p log p + p^2 / 2 (not a built-in): f, f', f'', (f')^-1."""

    name = "entropy_plus_quadratic"

    def f(self, p, rho):
        return np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0) + 0.5 * p * p

    def f_prime(self, p, rho):
        return np.log(p) + 1.0 + p

    def f_second(self, p, rho):
        return 1.0 / p + 1.0

    def f_prime_inverse(self, u, rho):
        # log p + 1 + p = u  <=>  p e^p = e^(u - 1)  <=>  p = W(e^(u - 1))
        return np.real(lambertw(np.exp(np.minimum(u, 700.0) - 1.0)))


class MinimalUserRegularizer(SeparableRegularizer):
    """The same psi with only f and f' given (the generic best-response route)."""

    name = "entropy_plus_quadratic_minimal"

    def f(self, p, rho):
        return np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0) + 0.5 * p * p

    def f_prime(self, p, rho):
        return np.log(p) + 1.0 + p


REGULARIZERS = ["kl", "shannon", "l2", "chi2_half", "chi2", "tsallis", "tsallis_half",
                "kl_plus_chi2", "user"]
AGENTS = {
    "gs": lambda reg, eta: GreedySampling(regularizer=reg, eta=eta, estimator="ons", S=2.0),
    "gs_mle": lambda reg, eta: GreedySampling(regularizer=reg, eta=eta, S=2.0, refresh=2),
    "sym_gs": lambda reg, eta: SymmetricGreedySampling(regularizer=reg, eta=eta,
                                                       estimator="ons", S=2.0),
    "etc": lambda reg, eta: ExploreThenCommit(regularizer=reg, eta=eta, exploration="uniform",
                                              exploration_length=4, lam=0.01),
    "uniform": lambda reg, eta: UniformAgent(regularizer=reg, eta=eta),
    "omg": lambda reg, eta: OptimisticMatrixGame(regularizer=reg, eta=eta, slope=0.25),
    "nash_md": lambda reg, eta: OnlineNashMD(regularizer=reg, eta=eta, S=2.0),
}
ENV_KW = dict(d=3, K=5, rank=1, S=1.0, contexts=2, horizon=50)
T = 9
SEEDS = [3, 8]
ETA = np.array([0.5, 30.0])


def _reg(name):
    return EntropyPlusQuadratic() if name == "user" else get_regularizer(name)


def _gym_loop(make_agent, reg):
    """One plain env + one single-run agent per seed; returns pairs (B, T, 2), MBR (B, T)."""
    pairs, mbr = [], []
    for seed, eta in zip(SEEDS, ETA):
        env = RegretMonitor(gym.make("rlhf_gbpm/ContextualGBPMDuel-v0", **ENV_KW), reg,
                            eta=float(eta))
        agent = make_agent(reg, float(eta)).reset(seed=seed)
        obs, _ = env.reset(seed=seed)
        run_pairs = []
        for _ in range(T):
            action = agent.act(obs)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            agent.update(obs, action, reward)
            run_pairs.append(action.pair)
            obs = next_obs
        pairs.append(run_pairs)
        mbr.append(env.mbr_curve)
    return np.array(pairs), np.array(mbr)


def _vector_loop(make_agent, reg):
    venv = VectorRegretMonitor(GBPMDuelVectorEnv(num_envs=len(SEEDS), **ENV_KW), reg, eta=ETA)
    agent = make_agent(reg, ETA).reset(seed=SEEDS)
    obs, _ = venv.reset(seed=SEEDS)
    pairs = []
    for _ in range(T):
        action = agent.act(obs)
        next_obs, reward, _, _, _ = venv.step(action)
        agent.update(obs, action, reward)
        pairs.append(action.pair)
        obs = next_obs
    return np.stack(pairs, axis=1), venv.mbr_curve


@pytest.mark.parametrize("reg_name", REGULARIZERS)
@pytest.mark.parametrize("agent_name", sorted(AGENTS))
def test_gym_loop_and_vector_env_agree(agent_name, reg_name):
    reg = _reg(reg_name)
    make_agent = AGENTS[agent_name]
    p_single, mbr_single = _gym_loop(make_agent, reg)
    p_vec, mbr_vec = _vector_loop(make_agent, reg)
    np.testing.assert_array_equal(p_single, p_vec)
    np.testing.assert_allclose(mbr_single, mbr_vec, rtol=1e-7, atol=1e-10)
    assert np.all(np.isfinite(mbr_vec)) and np.all(np.diff(mbr_vec, axis=-1) >= -1e-12)


def test_minimal_user_regularizer_runs_in_greedy_sampling():
    """A user regularizer with only psi and its gradient: same play as the full version."""
    make = AGENTS["gs"]
    out = []
    for reg in (MinimalUserRegularizer(), EntropyPlusQuadratic()):
        venv = GBPMDuelVectorEnv(num_envs=2, **ENV_KW)
        agent = make(reg, ETA).reset(seed=SEEDS)
        obs, _ = venv.reset(seed=SEEDS)
        policies = []
        for _ in range(4):
            action = agent.act(obs)
            nxt, reward, _, _, _ = venv.step(action)
            agent.update(obs, action, reward)
            policies.append(action.max_policy)
            obs = nxt
        out.append(np.array(policies))
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)


def test_continuous_contexts_on_the_vector_env():
    """Continuous contexts: GS solves one SNE per round's context, batched == plain loop."""
    kw = dict(d=3, K=5, rank=1, S=1.0, contexts="continuous", horizon=50)
    venv = GBPMDuelVectorEnv(num_envs=2, **kw)
    agent = GreedySampling(regularizer="chi2", eta=ETA, S=2.0).reset(seed=SEEDS)
    obs, _ = venv.reset(seed=SEEDS)
    assert "x" in obs and "context" not in obs
    pairs = []
    for _ in range(6):
        action = agent.act(obs)
        nxt, reward, _, _, _ = venv.step(action)
        agent.update(obs, action, reward)
        pairs.append(action.pair)
        obs = nxt
    for i, seed in enumerate(SEEDS):
        env = gym.make("rlhf_gbpm/ContinuousGBPMDuel-v0", **kw)
        single = GreedySampling(regularizer="chi2", eta=float(ETA[i]), S=2.0).reset(seed=seed)
        o, _ = env.reset(seed=seed)
        for t in range(6):
            a = single.act(o)
            nxt, reward, _, _, _ = env.step(a.pair)
            single.update(o, a, reward)
            assert np.array_equal(a.pair, pairs[t][i])
            o = nxt
