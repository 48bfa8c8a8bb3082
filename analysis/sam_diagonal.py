"""SAM on deep linear diagonal networks: "Minor First, Major Last".

An L-layer diagonal network ``beta = w_1 * ... * w_L`` (elementwise) is trained on one positive
example ``x = (1, 2, 3, 4, 5)`` (label +1) with GD, l2-SAM, l-infinity-SAM and unnormalized
SAM (USAM), all through :class:`rlhf_gbpm.analysis.optimizers.SAM` wrapping
``torch.optim.SGD``. Every run of a kind shares one batched parameter tensor of shape
(R, L, d), so the whole study is one loop.

By default the descent uses the *rescaled* flow of the spec: the gradient is divided by
``mean_i |l'(m_i)|``, i.e. the objective is ``-sum_i p_i m_i`` with ``p_i`` the normalized
loss-derivative weights, computed in the log domain. Norms then grow exponentially and a run
stops when ``||beta||_1 > stop_norm`` (or is declared collapsed when ``||beta||_1`` falls below
``collapse_norm``).

Predictions checked (spec ``sam_diagonal.md`` section 3): depth 1 gives the l2 max-margin for
all methods; depth-2 GD gives the l1 max-margin (the major coordinate); depth-2 l-infinity-SAM
keeps exactly the coordinates with ``a_i(0) > rho`` and converges to the largest of them (or
to 0); depth-2 l2-SAM amplifies minor coordinates first and shifts to larger ones, with a first
dominant coordinate that grows with ``alpha / rho`` and a collapse below a threshold; GD and
USAM show no such init dependence.
"""

from __future__ import annotations

import logging
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
from rlhf_gbpm.analysis._losses import check_loss, loss_value, loss_weights
from rlhf_gbpm.analysis._maxmargin import cosine, max_margin
from rlhf_gbpm.analysis.optimizers.sam import SAM

__all__ = ["NAME", "DESCRIPTION", "REFERENCE", "Config", "Result", "run", "plot", "claims"]

logger = logging.getLogger(__name__)

NAME = "sam_diagonal"
DESCRIPTION = "SAM on linear diagonal networks: minor features first, major last."
REFERENCE = (
    "C. Moon, D. Si, C. Yun, 'Minor First, Major Last: A Depth-Induced Implicit Bias of "
    "Sharpness-Aware Minimization', ICLR 2026, arXiv:2603.08290"
)

ALGOS: tuple[str, ...] = ("gd", "l2sam", "linfsam", "usam")
_GROUP = {"gd": (False, "l2"), "l2sam": (True, "l2"), "linfsam": (True, "linf"),
          "usam": (True, "none")}
DOMINANCE_SHARE = 0.4  # a coordinate "dominates" once it holds more than 40 % of ||beta||_1


def _tuple_of_reals(value, name, *, positive=False, min_len=1):
    if not isinstance(value, tuple) or len(value) < min_len:
        raise TypeError(f"{name} must be a tuple of at least {min_len} numbers.")
    for v in value:
        check_scalar(v, name, numbers.Real, min_val=0.0,
                     include_boundaries="neither" if positive else "both")


