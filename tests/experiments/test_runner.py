"""Tests for rlhf_gbpm/experiments/runner.py on the fake env/agent of _experiment_fakes."""

import copy

import numpy as np
import pandas as pd
import pytest
from _experiment_fakes import FAKE_CONFIG

from rlhf_gbpm.errors import ConfigError, ResultsCorruptedError
from rlhf_gbpm.experiments.config import load_config
from rlhf_gbpm.experiments.runner import (
    execute_chunk,
    plan_sweep,
    resolve_references,
    run_sweep,
)


def _config(**changes):
    data = copy.deepcopy(FAKE_CONFIG)
    data.update(changes)
    return load_config(data)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted in-process sweep of FAKE_CONFIG."""
    out = tmp_path_factory.mktemp("ref") / "res"
    return run_sweep(_config(), out, progress=False)


def test_plan_groups_chunks_and_run_ids():
    cfg = _config()
    chunks = plan_sweep(cfg)
    # groups: 2 sizes x 2 agents; fake-a has 2 etas x 3 seeds = 6 runs (3 chunks of 2),
    # fake-b has 1 eta x 3 seeds = 3 runs (chunks of 2 and 1)
    assert [c.num_runs for c in chunks] == [2, 2, 2, 2, 1] * 2
    assert [c.group for c in chunks] == [0, 0, 0, 1, 1, 2, 2, 2, 3, 3]
    ids = [r for c in chunks for r in c.run_ids]
    assert sorted(ids) == list(range(cfg.num_runs))
    # run ids are eta-major inside a group; chunks take every n-th run (strided), so each
    # chunk of fake-a holds one run of each eta
    first = chunks[:3]
    assert [c.run_ids for c in first] == [(0, 3), (1, 4), (2, 5)]
    assert [c.etas for c in first] == [(0.1, 10.0)] * 3
    assert [c.seeds for c in first] == [(0, 0), (1, 1), (2, 2)]
    assert [c.run_ids for c in chunks[3:5]] == [(6, 8), (7,)]
    assert chunks[5].env_params == {"d": 3, "K": 5} and chunks[5].size_label == "K=5"


def test_table_shape_and_cumulative_identity(reference):
    cfg, table = reference.config, reference.table
    ckpts = cfg.checkpoint_rounds
    assert len(table) == cfg.num_runs * ckpts.size
    assert table["run_id"].is_monotonic_increasing
    assert table.groupby("run_id")["t"].apply(list).map(lambda t: t == ckpts.tolist()).all()
    assert set(table["agent"]) == {"fake-a", "fake-b"}
    assert set(table.loc[table["agent"] == "fake-b", "eta"]) == {1.0}
    for col in ("mbr_regret", "cum_mbr_regret", "estimation_error", "ne_residual"):
        assert np.isfinite(table[col]).all(), col
    # ABR = MBR + gap of the min policy >= MBR, round by round and cumulated
    assert (table["abr_regret"] >= table["mbr_regret"]).all()
    assert (table.groupby("run_id")["cum_mbr_regret"].diff().dropna() > 0).all()


def test_every_round_checkpoints_cumulate_exactly(tmp_path):
    cfg = _config(checkpoints={"every": 1}, horizon=12, sizes=[{"K": 3}])
    table = run_sweep(cfg, tmp_path / "r", progress=False).table
    for _, run in table.groupby("run_id"):
        np.testing.assert_allclose(run["cum_mbr_regret"], np.cumsum(run["mbr_regret"]),
                                   rtol=1e-13)
        np.testing.assert_allclose(run["cum_abr_regret"], np.cumsum(run["abr_regret"]),
                                   rtol=1e-13)


def test_runs_do_not_depend_on_chunk_mates():
    chunks = plan_sweep(_config(backend={"chunk_size": 6}))
    together = execute_chunk(chunks[0])
    singles = pd.concat([execute_chunk(c) for c in plan_sweep(_config(
        backend={"chunk_size": 1}))[:6]], ignore_index=True)
    pd.testing.assert_frame_equal(together, singles, check_exact=True)


def test_chunk_size_does_not_change_the_table(reference, tmp_path):
    other = run_sweep(_config(backend={"chunk_size": 4}), tmp_path / "r", progress=False)
    pd.testing.assert_frame_equal(other.table, reference.table, check_exact=True)


def test_resume_after_partial_run_equals_uninterrupted(reference, tmp_path):
    out = tmp_path / "r"
    first = run_sweep(_config(), out, progress=False, max_chunks=3)
    assert first.chunks_run == 3 and len(first.table) < len(reference.table)
    # runs already recorded are never recomputed: count executions through the callback
    seen = []
    second = run_sweep(None, out, resume=True, progress=False,
                       on_chunk=lambda c, f: seen.append(c.chunk_id))
    assert second.chunks_skipped == 3 and sorted(seen) == list(range(3, 10))
    pd.testing.assert_frame_equal(second.table, reference.table, check_exact=True)
    third = run_sweep(None, out, resume=True, progress=False)  # nothing left to do
    assert third.chunks_run == 0
    pd.testing.assert_frame_equal(third.table, reference.table, check_exact=True)
    assert third.out.joinpath("manifest.json").is_file()


def test_resume_refuses_another_config(reference, tmp_path):
    out = tmp_path / "r"
    run_sweep(_config(), out, progress=False, max_chunks=1)
    with pytest.raises(ConfigError, match="plan hash mismatch"):
        run_sweep(_config(horizon=41), out, resume=True, progress=False)
    with pytest.raises(FileExistsError, match="--resume"):
        run_sweep(_config(), out, progress=False)


def test_resume_refuses_corrupted_results(tmp_path):
    out = tmp_path / "r"
    run_sweep(_config(), out, progress=False, max_chunks=2)
    part = out / "parts" / "part-000001.csv"
    part.write_bytes(part.read_bytes()[:-10])
    with pytest.raises(ResultsCorruptedError, match="part-000001.csv: size"):
        run_sweep(None, out, resume=True, progress=False)


@pytest.mark.parametrize("changes, message", [
    (dict(agents=[{"name": "_experiment_fakes:FakeAgent", "kwargs": {"temperature": -1.0}}]),
     "agents[0].kwargs: ValueError: temperature == -1.0, must be > 0."),
    (dict(agents=[{"name": "_experiment_fakes:FakeAgent", "kwargs": {"tempo": 1.0}}]),
     "agents[0].kwargs: TypeError:"),
    (dict(agents=[{"name": "_experiment_fakes:NoSuchAgent"}]),
     "agents[0].name: cannot import '_experiment_fakes:NoSuchAgent'"),
    (dict(sizes=[{"K": 3}, {"K": 1}]), "env.params / sizes[1]: ValueError: K == 1, must be >= 2."),
    (dict(regularizers=[{"name": "_experiment_fakes:make_regularizer",
                         "params": {"scale": 0.0}}]),
     "regularizers[0]: scale == 0.0, must be > 0."),
    (dict(agents=[{"name": "_experiment_fakes:FakeAgent", "kwargs": {"temperature": "${T}"}}]),
     "agents[0].kwargs.temperature: refers to env parameter 'T', which is not set"),
])
def test_bad_sweep_fails_before_any_work(tmp_path, changes, message):
    out = tmp_path / "r"
    with pytest.raises(ConfigError) as info:
        run_sweep(_config(**changes), out, progress=False)
    assert str(info.value).startswith(message)
    assert not out.exists()


def test_resolve_references():
    assert resolve_references({"S": "${S}", "x": "S", "n": 1}, {"S": 5.0}) == \
        {"S": 5.0, "x": "S", "n": 1}


REAL = {
    "name": "real",
    "horizon": 80,
    "eta": [0.01, 1000.0],
    "seeds": [0, 1, 2],
    "checkpoints": {"every": 20},
    "env": {"id": "rlhf_gbpm/GBPMDuel-v0", "params": {"rank": 1}},
    "sizes": [{"d": 4, "K": 6, "S": 3.0}],
    "agents": [{"name": "greedy_sampling", "label": "GS",
                "kwargs": {"estimator": "ons", "refresh": 2, "S": "${S}"}}],
}


def test_real_agent_runs_do_not_depend_on_chunking(tmp_path):
    """Greedy Sampling on the real vector env: one batch of 6 runs == 6 batches of one."""
    whole = run_sweep(load_config(REAL), tmp_path / "a", progress=False).table
    single = run_sweep(load_config(dict(REAL, backend={"chunk_size": 1})), tmp_path / "b",
                       progress=False).table
    pd.testing.assert_frame_equal(whole, single, check_exact=True)
    assert len(whole) == 6 * 4
    # the recorded columns are populated and consistent
    assert np.isfinite(whole[["cum_mbr_regret", "estimation_error", "ne_residual"]]).all().all()
    assert (whole["cum_abr_regret"] >= whole["cum_mbr_regret"]).all()
    # MBR regret is evaluated at the run's own eta: regret grows with eta (spec 5.3)
    final = whole[whole["t"] == 80].groupby("eta")["cum_mbr_regret"].mean()
    assert final.loc[0.01] < final.loc[1000.0]


def test_uniform_agent_regret_matches_the_plain_env_oracle(tmp_path):
    """Run i meets the instance of the plain env reset with seed i, scored at its own eta."""
    import gymnasium as gym

    import rlhf_gbpm.envs  # noqa: F401
    from rlhf_gbpm import dual_gap, get_regularizer

    cfg = dict(REAL, agents=[{"name": "uniform"}], checkpoints={"every": 40})
    table = run_sweep(load_config(cfg), tmp_path / "u", progress=False).table
    kl = get_regularizer("kl")
    for run in table.itertuples(index=False):
        env = gym.make("rlhf_gbpm/GBPMDuel-v0", d=4, K=6, S=3.0, rank=1)
        env.reset(seed=int(run.seed))
        payoff = env.unwrapped.oracle.payoff(0)
        gap = float(dual_gap(np.full(6, 1 / 6), payoff, kl, run.eta))
        np.testing.assert_allclose(run.cum_mbr_regret, run.t * gap, rtol=1e-10)
        np.testing.assert_allclose(run.cum_abr_regret, 2 * run.t * gap, rtol=1e-10)


def test_execute_chunk_reports_progress():
    chunk = plan_sweep(_config(horizon=250))[0]
    seen = []
    execute_chunk(chunk, on_progress=seen.append)
    assert 50 <= len(seen) <= 101 and seen[-1] == 1.0
    assert np.all(np.diff(seen) > 0) and seen[0] > 0


def test_resume_after_torn_index_append(reference, tmp_path):
    """A kill in the middle of an index append: the chunk is reported, rerun, not duplicated."""
    from rlhf_gbpm.errors import GBPMWarning

    out = tmp_path / "r"
    run_sweep(_config(), out, progress=False, max_chunks=3)
    index = out / "index.jsonl"
    lines = index.read_bytes().splitlines(keepends=True)
    index.write_bytes(b"".join(lines[:2]) + lines[2][:40])
    seen = []
    with pytest.warns(GBPMWarning, match="last index record is incomplete"):
        result = run_sweep(None, out, resume=True, progress=False,
                           on_chunk=lambda c, f: seen.append(c.chunk_id))
    assert seen[0] == 2 and len(seen) == 8
    pd.testing.assert_frame_equal(result.table, reference.table, check_exact=True)


def test_a_second_writer_is_refused(tmp_path):
    from rlhf_gbpm.experiments.store import ResultsStore

    out = tmp_path / "r"
    run_sweep(_config(), out, progress=False, max_chunks=1)
    with ResultsStore(out).lock():
        with pytest.raises(BlockingIOError, match="being written by another rlhf-gbpm run"):
            run_sweep(None, out, resume=True, progress=False)
    # the lock is gone with its holder: resuming now works
    assert run_sweep(None, out, resume=True, progress=False).chunks_skipped == 1


@pytest.mark.parametrize("change, message", [
    ({"agents": [{"name": "greedy_sampling", "kwargs": {"refresh": 0}}]},
     "agents[0].kwargs: ValueError: refresh == 0, must be >= 1."),
    ({"sizes": [{"d": 4, "K": 1, "S": 3.0}]},
     "env.params / sizes[0]: ValueError: K == 1, must be >= 2."),
    ({"regularizers": [{"name": "tsallis", "params": {"q": 3.0}}]}, "regularizers[0]: "),
])
def test_real_components_reject_bad_values_before_any_work(tmp_path, change, message):
    with pytest.raises(ConfigError) as info:
        run_sweep(load_config(dict(REAL, **change)), tmp_path / "r", progress=False)
    assert str(info.value).startswith(message)
    assert not (tmp_path / "r").exists()
