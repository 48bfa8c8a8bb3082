"""Tests for rlhf_gbpm/experiments/config.py: schema, validation messages, grids, hashing."""

import copy

import numpy as np
import pytest
from _experiment_fakes import FAKE_CONFIG

from rlhf_gbpm.errors import ConfigError
from rlhf_gbpm.experiments.config import (
    ExperimentConfig,
    builtin_configs,
    checkpoint_rounds,
    load_config,
)


def _cfg(**changes):
    data = copy.deepcopy(FAKE_CONFIG)
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    return data


def _agents(*items):
    return [dict(FAKE_CONFIG["agents"][0], **item) for item in items]


BAD = [
    # (changes, exact message)
    (dict(horizon=None), "horizon: missing required key."),
    (dict(horizon="100"), "horizon: must be an integer, got str '100'."),
    (dict(horizon=0), "horizon: must be >= 1, got 0."),
    (dict(eta=[0.1, -1.0]), "eta[1]: must be > 0, got -1.0."),
    (dict(eta=[0.1, float("nan")]), "eta[1]: must be > 0, got nan."),
    (dict(eta=[0.1, 0.1]), "eta: must not repeat values, got [0.1, 0.1]."),
    (dict(eta={"logspace": [-2, 3]}),
     "eta.logspace: must be a list [start, stop, num], got [-2, 3]."),
    (dict(eta={"logspace": [1, 1, 3]}),
     "eta.logspace: gives repeated values (start == stop with num > 1), got [1, 1, 3]."),
    (dict(eta="big"), "eta: must be a number, a list of numbers or a table "
                      "{logspace = [a, b, n]}, got str 'big'."),
    (dict(seeds=[0, -1]), "seeds[1]: must be >= 0, got -1."),
    (dict(seeds={"count": 0}), "seeds.count: must be >= 1, got 0."),
    (dict(seeds=[1.5]), "seeds[0]: must be an integer, got float 1.5."),
    (dict(agents=_agents({}, {"name": "gready_sampling", "label": "x"})),
     "agents[1].name: unknown agent 'gready_sampling'; valid names are "
     "['explore_then_commit', 'greedy_sampling', 'online_nash_md', 'optimistic_matrix_game', "
     "'symmetric_greedy_sampling', 'uniform'] or 'module:Class'."),
    (dict(agents=_agents({}, {"label": "x", "eta": [1.0, -2.0]})),
     "agents[1].eta[1]: must be > 0, got -2.0."),
    (dict(agents=_agents({"kwargs": {"eta": 1.0}})),
     "agents[0].kwargs.eta: is set by the runner from the sweep (eta grid, regularizers, "
     "seeds); remove it from kwargs."),
    (dict(agents=_agents({"kwargs": [1, 2]})),
     "agents[0].kwargs: must be a table, got list [1, 2]."),
    (dict(agents=_agents({}, {})),
     "agents: labels must be unique (set 'label'), got ['fake-a', 'fake-a']."),
    (dict(agents=_agents({"nmae": "x"})),
     "agents[0].nmae: unknown key; valid keys are ['eta', 'kwargs', 'label', 'name', "
     "'regularizers']."),
    (dict(agents=[]), "agents: must be a non-empty list of tables ([[agents]]), got []."),
    (dict(regularizers=["kl", "entropy"]),
     "regularizers[1].name: unknown regularizer 'entropy'; valid names are"),
    (dict(checkpoints={"every": 5, "log": 3}),
     "checkpoints: give exactly one of 'log = n' or 'every = k'."),
    (dict(checkpoints={"every": 0}), "checkpoints.every: must be >= 1, got 0."),
    (dict(backend={"name": "slurm"}),
     "backend.name: must be one of ('inprocess', 'process', 'ray'), got 'slurm'."),
    (dict(backend={"workers": True}), "backend.workers: must be an integer, got bool True."),
    (dict(sizes=[{"K": 3}, {"d": 4}]), "sizes[1].d: is also set in env.params; set it in one "
                                       "place."),
    (dict(sizes=[{"K": 3}, {"K": 3}]), "sizes: must not repeat a size."),
    (dict(frobnicate=1), "frobnicate: unknown key; valid keys are"),
    (dict(env={"id": "x:y", "params": {"horizon": 10}}),
     "env.params.horizon: is set by the runner (from the top-level horizon and the number of "
     "runs); remove it."),
    (dict(sizes=[{"K": 3, "max_episode_steps": 5}]),
     "sizes[0].max_episode_steps: is set by the runner"),
]


