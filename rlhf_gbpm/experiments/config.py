"""Experiment configs: a validated, frozen description of a sweep.

A config names the environment and its parameters, one or more instance sizes, the agents
(name and keyword arguments), the regularizers, the eta grid, the seeds, the horizon, the
checkpoints at which the results table records a row, and the execution backend. It is read
from TOML (``tomllib``) and validated completely before any work starts; every error is a
:class:`~rlhf_gbpm.errors.ConfigError` whose message begins with the path of the bad key,
e.g. ``"agents[1].eta[0]: must be > 0, got -1.0."``.

Built-in configs ship in ``rlhf_gbpm/experiments/configs/*.toml``; see
:func:`builtin_configs`. The reference of every key is in ``docs/experiments.md``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import numbers
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from rlhf_gbpm.errors import ConfigError

__all__ = [
    "AGENTS",
    "BACKENDS",
    "AgentSpec",
    "BackendSpec",
    "CheckpointSpec",
    "EnvSpec",
    "ExperimentConfig",
    "RegularizerSpec",
    "builtin_configs",
    "checkpoint_rounds",
    "load_config",
]

# agent name -> "module:attribute" (strings, so validating a config imports no agent code)
AGENTS: dict[str, str] = {
    "greedy_sampling": "rlhf_gbpm.agents:GreedySampling",
    "explore_then_commit": "rlhf_gbpm.agents:ExploreThenCommit",
    "uniform": "rlhf_gbpm.agents:UniformAgent",
    "symmetric_greedy_sampling": "rlhf_gbpm.agents:SymmetricGreedySampling",
    "optimistic_matrix_game": "rlhf_gbpm.agents:OptimisticMatrixGame",
    "online_nash_md": "rlhf_gbpm.agents:OnlineNashMD",
}

BACKENDS = ("inprocess", "process", "ray")

# env keyword arguments the runner sets itself
_RUNNER_ENV_KEYS = ("horizon", "max_episode_steps", "num_envs", "regularizer", "eta")

_KNOWN_REGULARIZERS = (
    "kl", "shannon", "l2", "chi2_half", "chi2", "tsallis", "tsallis_half", "kl_plus_chi2",
)


# --------------------------------------------------------------------------- helpers


@contextmanager
def _at(path: str) -> Iterator[None]:
    """Prefix the key path of ConfigErrors raised inside the block with ``path``."""
    try:
        yield
    except ConfigError as err:
        msg = str(err)
        if not path:
            raise
        joined = f"{path}{msg}" if msg.startswith("[") else f"{path}.{msg}"
        raise ConfigError(joined) from err.__cause__


def _fail(key: str, problem: str) -> ConfigError:
    return ConfigError(f"{key}: {problem}")


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _is_real(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _type_name(x) -> str:
    return type(x).__name__


def _check_str(value, key: str, *, choices=None, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise _fail(key, f"must be a string, got {_type_name(value)} {value!r}.")
    if not value and not allow_empty:
        raise _fail(key, "must be a non-empty string.")
    if choices is not None and value not in choices:
        raise _fail(key, f"must be one of {tuple(choices)}, got {value!r}.")
    return value


def _check_int(value, key: str, *, min_val: int | None = None) -> int:
    if not _is_int(value):
        raise _fail(key, f"must be an integer, got {_type_name(value)} {value!r}.")
    if min_val is not None and value < min_val:
        raise _fail(key, f"must be >= {min_val}, got {value!r}.")
    return int(value)


def _check_positive(value, key: str, *, allow_inf: bool = True) -> float:
    if not _is_real(value):
        raise _fail(key, f"must be a number, got {_type_name(value)} {value!r}.")
    value = float(value)
    if math.isnan(value) or value <= 0 or (math.isinf(value) and not allow_inf):
        raise _fail(key, f"must be > 0{' and finite' if not allow_inf else ''}, got {value!r}.")
    return value


def _check_table(value, key: str) -> dict:
    if not isinstance(value, Mapping):
        raise _fail(key, f"must be a table, got {_type_name(value)} {value!r}.")
    for k in value:
        if not isinstance(k, str):
            raise _fail(key, f"keys must be strings, got {k!r}.")
    return dict(value)


def _check_keys(data: Mapping, key: str, allowed, required=()) -> None:
    prefix = f"{key}." if key else ""
    for k in data:
        if k not in allowed:
            raise ConfigError(
                f"{prefix}{k}: unknown key; valid keys are {sorted(allowed)}."
            )
    for k in required:
        if k not in data:
            raise ConfigError(f"{prefix}{k}: missing required key.")


def _plain(value):
    """Deep copy of TOML-like data with tuples turned into lists (for JSON and hashing)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _check_params(value, key: str) -> dict:
    """Keyword arguments: a table of TOML values (no further checks here)."""
    table = _check_table(value, key)
    return copy.deepcopy(table)


