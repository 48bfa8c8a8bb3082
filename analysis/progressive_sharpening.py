"""Progressive sharpening and the edge of stability in a minimalist deep linear network.

The model has one neuron per layer, ``f(x) = (x^T u) * v_1 * ... * v_{D-1}``, trained on
``L = (1/2N) ||X u prod(v) - y||^2`` by GD or mini-batch SGD. Its sharpness (top Hessian
eigenvalue) rises during training to about ``sigma_1^2 Q^{(D-1)/D} / N``, where
``Q = ||X^+ y||^2`` is the dataset difficulty, and saturates just below ``2/lr`` when that
prediction exceeds the stability threshold (edge of stability). The final sharpness grows with
the number of samples and with depth, grows with the batch size and, for small batches, shrinks
as the step size grows (SGD raises the layer imbalance ``C = ||Pi u||^2 - v_1^2``).

Every sweep is simulated as one batch of independent runs (padded layers are frozen at 1,
padded samples get weight 0); the Hessian is assembled in closed form in the row space of the
data and diagonalized exactly, or, with ``sharpness_method="lanczos"``, estimated by Lanczos on
torch Hessian-vector products (one run at a time).

References:
    G. Yoo, M. Song, C. Yun, *Understanding Sharpness Dynamics in NN Training with a Minimalist
    Example: The Effects of Dataset Difficulty, Depth, Stochasticity, and More*, ICML 2025,
    arXiv:2506.06940.
"""

from __future__ import annotations

import numbers
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from rlhf_gbpm._validation import as_generator, check_scalar
from rlhf_gbpm.analysis._framework import Claim, check_finite_fields, plotting_modules, study_config
from rlhf_gbpm.analysis._hessian import sharpness as _hvp_sharpness
from rlhf_gbpm.errors import GBPMWarning

__all__ = [
    "NAME",
    "DESCRIPTION",
    "REFERENCE",
    "Config",
    "Dataset",
    "Sweep",
    "Result",
    "make_data",
    "closed_form_hessian",
    "simulate",
    "run",
    "plot",
    "claims",
]

NAME = "progressive_sharpening"
DESCRIPTION = (
    "Sharpness of a one-neuron-per-layer linear network: progressive sharpening to "
    "sigma_1^2 Q^((D-1)/D)/N, edge of stability at 2/lr, effects of N, depth, batch size, lr."
)
REFERENCE = (
    "Yoo, Song, Yun, Understanding Sharpness Dynamics in NN Training with a Minimalist Example, "
    "ICML 2025, arXiv:2506.06940"
)

_DATA = ("powerlaw", "gaussian")
_LABELS = ("random_sign", "teacher_sign")
_DTYPES = ("float64", "float32")
_METHODS = ("exact", "lanczos")


