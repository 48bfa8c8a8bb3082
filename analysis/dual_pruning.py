"""DUAL data pruning: difficulty x uncertainty from early dynamics, with Beta sampling.

Study of Cho, Shin, Kang & Yun (ICML 2025) at toy scale, fully offline. A small MLP is trained
on the full training set while the softmax outputs on every training example are recorded each
epoch; pruning scores are computed from those dynamics (DUAL uses only the first T epochs);
the network is retrained from scratch on each pruned subset and its test accuracy is compared
across methods and pruning ratios. The paper's high-ratio picture is the headline: hard-only
selection (EL2N, forgetting, AUM, DUAL top-k) collapses at 90% pruning while DUAL with the
ratio-adaptive Beta sampling stays at or above random.

Datasets (never downloaded): ``synthetic_gmm`` (default; 10-class Gaussian mixture with 15%
atypical points) and ``digits`` (scikit-learn's bundled 8x8 digits, meant to be used with
symmetric label noise). Names that need the network (``cifar10``, ``mnist``, ``fetch_*``, ...)
are refused with a clear error.

The ensemble of MLPs retrained on the subsets is batched (one batched matmul per layer for every
(method, seed) model of a ratio); the scores themselves live in
:mod:`rlhf_gbpm.analysis._pruning_scores` and work with any model.

References:
    Cho, Shin, Kang, Yun. "Lightweight Dataset Pruning without Full Training via Example
    Difficulty and Prediction Uncertainty". ICML 2025, arXiv:2502.06905.
"""

from __future__ import annotations

import contextlib
import logging
import math
import numbers
import time
from dataclasses import dataclass

import numpy as np

from rlhf_gbpm._validation import as_generator, check_array, check_scalar
from rlhf_gbpm.analysis import _pruning_scores as ps
from rlhf_gbpm.analysis._framework import (
    Claim,
    check_finite_fields,
    check_tuple,
    plotting_modules,
    study_config,
)

__all__ = [
    "NAME",
    "DESCRIPTION",
    "REFERENCE",
    "DATASETS",
    "METHODS",
    "Config",
    "Result",
    "load_dataset",
    "train_mlp_ensemble",
    "run",
    "plot",
    "claims",
]

logger = logging.getLogger(__name__)

NAME = "dual_pruning"
DESCRIPTION = (
    "DUAL pruning score with ratio-adaptive Beta sampling vs random, EL2N, forgetting, AUM, "
    "entropy, CCS and dynamic uncertainty; MLP retrained on pruned offline data."
)
REFERENCE = (
    "Cho, Shin, Kang, Yun. Lightweight Dataset Pruning without Full Training via Example "
    "Difficulty and Prediction Uncertainty. ICML 2025, arXiv:2502.06905."
)

DATASETS = ("synthetic_gmm", "digits")
METHODS = ("random", "el2n", "forgetting", "aum", "entropy", "ccs", "dynunc", "dual",
           "dual_beta")
_NETWORK_DATASETS = ("mnist", "fashion_mnist", "kmnist", "emnist", "cifar10", "cifar100",
                     "svhn", "imagenet", "mnist1d", "tiny_imagenet", "stl10", "openml")
_HARD_ONLY = ("el2n", "forgetting", "aum", "dual")


def _refuse_dataset(name: str) -> None:
    low = name.lower().replace("-", "_")
    if low.startswith("fetch_") or low in _NETWORK_DATASETS:
        raise ValueError(
            f"dataset == {name!r} needs a network download, which this study refuses (it runs "
            f"offline); use one of {DATASETS}."
        )
    raise ValueError(f"dataset == {name!r}, must be one of {DATASETS}.")


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


def _standardize(train: np.ndarray, test: np.ndarray):
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (train - mean) / std, (test - mean) / std


def _flip_labels(y: np.ndarray, rate: float, num_classes: int, rng) -> np.ndarray:
    """Symmetric label noise: a `rate` fraction moved to a uniformly drawn different class."""
    y = y.copy()
    n_flip = int(round(rate * y.size))
    idx = rng.choice(y.size, size=n_flip, replace=False)
    y[idx] = (y[idx] + rng.integers(1, num_classes, size=n_flip)) % num_classes
    return y


