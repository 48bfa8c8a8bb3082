"""Crash safety of the results store with the real envs and agents.

* **Every crash point.** A sweep is crashed in-process at each of its file-system steps in turn
  (``os.write``, ``os.replace``, ``os.fsync``: the k-th call raises a ``BaseException`` the
  package cannot catch; a crashing ``os.write`` first writes half its bytes, a torn append),
  then resumed: the final table must equal the uninterrupted one exactly, every time.
* **SIGKILL at random moments.** The sweep runs in a subprocess that is SIGKILLed at seeded
  random times (startup, planning, chunk work, writes), four times in a row, each resumed;
  the final table equals the uninterrupted one exactly, and every intermediate folder loads
  to a subset of its rows (never different numbers).
* **Corruption.** Random truncations and bit flips of parts, index and manifest of a finished
  folder: every one raises ``ResultsCorruptedError``, including an index cut at a line
  boundary (the manifest says how many chunks a finished sweep has).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest

from rlhf_gbpm.errors import GBPMWarning, ResultsCorruptedError
from rlhf_gbpm.experiments.config import load_config
from rlhf_gbpm.experiments.runner import run_sweep
from rlhf_gbpm.experiments.store import ResultsStore, load_results

CONFIG = {
    "name": "crash",
    "horizon": 20,
    "eta": [1.0],
    "seeds": [0, 1],
    "env": {"id": "rlhf_gbpm/GBPMDuel-v0", "params": {"d": 4, "K": 5, "S": 2.0, "rank": 1}},
    "agents": [
        {"name": "greedy_sampling", "label": "GS",
         "kwargs": {"estimator": "ons", "refresh": 2, "S": "${S}"}},
        {"name": "uniform"},
    ],
    "checkpoints": {"every": 5},
    "backend": {"chunk_size": 1, "name": "inprocess"},
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return run_sweep(load_config(CONFIG), tmp_path_factory.mktemp("ref") / "r",
                     progress=False).table


class _Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the package catches it."""


def _crash_at(monkeypatch, k: int) -> list[int]:
    """Make the k-th file-system step crash (k = 0: never); returns the step counter."""
    count = [0]
    real = {"write": os.write, "replace": os.replace, "fsync": os.fsync}

    def tick() -> bool:
        count[0] += 1
        return count[0] == k

    def write(fd, data):
        if tick():
            data = bytes(data)
            real["write"](fd, data[: len(data) // 2])  # a torn append
            raise _Crash
        return real["write"](fd, data)

    def replace(src, dst):
        if tick():
            raise _Crash
        return real["replace"](src, dst)

    def fsync(fd):
        if tick():
            raise _Crash
        return real["fsync"](fd)

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "fsync", fsync)
    return count


def test_crash_at_every_write_step_resumes_to_the_reference(reference, tmp_path, monkeypatch):
    config = load_config(CONFIG)
    with monkeypatch.context() as m:
        steps = _crash_at(m, 0)
        run_sweep(config, tmp_path / "count", progress=False)
    total = steps[0]
    assert total >= 4 * 5 + 4  # manifest, then per chunk: part fsync/rename/dir, index
    for k in range(1, total + 1):
        out = tmp_path / f"crash{k}"
        with monkeypatch.context() as m:
            _crash_at(m, k)
            with pytest.raises(_Crash):
                run_sweep(config, out, progress=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GBPMWarning)  # a torn index line is reported
            result = run_sweep(config, out, resume=True, progress=False)
        pd.testing.assert_frame_equal(result.table, reference, check_exact=True,
                                      obj=f"table after a crash at step {k}")
        pd.testing.assert_frame_equal(load_results(out), reference, check_exact=True)
        assert ResultsStore(out).read_manifest()["finished_at"]


def _rows_are_reference_rows(table: pd.DataFrame, reference: pd.DataFrame) -> None:
    """Every row returned is exactly the reference row of that (run, t), dtypes included."""
    if not len(table):
        return
    ref = reference.set_index(["run_id", "t"])
    got = table.set_index(["run_id", "t"])
    pd.testing.assert_frame_equal(got, ref.loc[got.index], check_exact=True)


def _index_lines(out: Path) -> int:
    index = out / "index.jsonl"
    return index.read_bytes().count(b"\n") if index.exists() else 0


def test_sigkill_at_random_moments_then_resume(tmp_path):
    """Four SIGKILLs: one at a random moment of start-up, three at random moments of work."""
    slow = json.loads(json.dumps(CONFIG))
    slow.update(horizon=150, eta=[0.5, 5.0], seeds=[0, 1, 2], checkpoints={"every": 50})
    config_path = tmp_path / "slow.json"
    config_path.write_text(json.dumps(slow))
    full = run_sweep(load_config(slow), tmp_path / "full", progress=False).table
    out = tmp_path / "res"
    script = ("import json, sys\n"
              "from rlhf_gbpm.experiments.runner import run_sweep\n"
              "cfg = json.load(open(sys.argv[1]))\n"
              "run_sweep(cfg, sys.argv[2], resume=sys.argv[3] == '1', progress=False)\n")
    rng = random.Random(2026)
    kills = []
    for attempt in range(4):
        resume = (out / "manifest.json").exists()
        proc = subprocess.Popen([sys.executable, "-c", script, str(config_path), str(out),
                                 "1" if resume else "0"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if attempt == 0:
            time.sleep(rng.uniform(0.2, 2.0))  # imports, validation, planning, manifest
        else:  # wait for one more recorded chunk, then land anywhere in the next one
            before = _index_lines(out)
            deadline = time.monotonic() + 120
            while _index_lines(out) <= before and proc.poll() is None:
                assert time.monotonic() < deadline, "sweep made no progress"
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.3))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills.append(_index_lines(out))
        proc.wait(timeout=120)
        err = proc.stderr.read().decode()
        assert proc.returncode in (0, -signal.SIGKILL), err
        if (out / "manifest.json").exists():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", GBPMWarning)
                _rows_are_reference_rows(load_results(out), full)
    assert len(kills) >= 3, f"the sweep outran the kills ({kills}); make it slower"
    result = run_sweep(load_config(slow), out, resume=(out / "manifest.json").exists(),
                       progress=False)
    pd.testing.assert_frame_equal(result.table, full, check_exact=True)


def _finished(tmp_path: Path, name: str) -> Path:
    out = tmp_path / name
    run_sweep(load_config(CONFIG), out, progress=False)
    return out


def test_random_corruptions_are_detected_never_used(tmp_path):
    rng = random.Random(7)
    base = _finished(tmp_path, "base")
    files = sorted(p.relative_to(base) for p in base.rglob("*")
                   if p.is_file() and p.name != ".lock")
    kinds: dict[str, int] = {}
    for trial in range(60):
        out = tmp_path / f"c{trial}"
        shutil.copytree(base, out)
        target = out / rng.choice(files)
        data = bytearray(target.read_bytes())
        if rng.random() < 0.5:
            cut = rng.randrange(0, len(data))
            target.write_bytes(bytes(data[:cut]))
        else:
            pos = rng.randrange(len(data))
            data[pos] ^= 1 << rng.randrange(8)
            target.write_bytes(bytes(data))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GBPMWarning)  # a torn tail is also reported
            with pytest.raises(ResultsCorruptedError):
                load_results(out)
        kinds[target.name] = kinds.get(target.name, 0) + 1
    assert {"manifest.json", "index.jsonl"} <= set(kinds) and len(kinds) >= 4


