"""Settings shared by the whole test suite."""

import pytest
import torch
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True, scope="session")
def _single_threaded_numerics():
    """One BLAS and one torch thread per test process.

    The batched small matrix products of the package lose to thread start-up with more threads,
    and CI shares two cores; results do not depend on the thread count.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(previous)
