"""Tests for rlhf_gbpm/experiments/store.py: exact round trip, corruption and torn writes."""

import json

import numpy as np
import pandas as pd
import pytest

from rlhf_gbpm.errors import GBPMWarning, ResultsCorruptedError
from rlhf_gbpm.experiments.store import FORMAT, ResultsStore, load_results


def _frame(run_ids, seed=0, n=4):
    rng = np.random.default_rng(seed)
    rows = len(run_ids) * n
    est = rng.normal(size=rows) * 1e-7
    est[::3] = np.nan
    return pd.DataFrame({
        "run_id": np.repeat(run_ids, n),
        "agent": ["GS, ons"] * rows,  # a comma must survive CSV quoting
        "eta": np.repeat(rng.lognormal(size=len(run_ids)), n),
        "seed": np.repeat(np.arange(len(run_ids)), n),
        "t": np.tile(np.arange(1, n + 1) * 10, len(run_ids)),
        "cum_mbr_regret": rng.lognormal(size=rows) / 3.0,
        "estimation_error": est,
    })


@pytest.fixture
def store(tmp_path):
    s = ResultsStore(tmp_path / "res")
    s.create({"config": {"name": "x"}, "plan_hash": "abc"})
    return s


def test_round_trip_is_exact(store):
    a, b = _frame([2, 3], seed=1), _frame([0, 1], seed=2)
    store.write_part(1, a)
    store.write_part(0, b)
    table = load_results(store.root)
    expected = pd.concat([b, a], ignore_index=True)
    pd.testing.assert_frame_equal(table, expected, check_exact=True)
    recs = store.records()
    assert sorted(recs) == [0, 1] and recs[1].run_ids == (2, 3) and recs[1].rows == 8


def test_manifest_has_versions_and_checksum(store):
    man = store.read_manifest()
    assert man["format"] == FORMAT and man["plan_hash"] == "abc"
    assert man["environment"]["versions"]["numpy"] == np.__version__
    assert "started_at" in man and "git" in man["environment"]
    store.update_manifest(finished_at="now")
    assert store.read_manifest()["finished_at"] == "now"


def test_create_refuses_existing_results(store):
    with pytest.raises(FileExistsError, match="--resume"):
        ResultsStore(store.root).create({"config": {}})


def test_tampered_manifest_is_detected(store):
    text = store.manifest_path.read_text().replace('"abc"', '"abd"')
    store.manifest_path.write_text(text)
    with pytest.raises(ResultsCorruptedError, match="manifest fails its checksum"):
        store.load()


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_damaged_part_is_detected(store, damage):
    store.write_part(0, _frame([0, 1]))
    store.write_part(1, _frame([2]))
    path = store.parts_dir / "part-000000.csv"
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
        match = "truncated or altered"
    elif damage == "flip":
        i = len(data) - 5
        path.write_bytes(data[:i] + bytes([data[i] ^ 1]) + data[i + 1:])
        match = "SHA-256 differs"
    else:
        path.unlink()
        match = "missing"
    with pytest.raises(ResultsCorruptedError, match=match):
        store.load()
    with pytest.raises(ResultsCorruptedError, match=match):
        store.records()


def test_altered_index_record_is_detected(store):
    store.write_part(0, _frame([0, 1]))
    store.write_part(1, _frame([2]))
    lines = store.index_path.read_bytes().split(b"\n")
    body = json.loads(lines[0])
    body["rows"] += 1  # claims one more row, checksum left as it was
    lines[0] = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    store.index_path.write_bytes(b"\n".join(lines))
    with pytest.raises(ResultsCorruptedError, match=":1: index record fails its checksum"):
        store.load()


def test_duplicate_chunk_is_detected(store):
    store.write_part(0, _frame([0]))
    line = store.index_path.read_bytes()
    store.index_path.write_bytes(line + line)
    with pytest.raises(ResultsCorruptedError, match="recorded twice"):
        store.records()


def test_torn_index_tail_is_reported_ignored_and_repaired(store):
    store.write_part(0, _frame([0, 1]))
    full = store.write_part(1, _frame([2])).to_line()
    raw = store.index_path.read_bytes()
    store.index_path.write_bytes(raw[: len(raw) - len(full) // 2])  # kill mid-append
    with pytest.warns(GBPMWarning, match="last index record is incomplete"):
        table = store.load()
    assert sorted(table["run_id"].unique()) == [0, 1]
    assert store.repair_tail()
    assert store.index_path.read_bytes() == raw[: len(raw) - len(full)]
    assert not store.repair_tail()
    assert sorted(store.records()) == [0]


def test_orphan_part_without_index_line_is_ignored(store):
    store.write_part(0, _frame([0]))
    _frame([5]).to_csv(store.parts_dir / "part-000001.csv", index=False)  # never indexed
    assert load_results(store.root)["run_id"].unique().tolist() == [0]
    store.write_part(1, _frame([1]))  # the chunk runs again and replaces the orphan
    assert load_results(store.root)["run_id"].unique().tolist() == [0, 1]


def test_empty_store_loads_empty(store):
    assert load_results(store.root).empty
    with pytest.raises(FileNotFoundError, match="no manifest"):
        load_results(store.root / "elsewhere")