def load_dataset(name: str, *, seed=None, label_noise: float = 0.0, n_train: int = 6000,
                 n_test: int = 3000):
    """Build an offline dataset.

    Args:
        name: "synthetic_gmm" or "digits"; a name that needs the network raises.
        seed: Seed of the mixture, the split and the label noise.
        label_noise: Fraction of training labels flipped to another class, in [0, 1).
        n_train: Training examples of the mixture (digits: 1200 fixed).
        n_test: Test examples of the mixture (digits: the other 597).

    Returns:
        Dict with float64 ``x_train`` (N, d), ``y_train`` (N,) (possibly noisy),
        ``y_train_clean`` (N,), ``x_test`` (N_test, d), ``y_test`` (N_test,) and
        ``num_classes``.
    """
    rng = as_generator(seed)
    if name == "synthetic_gmm":
        C, d = 10, 20
        means = rng.standard_normal((C, d))
        means *= 2.2 * math.sqrt(2.0) / np.linalg.norm(means, axis=1, keepdims=True)

        def draw(n):
            y = rng.integers(C, size=n)
            std = np.where(rng.random(n) < 0.85, 0.8, 1.8)
            return means[y] + std[:, None] * rng.standard_normal((n, d)), y

        x_tr, y_tr = draw(n_train)
        x_te, y_te = draw(n_test)
    elif name == "digits":
        from sklearn.datasets import load_digits

        data = load_digits()
        C = 10
        perm = rng.permutation(data.target.size)
        x = data.data[perm] / 16.0
        y = data.target[perm]
        x_tr, y_tr, x_te, y_te = x[:1200], y[:1200], x[1200:], y[1200:]
    else:
        _refuse_dataset(name)
    x_tr, x_te = _standardize(x_tr, x_te)
    y_noisy = _flip_labels(y_tr, label_noise, C, rng) if label_noise > 0 else y_tr.copy()
    return {"x_train": x_tr, "y_train": y_noisy, "y_train_clean": y_tr, "x_test": x_te,
            "y_test": y_te, "num_classes": C}


# --------------------------------------------------------------------------------------------
# a batched ensemble of MLPs
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _torch_threads(n: int):
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _init_params(M: int, d: int, h: int, C: int, gen):
    """Per-model Linear-style init U(-1/sqrt(fan_in), 1/sqrt(fan_in)), float32 tensors."""
    import torch

    def uni(shape, fan_in):
        bound = 1.0 / math.sqrt(fan_in)
        return ((torch.rand(shape, generator=gen) * 2 - 1) * bound).requires_grad_(True)

    return [uni((M, d, h), d), uni((M, 1, h), d), uni((M, h, C), h), uni((M, 1, C), h)]


def _forward(params, x):
    """Logits of M MLPs, x shape (M, B, d) -> (M, B, C)."""
    import torch

    W1, b1, W2, b2 = params
    return torch.baddbmm(b2, torch.relu(torch.baddbmm(b1, x, W1)), W2)


