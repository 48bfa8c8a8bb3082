"""The study framework: claims, config loading, the registry and the study runner.

A study module (``rlhf_gbpm.analysis.<name>``) defines:

* ``NAME`` (str) and ``DESCRIPTION`` (one line) and ``REFERENCE`` (paper, arXiv id);
* ``Config``: a frozen dataclass with CPU-cheap defaults, one docstring line per field and
  validation in ``__post_init__``;
* ``run(config: Config | None = None) -> Result``: a dataclass holding the trajectories (no
  claims); None means the defaults, anything but a ``Config`` raises ``TypeError``
  (:func:`study_config`);
* ``plot(result) -> dict[str, matplotlib.figure.Figure]``: the figures, the headline one first;
* ``claims(result) -> list[Claim]``: the paper's predictions evaluated on this run.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import importlib
import io
import math
import numbers
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from rlhf_gbpm._validation import check_scalar
from rlhf_gbpm.errors import ConfigError

__all__ = [
    "Claim",
    "STUDIES",
    "get_study",
    "list_studies",
    "load_config",
    "claims_table",
    "run_study",
    "geometric_steps",
    "fit_loglog_slope",
    "torch_threads",
    "check_finite_fields",
    "check_tuple",
    "study_config",
    "StudyOutput",
]

# registry: study name -> module path (string, so listing imports nothing heavy)
STUDIES: dict[str, str] = {
    "sam_diagonal": "rlhf_gbpm.analysis.sam_diagonal",
    "incremental_adam": "rlhf_gbpm.analysis.incremental_adam",
    "continual_classification": "rlhf_gbpm.analysis.continual_classification",
    "deep_matrix_factorization": "rlhf_gbpm.analysis.deep_matrix_factorization",
    "spectral_lora": "rlhf_gbpm.analysis.spectral_lora",
    "progressive_sharpening": "rlhf_gbpm.analysis.progressive_sharpening",
    "signsgd_scaling": "rlhf_gbpm.analysis.signsgd_scaling",
    "incremental_gd": "rlhf_gbpm.analysis.incremental_gd",
    "dual_pruning": "rlhf_gbpm.analysis.dual_pruning",
}


@dataclass(frozen=True)
class Claim:
    """One prediction of a paper evaluated on a run.

    Attributes:
        name: Short identifier, e.g. ``"depth1_l2_max_margin"``.
        expected: The prediction in words, with its threshold.
        observed: The measured value(s) in words or as a number.
        holds: Whether the observation satisfies the prediction.
    """

    name: str
    expected: str
    observed: str
    holds: bool

    def __post_init__(self):
        object.__setattr__(self, "holds", bool(self.holds))
        if not isinstance(self.observed, str):
            object.__setattr__(self, "observed", _fmt(self.observed))


def _fmt(value) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    if isinstance(value, np.ndarray):
        return np.array2string(value, precision=4, separator=", ")
    return str(value)


def list_studies() -> list[str]:
    """Names of the registered studies."""
    return list(STUDIES)


def get_study(name: str) -> ModuleType:
    """Import a study module by name.

    Args:
        name: A registered study name (see :func:`list_studies`).

    Returns:
        The module exposing ``Config``, ``run``, ``plot`` and ``claims``.

    Raises:
        ConfigError: For an unknown name (a ``ValueError``; the CLI reports it and exits 2).
    """
    if name not in STUDIES:
        raise ConfigError(f"study == {name!r}, must be one of {tuple(STUDIES)}.")
    return importlib.import_module(STUDIES[name])


def load_config(config_cls, source=None):
    """Build a study config from None (defaults), a dict, a TOML path or a config instance.

    Args:
        config_cls: The study's ``Config`` dataclass.
        source: None, a mapping of field overrides, a path to a TOML file (top-level keys or a
            ``[config]`` table), or an instance of ``config_cls``.

    Returns:
        A validated ``config_cls`` instance.

    Raises:
        ConfigError: On an unknown key or a value the config rejects (the key is named).
    """
    if source is None:
        return config_cls()
    if isinstance(source, config_cls):
        return source
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist.")
        with path.open("rb") as fh:
            try:
                data = tomllib.load(fh)
            except tomllib.TOMLDecodeError as err:
                raise ConfigError(f"config file {str(path)!r} is not valid TOML: {err}") from err
        data = data.get("config", data)
    elif isinstance(source, dict):
        data = dict(source)
    else:
        raise ConfigError(
            f"config must be None, a dict or a TOML path, got {type(source).__name__}."
        )
    fields = {f.name: f for f in dataclasses.fields(config_cls) if f.init}
    for key in data:
        if key not in fields:
            raise ConfigError(
                f"unknown config key {key!r} for {config_cls.__name__}; valid keys: "
                f"{sorted(fields)}."
            )
    kwargs = {}
    for key, value in data.items():
        default = fields[key].default
        if isinstance(value, list) and isinstance(default, tuple):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        kwargs[key] = value
    try:
        return config_cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"invalid {config_cls.__name__}: {err}") from err


def study_config(config, config_cls):
    """The config a study's ``run`` uses: the defaults for None, else a ``config_cls`` instance.

    Args:
        config: None or an instance of ``config_cls``.
        config_cls: The study's ``Config`` dataclass.

    Returns:
        A ``config_cls`` instance.

    Raises:
        TypeError: For anything else; the message points to :func:`load_config`.
    """
    if config is None:
        return config_cls()
    if not isinstance(config, config_cls):
        raise TypeError(
            f"config must be None or a {config_cls.__module__}.{config_cls.__name__}, not "
            f"{type(config).__name__}; build one from a dict or a TOML file with "
            "rlhf_gbpm.analysis.load_config."
        )
    return config


def check_finite_fields(config, *, allow_inf: Sequence[str] = ()) -> None:
    """Reject infinite or NaN numbers in a config dataclass, nested tuples included.

    Study configs call this last in ``__post_init__``: ``check_scalar`` accepts ``inf``, and
    an infinite step size or scale would only show up later as NaN trajectories.

    Args:
        config: A dataclass instance.
        allow_inf: Names of fields where ``+inf``/``-inf`` is a meaningful value.

    Raises:
        ValueError: Naming the first field holding a non-finite number.
    """
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if _has_nonfinite(value, allow_inf=f.name in allow_inf):
            raise ValueError(f"{f.name} == {value!r}, must be finite.")


def check_tuple(value, name: str, kind, **bounds) -> tuple:
    """Check a non-empty tuple (or list) of numbers, each with ``check_scalar``.

    Args:
        value: The sequence to check.
        name: Field name used in the messages.
        kind: Accepted number type, e.g. ``numbers.Real`` or ``numbers.Integral``.
        **bounds: ``min_val``, ``max_val`` and ``include_boundaries`` for ``check_scalar``.

    Returns:
        The entries as a tuple.

    Raises:
        TypeError: If ``value`` is not a non-empty tuple/list or an entry has the wrong type.
        ValueError: If an entry is out of range.
    """
    if not isinstance(value, (tuple, list)) or len(value) == 0:
        raise TypeError(f"{name} must be a non-empty tuple, got {value!r}.")
    for v in value:
        check_scalar(v, name, kind, **bounds)
    return tuple(value)


def _has_nonfinite(value, *, allow_inf: bool) -> bool:
    if isinstance(value, (tuple, list)):
        return any(_has_nonfinite(v, allow_inf=allow_inf) for v in value)
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, numbers.Integral)):
        x = float(value)
        return math.isnan(x) or (math.isinf(x) and not allow_inf)
    return False


def claims_table(claims: Sequence[Claim], fmt: str = "markdown") -> str:
    """Render claims as a markdown table or CSV.

    Args:
        claims: The claims.
        fmt: ``"markdown"`` or ``"csv"``.

    Returns:
        The table as text; in markdown, a ``|`` inside a cell is backslash-escaped.
    """
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["name", "expected", "observed", "holds"])
        for c in claims:
            writer.writerow([c.name, c.expected, c.observed, c.holds])
        return buf.getvalue()
    if fmt != "markdown":
        raise ValueError(f"fmt == {fmt!r}, must be 'markdown' or 'csv'.")
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| claim | expected | observed | holds |", "|---|---|---|---|"]
    for c in claims:
        lines.append(f"| {cell(c.name)} | {cell(c.expected)} | {cell(c.observed)} | "
                     f"{'yes' if c.holds else 'NO'} |")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class StudyOutput:
    """What :func:`run_study` produced.

    Attributes:
        name: Study name.
        config: The config used.
        result: The study's result object.
        claims: The evaluated claims.
        files: Paths written (figures as PNG and PDF, claims as markdown and CSV).
    """

    name: str
    config: object
    result: object
    claims: list[Claim]
    files: list[Path]

    @property
    def all_hold(self) -> bool:
        """Whether every claim holds."""
        return all(c.holds for c in self.claims)


def run_study(name: str, config=None, out_dir: str | Path | None = None) -> StudyOutput:
    """Run a study, evaluate its claims and (optionally) save figures and the claims table.

    Args:
        name: Registered study name.
        config: Anything :func:`load_config` accepts.
        out_dir: Folder for ``<name>_<figure>.png/.pdf`` and ``<name>_claims.md/.csv``;
            nothing is written when None. Matplotlib's rcParams are restored after plotting.

    Returns:
        A :class:`StudyOutput`.
    """
    module = get_study(name)
    cfg = load_config(module.Config, config)
    result = module.run(cfg)
    claim_list = list(module.claims(result))
    files: list[Path] = []
    if out_dir is not None:
        plt, _ = plotting_modules()

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        # a study's plot may set a seaborn theme; keep it from leaking into later figures
        with plt.rc_context():
            figures = module.plot(result)
            for key, fig in figures.items():
                for ext in ("png", "pdf"):
                    path = out / f"{name}_{key}.{ext}"
                    fig.savefig(path, dpi=100, bbox_inches="tight")
                    files.append(path)
                plt.close(fig)
        for fmt, ext in (("markdown", "md"), ("csv", "csv")):
            path = out / f"{name}_claims.{ext}"
            path.write_text(claims_table(claim_list, fmt))
            files.append(path)
    return StudyOutput(name=name, config=cfg, result=result, claims=claim_list, files=files)


def geometric_steps(total: int, num: int = 50, *, start: int = 1) -> np.ndarray:
    """Distinct integer steps spaced geometrically in [start, total], both ends included.

    Args:
        total: Last step, >= start.
        num: Approximate number of points.
        start: First step, >= 0.

    Returns:
        Sorted unique int64 array.
    """
    if total < start:
        raise ValueError(f"total == {total}, must be >= start == {start}.")
    lo = max(start, 1)
    pts = np.geomspace(lo, max(total, lo), num=max(num, 2))
    steps = np.unique(np.concatenate([[start], np.round(pts).astype(np.int64), [total]]))
    return steps[(steps >= start) & (steps <= total)]


def fit_loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x (positive entries only).

    Args:
        x: Abscissae, shape (n,).
        y: Ordinates, shape (n,).

    Returns:
        The slope, or nan if fewer than two usable points.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    mask = (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)
    if mask.sum() < 2:
        return math.nan
    return float(np.polyfit(np.log(x[mask]), np.log(y[mask]), 1)[0])


def plotting_modules():
    """Pyplot and seaborn for a study's ``plot``, with the non-interactive Agg backend.

    The backend is set only if none was chosen yet (``force=False``), so a notebook's
    inline backend is kept. Imported lazily: running a study without plots needs neither.

    Returns:
        ``(matplotlib.pyplot, seaborn)``.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import seaborn as sns

    return plt, sns


@contextlib.contextmanager
def torch_threads(num: int = 1):
    """Context manager that sets ``torch.set_num_threads(num)`` and restores the old value.

    Args:
        num: Threads to use inside the block, >= 1.

    Yields:
        None.
    """
    import torch

    if num < 1:
        raise ValueError(f"num == {num}, must be >= 1.")
    old = torch.get_num_threads()
    torch.set_num_threads(num)
    try:
        yield
    finally:
        torch.set_num_threads(old)
