"""Spectral gradient descent and Muon on LoRA-style matrix factorization.

Fit ``A B ~ Y`` (``A`` of shape (m, k) starting at zero, ``B`` of shape (k, n) a small Gaussian,
the LoRA initialization) by minimizing ``0.5 ||A B - Y||_F^2 (+ lambda/2 (||A||^2 + ||B||^2))``.
Orthogonalized updates (SpecGD, Muon) grow every singular value of ``A B`` at the same rate
(``sqrt(s_i)`` rises like ``lr * step``), so small targets are reached first; GD and Adam learn the
modes one at a time, largest first. A LoRA linear-regression analog compares the flatness of the
learned spectrum under Muon, AdamW and SGD.

References:
    C. Kang, J. Yun, B. Shin, Y. Cho, C. Yun, *Uniform Spectral Growth and Convergence of Muon in
    LoRA-Style Matrix Factorization*, arXiv:2602.06385, 2026.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np
import torch

from rlhf_gbpm._validation import check_scalar
from rlhf_gbpm.analysis._framework import (
    Claim,
    check_finite_fields,
    plotting_modules,
    study_config,
    torch_threads,
)
from rlhf_gbpm.analysis.optimizers.muon import Muon, SpecGD

__all__ = [
    "NAME",
    "DESCRIPTION",
    "REFERENCE",
    "Config",
    "FactorizationRun",
    "RegressionRun",
    "Result",
    "make_target",
    "train_factorization",
    "train_lora_regression",
    "run",
    "plot",
    "claims",
]

NAME = "spectral_lora"
DESCRIPTION = (
    "SpecGD/Muon vs GD/Adam on LoRA-style matrix factorization: equal-rate spectral growth, "
    "smallest-first learning, convergence with l2 regularization."
)
REFERENCE = (
    "Kang, Yun, Shin, Cho, Yun, Uniform Spectral Growth and Convergence of Muon in LoRA-Style "
    "Matrix Factorization, arXiv:2602.06385 (2026)"
)

_OPTIMIZERS = ("specgd", "muon", "gd", "adam", "adamw", "sgd")
_F64 = torch.float64


@dataclass(frozen=True)
class Config:
    """Configuration of the spectral LoRA study (CPU-cheap defaults)."""

    m: int = 60
    """Rows of the target Y."""
    n: int = 70
    """Columns of the target Y."""
    target_singular_values: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)
    """Nonzero singular values of Y (distinct, positive)."""
    target_seed: int = 0
    """Seed of the Haar-random singular vectors of Y."""
    lora_rank: int = 5
    """Inner dimension k of the factorization (>= number of targets)."""
    extra_rank: int = 8
    """Inner dimension of the over-parameterized SpecGD run (no spurious rank check)."""
    init: str = "lora"
    """'lora' (A0 = 0, B0 = gamma N(0, 1)) or 'gaussian' (both factors gamma N(0, 1))."""
    init_scale: float = 1e-3
    """gamma, the scale of the Gaussian factor(s) at init."""
    lr_spectral: float = 0.01
    """Step size of SpecGD and Muon."""
    lr_gd: float = 0.01
    """Step size of gradient descent."""
    lr_adam: float = 0.002
    """Step size of Adam."""
    steps: int = 1500
    """Steps of every factorization run."""
    momentum: float = 0.95
    """Muon momentum."""
    ns_steps: int = 5
    """Muon Newton-Schulz iterations."""
    muon_shape_scale: bool = False
    """Scale Muon's update by sqrt(max(1, rows/cols)) as the reference code does."""
    smoothing_beta: float = 1e-4
    """Smoothing of the orthogonalization in the convergence runs (s -> s/sqrt(s^2+beta))."""
    l2_reg: float = 0.5
    """lambda of the regularized run; its minimum is the soft-thresholded target."""
    lr_decay_at: float = 0.5
    """Fraction of the run after which the convergence runs use lr / 10."""
    equal_rate_steps: tuple[int, ...] = (50, 100, 150)
    """Steps at which the spread of sqrt(s_i) over active modes is measured."""
    reg_d: int = 64
    """Input and output size of the LoRA-regression analog."""
    reg_rank: int = 8
    """LoRA rank of the regression analog."""
    reg_batch: int = 32
    """Mini-batch size of the regression analog."""
    reg_steps: int = 50
    """Steps of the regression analog."""
    reg_lr_muon: float = 2e-3
    """Muon step size in the regression analog."""
    reg_lr_adamw: float = 5e-4
    """AdamW step size in the regression analog."""
    reg_lr_sgd: float = 0.5
    """SGD step size in the regression analog."""
    reg_check_step: int = 20
    """Step at which the flatness sigma_k/sigma_1 is compared."""
    seed: int = 1
    """Seed of the initializations and the regression data."""

    def __post_init__(self):
        for name in ("m", "n", "lora_rank", "extra_rank", "steps", "ns_steps", "reg_d",
                     "reg_rank", "reg_batch", "reg_steps"):
            check_scalar(getattr(self, name), name, numbers.Integral, min_val=1)
        for name in ("target_seed", "seed", "reg_check_step"):
            check_scalar(getattr(self, name), name, numbers.Integral, min_val=0)
        for name in ("init_scale", "lr_spectral", "lr_gd", "lr_adam", "reg_lr_muon",
                     "reg_lr_adamw", "reg_lr_sgd"):
            check_scalar(getattr(self, name), name, numbers.Real, min_val=0.0,
                         include_boundaries="neither")
        check_scalar(self.momentum, "momentum", numbers.Real, min_val=0.0, max_val=1.0,
                     include_boundaries="left")
        check_scalar(self.muon_shape_scale, "muon_shape_scale", bool)
        if self.init not in ("lora", "gaussian"):
            raise ValueError(f"init == {self.init!r}, must be one of ('lora', 'gaussian').")
        check_scalar(self.smoothing_beta, "smoothing_beta", numbers.Real, min_val=0.0)
        check_scalar(self.l2_reg, "l2_reg", numbers.Real, min_val=0.0)
        check_scalar(self.lr_decay_at, "lr_decay_at", numbers.Real, min_val=0.0, max_val=1.0,
                     include_boundaries="neither")
        targets = tuple(self.target_singular_values)
        if not targets or any(
            not isinstance(t, numbers.Real) or isinstance(t, bool) or not t > 0 for t in targets
        ):
            raise ValueError(
                f"target_singular_values == {targets!r}, must be a non-empty tuple of numbers > 0."
            )
        if len(set(targets)) != len(targets):
            raise ValueError(
                f"target_singular_values == {targets!r}, must be distinct (modes are ordered)."
            )
        r = len(targets)
        if r > min(self.m, self.n):
            raise ValueError(f"len(target_singular_values) == {r}, must be <= min(m, n).")
        if self.lora_rank < r:
            raise ValueError(f"lora_rank == {self.lora_rank}, must be >= {r} (the target rank).")
        if self.extra_rank < r or self.extra_rank > min(self.m, self.n):
            raise ValueError(
                f"extra_rank == {self.extra_rank}, must be in [{r}, {min(self.m, self.n)}]."
            )
        if self.reg_rank > self.reg_d:
            raise ValueError(f"reg_rank == {self.reg_rank}, must be <= reg_d == {self.reg_d}.")
        if self.reg_check_step > self.reg_steps:
            raise ValueError(
                f"reg_check_step == {self.reg_check_step}, must be <= reg_steps == "
                f"{self.reg_steps}."
            )
        if not self.equal_rate_steps or any(
            not isinstance(s, numbers.Integral) or isinstance(s, bool)
            for s in self.equal_rate_steps
        ):
            raise TypeError(
                f"equal_rate_steps == {self.equal_rate_steps!r}, must be a non-empty tuple of "
                "ints."
            )
        if max(self.equal_rate_steps, default=0) > self.steps or any(
            s < 1 for s in self.equal_rate_steps
        ):
            raise ValueError(
                f"equal_rate_steps == {self.equal_rate_steps!r}, must lie in [1, steps]."
            )
        check_finite_fields(self)

    @property
    def targets(self) -> np.ndarray:
        """Target singular values, sorted descending, shape (r,)."""
        return np.sort(np.asarray(self.target_singular_values, dtype=np.float64))[::-1]

    @property
    def shrunk_targets(self) -> np.ndarray:
        """Minimizer's singular values under l2 regularization, (y - lambda)_+, shape (r,)."""
        return np.maximum(self.targets - self.l2_reg, 0.0)


