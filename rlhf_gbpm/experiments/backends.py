"""Execution backends: where the chunks of a sweep run.

Every backend maps one picklable function over the chunks of the plan and yields each
chunk's result as it finishes; the caller (the runner, in the main process) is the only
writer of the results store. A chunk's result depends only on the chunk, never on which
backend ran it or how many workers there were.

* ``inprocess``: one chunk after the other in this process (batched numpy inside a chunk).
* ``process``: a local process pool (``spawn``), BLAS/OpenMP limited to one thread per worker
  with threadpoolctl so that workers do not oversubscribe the cores, and (glibc) large
  temporaries kept on the heap instead of being mapped and unmapped every round.
* ``ray``: Ray tasks on a cluster (``address``) or on a local Ray started on demand.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

from rlhf_gbpm.errors import missing_dependency

__all__ = ["Backend", "InProcessBackend", "ProcessBackend", "RayBackend", "get_backend"]

logger = logging.getLogger(__name__)

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMEXPR_NUM_THREADS")
_limits: list[Any] = []  # keeps the worker's threadpool limit alive
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3  # glibc mallopt parameters


def _exit_with_parent(parent: int, period: float = 1.0) -> None:
    """Exit this worker once its parent is gone (e.g. the sweep was SIGKILLed)."""
    while True:
        time.sleep(period)
        if os.getppid() != parent:
            os._exit(1)


def _keep_heap_memory() -> None:
    """Serve arrays of up to 64 MiB from the heap and keep freed memory (glibc only).

    A batched round allocates and frees several (B, K, K) temporaries of a few MiB. By
    default glibc maps each from the kernel and unmaps it when freed, so every round pays
    the page faults again; with a fixed mmap threshold of 64 MiB and a trim threshold of
    256 MiB the pages are reused (measured: 45 -> 38 us CPU per run-round, d = 10,
    K = 40, B = 100). The peak memory is unchanged; a worker returns its heap to the
    system when it exits. Elsewhere (other C libraries) this does nothing.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 64 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 256 << 20)
        libc.mallopt(_M_TOP_PAD, 16 << 20)
    except (OSError, AttributeError):  # not glibc
        logger.debug("mallopt unavailable; default malloc settings kept")


def _init_worker() -> None:
    """Process-pool initializer: one BLAS thread, heap memory kept, exit with the parent."""
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    _keep_heap_memory()
    for var in _THREAD_VARS:
        os.environ[var] = "1"
    from threadpoolctl import threadpool_limits

    _limits.append(threadpool_limits(limits=1))
    torch = sys.modules.get("torch")  # not imported here (slow); the env vars cover later use
    if torch is not None:
        torch.set_num_threads(1)


def _call_single_threaded(fn: Callable, task: Any) -> Any:
    """Run ``fn(task)`` with BLAS limited to one thread (used inside Ray workers)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return fn(task)


class Backend:
    """Maps a function over tasks, yielding ``(task, result)`` as results arrive."""

    name = "base"

    def map(self, fn: Callable, tasks: Sequence) -> Iterator[tuple[Any, Any]]:
        """Run ``fn`` on every task.

        Args:
            fn: A picklable module-level function of one task.
            tasks: The tasks (picklable).

        Yields:
            ``(task, fn(task))`` pairs in completion order.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release resources (worker processes, Ray connection)."""


class InProcessBackend(Backend):
    """Runs tasks one after the other in this process."""

    name = "inprocess"

    def map(self, fn: Callable, tasks: Sequence) -> Iterator[tuple[Any, Any]]:
        """Run the tasks in order; see :meth:`Backend.map`."""
        for task in tasks:
            yield task, fn(task)


class ProcessBackend(Backend):
    """A local pool of ``workers`` spawned processes with single-threaded BLAS.

    The pool starts at the first :meth:`map` and is reused until :meth:`close`.

    Args:
        workers: Number of processes (None: ``os.cpu_count()``).
    """

    name = "process"

    def __init__(self, workers: int | None = None):
        self.workers = int(workers or os.cpu_count() or 1)
        self._pool: ProcessPoolExecutor | None = None

    def map(self, fn: Callable, tasks: Sequence) -> Iterator[tuple[Any, Any]]:
        """Run the tasks on the pool; see :meth:`Backend.map`."""
        tasks = list(tasks)
        if not tasks:
            return
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers,
                                             mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init_worker)
        pending = {self._pool.submit(fn, task): task for task in tasks}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    task = pending.pop(fut)
                    yield task, fut.result()
        finally:
            for fut in pending:
                fut.cancel()

    def close(self) -> None:
        """Shut the pool down (waits for running tasks)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class RayBackend(Backend):
    """Ray tasks (one CPU each) on the cluster at ``address`` or on a local Ray.

    Args:
        address: Cluster address for ``ray.init`` (e.g. ``"auto"`` or
            ``"ray://head:10001"``); None starts a local instance.
        workers: Tasks in flight at once (None: as many as the cluster schedules); a local
            instance is started with this many CPUs.
        runtime_env: Optional Ray runtime environment (e.g. ``{"env_vars": {...}}``).
    """

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None,
                 runtime_env: dict | None = None):
        self.address = address
        self.workers = workers
        self.runtime_env = runtime_env
        self._started = False

    def _ray(self):
        try:
            import ray
        except ImportError as err:
            raise missing_dependency("ray", "ray") from err
        if not ray.is_initialized():
            kwargs: dict = {"address": self.address, "include_dashboard": False,
                            "log_to_driver": False, "configure_logging": False}
            if self.address is None and self.workers is not None:
                kwargs["num_cpus"] = self.workers
            if self.runtime_env is not None:
                kwargs["runtime_env"] = self.runtime_env
            logger.info("starting Ray (address=%s)", self.address)
            ray.init(**kwargs)
            self._started = True
        return ray

    def map(self, fn: Callable, tasks: Sequence) -> Iterator[tuple[Any, Any]]:
        """Submit the tasks to Ray; see :meth:`Backend.map`."""
        tasks = list(tasks)
        if not tasks:
            return
        ray = self._ray()
        remote = ray.remote(num_cpus=1, max_retries=0)(_call_single_threaded)
        limit = self.workers or len(tasks)
        queue = list(tasks)
        refs: dict = {}
        try:
            while queue or refs:
                while queue and len(refs) < limit:
                    task = queue.pop(0)
                    refs[remote.remote(fn, task)] = task
                done, _ = ray.wait(list(refs), num_returns=1)
                for ref in done:
                    task = refs.pop(ref)
                    yield task, ray.get(ref)
        finally:
            for ref in refs:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        """Shut down the Ray instance this backend started (a cluster is left running)."""
        if self._started:
            import ray

            ray.shutdown()
            self._started = False


def get_backend(name: str, *, address: str | None = None, workers: int | None = None,
                **options) -> Backend:
    """Build a backend by name.

    Args:
        name: ``"inprocess"``, ``"process"`` or ``"ray"``.
        address: Ray address (ray only).
        workers: Number of workers (process and ray).
        **options: Extra options of the backend class (e.g. ``runtime_env`` for Ray).

    Returns:
        The backend.

    Raises:
        ValueError: For an unknown name.
    """
    if name == "inprocess":
        return InProcessBackend()
    if name == "process":
        return ProcessBackend(workers)
    if name == "ray":
        return RayBackend(address, workers, **options)
    raise ValueError(f"backend == {name!r}, must be one of ('inprocess', 'process', 'ray').")