# --------------------------------------------------------------------------- grids


def _parse_eta(value, key: str) -> tuple[float, ...]:
    """An eta grid: a list of numbers, a number, or ``{logspace = [a, b, n]}``."""
    if _is_real(value):
        return (_check_positive(value, key),)
    if isinstance(value, Mapping):
        _check_keys(value, key, {"logspace", "values"})
        if len(value) != 1:
            raise _fail(key, "give exactly one of 'logspace' or 'values'.")
        if "values" in value:
            return _parse_eta(value["values"], f"{key}.values")
        spec = value["logspace"]
        k = f"{key}.logspace"
        if not isinstance(spec, list) or len(spec) != 3:
            raise _fail(k, f"must be a list [start, stop, num], got {spec!r}.")
        for i in (0, 1):
            if not _is_real(spec[i]) or not math.isfinite(spec[i]):
                raise _fail(f"{k}[{i}]", f"must be a finite number (a log10 exponent), "
                            f"got {spec[i]!r}.")
        num = _check_int(spec[2], f"{k}[2]", min_val=1)
        grid = tuple(float(v) for v in np.logspace(float(spec[0]), float(spec[1]), num))
        if len(set(grid)) != len(grid):
            raise _fail(k, f"gives repeated values (start == stop with num > 1), got {spec!r}.")
        return grid
    if isinstance(value, list):
        if not value:
            raise _fail(key, "must not be empty.")
        out = tuple(_check_positive(v, f"{key}[{i}]") for i, v in enumerate(value))
        if len(set(out)) != len(out):
            raise _fail(key, f"must not repeat values, got {list(out)}.")
        return out
    raise _fail(key, f"must be a number, a list of numbers or a table {{logspace = [a, b, n]}}, "
                f"got {_type_name(value)} {value!r}.")


def _parse_seeds(value, key: str) -> tuple[int, ...]:
    """Seeds: a list of non-negative ints or ``{count = n, start = 0}``."""
    if isinstance(value, Mapping):
        _check_keys(value, key, {"count", "start"}, required=("count",))
        count = _check_int(value["count"], f"{key}.count", min_val=1)
        start = _check_int(value.get("start", 0), f"{key}.start", min_val=0)
        return tuple(range(start, start + count))
    if isinstance(value, list):
        if not value:
            raise _fail(key, "must not be empty.")
        out = tuple(_check_int(v, f"{key}[{i}]", min_val=0) for i, v in enumerate(value))
        if len(set(out)) != len(out):
            raise _fail(key, f"must not repeat seeds, got {list(out)}.")
        return out
    raise _fail(key, f"must be a list of ints or a table {{count = n, start = 0}}, got "
                f"{_type_name(value)} {value!r}.")