@pytest.mark.parametrize("changes, message", BAD, ids=[m.split(":")[0] + str(i)
                                                       for i, (_, m) in enumerate(BAD)])
def test_bad_config_names_the_key(changes, message):
    with pytest.raises(ConfigError) as info:
        load_config(_cfg(**changes))
    assert str(info.value).startswith(message)


def test_logspace_grid_is_the_authors_grid():
    cfg = load_config(_cfg(eta={"logspace": [-2, 3, 10]}))
    expected = [0.01, 0.0359, 0.129, 0.464, 1.67, 5.99, 21.5, 77.4, 278, 1000]
    np.testing.assert_allclose(cfg.eta, expected, rtol=3e-3)
    np.testing.assert_allclose(np.diff(np.log10(cfg.eta)), 5 / 9)


def test_round_trip_and_plan_hash():
    cfg = load_config(FAKE_CONFIG)
    again = ExperimentConfig.from_dict(cfg.to_dict())
    assert again == cfg
    assert again.plan_hash() == cfg.plan_hash()
    # the backend's name, address and workers do not change results ...
    assert cfg.with_backend(name="ray", address="auto", workers=7).plan_hash() == \
        cfg.plan_hash()
    # ... the chunking, the seeds and the horizon are part of the plan
    assert cfg.with_backend(chunk_size=3).plan_hash() != cfg.plan_hash()
    assert load_config(_cfg(seeds=[0, 1])).plan_hash() != cfg.plan_hash()
    assert load_config(_cfg(horizon=41)).plan_hash() != cfg.plan_hash()


def test_backend_runtime_env_round_trips_outside_the_plan():
    cfg = load_config(_cfg(backend={"name": "ray", "runtime_env": {"pip": ["rlhf-gbpm"]}}))
    assert cfg.backend.runtime_env == {"pip": ["rlhf-gbpm"]}
    assert ExperimentConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.plan_hash() == load_config(_cfg(backend={})).plan_hash()
    with pytest.raises(ConfigError, match="backend.runtime_env: must be a table, got list"):
        load_config(_cfg(backend={"runtime_env": [1]}))


def test_num_runs_counts_agent_overrides():
    cfg = load_config(FAKE_CONFIG)
    # 2 sizes x (2 etas + 1 eta override) x 3 seeds x 1 regularizer
    assert cfg.num_runs == 2 * (2 + 1) * 3
    assert cfg.size_keys == ("K",)


@pytest.mark.parametrize("horizon, k", [(40, 5), (41, 5), (7, 10), (1, 1)])
def test_checkpoints_every(horizon, k):
    rounds = checkpoint_rounds("every", k, horizon)
    expected = sorted(set(range(k, horizon + 1, k)) | {horizon})
    assert rounds.tolist() == expected


def test_checkpoints_log_spacing():
    rounds = checkpoint_rounds("log", 30, 10_000)
    assert rounds[0] == 1 and rounds[-1] == 10_000
    assert np.all(np.diff(rounds) > 0)
    ratios = rounds[1:] / rounds[:-1]
    # geometric: consecutive ratios never exceed the nominal ratio of 29 steps by much
    assert ratios[-5:].max() <= 10_000 ** (1 / 29) * 1.05
    assert 20 <= rounds.size <= 30


def test_builtin_configs_load_and_match_spec():
    names = builtin_configs()
    assert {"default", "authors_gs", "etc_vs_gs"} <= set(names)
    authors = load_config("authors_gs")
    assert authors.horizon == 10_000
    assert authors.seeds == tuple(range(20))
    np.testing.assert_allclose(authors.eta, np.logspace(-2, 3, 10))
    assert [(s["d"], s["K"], s["S"]) for s in authors.sizes] == [(5, 20, 5.0), (10, 40, 10.0)]
    gs = authors.agents[0]
    assert gs.name == "greedy_sampling"
    assert gs.kwargs == {"estimator": "ons", "refresh": 2, "S": "${S}"}
    assert [r.name for r in authors.regularizers] == ["kl"]
    assert authors.env.params["rank"] == 1
    etc = load_config("etc_vs_gs")
    assert etc.sizes[0]["d"] == 30 and etc.env.params["rank"] == 1
    assert [a.label for a in etc.agents] == ["ETC", "GS-ONS", "ETC-uniform"]
    assert load_config(None) == load_config("default")


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="is neither a file nor a built-in config"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(bad)