def train_mlp_ensemble(x_train, y_train, subsets, *, hidden: int = 128, epochs: int = 30,
                       lr: float = 0.05, batch_size: int = 64, momentum: float = 0.9,
                       weight_decay: float = 5e-4, seed: int = 0, x_test=None,
                       record: str | None = None, num_classes: int | None = None):
    """Train M independent one-hidden-layer MLPs, each on its own subset, in one batch.

    SGD with momentum, weight decay and a per-step cosine learning rate; every model sees its
    own shuffled minibatches of equal size (the subsets have equal size).

    Args:
        x_train: Inputs, shape (N, d).
        y_train: Labels, shape (N,), ints in [0, C).
        subsets: Indices of each model's subset, shape (M, n).
        hidden: Hidden width.
        epochs: Passes over each subset.
        lr: Peak learning rate.
        batch_size: Minibatch size.
        momentum: SGD momentum.
        weight_decay: L2 weight decay.
        seed: Seed of the torch generator (init and shuffling).
        x_test: Optional test inputs, shape (N_test, d), for the returned test logits.
        record: None, "eval_pass" (softmax on all N training inputs after each epoch) or
            "train_minibatch" (softmax of the training forward pass when each example is
            visited); recorded for every model.
        num_classes: Number of classes C (default: max label + 1).

    Returns:
        Dict with ``params`` (list of tensors), ``test_probs`` (M, N_test, C) or None,
        ``probs`` (epochs, M, N, C) float32 or None, and ``epoch_end_time`` (epochs,) seconds
        since the start.
    """
    import torch

    x_train = check_array(x_train, "x_train", shape=("N", None))
    sizes = {"N": x_train.shape[0]}
    y_train = check_array(y_train, "y_train", shape=("N",), dtype=np.int64, sizes=sizes)
    subsets = check_array(subsets, "subsets", shape=(None, None), dtype=np.int64)
    if subsets.size == 0 or subsets.min() < 0 or subsets.max() >= x_train.shape[0]:
        raise ValueError(f"subsets must be non-empty indices in [0, {x_train.shape[0]}).")
    for name, val in (("hidden", hidden), ("epochs", epochs), ("batch_size", batch_size)):
        check_scalar(val, name, numbers.Integral, min_val=1)
    check_scalar(lr, "lr", numbers.Real, min_val=0.0)
    check_scalar(momentum, "momentum", numbers.Real, min_val=0.0, max_val=1.0,
                 include_boundaries="left")
    check_scalar(weight_decay, "weight_decay", numbers.Real, min_val=0.0)
    if record not in (None, "eval_pass", "train_minibatch"):
        raise ValueError(f"record == {record!r}, must be None, 'eval_pass' or 'train_minibatch'.")
    gen = torch.Generator().manual_seed(int(seed))
    X = torch.as_tensor(np.asarray(x_train), dtype=torch.float32)
    Y = torch.as_tensor(np.asarray(y_train), dtype=torch.long)
    sub = torch.as_tensor(np.asarray(subsets), dtype=torch.long)
    M, n = sub.shape
    C = int(Y.max()) + 1 if num_classes is None else int(num_classes)
    params = _init_params(M, X.shape[1], hidden, C, gen)
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(n / batch_size)
    total = steps_per_epoch * epochs
    rows = torch.arange(M)[:, None]
    probs = None
    if record is not None:
        probs = torch.zeros((epochs, M, X.shape[0], C), dtype=torch.float32)
    times = np.empty(epochs)
    t0 = time.perf_counter()
    step = 0
    for ep in range(epochs):
        order = torch.argsort(torch.rand((M, n), generator=gen), dim=1)
        perm = torch.gather(sub, 1, order)
        for s in range(steps_per_epoch):
            idx = perm[:, s * batch_size:(s + 1) * batch_size]  # (M, b)
            for group in opt.param_groups:
                group["lr"] = 0.5 * lr * (1.0 + math.cos(math.pi * step / total))
            logits = _forward(params, X[idx])
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, C), Y[idx].reshape(-1), reduction="sum") / idx.shape[1]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if record == "train_minibatch":
                with torch.no_grad():
                    probs[ep, rows, idx] = torch.softmax(logits.detach(), dim=-1)
        if record == "eval_pass":
            with torch.no_grad():
                probs[ep] = torch.softmax(_forward(params, X.expand(M, -1, -1)), dim=-1)
        times[ep] = time.perf_counter() - t0
    test_probs = None
    if x_test is not None:
        Xt = torch.as_tensor(np.asarray(x_test), dtype=torch.float32)
        with torch.no_grad():
            test_probs = torch.softmax(_forward(params, Xt.expand(M, -1, -1)), dim=-1).numpy()
    return {"params": params, "test_probs": test_probs,
            "probs": None if probs is None else probs.numpy(), "epoch_end_time": times}


