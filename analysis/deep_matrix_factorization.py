"""Deep matrix factorization: coupled dynamics, low rank and loss of plasticity with depth.

Matrix completion with a deep linear network ``W = W_L ... W_1`` trained by full-batch GD on
the squared error over the observed entries. Under block-diagonal observations the dynamics of
the blocks are *decoupled* at depth 2 (for any initialization) and under diagonal
initialization, and *coupled* at depth >= 3 otherwise; coupled runs converge to low rank
(Menon's 2x2 question: observing only ``W_11 = W_22 = 1``, depth >= 3 ends at rank 1). A depth-2
network pre-trained on decoupled observations stays at a high-rank completion after more
(connecting) observations arrive, while deeper networks recover (loss of plasticity).

Coupling is measured operationally: re-run the same initialization with the other blocks'
observations removed and record the largest deviation of block 1's entries (0 exactly when the
blocks evolve independently).

References:
    B. Shin, C. Yun, *Implicit Bias and Loss of Plasticity in Matrix Completion: Depth Promotes
    Low-Rankness*, ICLR 2026, arXiv:2603.04703.
    N. Menon, *The geometry of the deep linear network*, arXiv:2411.09004, 2024.
"""

from __future__ import annotations

import numbers
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from rlhf_gbpm._validation import as_generator, check_scalar
from rlhf_gbpm.analysis._framework import Claim, check_finite_fields, plotting_modules, study_config

__all__ = [
    "NAME",
    "DESCRIPTION",
    "REFERENCE",
    "Config",
    "CouplingRun",
    "RankRun",
    "PlasticityRun",
    "Result",
    "init_factors",
    "end_to_end",
    "factor_gradients",
    "train_gd",
    "run",
    "plot",
    "claims",
]

NAME = "deep_matrix_factorization"
DESCRIPTION = (
    "Deep matrix completion: block dynamics decoupled at depth 2, coupled (and rank-1) at depth "
    ">= 3; depth-2 loses plasticity after pre-training on decoupled observations."
)
REFERENCE = (
    "Shin, Yun, Implicit Bias and Loss of Plasticity in Matrix Completion: Depth Promotes "
    "Low-Rankness, ICLR 2026, arXiv:2603.04703"
)

_INITS = ("gauss", "orthogonal", "diag")
_TRUTHS = ("rank1_sym", "rank1")