@dataclass
class FactorizationRun:
    """Trajectory of one factorization run (recorded at every step 0..steps).

    Attributes:
        optimizer: Optimizer name.
        lr: Initial step size.
        loss: Objective (with the l2 term if any), shape (T + 1,).
        sv_product: Singular values of A B, descending, shape (T + 1, k).
        mode_values: ``u_i^T A B v_i`` along the target's singular pairs, shape (T + 1, r),
            modes in descending target order.
        sv_a: Singular values of A, shape (k,), at the end.
        sv_b: Singular values of B, shape (k,), at the end.
        hit_step: First step with ``mode_values[:, i] >= 0.95 * target_i``, shape (r,);
            -1 if never reached.
        l2_reg: The lambda used.
    """

    optimizer: str
    lr: float
    loss: np.ndarray
    sv_product: np.ndarray
    mode_values: np.ndarray
    sv_a: np.ndarray
    sv_b: np.ndarray
    hit_step: np.ndarray
    l2_reg: float = 0.0


@dataclass
class RegressionRun:
    """Trajectory of the LoRA linear-regression analog.

    Attributes:
        optimizer: Optimizer name.
        loss: Mini-batch loss, shape (T,).
        sv_delta: Singular values of the LoRA product B A, shape (T + 1, k).
        flatness: ``sigma_k / sigma_1`` of B A, shape (T + 1,) (0 while B A == 0).
    """

    optimizer: str
    loss: np.ndarray
    sv_delta: np.ndarray
    flatness: np.ndarray


