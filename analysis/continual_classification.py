"""Sequential GD on continual linear classification: implicit bias and forgetting.

M tasks, each a small set of label-absorbed rows ``z_i`` (a point is correct when
``<z_i, w> > 0``), are trained one after the other, K full-batch GD steps per stage with a
constant step size on the summed logistic loss of the current task, from ``w = 0``; the task
order is cyclic (stage t trains task ``(t - 1) mod M``) or i.i.d. uniform. Instances of the same
shape are simulated together as a batch (tasks, points and coordinates padded with masked
zeros), so one Python loop covers every instance.

Predictions checked (spec ``continual_classification.md`` section 3): on jointly separable
tasks the iterates converge in direction to the *joint* l2 max-margin ``w_hat`` (not to any
task's own), with ``||w|| - ||w_hat|| ln(KJ)`` bounded; the cycle-averaged forgetting ``CF(J)``
decays like ``1/J^2`` and its sign is set by the task alignment (positive for contradicting
tasks, negative, i.e. backward transfer, for aligned ones); random orders reach the same
direction; the sequential max-margin (SMM) projections of Evron et al. do not; on
non-separable tasks a fixed step leaves an error proportional to it, while the horizon-tuned
step ``eta_J = c ln J / (K J)`` drives the error to 0 at about ``ln^2 J / J^2``.
"""

from __future__ import annotations

import logging
import numbers
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from rlhf_gbpm._validation import check_scalar
from rlhf_gbpm.analysis._framework import (
    Claim,
    check_finite_fields,
    geometric_steps,
    plotting_modules,
    study_config,
)
from rlhf_gbpm.analysis._losses import check_loss, loss_value, neg_dloss
from rlhf_gbpm.analysis._maxmargin import cosine, max_margin, min_norm_point

__all__ = [
    "NAME",
    "DESCRIPTION",
    "REFERENCE",
    "PRESETS",
    "Config",
    "InstanceResult",
    "Result",
    "preset_tasks",
    "alignment",
    "smm",
    "run",
    "plot",
    "claims",
]

logger = logging.getLogger(__name__)

NAME = "continual_classification"
DESCRIPTION = "Sequential GD over tasks: joint max-margin direction, forgetting ~ 1/J^2."
REFERENCE = (
    "H. Jung, H. Cho, C. Yun, 'Convergence and Implicit Bias of Gradient Descent on Continual "
    "Linear Classification', ICLR 2025, arXiv:2504.12712"
)

SEPARABLE_PRESETS = ("contradicting_2d", "aligned_2d", "split_contradicting", "split_aligned",
                     "three_task_3d")
PRESETS: tuple[str, ...] = SEPARABLE_PRESETS + ("nonseparable",)
CF_REFERENCES = ("end_of_cycle", "before_last_task")

_U, _V, _U2, _V2 = (1.0, 2.0), (1.0, -2.0), (1.0, 1.5), (1.0, -1.5)
_P4 = (
    ((3.23, -0.594, -0.284), (1.699, -0.935, -0.802)),
    ((1.442, -0.908, 0.079), (2.758, -1.044, -1.618)),
    ((1.346, 0.384, 0.655), (0.373, -2.396, 0.865)),
)


def preset_tasks(name: str) -> list[np.ndarray]:
    """Tasks of a preset instance.

    Args:
        name: One of :data:`PRESETS`.

    Returns:
        One array of label-absorbed rows per task, each of shape (n_m, d).
    """
    if name == "contradicting_2d":
        return [np.array([[1.0, 2.0]]), np.array([[1.0, -2.0]])]
    if name == "aligned_2d":
        return [np.array([[1.0, 0.5]]), np.array([[1.0, -0.5]])]
    if name == "split_contradicting":
        return [np.array([_U, _U2]), np.array([_V, _V2])]
    if name == "split_aligned":
        return [np.array([_U, _V]), np.array([_U2, _V2])]
    if name == "three_task_3d":
        return [np.array(task) for task in _P4]
    if name == "nonseparable":  # 3 tasks x 4 points in 2-D; not jointly separable
        rng = np.random.default_rng(3)
        X = rng.normal(size=(12, 2)) + np.array([0.5, 0.0])
        Z = rng.choice([-1.0, 1.0], size=12)[:, None] * X
        return [Z[0:4], Z[4:8], Z[8:12]]
    raise ValueError(f"preset == {name!r}, must be one of {PRESETS}.")


