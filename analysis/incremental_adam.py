"""Implicit bias of incremental (per-sample) Adam on separable data.

Logistic regression on linearly separable data (labels absorbed, rows ``z_i = y_i x_i``) trained
by the stock ``torch.optim.Adam`` (``eps=0``) fed one sample per step in a fixed cyclic order
(Inc-Adam), a reshuffled order, with replacement, in mini-batches, or on the full batch
(Det-Adam); by :class:`rlhf_gbpm.analysis.optimizers.Signum`; and by the beta2 -> 1 limit
algorithm AdamProxy, ``w <- w - eta_t grad L(w) / sqrt(sum_i grad L_i(w)^2)`` (coordinatewise,
with ``L = sum_i L_i``; the mean loss would only rescale eta by a constant).
All runs of one optimizer on one dataset share a batched parameter of shape (R, d); step sizes
decay as ``eta_t = lr0 (t + 2)^(-a)``.

Numerics: with ``eps = 0`` Adam and sign updates are invariant to a common positive rescaling
of the gradients, so each run's gradient is divided by its largest per-sample loss derivative
(computed in the log domain) and the optimizer buffers are rescaled by the same factor; this
avoids the 0/0 that plain float64 gradients reach once margins pass ~700. torch's Adam always
applies bias correction; with ``eps = 0`` it only rescales the first ~1/(1 - beta2) steps.

References directions: the l2 and l-infinity max-margin separators, and the fixed point of the
data-adaptive Mahalanobis max-margin map (:func:`adam_proxy_fixed_point`), a reconstruction of
the paper's AdamProxy limit that this study checks numerically.
"""

from __future__ import annotations

import logging
import numbers
from dataclasses import dataclass, field

import numpy as np
import torch

from rlhf_gbpm._validation import check_array, check_scalar
from rlhf_gbpm.analysis._framework import (
    Claim,
    check_finite_fields,
    plotting_modules,
    study_config,
    torch_threads,
)
from rlhf_gbpm.analysis._losses import check_loss, log_neg_dloss
from rlhf_gbpm.analysis._maxmargin import cosine, max_margin, normalized_margin
from rlhf_gbpm.analysis.optimizers.signum import Signum

__all__ = [
    "NAME",
    "DESCRIPTION",
    "REFERENCE",
    "Config",
    "FixedPoint",
    "DatasetResult",
    "Result",
    "adam_proxy_fixed_point",
    "gr_dataset",
    "gaussian_dataset",
    "run",
    "plot",
    "claims",
]

logger = logging.getLogger(__name__)

NAME = "incremental_adam"
DESCRIPTION = "Per-sample Adam leaves the full-batch l-inf bias: Mahalanobis / l2 max margin."
REFERENCE = (
    "B. Baek, M. Song, C. Yun, 'Implicit Bias of Per-sample Adam on Separable Data: Departure "
    "from the Full-batch Regime', ICLR 2026, arXiv:2510.26303"
)

DATASETS: tuple[str, ...] = ("gaussian", "gr")

_GR_SCALE = (1.297, 1.240, 1.746, 1.217, 1.756, 1.875, 0.609, 1.484)
_GR_SIGNS = ("+--++", "+++++", "+--++", "+-++-", "+-+++", "+--++", "++++-", "--+++")


def gr_dataset() -> np.ndarray:
    """The generalized-Rademacher dataset of the spec: ``|z_i[k]| = a_i`` for every k.

    Returns:
        Label-absorbed rows, shape (8, 5).
    """
    signs = np.array([[1.0 if ch == "+" else -1.0 for ch in row] for row in _GR_SIGNS])
    return np.asarray(_GR_SCALE)[:, None] * signs


def gaussian_dataset(n: int, d: int, seed) -> np.ndarray:
    """Gaussian rows with random labels, ``z_i = y_i x_i``, ``x_i ~ N(0, I_d)``.

    Args:
        n: Number of samples.
        d: Dimension (separable almost surely when d >= n).
        seed: Seed of the data generator.

    Returns:
        Label-absorbed rows, shape (n, d).
    """
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.where(rng.normal(size=n) >= 0, 1.0, -1.0)
    return y[:, None] * X


