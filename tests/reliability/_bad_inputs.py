"""Namespace in which the bad-input table's code runs (helpers for envs, agents, CLI)."""

from __future__ import annotations

import contextlib
import io

import gymnasium as gym
import numpy as np

import rlhf_gbpm.envs  # noqa: F401 - registers the ids
from rlhf_gbpm import (
    OnlineNewtonStep,
    RegretLog,
    average_policy,
    best_response,
    bradley_terry_instance,
    c_min,
    custom_instance,
    cyclic_instance,
    dual_gap,
    e_optimal_design,
    etc_exploration_length,
    fit_mle,
    fit_nuclear_mle,
    fit_regret_rates,
    get_link,
    get_regularizer,
    j_eta,
    lambda_theory,
    mbr_regret,
    payoff_matrix,
    random_instance,
    random_skew_theta,
    register_regularizer,
    solve_sne,
    sum_of,
)
from rlhf_gbpm._validation import as_generator
from rlhf_gbpm.agents import ExploreThenCommit, GreedySampling, OnlineNashMD, UniformAgent
from rlhf_gbpm.envs import RegretMonitor
from rlhf_gbpm.experiments.cli import main as _cli_main
from rlhf_gbpm.experiments.config import load_config
from rlhf_gbpm.experiments.runner import validate_sweep
from rlhf_gbpm.protocol import DuelAction

A3 = np.array([[0.0, 0.2, -0.1], [-0.2, 0.0, 0.3], [0.1, -0.3, 0.0]])
U3 = np.full(3, 1.0 / 3.0)
X6 = np.random.default_rng(0).uniform(-0.5, 0.5, (10, 6))
R6 = np.tile([0.0, 1.0], 5)

_CFG = {"name": "t", "horizon": 20, "eta": [1.0], "seeds": [0],
        "env": {"id": "rlhf_gbpm/GBPMDuel-v0", "params": {"d": 4, "K": 5, "S": 2.0}},
        "agents": [{"name": "uniform"}]}


def cfg(**changes) -> dict:
    """A small valid config dict with keys replaced (None removes a key)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in _CFG.items()}
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def make_env(**kwargs):
    return gym.make("rlhf_gbpm/GBPMDuel-v0", d=4, K=5, S=2.0, **kwargs)


def stepped_env(action):
    env = make_env()
    env.reset(seed=0)
    return env.step(np.asarray(action))


def monitored_step(policy):
    env = RegretMonitor(make_env(), "kl", 1.0)
    env.reset(seed=0)
    pol = np.asarray(policy, dtype=float)
    return env.step(DuelAction(np.array([0, 1]), pol, pol))


def agent_on_k(agent, K):
    """Reset an agent and show it an observation with K actions."""
    agent.reset(seed=0)
    env = gym.make("rlhf_gbpm/GBPMDuel-v0", d=4, K=K, S=2.0)
    obs, _ = env.reset(seed=0)
    return agent.act(obs)


class CLIExit(Exception):
    """The CLI ended with a non-zero status; the message is 'status N: <last stderr line>'."""


def cli(*argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = _cli_main(list(argv))
        except SystemExit as exc:
            status = exc.code
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    if status:
        raise CLIExit(f"status {status}: {lines[-1] if lines else ''}")
    return status


__all__ = [
    "A3",
    "CLIExit",
    "DuelAction",
    "ExploreThenCommit",
    "GreedySampling",
    "OnlineNashMD",
    "OnlineNewtonStep",
    "R6",
    "RegretLog",
    "RegretMonitor",
    "U3",
    "UniformAgent",
    "X6",
    "agent_on_k",
    "as_generator",
    "average_policy",
    "best_response",
    "bradley_terry_instance",
    "c_min",
    "cfg",
    "cli",
    "custom_instance",
    "cyclic_instance",
    "dual_gap",
    "e_optimal_design",
    "etc_exploration_length",
    "fit_mle",
    "fit_nuclear_mle",
    "fit_regret_rates",
    "get_link",
    "get_regularizer",
    "gym",
    "j_eta",
    "lambda_theory",
    "load_config",
    "make_env",
    "mbr_regret",
    "monitored_step",
    "namespace",
    "np",
    "payoff_matrix",
    "random_instance",
    "random_skew_theta",
    "register_regularizer",
    "solve_sne",
    "stepped_env",
    "sum_of",
    "validate_sweep",
]


def namespace() -> dict:
    """Globals for running a row's code."""
    return {k: v for k, v in globals().items() if not k.startswith("__")}