def alignment(tasks: list[np.ndarray]) -> tuple[float, float]:
    """Positive and negative parts of the cross-task inner products.

    Args:
        tasks: Task rows, each of shape (n_m, d).

    Returns:
        ``(A_plus, A_minus)``: sums over ordered task pairs p != q and points of
        ``max(<z_i, z_j>, 0)`` and ``min(<z_i, z_j>, 0)``.
    """
    a_plus = a_minus = 0.0
    for p, zp in enumerate(tasks):
        for q, zq in enumerate(tasks):
            if p != q:
                g = zp @ zq.T
                a_plus += float(np.clip(g, 0, None).sum())
                a_minus += float(np.clip(g, None, 0).sum())
    return a_plus, a_minus


def smm(tasks: list[np.ndarray], cycles: int) -> np.ndarray:
    """Sequential max-margin projections (Evron et al. 2023), cyclic order from 0.

    ``w_t = argmin ||w - w_{t-1}|| s.t. Z_m w >= 1`` for the task m of stage t.

    Args:
        tasks: Task rows, each of shape (n_m, d), each task separable.
        cycles: Number of cycles.

    Returns:
        The iterate after the last cycle, shape (d,).
    """
    w = np.zeros(tasks[0].shape[1])
    for _ in range(cycles):
        for Z in tasks:
            v, _, ok = min_norm_point(Z, 1.0 - Z @ w)
            if not ok:
                raise ValueError("every task must be separable for SMM.")
            w = w + v
    return w


@dataclass(frozen=True)
class Config:
    """Configuration of the continual-classification study (CPU-cheap defaults)."""

    presets: tuple[str, ...] = PRESETS
    """Instances to run (see PRESETS)."""
    loss: str = "logistic"
    """Loss: "logistic" or "exponential"."""
    K: int = 10
    """GD steps per task visit (separable instances)."""
    eta: float = 0.2
    """Constant step size (separable instances)."""
    J: int = 10_000
    """Number of cycles (random order: M * J stages)."""
    random_order: bool = True
    """Also run the three-task instance with an i.i.d. uniform task order."""
    cf_reference: str = "end_of_cycle"
    """Reference point of the forgetting: "end_of_cycle" or "before_last_task"."""
    smm_cycles: int = 300
    """Cycles of the SMM baseline."""
    nonsep_K: int = 5
    """GD steps per task visit on the non-separable instance."""
    nonsep_etas: tuple[float, ...] = (0.05, 0.0125, 0.003125)
    """Fixed step sizes on the non-separable instance (consecutive ratio 4 for the claim)."""
    nonsep_horizons: tuple[int, ...] = (100, 1000, 10_000)
    """Horizons J of the scheduled step eta_J = schedule_c ln J / (K J)."""
    schedule_c: float = 5.0
    """Constant c of the horizon-dependent step size."""
    n_log: int = 30
    """Approximate number of logged cycles (geometric, plus every power of 10)."""
    seed: int = 0
    """Seed of the random task order."""

    def __post_init__(self):
        if not isinstance(self.presets, tuple) or not self.presets:
            raise TypeError("presets must be a non-empty tuple of names.")
        for name in self.presets:
            if name not in PRESETS:
                raise ValueError(f"presets entry {name!r} must be one of {PRESETS}.")
        check_loss(self.loss)
        check_scalar(self.K, "K", numbers.Integral, min_val=1)
        check_scalar(self.eta, "eta", numbers.Real, min_val=0.0, include_boundaries="neither")
        check_scalar(self.J, "J", numbers.Integral, min_val=1)
        if not isinstance(self.random_order, bool):
            raise TypeError(
                f"random_order must be an instance of bool, not "
                f"{type(self.random_order).__name__}.")
        if self.cf_reference not in CF_REFERENCES:
            raise ValueError(
                f"cf_reference == {self.cf_reference!r}, must be one of {CF_REFERENCES}.")
        check_scalar(self.smm_cycles, "smm_cycles", numbers.Integral, min_val=0)
        check_scalar(self.nonsep_K, "nonsep_K", numbers.Integral, min_val=1)
        if not isinstance(self.nonsep_etas, tuple) or not self.nonsep_etas:
            raise TypeError("nonsep_etas must be a non-empty tuple of numbers.")
        for e in self.nonsep_etas:
            check_scalar(e, "nonsep_etas", numbers.Real, min_val=0.0,
                         include_boundaries="neither")
        if not isinstance(self.nonsep_horizons, tuple) or not self.nonsep_horizons:
            raise TypeError("nonsep_horizons must be a non-empty tuple of ints.")
        for h in self.nonsep_horizons:
            check_scalar(h, "nonsep_horizons", numbers.Integral, min_val=2)
        check_scalar(self.schedule_c, "schedule_c", numbers.Real, min_val=0.0,
                     include_boundaries="neither")
        check_scalar(self.n_log, "n_log", numbers.Integral, min_val=2)
        check_scalar(self.seed, "seed", numbers.Integral, min_val=0)
        check_finite_fields(self)

    @property
    def log_cycles(self) -> np.ndarray:
        """Logged cycles: geometric in [1, J] plus every power of 10 up to J."""
        tens = 10 ** np.arange(int(np.log10(self.J)) + 1)
        return np.union1d(geometric_steps(self.J, self.n_log), tens)

    def schedule(self, horizon: int) -> float:
        """Horizon-dependent step ``eta_J = c ln J / (K J)`` of the non-separable runs."""
        return self.schedule_c * np.log(horizon) / (self.nonsep_K * horizon)