@dataclass(frozen=True)
class FixedPoint:
    """The AdamProxy fixed point ``c* = T(c*)`` and its Mahalanobis max-margin direction.

    Attributes:
        c: Normalized dual weights, shape (n,), non-negative, summing to 1.
        metric: Diagonal of ``M(c*) = diag(sqrt(sum_i c_i^2 z_i^2))``, shape (d,).
        w: The M(c*)-norm max-margin separator, shape (d,).
        nit: Iterations used.
        converged: Whether the damped iteration met its tolerance.
    """

    c: np.ndarray
    metric: np.ndarray
    w: np.ndarray
    nit: int
    converged: bool


def adam_proxy_fixed_point(Z, *, damping: float = 0.5, tol: float = 1e-10,
                           max_iter: int = 1000) -> FixedPoint:
    """Fixed point of the data-adaptive Mahalanobis max-margin map (AdamProxy's limit).

    ``T(c)`` is the normalized dual of ``min w^T M(c) w s.t. Z w >= 1`` with
    ``M(c) = diag(sqrt(sum_i c_i^2 z_i^2))``; iterate ``c <- (1 - damping) c + damping T(c)``
    from the normalized l2 dual.

    Args:
        Z: Separable label-absorbed rows, shape (n, d).
        damping: Step of the damped iteration, in (0, 1].
        tol: Stop when ``max |T(c) - c| < tol``.
        max_iter: Iteration cap.

    Returns:
        A :class:`FixedPoint`.

    Raises:
        ValueError: If ``Z`` is not separable or an argument is out of range.
    """
    Z = check_array(Z, "Z", shape=("n", "d"))
    check_scalar(damping, "damping", numbers.Real, min_val=0.0, max_val=1.0,
                 include_boundaries="right")
    check_scalar(max_iter, "max_iter", numbers.Integral, min_val=1)
    base = max_margin(Z, "l2")
    if not base.success:
        raise ValueError("Z must be linearly separable.")
    c = base.dual / base.dual.sum()
    floor = 1e-12 * np.abs(Z).max()
    res, converged, it = base, False, 0
    for it in range(1, max_iter + 1):  # noqa: B007 - it is reported
        metric = np.maximum(np.sqrt((c[:, None] ** 2 * Z**2).sum(0)), floor)
        res = max_margin(Z, "mahalanobis", metric=metric)
        new = res.dual / res.dual.sum()
        step = np.max(np.abs(new - c))
        c = (1 - damping) * c + damping * new
        if step < tol:
            converged = True
            break
    metric = np.maximum(np.sqrt((c[:, None] ** 2 * Z**2).sum(0)), floor)
    res = max_margin(Z, "mahalanobis", metric=metric)
    return FixedPoint(c=c, metric=metric, w=res.w, nit=it, converged=converged)