def checkpoint_rounds(kind: str, value: int, horizon: int) -> np.ndarray:
    """The rounds at which a run records a row.

    Args:
        kind: ``"every"`` (rounds k, 2k, ..., and the horizon) or ``"log"`` (about ``value``
            distinct rounds spaced geometrically in [1, horizon]).
        value: The period k, or the number of log-spaced points.
        horizon: T, the last round (always included).

    Returns:
        Sorted distinct rounds in [1, horizon], int64 array of shape (n,).
    """
    if kind == "every":
        rounds = np.arange(value, horizon + 1, value, dtype=np.int64)
    else:
        rounds = np.unique(np.round(np.geomspace(1, horizon, value)).astype(np.int64))
    rounds = np.unique(np.concatenate([rounds, [horizon]]))
    return rounds[(rounds >= 1) & (rounds <= horizon)]


# --------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class EnvSpec:
    """The environment every run of the sweep uses."""

    id: str = "rlhf_gbpm/GBPMDuel-v0"
    """A registered Gymnasium id, or ``"module:factory"`` for a user vector env."""
    params: dict = field(default_factory=dict)
    """Keyword arguments shared by all sizes (e.g. ``rank``, ``link``)."""

    def __post_init__(self):
        _check_str(self.id, "id")
        object.__setattr__(self, "params", _check_params(self.params, "params"))


@dataclass(frozen=True)
class RegularizerSpec:
    """A regularizer: a registered name and its parameters."""

    name: str
    """Registered name (``rlhf_gbpm.get_regularizer``), e.g. ``"kl"``, or
    ``"module:factory"`` for a user-defined regularizer (called with ``params``)."""
    params: dict = field(default_factory=dict)
    """Keyword arguments, e.g. ``{"q": 0.5}`` for Tsallis."""

    def __post_init__(self):
        _check_str(self.name, "name")
        _check_regularizer_name(self.name, "name")
        object.__setattr__(self, "params", _check_params(self.params, "params"))

    @property
    def label(self) -> str:
        """Name with parameters, e.g. ``"tsallis(q=0.5)"``; the results table's key."""
        if not self.params:
            return self.name
        inner = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.name}({inner})"


@dataclass(frozen=True)
class AgentSpec:
    """An agent of the sweep: which class, with which keyword arguments."""

    name: str
    """A name in :data:`AGENTS` or ``"module:Class"`` for a user agent."""
    kwargs: dict = field(default_factory=dict)
    """Constructor keyword arguments (``eta``, ``regularizer`` and ``seed`` are set by the
    runner)."""
    label: str = ""
    """Name in the results table and plots (default: ``name``)."""
    eta: tuple[float, ...] | None = None
    """This agent's eta grid (default: the config's)."""
    regularizers: tuple[RegularizerSpec, ...] | None = None
    """This agent's regularizers (default: the config's)."""

    def __post_init__(self):
        _check_str(self.name, "name")
        if ":" not in self.name and self.name not in AGENTS:
            raise _fail("name", f"unknown agent {self.name!r}; valid names are "
                        f"{sorted(AGENTS)} or 'module:Class'.")
        kwargs = _check_params(self.kwargs, "kwargs")
        for reserved in ("eta", "regularizer", "seed"):
            if reserved in kwargs:
                raise _fail(f"kwargs.{reserved}", "is set by the runner from the sweep "
                            "(eta grid, regularizers, seeds); remove it from kwargs.")
        object.__setattr__(self, "kwargs", kwargs)
        _check_str(self.label, "label", allow_empty=True)
        if not self.label:
            object.__setattr__(self, "label", self.name.rsplit(":", 1)[-1])
        if self.eta is not None:
            object.__setattr__(self, "eta", _parse_eta(list(self.eta), "eta"))
        if self.regularizers is not None:
            object.__setattr__(self, "regularizers", _parse_regularizers(
                list(self.regularizers), "regularizers"))