@dataclass
class Result:
    """Output of :func:`run`.

    Attributes:
        config: The config used.
        targets: Target singular values, descending, shape (r,).
        runs: Factorization runs by key: ``specgd``, ``muon``, ``gd``, ``adam`` (plain),
            ``specgd_extra_rank``, ``specgd_converge`` (smoothed, decayed lr) and
            ``specgd_l2`` (regularized).
        regression: LoRA-regression runs by optimizer (``muon``, ``adamw``, ``sgd``).
    """

    config: Config
    targets: np.ndarray
    runs: dict[str, FactorizationRun] = field(default_factory=dict)
    regression: dict[str, RegressionRun] = field(default_factory=dict)


def _haar(rows: int, cols: int, gen: torch.Generator) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(rows, cols, generator=gen, dtype=_F64))
    return q * torch.sign(torch.diagonal(r)).unsqueeze(0)


def make_target(config: Config) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Build ``Y = U diag(y) V^T`` with Haar-random orthonormal U, V.

    Args:
        config: The study config (``m``, ``n``, ``target_singular_values``, ``target_seed``).

    Returns:
        ``(Y, U, V)`` with shapes (m, n), (m, r), (n, r); columns in descending target order.
    """
    gen = torch.Generator().manual_seed(config.target_seed)
    r = len(config.target_singular_values)
    u = _haar(config.m, r, gen)
    v = _haar(config.n, r, gen)
    y = torch.as_tensor(config.targets.copy(), dtype=_F64)
    return (u * y) @ v.T, u, v


def _make_optimizer(name: str, params, lr: float, config: Config, *, beta: float = 0.0):
    if name == "specgd":
        return SpecGD(params, lr=lr, beta=beta)
    if name == "muon":
        return Muon(params, lr=lr, momentum=config.momentum, ns_steps=config.ns_steps,
                    shape_scale=config.muon_shape_scale)
    if name in ("gd", "sgd"):
        return torch.optim.SGD(params, lr=lr)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-8)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    raise ValueError(f"optimizer == {name!r}, must be one of {_OPTIMIZERS}.")


@torch_threads(1)
def train_factorization(
    config: Config,
    optimizer: str,
    *,
    lr: float,
    rank: int | None = None,
    l2_reg: float = 0.0,
    beta: float = 0.0,
    decay_at: float | None = None,
) -> FactorizationRun:
    """Train ``A B ~ Y`` from ``config.init`` and record the spectrum at every step.

    Torch runs single-threaded inside (the matrices are small; intra-op threads only add
    contention).

    Args:
        config: Study config (target, sizes, ``steps``, ``init_scale``, ``seed``).
        optimizer: One of ``specgd``, ``muon``, ``gd``, ``adam``.
        lr: Step size, > 0.
        rank: Inner dimension k (default ``config.lora_rank``).
        l2_reg: lambda >= 0 of the penalty ``lambda/2 (||A||^2 + ||B||^2)``.
        beta: SpecGD smoothing, >= 0.
        decay_at: Fraction of the run after which the step size is divided by 10, or None.

    Returns:
        A :class:`FactorizationRun`.
    """
    check_scalar(lr, "lr", numbers.Real, min_val=0.0, include_boundaries="neither")
    k = config.lora_rank if rank is None else rank
    target, u, v = make_target(config)
    gen = torch.Generator().manual_seed(config.seed)
    b0 = config.init_scale * torch.randn(k, config.n, generator=gen, dtype=_F64)
    if config.init == "lora":
        a0 = torch.zeros(config.m, k, dtype=_F64)
    else:
        a0 = config.init_scale * torch.randn(config.m, k, generator=gen, dtype=_F64)
    a = torch.nn.Parameter(a0)
    b = torch.nn.Parameter(b0)
    opt = _make_optimizer(optimizer, [a, b], lr, config, beta=beta)
    steps = config.steps
    decay_step = None if decay_at is None else int(round(decay_at * steps))
    r = len(config.target_singular_values)
    loss = np.empty(steps + 1)
    sv = np.empty((steps + 1, k))
    modes = np.empty((steps + 1, r))
    for t in range(steps + 1):
        with torch.no_grad():
            prod = a @ b
            resid = prod - target
            value = 0.5 * (resid * resid).sum()
            if l2_reg:
                value = value + 0.5 * l2_reg * ((a * a).sum() + (b * b).sum())
            loss[t] = float(value)
            sv[t] = torch.linalg.svdvals(prod)[:k].numpy()
            modes[t] = torch.einsum("mi,mn,ni->i", u, prod, v).numpy()
            if t == steps:
                break
            if decay_step is not None and t == decay_step:
                for group in opt.param_groups:
                    group["lr"] = lr * 0.1
            a.grad = resid @ b.T + l2_reg * a
            b.grad = a.T @ resid + l2_reg * b
        opt.step()
    hit = _first_hits(modes, 0.95 * config.targets)
    with torch.no_grad():
        sv_a = torch.linalg.svdvals(a).numpy()
        sv_b = torch.linalg.svdvals(b).numpy()
    return FactorizationRun(optimizer=optimizer, lr=float(lr), loss=loss, sv_product=sv,
                            mode_values=modes, sv_a=sv_a, sv_b=sv_b, hit_step=hit,
                            l2_reg=float(l2_reg))


def _first_hits(values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    reached = values >= levels[None, :]
    first = np.argmax(reached, axis=0)
    return np.where(reached.any(axis=0), first, -1).astype(np.int64)


@torch_threads(1)
def train_lora_regression(config: Config, optimizer: str, *, lr: float) -> RegressionRun:
    """LoRA on linear regression: learn ``B A ~ W*`` from mini-batches ``(x, W* x)``.

    The teacher ``W*`` (``reg_d`` x ``reg_d``) has singular values ``1/i``; ``A0`` is Gaussian with
    variance ``1/reg_d`` and ``B0 = 0``.

    Args:
        config: Study config (``reg_*`` fields and ``seed``).
        optimizer: ``muon``, ``adamw`` or ``sgd``.
        lr: Step size, > 0.

    Returns:
        A :class:`RegressionRun`.
    """
    check_scalar(lr, "lr", numbers.Real, min_val=0.0, include_boundaries="neither")
    d, k = config.reg_d, config.reg_rank
    gen = torch.Generator().manual_seed(config.seed + 1000)
    teacher_u = _haar(d, d, gen)
    teacher_v = _haar(d, d, gen)
    spectrum = 1.0 / torch.arange(1, d + 1, dtype=_F64)
    teacher = (teacher_u * spectrum) @ teacher_v.T
    a = torch.nn.Parameter(torch.randn(k, d, generator=gen, dtype=_F64) / d**0.5)
    b = torch.nn.Parameter(torch.zeros(d, k, dtype=_F64))
    opt = _make_optimizer(optimizer, [a, b], lr, config)
    data_gen = torch.Generator().manual_seed(config.seed + 2000)
    steps = config.reg_steps
    losses = np.empty(steps)
    sv = np.empty((steps + 1, k))
    for t in range(steps + 1):
        with torch.no_grad():
            sv[t] = torch.linalg.svdvals(b @ a)[:k].numpy()
        if t == steps:
            break
        x = torch.randn(config.reg_batch, d, generator=data_gen, dtype=_F64)
        opt.zero_grad()
        pred = x @ (b @ a).T
        batch_loss = 0.5 * ((pred - x @ teacher.T) ** 2).sum(dim=1).mean()
        batch_loss.backward()
        opt.step()
        losses[t] = float(batch_loss.detach())
    with np.errstate(invalid="ignore", divide="ignore"):
        flat = np.where(sv[:, 0] > 0, sv[:, -1] / np.where(sv[:, 0] > 0, sv[:, 0], 1.0), 0.0)
    return RegressionRun(optimizer=optimizer, loss=losses, sv_delta=sv, flatness=flat)


def run(config: Config | None = None) -> Result:
    """Run every factorization and regression experiment of the study.

    Args:
        config: The study config (defaults if None).

    Returns:
        A :class:`Result` with all trajectories.
    """
    config = study_config(config, Config)
    result = Result(config=config, targets=config.targets)
    with torch_threads(1):
        for name, lr in (("specgd", config.lr_spectral), ("muon", config.lr_spectral),
                         ("gd", config.lr_gd), ("adam", config.lr_adam)):
            result.runs[name] = train_factorization(config, name, lr=lr)
        result.runs["specgd_extra_rank"] = train_factorization(
            config, "specgd", lr=config.lr_spectral, rank=config.extra_rank)
        result.runs["specgd_converge"] = train_factorization(
            config, "specgd", lr=config.lr_spectral, beta=config.smoothing_beta,
            decay_at=config.lr_decay_at)
        result.runs["specgd_l2"] = train_factorization(
            config, "specgd", lr=config.lr_spectral, beta=config.smoothing_beta,
            decay_at=config.lr_decay_at, l2_reg=config.l2_reg)
        for name, lr in (("muon", config.reg_lr_muon), ("adamw", config.reg_lr_adamw),
                         ("sgd", config.reg_lr_sgd)):
            result.regression[name] = train_lora_regression(config, name, lr=lr)
    return result


def _equal_rate_spread(run_: FactorizationRun, targets: np.ndarray, step: int) -> float:
    values = run_.mode_values[step]
    active = values < 0.95 * targets
    if active.sum() < 2:
        return 0.0
    roots = np.sqrt(np.maximum(values[active], 0.0))
    return float(roots.max() - roots.min())


def _strictly(seq: np.ndarray, increasing: bool) -> bool:
    seq = np.asarray(seq)
    if np.any(seq < 0):
        return False
    diffs = np.diff(seq)
    return bool(np.all(diffs > 0) if increasing else np.all(diffs < 0))


def claims(result: Result) -> list[Claim]:
    """Evaluate the paper's predictions on a run.

    Args:
        result: Output of :func:`run`.

    Returns:
        The list of claims (thresholds from the spec's calibration runs).
    """
    cfg = result.config
    y = result.targets  # descending
    runs = result.runs
    out: list[Claim] = []
    spreads = [_equal_rate_spread(runs["specgd"], y, s) for s in cfg.equal_rate_steps]
    out.append(Claim(
        "specgd_equal_rate",
        f"SpecGD: max-min of sqrt(s_i) over active modes <= 0.02 at steps {cfg.equal_rate_steps}",
        np.array(spreads), max(spreads) <= 0.02))
    # hit steps listed in ascending target order
    for name in ("specgd", "muon"):
        hits = runs[name].hit_step[::-1]
        out.append(Claim(
            f"{name}_smallest_first",
            "steps to 95% of target strictly increase with the target (ascending targets)",
            hits, _strictly(hits, increasing=True)))
    for name in ("gd", "adam"):
        hits = runs[name].hit_step[::-1]
        out.append(Claim(
            f"{name}_largest_first",
            "contrast: steps to 95% of target strictly decrease with the target",
            hits, _strictly(hits, increasing=False)))
    predicted = np.sqrt(y) / cfg.lr_spectral
    hits = runs["specgd"].hit_step
    rel = np.abs(hits - predicted) / predicted
    out.append(Claim(
        "specgd_hit_time_sqrt_target",
        "SpecGD steps to 95% of y_i within 5% of sqrt(y_i)/lr",
        rel[::-1], bool(np.all(hits >= 0) and np.all(rel <= 0.05))))
    final = runs["specgd"].mode_values[-1]
    err = float(np.max(np.abs(final - y) / y))
    out.append(Claim(
        "specgd_converges_constant_lr",
        "exact-polar SpecGD at constant lr: max relative error of s_i <= 5%", err, err <= 0.05))
    final = runs["specgd_converge"].mode_values[-1]
    err = float(np.max(np.abs(final - y) / y))
    out.append(Claim(
        "specgd_converges_smoothed",
        "smoothed SpecGD with lr/10 decay: max relative error of s_i <= 0.5%", err, err <= 0.005))
    shrunk = cfg.shrunk_targets
    sv = runs["specgd_l2"].sv_product[-1]
    full = np.zeros_like(sv)
    full[: len(shrunk)] = shrunk
    err = float(np.max(np.abs(sv - full)))
    out.append(Claim(
        "l2_soft_threshold",
        f"with lambda={cfg.l2_reg}: singular values of AB within 1e-2 of (y - lambda)_+",
        err, err <= 1e-2))
    extra = runs["specgd_extra_rank"].sv_product[:, len(y):]
    extra_max = float(extra.max()) if extra.size else 0.0
    out.append(Claim(
        "no_spurious_rank",
        f"k={cfg.extra_rank} > r={len(y)}: extra singular values of AB stay < 1e-6",
        extra_max, extra_max < 1e-6))
    finals = np.array([runs[n].loss[-1] for n in ("specgd", "muon", "gd", "adam")])
    out.append(Claim(
        "all_converge",
        "final loss < 1e-2 for SpecGD, Muon, GD, Adam (no regularization)",
        finals, bool(np.all(finals < 1e-2))))
    step = cfg.reg_check_step
    muon_flat = float(result.regression["muon"].flatness[step])
    adamw_flat = float(result.regression["adamw"].flatness[step])
    out.append(Claim(
        "lora_regression_flat_spectrum",
        f"LoRA regression: sigma_k/sigma_1 of BA at step {step}, Muon >= 3x AdamW",
        f"muon {muon_flat:.3f}, adamw {adamw_flat:.3f}", muon_flat >= 3 * adamw_flat))
    return out


def plot(result: Result) -> dict:
    """Figures of the study.

    Args:
        result: Output of :func:`run`.

    Returns:
        ``{"headline": singular values of AB vs step for SpecGD, Muon, GD and Adam,
        "sqrt_growth": sqrt(s_i) vs step for SpecGD with the line lr*step,
        "regression": flatness of the LoRA-regression spectrum}``.
    """
    plt, sns = plotting_modules()

    sns.set_theme(style="whitegrid", context="paper")
    cfg = result.config
    y = result.targets
    colors = sns.color_palette("viridis", len(y))
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.4), sharey=True)
    titles = {"specgd": f"SpecGD (lr {cfg.lr_spectral})", "muon": f"Muon (lr {cfg.lr_spectral})",
              "gd": f"GD (lr {cfg.lr_gd})", "adam": f"Adam (lr {cfg.lr_adam})"}
    for ax, name in zip(axes, titles):
        run_ = result.runs[name]
        steps = np.arange(run_.mode_values.shape[0])
        for i in range(len(y)):
            ax.plot(steps, run_.mode_values[:, i], color=colors[i], lw=1.5,
                    label=f"y={y[i]:g}")
            ax.axhline(y[i], color=colors[i], ls="--", lw=0.7)
            if run_.hit_step[i] >= 0:
                ax.plot(run_.hit_step[i], run_.mode_values[run_.hit_step[i], i], "o",
                        color=colors[i], ms=3)
        ax.set_title(titles[name])
        ax.set_xlabel("step")
    axes[0].set_ylabel(r"$u_i^\top AB\, v_i$")
    axes[-1].legend(fontsize=7, loc="center right")
    fig.suptitle("LoRA-style factorization: orthogonalized updates learn small targets first")
    fig.tight_layout()

    fig2, ax2 = plt.subplots(figsize=(5, 3.4))
    run_ = result.runs["specgd"]
    steps = np.arange(run_.mode_values.shape[0])
    for i in range(len(y)):
        ax2.plot(steps, np.sqrt(np.maximum(run_.mode_values[:, i], 0)), color=colors[i],
                 label=f"y={y[i]:g}")
    ax2.plot(steps, cfg.lr_spectral * steps, "k:", lw=1, label="lr * step")
    ax2.set_ylim(0, np.sqrt(y.max()) * 1.15)
    ax2.set_xlabel("step")
    ax2.set_ylabel(r"$\sqrt{s_i}$")
    ax2.set_title("SpecGD: equal-rate growth of sqrt(singular values)")
    ax2.legend(fontsize=7)
    fig2.tight_layout()

    fig3, ax3 = plt.subplots(figsize=(5, 3.4))
    for name, reg in result.regression.items():
        ax3.plot(np.arange(len(reg.flatness)), reg.flatness, label=name)
    ax3.axvline(cfg.reg_check_step, color="grey", ls=":", lw=1)
    ax3.set_xlabel("step")
    ax3.set_ylabel(r"$\sigma_k/\sigma_1$ of $BA$")
    ax3.set_title("LoRA regression: flatness of the learned spectrum")
    ax3.legend()
    fig3.tight_layout()
    return {"headline": fig, "sqrt_growth": fig2, "regression": fig3}


