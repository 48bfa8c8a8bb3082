"""The sweep runner: plan, validate, execute chunks on a backend, record crash-safely.

A sweep is sizes x agents x regularizers x eta x seeds. The runner groups runs by
(size, agent, regularizer): a **group** runs as ONE vector env and ONE batched agent over
all its eta x seed runs (eta is passed to the agent as an array, one value per run). A group
is split into **chunks** of at most ``backend.chunk_size`` runs; a chunk is the unit of work
of a backend and of the results store. Runs draw from counter-based per-run streams, so a
run's numbers do not depend on its chunk-mates; the chunking is fixed by the config (and kept
by ``--resume``), so a sweep gives the same table on every backend and any number of workers.

Contract with environments and agents (see ``docs/experiments.md``):

* a registered ``rlhf_gbpm/...`` id is built with ``gymnasium.make_vec`` (its native vector
  env, one instance per run) and wrapped in ``rlhf_gbpm.envs.VectorRegretMonitor`` at the
  runs' etas;
* a user env ``"module:factory"`` is called as ``factory(num_envs=B, horizon=T,
  regularizer=psi, eta=etas (B,), **params)`` and must return a vector env whose ``step``
  accepts a :class:`~rlhf_gbpm.protocol.DuelAction` and whose ``info`` holds the round's
  per-run dual gaps ``"dgap_max"`` and ``"dgap_min"`` (shape (B,)), as the regret monitor
  does (wrap a duel vector env in ``VectorRegretMonitor``); ``theta_star`` (B, d, d) or
  ``oracle.theta`` enables the estimation-error column;
* an agent class is built as ``Agent(regularizer=psi, eta=etas, **kwargs)`` (plus
  ``horizon=T`` when its constructor takes one), then ``reset(seed=seeds)``,
  ``act(obs) -> DuelAction``, ``update(obs, action, reward)``; an attribute ``theta_``
  (B, d, d) or (B, D) gives the estimate (estimation error ||Theta_hat - Theta_star||_F after
  the round's update) and the NE residual (the dual gap of the played max policy in the game
  of the agent's estimate at act time), unless the agent provides ``ne_residual_`` (B,).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from gymnasium.error import Error as GymError

from rlhf_gbpm.errors import ConfigError, ResultsCorruptedError
from rlhf_gbpm.experiments.backends import Backend, InProcessBackend, get_backend
from rlhf_gbpm.experiments.config import (
    AGENTS,
    AgentSpec,
    ExperimentConfig,
    RegularizerSpec,
    load_config,
)
from rlhf_gbpm.experiments.store import COLUMNS, ResultsStore

__all__ = [
    "Chunk",
    "SweepResult",
    "execute_chunk",
    "plan_sweep",
    "resolve_references",
    "run_sweep",
    "validate_sweep",
]

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Chunk:
    """One unit of work: some runs of one (size, agent, regularizer) group.

    Attributes:
        chunk_id: Position in the plan (also the part file number).
        group: Group id (size, agent, regularizer) in plan order.
        agent: The agent spec.
        regularizer: The regularizer spec.
        env_id: Environment id or ``"module:factory"``.
        env_params: Environment keyword arguments (shared params merged with the size).
        size: The size's own parameters (the table's size columns).
        size_label: Short text naming the size, e.g. ``"d=5,K=20,S=5"``.
        horizon: T.
        checkpoints: Recorded rounds, ascending.
        run_ids: Run ids, shape (B,).
        etas: Each run's eta, shape (B,).
        seeds: Each run's seed, shape (B,).
    """

    chunk_id: int
    group: int
    agent: AgentSpec
    regularizer: RegularizerSpec
    env_id: str
    env_params: dict
    size: dict
    size_label: str
    horizon: int
    checkpoints: tuple[int, ...]
    run_ids: tuple[int, ...]
    etas: tuple[float, ...]
    seeds: tuple[int, ...]

    @property
    def num_runs(self) -> int:
        """B, the number of runs in the chunk."""
        return len(self.run_ids)


def _size_label(size: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in size.items()) or "default"


def plan_sweep(config: ExperimentConfig) -> list[Chunk]:
    """Expand a config into chunks, deterministically.

    Order: sizes, then agents, then regularizers; inside a group the runs go eta-major
    (eta[0] x all seeds, eta[1] x all seeds, ...). Run ids count from 0 in this order.
    A group of N runs is cut into n = ceil(N / chunk_size) chunks by striding: chunk j holds
    runs j, j + n, j + 2n, ... Every chunk then mixes the whole eta grid (a run's cost grows
    with eta, so contiguous eta-major chunks would give one worker all the expensive runs),
    and chunk sizes differ by at most one run.

    Args:
        config: The validated config.

    Returns:
        The chunks, in plan order.
    """
    chunks: list[Chunk] = []
    run_id = 0
    group = 0
    ckpts = tuple(int(t) for t in config.checkpoint_rounds)
    for size in config.sizes:
        params = dict(config.env.params)
        params.update(size)
        for agent in config.agents:
            etas = agent.eta if agent.eta is not None else config.eta
            regs = agent.regularizers if agent.regularizers is not None else \
                config.regularizers
            for reg in regs:
                runs = [(e, s) for e in etas for s in config.seeds]
                ids = list(range(run_id, run_id + len(runs)))
                run_id += len(runs)
                step = config.backend.chunk_size or len(runs)
                count = -(-len(runs) // step)  # ceil
                for start in range(count):
                    part = runs[start::count]
                    chunks.append(Chunk(
                        chunk_id=len(chunks), group=group, agent=agent, regularizer=reg,
                        env_id=config.env.id, env_params=params, size=dict(size),
                        size_label=_size_label(size), horizon=config.horizon,
                        checkpoints=ckpts, run_ids=tuple(ids[start::count]),
                        etas=tuple(float(e) for e, _ in part),
                        seeds=tuple(int(s) for _, s in part),
                    ))
                group += 1
    return chunks


# --------------------------------------------------------------------------- adapters


def _import(target: str):
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    for name in attr.split("."):
        obj = getattr(obj, name)
    return obj


def _agent_class(spec: AgentSpec):
    return _import(AGENTS.get(spec.name, spec.name))


def _make_regularizer(spec: RegularizerSpec):
    if ":" in spec.name:  # a user factory "module:function"
        return _import(spec.name)(**spec.params)
    from rlhf_gbpm.regularizers import get_regularizer

    return get_regularizer(spec.name, **spec.params)


def resolve_references(kwargs: dict, params: dict, where: str = "kwargs") -> dict:
    """Replace string values ``"${name}"`` by the environment parameter ``name``.

    Lets an agent follow the instance size, e.g. ``S = "${S}"`` gives the estimator the
    true norm bound of each size.

    Args:
        kwargs: Agent keyword arguments.
        params: The environment parameters of the run (shared params and the size).
        where: Key path used in error messages.

    Returns:
        A new dict with references resolved.

    Raises:
        ConfigError: If a referenced parameter is not set.
    """
    out = {}
    for key, value in kwargs.items():
        if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
            name = value[2:-1]
            if name not in params:
                raise ConfigError(f"{where}.{key}: refers to env parameter {name!r}, which "
                                  f"is not set (set: {sorted(params)}).")
            value = params[name]
        out[key] = value
    return out


def _make_agent(chunk: Chunk, regularizer, etas: np.ndarray):
    cls = _agent_class(chunk.agent)
    kwargs = resolve_references(chunk.agent.kwargs, chunk.env_params)
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
        params = {}
    if "horizon" in params and "horizon" not in kwargs:
        kwargs["horizon"] = chunk.horizon
    return cls(regularizer=regularizer, eta=etas, **kwargs)


class _EnvSession:
    """A vector env plus the means to read per-round regrets and the true parameters."""

    def __init__(self, chunk: Chunk, regularizer, etas: np.ndarray):
        B = chunk.num_runs
        if ":" in chunk.env_id:
            factory = _import(chunk.env_id)
            self.env = factory(num_envs=B, horizon=chunk.horizon, regularizer=regularizer,
                               eta=etas, **chunk.env_params)
        else:
            self.env = _make_builtin_env(chunk, regularizer, etas)

    def reset(self, seeds: list[int]):
        obs, _ = self.env.reset(seed=seeds)
        return obs

    def step(self, action):
        obs, reward, _terminated, _truncated, info = self.env.step(action)
        mbr = np.asarray(info["dgap_max"], dtype=float)
        abr = mbr + np.asarray(info["dgap_min"], dtype=float)
        return obs, reward, mbr, abr

    def theta_star(self) -> np.ndarray | None:
        env = self.env
        for _ in range(8):
            value = getattr(env, "theta_star", None)
            if value is not None:
                return np.asarray(value, dtype=float)
            oracle = getattr(env, "oracle", None)
            if oracle is not None and getattr(oracle, "theta", None) is not None:
                return np.asarray(oracle.theta, dtype=float)
            nxt = getattr(env, "env", None)
            if nxt is None or nxt is env:
                break
            env = nxt
        return None

    def close(self) -> None:
        close = getattr(self.env, "close", None)
        if close is not None:
            close()


def _make_builtin_env(chunk: Chunk, regularizer, etas: np.ndarray):
    """Registered env as a native vector env, wrapped in the vector regret monitor."""
    import gymnasium as gym

    import rlhf_gbpm.envs as envs  # registers the ids

    params = dict(chunk.env_params)
    params["horizon"] = chunk.horizon
    params["max_episode_steps"] = chunk.horizon  # else the registration's limit may cut runs
    env = gym.make_vec(chunk.env_id, num_envs=chunk.num_runs,
                       vectorization_mode="vector_entry_point", **params)
    return envs.VectorRegretMonitor(env, regularizer, etas)


def _estimation_error(agent, theta_star: np.ndarray | None) -> np.ndarray | None:
    """||Theta_hat - Theta_star||_F per run, or None when either is unavailable."""
    if theta_star is None:
        return None
    est = getattr(agent, "theta_", None)
    if est is None:
        return None
    est = np.asarray(est, dtype=float)
    star = np.asarray(theta_star, dtype=float)
    if est.ndim == 2:  # orthonormal skew coordinates (B, D): same Frobenius norm
        from rlhf_gbpm.skew import skew_to_vec

        star = skew_to_vec(star)
        return np.linalg.norm(est - star, axis=-1)
    return np.linalg.norm(est - star, axis=(-2, -1))


def _ne_residual(agent, obs, action, regularizer, etas: np.ndarray) -> np.ndarray | None:
    """How far the played max-player policy is from the SNE of the agent's own estimate.

    ``agent.ne_residual_`` (B,) when the agent provides it; otherwise the dual gap
    DGap_eta(pi1_t) in the game of the agent's current estimate ``theta_`` at this round's
    features (0 exactly when the agent plays that game's SNE). None without an estimate.
    """
    value = getattr(agent, "ne_residual_", None)
    if value is not None:
        return np.asarray(value, dtype=float)
    theta = getattr(agent, "theta_", None)
    policy = np.asarray(action.max_policy, dtype=float)
    feats = np.asarray(obs["features"], dtype=float)
    if theta is None or policy.ndim != 2 or feats.ndim != 3:
        return None
    from rlhf_gbpm.equilibrium import dual_gap
    from rlhf_gbpm.preference import payoff_matrix
    from rlhf_gbpm.skew import vec_to_skew

    theta = np.asarray(theta, dtype=float)
    if theta.ndim == 2:
        theta = vec_to_skew(theta, feats.shape[-1])
    link = getattr(agent, "_link", None) or getattr(agent, "link", None) or "logistic"
    payoff = payoff_matrix(feats, theta, link, validate=False)
    return np.asarray(dual_gap(policy, payoff, regularizer, etas), dtype=float)


# --------------------------------------------------------------------------- one chunk


def execute_chunk(chunk: Chunk, on_progress: Callable[[float], None] | None = None
                  ) -> pd.DataFrame:
    """Run every run of a chunk for ``horizon`` rounds in one vector env and one agent.

    Args:
        chunk: The chunk.
        on_progress: Called about 100 times with the fraction of the chunk's rounds done,
            in (0, 1]; the last call passes 1.0.

    Returns:
        Tidy rows, one per run x checkpoint, in run order then round order; columns are the
        run description (``run_id, agent, regularizer, eta, seed``, the size columns,
        ``size``) then :data:`~rlhf_gbpm.experiments.store.COLUMNS`.
    """
    B = chunk.num_runs
    etas = np.asarray(chunk.etas, dtype=float)
    seeds = [int(s) for s in chunk.seeds]
    regularizer = _make_regularizer(chunk.regularizer)
    session = _EnvSession(chunk, regularizer, etas)
    agent = _make_agent(chunk, regularizer, etas)
    ckpts = np.asarray(chunk.checkpoints, dtype=np.int64)
    n = ckpts.size
    rec = {name: np.full((n, B), np.nan) for name in COLUMNS if name != "t"}
    theta_star = None
    every = max(1, -(-chunk.horizon // 100))  # ceil(T / 100)
    try:
        agent.reset(seed=seeds)
        obs = session.reset(seeds)
        theta_star = session.theta_star()
        cum_mbr = np.zeros(B)
        cum_abr = np.zeros(B)
        j = 0
        for t in range(1, chunk.horizon + 1):
            action = agent.act(obs)
            next_obs, reward, mbr, abr = session.step(action)
            record = t == ckpts[j]
            if record:
                res = _ne_residual(agent, obs, action, regularizer, etas)
                if res is not None:
                    rec["ne_residual"][j] = res
            agent.update(obs, action, reward)
            cum_mbr += mbr
            cum_abr += abr
            if record:
                rec["mbr_regret"][j] = mbr
                rec["abr_regret"][j] = abr
                rec["cum_mbr_regret"][j] = cum_mbr
                rec["cum_abr_regret"][j] = cum_abr
                err = _estimation_error(agent, theta_star)
                if err is not None:
                    rec["estimation_error"][j] = err
                j += 1
            obs = next_obs
            if on_progress is not None and (t % every == 0 or t == chunk.horizon):
                on_progress(t / chunk.horizon)
    finally:
        session.close()
    return _chunk_frame(chunk, ckpts, rec)


def _chunk_frame(chunk: Chunk, ckpts: np.ndarray, rec: dict) -> pd.DataFrame:
    B, n = chunk.num_runs, ckpts.size
    cols: dict = {
        "run_id": np.repeat(np.asarray(chunk.run_ids, dtype=np.int64), n),
        "agent": [chunk.agent.label] * (B * n),
        "regularizer": [chunk.regularizer.label] * (B * n),
        "eta": np.repeat(np.asarray(chunk.etas, dtype=float), n),
        "seed": np.repeat(np.asarray(chunk.seeds, dtype=np.int64), n),
    }
    for key, value in chunk.size.items():
        cols[key] = [value] * (B * n)
    cols["size"] = [chunk.size_label] * (B * n)
    cols["t"] = np.tile(ckpts, B)
    for name, arr in rec.items():
        cols[name] = arr.T.reshape(-1)  # (n, B) -> run-major rows
    return pd.DataFrame(cols)


# --------------------------------------------------------------------------- validation


def validate_sweep(config: ExperimentConfig) -> None:
    """Check everything that can fail before any work starts.

    Imports each agent class and builds one agent per (agent, regularizer) with the sweep's
    etas, builds each regularizer, and builds each size's environment for one run.

    Args:
        config: The config.

    Raises:
        ConfigError: Naming the key whose value the agent, regularizer or env rejected.
    """
    regs = {}
    seen_regs: list[tuple[str, RegularizerSpec]] = []
    for i, agent in enumerate(config.agents):
        key = f"agents[{i}]"
        try:
            _agent_class(agent)
        except (ImportError, AttributeError) as err:
            raise ConfigError(f"{key}.name: cannot import {agent.name!r} "
                              f"({AGENTS.get(agent.name, agent.name)}): {err}") from err
        if agent.regularizers is not None:
            seen_regs += [(f"{key}.regularizers[{j}]", r) for j, r in
                          enumerate(agent.regularizers)]
    seen_regs += [(f"regularizers[{j}]", r) for j, r in enumerate(config.regularizers)]
    for key, spec in seen_regs:
        if spec.label in regs:
            continue
        try:
            regs[spec.label] = _make_regularizer(spec)
        except (ImportError, AttributeError) as err:
            raise ConfigError(f"{key}.name: cannot import {spec.name!r}: {err}") from err
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{key}: {err}") from err
    probe = Chunk(0, 0, config.agents[0], config.regularizers[0], config.env.id, {}, {}, "",
                  config.horizon, (config.horizon,), (0,), (1.0,), (0,))
    for i, size in enumerate(config.sizes):
        params = dict(config.env.params)
        params.update(size)
        chunk = _replace_chunk(probe, env_params=params, size=size)
        key = " / ".join(k for k, v in (("env.params", config.env.params),
                                         (f"sizes[{i}]", size)) if v) or "env"
        try:
            session = _EnvSession(chunk, regs[config.regularizers[0].label], np.ones(1))
            session.close()
        except (ImportError, AttributeError, GymError) as err:  # GymError: unknown id
            raise ConfigError(f"env.id: cannot build {config.env.id!r}: {err}") from err
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{key}: {type(err).__name__}: {err}") from err
        for j, agent in enumerate(config.agents):
            etas = np.asarray(agent.eta if agent.eta is not None else config.eta, dtype=float)
            agent_regs = agent.regularizers if agent.regularizers is not None else \
                config.regularizers
            for spec in agent_regs:
                chunk = _replace_chunk(probe, agent=agent, regularizer=spec, env_params=params)
                resolve_references(agent.kwargs, params, f"agents[{j}].kwargs")
                try:
                    _make_agent(chunk, regs[spec.label], etas)
                except (TypeError, ValueError) as err:
                    raise ConfigError(f"agents[{j}].kwargs: {type(err).__name__}: {err}") \
                        from err


def _replace_chunk(chunk: Chunk, **changes) -> Chunk:
    import dataclasses

    return dataclasses.replace(chunk, **changes)


# --------------------------------------------------------------------------- the sweep


@dataclass
class SweepResult:
    """What :func:`run_sweep` did.

    Attributes:
        out: The results folder.
        config: The config run.
        chunks_total: Chunks in the plan.
        chunks_run: Chunks executed by this call.
        chunks_skipped: Chunks found finished (``resume``).
        seconds: Wall-clock time of this call.
        table: The complete results table.
    """

    out: Path
    config: ExperimentConfig
    chunks_total: int
    chunks_run: int
    chunks_skipped: int
    seconds: float
    table: pd.DataFrame = field(repr=False)


def _manifest(config: ExperimentConfig, chunks: list[Chunk]) -> dict:
    return {
        "config": config.to_dict(),
        "plan_hash": config.plan_hash(),
        "num_runs": config.num_runs,
        "num_chunks": len(chunks),
        "seeds": list(config.seeds),
        "eta": list(config.eta),
        "checkpoints": [int(t) for t in config.checkpoint_rounds],
        "resumed_at": [],
        "finished_at": None,
    }


def run_sweep(config: str | Path | dict | ExperimentConfig | None = None,
              out: str | Path | None = None, *, resume: bool = False,
              backend: Backend | None = None, progress: bool = True,
              max_chunks: int | None = None,
              on_chunk: Callable[[Chunk, pd.DataFrame], None] | None = None) -> SweepResult:
    """Run (or resume) a sweep and record it in a results folder.

    Args:
        config: Anything :func:`~rlhf_gbpm.experiments.config.load_config` accepts; with
            ``resume`` and None, the config stored in the folder's manifest.
        out: Results folder (default ``out/<config name>``).
        resume: Continue an interrupted sweep in ``out``: verify what is there, skip the
            finished chunks and run the rest. The config must have the same plan hash.
        backend: Where chunks run (default: from ``config.backend``).
        progress: Show a tqdm progress bar over runs.
        max_chunks: Stop after this many chunks (for tests and partial runs).
        on_chunk: Called in the main process after each chunk is recorded.

    Returns:
        A :class:`SweepResult` with the complete table.

    Raises:
        ConfigError: If the config is invalid (before any work) or does not match the
            results being resumed.
        FileExistsError: If ``out`` holds results and ``resume`` is False.
        ResultsCorruptedError: If existing results fail verification.
    """
    start = time.perf_counter()
    if resume and config is None and out is not None:
        stored = ResultsStore(out).read_manifest()
        config = load_config(stored["config"])
    config = load_config(config)
    out = Path(out) if out is not None else Path("out") / config.name
    store = ResultsStore(out)
    if not (resume and store.exists()):
        validate_sweep(config)  # before the folder is created
    with store.lock():
        return _run_locked(config, store, resume=resume, backend=backend,
                           progress=progress, max_chunks=max_chunks, on_chunk=on_chunk,
                           start=start)


def _run_locked(config: ExperimentConfig, store: ResultsStore, *, resume: bool,
                backend: Backend | None, progress: bool, max_chunks: int | None,
                on_chunk, start: float) -> SweepResult:
    out = store.root
    if resume and store.exists():
        manifest = store.read_manifest()
        if manifest.get("plan_hash") != config.plan_hash():
            raise ConfigError(
                f"config: {config.name!r} differs from the config of the results in {out} "
                "(plan hash mismatch); resume with the same config or use another --out."
            )
        stored_cfg = load_config(manifest["config"])
        config = stored_cfg.with_backend(name=config.backend.name,
                                         address=config.backend.address,
                                         workers=config.backend.workers,
                                         runtime_env=config.backend.runtime_env)
        validate_sweep(config)
        chunks = plan_sweep(config)
        done = store.records()  # verifies every part; warns about a torn last line
        for c in chunks:
            rec = done.get(c.chunk_id)
            if rec is not None and tuple(rec.run_ids) != c.run_ids:
                raise ResultsCorruptedError(
                    f"{store.index_path}: chunk {c.chunk_id} records runs {rec.run_ids}, the "
                    f"plan has {c.run_ids}."
                )
        store.repair_tail()
        store.update_manifest(resumed_at=list(manifest.get("resumed_at", [])) +
                              [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())])
    else:
        chunks = plan_sweep(config)
        store.create(_manifest(config, chunks))
        done = {}
    todo = [c for c in chunks if c.chunk_id not in done]
    if max_chunks is not None:
        todo = todo[:max_chunks]
    if backend is None:
        options = {}
        if config.backend.name == "ray" and config.backend.runtime_env is not None:
            options["runtime_env"] = config.backend.runtime_env
        backend = get_backend(config.backend.name, address=config.backend.address,
                              workers=config.backend.workers, **options)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(c.num_runs for c in chunks), unit="run",
                   desc=f"{config.name} [{backend.name}]",
                   initial=sum(c.num_runs for c in chunks if c.chunk_id in done),
                   bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt} runs "
                              "[{elapsed}<{remaining}]")
    n_run = 0
    fn = execute_chunk
    live = bar is not None and isinstance(backend, InProcessBackend) and bool(todo)
    if live:  # chunks run in order here: show round-level progress inside each chunk
        state = {"base": float(bar.n), "size": todo[0].num_runs}

        def _show(fraction: float) -> None:
            bar.n = state["base"] + fraction * state["size"]
            bar.refresh()

        fn = functools.partial(execute_chunk, on_progress=_show)
    try:
        for chunk, frame in backend.map(fn, todo):
            store.write_part(chunk.chunk_id, frame)
            n_run += 1
            if live:
                state["base"] += chunk.num_runs
                state["size"] = todo[n_run].num_runs if n_run < len(todo) else 0
                bar.n = state["base"]
                bar.refresh()
            elif bar is not None:
                bar.update(chunk.num_runs)
            if on_chunk is not None:
                on_chunk(chunk, frame)
    finally:
        if bar is not None:
            bar.close()
        backend.close()
    finished = store.records()
    if len(finished) == len(chunks):
        store.update_manifest(finished_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    table = store.load()
    return SweepResult(out=out, config=config, chunks_total=len(chunks), chunks_run=n_run,
                       chunks_skipped=len(done), seconds=time.perf_counter() - start,
                       table=table)