@dataclass(frozen=True)
class CheckpointSpec:
    """When a run writes a row of the results table."""

    kind: str = "log"
    """``"log"`` (geometrically spaced rounds) or ``"every"`` (every k rounds)."""
    value: int = 50
    """Number of log-spaced rounds, or the period k."""

    def __post_init__(self):
        _check_str(self.kind, "kind", choices=("log", "every"))
        _check_int(self.value, "every" if self.kind == "every" else "log", min_val=1)

    def rounds(self, horizon: int) -> np.ndarray:
        """Checkpoint rounds for a horizon, shape (n,); see :func:`checkpoint_rounds`."""
        return checkpoint_rounds(self.kind, self.value, horizon)


@dataclass(frozen=True)
class BackendSpec:
    """Where the runs execute. Results never depend on these settings."""

    name: str = "inprocess"
    """``"inprocess"`` (batched, this process), ``"process"`` (a local process pool) or
    ``"ray"``."""
    address: str | None = None
    """Ray cluster address (``ray.init(address=...)``); None starts a local Ray."""
    workers: int | None = None
    """Worker processes (process backend) or concurrent tasks (Ray); None: the CPU count."""
    chunk_size: int | None = None
    """Runs per task (one vector env + one batched agent); None: a whole group per task.
    Part of the sweep plan: resuming keeps the chunking of the first start."""
    runtime_env: dict | None = None
    """Ray only: the ``runtime_env`` of ``ray.init`` (e.g. ``{pip = ["rlhf-gbpm"]}``)."""

    def __post_init__(self):
        _check_str(self.name, "name", choices=BACKENDS)
        if self.address is not None:
            _check_str(self.address, "address")
        if self.workers is not None:
            _check_int(self.workers, "workers", min_val=1)
        if self.chunk_size is not None:
            _check_int(self.chunk_size, "chunk_size", min_val=1)
        if self.runtime_env is not None:
            object.__setattr__(self, "runtime_env",
                               _check_params(self.runtime_env, "runtime_env"))


def _parse_regularizers(value, key: str) -> tuple[RegularizerSpec, ...]:
    if isinstance(value, (str, Mapping)):
        value = [value]
    if not isinstance(value, list) or not value:
        raise _fail(key, f"must be a non-empty list of names or tables, got {value!r}.")
    out = []
    for i, item in enumerate(value):
        k = f"{key}[{i}]"
        if isinstance(item, RegularizerSpec):
            out.append(item)
            continue
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, Mapping):
            raise _fail(k, f"must be a name or a table {{name = ..., ...}}, got {item!r}.")
        _check_keys(item, k, {"name", "params"}, required=("name",))
        with _at(k):
            out.append(RegularizerSpec(name=item["name"], params=item.get("params", {})))
    labels = [s.label for s in out]
    if len(set(labels)) != len(labels):
        raise _fail(key, f"must not repeat a regularizer, got {labels}.")
    return tuple(out)


def _check_regularizer_name(name: str, key: str) -> None:
    if ":" in name:  # a user factory "module:function", imported when the sweep starts
        return
    try:
        from rlhf_gbpm import regularizers as _regs
    except ImportError:  # core not installed yet: fall back to the documented names
        known = _KNOWN_REGULARIZERS
    else:
        known = tuple(getattr(_regs, "_REGISTRY", None) or
                      getattr(_regs, "REGULARIZER_NAMES", None) or _KNOWN_REGULARIZERS)
    if name not in known:
        raise _fail(key, f"unknown regularizer {name!r}; valid names are {sorted(known)}.")