# --------------------------------------------------------------------------------------------
# config / result
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """Configuration of the DUAL pruning study (defaults: spec section 5, GMM data seed 1)."""

    dataset: str = "synthetic_gmm"
    """Offline dataset: "synthetic_gmm" or "digits" (network datasets are refused)."""
    label_noise: float = 0.0
    """Symmetric flip rate of the training labels, in [0, 1)."""
    n_train: int = 6000
    """Training examples of the mixture."""
    n_test: int = 3000
    """Test examples of the mixture."""
    hidden: int = 128
    """Hidden width of the MLP."""
    epochs: int = 30
    """Epochs of every training run (E_full)."""
    lr: float = 0.05
    """Peak learning rate (per-step cosine decay)."""
    momentum: float = 0.9
    """SGD momentum."""
    weight_decay: float = 5e-4
    """Weight decay."""
    batch_size: int = 64
    """Minibatch size (halved at ratios >= small_batch_at)."""
    small_batch_at: float = 0.8
    """Pruning ratio from which the batch size is halved."""
    methods: tuple = ("random", "el2n", "forgetting", "aum", "dynunc", "dual", "dual_beta")
    """Pruning methods compared (any of METHODS)."""
    ratios: tuple = (0.3, 0.5, 0.7, 0.8, 0.9)
    """Pruning ratios (fraction removed)."""
    dual_T: int = 8
    """Epochs of dynamics DUAL uses."""
    dual_J: int = 4
    """DUAL window length."""
    dynunc_J: int = 4
    """Dynamic-uncertainty window length (over all epochs)."""
    beta_C: float = 15.0
    """Concentration C of the Beta sampling."""
    c_D: float = 4.0
    """Shift exponent of the Beta sampling (r ** c_D)."""
    beta_weight: str = "pdf*score"
    """Beta sampling weight: "pdf*score" (official) or "pdf"."""
    el2n_epoch: int = 3
    """Epoch (1-based) whose outputs give EL2N."""
    ccs_cutoff: float = 0.1
    """Fraction of hardest (lowest-AUM) examples CCS drops before stratifying."""
    ccs_bins: int = 50
    """Strata of CCS."""
    seeds: int = 3
    """Training seeds per (method, ratio); stochastic subsets are redrawn per seed."""
    data_seed: int = 1
    """Seed of the dataset (mixture, split, label noise)."""
    seed: int = 0
    """Seed of training and of the stochastic selections."""
    record: str = "eval_pass"
    """Where dynamics are recorded: "eval_pass" or "train_minibatch"."""
    num_threads: int = 1
    """Torch threads inside run() (restored afterwards)."""

    def __post_init__(self):
        if not isinstance(self.dataset, str):
            raise TypeError(f"dataset must be a str, not {type(self.dataset).__name__}.")
        if self.dataset not in DATASETS:
            _refuse_dataset(self.dataset)
        check_scalar(self.label_noise, "label_noise", numbers.Real, min_val=0.0, max_val=1.0,
                     include_boundaries="left")
        for name in ("n_train", "n_test", "hidden", "epochs", "batch_size", "seeds",
                     "num_threads", "ccs_bins", "el2n_epoch"):
            check_scalar(getattr(self, name), name, numbers.Integral, min_val=1)
        for name in ("lr", "beta_C", "c_D"):
            check_scalar(getattr(self, name), name, numbers.Real, min_val=0.0,
                         include_boundaries="neither")
        check_scalar(self.momentum, "momentum", numbers.Real, min_val=0.0, max_val=1.0,
                     include_boundaries="left")
        check_scalar(self.weight_decay, "weight_decay", numbers.Real, min_val=0.0)
        check_scalar(self.small_batch_at, "small_batch_at", numbers.Real, min_val=0.0,
                     max_val=1.0)
        check_scalar(self.ccs_cutoff, "ccs_cutoff", numbers.Real, min_val=0.0, max_val=1.0,
                     include_boundaries="left")
        check_scalar(self.dual_T, "dual_T", numbers.Integral, min_val=2, max_val=self.epochs)
        check_scalar(self.dual_J, "dual_J", numbers.Integral, min_val=2, max_val=self.dual_T)
        check_scalar(self.dynunc_J, "dynunc_J", numbers.Integral, min_val=2,
                     max_val=self.epochs)
        check_scalar(self.el2n_epoch, "el2n_epoch", numbers.Integral, min_val=1,
                     max_val=self.epochs)
        for name in ("data_seed", "seed"):
            check_scalar(getattr(self, name), name, numbers.Integral, min_val=0)
        if self.beta_weight not in ("pdf*score", "pdf"):
            raise ValueError(f"beta_weight == {self.beta_weight!r}, must be 'pdf*score' or "
                             "'pdf'.")
        if self.record not in ("eval_pass", "train_minibatch"):
            raise ValueError(f"record == {self.record!r}, must be 'eval_pass' or "
                             "'train_minibatch'.")
        methods = tuple(self.methods) if isinstance(self.methods, (tuple, list)) else None
        if not methods:
            raise TypeError(f"methods must be a non-empty tuple, got {self.methods!r}.")
        for m in methods:
            if m not in METHODS:
                raise ValueError(f"methods contains {m!r}, must be drawn from {METHODS}.")
        object.__setattr__(self, "methods", methods)
        ratios = check_tuple(self.ratios, "ratios", numbers.Real, min_val=0.0, max_val=1.0,
                             include_boundaries="left")
        object.__setattr__(self, "ratios", tuple(sorted(float(r) for r in ratios)))
        n_tr = self.n_train if self.dataset == "synthetic_gmm" else 1200
        if round((1 - max(self.ratios)) * n_tr) < 1:
            raise ValueError(f"ratios max == {max(self.ratios)}, keeps no example of {n_tr}.")
        check_finite_fields(self)

    def epochs_used(self, method: str) -> int:
        """Epochs of full-data training a method's score needs."""
        if method == "random":
            return 0
        if method in ("dual", "dual_beta"):
            return self.dual_T
        if method == "el2n":
            return self.el2n_epoch
        return self.epochs

    def batch_for(self, ratio: float) -> int:
        """Minibatch size of the pruned training at a ratio."""
        return max(1, self.batch_size // 2) if ratio >= self.small_batch_at else self.batch_size


@dataclass
class Result:
    """Accuracies per method and ratio, costs and selection statistics.

    Attributes:
        config: The config.
        full_acc: Test accuracy (%) of full-data training per seed, shape (seeds,).
        acc: Test accuracy (%) per method, shape (len(ratios), seeds).
        score_epochs: Epochs of dynamics each method needs.
        score_time: Wall time (s) to produce those dynamics in this run.
        kept_mean_prob: Per method, mean early true-class probability of the kept examples,
            shape (len(ratios),).
        kept_noisy_frac: Per method, fraction of mislabeled examples among the kept ones,
            shape (len(ratios),) (zeros without label noise).
        mu_D: Anchor of the Beta sampling (mean early probability of the top-10 DUAL examples).
        mean_probs: Mean true-class probability over the first T epochs, shape (N,).
        dual: DUAL scores, shape (N,).
        noisy: Whether each training label was flipped, shape (N,).
    """

    config: Config
    full_acc: np.ndarray
    acc: dict[str, np.ndarray]
    score_epochs: dict[str, int]
    score_time: dict[str, float]
    kept_mean_prob: dict[str, np.ndarray]
    kept_noisy_frac: dict[str, np.ndarray]
    mu_D: float
    mean_probs: np.ndarray
    dual: np.ndarray
    noisy: np.ndarray

    def mean_acc(self, method: str, ratio: float) -> float:
        """Mean test accuracy (%) over seeds of a method at a ratio."""
        i = self.config.ratios.index(ratio)
        return float(self.acc[method][i].mean())


def _scores(cfg: Config, probs: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Score per method from the recorded dynamics (E, N, C) of one full-data run."""
    p_true = ps.true_class_probs(probs, y)  # (E, N)
    out = {}
    for m in cfg.methods:
        if m == "el2n":
            out[m] = ps.el2n_score(probs[cfg.el2n_epoch - 1], y)
        elif m == "forgetting":
            out[m] = ps.forgetting_score(probs.argmax(axis=-1) == y[None])
        elif m in ("aum", "ccs"):
            out[m] = ps.aum_score(probs, y)
        elif m == "entropy":
            out[m] = ps.entropy_score(probs[-1])
        elif m == "dynunc":
            out[m] = ps.dynunc_score(p_true, cfg.dynunc_J)
        elif m in ("dual", "dual_beta"):
            out[m] = ps.dual_score(p_true, cfg.dual_T, cfg.dual_J)
    return out


def run(config: Config | None = None) -> Result:
    """Record dynamics on the full data, score, prune and retrain at every ratio.

    Args:
        config: The study config (defaults if None).

    Returns:
        The :class:`Result`.
    """
    cfg = study_config(config, Config)
    data = load_dataset(cfg.dataset, seed=cfg.data_seed, label_noise=cfg.label_noise,
                        n_train=cfg.n_train, n_test=cfg.n_test)
    x, y, xt, yt = data["x_train"], data["y_train"], data["x_test"], data["y_test"]
    N = y.size
    noisy = y != data["y_train_clean"]
    rng = as_generator(cfg.seed)
    train_kw = dict(hidden=cfg.hidden, epochs=cfg.epochs, lr=cfg.lr, momentum=cfg.momentum,
                    weight_decay=cfg.weight_decay, num_classes=data["num_classes"])
    with _torch_threads(cfg.num_threads):
        full = train_mlp_ensemble(x, y, np.tile(np.arange(N), (cfg.seeds, 1)),
                                  batch_size=cfg.batch_size, seed=cfg.seed, x_test=xt,
                                  record=cfg.record, **train_kw)
        full_acc = 100.0 * (full["test_probs"].argmax(-1) == yt[None]).mean(axis=1)
        probs = full["probs"][:, 0].astype(np.float64)  # dynamics of the first run, (E, N, C)
        scores = _scores(cfg, probs, y)
        p_true = ps.true_class_probs(probs, y)
        mean_probs = p_true[: cfg.dual_T].mean(axis=0)
        dual = ps.dual_score(p_true, cfg.dual_T, cfg.dual_J)
        mu_D = float(mean_probs[np.argsort(-dual, kind="stable")[:10]].mean())
        acc = {m: np.empty((len(cfg.ratios), cfg.seeds)) for m in cfg.methods}
        kept_p = {m: np.empty(len(cfg.ratios)) for m in cfg.methods}
        kept_noisy = {m: np.empty(len(cfg.ratios)) for m in cfg.methods}
        for i, r in enumerate(cfg.ratios):
            n_keep = int(round((1 - r) * N))
            subsets = []
            for m in cfg.methods:
                for _ in range(cfg.seeds):
                    if m == "random":
                        idx = ps.random_select(N, n_keep, seed=rng)
                    elif m == "dual_beta":
                        idx = ps.beta_sample(dual, mean_probs, r, n_keep, seed=rng,
                                             C=cfg.beta_C, c_D=cfg.c_D, weight=cfg.beta_weight)
                    elif m == "ccs":
                        idx = ps.ccs_select(scores[m], n_keep, cutoff=cfg.ccs_cutoff,
                                            bins=cfg.ccs_bins, seed=rng)
                    else:
                        idx = ps.topk_select(scores[m], n_keep)
                    subsets.append(idx)
            subsets = np.stack(subsets)  # (methods * seeds, n_keep)
            out = train_mlp_ensemble(x, y, subsets, batch_size=cfg.batch_for(r),
                                     seed=cfg.seed + 1000 * (i + 1), x_test=xt, **train_kw)
            accs = 100.0 * (out["test_probs"].argmax(-1) == yt[None]).mean(axis=1)
            accs = accs.reshape(len(cfg.methods), cfg.seeds)
            for j, m in enumerate(cfg.methods):
                acc[m][i] = accs[j]
                sel = subsets[j * cfg.seeds:(j + 1) * cfg.seeds]
                kept_p[m][i] = mean_probs[sel].mean()
                kept_noisy[m][i] = noisy[sel].mean()
            logger.info("dual_pruning r=%.2f: %s", r,
                        {m: round(float(acc[m][i].mean()), 1) for m in cfg.methods})
    times = full["epoch_end_time"]
    score_epochs = {m: cfg.epochs_used(m) for m in cfg.methods}
    score_time = {m: (float(times[e - 1]) if e > 0 else 0.0) for m, e in score_epochs.items()}
    return Result(config=cfg, full_acc=full_acc, acc=acc, score_epochs=score_epochs,
                  score_time=score_time, kept_mean_prob=kept_p, kept_noisy_frac=kept_noisy,
                  mu_D=mu_D, mean_probs=mean_probs, dual=dual, noisy=noisy)


# --------------------------------------------------------------------------------------------
# claims
# --------------------------------------------------------------------------------------------


def claims(result: Result) -> list[Claim]:
    """The paper's predictions on this run (spec section 3 / 5).

    Claims whose methods or ratios were not run are left out. With label noise the clean-data
    ratio claims (C2-C4) are replaced by the noisy-label claims (C5).

    Args:
        result: Output of :func:`run`.

    Returns:
        The claims.
    """
    cfg = result.config
    have = set(cfg.methods)
    out: list[Claim] = []
    acc = result.mean_acc
    if {"dual", "dynunc"} <= have:
        ratio = result.score_epochs["dual"] / result.score_epochs["dynunc"]
        t_ratio = result.score_time["dual"] / max(result.score_time["dynunc"], 1e-12)
        out.append(Claim(
            "dual_needs_early_dynamics_only",
            "epochs_used(DUAL)/epochs_used(Dyn-Unc) = T/E < 0.5",
            f"{result.score_epochs['dual']}/{result.score_epochs['dynunc']} = {ratio:.3f} "
            f"(wall-time ratio {t_ratio:.3f})",
            ratio == cfg.dual_T / cfg.epochs and ratio < 0.5,
        ))
    rs = np.concatenate([np.linspace(0.0, 0.99, 199), [1.0 - 1e-6]])
    a_r, b_r = ps.beta_parameters(result.mu_D, rs, C=cfg.beta_C, c_D=cfg.c_D)
    mean_r = a_r / (a_r + b_r)
    at0 = 1 - cfg.beta_C * (1 - result.mu_D) / (cfg.beta_C + 1)
    out.append(Claim(
        "beta_mean_moves_to_easy",
        "Beta mean increasing in r, = 1 - C(1-mu_D)/(C+1) at r = 0, -> 1 as r -> 1",
        f"mean(0) = {mean_r[0]:.4f} (formula {at0:.4f}), mean(1 - 1e-6) = {mean_r[-1]:.6f}",
        bool(np.all(np.diff(mean_r) >= 0) and abs(mean_r[0] - at0) < 1e-12
             and mean_r[-1] > 0.9999),
    ))
    hi = max(cfg.ratios)
    if cfg.label_noise == 0:
        if 0.5 in cfg.ratios and "random" in have:
            dev = {m: acc(m, 0.5) - acc("random", 0.5) for m in cfg.methods if m != "random"}
            out.append(Claim(
                "moderate_ratio_all_close",
                "r = 0.5: abs(acc(m) - acc(random)) <= 2 points for every method",
                ", ".join(f"{m} {v:+.1f}" for m, v in dev.items()),
                all(abs(v) <= 2 for v in dev.values()),
            ))
        if hi >= 0.9 and {"random", "el2n"} <= have:
            gap = acc("random", hi) - acc("el2n", hi)
            out.append(Claim(
                "hard_only_collapses",
                f"r = {hi:g}: acc(random) - acc(EL2N) >= 10 points",
                f"{acc('random', hi):.1f} - {acc('el2n', hi):.1f} = {gap:.1f}",
                gap >= 10,
            ))
        if hi >= 0.9 and {"random", "dual_beta"} <= have:
            db, rd = acc("dual_beta", hi), acc("random", hi)
            out.append(Claim(
                "dual_beta_at_least_random",
                f"r = {hi:g}: acc(DUAL+beta) >= acc(random) - 0.5",
                f"{db:.1f} vs {rd:.1f}",
                db >= rd - 0.5,
            ))
            hard = [m for m in _HARD_ONLY if m in have]
            if hard:
                best = max(acc(m, hi) for m in hard)
                out.append(Claim(
                    "dual_beta_beats_hard_only",
                    f"r = {hi:g}: acc(DUAL+beta) >= max({', '.join(hard)}) + 3",
                    f"{db:.1f} vs {best:.1f}",
                    db >= best + 3,
                ))
    else:
        for r in (0.7, 0.9):
            if r not in cfg.ratios or not {"random", "dual_beta"} <= have:
                continue
            db, rd = acc("dual_beta", r), acc("random", r)
            hard = [m for m in ("el2n", "forgetting") if m in have]
            worst = max((acc(m, r) for m in hard), default=-math.inf)
            i = cfg.ratios.index(r)
            out.append(Claim(
                f"noisy_labels_r{int(round(100 * r))}",
                f"label noise {cfg.label_noise:g}, r = {r:g}: acc(DUAL+beta) >= acc(random) and "
                "acc(random) >= max(EL2N, forgetting) + 20; DUAL+beta keeps fewer mislabeled "
                "examples than random",
                f"DUAL+beta {db:.1f}, random {rd:.1f}, hard-only max {worst:.1f}; noisy kept "
                f"{result.kept_noisy_frac['dual_beta'][i]:.3f} vs "
                f"{result.kept_noisy_frac['random'][i]:.3f}",
                db >= rd and rd >= worst + 20
                and result.kept_noisy_frac["dual_beta"][i] < result.kept_noisy_frac["random"][i],
            ))
    return out


# --------------------------------------------------------------------------------------------
# plots
# --------------------------------------------------------------------------------------------

_NAMES = {"random": "Random", "el2n": "EL2N", "forgetting": "Forgetting", "aum": "AUM",
          "entropy": "Entropy", "ccs": "CCS", "dynunc": "Dyn-Unc", "dual": "DUAL (top-k)",
          "dual_beta": "DUAL+β"}


def plot(result: Result) -> dict:
    """Figures: accuracy vs pruning ratio (headline), Beta sampling, DUAL vs mean probability.

    Args:
        result: Output of :func:`run`.

    Returns:
        Dict of matplotlib figures, keys "headline", "beta", "score_vs_mean".
    """
    plt, sns = plotting_modules()
    from scipy import stats

    cfg = result.config
    figs = {}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    pal = dict(zip(METHODS, sns.color_palette("tab10", len(METHODS))))
    rs = np.asarray(cfg.ratios)
    for m in cfg.methods:
        mean = result.acc[m].mean(axis=1)
        sd = result.acc[m].std(axis=1)
        lw = 2.5 if m == "dual_beta" else 1.3
        ax.errorbar(100 * rs, mean, yerr=sd, marker="o", ms=4, lw=lw, capsize=2,
                    color=pal[m], label=f"{_NAMES[m]} ({result.score_epochs[m]} ep.)")
    ax.axhline(result.full_acc.mean(), color="k", ls=":", lw=1, label="full data")
    ax.set(xlabel="pruning ratio (%)", ylabel="test accuracy (%)",
           title=f"{cfg.dataset}" + (f", {100 * cfg.label_noise:g}% label noise"
                                     if cfg.label_noise else "")
           + " — legend: epochs of dynamics used")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    figs["headline"] = fig

    fig, ax = plt.subplots(figsize=(6, 4))
    grid = np.linspace(1e-3, 1 - 1e-3, 400)
    for r in cfg.ratios:
        a, b = ps.beta_parameters(result.mu_D, r, C=cfg.beta_C, c_D=cfg.c_D)
        ax.plot(grid, stats.beta.pdf(grid, a, max(float(b), 1e-12)), label=f"r={r:g}")
    ax2 = ax.twinx()
    ax2.hist(result.mean_probs, bins=40, color="grey", alpha=0.3)
    ax2.set_ylabel("examples")
    ax.set(xlabel=f"mean true-class prob. over the first {cfg.dual_T} epochs",
           ylabel="Beta pdf", title=f"ratio-adaptive Beta (μ_D = {result.mu_D:.3f})")
    ax.set_ylim(0, 20)
    ax.legend(fontsize=7)
    fig.tight_layout()
    figs["beta"] = fig

    fig, ax = plt.subplots(figsize=(6, 4))
    col = np.where(result.noisy, "tab:red", "tab:blue")
    ax.scatter(result.mean_probs, result.dual, s=3, c=col, alpha=0.5)
    ax.set(xlabel="mean true-class probability (first T epochs)", ylabel="DUAL score",
           title="DUAL vs prediction mean" + (" (red: flipped label)" if result.noisy.any()
                                               else ""))
    fig.tight_layout()
    figs["score_vs_mean"] = fig
    return figs
