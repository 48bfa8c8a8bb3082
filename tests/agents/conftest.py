"""Shared settings of the agent tests."""

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """One BLAS thread: the batched small matmuls of the agents lose to thread start-up (and
    to oversubscription on a shared machine) with more."""
    with threadpool_limits(limits=1):
        yield