@dataclass
class InstanceResult:
    """Trajectory summary of one instance run.

    Attributes:
        name: Run name, e.g. ``"three_task_3d"`` or ``"nonseparable/eta=0.05"``.
        preset: The preset instance.
        order: "cyclic" or "random".
        eta: Step size.
        K: Steps per stage.
        tasks: Task rows.
        cycles: Logged cycles, shape (n_log,).
        w: Iterates at the end of the logged cycles, shape (n_log, d).
        task_losses: Task losses at the end of the logged cycles, shape (n_log, M).
        cf: Cycle-averaged forgetting at the logged cycles (nan for random order),
            shape (n_log,).
        w_hat: Joint l2 max-margin separator (zeros if not separable), shape (d,).
        w_hat_tasks: Each task's own max-margin separator, shape (M, d).
        w_star: Joint loss minimizer (non-separable only), shape (d,) or None.
        alignment: ``(A_plus, A_minus)``.
    """

    name: str
    preset: str
    order: str
    eta: float
    K: int
    tasks: list[np.ndarray]
    cycles: np.ndarray
    w: np.ndarray
    task_losses: np.ndarray
    cf: np.ndarray
    w_hat: np.ndarray
    w_hat_tasks: np.ndarray
    w_star: np.ndarray | None
    alignment: tuple[float, float]

    @property
    def separable(self) -> bool:
        """Whether the joint data are separable."""
        return self.w_star is None

    @property
    def cos_joint(self) -> np.ndarray:
        """Cosine to the joint max-margin direction, shape (n_log,)."""
        return cosine(self.w, self.w_hat)

    @property
    def cos_individual(self) -> np.ndarray:
        """Cosine to each task's max-margin direction, shape (n_log, M)."""
        return cosine(self.w[:, None, :], self.w_hat_tasks[None])

    @property
    def joint_loss(self) -> np.ndarray:
        """Joint (summed) loss, shape (n_log,)."""
        return self.task_losses.sum(-1)

    @property
    def norm_minus_log(self) -> np.ndarray:
        """``||w|| - ||w_hat|| ln(K J)``, shape (n_log,)."""
        return (np.linalg.norm(self.w, axis=-1)
                - np.linalg.norm(self.w_hat) * np.log(self.K * self.cycles))

    @property
    def dist_to_wstar(self) -> np.ndarray:
        """``||w - w*||`` (non-separable only), shape (n_log,)."""
        if self.w_star is None:
            return np.full(len(self.cycles), np.nan)
        return np.linalg.norm(self.w - self.w_star, axis=-1)

    def at(self, cycle: int) -> int:
        """Index of a logged cycle."""
        return int(np.flatnonzero(self.cycles == cycle)[0])


@dataclass
class Result:
    """Output of :func:`run`.

    Attributes:
        config: The config used.
        instances: Instance runs by name.
        smm_cos: Cosine of the SMM iterate to the joint max-margin, by preset.
        horizon_error: Non-separable, scheduled step: ``||w_J - w*||`` at each horizon J.
    """

    config: Config
    instances: dict[str, InstanceResult] = field(default_factory=dict)
    smm_cos: dict[str, float] = field(default_factory=dict)
    horizon_error: dict[int, float] = field(default_factory=dict)