@dataclass(frozen=True)
class Config:
    """Configuration of the progressive-sharpening study (CPU-cheap defaults)."""

    d: int = 200
    """Input dimension."""
    data: str = "powerlaw"
    """Inputs: 'powerlaw' (x ~ N(0, diag(k^-alpha)), E||x||^2 = 1) or 'gaussian' (N(0, I/d))."""
    alpha: float = 1.0
    """Power-law exponent of the input covariance."""
    labels: str = "random_sign"
    """Labels: 'random_sign' (+-1 at random) or 'teacher_sign' (sign of a random linear map)."""
    data_seed: int = 0
    """Seed of the data; the sweeps over N use nested prefixes of one sample."""
    seed: int = 1
    """Seed of the initialization (independent of the data)."""
    sgd_seed: int = 0
    """Seed of the mini-batch draws."""
    init_u_scale: float = 1.0
    """Default init: u ~ N(0, init_u_scale^2 / d I)."""
    init_v: float = 1.0
    """Default init: every v_i = init_v."""
    balanced_scale: float = 0.5
    """Balanced init of the depth sweep: u in the row space with ||u|| = v_i = balanced_scale."""
    dtype: str = "float64"
    """Floating-point type of the dynamics: 'float64' or 'float32'."""
    sharpness_method: str = "exact"
    """'exact' (closed-form Hessian, eigvalsh) or 'lanczos' (torch HVPs, slower)."""
    sharpness_points: int = 150
    """About this many sharpness evaluations per run along the trajectory."""
    lr: float = 0.2
    """GD step size of the dataset-size sweep (and the progressive-sharpening run)."""
    steps: int = 5000
    """GD steps of the dataset-size sweep."""
    sizes: tuple[int, ...] = (25, 50, 100)
    """Dataset sizes N of the GD sweep; the largest is used by every other sweep."""
    depths: tuple[int, ...] = (2, 3, 4, 5)
    """Depths D of the balanced GD sweep."""
    depth_lr: float = 0.05
    """Step size of the depth sweep."""
    depth_steps: int = 16000
    """Steps of the depth sweep."""
    batch_sizes: tuple[int, ...] = (2, 5, 10, 25, 50, 100)
    """Batch sizes B of the SGD sweep (depth 2)."""
    sgd_lr: float = 0.2
    """Step size of the batch-size sweep."""
    sgd_steps: int = 20000
    """Steps of the batch-size sweep."""
    lr_sweep: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4)
    """Step sizes of the SGD and GD step-size sweeps."""
    lr_sweep_batch: int = 5
    """Batch size of the SGD step-size sweep."""
    lr_sweep_time: float = 2000.0
    """Training time lr * steps of each step-size run."""
    eos_runs: tuple[tuple[int, float], ...] = ((3, 0.4), (2, 1.0))
    """(depth, lr) pairs of GD runs whose prediction exceeds 2/lr (edge of stability)."""
    eos_steps: int = 3000
    """Steps of the edge-of-stability runs."""
    conservation_lr: float = 1e-3
    """Small GD step size of the near-gradient-flow run (imbalance conservation)."""
    conservation_steps: int = 2000
    """Steps of the near-gradient-flow run."""

    def __post_init__(self):
        for name in ("d", "sharpness_points", "steps", "depth_steps", "sgd_steps", "eos_steps",
                     "conservation_steps", "lr_sweep_batch"):
            check_scalar(getattr(self, name), name, numbers.Integral, min_val=1)
        for name in ("data_seed", "seed", "sgd_seed"):
            check_scalar(getattr(self, name), name, numbers.Integral, min_val=0)
        for name in ("lr", "depth_lr", "sgd_lr", "conservation_lr", "lr_sweep_time",
                     "init_u_scale", "balanced_scale"):
            check_scalar(getattr(self, name), name, numbers.Real, min_val=0.0,
                         include_boundaries="neither")
        check_scalar(self.alpha, "alpha", numbers.Real, min_val=0.0)
        check_scalar(self.init_v, "init_v", numbers.Real)
        for name, value, choices in (("data", self.data, _DATA), ("labels", self.labels, _LABELS),
                                     ("dtype", self.dtype, _DTYPES),
                                     ("sharpness_method", self.sharpness_method, _METHODS)):
            if value not in choices:
                raise ValueError(f"{name} == {value!r}, must be one of {choices}.")
        _check_tuple("sizes", self.sizes, numbers.Integral, 1)
        _check_tuple("depths", self.depths, numbers.Integral, 2)
        _check_tuple("batch_sizes", self.batch_sizes, numbers.Integral, 1)
        _check_tuple("lr_sweep", self.lr_sweep, numbers.Real, 0.0, strict=True)
        if max(self.batch_sizes) > self.n_samples or self.lr_sweep_batch > self.n_samples:
            raise ValueError(
                f"batch sizes must be <= max(sizes) == {self.n_samples}, got "
                f"{max(max(self.batch_sizes), self.lr_sweep_batch)}."
            )
        if not isinstance(self.eos_runs, tuple) or not all(
            isinstance(p, tuple) and len(p) == 2 for p in self.eos_runs
        ):
            raise TypeError(
                f"eos_runs must be a tuple of (depth, lr) pairs, got {self.eos_runs!r}."
            )
        for depth, lr in self.eos_runs:
            check_scalar(depth, "eos_runs depth", numbers.Integral, min_val=2)
            check_scalar(lr, "eos_runs lr", numbers.Real, min_val=0.0,
                         include_boundaries="neither")
        check_finite_fields(self)

    @property
    def n_samples(self) -> int:
        """Largest dataset size, used by every sweep except the dataset-size one."""
        return int(max(self.sizes))

    @property
    def lr_sweep_steps(self) -> np.ndarray:
        """Steps of each step-size run, ``round(lr_sweep_time / lr)``, shape (len(lr_sweep),)."""
        return np.array([int(round(self.lr_sweep_time / lr)) for lr in self.lr_sweep])


def _check_tuple(name, value, kind, min_val, *, strict=False):
    if not isinstance(value, tuple) or not value:
        raise TypeError(f"{name} must be a non-empty tuple, got {value!r}.")
    for item in value:
        check_scalar(item, name, kind, min_val=min_val,
                     include_boundaries="neither" if strict else "both")


@dataclass(frozen=True)
class Dataset:
    """Inputs and labels shared by the runs of a study.

    Attributes:
        X: Inputs, shape (N, d).
        y: Labels in {-1, +1}, shape (N,).
    """

    X: np.ndarray
    y: np.ndarray


def make_data(config: Config, n: int | None = None) -> Dataset:
    """Draw the study's dataset.

    Args:
        config: The study config (``d``, ``data``, ``alpha``, ``labels``, ``data_seed``).
        n: Number of samples (default ``config.n_samples``).

    Returns:
        A :class:`Dataset` with ``E||x||^2 = 1``.
    """
    n = config.n_samples if n is None else n
    rng = as_generator(config.data_seed)
    if config.data == "powerlaw":
        var = np.arange(1, config.d + 1, dtype=np.float64) ** (-config.alpha)
        var /= var.sum()
    else:
        var = np.full(config.d, 1.0 / config.d)
    x = rng.standard_normal((n, config.d)) * np.sqrt(var)
    if config.labels == "random_sign":
        y = rng.integers(0, 2, size=n) * 2.0 - 1.0
    else:
        teacher = rng.standard_normal(config.d)
        y = np.where(x @ teacher >= 0, 1.0, -1.0)
    return Dataset(X=x, y=y)


