"""Tests for rlhf_gbpm._random (counter-based streams)."""

import numpy as np
from scipy import stats

from rlhf_gbpm._random import counter_normal, counter_uniform


def test_uniform_distribution_and_independence_of_streams():
    keys = np.arange(200, dtype=np.uint64)
    t = np.arange(500)[:, None]
    u = counter_uniform(keys[None, :], t, 1)
    assert u.shape == (500, 200) and u.min() >= 0 and u.max() < 1
    assert stats.kstest(u.ravel(), "uniform").pvalue > 1e-4
    v = counter_uniform(keys[None, :], t, 2)
    assert abs(np.corrcoef(u.ravel(), v.ravel())[0, 1]) < 0.01
    # neighbouring counters and keys are uncorrelated
    assert abs(np.corrcoef(u[1:].ravel(), u[:-1].ravel())[0, 1]) < 0.01
    assert abs(np.corrcoef(u[:, 1:].ravel(), u[:, :-1].ravel())[0, 1]) < 0.01


def test_batch_invariance():
    keys = np.array([5, 17, 99], dtype=np.uint64)
    batch = counter_uniform(keys, 42, 3)
    for i, k in enumerate(keys):
        assert counter_uniform(k, 42, 3) == batch[i]


def test_normal():
    z = counter_normal(np.arange(20000), 3, 0)
    assert stats.kstest(z, "norm").pvalue > 1e-4