@dataclass(frozen=True)
class Config:
    """Configuration of the deep matrix factorization study (CPU-cheap defaults)."""

    depths: tuple[int, ...] = (2, 3, 4)
    """Depths L (numbers of factors) of the 2x2 coupling and rank experiments."""
    coupling_e2e_scale: float = 1e-2
    """End-to-end init scale of the coupling experiment."""
    coupling_lr: float = 0.05
    """GD step size of the coupling experiment (sum loss)."""
    coupling_steps: int = 3000
    """Steps of the coupling experiment."""
    rank_width: int = 2
    """Hidden width h of the 2x2 rank experiment."""
    rank_e2e_scale: float = 1e-3
    """End-to-end init scale of the rank experiment."""
    rank_lrs: tuple[float, ...] = (0.2, 0.2, 0.1)
    """GD step size of the rank experiment for each entry of ``depths``."""
    rank_seeds: int = 6
    """Gaussian initializations per depth in the rank experiment."""
    rank_max_steps: int = 20000
    """Step cap of the rank experiment (it stops once every loss is below rank_tol)."""
    rank_tol: float = 1e-12
    """Loss at which a rank-experiment run counts as converged."""
    init: str = "gauss"
    """Generic initialization: 'gauss' (entrywise Gaussian) or 'orthogonal' (balanced)."""
    n: int = 20
    """Size of the n x n matrix in the plasticity experiment."""
    truth: str = "rank1_sym"
    """Plasticity ground truth: 'rank1_sym' (u u^T) or 'rank1' (u v^T), RMS 1."""
    n_blocks: int = 2
    """Diagonal blocks of the pre-training observation set."""
    p_obs: float = 0.6
    """Probability that an entry inside a block is observed."""
    n_off: int = 30
    """Off-block entries added to the observations when training resumes."""
    width: int = 20
    """Hidden width h of the plasticity experiment."""
    plasticity_depths: tuple[int, ...] = (2, 3)
    """Depths of the plasticity experiment."""
    plasticity_e2e_scale: float = 1e-5
    """End-to-end init scale of the plasticity experiment."""
    plasticity_lr: float = 1.0
    """GD step size of the plasticity experiment (mean loss)."""
    pretrain_steps: int = 5000
    """Pre-training steps on the block-diagonal observations."""
    extra_pretrain_steps: tuple[int, ...] = (50, 100, 200, 1000)
    """Shorter pre-training lengths, in (0, pretrain_steps), shown in the plasticity figure."""
    resume_steps: tuple[int, ...] = (60000, 30000)
    """Steps on the full observations for each entry of ``plasticity_depths``."""
    plasticity_seeds: int = 4
    """Seeds (truth, observations, init) of the plasticity experiment."""
    record_every: int = 100
    """Logging interval of the plasticity trajectories."""
    seed: int = 0
    """Master seed."""

    def __post_init__(self):
        for name in ("coupling_steps", "rank_width", "rank_seeds", "rank_max_steps", "n",
                     "n_blocks", "width", "plasticity_seeds", "record_every"):
            check_scalar(getattr(self, name), name, numbers.Integral, min_val=1)
        for name in ("n_off", "pretrain_steps", "seed"):
            check_scalar(getattr(self, name), name, numbers.Integral, min_val=0)
        for name in ("coupling_e2e_scale", "coupling_lr", "rank_e2e_scale", "rank_tol",
                     "plasticity_e2e_scale", "plasticity_lr"):
            check_scalar(getattr(self, name), name, numbers.Real, min_val=0.0,
                         include_boundaries="neither")
        check_scalar(self.p_obs, "p_obs", numbers.Real, min_val=0.0, max_val=1.0,
                     include_boundaries="right")
        if self.init not in ("gauss", "orthogonal"):
            raise ValueError(f"init == {self.init!r}, must be one of ('gauss', 'orthogonal').")
        if self.truth not in _TRUTHS:
            raise ValueError(f"truth == {self.truth!r}, must be one of {_TRUTHS}.")
        for name in ("depths", "plasticity_depths"):
            value = getattr(self, name)
            if not isinstance(value, tuple) or not value:
                raise TypeError(f"{name} must be a non-empty tuple, got {value!r}.")
            for depth in value:
                check_scalar(depth, name, numbers.Integral, min_val=2)
        for name, ref in (("rank_lrs", "depths"), ("resume_steps", "plasticity_depths")):
            value = getattr(self, name)
            if not isinstance(value, tuple) or len(value) != len(getattr(self, ref)):
                raise ValueError(
                    f"{name} == {value!r}, must be a tuple with one entry per {ref} "
                    f"({len(getattr(self, ref))})."
                )
        for lr in self.rank_lrs:
            check_scalar(lr, "rank_lrs", numbers.Real, min_val=0.0, include_boundaries="neither")
        for steps in self.resume_steps:
            check_scalar(steps, "resume_steps", numbers.Integral, min_val=1)
        if not isinstance(self.extra_pretrain_steps, tuple):
            raise TypeError(
                f"extra_pretrain_steps must be a tuple, got {self.extra_pretrain_steps!r}."
            )
        for steps in self.extra_pretrain_steps:
            check_scalar(steps, "extra_pretrain_steps", numbers.Integral, min_val=1)
            if steps >= self.pretrain_steps:
                raise ValueError(
                    f"extra_pretrain_steps == {steps}, must be < pretrain_steps == "
                    f"{self.pretrain_steps}."
                )
        if self.n_blocks > self.n:
            raise ValueError(f"n_blocks == {self.n_blocks}, must be <= n == {self.n}.")
        if self.n_off > self.off_block_entries:
            raise ValueError(
                f"n_off == {self.n_off}, must be <= the {self.off_block_entries} off-block entries."
            )
        check_finite_fields(self)

    @property
    def pretrain_lengths(self) -> tuple[int, ...]:
        """Sorted pre-training lengths: 0 (scratch), the extra ones and ``pretrain_steps``."""
        return tuple(sorted({0, *self.extra_pretrain_steps, self.pretrain_steps}))

    @property
    def block_of(self) -> np.ndarray:
        """Block index of each row/column in the plasticity experiment, shape (n,)."""
        return np.arange(self.n) * self.n_blocks // self.n

    @property
    def off_block_entries(self) -> int:
        """Number of entries outside the diagonal blocks."""
        blocks = np.arange(self.n) * self.n_blocks // self.n
        return int(np.sum(blocks[:, None] != blocks[None, :]))