@dataclass(frozen=True)
class Config:
    """Configuration of the incremental-Adam study (CPU-cheap defaults)."""

    datasets: tuple[str, ...] = ("gaussian", "gr")
    """Datasets to run: "gaussian" (n x d, random labels) and/or "gr" (the spec's 8 x 5)."""
    n: int = 10
    """Gaussian dataset: number of samples."""
    d: int = 50
    """Gaussian dataset: dimension (use d > n to separate the three reference directions)."""
    data_seed: int = 1
    """Gaussian dataset: seed."""
    loss: str = "logistic"
    """Loss: "logistic" or "exponential"."""
    steps: int = 20_000
    """Number of optimizer steps per run (one step = one mini-batch)."""
    lr0_gaussian: float = 0.03
    """Initial step size on the Gaussian dataset."""
    lr0_gr: float = 0.1
    """Initial step size on the GR dataset."""
    lr_decay_power: float = 0.5
    """a in eta_t = lr0 (t + 2)^(-a), in (0, 1]."""
    beta1: float = 0.9
    """Adam's first-moment factor."""
    beta2: float = 0.999
    """Adam's second-moment factor (>= beta1)."""
    signum_momentum: float = 0.99
    """Signum's momentum factor."""
    batch_sizes: tuple[int, ...] = (1, 2, 5)
    """Reshuffled mini-batch sizes for Adam (the full batch is always run too)."""
    record_every: int = 200
    """Record the iterates every this many steps."""
    seed: int = 0
    """Seed of the data orders (reshuffling, sampling with replacement)."""

    def __post_init__(self):
        if not isinstance(self.datasets, tuple) or not self.datasets:
            raise TypeError("datasets must be a non-empty tuple of names.")
        for name in self.datasets:
            if name not in DATASETS:
                raise ValueError(f"datasets entry {name!r} must be one of {DATASETS}.")
        check_scalar(self.n, "n", numbers.Integral, min_val=1)
        check_scalar(self.d, "d", numbers.Integral, min_val=1)
        check_scalar(self.data_seed, "data_seed", numbers.Integral, min_val=0)
        check_loss(self.loss)
        check_scalar(self.steps, "steps", numbers.Integral, min_val=1)
        for name in ("lr0_gaussian", "lr0_gr"):
            check_scalar(getattr(self, name), name, numbers.Real, min_val=0.0,
                         include_boundaries="neither")
        check_scalar(self.lr_decay_power, "lr_decay_power", numbers.Real, min_val=0.0,
                     max_val=1.0, include_boundaries="right")
        check_scalar(self.beta1, "beta1", numbers.Real, min_val=0.0, max_val=1.0,
                     include_boundaries="left")
        check_scalar(self.beta2, "beta2", numbers.Real, min_val=0.0, max_val=1.0,
                     include_boundaries="left")
        if self.beta1 > self.beta2:
            raise ValueError(f"beta1 == {self.beta1}, must be <= beta2 == {self.beta2}.")
        check_scalar(self.signum_momentum, "signum_momentum", numbers.Real, min_val=0.0,
                     max_val=1.0, include_boundaries="left")
        if not isinstance(self.batch_sizes, tuple) or not self.batch_sizes:
            raise TypeError("batch_sizes must be a non-empty tuple of ints.")
        for b in self.batch_sizes:
            check_scalar(b, "batch_sizes", numbers.Integral, min_val=1)
        if "gaussian" in self.datasets and max(self.batch_sizes) > self.n:
            raise ValueError(
                f"batch_sizes entry {max(self.batch_sizes)} must be <= n == {self.n}.")
        if "gr" in self.datasets and max(self.batch_sizes) > len(_GR_SCALE):
            raise ValueError(
                f"batch_sizes entry {max(self.batch_sizes)} must be <= {len(_GR_SCALE)} "
                "(the GR dataset size).")
        check_scalar(self.record_every, "record_every", numbers.Integral, min_val=1)
        check_scalar(self.seed, "seed", numbers.Integral, min_val=0)
        check_finite_fields(self)

    def lr0(self, dataset: str) -> float:
        """Initial step size of a dataset."""
        return self.lr0_gaussian if dataset == "gaussian" else self.lr0_gr

    def data(self, dataset: str) -> np.ndarray:
        """Label-absorbed rows of a dataset, shape (n, d)."""
        if dataset == "gaussian":
            return gaussian_dataset(self.n, self.d, self.data_seed)
        return gr_dataset()


@dataclass(frozen=True)
class RunSpec:
    """One run: optimizer ("adam", "signum", "proxy"), order and batch size."""

    optimizer: str
    order: str
    batch_size: int

    @property
    def label(self) -> str:
        """Short name, e.g. ``"adam/cyclic/b1"``."""
        return f"{self.optimizer}/{self.order}/b{self.batch_size}"