def _pad(task_lists):
    """Stack instances (same M) into (B, M, n, d) with a validity mask (B, M, n)."""
    M = len(task_lists[0])
    n = max(t.shape[0] for tasks in task_lists for t in tasks)
    d = max(t.shape[1] for tasks in task_lists for t in tasks)
    Z = np.zeros((len(task_lists), M, n, d))
    valid = np.zeros((len(task_lists), M, n), dtype=bool)
    for b, tasks in enumerate(task_lists):
        for m, t in enumerate(tasks):
            Z[b, m, : t.shape[0], : t.shape[1]] = t
            valid[b, m, : t.shape[0]] = True
    return Z, valid


def _task_losses(Z, valid, w, loss):
    """Summed loss of every task, shape (B, M), for iterates w of shape (B, d)."""
    margins = np.einsum("bmnd,bd->bmn", Z, w)
    return np.where(valid, loss_value(margins, loss), 0.0).sum(-1)


def _simulate(Z, valid, eta, *, K, J, orders, log_cycles, loss, cf_reference):
    """Sequential GD for a batch of instances.

    Args:
        Z: Padded tasks, shape (B, M, n, d).
        valid: Point masks, shape (B, M, n).
        eta: Step size per instance, shape (B,).
        K: Steps per stage.
        J: Cycles.
        orders: Task of every stage, int array of shape (J * M, B).
        log_cycles: Sorted cycles at which to record (1-based).
        loss: Loss name.
        cf_reference: Reference point of the forgetting.

    Returns:
        ``(w, task_losses, cf)`` at the logged cycles: shapes (n_log, B, d), (n_log, B, M),
        (n_log, B).
    """
    B, M, _, d = Z.shape
    w = np.zeros((B, d))
    rows = np.arange(B)
    weight = valid.astype(float)
    eta_col = np.asarray(eta, dtype=float)[:, None]
    logged = set(int(c) for c in log_cycles)
    out_w, out_l, out_cf = [], [], []
    logistic = loss == "logistic"
    for cycle in range(1, J + 1):
        record = cycle in logged
        after_task = np.zeros((B, M))
        before_last = None
        for m_in_cycle in range(M):
            task = orders[(cycle - 1) * M + m_in_cycle]
            Zs = Z[rows, task]  # (B, n, d)
            ws = weight[rows, task]  # (B, n)
            if record and m_in_cycle == M - 1:
                before_last = _task_losses(Z, valid, w, loss)
            for _ in range(K):
                margins = np.einsum("bnd,bd->bn", Zs, w)
                coef = (expit(-margins) if logistic else neg_dloss(margins, loss)) * ws
                w = w + eta_col * np.einsum("bn,bnd->bd", coef, Zs)
            if record:
                after_task[:, m_in_cycle] = _task_losses(Z, valid, w, loss)[rows, task]
        if record:
            end = _task_losses(Z, valid, w, loss)
            ref = end if cf_reference == "end_of_cycle" else before_last
            # CF(J) = (1/M) sum_{m < M} [L_m(reference) - L_m(right after m was trained)]
            first = orders[(cycle - 1) * M: cycle * M - 1]  # tasks of positions 1..M-1
            cf = (ref[rows[None, :], first] - after_task[:, : M - 1].T).sum(0) / M
            out_w.append(w.copy())
            out_l.append(end)
            out_cf.append(cf)
    return np.stack(out_w), np.stack(out_l), np.stack(out_cf)


def _joint_minimizer(Z_all, loss):
    def fun(w):
        m = Z_all @ w
        return float(loss_value(m, loss).sum()), -(neg_dloss(m, loss) @ Z_all)

    res = minimize(fun, np.zeros(Z_all.shape[1]), jac=True, method="BFGS",
                   options={"gtol": 1e-12, "maxiter": 10_000})
    return res.x


def _references(tasks, loss):
    Z_all = np.vstack(tasks)
    joint = max_margin(Z_all, "l2")
    w_tasks = np.stack([max_margin(t, "l2").w for t in tasks])
    if joint.success:
        return joint.w, w_tasks, None
    return np.zeros(Z_all.shape[1]), w_tasks, _joint_minimizer(Z_all, loss)