def test_index_cut_at_a_line_boundary_of_a_finished_sweep(reference, tmp_path):
    """A finished sweep whose index lost whole lines is detected; resume recomputes them."""
    out = _finished(tmp_path, "cut")
    index = out / "index.jsonl"
    lines = index.read_bytes().splitlines(keepends=True)
    for keep in (len(lines) - 1, 0):
        index.write_bytes(b"".join(lines[:keep]))
        with pytest.raises(ResultsCorruptedError, match=(
                f"the manifest records a finished sweep of {len(lines)} chunks, the index "
                f"lists {keep} \\(truncated\\)")):
            load_results(out)
    result = run_sweep(load_config(CONFIG), out, resume=True, progress=False)
    pd.testing.assert_frame_equal(result.table, reference, check_exact=True)


def test_partial_tables_keep_float_columns(reference, tmp_path):
    """A partial table has the full table's dtypes (ne_residual without NaN stays float)."""
    out = tmp_path / "partial"
    run_sweep(load_config(CONFIG), out, progress=False, max_chunks=1)
    table = load_results(out)
    assert 0 < len(table) < len(reference)
    pd.testing.assert_series_equal(table.dtypes, reference.dtypes)


def test_results_and_manifest_are_replaced_atomically(tmp_path, monkeypatch):
    """A crash inside atomic_write_bytes leaves the old file intact, never a partial one."""
    from rlhf_gbpm.experiments.store import atomic_write_bytes

    path = tmp_path / "f.json"
    atomic_write_bytes(path, b"old contents")
    for k in (1, 2):  # crash at the temp file's fsync, then at the rename
        with monkeypatch.context() as m:
            _crash_at(m, k)
            with pytest.raises(_Crash):
                atomic_write_bytes(path, b"new contents that are longer")
        assert path.read_bytes() == b"old contents"
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new"


def test_sigkill_of_a_process_pool_sweep_leaves_no_workers_and_resumes(tmp_path):
    """Killing the parent of a process-pool sweep: its workers exit, resume completes it."""
    slow = json.loads(json.dumps(CONFIG))
    slow.update(horizon=200, seeds=[0, 1, 2], checkpoints={"every": 50},
                backend={"chunk_size": 1, "name": "process", "workers": 2})
    config_path = tmp_path / "pool.json"
    config_path.write_text(json.dumps(slow))
    out = tmp_path / "res"
    script = ("import json, sys\n"
              "from rlhf_gbpm.experiments.runner import run_sweep\n"
              "run_sweep(json.load(open(sys.argv[1])), sys.argv[2], progress=False)\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(config_path), str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _index_lines(out) < 1 and proc.poll() is None:
        assert time.monotonic() < deadline, "sweep made no progress"
        time.sleep(0.01)
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                              text=True).stdout.split()
    assert proc.poll() is None, "the sweep finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    deadline = time.monotonic() + 60  # a bound on the wait, not a timing claim
    alive = list(children)
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [c for c in alive if Path(f"/proc/{c}").exists()
                 and "zombie" not in Path(f"/proc/{c}/status").read_text().lower()]
    for c in alive:  # do not leave them behind even when the assertion fails
        os.kill(int(c), signal.SIGKILL)
    assert not alive, f"workers {alive} outlived their killed parent"
    assert 1 <= _index_lines(out) < 12
    reference = run_sweep(load_config({**slow, "backend": {"chunk_size": 1}}),
                          tmp_path / "ref", progress=False).table
    result = run_sweep(load_config(slow), out, resume=True, progress=False)
    pd.testing.assert_frame_equal(result.table, reference, check_exact=True)