@dataclass
class Sweep:
    """Batched trajectories of one sweep (R runs).

    Attributes:
        label: What the sweep varies (``"N"``, ``"D"``, ``"B"``, ``"lr"``...).
        values: The varied values, shape (R,).
        depth: Depth D of each run, shape (R,).
        n_samples: Samples N of each run, shape (R,).
        batch_size: Batch size of each run (0 = full batch), shape (R,).
        lr: Step size of each run, shape (R,).
        steps: Steps of each run, shape (R,).
        loss: Full-batch loss at every step, shape (R, T + 1) (frozen after a run's end).
        sharp_steps: Steps of the sharpness evaluations, shape (K,).
        sharpness: Sharpness at ``sharp_steps``, shape (R, K).
        imbalance: ``||Pi u||^2 - v_1^2`` at ``sharp_steps``, shape (R, K).
        final_loss: Loss at each run's last step, shape (R,).
        final_sharpness: Sharpness at each run's last step, shape (R,).
        final_imbalance: Imbalance at each run's last step, shape (R,).
        initial_imbalance: Imbalance at step 0, shape (R,).
        final_v: Layer weights at the end (padded with 1), shape (R, Dmax - 1).
        Q: Dataset difficulty ``||X^+ y||^2``, shape (R,).
        sigma1: Top singular value of X, shape (R,).
        d1: ``e_1^T y``, shape (R,).
        sum_d2: ``sum_i (e_i^T y)^2``, shape (R,).
    """

    label: str
    values: np.ndarray
    depth: np.ndarray
    n_samples: np.ndarray
    batch_size: np.ndarray
    lr: np.ndarray
    steps: np.ndarray
    loss: np.ndarray
    sharp_steps: np.ndarray
    sharpness: np.ndarray
    imbalance: np.ndarray
    final_loss: np.ndarray
    final_sharpness: np.ndarray
    final_imbalance: np.ndarray
    initial_imbalance: np.ndarray
    final_v: np.ndarray
    Q: np.ndarray
    sigma1: np.ndarray
    d1: np.ndarray
    sum_d2: np.ndarray

    @property
    def predicted_sharpness(self) -> np.ndarray:
        """``sigma_1^2 Q^{(D-1)/D} / N``, shape (R,)."""
        return self.sigma1**2 * self.Q ** ((self.depth - 1) / self.depth) / self.n_samples

    def f1_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Two-sided F1 bounds on the final sharpness of depth-2 runs at a global minimum.

        Returns:
            ``(lower, upper)``, each of shape (R,), from the final imbalance ``C``:
            ``v^2 = (sqrt(C^2 + 4Q) - C) / 2``, lower ``(sigma_1^2 v^2 + d_1^2 / v^2) / N`` and
            upper ``(sigma_1^2 v^2 + sum_i d_i^2 / v^2) / N``.
        """
        c = self.final_imbalance
        v2 = (np.sqrt(c * c + 4 * self.Q) - c) / 2
        lower = (self.sigma1**2 * v2 + self.d1**2 / v2) / self.n_samples
        upper = (self.sigma1**2 * v2 + self.sum_d2 / v2) / self.n_samples
        return lower, upper


@dataclass
class Result:
    """Output of :func:`run`.

    Attributes:
        config: The config used.
        sweeps: Sweeps by name: ``size``, ``depth``, ``batch``, ``lr_sgd``, ``lr_gd``, ``eos``,
            ``conservation``.
    """

    config: Config
    sweeps: dict[str, Sweep] = field(default_factory=dict)


def _layer_products(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Products of the layer weights: all of them and all but one.

    Args:
        v: Layer weights, shape (R, L).

    Returns:
        ``P`` of shape (R,) and ``P_{-i}`` of shape (R, L) (computed without division).
    """
    n_layers = v.shape[1]
    if n_layers == 1:
        return v[:, 0].copy(), np.ones_like(v)
    minus = np.empty_like(v)
    for i in range(n_layers):  # L <= a handful of layers
        others = [v[:, j] for j in range(n_layers) if j != i]
        acc = others[0].copy()
        for col in others[1:]:
            acc *= col
        minus[:, i] = acc
    return minus[:, 0] * v[:, 0], minus