@dataclass
class CouplingRun:
    """The 2x2 coupling experiment at one depth.

    Attributes:
        depth: Number of factors L.
        coupling_gauss: ``max_t |W_11^both - W_11^only|`` from a Gaussian init.
        coupling_diag: The same from the diagonal init.
        w11_both: ``W_11(t)`` observing both diagonal entries (Gaussian init), shape (T + 1,).
        w11_only: ``W_11(t)`` observing only ``W_11`` (same init), shape (T + 1,).
        final_product: ``W_12 W_21`` at the end of the Gaussian both-entries run.
    """

    depth: int
    coupling_gauss: float
    coupling_diag: float
    w11_both: np.ndarray
    w11_only: np.ndarray
    final_product: float


@dataclass
class RankRun:
    """The 2x2 rank experiment (observe ``W_11 = W_22 = 1``) at one depth.

    Attributes:
        depth: Number of factors L.
        lr: Step size.
        sigma_ratio: Final ``sigma_2 / sigma_1`` of the Gaussian-init runs, shape (seeds,).
        product: Final ``W_12 W_21`` of the Gaussian-init runs, shape (seeds,).
        final_loss: Final losses of the Gaussian-init runs, shape (seeds,).
        diag_sigma_ratio: Final ``sigma_2 / sigma_1`` of the diagonal-init run.
        steps: Steps taken.
    """

    depth: int
    lr: float
    sigma_ratio: np.ndarray
    product: np.ndarray
    final_loss: np.ndarray
    diag_sigma_ratio: float
    steps: int


@dataclass
class PlasticityRun:
    """Scratch vs pre-trained training at one depth.

    Attributes:
        depth: Number of factors L.
        scratch_rmse: Final test RMSE (entries outside the final observations), shape (S,).
        pretrained_rmse: The same after pre-training, shape (S,).
        pretrain_sigma_ratio: ``sigma_2 / sigma_1`` at the end of pre-training, shape (S,).
        scratch_sigma_ratio: Final ``sigma_2 / sigma_1`` from scratch, shape (S,).
        pretrained_sigma_ratio: Final ``sigma_2 / sigma_1`` after pre-training, shape (S,).
        record_steps: Logged steps of the resume phase, shape (K,).
        scratch_curve: Test RMSE along the resume phase, shape (S, K).
        pretrained_curve: Test RMSE along the resume phase, shape (S, K).
        lengths: Pre-training lengths, 0 (scratch) to ``pretrain_steps``, shape (G,).
        length_rmse: Final test RMSE for each pre-training length, shape (G, S).
    """

    depth: int
    scratch_rmse: np.ndarray
    pretrained_rmse: np.ndarray
    pretrain_sigma_ratio: np.ndarray
    scratch_sigma_ratio: np.ndarray
    pretrained_sigma_ratio: np.ndarray
    record_steps: np.ndarray
    scratch_curve: np.ndarray
    pretrained_curve: np.ndarray
    lengths: np.ndarray
    length_rmse: np.ndarray


@dataclass
class Result:
    """Output of :func:`run`.

    Attributes:
        config: The config used.
        coupling: One :class:`CouplingRun` per depth.
        rank: One :class:`RankRun` per depth.
        plasticity: One :class:`PlasticityRun` per plasticity depth.
    """

    config: Config
    coupling: list[CouplingRun] = field(default_factory=list)
    rank: list[RankRun] = field(default_factory=list)
    plasticity: list[PlasticityRun] = field(default_factory=list)