def _run_group(specs, cfg, *, K, J, log_cycles, rng):
    """specs: list of (name, preset, order, eta); all presets must share M."""
    task_lists = [preset_tasks(p) for _, p, _, _ in specs]
    M = len(task_lists[0])
    Z, valid = _pad(task_lists)
    orders = np.empty((J * M, len(specs)), dtype=np.int64)
    for b, (_, _, order, _) in enumerate(specs):
        orders[:, b] = (np.arange(J * M) % M if order == "cyclic"
                        else rng.integers(0, M, size=J * M))
    W, losses, cf = _simulate(Z, valid, [e for *_, e in specs], K=K, J=J, orders=orders,
                              log_cycles=log_cycles, loss=cfg.loss,
                              cf_reference=cfg.cf_reference)
    out = {}
    for b, (name, preset, order, eta) in enumerate(specs):
        tasks = task_lists[b]
        d = tasks[0].shape[1]
        w_hat, w_tasks, w_star = _references(tasks, cfg.loss)
        out[name] = InstanceResult(
            name=name, preset=preset, order=order, eta=float(eta), K=K, tasks=tasks,
            cycles=np.asarray(log_cycles), w=W[:, b, :d], task_losses=losses[:, b, :M],
            cf=cf[:, b] if order == "cyclic" else np.full(len(log_cycles), np.nan),
            w_hat=w_hat, w_hat_tasks=w_tasks, w_star=w_star, alignment=alignment(tasks))
    return out


def run(config: Config | None = None) -> Result:
    """Run every configured instance (batched by task count).

    Args:
        config: The study config (defaults if None).

    Returns:
        A :class:`Result`.
    """
    cfg = study_config(config, Config)
    rng = np.random.default_rng(cfg.seed)
    result = Result(config=cfg)
    sep = [p for p in cfg.presets if p in SEPARABLE_PRESETS]
    by_m: dict[int, list] = {}
    for p in sep:
        by_m.setdefault(len(preset_tasks(p)), []).append((p, p, "cyclic", cfg.eta))
        if p == "three_task_3d" and cfg.random_order:
            by_m[3].append((f"{p}/random", p, "random", cfg.eta))
    for specs in by_m.values():
        result.instances.update(_run_group(specs, cfg, K=cfg.K, J=cfg.J,
                                           log_cycles=cfg.log_cycles, rng=rng))
    for p in sep:
        tasks = preset_tasks(p)
        if cfg.smm_cycles:
            w_hat = result.instances[p].w_hat
            result.smm_cos[p] = float(cosine(smm(tasks, cfg.smm_cycles), w_hat))
    if "nonseparable" in cfg.presets:
        horizons = sorted(set(cfg.nonsep_horizons))
        J = max(max(horizons), cfg.J)
        logs = np.union1d(np.union1d(cfg.log_cycles, horizons), geometric_steps(J, cfg.n_log))
        specs = [(f"nonseparable/eta={e:g}", "nonseparable", "cyclic", e)
                 for e in cfg.nonsep_etas]
        specs += [(f"nonseparable/J={h}", "nonseparable", "cyclic", cfg.schedule(h))
                  for h in horizons]
        runs = _run_group(specs, cfg, K=cfg.nonsep_K, J=J, log_cycles=logs, rng=rng)
        result.instances.update(runs)
        for h in horizons:
            inst = runs[f"nonseparable/J={h}"]
            result.horizon_error[h] = float(inst.dist_to_wstar[inst.at(h)])
    logger.info("continual_classification: %d instance runs", len(result.instances))
    return result