def _run_specs(cfg: Config, n: int) -> list[RunSpec]:
    specs = [RunSpec("adam", "cyclic", 1), RunSpec("adam", "replace", 1)]
    specs += [RunSpec("adam", "shuffle", b) for b in cfg.batch_sizes if b < n]
    specs += [RunSpec("adam", "full", n), RunSpec("signum", "cyclic", 1),
              RunSpec("signum", "full", n), RunSpec("proxy", "full", n)]
    return specs


@dataclass
class DatasetResult:
    """Trajectories and references on one dataset.

    Attributes:
        name: Dataset name.
        Z: Label-absorbed rows, shape (n, d).
        runs: The runs, length R.
        t: Recorded steps, shape (n_log,).
        W: Iterates, shape (n_log, R, d).
        w_l2: l2 max-margin separator, shape (d,).
        w_linf: An l-infinity max-margin separator (an LP vertex), shape (d,).
        gamma_l2: l2 max margin.
        gamma_linf: l-infinity max margin.
        fixed_point: The AdamProxy fixed point.
    """

    name: str
    Z: np.ndarray
    runs: list[RunSpec]
    t: np.ndarray
    W: np.ndarray
    w_l2: np.ndarray
    w_linf: np.ndarray
    gamma_l2: float
    gamma_linf: float
    fixed_point: FixedPoint

    def index(self, label: str) -> int:
        """Run index of a label such as ``"adam/cyclic/b1"``."""
        return [r.label for r in self.runs].index(label)

    @property
    def cos_l2(self) -> np.ndarray:
        """Cosine to the l2 max-margin direction, shape (n_log, R)."""
        return cosine(self.W, self.w_l2)

    @property
    def cos_linf(self) -> np.ndarray:
        """Cosine to the l-infinity LP vertex (information only), shape (n_log, R)."""
        return cosine(self.W, self.w_linf)

    @property
    def cos_fp(self) -> np.ndarray:
        """Cosine to the AdamProxy fixed-point direction, shape (n_log, R)."""
        return cosine(self.W, self.fixed_point.w)

    @property
    def l2_ratio(self) -> np.ndarray:
        """Normalized l2 margin over the l2 max margin, shape (n_log, R)."""
        return normalized_margin(self.W, self.Z, "l2") / self.gamma_l2

    @property
    def linf_ratio(self) -> np.ndarray:
        """Normalized l-infinity margin over its maximum, shape (n_log, R)."""
        return normalized_margin(self.W, self.Z, "linf") / self.gamma_linf


@dataclass
class Result:
    """Output of :func:`run`: one :class:`DatasetResult` per dataset."""

    config: Config
    datasets: dict[str, DatasetResult] = field(default_factory=dict)