def init_factors(batch: int, n: int, width: int, depth: int, e2e_scale: float, init: str,
                 rng: np.random.Generator) -> list[np.ndarray]:
    """Draw the factors ``W_1 .. W_L`` for a batch of independent runs.

    Args:
        batch: Number of runs B.
        n: Size of the (square) end-to-end matrix.
        width: Hidden width h.
        depth: Number of factors L >= 2.
        e2e_scale: End-to-end scale: Gaussian entries have standard deviation
            ``e2e_scale^(1/L) / sqrt(h)``; orthogonal and diagonal factors are scaled by
            ``e2e_scale^(1/L)``.
        init: ``"gauss"``, ``"orthogonal"`` (orthonormal rows/columns) or ``"diag"``
            (rectangular identity).
        rng: Random generator.

    Returns:
        List of L arrays, ``W_1`` of shape (B, h, n), middle ones (B, h, h), ``W_L`` (B, n, h).
    """
    if init not in _INITS:
        raise ValueError(f"init == {init!r}, must be one of {_INITS}.")
    shapes = [(width, n)] + [(width, width)] * (depth - 2) + [(n, width)]
    scale = e2e_scale ** (1.0 / depth)
    factors = []
    for rows, cols in shapes:
        if init == "gauss":
            f = rng.standard_normal((batch, rows, cols)) * scale / np.sqrt(width)
        elif init == "diag":
            f = np.broadcast_to(np.eye(rows, cols) * scale, (batch, rows, cols)).copy()
        else:
            g = rng.standard_normal((batch, max(rows, cols), min(rows, cols)))
            q, r = np.linalg.qr(g)
            q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
            f = (q if rows >= cols else np.swapaxes(q, 1, 2)) * scale
        factors.append(f)
    return factors


def end_to_end(factors: list[np.ndarray]) -> list[np.ndarray]:
    """Partial products ``W_i ... W_1`` for i = 1..L.

    Args:
        factors: ``W_1 .. W_L`` with batch axis first.

    Returns:
        List of L arrays; the last is the end-to-end matrix W, shape (B, n, n).
    """
    prefix = [factors[0]]
    for f in factors[1:]:
        prefix.append(f @ prefix[-1])
    return prefix


def factor_gradients(factors: list[np.ndarray], prefix: list[np.ndarray],
                     resid: np.ndarray) -> list[np.ndarray]:
    """Gradients ``(W_L..W_{i+1})^T R (W_{i-1}..W_1)^T`` of a loss with ``dLoss/dW = R``.

    Args:
        factors: ``W_1 .. W_L``, batch axis first.
        prefix: Output of :func:`end_to_end` for ``factors``.
        resid: ``dLoss/dW``, shape (B, n, n).

    Returns:
        One gradient per factor, with the factor's shape.
    """
    grads: list[np.ndarray] = [np.empty(0)] * len(factors)
    back = resid
    for i in range(len(factors) - 1, -1, -1):
        grads[i] = back @ np.swapaxes(prefix[i - 1], 1, 2) if i > 0 else back
        if i > 0:
            back = np.swapaxes(factors[i], 1, 2) @ back
    return grads


@contextmanager
def _single_thread():
    with threadpool_limits(limits=1):
        yield