@dataclass(frozen=True)
class ExperimentConfig:
    """A sweep: sizes x agents x regularizers x eta x seeds, each run for ``horizon`` rounds."""

    name: str
    """Short name; the default output folder is ``out/<name>``."""
    agents: tuple[AgentSpec, ...]
    """The agents compared."""
    eta: tuple[float, ...]
    """The eta grid (regularization strength 1/eta); each run is evaluated at its own eta."""
    seeds: tuple[int, ...]
    """Run seeds; seed s draws the same instance and noise for every agent and eta."""
    horizon: int
    """T, rounds per run."""
    regularizers: tuple[RegularizerSpec, ...] = (RegularizerSpec("kl"),)
    """The regularizers psi."""
    env: EnvSpec = EnvSpec()
    """The environment and its shared parameters."""
    sizes: tuple[dict, ...] = ({},)
    """Instance sizes: each table is merged into ``env.params`` (e.g. ``{d=5, K=20, S=5}``)."""
    checkpoints: CheckpointSpec = CheckpointSpec()
    """Rounds recorded in the results table."""
    backend: BackendSpec = BackendSpec()
    """Execution backend (does not change results)."""
    description: str = ""
    """One line on what the sweep shows."""
    fit_min_t: int = 10
    """Rate fits (log t and sqrt t) use checkpoints with t >= this (spec: t >= 10)."""

    def __post_init__(self):
        _check_str(self.name, "name")
        _check_str(self.description, "description", allow_empty=True)
        if not isinstance(self.agents, (list, tuple)) or not self.agents:
            raise _fail("agents", "must be a non-empty list of agent tables.")
        for i, agent in enumerate(self.agents):
            if not isinstance(agent, AgentSpec):
                raise _fail(f"agents[{i}]", f"must be an AgentSpec, got {_type_name(agent)}.")
        labels = [a.label for a in self.agents]
        if len(set(labels)) != len(labels):
            raise _fail("agents", f"labels must be unique (set 'label'), got {labels}.")
        object.__setattr__(self, "agents", tuple(self.agents))
        object.__setattr__(self, "eta", _parse_eta(list(self.eta), "eta"))
        object.__setattr__(self, "seeds", _parse_seeds(list(self.seeds), "seeds"))
        _check_int(self.horizon, "horizon", min_val=1)
        object.__setattr__(self, "regularizers", _parse_regularizers(
            list(self.regularizers), "regularizers"))
        if not isinstance(self.sizes, (list, tuple)) or not self.sizes:
            raise _fail("sizes", "must be a non-empty list of tables.")
        sizes = tuple(_check_params(s, f"sizes[{i}]") for i, s in enumerate(self.sizes))
        if len({json.dumps(_plain(s), sort_keys=True) for s in sizes}) != len(sizes):
            raise _fail("sizes", "must not repeat a size.")
        object.__setattr__(self, "sizes", sizes)
        for name, cls in (("env", EnvSpec), ("checkpoints", CheckpointSpec),
                          ("backend", BackendSpec)):
            if not isinstance(getattr(self, name), cls):
                raise _fail(name, f"must be a {cls.__name__}.")
        _check_int(self.fit_min_t, "fit_min_t", min_val=1)

    # ------------------------------------------------------------------ derived values

    @property
    def checkpoint_rounds(self) -> np.ndarray:
        """Recorded rounds, int64 array of shape (n,)."""
        return self.checkpoints.rounds(self.horizon)

    @property
    def size_keys(self) -> tuple[str, ...]:
        """Parameter names that vary across sizes (the results table's size columns)."""
        keys: list[str] = []
        for size in self.sizes:
            keys.extend(k for k in size if k not in keys)
        return tuple(keys)

    @property
    def num_runs(self) -> int:
        """Total number of runs in the sweep."""
        total = 0
        for agent in self.agents:
            n_eta = len(agent.eta if agent.eta is not None else self.eta)
            n_reg = len(agent.regularizers if agent.regularizers is not None
                        else self.regularizers)
            total += n_eta * n_reg * len(self.seeds) * len(self.sizes)
        return total

    # ------------------------------------------------------------------ conversions

    def to_dict(self) -> dict:
        """Plain data (TOML/JSON types) that :meth:`from_dict` turns back into this config."""
        def reg(spec: RegularizerSpec) -> dict:
            return {"name": spec.name, "params": _plain(spec.params)}

        agents = []
        for a in self.agents:
            item = {"name": a.name, "label": a.label, "kwargs": _plain(a.kwargs)}
            if a.eta is not None:
                item["eta"] = list(a.eta)
            if a.regularizers is not None:
                item["regularizers"] = [reg(r) for r in a.regularizers]
            agents.append(item)
        backend = {"name": self.backend.name}
        for key in ("address", "workers", "chunk_size", "runtime_env"):
            if getattr(self.backend, key) is not None:
                backend[key] = getattr(self.backend, key)
        return {
            "name": self.name,
            "description": self.description,
            "horizon": self.horizon,
            "eta": list(self.eta),
            "seeds": list(self.seeds),
            "fit_min_t": self.fit_min_t,
            "env": {"id": self.env.id, "params": _plain(self.env.params)},
            "sizes": [_plain(s) for s in self.sizes],
            "agents": agents,
            "regularizers": [reg(r) for r in self.regularizers],
            "checkpoints": {self.checkpoints.kind: self.checkpoints.value},
            "backend": backend,
        }

    def plan_hash(self) -> str:
        """SHA-256 of everything that determines the results.

        The backend's name, address and workers are left out (they never change results);
        resuming requires the same hash.
        """
        data = self.to_dict()
        data["backend"] = {"chunk_size": self.backend.chunk_size}
        data.pop("description", None)
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def with_backend(self, **changes) -> ExperimentConfig:
        """A copy with some backend fields replaced; None values are ignored.

        Args:
            **changes: ``name``, ``address``, ``workers``, ``chunk_size`` or
                ``runtime_env``.

        Returns:
            The new config.
        """
        current = {k: getattr(self.backend, k) for k in ("name", "address", "workers",
                                                         "chunk_size", "runtime_env")}
        current.update({k: v for k, v in changes.items() if v is not None})
        with _at("backend"):
            backend = BackendSpec(**current)
        return _replace(self, backend=backend)

    @classmethod
    def from_dict(cls, data: Mapping) -> ExperimentConfig:
        """Validate plain data (as read from TOML) and build a config.

        Args:
            data: The parsed TOML document.

        Returns:
            The validated config.

        Raises:
            ConfigError: On a missing, unknown or invalid key; the message starts with the
                key's path.
        """
        data = _check_table(data, "config")
        _check_keys(data, "", {
            "name", "description", "horizon", "eta", "seeds", "fit_min_t", "env", "sizes",
            "agents", "regularizers", "checkpoints", "backend",
        }, required=("name", "horizon", "eta", "seeds", "agents"))
        kwargs: dict = {}
        kwargs["name"] = _check_str(data["name"], "name")
        kwargs["description"] = _check_str(data.get("description", ""), "description",
                                           allow_empty=True)
        kwargs["horizon"] = _check_int(data["horizon"], "horizon", min_val=1)
        kwargs["fit_min_t"] = _check_int(data.get("fit_min_t", 10), "fit_min_t", min_val=1)
        kwargs["eta"] = _parse_eta(data["eta"], "eta")
        kwargs["seeds"] = _parse_seeds(data["seeds"], "seeds")
        kwargs["regularizers"] = _parse_regularizers(data.get("regularizers", ["kl"]),
                                                     "regularizers")
        env = _check_table(data.get("env", {}), "env")
        _check_keys(env, "env", {"id", "params"})
        with _at("env"):
            kwargs["env"] = EnvSpec(**env)
        sizes = data.get("sizes", [{}])
        if not isinstance(sizes, list) or not sizes:
            raise _fail("sizes", f"must be a non-empty list of tables ([[sizes]]), got "
                        f"{sizes!r}.")
        kwargs["sizes"] = tuple(_check_table(s, f"sizes[{i}]") for i, s in enumerate(sizes))
        places = [("env.params", kwargs["env"].params)] + \
            [(f"sizes[{i}]", s) for i, s in enumerate(kwargs["sizes"])]
        for where, table in places:
            for k in _RUNNER_ENV_KEYS:
                if k in table:
                    raise _fail(f"{where}.{k}", "is set by the runner (from the top-level "
                                "horizon and the number of runs); remove it.")
        for i, size in enumerate(kwargs["sizes"]):
            for k in size:
                if k in kwargs["env"].params:
                    raise _fail(f"sizes[{i}].{k}", "is also set in env.params; set it in one "
                                "place.")
        agents = data["agents"]
        if not isinstance(agents, list) or not agents:
            raise _fail("agents", f"must be a non-empty list of tables ([[agents]]), got "
                        f"{agents!r}.")
        specs = []
        for i, item in enumerate(agents):
            k = f"agents[{i}]"
            item = _check_table(item, k)
            _check_keys(item, k, {"name", "kwargs", "label", "eta", "regularizers"},
                        required=("name",))
            if "eta" in item:
                item["eta"] = _parse_eta(item["eta"], f"{k}.eta")
            if "regularizers" in item:
                item["regularizers"] = _parse_regularizers(item["regularizers"],
                                                           f"{k}.regularizers")
            with _at(k):
                specs.append(AgentSpec(**item))
        kwargs["agents"] = tuple(specs)
        ckpt = _check_table(data.get("checkpoints", {"log": 50}), "checkpoints")
        _check_keys(ckpt, "checkpoints", {"log", "every"})
        if len(ckpt) != 1:
            raise _fail("checkpoints", "give exactly one of 'log = n' or 'every = k'.")
        ((kind, value),) = ckpt.items()
        with _at("checkpoints"):
            kwargs["checkpoints"] = CheckpointSpec(kind=kind, value=value)
        backend = _check_table(data.get("backend", {}), "backend")
        _check_keys(backend, "backend", {"name", "address", "workers", "chunk_size",
                                         "runtime_env"})
        with _at("backend"):
            kwargs["backend"] = BackendSpec(**backend)
        with _at(""):
            return cls(**kwargs)