@dataclass(frozen=True)
class Config:
    """Configuration of the SAM diagonal-network study (CPU-cheap defaults)."""

    x: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0, 5.0)
    """The single training example (label +1); positive entries, d = len(x)."""
    depth: int = 2
    """Number of layers L of the diagonal network (>= 1); the claims are for L = 2."""
    rho: float = 0.05
    """SAM perturbation radius."""
    lr: float = 2e-3
    """Step size of the depth-L runs (rescaled time step)."""
    steps: int = 20_000
    """Maximum number of steps of the depth-L runs (runs also stop at stop/collapse norms)."""
    loss: str = "logistic"
    """Loss: "logistic" or "exponential"."""
    rescale: bool = True
    """Divide the descent gradient by mean |l'| (the rescaled flow); False gives plain SAM."""
    stop_norm: float = 1e10
    """A run stops once ||beta||_1 exceeds this value."""
    collapse_norm: float = 1e-5
    """A run is collapsed (and stops) once ||beta||_1 falls below this value."""
    log_every: int = 10
    """Record beta every this many steps."""
    headline_ratio: float = 0.38
    """alpha / rho of the headline sequential-amplification run (l2-SAM and GD)."""
    sweep_ratios: tuple[float, ...] = (0.30, 0.34, 0.36, 0.38, 0.40, 0.45, 0.6, 1.0, 1.5)
    """alpha / rho values of the init sweep, run for l2-SAM, USAM and GD."""
    gd_alphas: tuple[float, ...] = (0.01, 0.1)
    """Extra uniform init scales for GD (l1 max-margin check)."""
    usam_alphas: tuple[float, ...] = (0.018, 0.1)
    """Extra uniform init scales for USAM (no init dependence)."""
    linf_alphas: tuple[float, ...] = (0.03, 0.049, 0.051, 0.08)
    """Uniform init scales for l-infinity-SAM (collapse below rho, major coordinate above)."""
    linf_init: tuple[float, ...] = (0.03, 0.07, 0.06, 0.04, 0.02)
    """A per-coordinate init for l-infinity-SAM (and GD) whose predicted limit is e_3."""
    n_random_inits: int = 12
    """Random per-coordinate inits a_i(0) ~ U[0, 2 rho] for the l-infinity-SAM limit map."""
    depth1_n: int = 12
    """Depth-1 sanity check: number of Gaussian separable examples."""
    depth1_d: int = 6
    """Depth-1 sanity check: dimension."""
    depth1_lr: float = 1e-2
    """Depth-1 sanity check: step size."""
    depth1_steps: int = 3000
    """Depth-1 sanity check: number of steps."""
    seed: int = 0
    """Seed of the random inits and of the depth-1 data."""

    def __post_init__(self):
        _tuple_of_reals(self.x, "x", positive=True)
        check_scalar(self.depth, "depth", numbers.Integral, min_val=1)
        check_scalar(self.rho, "rho", numbers.Real, min_val=0.0, include_boundaries="neither")
        check_scalar(self.lr, "lr", numbers.Real, min_val=0.0, include_boundaries="neither")
        check_scalar(self.steps, "steps", numbers.Integral, min_val=1)
        check_loss(self.loss)
        if not isinstance(self.rescale, bool):
            raise TypeError(
                f"rescale must be an instance of bool, not {type(self.rescale).__name__}.")
        check_scalar(self.stop_norm, "stop_norm", numbers.Real, min_val=0.0,
                     include_boundaries="neither")
        check_scalar(self.collapse_norm, "collapse_norm", numbers.Real, min_val=0.0,
                     max_val=self.stop_norm, include_boundaries="neither")
        check_scalar(self.log_every, "log_every", numbers.Integral, min_val=1)
        check_scalar(self.headline_ratio, "headline_ratio", numbers.Real, min_val=0.0,
                     include_boundaries="neither")
        _tuple_of_reals(self.sweep_ratios, "sweep_ratios", positive=True)
        _tuple_of_reals(self.gd_alphas, "gd_alphas", positive=True, min_len=0)
        _tuple_of_reals(self.usam_alphas, "usam_alphas", positive=True, min_len=0)
        _tuple_of_reals(self.linf_alphas, "linf_alphas", positive=True, min_len=0)
        _tuple_of_reals(self.linf_init, "linf_init", min_len=0)
        if self.linf_init and len(self.linf_init) != len(self.x):
            raise ValueError(
                f"linf_init must have len(x) == {len(self.x)} entries, got {len(self.linf_init)}."
            )
        check_scalar(self.n_random_inits, "n_random_inits", numbers.Integral, min_val=0)
        check_scalar(self.depth1_n, "depth1_n", numbers.Integral, min_val=1)
        check_scalar(self.depth1_d, "depth1_d", numbers.Integral, min_val=1)
        check_scalar(self.depth1_lr, "depth1_lr", numbers.Real, min_val=0.0,
                     include_boundaries="neither")
        check_scalar(self.depth1_steps, "depth1_steps", numbers.Integral, min_val=1)
        check_scalar(self.seed, "seed", numbers.Integral, min_val=0)
        check_finite_fields(self, allow_inf=("stop_norm",))

    @property
    def d(self) -> int:
        """Dimension of the example."""
        return len(self.x)

    @property
    def major(self) -> int:
        """1-based index of the largest coordinate of x (the l1 max-margin direction)."""
        return int(np.argmax(self.x)) + 1