@_single_thread()
def train_gd(factors: list[np.ndarray], target: np.ndarray, mask: np.ndarray, lr, steps: int, *,
             reduction: str = "sum", record_every: int = 0, record=None, tol: float = 0.0):
    """Full-batch GD on ``0.5 * sum_{Omega} (W - M)^2`` (or its mean over Omega), in place.

    Args:
        factors: ``W_1 .. W_L`` (batch axis first), updated in place.
        target: Targets M, shape (B, n, n) or (n, n).
        mask: Observation masks (0/1), shape (B, n, n).
        lr: Step size, a float or shape (B,).
        steps: Number of steps.
        reduction: ``"sum"`` or ``"mean"`` (divide by ``|Omega|`` of each run).
        record_every: Call ``record(step, W)`` every this many steps (0: never).
        record: Callback receiving the step and W of shape (B, n, n).
        tol: Stop early once every run's loss is below ``tol`` (checked every 100 steps).

    Returns:
        ``(losses, steps_taken)``: final losses of shape (B,) and the number of steps done.
    """
    weight = mask.astype(np.float64)
    if reduction == "mean":
        weight = weight / np.maximum(weight.sum(axis=(1, 2), keepdims=True), 1.0)
    lr_arr = np.broadcast_to(np.asarray(lr, dtype=np.float64), (mask.shape[0],))[:, None, None]
    taken = steps
    for t in range(steps + 1):
        prefix = end_to_end(factors)
        diff = prefix[-1] - target
        if record_every and record is not None and t % record_every == 0:
            record(t, prefix[-1])
        if tol > 0 and t % 100 == 0:
            loss = 0.5 * np.sum(weight * diff * diff, axis=(1, 2))
            if np.all(loss < tol):
                taken = t
                break
        if t == steps:
            break
        grads = factor_gradients(factors, prefix, weight * diff)
        for f, g in zip(factors, grads):
            f -= lr_arr * g
    w = end_to_end(factors)[-1]
    diff = w - target
    return 0.5 * np.sum(weight * diff * diff, axis=(1, 2)), taken


def _sigma_ratio(w: np.ndarray) -> np.ndarray:
    s = np.linalg.svd(w, compute_uv=False)
    return s[..., 1] / s[..., 0]


def _coupling(config: Config, depth: int, rng: np.random.Generator) -> CouplingRun:
    gauss = init_factors(1, 2, 2, depth, config.coupling_e2e_scale, "gauss", rng)
    diag = init_factors(1, 2, 2, depth, config.coupling_e2e_scale, "diag", rng)
    # batch: [gauss both, gauss only-11, diag both, diag only-11]
    factors = [np.concatenate([g, g, d, d]) for g, d in zip(gauss, diag)]
    both = np.diag([1.0, 1.0])
    only = np.diag([1.0, 0.0])
    mask = np.stack([both, only, both, only])
    target = np.eye(2)
    steps = config.coupling_steps
    w11 = np.empty((steps + 1, 4))

    def record(t, w):
        w11[t] = w[:, 0, 0]

    train_gd(factors, target, mask, config.coupling_lr, steps, record_every=1, record=record)
    w = end_to_end(factors)[-1]
    return CouplingRun(
        depth=depth,
        coupling_gauss=float(np.max(np.abs(w11[:, 0] - w11[:, 1]))),
        coupling_diag=float(np.max(np.abs(w11[:, 2] - w11[:, 3]))),
        w11_both=w11[:, 0].copy(), w11_only=w11[:, 1].copy(),
        final_product=float(w[0, 0, 1] * w[0, 1, 0]))


def _rank(config: Config, depth: int, lr: float, rng: np.random.Generator) -> RankRun:
    seeds = config.rank_seeds
    gauss = init_factors(seeds, 2, config.rank_width, depth, config.rank_e2e_scale, config.init,
                         rng)
    diag = init_factors(1, 2, config.rank_width, depth, config.rank_e2e_scale, "diag", rng)
    factors = [np.concatenate([g, d]) for g, d in zip(gauss, diag)]
    mask = np.broadcast_to(np.eye(2), (seeds + 1, 2, 2))
    loss, taken = train_gd(factors, np.eye(2), mask, lr, config.rank_max_steps,
                           tol=config.rank_tol)
    w = end_to_end(factors)[-1]
    ratio = _sigma_ratio(w)
    return RankRun(depth=depth, lr=float(lr), sigma_ratio=ratio[:seeds],
                   product=w[:seeds, 0, 1] * w[:seeds, 1, 0], final_loss=loss[:seeds],
                   diag_sigma_ratio=float(ratio[seeds]), steps=int(taken))