def closed_form_hessian(X: np.ndarray, y: np.ndarray, u: np.ndarray, v: np.ndarray,
                        weights: np.ndarray | None = None) -> np.ndarray:
    """Exact Hessian of ``0.5 * sum_j w_j (x_j^T u prod(v) - y_j)^2`` in closed form.

    Args:
        X: Inputs, shape (N, d).
        y: Labels, shape (N,).
        u: First-layer weights, shape (R, d).
        v: Layer weights v_1..v_L, shape (R, L).
        weights: Sample weights, shape (R, N) (default ``1/N`` each, the model's loss).

    Returns:
        Hessians with respect to ``(u, v)``, shape (R, d + L, d + L).
    """
    n = X.shape[0]
    w = np.full((u.shape[0], n), 1.0 / n) if weights is None else weights
    return _hessian_blocks(X[None], X, y, u, v, w, np.ones_like(v, dtype=bool))


def _hessian_blocks(basis_x, X, y, u, v, w, layer_mask):
    # basis_x: (R or 1, N, k) inputs expressed in the coordinates of u being differentiated
    prod, minus = _layer_products(v)
    a = u @ X.T
    r = prod[:, None] * a - y
    weighted = basis_x * (w * prod[:, None] ** 2)[..., None]
    h_uu = np.swapaxes(weighted, 1, 2) @ basis_x
    cross = np.einsum("rnk,rn->rk", np.broadcast_to(basis_x, (u.shape[0],) + basis_x.shape[1:]),
                      w * (r + prod[:, None] * a))
    h_uv = cross[:, :, None] * minus[:, None, :]
    n_layers = v.shape[1]
    idx = np.arange(n_layers)
    drop = (idx[None, None, :] != idx[:, None, None]) & (idx[None, None, :] != idx[None, :, None])
    minus2 = np.prod(np.where(drop[None], v[:, None, None, :], 1.0), axis=-1)
    off = ~np.eye(n_layers, dtype=bool)
    h_vv = (minus[:, :, None] * minus[:, None, :] * np.sum(w * a * a, axis=1)[:, None, None]
            + off[None] * minus2 * np.sum(w * a * r, axis=1)[:, None, None])
    mask = layer_mask.astype(v.dtype)
    h_uv = h_uv * mask[:, None, :]
    h_vv = h_vv * mask[:, :, None] * mask[:, None, :]
    top = np.concatenate([h_uu, h_uv], axis=2)
    bottom = np.concatenate([np.swapaxes(h_uv, 1, 2), h_vv], axis=2)
    return np.concatenate([top, bottom], axis=1)


def _torch_sharpness(X, y, u, v, w, layer_mask, seed):
    out = np.empty(u.shape[0])
    xt = torch.as_tensor(X)
    yt = torch.as_tensor(y)
    for i in range(u.shape[0]):  # Lanczos is per model; only used on request
        ut = torch.tensor(u[i], requires_grad=True)
        vt = torch.tensor(v[i][layer_mask[i]], requires_grad=True)
        wt = torch.as_tensor(w[i])

        def loss_fn(ut=ut, vt=vt, wt=wt):
            r = (xt @ ut) * torch.prod(vt) - yt
            return 0.5 * torch.sum(wt * r * r)

        out[i] = _hvp_sharpness(loss_fn, [ut, vt], method="lanczos", seed=seed)
    return out


def simulate(
    data: Dataset,
    *,
    n_samples: np.ndarray,
    depth: np.ndarray,
    lr: np.ndarray,
    steps: np.ndarray,
    batch_size: np.ndarray,
    u0: np.ndarray,
    v0: np.ndarray,
    sharpness_points: int = 150,
    sgd_seed=0,
    dtype: str = "float64",
    sharpness_method: str = "exact",
) -> dict[str, np.ndarray]:
    """Train R independent runs at once by GD / SGD and track loss, sharpness and imbalance.

    Run ``i`` uses the first ``n_samples[i]`` samples, depth ``depth[i]`` (layers beyond it are
    frozen at 1), step size ``lr[i]`` for ``steps[i]`` steps and mini-batches of
    ``batch_size[i]`` samples drawn without replacement (0 = full batch). BLAS and torch run
    single-threaded inside (the batched problems are small).

    Args:
        data: The dataset (N >= max(n_samples)).
        n_samples: Shape (R,).
        depth: Shape (R,), >= 2.
        lr: Shape (R,).
        steps: Shape (R,).
        batch_size: Shape (R,).
        u0: Initial first layers, shape (R, d).
        v0: Initial layer weights, shape (R, max(depth) - 1); padded entries must be 1.
        sharpness_points: About this many sharpness evaluations along the longest run.
        sgd_seed: Seed of the mini-batch draws.
        dtype: ``"float64"`` or ``"float32"`` for the dynamics.
        sharpness_method: ``"exact"`` or ``"lanczos"``.

    Returns:
        Dict of arrays named like the :class:`Sweep` fields plus the static data quantities.
    """
    with _single_thread():
        return _simulate(data, n_samples, depth, lr, steps, batch_size, u0, v0,
                         sharpness_points, sgd_seed, dtype, sharpness_method)