def _replace(cfg: ExperimentConfig, **changes) -> ExperimentConfig:
    import dataclasses

    return dataclasses.replace(cfg, **changes)


# --------------------------------------------------------------------------- loading


def builtin_configs() -> dict[str, Path]:
    """The configs shipped with the package.

    Returns:
        Mapping from name (file stem) to path, sorted by name.
    """
    root = resources.files("rlhf_gbpm.experiments") / "configs"
    found = {}
    for entry in root.iterdir():
        if entry.name.endswith(".toml"):
            found[entry.name[:-5]] = Path(str(entry))
    return dict(sorted(found.items()))


def load_config(source: str | Path | Mapping | ExperimentConfig | None = None
                ) -> ExperimentConfig:
    """Load and validate an experiment config.

    Args:
        source: None (the built-in ``default``), a built-in name (see
            :func:`builtin_configs`), a path to a TOML file, a mapping of plain data, or an
            :class:`ExperimentConfig`.

    Returns:
        The validated config.

    Raises:
        ConfigError: If the file is missing or not valid TOML, or a key is missing, unknown
            or invalid (the message starts with the key's path).
    """
    if isinstance(source, ExperimentConfig):
        return source
    if source is None:
        source = "default"
    if isinstance(source, Mapping):
        return ExperimentConfig.from_dict(source)
    if not isinstance(source, (str, Path)):
        raise ConfigError(f"config: must be None, a name, a path or a mapping, got "
                          f"{_type_name(source)}.")
    builtins = builtin_configs()
    if isinstance(source, str) and source in builtins:
        path = builtins[source]
    else:
        path = Path(source)
    if not path.is_file():
        raise ConfigError(
            f"config: {str(source)!r} is neither a file nor a built-in config "
            f"({sorted(builtins)})."
        )
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config: {str(path)!r} is not valid TOML: {err}") from err
    return ExperimentConfig.from_dict(data)