@dataclass(frozen=True)
class RunInfo:
    """One run of the depth-L batch.

    Attributes:
        algo: One of :data:`ALGOS`.
        kind: "sweep", "extra", "linf_uniform", "linf_custom" or "linf_random".
        alpha: Uniform init scale, or nan for a per-coordinate init.
        init: The per-coordinate init a(0) of every layer, shape (d,).
    """

    algo: str
    kind: str
    alpha: float
    init: np.ndarray


@dataclass
class Result:
    """Trajectories of the study.

    Attributes:
        config: The config used.
        runs: One :class:`RunInfo` per run, length R.
        t: Recorded steps, shape (n_log,).
        beta: End-to-end weights at the recorded steps, shape (n_log, R, d).
        loss: Training loss at the recorded steps, shape (n_log, R).
        depth1_t: Recorded steps of the depth-1 runs, shape (n1,).
        depth1_algos: Algorithms of the depth-1 runs.
        depth1_cos: Cosine to the l2 max-margin direction, shape (n1, len(depth1_algos)).
    """

    config: Config
    runs: list[RunInfo]
    t: np.ndarray
    beta: np.ndarray
    loss: np.ndarray
    depth1_t: np.ndarray
    depth1_algos: tuple[str, ...]
    depth1_cos: np.ndarray
    extras: dict = field(default_factory=dict)

    @property
    def norm(self) -> np.ndarray:
        """``||beta||_1``, shape (n_log, R)."""
        return np.abs(self.beta).sum(-1)

    @property
    def share(self) -> np.ndarray:
        """``|beta_i| / ||beta||_1``, shape (n_log, R, d)."""
        nrm = self.norm[..., None]
        return np.abs(self.beta) / np.where(nrm > 0, nrm, 1.0)

    @property
    def feature_position(self) -> np.ndarray:
        """``sum_i i * share_i`` with 1-based i, shape (n_log, R)."""
        return self.share @ np.arange(1, self.beta.shape[-1] + 1)

    @property
    def collapsed(self) -> np.ndarray:
        """Whether each run ended with ``||beta||_1 < collapse_norm``, shape (R,)."""
        return self.norm[-1] < self.config.collapse_norm

    @property
    def limit(self) -> np.ndarray:
        """1-based index of the final dominant coordinate, 0 if collapsed, shape (R,)."""
        idx = np.argmax(self.share[-1], axis=-1) + 1
        return np.where(self.collapsed, 0, idx)

    def sequence(self, r: int) -> list[tuple[int, int]]:
        """Order in which coordinates first dominate run ``r``.

        Args:
            r: Run index.

        Returns:
            ``(coordinate (1-based), step)`` pairs, each time a new coordinate holds more than
            40 % of ``||beta||_1``; records below the collapse norm are ignored.
        """
        share, norm = self.share[:, r], self.norm[:, r]
        seq: list[tuple[int, int]] = []
        for k in range(len(self.t)):
            if norm[k] < self.config.collapse_norm:
                continue
            c = int(np.argmax(share[k]))
            if share[k, c] > DOMINANCE_SHARE and (not seq or seq[-1][0] != c + 1):
                seq.append((c + 1, int(self.t[k])))
        return seq

    def first_dominant(self, r: int) -> int:
        """First dominant coordinate (1-based) of run ``r``; 0 if it collapsed or none."""
        if self.collapsed[r]:
            return 0
        seq = self.sequence(r)
        return seq[0][0] if seq else 0

    def select(self, algo: str, kind: str | None = None) -> list[int]:
        """Indices of the runs of an algorithm (and kind)."""
        return [i for i, ri in enumerate(self.runs)
                if ri.algo == algo and (kind is None or ri.kind == kind)]


