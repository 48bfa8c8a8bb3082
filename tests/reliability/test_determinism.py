"""Determinism with the real envs and agents: same seeds, same numbers, wherever they run.

A small real sweep (Greedy Sampling with ONS and with the exact MLE, Explore-Then-Commit,
uniform play; KL and Tsallis; two eta, two seeds) is run in-process, on the local process
pool with one and with two workers, and on a local Ray instance, and the tables must be
identical to the last bit. The same run is also checked against a plain Gymnasium loop over
``gym.make`` envs (one run at a time) and repeated in a fresh interpreter with other hash
seeds and BLAS thread counts. The experiments tests do the same with fake agents; here the
real numerical code (SNE solves, estimators, counter-based sampling) is what is compared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest

import rlhf_gbpm.envs  # noqa: F401 - registers the ids
from rlhf_gbpm.agents import GreedySampling
from rlhf_gbpm.envs import RegretMonitor
from rlhf_gbpm.experiments.backends import ProcessBackend, RayBackend
from rlhf_gbpm.experiments.config import load_config
from rlhf_gbpm.experiments.runner import run_sweep

SIZE = {"d": 4, "K": 6, "S": 3.0}
CONFIG = {
    "name": "determinism",
    "horizon": 30,
    "eta": [0.1, 100.0],
    "seeds": [3, 11],
    "env": {"id": "rlhf_gbpm/GBPMDuel-v0", "params": {"rank": 1}},
    "sizes": [SIZE],
    "regularizers": ["kl", {"name": "tsallis", "params": {"q": 0.5}}],
    "agents": [
        {"name": "greedy_sampling", "label": "GS-ONS",
         "kwargs": {"estimator": "ons", "refresh": 2, "S": "${S}"}},
        {"name": "greedy_sampling", "label": "GS-MLE",
         "kwargs": {"estimator": "mle", "refresh": 3, "S": "${S}"},
         "regularizers": ["kl"]},
        {"name": "explore_then_commit", "label": "ETC",
         "kwargs": {"exploration": "uniform", "exploration_length": 10, "S": "${S}"},
         "regularizers": ["kl"]},
        {"name": "uniform", "regularizers": ["kl"]},
    ],
    "checkpoints": {"every": 5},
    "backend": {"chunk_size": 2},
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return run_sweep(load_config(CONFIG), tmp_path_factory.mktemp("ref") / "r",
                     progress=False).table


def test_table_is_not_trivial(reference):
    """The compared numbers carry information: runs differ by seed and by eta."""
    final = reference[reference["t"] == CONFIG["horizon"]]
    assert len(final) == 2 * 2 * (2 + 1 + 1 + 1)
    assert np.all(np.isfinite(final["cum_mbr_regret"]))
    gs = final[(final["agent"] == "GS-ONS") & (final["regularizer"] == "kl")]
    assert gs["cum_mbr_regret"].nunique() == 4


@pytest.mark.parametrize("workers", [1, 2])
def test_process_pool_any_worker_count_gives_the_same_table(reference, tmp_path, workers):
    backend = ProcessBackend(workers=workers)
    result = run_sweep(load_config(CONFIG), tmp_path / "r", progress=False, backend=backend)
    pd.testing.assert_frame_equal(result.table, reference, check_exact=True)


def test_ray_gives_the_same_table(reference, tmp_path):
    backend = RayBackend(address=None, workers=2)
    try:
        result = run_sweep(load_config(CONFIG), tmp_path / "r", progress=False,
                           backend=backend)
    finally:
        backend.close()
    pd.testing.assert_frame_equal(result.table, reference, check_exact=True)


def test_plain_gym_loop_gives_the_same_runs(reference):
    """One plain env per run in a Gymnasium loop reproduces the sweep's GS-ONS/KL rows."""
    rows = reference[(reference["agent"] == "GS-ONS") & (reference["regularizer"] == "kl")]
    for (eta, seed), run in rows.groupby(["eta", "seed"]):
        env = RegretMonitor(gym.make("rlhf_gbpm/GBPMDuel-v0", rank=1, horizon=30, **SIZE),
                            "kl", eta)
        agent = GreedySampling(regularizer="kl", eta=eta, estimator="ons", refresh=2, S=3.0)
        agent.reset(seed=int(seed))
        obs, _ = env.reset(seed=int(seed))
        for _ in range(CONFIG["horizon"]):
            action = agent.act(obs)
            next_obs, reward, _, _, _ = env.step(action)
            agent.update(obs, action, reward)
            obs = next_obs
        curve = np.asarray(env.log.mbr_curve)
        t = run["t"].to_numpy()
        np.testing.assert_array_equal(curve[t - 1], run["cum_mbr_regret"].to_numpy())


def test_fresh_interpreter_with_other_hash_seed_and_threads(reference, tmp_path):
    """A new process (PYTHONHASHSEED, BLAS threads changed) computes the same table."""
    script = (
        "import json, sys\n"
        "from rlhf_gbpm.experiments.config import load_config\n"
        "from rlhf_gbpm.experiments.runner import run_sweep\n"
        "cfg = json.loads(sys.argv[1])\n"
        "run_sweep(load_config(cfg), sys.argv[2], progress=False)\n"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345", OMP_NUM_THREADS="2",
               OPENBLAS_NUM_THREADS="2", MKL_NUM_THREADS="2")
    out = tmp_path / "fresh"
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(CONFIG), str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    from rlhf_gbpm.experiments.store import load_results

    pd.testing.assert_frame_equal(load_results(out), reference, check_exact=True)