def claims(result: Result) -> list[Claim]:
    """Evaluate the paper's predictions (spec section 3, assertions a-e) on a run.

    Args:
        result: Output of :func:`run`.

    Returns:
        The claims for the instances that were run.
    """
    cfg = result.config
    inst = result.instances
    out: list[Claim] = []
    pair = [p for p in ("contradicting_2d", "aligned_2d") if p in inst]
    if pair:
        cos = {p: inst[p].cos_joint[-1] for p in pair}
        ind = {p: inst[p].cos_individual[-1].max() for p in pair}
        out.append(Claim(
            "joint_max_margin_direction_2d",
            "two one-point tasks: cos(w_J, w_hat) > 0.999, not toward any task's own "
            "max-margin (cos to w_hat_m stays at cos(w_hat, w_hat_m))",
            "; ".join(f"{p}: cos={cos[p]:.6f}, max cos to w_hat_m={ind[p]:.3f}" for p in pair),
            all(cos[p] > 0.999 and ind[p] < 0.999 for p in pair)))
    if "three_task_3d" in inst:
        r = inst["three_task_3d"]
        c = r.cos_joint
        late = c[r.cycles >= 100]
        smm_cos = result.smm_cos.get("three_task_3d", np.nan)
        ok = c[-1] > 0.985 and bool(np.all(np.diff(late) > -1e-9))
        text = f"cos={c[-1]:.4f} at J={r.cycles[-1]}"
        expected = "three tasks in 3-D: cos(w_J, w_hat) > 0.985 at J = 1e4, non-decreasing"
        if np.isfinite(smm_cos):
            ok = ok and c[-1] - smm_cos > 0.05
            text += f"; SMM cos={smm_cos:.4f}"
            expected += ", and above SMM's by > 0.05"
        out.append(Claim("joint_max_margin_direction_3d", expected, text, ok))
        if "three_task_3d/random" in inst:
            cr = inst["three_task_3d/random"].cos_joint[-1]
            out.append(Claim("random_order_direction",
                             "three tasks, i.i.d. uniform order: cos(w_J, w_hat) > 0.985",
                             cr, bool(cr > 0.985)))
    sep = [r for r in inst.values() if r.separable and r.order == "cyclic"]
    if sep:
        worst = {r.name: float(np.max(np.abs(r.norm_minus_log[r.cycles >= 100]), initial=0.0))
                 for r in sep}
        out.append(Claim(
            "norm_grows_like_log",
            "| ||w|| - ||w_hat|| ln(KJ) | < 1 for J >= 100 (every separable instance)",
            "; ".join(f"{k}={v:.3f}" for k, v in worst.items()),
            all(v < 1 for v in worst.values())))
        rates = {}
        for r in sep:
            if 1000 in r.cycles and 10 * 1000 in r.cycles:
                lj = r.joint_loss * r.K * r.cycles
                rates[r.name] = lj[r.at(10_000)] / lj[r.at(1000)]
        if rates:
            out.append(Claim(
                "joint_loss_rate",
                "joint loss ~ 1/(K J): L K J changes by less than 2x from J=1e3 to 1e4",
                "; ".join(f"{k}={v:.3f}" for k, v in rates.items()),
                all(0.5 < v < 2 for v in rates.values())))
    two = [r for r in inst.values() if r.separable and r.order == "cyclic"
           and len(r.tasks) == 2]
    if two:
        parts, ok = [], True
        for r in two:
            net = r.alignment[0] + r.alignment[1]
            mask = r.cycles >= 10
            want = -np.sign(net)
            ok &= bool(np.all(np.sign(r.cf[mask]) == want)) and net != 0
            parts.append(f"{r.name}: A+={r.alignment[0]:.3g}, A-={r.alignment[1]:.3g}, "
                         f"CF(10)={r.cf[r.at(10)] if 10 in r.cycles else np.nan:.3g}")
        out.append(Claim(
            "forgetting_sign_follows_alignment",
            "CF(J) > 0 (forgetting) when the net cross-task alignment is negative, < 0 "
            "(backward transfer) when positive, for all J >= 10",
            "; ".join(parts), ok))
        ratios, ok = [], True
        for r in two:
            for j in r.cycles[(r.cycles >= 100) & (10 * r.cycles <= r.cycles[-1])]:
                if 10 * j in r.cycles:
                    q = r.cf[r.at(10 * j)] / r.cf[r.at(j)]
                    ratios.append(q)
                    ok &= 0.005 <= q <= 0.03
        if ratios:
            out.append(Claim(
                "forgetting_decays_like_1_over_J2",
                "CF(10J) / CF(J) in [0.005, 0.03] for J >= 100",
                f"ratios in [{min(ratios):.4f}, {max(ratios):.4f}] ({len(ratios)} pairs)",
                ok and len(ratios) > 0))
    fixed = sorted((r.eta, r) for r in inst.values() if r.name.startswith("nonseparable/eta"))
    if len(fixed) >= 2:
        errs = [r.dist_to_wstar[-1] for _, r in fixed]
        ratios = [b / a for a, b in zip(errs, errs[1:])]
        eta_ratios = [b / a for (a, _), (b, _) in zip(fixed, fixed[1:])]
        ok = all(abs(q - 4) < 1e-9 for q in eta_ratios) and all(3 <= q <= 5.5 for q in ratios)
        out.append(Claim(
            "nonseparable_fixed_step_plateau",
            "non-separable, fixed eta: error ||w_J - w*|| proportional to eta "
            "(ratio for 4x eta in [3, 5.5])",
            ", ".join(f"eta={e:g}: {x:.3g}" for (e, _), x in zip(fixed, errs)),
            ok))
    if len(result.horizon_error) >= 2:
        hs = sorted(result.horizon_error)
        sq = [result.horizon_error[h] ** 2 for h in hs]
        drops = [(sq[i] / sq[i + 1]) ** (1 / np.log10(hs[i + 1] / hs[i]))
                 for i in range(len(hs) - 1)]
        out.append(Claim(
            "nonseparable_schedule_converges",
            f"non-separable, eta_J = {cfg.schedule_c:g} ln J/(K J): squared error drops >= 20x "
            "per decade of J",
            ", ".join(f"J={h}: {s:.3g}" for h, s in zip(hs, sq)),
            all(x >= 20 for x in drops)))
    return out