def _build_runs(cfg: Config, rng: np.random.Generator) -> list[RunInfo]:
    d = cfg.d
    runs: list[RunInfo] = []

    def uniform(algo, kind, alpha):
        runs.append(RunInfo(algo, kind, float(alpha), np.full(d, float(alpha))))

    for algo in ("gd", "l2sam", "usam"):
        for ratio in cfg.sweep_ratios:
            uniform(algo, "sweep", ratio * cfg.rho)
    for alpha in cfg.gd_alphas:
        uniform("gd", "extra", alpha)
    for alpha in cfg.usam_alphas:
        uniform("usam", "extra", alpha)
    for alpha in cfg.linf_alphas:
        uniform("linfsam", "linf_uniform", alpha)
    if cfg.linf_init:
        a0 = np.asarray(cfg.linf_init, dtype=float)
        runs.append(RunInfo("linfsam", "linf_custom", float("nan"), a0))
        runs.append(RunInfo("gd", "linf_custom", float("nan"), a0))
    for a0 in rng.uniform(0.0, 2.0 * cfg.rho, size=(cfg.n_random_inits, d)):
        runs.append(RunInfo("linfsam", "linf_random", float("nan"), a0))
    return runs


def _simulate(Z, inits, algos, *, depth, rho, lr, steps, loss, rescale, log_every,
              stop_norm=np.inf, collapse_norm=0.0):
    """Run GD/SAM variants on a diagonal network, one batched parameter per algorithm.

    Args:
        Z: Label-absorbed data, shape (n, d).
        inits: Per-run inits of every layer, shape (R, d).
        algos: Algorithm of each run, length R.
        depth: Number of layers.
        rho: SAM radius.
        lr: Step size.
        steps: Maximum number of steps.
        loss: Loss name.
        rescale: Use the rescaled flow.
        log_every: Recording period.
        stop_norm: Stop a run when ||beta||_1 exceeds this.
        collapse_norm: Stop a run when ||beta||_1 falls below this.

    Returns:
        ``(t, beta, loss)`` with shapes (n_log,), (n_log, R, d), (n_log, R), in run order.
    """
    algos = np.asarray(algos)
    order = np.concatenate([np.flatnonzero(algos == a) for a in ALGOS])
    inverse = np.argsort(order)
    Zt = torch.as_tensor(Z, dtype=torch.float64)
    params, groups = [], []
    for a in ALGOS:
        idx = np.flatnonzero(algos == a)
        if idx.size == 0:
            continue
        init = np.repeat(np.asarray(inits, dtype=float)[idx][:, None, :], depth, axis=1)
        p = torch.nn.Parameter(torch.as_tensor(init, dtype=torch.float64))
        params.append(p)
        perturb, norm = _GROUP[a]
        groups.append({"params": [p], "rho": rho if perturb else 0.0, "norm": norm})
    opt = SAM(groups, torch.optim.SGD, rho=rho, batch_dims=1, lr=lr)
    active = torch.ones(len(algos), dtype=torch.float64)

    def closure():
        opt.zero_grad()
        margins = torch.cat(params).prod(dim=1) @ Zt.T  # (R, n)
        if rescale:
            weights = loss_weights(margins, loss).detach()
            objective = -(weights * margins).sum(-1)
        else:
            objective = loss_value(margins, loss).mean(-1)
        (objective * active).sum().backward()
        return objective

    ts, betas, losses = [], [], []

    def record(t):
        with torch.no_grad():
            beta = torch.cat(params).prod(dim=1)
            margins = beta @ Zt.T
            ts.append(t)
            betas.append(beta.numpy()[inverse].copy())
            losses.append(loss_value(margins, loss).mean(-1).numpy()[inverse].copy())
            nrm = beta.abs().sum(-1)
            alive = nrm < stop_norm
            if collapse_norm > 0:
                alive &= nrm > collapse_norm
            active.mul_(alive.to(torch.float64))

    record(0)
    for t in range(1, steps + 1):
        opt.step(closure)
        if t % log_every == 0 or t == steps:
            record(t)
            if not bool(active.any()):
                break
    return np.asarray(ts), np.stack(betas), np.stack(losses)


