"""Tests for rlhf_gbpm/experiments/backends.py: every backend gives the in-process table."""

import copy
import os
from pathlib import Path

import pandas as pd
import pytest
from _experiment_fakes import FAKE_CONFIG

from rlhf_gbpm.experiments.backends import (
    InProcessBackend,
    ProcessBackend,
    RayBackend,
    get_backend,
)
from rlhf_gbpm.experiments.config import load_config
from rlhf_gbpm.experiments.runner import run_sweep

FAKES_DIR = str(Path(__file__).resolve().parent)


def _config():
    data = copy.deepcopy(FAKE_CONFIG)
    data["horizon"] = 25
    return load_config(data)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return run_sweep(_config(), tmp_path_factory.mktemp("ref") / "r", progress=False).table


def _square(x):
    return x * x


def _blas_threads(_):
    from threadpoolctl import threadpool_info

    return [pool["num_threads"] for pool in threadpool_info()], os.environ["OMP_NUM_THREADS"]


def test_get_backend():
    assert isinstance(get_backend("inprocess"), InProcessBackend)
    assert get_backend("process", workers=3).workers == 3
    assert get_backend("ray", address="auto").address == "auto"
    with pytest.raises(ValueError, match="backend == 'dask', must be one of"):
        get_backend("dask")


def test_process_backend_limits_blas_and_gives_the_inprocess_table(reference, tmp_path):
    backend = ProcessBackend(workers=2)
    got = dict(backend.map(_square, [1, 2, 3, 4, 5]))
    assert got == {1: 1, 2: 4, 3: 9, 4: 16, 5: 25}
    (_, (threads, omp)), = backend.map(_blas_threads, [0])
    assert omp == "1" and threads and all(n == 1 for n in threads)
    # the same pool runs the sweep (run_sweep closes the backend at the end)
    result = run_sweep(_config(), tmp_path / "r", progress=False, backend=backend)
    assert backend._pool is None
    pd.testing.assert_frame_equal(result.table, reference, check_exact=True)


def test_ray_backend_table_equals_inprocess(reference, tmp_path):
    # local Ray; its workers import the fakes through PYTHONPATH
    path = os.pathsep.join([FAKES_DIR, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    backend = RayBackend(address=None, workers=2,
                         runtime_env={"env_vars": {"PYTHONPATH": path}})
    try:
        result = run_sweep(_config(), tmp_path / "r", progress=False, backend=backend)
    finally:
        backend.close()
    pd.testing.assert_frame_equal(result.table, reference, check_exact=True)
