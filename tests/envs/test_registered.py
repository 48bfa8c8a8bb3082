"""Every registered rlhf_gbpm/ id: env checker, gym.make defaults, seeded determinism."""

import subprocess
import sys
import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

from rlhf_gbpm.envs import ENV_IDS

# Warnings check_env may emit that do not signal a defect of these envs: none so far.
ALLOWED_WARNINGS: tuple[str, ...] = ()


def test_every_expected_id_is_registered():
    expected = {"rlhf_gbpm/GBPMDuel-v0", "rlhf_gbpm/ContextualGBPMDuel-v0",
                "rlhf_gbpm/ContinuousGBPMDuel-v0", "rlhf_gbpm/BradleyTerryDuel-v0",
                "rlhf_gbpm/CyclicDuel-v0"}
    assert expected == set(ENV_IDS)
    registered = {i for i in gym.registry if i.startswith("rlhf_gbpm/")}
    assert registered == expected
    for env_id in ENV_IDS:
        spec = gym.spec(env_id)
        assert isinstance(spec.entry_point, str) and isinstance(spec.vector_entry_point, str)
        assert spec.max_episode_steps == spec.kwargs["horizon"] == 10_000


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_check_env_passes_without_unexpected_warnings(env_id):
    env = gym.make(env_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    unexpected = [str(w.message) for w in caught
                  if not any(a in str(w.message) for a in ALLOWED_WARNINGS)]
    assert unexpected == []


def _rollout(env, seed, steps=25):
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for _ in range(steps):
        out.append(env.step(env.action_space.sample()))
    return out


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_make_defaults_and_same_seed_same_trajectory(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env_a, env_b = gym.make(env_id), gym.make(env_id)
        a, b = _rollout(env_a, 7), _rollout(env_b, 7)
        c = _rollout(env_a, 8)
    assert gym.utils.env_checker.data_equivalence(a, b, exact=True)
    assert not gym.utils.env_checker.data_equivalence(a, c)
    obs = a[-1][0]
    assert obs in env_a.observation_space
    assert set(a[-1][4]) == {"probability", "context", "t"}
    assert a[-1][4]["t"] == 24 and a[-1][1] in (0.0, 1.0)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_make_vec_uses_the_native_vector_env(env_id):
    venv = gym.make_vec(env_id, num_envs=3)
    assert not isinstance(venv, gym.vector.SyncVectorEnv)
    assert venv.metadata["autoreset_mode"] is gym.vector.AutoresetMode.NEXT_STEP
    obs, _ = venv.reset(seed=0)
    assert obs in venv.observation_space
    obs, rew, term, trunc, info = venv.step(venv.action_space.sample())
    assert rew.shape == term.shape == trunc.shape == info["probability"].shape == (3,)
    assert venv.horizon == 10_000


def test_import_registers_without_importing_env_modules():
    code = ("import sys, gymnasium as gym, rlhf_gbpm.envs; "
            "assert 'rlhf_gbpm.envs.gbpm_duel' not in sys.modules; "
            "assert 'rlhf_gbpm/GBPMDuel-v0' in gym.registry; "
            "gym.make('rlhf_gbpm/CyclicDuel-v0'); "
            "assert 'rlhf_gbpm.envs.gbpm_duel' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