def plot(result: Result) -> dict:
    """Figures: direction (headline), forgetting, non-separable convergence.

    Args:
        result: Output of :func:`run`.

    Returns:
        Dict of matplotlib figures, ``"headline"`` first.
    """
    plt, sns = plotting_modules()

    inst = result.instances
    pal = sns.color_palette("deep", 8)
    figs = {}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    ax = axes[0]
    for k, r in enumerate(v for v in inst.values() if v.separable):
        ax.plot(r.cycles, np.clip(1 - r.cos_joint, 1e-16, None), color=pal[k % 8], label=r.name)
    for p, c in result.smm_cos.items():
        if p == "three_task_3d":
            ax.axhline(1 - c, color="gray", ls=":", label="SMM (three_task_3d)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("cycle J")
    ax.set_ylabel("1 - cos(w_J, joint max-margin)")
    ax.legend(fontsize=7)
    ax = axes[1]
    r = inst.get("contradicting_2d") or next((v for v in inst.values() if v.separable
                                              and v.w.shape[1] == 2), None)
    if r is not None:
        u = r.w / np.maximum(np.linalg.norm(r.w, axis=1, keepdims=True), 1e-300)
        theta = np.linspace(0, 2 * np.pi, 200)
        ax.plot(np.cos(theta), np.sin(theta), color="lightgray", lw=0.8)
        ax.plot(u[:, 0], u[:, 1], "o-", ms=3, color=pal[0], label="sequential GD w/||w||")
        wh = r.w_hat / np.linalg.norm(r.w_hat)
        ax.plot([0, wh[0]], [0, wh[1]], color="k", lw=2, label="joint max-margin")
        for m, wm in enumerate(r.w_hat_tasks):
            wm = wm / np.linalg.norm(wm)
            ax.plot([0, wm[0]], [0, wm[1]], ls="--", color=pal[2 + m], label=f"task {m + 1} "
                    "max-margin")
        ax.set_aspect("equal")
        ax.set_title(f"{r.name}: normalized iterates")
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    figs["headline"] = fig

    two = [v for v in inst.values() if v.separable and v.order == "cyclic" and len(v.tasks) == 2]
    if two:
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for k, r in enumerate(two):
            ax.plot(r.cycles, r.cf, "o-", ms=3, color=pal[k], label=r.name)
        j = two[0].cycles.astype(float)
        ax.plot(j, 1e-1 / j**2, color="gray", ls=":", label="J^-2")
        ax.set_xscale("log")
        ax.set_yscale("symlog", linthresh=1e-9)
        ax.set_xlabel("cycle J")
        ax.set_ylabel("cycle-averaged forgetting CF(J)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        figs["forgetting"] = fig

    ns = [v for v in inst.values() if not v.separable]
    if ns:
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for k, r in enumerate(v for v in ns if "eta=" in v.name):
            ax.plot(r.cycles, r.dist_to_wstar, color=pal[k], label=r.name)
        if result.horizon_error:
            hs = sorted(result.horizon_error)
            ax.plot(hs, [result.horizon_error[h] for h in hs], "ks-",
                    label="eta_J = c ln J/(KJ), at J")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("cycle J")
        ax.set_ylabel("||w - w*||")
        ax.legend(fontsize=7)
        fig.tight_layout()
        figs["nonseparable"] = fig
    return figs