def _plasticity_problem(config: Config, rng: np.random.Generator):
    n, seeds = config.n, config.plasticity_seeds
    u = rng.standard_normal((seeds, n))
    v = u if config.truth == "rank1_sym" else rng.standard_normal((seeds, n))
    truth = u[:, :, None] * v[:, None, :]
    truth /= np.sqrt(np.mean(truth**2, axis=(1, 2), keepdims=True))
    blocks = config.block_of
    in_block = blocks[:, None] == blocks[None, :]
    omega1 = in_block[None] & (rng.random((seeds, n, n)) < config.p_obs)
    # n_off random off-block entries per seed (without replacement)
    keys = np.where(in_block[None], np.inf, rng.random((seeds, n, n))).reshape(seeds, -1)
    cutoff = np.sort(keys, axis=1)[:, config.n_off - 1: config.n_off] if config.n_off else None
    extra = (keys <= cutoff) if config.n_off else np.zeros_like(keys, dtype=bool)
    omega2 = omega1 | extra.reshape(seeds, n, n)
    return truth, omega1, omega2


def _plasticity(config: Config, depth: int, resume: int, rng: np.random.Generator,
                problem) -> PlasticityRun:
    truth, omega1, omega2 = problem
    seeds = config.plasticity_seeds
    init = init_factors(seeds, config.n, config.width, depth, config.plasticity_e2e_scale,
                        config.init, rng)
    lengths = config.pretrain_lengths
    # GD is memoryless: pre-train in segments and snapshot the factors at every length
    pre = [f.copy() for f in init]
    snapshots = []
    done = 0
    for length in lengths[1:]:
        train_gd(pre, truth, omega1, config.plasticity_lr, length - done, reduction="mean")
        snapshots.append([f.copy() for f in pre])
        done = length
    pretrain_ratio = _sigma_ratio(end_to_end(pre)[-1])
    # batch: [scratch seeds, pre-trained seeds for each length], all on omega2
    groups = len(lengths)
    factors = [np.concatenate([f] + [snap[i] for snap in snapshots])
               for i, f in enumerate(init)]
    target = np.concatenate([truth] * groups)
    mask = np.concatenate([omega2] * groups)
    test = ~mask
    n_test = np.maximum(test.sum(axis=(1, 2)), 1)
    every = config.record_every
    rec_steps = np.arange(0, resume + 1, every)
    curve = np.empty((groups * seeds, len(rec_steps)))

    def rmse(w):
        return np.sqrt(np.sum(test * (w - target) ** 2, axis=(1, 2)) / n_test)

    def record(t, w):
        curve[:, t // every] = rmse(w)

    train_gd(factors, target, mask, config.plasticity_lr, resume, reduction="mean",
             record_every=every, record=record)
    w = end_to_end(factors)[-1]
    final = rmse(w).reshape(groups, seeds)
    ratio = _sigma_ratio(w).reshape(groups, seeds)
    return PlasticityRun(depth=depth, scratch_rmse=final[0], pretrained_rmse=final[-1],
                         pretrain_sigma_ratio=pretrain_ratio, scratch_sigma_ratio=ratio[0],
                         pretrained_sigma_ratio=ratio[-1], record_steps=rec_steps,
                         scratch_curve=curve[:seeds], pretrained_curve=curve[-seeds:],
                         lengths=np.asarray(lengths), length_rmse=final)


def run(config: Config | None = None) -> Result:
    """Run the coupling, rank and plasticity experiments.

    Args:
        config: The study config (defaults if None).

    Returns:
        A :class:`Result`.
    """
    config = study_config(config, Config)
    root = np.random.SeedSequence(config.seed)
    seq_coupling, seq_rank, seq_problem, seq_plast = root.spawn(4)
    result = Result(config=config)
    with _single_thread():
        rng = as_generator(seq_coupling)
        for depth in config.depths:
            result.coupling.append(_coupling(config, depth, rng))
        rng = as_generator(seq_rank)
        for depth, lr in zip(config.depths, config.rank_lrs):
            result.rank.append(_rank(config, depth, lr, rng))
        problem = _plasticity_problem(config, as_generator(seq_problem))
        rng = as_generator(seq_plast)
        for depth, resume in zip(config.plasticity_depths, config.resume_steps):
            result.plasticity.append(_plasticity(config, depth, resume, rng, problem))
    return result


def claims(result: Result) -> list[Claim]:
    """Evaluate the paper's predictions on a run.

    Args:
        result: Output of :func:`run`.

    Returns:
        The claims (thresholds from the spec's calibration runs).
    """
    out: list[Claim] = []
    coup = {c.depth: c for c in result.coupling}
    if 2 in coup:
        c2 = coup[2]
        out.append(Claim("depth2_decoupled",
                         "depth 2, Gaussian init: coupling == 0 (tolerance 1e-12)",
                         c2.coupling_gauss, c2.coupling_gauss <= 1e-12))
    diag = np.array([c.coupling_diag for c in result.coupling])
    out.append(Claim("diag_init_decoupled", "diagonal init, every depth: coupling == 0 (1e-12)",
                     diag, bool(np.all(diag <= 1e-12))))
    deep = [c for c in result.coupling if c.depth >= 3]
    if deep:
        values = np.array([c.coupling_gauss for c in deep])
        grows = bool(np.all(np.diff(values) > 0))
        out.append(Claim(
            "deep_coupled_and_growing",
            "depth >= 3, Gaussian init: coupling > 1e-3 and increasing with depth",
            f"depths {[c.depth for c in deep]}: {np.array2string(values, precision=3)}",
            bool(np.all(values > 1e-3)) and grows))
    thresholds = {2: ("> 0.05", lambda m: m > 0.05), 3: ("< 0.01", lambda m: m < 0.01)}
    for rank_run in result.rank:
        med = float(np.median(rank_run.sigma_ratio))
        text, test = thresholds.get(rank_run.depth, ("< 1e-3", lambda m: m < 1e-3))
        name = "depth2_not_rank1" if rank_run.depth == 2 else f"depth{rank_run.depth}_rank1"
        out.append(Claim(
            name,
            f"2x2 diagonal observations, depth {rank_run.depth}: median sigma2/sigma1 {text} "
            "(converged runs)",
            f"median {med:.3g} (loss max {rank_run.final_loss.max():.1e})",
            test(med) and bool(np.all(rank_run.final_loss < 1e-8))))
    diag_ratio = np.array([r.diag_sigma_ratio for r in result.rank])
    out.append(Claim("diag_init_full_rank", "diagonal init: final sigma2/sigma1 > 0.99 (W -> I)",
                     diag_ratio, bool(np.all(diag_ratio > 0.99))))
    plast = {p.depth: p for p in result.plasticity}
    if 2 in plast:
        p2 = plast[2]
        pre, scr = float(np.median(p2.pretrained_rmse)), float(np.median(p2.scratch_rmse))
        out.append(Claim(
            "depth2_loses_plasticity",
            "depth 2: median pre-trained test RMSE > 0.1 and > 5x median scratch RMSE",
            f"pretrained {pre:.3g}, scratch {scr:.3g}", pre > 0.1 and pre > 5 * scr))
    for depth, p in plast.items():
        if depth >= 3:
            pre = float(np.median(p.pretrained_rmse))
            out.append(Claim(
                f"depth{depth}_keeps_plasticity",
                f"depth {depth}: median pre-trained test RMSE < 0.05", pre, pre < 0.05))
    pre_ratio = {d: float(np.median(p.pretrain_sigma_ratio)) for d, p in plast.items()}
    low = all(r < 0.01 for d, r in pre_ratio.items() if d >= 3)
    high = all(r > 0.1 for d, r in pre_ratio.items() if d == 2)
    out.append(Claim(
        "pretraining_low_rank_iff_deep",
        "after pre-training on the diagonal blocks: median sigma2/sigma1 > 0.1 at depth 2 "
        "(blocks completed independently), < 0.01 at depth >= 3",
        ", ".join(f"L={d}: {r:.3g}" for d, r in pre_ratio.items()), low and high))
    scratch = np.array([np.median(p.scratch_rmse) for p in result.plasticity])
    out.append(Claim("scratch_recovers", "median scratch test RMSE < 0.05 at every depth",
                     scratch, bool(np.all(scratch < 0.05))))
    return out


def plot(result: Result) -> dict:
    """Figures of the study.

    Args:
        result: Output of :func:`run`.

    Returns:
        ``{"headline": coupling vs depth, 2x2 final sigma2/sigma1, test RMSE vs pre-training
        length;
        "plasticity_curves": test RMSE along the resume phase}``.
    """
    plt, sns = plotting_modules()

    sns.set_theme(style="whitegrid", context="paper")
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    depths = [c.depth for c in result.coupling]
    x = np.arange(len(depths))
    floor = 1e-17
    ax = axes[0]
    ax.bar(x - 0.2, [max(c.coupling_gauss, floor) for c in result.coupling], 0.4,
           label="Gaussian init")
    ax.bar(x + 0.2, [max(c.coupling_diag, floor) for c in result.coupling], 0.4,
           label="diagonal init")
    ax.set_yscale("log")
    ax.set_ylim(floor / 2, 10)
    ax.set_xticks(x, [f"L={d}" for d in depths])
    ax.set_ylabel(r"coupling $\max_t |W_{11}^{both}-W_{11}^{only}|$")
    ax.set_title("2x2: coupling of the diagonal blocks\n(bars at 1e-17 are exactly 0)")
    ax.legend(fontsize=7)
    ax = axes[1]
    for i, rank_run in enumerate(result.rank):
        jitter = np.linspace(-0.15, 0.15, len(rank_run.sigma_ratio))
        ax.scatter(i + jitter, np.maximum(rank_run.sigma_ratio, 1e-12), color="C0",
                   label="Gaussian init" if i == 0 else None)
        ax.scatter([i], [rank_run.diag_sigma_ratio], color="C1", marker="s",
                   label="diagonal init" if i == 0 else None)
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(result.rank)), [f"L={r.depth}" for r in result.rank])
    ax.set_ylabel(r"final $\sigma_2/\sigma_1$")
    ax.set_title(r"2x2, observe $W_{11}=W_{22}=1$: rank 1 iff depth $\geq 3$")
    ax.legend(fontsize=7)
    ax = axes[2]
    for i, p in enumerate(result.plasticity):
        ax.plot(p.lengths, np.median(p.length_rmse, axis=1), "o-", color=f"C{i}",
                label=f"L={p.depth} (median)")
        for g, length in enumerate(p.lengths):
            ax.scatter(np.full(p.length_rmse.shape[1], length), p.length_rmse[g],
                       color=f"C{i}", s=8, alpha=0.5)
    ax.set_xscale("symlog", linthresh=50)
    ax.set_xlabel("pre-training steps on the diagonal blocks (0 = from scratch)")
    ax.set_ylabel("test RMSE after resuming (unobserved entries)")
    ax.set_title("Plasticity: depth 2 fails after pre-training")
    ax.legend(fontsize=7)
    fig.tight_layout()

    fig2, axes2 = plt.subplots(1, len(result.plasticity), figsize=(5 * len(result.plasticity),
                                                                  3.4), squeeze=False)
    for ax, p in zip(axes2[0], result.plasticity):
        for s in range(p.scratch_curve.shape[0]):
            ax.semilogy(p.record_steps, np.maximum(p.scratch_curve[s], 1e-12), color="C0",
                        alpha=0.7, label="from scratch" if s == 0 else None)
            ax.semilogy(p.record_steps, np.maximum(p.pretrained_curve[s], 1e-12), color="C1",
                        alpha=0.7, label="pre-trained" if s == 0 else None)
        ax.set_title(f"depth {p.depth}: test RMSE while training on the full observations")
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    fig2.tight_layout()
    return {"headline": fig, "plasticity_curves": fig2}