def _simulate(data, n_samples, depth, lr, steps, batch_size, u0, v0, sharpness_points, sgd_seed,
              dtype, sharpness_method):
    if sharpness_method not in _METHODS:
        raise ValueError(f"sharpness_method == {sharpness_method!r}, must be one of {_METHODS}.")
    runs = len(lr)
    n_max = data.X.shape[0]
    ftype = np.dtype(dtype)
    X = data.X.astype(ftype)
    y = data.y.astype(ftype)
    sample_idx = np.arange(n_max)
    valid = sample_idx[None, :] < n_samples[:, None]
    full_w = (valid / n_samples[:, None]).astype(ftype)
    n_layers = v0.shape[1]
    layer_mask = np.arange(n_layers)[None, :] < (depth - 1)[:, None]
    # row-space bases and static data quantities (setup, once per run)
    k_max = int(min(n_max, X.shape[1]))
    basis = np.zeros((runs, X.shape[1], k_max))
    stats = np.zeros((4, runs))
    for i in range(runs):
        xi = data.X[: n_samples[i]]
        e, s, wt = np.linalg.svd(xi, full_matrices=False)
        keep = s > s[0] * 1e-10
        basis[i, :, : keep.sum()] = wt[keep].T
        dvec = e[:, keep].T @ data.y[: n_samples[i]]
        stats[:, i] = (np.sum(dvec**2 / s[keep] ** 2), s[0], dvec[0], np.sum(dvec**2))
    basis_x = (data.X @ basis).astype(ftype)  # (R, N, k): x_j in row-space coordinates
    basis = basis.astype(ftype)
    u = u0.astype(ftype).copy()
    v = v0.astype(ftype).copy()
    rng = as_generator(sgd_seed)
    total = int(steps.max())
    every = max(1, total // sharpness_points)
    sharp_steps = np.unique(np.concatenate([np.arange(0, total + 1, every), [total]]))
    loss = np.empty((runs, total + 1))
    sharp = np.empty((runs, len(sharp_steps)))
    imbalance = np.empty((runs, len(sharp_steps)))
    final = np.empty((3, runs))
    lr_f = lr.astype(ftype)
    stochastic = batch_size > 0
    k_eval = 0

    def measure(rows):
        w_rows = full_w[rows]
        if sharpness_method == "exact":
            hess = _hessian_blocks(basis_x[rows], X, y, u[rows], v[rows], w_rows,
                                   layer_mask[rows])
            top = np.linalg.eigvalsh(hess.astype(np.float64))[:, -1]
        else:
            top = _torch_sharpness(data.X, data.y, u[rows].astype(np.float64),
                                   v[rows].astype(np.float64), w_rows.astype(np.float64),
                                   layer_mask[rows], sgd_seed)
        proj = np.einsum("rdk,rd->rk", basis[rows], u[rows])
        return top, np.sum(proj * proj, axis=1) - v[rows, 0] ** 2

    for t in range(total + 1):
        prod, minus = _layer_products(v)
        a = u @ X.T
        r = prod[:, None] * a - y
        loss[:, t] = 0.5 * np.einsum("rn,rn->r", full_w * r, r)
        ending = steps == t
        if k_eval < len(sharp_steps) and sharp_steps[k_eval] == t:
            sharp[:, k_eval], imbalance[:, k_eval] = measure(slice(None))
            k_eval += 1
            if ending.any():
                final[1, ending] = sharp[ending, k_eval - 1]
                final[2, ending] = imbalance[ending, k_eval - 1]
        elif ending.any():
            final[1, ending], final[2, ending] = measure(ending)
        if ending.any():
            final[0, ending] = loss[ending, t]
        if t == total:
            break
        if stochastic.any():
            keys = rng.random((runs, n_max))
            keys[~valid] = 2.0
            cutoff = np.take_along_axis(np.sort(keys, axis=1),
                                        np.maximum(batch_size, 1)[:, None] - 1, axis=1)
            chosen = keys <= cutoff
            sgd_w = chosen / np.maximum(batch_size, 1)[:, None]
            w = np.where(stochastic[:, None], sgd_w, full_w).astype(ftype)
        else:
            w = full_w
        wr = w * r
        grad_u = prod[:, None] * (wr @ X)
        grad_v = minus * np.einsum("rn,rn->r", wr, a)[:, None] * layer_mask
        step = np.where(t < steps, lr_f, 0.0).astype(ftype)
        u -= step[:, None] * grad_u
        v -= step[:, None] * grad_v
    if not np.all(np.isfinite(loss)):
        warnings.warn("some runs diverged (non-finite loss).", GBPMWarning, stacklevel=2)
    return {
        "loss": loss, "sharp_steps": sharp_steps, "sharpness": sharp, "imbalance": imbalance,
        "final_loss": final[0], "final_sharpness": final[1], "final_imbalance": final[2],
        "initial_imbalance": imbalance[:, 0], "final_v": v.astype(np.float64),
        "Q": stats[0], "sigma1": stats[1], "d1": stats[2], "sum_d2": stats[3],
    }


@contextmanager
def _single_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(old)


def _default_init(config: Config, runs: int, n_layers: int, depth: np.ndarray):
    rng = as_generator(config.seed)
    u = rng.standard_normal(config.d) * config.init_u_scale / np.sqrt(config.d)
    v = np.ones((runs, n_layers))
    v[np.arange(n_layers)[None, :] < (depth - 1)[:, None]] = config.init_v
    return np.tile(u, (runs, 1)), v


def _balanced_init(config: Config, data: Dataset, runs: int, n_layers: int, depth: np.ndarray):
    rng = as_generator(config.seed)
    _, _, wt = np.linalg.svd(data.X, full_matrices=False)
    direction = wt.T @ (wt @ rng.standard_normal(config.d))
    u = direction / np.linalg.norm(direction) * config.balanced_scale
    v = np.ones((runs, n_layers))
    v[np.arange(n_layers)[None, :] < (depth - 1)[:, None]] = config.balanced_scale
    return np.tile(u, (runs, 1)), v


def _sweep(config: Config, data: Dataset, label: str, values, *, n_samples, depth, lr, steps,
           batch_size, balanced: bool = False) -> Sweep:
    runs = len(values)
    arr = {k: np.broadcast_to(np.asarray(val), (runs,)).copy() for k, val in
           (("n_samples", n_samples), ("depth", depth), ("lr", lr), ("steps", steps),
            ("batch_size", batch_size))}
    n_layers = int(arr["depth"].max()) - 1
    if balanced:
        u0, v0 = _balanced_init(config, data, runs, n_layers, arr["depth"])
    else:
        u0, v0 = _default_init(config, runs, n_layers, arr["depth"])
    out = simulate(data, n_samples=arr["n_samples"].astype(np.int64),
                   depth=arr["depth"].astype(np.int64), lr=arr["lr"].astype(np.float64),
                   steps=arr["steps"].astype(np.int64),
                   batch_size=arr["batch_size"].astype(np.int64), u0=u0, v0=v0,
                   sharpness_points=config.sharpness_points, sgd_seed=config.sgd_seed,
                   dtype=config.dtype, sharpness_method=config.sharpness_method)
    return Sweep(label=label, values=np.asarray(values, dtype=np.float64),
                 depth=arr["depth"].astype(np.int64), n_samples=arr["n_samples"].astype(np.int64),
                 batch_size=arr["batch_size"].astype(np.int64), lr=arr["lr"].astype(np.float64),
                 steps=arr["steps"].astype(np.int64), **out)


def run(config: Config | None = None) -> Result:
    """Run every sweep of the study.

    Args:
        config: The study config (defaults if None).

    Returns:
        A :class:`Result` holding one :class:`Sweep` per experiment.
    """
    config = study_config(config, Config)
    data = make_data(config)
    n = config.n_samples
    if n > config.d:
        warnings.warn(f"N == {n} > d == {config.d}: the data cannot be interpolated and the "
                      "sharpness bounds (which assume a global minimum at zero loss) do not "
                      "apply.", GBPMWarning, stacklevel=2)
    result = Result(config=config)
    sizes = np.array(config.sizes)
    lrs = np.array(config.lr_sweep, dtype=np.float64)
    n_lr = len(lrs)
    with _single_thread():
        result.sweeps["size"] = _sweep(config, data, "N", sizes, n_samples=sizes, depth=2,
                                       lr=config.lr, steps=config.steps, batch_size=0)
        depths = np.array(config.depths)
        result.sweeps["depth"] = _sweep(config, data, "D", depths, n_samples=n, depth=depths,
                                        lr=config.depth_lr, steps=config.depth_steps,
                                        batch_size=0, balanced=True)
        batches = np.array(config.batch_sizes)
        result.sweeps["batch"] = _sweep(config, data, "B", batches, n_samples=n, depth=2,
                                        lr=config.sgd_lr, steps=config.sgd_steps,
                                        batch_size=batches)
        both = _sweep(config, data, "lr", np.concatenate([lrs, lrs]), n_samples=n, depth=2,
                      lr=np.concatenate([lrs, lrs]),
                      steps=np.concatenate([config.lr_sweep_steps] * 2),
                      batch_size=np.repeat([config.lr_sweep_batch, 0], n_lr))
        result.sweeps["lr_sgd"] = _take(both, slice(0, n_lr))
        result.sweeps["lr_gd"] = _take(both, slice(n_lr, 2 * n_lr))
        eos_d = np.array([p[0] for p in config.eos_runs])
        eos_lr = np.array([p[1] for p in config.eos_runs], dtype=np.float64)
        result.sweeps["eos"] = _sweep(config, data, "lr", eos_lr, n_samples=n, depth=eos_d,
                                      lr=eos_lr, steps=config.eos_steps, batch_size=0)
        result.sweeps["conservation"] = _sweep(
            config, data, "lr", [config.conservation_lr], n_samples=n, depth=2,
            lr=config.conservation_lr, steps=config.conservation_steps, batch_size=0)
    return result


def _take(sweep: Sweep, rows: slice) -> Sweep:
    fields = {}
    for name, value in vars(sweep).items():
        if isinstance(value, np.ndarray) and name != "sharp_steps":
            fields[name] = value[rows]
        else:
            fields[name] = value
    return Sweep(**fields)


def _monotone(values: np.ndarray, *, increasing: bool, strict: bool) -> bool:
    diffs = np.diff(np.asarray(values, dtype=np.float64))
    if increasing:
        return bool(np.all(diffs > 0) if strict else np.all(diffs >= 0))
    return bool(np.all(diffs < 0) if strict else np.all(diffs <= 0))


def _loss_increases(loss: np.ndarray) -> int:
    return int(np.sum(np.diff(loss) > 0))


def claims(result: Result) -> list[Claim]:
    """Evaluate the paper's predictions on a run.

    Args:
        result: Output of :func:`run`.

    Returns:
        The claims (thresholds from the spec's calibration runs).
    """
    sw = result.sweeps
    out: list[Claim] = []
    size = sw["size"]
    base = int(np.argmax(size.n_samples))
    s0, s_end = size.sharpness[base, 0], size.final_sharpness[base]
    out.append(Claim(
        "progressive_sharpening",
        f"GD (N={size.n_samples[base]}, D=2, lr={size.lr[base]:g}): S_end >= 3 S_0",
        f"S_0 {s0:.4g} -> S_end {s_end:.4g}", s_end >= 3 * s0))
    order = np.argsort(size.n_samples)
    out.append(Claim(
        "sharpness_grows_with_N", "final S and Q strictly increase with N",
        f"S {np.round(size.final_sharpness[order], 3)}, Q {np.round(size.Q[order], 1)}",
        _monotone(size.final_sharpness[order], increasing=True, strict=True)
        and _monotone(size.Q[order], increasing=True, strict=True)))
    depth = sw["depth"]
    order = np.argsort(depth.depth)
    rel = np.abs(depth.final_sharpness - depth.predicted_sharpness) / depth.predicted_sharpness
    out.append(Claim(
        "sharpness_grows_with_depth",
        "balanced init: final S strictly increases with D and is within 1% of "
        "sigma_1^2 Q^((D-1)/D)/N",
        f"S {np.round(depth.final_sharpness[order], 3)}, "
        f"predicted {np.round(depth.predicted_sharpness[order], 3)}",
        _monotone(depth.final_sharpness[order], increasing=True, strict=True)
        and bool(np.all(rel < 0.01))))
    batch = sw["batch"]
    order = np.argsort(batch.batch_size)
    out.append(Claim(
        "sharpness_grows_with_batch_size",
        "SGD: final S non-decreasing and final imbalance C non-increasing in B",
        f"S {np.round(batch.final_sharpness[order], 3)}, "
        f"C {np.round(batch.final_imbalance[order], 2)}",
        _monotone(batch.final_sharpness[order], increasing=True, strict=False)
        and _monotone(batch.final_imbalance[order], increasing=False, strict=False)))
    lr_sgd, lr_gd = sw["lr_sgd"], sw["lr_gd"]
    order = np.argsort(lr_sgd.lr)
    spread = float(np.ptp(lr_gd.final_sharpness) / np.mean(lr_gd.final_sharpness))
    out.append(Claim(
        "small_batch_sharpness_falls_with_lr",
        f"SGD (B={lr_sgd.batch_size[0]}): final S strictly decreases in lr; GD spread < 1%",
        f"SGD S {np.round(lr_sgd.final_sharpness[order], 3)}, GD spread {spread:.3%}",
        _monotone(lr_sgd.final_sharpness[order], increasing=False, strict=True)
        and spread < 0.01))
    eos = sw["eos"]
    for i in range(len(eos.lr)):
        thr = 2.0 / eos.lr[i]
        peak = float(eos.sharpness[i].max())
        end = float(eos.final_sharpness[i])
        ups = _loss_increases(eos.loss[i, : eos.steps[i] + 1])
        holds = (peak > thr and end < thr and (thr - end) / thr < 0.01 and ups >= 1
                 and eos.final_loss[i] < 1e-8)
        out.append(Claim(
            f"edge_of_stability_D{eos.depth[i]}_lr{eos.lr[i]:g}",
            f"prediction {eos.predicted_sharpness[i]:.3g} > 2/lr={thr:g}: max S > 2/lr, "
            "final S within 1% below 2/lr, >= 1 loss increase, final loss < 1e-8",
            f"max S {peak:.4g}, final S {end:.4g}, {ups} increases, "
            f"loss {eos.final_loss[i]:.2g}", holds))
    lows, highs, ok = [], [], []
    for name in ("size", "batch"):
        s = sw[name]
        lower, upper = s.f1_bounds()
        conv = (s.final_loss < 1e-8) & (s.depth == 2)
        ok.append(conv & (s.final_sharpness >= lower * (1 - 1e-3))
                  & (s.final_sharpness <= upper * (1 + 1e-3)))
        lows.append(np.where(conv, s.final_sharpness / lower - 1, np.nan))
        highs.append(np.where(conv, s.final_sharpness / upper - 1, np.nan))
        if name == "size":
            converged = conv
        else:
            converged = np.concatenate([converged, conv])
    ok_all = np.concatenate(ok)
    out.append(Claim(
        "two_sided_bound_D2",
        "converged D=2 runs (loss < 1e-8): lower <= S_end <= upper (F1) within 1e-3 relative",
        f"{int(ok_all.sum())}/{int(converged.sum())} converged runs inside",
        bool(converged.sum() >= 3 and np.all(ok_all[converged]))))
    cons = sw["conservation"]
    drift = float(abs(cons.final_imbalance[0] - cons.initial_imbalance[0]))
    out.append(Claim(
        "imbalance_conserved_near_gf",
        f"GD lr={cons.lr[0]:g}, {cons.steps[0]} steps: |C_end - C_0| < 1e-2",
        drift, drift < 1e-2))
    return out


def plot(result: Result) -> dict:
    """Figures of the study.

    Args:
        result: Output of :func:`run`.

    Returns:
        ``{"headline": 2x2 sharpness-vs-step grid (N, D, B, lr sweeps), "eos": loss and
        sharpness of the edge-of-stability runs, "prediction": predicted vs final sharpness of
        the converged GD runs}``.
    """
    plt, sns = plotting_modules()

    sns.set_theme(style="whitegrid", context="paper")
    sw = result.sweeps
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    panels = (("size", "N", "(a) GD, varying N"), ("depth", "D", "(b) GD, varying depth"),
              ("batch", "B", "(c) SGD, varying batch size"),
              ("lr_sgd", "lr", "(d) SGD (small batch), varying lr"))
    for ax, (key, sym, title) in zip(axes.ravel(), panels):
        s = sw[key]
        colors = sns.color_palette("viridis", len(s.values))
        for i in range(len(s.values)):
            mask = s.sharp_steps <= s.steps[i]
            x = s.sharp_steps[mask] * (s.lr[i] if key == "lr_sgd" else 1.0)
            ax.plot(x, s.sharpness[i, mask], color=colors[i], label=f"{sym}={s.values[i]:g}")
            ax.axhline(s.predicted_sharpness[i], color=colors[i], ls="--", lw=0.7)
        ax.set_title(title)
        ax.set_xlabel("lr x step" if key == "lr_sgd" else "step")
        ax.set_ylabel("sharpness")
        ax.legend(fontsize=7)
    fig.suptitle("Progressive sharpening in the minimalist model (dashed: predicted sharpness)")
    fig.tight_layout()

    eos = sw["eos"]
    fig2, axes2 = plt.subplots(len(eos.lr), 2, figsize=(10, 3.2 * len(eos.lr)), squeeze=False)
    for i in range(len(eos.lr)):
        steps = np.arange(eos.steps[i] + 1)
        axes2[i, 0].semilogy(steps, np.maximum(eos.loss[i, : eos.steps[i] + 1], 1e-300))
        axes2[i, 0].set_ylabel("loss")
        axes2[i, 0].set_title(f"D={eos.depth[i]}, lr={eos.lr[i]:g}: loss")
        mask = eos.sharp_steps <= eos.steps[i]
        axes2[i, 1].plot(eos.sharp_steps[mask], eos.sharpness[i, mask], label="sharpness")
        axes2[i, 1].axhline(2 / eos.lr[i], color="k", ls=":", label="2/lr")
        axes2[i, 1].axhline(eos.predicted_sharpness[i], color="grey", ls="--",
                            label="predicted")
        axes2[i, 1].set_title(f"D={eos.depth[i]}, lr={eos.lr[i]:g}: sharpness")
        axes2[i, 1].legend(fontsize=7)
        for ax in axes2[i]:
            ax.set_xlabel("step")
    fig2.tight_layout()

    fig3, ax3 = plt.subplots(figsize=(4.6, 4))
    pred, final = [], []
    for key, sym in (("size", "N"), ("depth", "D")):
        s = sw[key]
        ok = s.final_loss < 1e-6
        ax3.scatter(s.predicted_sharpness[ok], s.final_sharpness[ok],
                    label=f"GD, varying {sym}")
        pred.append(s.predicted_sharpness[ok])
        final.append(s.final_sharpness[ok])
    pred_all, final_all = np.concatenate(pred), np.concatenate(final)
    if len(pred_all) > 1:
        corr = float(np.corrcoef(pred_all, final_all)[0, 1])
        ax3.set_title(f"predicted vs final sharpness (r = {corr:.3f})")
    top = float(max(pred_all.max(initial=1.0), final_all.max(initial=1.0))) * 1.1
    ax3.plot([0, top], [0, top], "k:", lw=1)
    ax3.set_xlabel(r"$\sigma_1^2 Q^{(D-1)/D}/N$")
    ax3.set_ylabel("final sharpness")
    ax3.legend(fontsize=7)
    fig3.tight_layout()
    return {"headline": fig, "eos": fig2, "prediction": fig3}