def _depth1_data(cfg: Config, rng: np.random.Generator) -> np.ndarray:
    X = rng.normal(size=(cfg.depth1_n, cfg.depth1_d))
    w_star = rng.normal(size=cfg.depth1_d)
    y = np.sign(X @ w_star)
    y[y == 0] = 1.0
    return y[:, None] * X


def run(config: Config | None = None) -> Result:
    """Run every depth-L run in one batched loop, then the depth-1 sanity runs.

    Args:
        config: The study config (defaults if None).

    Returns:
        A :class:`Result` with the trajectories.
    """
    cfg = study_config(config, Config)
    runs = _build_runs(cfg, np.random.default_rng((cfg.seed, 0)))
    x = np.asarray(cfg.x, dtype=float)[None, :]
    with torch_threads(1):
        t, beta, loss = _simulate(
            x, np.stack([r.init for r in runs]), [r.algo for r in runs], depth=cfg.depth,
            rho=cfg.rho, lr=cfg.lr, steps=cfg.steps, loss=cfg.loss, rescale=cfg.rescale,
            log_every=cfg.log_every, stop_norm=cfg.stop_norm, collapse_norm=cfg.collapse_norm)
        Z1 = _depth1_data(cfg, np.random.default_rng((cfg.seed, 1)))
        algos1 = ("gd", "l2sam", "linfsam")
        t1, beta1, _ = _simulate(
            Z1, np.zeros((3, cfg.depth1_d)), algos1, depth=1, rho=cfg.rho, lr=cfg.depth1_lr,
            steps=cfg.depth1_steps, loss=cfg.loss, rescale=cfg.rescale,
            log_every=max(1, cfg.depth1_steps // 200))
    ref = max_margin(Z1, "l2")
    logger.info("sam_diagonal: %d runs, %d records", len(runs), len(t))
    return Result(config=cfg, runs=runs, t=t, beta=beta, loss=loss, depth1_t=t1,
                  depth1_algos=algos1, depth1_cos=cosine(beta1, ref.w),
                  extras={"depth1_Z": Z1, "depth1_w_l2": ref.w})


def _predicted_linf_limit(a0, x, rho) -> int:
    alive = np.flatnonzero(np.asarray(a0) > rho)
    if alive.size == 0:
        return 0
    return int(alive[np.argmax(np.asarray(x)[alive])]) + 1


def claims(result: Result) -> list[Claim]:
    """Evaluate the paper's predictions on a run.

    Args:
        result: Output of :func:`run`.

    Returns:
        The claims (depth-2 claims only when ``depth == 2``).
    """
    cfg = result.config
    out: list[Claim] = []
    final_cos = result.depth1_cos[-1]
    out.append(Claim(
        "depth1_l2_max_margin",
        "L=1: GD, l2-SAM, linf-SAM all reach cos(beta, w_l2mm) > 0.99",
        ", ".join(f"{a}={c:.5f}" for a, c in zip(result.depth1_algos, final_cos)),
        bool(np.all(final_cos > 0.99)),
    ))
    if cfg.depth != 2:
        return out
    major = cfg.major
    share = result.share[-1]

    gd = result.select("gd", "extra")
    if gd:
        s = share[gd, major - 1]
        out.append(Claim("gd_l1_max_margin",
                         f"L=2 GD: final share of coordinate {major} > 0.99 for every alpha",
                         s, bool(np.all(s > 0.99) and not result.collapsed[gd].any())))

    linf_u = result.select("linfsam", "linf_uniform")
    if linf_u:
        alphas = np.array([result.runs[i].alpha for i in linf_u])
        below, above = [i for i, a in zip(linf_u, alphas) if a < cfg.rho], \
            [i for i, a in zip(linf_u, alphas) if a > cfg.rho]
        ok = all(result.norm[-1, i] < 1e-4 and result.loss[-1, i] > 0.69 for i in below)
        ok &= all(share[i, major - 1] > 0.99 for i in above)
        out.append(Claim(
            "linf_sam_uniform_init",
            f"L=2 linf-SAM: alpha < rho collapses (||beta||_1 < 1e-4, loss > 0.69); "
            f"alpha > rho gives share of {major} > 0.99",
            "; ".join(f"alpha={a:.3g}: norm={result.norm[-1, i]:.2e}, share{major}="
                      f"{share[i, major - 1]:.4f}" for i, a in zip(linf_u, alphas)),
            ok,
        ))
    custom = result.select("linfsam", "linf_custom")
    gd_custom = result.select("gd", "linf_custom")
    if custom:
        i = custom[0]
        pred = _predicted_linf_limit(result.runs[i].init, cfg.x, cfg.rho)
        s = share[i, pred - 1] if pred > 0 else float("nan")
        gd_lim = int(result.limit[gd_custom[0]]) if gd_custom else -1
        out.append(Claim(
            "linf_sam_reaches_minor_basis_vector",
            f"L=2 linf-SAM from a(0)={cfg.linf_init}: share of predicted e_{pred} > 0.99, "
            f"while GD from the same init reaches e_{major}",
            f"linf-SAM share{pred}={s:.4f}; GD limit e_{gd_lim}",
            bool(pred > 0 and s > 0.99 and gd_lim == major),
        ))
    rand = result.select("linfsam", "linf_random")
    if rand:
        pred = np.array([_predicted_linf_limit(result.runs[i].init, cfg.x, cfg.rho)
                         for i in rand])
        obs = result.limit[rand]
        agree = float(np.mean(pred == obs))
        out.append(Claim(
            "linf_sam_limit_map",
            "L=2 linf-SAM, a_i(0) ~ U[0, 2 rho]: limit = argmax{x_i : a_i(0) > rho} "
            "(0 if none) for 100 % of inits",
            f"{agree:.0%} agreement over {len(rand)} inits",
            agree == 1.0,
        ))

    l2 = {round(result.runs[i].alpha / cfg.rho, 6): i for i in result.select("l2sam", "sweep")}
    gd_sweep = {round(result.runs[i].alpha / cfg.rho, 6): i
                for i in result.select("gd", "sweep")}
    key = round(cfg.headline_ratio, 6)
    if key in l2:
        seq = result.sequence(l2[key])
        coords = [c for c, _ in seq]
        ok = (not result.collapsed[l2[key]] and len(coords) >= 2 and coords[0] <= 2
              and all(b > a for a, b in zip(coords, coords[1:])) and coords[-1] == major)
        out.append(Claim(
            "l2_sam_sequential_amplification",
            f"L=2 l2-SAM, alpha/rho={cfg.headline_ratio}: dominant coordinates start at <= 2, "
            f"strictly increase, end at {major}",
            " -> ".join(f"{c}@{s}" for c, s in seq) or "none",
            ok,
        ))
        if key in gd_sweep:
            first = result.first_dominant(gd_sweep[key])
            out.append(Claim(
                "gd_no_sequential_amplification",
                f"L=2 GD, same init: the first dominant coordinate is already {major} "
                f"(the contrast)",
                first, first == major,
            ))
    firsts = {r: result.first_dominant(i) for r, i in sorted(l2.items())}
    checks, parts = [], []
    mono_vals = [firsts[r] for r in (0.36, 0.38, 0.40, 0.45) if r in firsts]
    if len(mono_vals) >= 2:
        checks.append(all(b >= a for a, b in zip(mono_vals, mono_vals[1:])))
        parts.append("non-decreasing in alpha/rho over 0.36..0.45")
    if 0.6 in firsts:
        checks.append(firsts[0.6] == major)
        parts.append(f"= {major} at 0.6")
    if 0.3 in firsts:
        checks.append(bool(result.collapsed[l2[0.3]]))
        parts.append("collapse (0) at 0.30")
    if checks:
        out.append(Claim(
            "l2_sam_init_dependence",
            "L=2 l2-SAM: first dominant coordinate " + ", ".join(parts),
            ", ".join(f"{r:g}:{v}" for r, v in firsts.items()),
            all(checks),
        ))
    usam = result.select("usam")
    if usam:
        fd = [result.first_dominant(i) for i in usam]
        out.append(Claim(
            "usam_no_init_dependence",
            f"L=2 USAM (unnormalized): first dominant coordinate is {major} for every init",
            f"{sorted(set(fd))} over {len(fd)} inits",
            all(f == major for f in fd),
        ))
        gd_all = result.select("gd", "sweep")
        fd_gd = [result.first_dominant(i) for i in gd_all]
        out.append(Claim(
            "gd_no_init_dependence",
            f"L=2 GD: first dominant coordinate is {major} for every alpha/rho of the sweep",
            f"{sorted(set(fd_gd))} over {len(fd_gd)} inits",
            all(f == major for f in fd_gd),
        ))
    return out


def plot(result: Result) -> dict:
    """Figures: sequential amplification (headline), init dependence, linf map, depth 1.

    Args:
        result: Output of :func:`run`.

    Returns:
        Dict of matplotlib figures, ``"headline"`` first.
    """
    plt, sns = plotting_modules()

    cfg = result.config
    d = cfg.d
    colors = sns.color_palette("viridis", d)
    figs = {}
    ratio = round(cfg.headline_ratio, 6)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, algo, title in zip(axes, ("gd", "l2sam"), ("GD", "l2-SAM")):
        idx = [i for i in result.select(algo, "sweep")
               if round(result.runs[i].alpha / cfg.rho, 6) == ratio]
        if idx:
            i = idx[0]
            t = np.maximum(result.t, 1)
            changed = np.flatnonzero(np.diff(result.norm[:, i]) != 0)
            last = changed[-1] + 2 if changed.size else len(t)  # drop the frozen tail
            for c in range(d):
                ax.plot(t[:last], result.share[:last, i, c], color=colors[c],
                        label=f"x_{c + 1} = {cfg.x[c]:g}")
        ax.set_xscale("log")
        ax.set_xlabel("step")
        ax.set_title(f"{title}, depth {cfg.depth}, alpha/rho = {cfg.headline_ratio:g}")
    axes[0].set_ylabel("share |beta_i| / ||beta||_1")
    if axes[1].get_lines():
        axes[1].legend(fontsize=8, loc="center left")
    fig.tight_layout()
    figs["headline"] = fig

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for algo, marker in (("l2sam", "o"), ("usam", "s"), ("gd", "^")):
        idx = result.select(algo, "sweep")
        r = [result.runs[i].alpha / cfg.rho for i in idx]
        ax.plot(r, [result.first_dominant(i) for i in idx], marker=marker, label=algo)
    ax.set_xscale("log")
    ax.set_xlabel("alpha / rho")
    ax.set_ylabel("first dominant coordinate (0 = collapse)")
    ax.legend()
    fig.tight_layout()
    figs["init_dependence"] = fig

    rand = result.select("linfsam", "linf_random")
    if rand:
        fig, ax = plt.subplots(figsize=(4.2, 4))
        pred = [_predicted_linf_limit(result.runs[i].init, cfg.x, cfg.rho) for i in rand]
        jitter = np.random.default_rng(0).uniform(-0.12, 0.12, size=len(rand))
        ax.scatter(np.asarray(pred) + jitter, result.limit[rand] - jitter, s=18)
        ax.plot([0, d], [0, d], color="gray", lw=0.8)
        ax.set_xlabel("predicted limit argmax{x_i : a_i(0) > rho}")
        ax.set_ylabel("observed limit (0 = collapse)")
        ax.set_title("linf-SAM limit map")
        fig.tight_layout()
        figs["linf_limit_map"] = fig

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for j, algo in enumerate(result.depth1_algos):
        ax.plot(np.maximum(result.depth1_t, 1), np.clip(1 - result.depth1_cos[:, j], 1e-16, None),
                label=algo)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("1 - cos(beta, w_l2mm)")
    ax.set_title("depth 1, Gaussian separable data")
    ax.legend()
    fig.tight_layout()
    figs["depth1"] = fig
    return figs