def _batch_masks(specs, n, steps, rng) -> np.ndarray:
    """Which samples each run uses at each step, bool of shape (steps, R, n)."""
    mask = np.zeros((steps, len(specs), n), dtype=bool)
    for r, spec in enumerate(specs):
        b = spec.batch_size
        if spec.order == "full":
            mask[:, r, :] = True
            continue
        if spec.order == "cyclic":
            idx = (np.arange(steps * b) % n).reshape(steps, b)
        elif spec.order == "replace":
            idx = rng.integers(0, n, size=(steps, b))
        else:  # reshuffle every epoch; a batch never straddles two epochs
            per_epoch = n // b
            epochs = -(-steps // per_epoch)
            perms = np.argsort(rng.random((epochs, n)), axis=1)[:, : per_epoch * b]
            idx = perms.reshape(epochs * per_epoch, b)[:steps]
        np.put_along_axis(mask[:, r, :], idx, True, axis=1)
    return mask


def _simulate(Z, specs, cfg: Config, lr0: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Run all specs on one dataset; returns recorded steps (n_log,) and iterates (n_log, R, d).

    All runs share one margin computation per step. Each run's gradient is divided by its
    largest per-sample loss derivative (``exp(scale)``, tracked in the log domain) and the
    optimizer buffers are multiplied by ``old scale / new scale``, which leaves Adam
    (``eps = 0``), Signum and AdamProxy unchanged while keeping every number near 1.
    """
    n, d = Z.shape
    kinds = np.array([s.optimizer for s in specs])
    ia, isg, ipx = (np.flatnonzero(kinds == k) for k in ("adam", "signum", "proxy"))
    order = np.concatenate([ia, isg, ipx])
    inverse = np.argsort(order)
    na, ns = len(ia), len(isg)
    mask = torch.as_tensor(_batch_masks(specs, n, cfg.steps, rng)[:, order])
    Zt = torch.as_tensor(Z, dtype=torch.float64)
    Zt_T = Zt.T.contiguous()
    Z2 = Zt**2
    neg_inf = torch.tensor(-np.inf, dtype=torch.float64)
    W_adam = torch.nn.Parameter(torch.zeros(na, d, dtype=torch.float64))
    W_sign = torch.nn.Parameter(torch.zeros(ns, d, dtype=torch.float64))
    W_proxy = torch.zeros(len(ipx), d, dtype=torch.float64)
    adam = torch.optim.Adam([W_adam], lr=lr0, betas=(cfg.beta1, cfg.beta2), eps=0.0)
    signum = Signum([W_sign], lr=lr0, momentum=cfg.signum_momentum)
    scale = torch.zeros(len(specs), dtype=torch.float64)
    ts, Ws = [0], [np.zeros((len(specs), d))]
    for t in range(cfg.steps):
        lr = lr0 * (t + 2) ** (-cfg.lr_decay_power)
        with torch.no_grad():
            W = torch.cat([W_adam, W_sign, W_proxy])
            log_w = torch.where(mask[t], log_neg_dloss(W @ Zt_T, cfg.loss), neg_inf)
            new_scale = log_w.max(dim=-1).values
            weights = torch.exp(log_w - new_scale[:, None])
            descent = weights @ Zt  # minus the rescaled mean-loss gradient
            ratio = torch.exp(scale - new_scale)[:, None]
            scale = new_scale
        if na:
            state = adam.state.get(W_adam)
            if state:
                state["exp_avg"].mul_(ratio[:na])
                state["exp_avg_sq"].mul_(ratio[:na] ** 2)
            W_adam.grad = -descent[:na]
            adam.param_groups[0]["lr"] = lr
            adam.step()
        if ns:
            state = signum.state.get(W_sign)
            if state:
                state["momentum_buffer"].mul_(ratio[na:na + ns])
            W_sign.grad = -descent[na:na + ns]
            signum.param_groups[0]["lr"] = lr
            signum.step()
        if len(ipx):  # AdamProxy: full gradient over the root of summed squared per-sample ones
            # a coordinate with no data has num == 0; the clamp turns its 0/0 into 0
            den = torch.sqrt(weights[na + ns:] ** 2 @ Z2).clamp_min_(1e-300)
            W_proxy.addcdiv_(descent[na + ns:], den, value=lr)
        if (t + 1) % cfg.record_every == 0 or t + 1 == cfg.steps:
            with torch.no_grad():
                W = torch.cat([W_adam, W_sign, W_proxy]).numpy()[inverse].copy()
            ts.append(t + 1)
            Ws.append(W)
    return np.asarray(ts), np.stack(Ws)


def run(config: Config | None = None) -> Result:
    """Run every optimizer on every configured dataset.

    Args:
        config: The study config (defaults if None).

    Returns:
        A :class:`Result`.
    """
    cfg = study_config(config, Config)
    out = Result(config=cfg)
    for k, name in enumerate(cfg.datasets):
        Z = cfg.data(name)
        l2 = max_margin(Z, "l2")
        linf = max_margin(Z, "linf")
        if not l2.success:
            raise ValueError(f"dataset {name!r} is not linearly separable.")
        fp = adam_proxy_fixed_point(Z)
        specs = _run_specs(cfg, Z.shape[0])
        with torch_threads(1):
            t, W = _simulate(Z, specs, cfg, cfg.lr0(name), np.random.default_rng((cfg.seed, k)))
        out.datasets[name] = DatasetResult(
            name=name, Z=Z, runs=specs, t=t, W=W, w_l2=l2.w, w_linf=linf.w,
            gamma_l2=l2.margin, gamma_linf=linf.margin, fixed_point=fp)
        logger.info("incremental_adam: %s done (%d runs)", name, len(specs))
    return out


def claims(result: Result) -> list[Claim]:
    """Evaluate the paper's predictions (spec section 5.4, a-h) on the final iterates.

    Args:
        result: Output of :func:`run`.

    Returns:
        The claims.
    """
    out: list[Claim] = []
    g = result.datasets.get("gaussian")
    if g is not None:
        fin = {r.label: i for i, r in enumerate(g.runs)}
        cfp, cl2, linf = g.cos_fp[-1], g.cos_l2[-1], g.linf_ratio[-1]
        inc, det = fin["adam/cyclic/b1"], fin[f"adam/full/b{g.Z.shape[0]}"]
        out.append(Claim(
            "fixed_point_distinct",
            "Gaussian: the fixed-point direction differs from l2 (cos < 0.99)",
            f"cos(w_fp, w_l2)={cosine(g.fixed_point.w, g.w_l2):.4f}, "
            f"cos(w_l2, w_linf)={cosine(g.w_l2, g.w_linf):.4f}",
            bool(cosine(g.fixed_point.w, g.w_l2) < 0.99 and g.fixed_point.converged)))
        out.append(Claim(
            "inc_adam_to_fixed_point",
            "Gaussian, Inc-Adam (cyclic, b=1): cos_fp >= 0.99 and cos_l2 <= 0.98",
            f"cos_fp={cfp[inc]:.4f}, cos_l2={cl2[inc]:.4f}",
            bool(cfp[inc] >= 0.99 and cl2[inc] <= 0.98)))
        px = fin[f"proxy/full/b{g.Z.shape[0]}"]
        out.append(Claim(
            "adam_proxy_to_fixed_point", "Gaussian, AdamProxy: cos_fp >= 0.999",
            cfp[px], bool(cfp[px] >= 0.999)))
        out.append(Claim(
            "det_adam_more_linf",
            "Gaussian: Det-Adam linf_ratio >= Inc-Adam linf_ratio + 0.2",
            f"Det {linf[det]:.3f} vs Inc {linf[inc]:.3f}",
            bool(linf[det] >= linf[inc] + 0.2)))
        sg = fin["signum/cyclic/b1"]
        out.append(Claim(
            "signum_linf_per_sample",
            "Gaussian, Signum (cyclic, b=1, momentum 0.99): linf_ratio >= 0.93",
            linf[sg], bool(linf[sg] >= 0.93)))
        sizes = sorted({r.batch_size for r in g.runs if r.optimizer == "adam"
                        and r.order in ("shuffle", "full")})
        idx = [fin[f"adam/shuffle/b{b}"] if b < g.Z.shape[0] else det for b in sizes]
        mono = (bool(np.all(np.diff(cfp[idx]) < 0)) and bool(np.all(np.diff(linf[idx]) > 0))
                and len(idx) >= 2)
        out.append(Claim(
            "batch_size_monotone",
            f"Gaussian, reshuffled Adam, b in {sizes}: cos_fp decreasing and linf_ratio "
            "increasing in b",
            "; ".join(f"b={b}: cos_fp={cfp[i]:.3f}, linf={linf[i]:.3f}"
                      for b, i in zip(sizes, idx)),
            mono))
    r = result.datasets.get("gr")
    if r is not None:
        fin = {s.label: i for i, s in enumerate(r.runs)}
        n = r.Z.shape[0]
        cl2, linf = r.cos_l2[-1], r.linf_ratio[-1]
        out.append(Claim(
            "gr_fixed_point_is_l2",
            "GR data: the fixed point is the l2 max-margin direction (cos > 0.9999)",
            cosine(r.fixed_point.w, r.w_l2), bool(cosine(r.fixed_point.w, r.w_l2) > 0.9999)))
        inc = [fin[k] for k in ("adam/cyclic/b1", "adam/shuffle/b1", "adam/replace/b1")
               if k in fin]
        out.append(Claim(
            "gr_inc_adam_to_l2",
            "GR: Inc-Adam (cyclic, shuffle, replace; b=1) cos_l2 >= 0.995",
            cl2[inc], bool(np.all(cl2[inc] >= 0.995))))
        det = fin[f"adam/full/b{n}"]
        out.append(Claim(
            "gr_det_adam_to_linf", "GR: Det-Adam linf_ratio >= 0.95 (and cos_l2 < 0.95)",
            f"linf_ratio={linf[det]:.4f}, cos_l2={cl2[det]:.4f}",
            bool(linf[det] >= 0.95 and cl2[det] < 0.95)))
        sg = fin["signum/cyclic/b1"]
        out.append(Claim(
            "gr_signum_linf", "GR: Signum (cyclic, b=1, momentum 0.99) linf_ratio >= 0.97",
            linf[sg], bool(linf[sg] >= 0.97)))
    return out


def plot(result: Result) -> dict:
    """Figures: cosines per algorithm (headline, Gaussian), linf ratios, GR, batch size.

    Args:
        result: Output of :func:`run`.

    Returns:
        Dict of matplotlib figures, ``"headline"`` first.
    """
    plt, sns = plotting_modules()

    palette = sns.color_palette("deep", 3)
    figs = {}
    for name, key in (("gaussian", "headline"), ("gr", "gr")):
        res = result.datasets.get(name)
        if res is None:
            continue
        n = res.Z.shape[0]
        panels = [("Det-Adam", f"adam/full/b{n}"), ("Inc-Adam (cyclic)", "adam/cyclic/b1"),
                  ("Adam, reshuffled b=1", "adam/shuffle/b1"),
                  ("AdamProxy", f"proxy/full/b{n}"), ("Signum (cyclic)", "signum/cyclic/b1")]
        fig, axes = plt.subplots(1, len(panels), figsize=(3.1 * len(panels), 3.2),
                                 sharey=True)
        t = np.maximum(res.t, 1)
        for ax, (title, label) in zip(axes, panels):
            i = res.index(label)
            ax.plot(t, res.cos_l2[:, i], color=palette[0], label="cos to l2 max-margin")
            ax.plot(t, res.linf_ratio[:, i], color=palette[1], label="l-inf margin ratio")
            ax.plot(t, res.cos_fp[:, i], color=palette[2], ls="--",
                    label="cos to fixed point")
            ax.set_xscale("log")
            ax.set_ylim(0.4, 1.01)
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("step")
        axes[0].set_ylabel(f"{name} data")
        axes[-1].legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        figs[key] = fig
    g = result.datasets.get("gaussian")
    if g is not None:
        n = g.Z.shape[0]
        sizes = sorted({r.batch_size for r in g.runs if r.optimizer == "adam"
                        and r.order in ("shuffle", "full")})
        labels = [f"adam/shuffle/b{b}" if b < n else f"adam/full/b{n}" for b in sizes]
        fig, ax = plt.subplots(figsize=(4.5, 3.4))
        ax.plot(sizes, [g.cos_fp[-1, g.index(lab)] for lab in labels], "o-",
                label="cos to fixed point")
        ax.plot(sizes, [g.linf_ratio[-1, g.index(lab)] for lab in labels], "s-",
                label="l-inf margin ratio")
        ax.set_xscale("log")
        ax.set_xlabel("batch size (reshuffled)")
        ax.set_title("Adam: batch size moves the bias")
        ax.legend()
        fig.tight_layout()
        figs["batch_size"] = fig
    return figs
