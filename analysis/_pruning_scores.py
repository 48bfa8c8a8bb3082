"""Data-pruning scores and selection rules computed from recorded training dynamics.

Every score takes arrays recorded while training any classifier (per-epoch softmax outputs on
the training set) and returns one number per example, **higher = keep first** for top-k
selection. Nothing here depends on the model or the dataset: record the dynamics with
:func:`predict_probs` (any ``torch.nn.Module`` returning logits) or with your own loop.

Shapes: ``E`` recorded epochs, ``N`` training examples, ``C`` classes.

* :func:`dual_score`: DUAL, mean over sliding windows of std x (1 - mean) of the true-class
  probability over the first T epochs (Cho et al. 2025);
* :func:`beta_parameters` / :func:`beta_sampling_probs` / :func:`beta_sample`: DUAL's
  pruning-ratio-adaptive Beta sampling;
* :func:`el2n_score` (Paul et al. 2021), :func:`forgetting_score` (Toneva et al. 2019),
  :func:`aum_score` (Pleiss et al. 2020, negated), :func:`entropy_score` (Coleman et al. 2020),
  :func:`dynunc_score` (He et al. 2024);
* :func:`topk_select`, :func:`random_select`, :func:`ccs_select` (Zheng et al. 2023).

References:
    Cho, Shin, Kang, Yun. "Lightweight Dataset Pruning without Full Training via Example
    Difficulty and Prediction Uncertainty". ICML 2025, arXiv:2502.06905.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy import stats

from rlhf_gbpm._validation import as_generator, check_array, check_scalar

__all__ = [
    "true_class_probs",
    "predict_probs",
    "dual_score",
    "beta_parameters",
    "beta_sampling_probs",
    "beta_sample",
    "el2n_score",
    "forgetting_score",
    "aum_score",
    "entropy_score",
    "dynunc_score",
    "topk_select",
    "random_select",
    "ccs_select",
]


def _check_labels(labels, n: int, num_classes: int) -> np.ndarray:
    y = check_array(labels, "labels", shape=(n,), dtype=None)
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"labels must be integers, got dtype {y.dtype}.")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got range [{y.min()}, "
                         f"{y.max()}].")
    return y


def true_class_probs(probs, labels) -> np.ndarray:
    """Probability of the given label.

    Args:
        probs: Softmax outputs, shape (..., N, C).
        labels: Given labels, shape (N,), ints in [0, C).

    Returns:
        p[..., i, labels[i]], shape (..., N).
    """
    p = check_array(probs, "probs", shape=("...", "N", "C"))
    y = _check_labels(labels, p.shape[-2], p.shape[-1])
    return np.take_along_axis(p, np.broadcast_to(y[:, None], p.shape[:-1] + (1,)), -1)[..., 0]


def predict_probs(model, inputs, *, batch_size: int = 4096) -> np.ndarray:
    """Softmax outputs of a torch classifier in eval mode (one recording pass).

    Args:
        model: A ``torch.nn.Module`` mapping inputs of shape (B, ...) to logits (B, C).
        inputs: A tensor of inputs, shape (N, ...).
        batch_size: Examples per forward pass.

    Returns:
        Probabilities, shape (N, C), float64 numpy.
    """
    import torch

    check_scalar(batch_size, "batch_size", numbers.Integral, min_val=1)
    was_training = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, inputs.shape[0], batch_size):
            logits = model(inputs[start:start + batch_size])
            out.append(torch.softmax(logits.double(), dim=-1).cpu().numpy())
    model.train(was_training)
    return np.concatenate(out, axis=0)


def _sliding(p: np.ndarray, J: int) -> np.ndarray:
    """Windows of length J along the epoch axis: shape (E-J+1, J, N)."""
    return np.lib.stride_tricks.sliding_window_view(p, J, axis=0).transpose(0, 2, 1)


def _check_dynamics(true_probs, T: int | None, J: int) -> np.ndarray:
    p = check_array(true_probs, "true_probs", shape=("E", "N"))
    if T is not None:
        check_scalar(T, "T", numbers.Integral, min_val=2, max_val=p.shape[0])
        p = p[:T]
    check_scalar(J, "J", numbers.Integral, min_val=2, max_val=p.shape[0])
    return p


def dual_score(true_probs, T: int, J: int) -> np.ndarray:
    """DUAL score: uncertainty x difficulty from the first T epochs.

    DUAL_i = mean_k std(W_k) (1 - mean(W_k)) over the windows W_k = (p_{k,i}..p_{k+J-1,i}),
    k = 1..T-J+1 (unbiased std).

    Args:
        true_probs: True-class probabilities per epoch, shape (E, N), E >= T.
        T: Epochs used, 2 <= T <= E.
        J: Window length, 2 <= J <= T.

    Returns:
        Scores, shape (N,), >= 0; higher = more uncertain and difficult.
    """
    w = _sliding(_check_dynamics(true_probs, T, J), J)
    return np.mean(w.std(axis=1, ddof=1) * (1.0 - w.mean(axis=1)), axis=0)


def dynunc_score(true_probs, J: int) -> np.ndarray:
    """Dynamic uncertainty: mean over sliding windows of the std of the true-class probability.

    Args:
        true_probs: True-class probabilities per epoch over the whole run, shape (E, N).
        J: Window length, 2 <= J <= E.

    Returns:
        Scores, shape (N,); higher = more uncertain.
    """
    w = _sliding(_check_dynamics(true_probs, None, J), J)
    return np.mean(w.std(axis=1, ddof=1), axis=0)


def beta_parameters(mu_D: float, ratio, *, C: float = 15.0, c_D: float = 4.0):
    """Parameters of DUAL's ratio-adaptive Beta distribution.

    beta_r = C (1 - mu_D) (1 - r^c_D), alpha_r = C + 1 - beta_r; the mean
    1 - beta_r/(C+1) moves from the hard region toward easy examples as r grows.

    Args:
        mu_D: Mean prediction of the highest-DUAL examples, in [0, 1].
        ratio: Pruning ratios in [0, 1), any shape.
        C: Concentration, > 0.
        c_D: Exponent controlling how late the shift happens, > 0.

    Returns:
        (alpha_r, beta_r), arrays with the shape of ``ratio``.
    """
    check_scalar(mu_D, "mu_D", numbers.Real, min_val=0.0, max_val=1.0)
    check_scalar(C, "C", numbers.Real, min_val=0.0, include_boundaries="neither")
    check_scalar(c_D, "c_D", numbers.Real, min_val=0.0, include_boundaries="neither")
    r = np.asarray(ratio, dtype=float)
    if np.any((r < 0) | (r >= 1)):
        raise ValueError(f"ratio must lie in [0, 1), got {r!r}.")
    beta_r = C * (1.0 - mu_D) * (1.0 - r**c_D)
    return C + 1.0 - beta_r, beta_r


def beta_sampling_probs(dual, mean_probs, ratio: float, *, C: float = 15.0, c_D: float = 4.0,
                        weight: str = "pdf*score", n_anchor: int = 10) -> np.ndarray:
    """Sampling probabilities of DUAL + Beta sampling.

    w_i = BetaPDF(mean_i; alpha_r, beta_r) x DUAL_i (or the pdf alone), with the mean true-class
    probability clipped to [1e-4, 1 - 1e-4] and 1e-12 added so every example can be drawn.

    Args:
        dual: DUAL scores, shape (N,).
        mean_probs: Mean true-class probability over the same T epochs, shape (N,).
        ratio: Pruning ratio in [0, 1).
        C: Beta concentration.
        c_D: Shift exponent.
        weight: "pdf*score" (the official code) or "pdf".
        n_anchor: Number of top-DUAL examples averaged into mu_D.

    Returns:
        Probabilities, shape (N,), summing to one.
    """
    s = check_array(dual, "dual", ndim=1)
    m = check_array(mean_probs, "mean_probs", shape=(s.size,))
    if weight not in ("pdf*score", "pdf"):
        raise ValueError(f"weight == {weight!r}, must be 'pdf*score' or 'pdf'.")
    check_scalar(n_anchor, "n_anchor", numbers.Integral, min_val=1)
    top = np.argsort(-s, kind="stable")[:n_anchor]
    a, b = beta_parameters(float(np.clip(m[top].mean(), 0.0, 1.0)), ratio, C=C, c_D=c_D)
    pdf = stats.beta.pdf(np.clip(m, 1e-4, 1 - 1e-4), a, max(float(b), 1e-12))
    w = pdf * s if weight == "pdf*score" else pdf
    w = np.where(np.isfinite(w), w, 0.0) + 1e-12
    return w / w.sum()


def beta_sample(dual, mean_probs, ratio: float, n_keep: int, *, seed=None, C: float = 15.0,
                c_D: float = 4.0, weight: str = "pdf*score") -> np.ndarray:
    """Draw the kept subset of DUAL + Beta sampling (without replacement).

    Args:
        dual: DUAL scores, shape (N,).
        mean_probs: Mean true-class probability over the first T epochs, shape (N,).
        ratio: Pruning ratio in [0, 1).
        n_keep: Number of examples kept, 1 <= n_keep <= N.
        seed: Seed or Generator.
        C: Beta concentration.
        c_D: Shift exponent.
        weight: "pdf*score" or "pdf".

    Returns:
        Kept indices, shape (n_keep,), sorted.
    """
    p = beta_sampling_probs(dual, mean_probs, ratio, C=C, c_D=c_D, weight=weight)
    check_scalar(n_keep, "n_keep", numbers.Integral, min_val=1, max_val=p.size)
    rng = as_generator(seed)
    return np.sort(rng.choice(p.size, size=int(n_keep), replace=False, p=p))


def el2n_score(probs, labels) -> np.ndarray:
    """EL2N: L2 norm of softmax minus one-hot, from an early checkpoint.

    Args:
        probs: Softmax outputs at one epoch, shape (N, C) (or averaged over runs).
        labels: Given labels, shape (N,).

    Returns:
        Scores, shape (N,), in [0, sqrt(2)]; higher = harder.
    """
    p = check_array(probs, "probs", shape=("N", "C"))
    y = _check_labels(labels, p.shape[0], p.shape[1])
    onehot = np.eye(p.shape[1])[y]
    return np.linalg.norm(p - onehot, axis=1)


def forgetting_score(correct) -> np.ndarray:
    """Forgetting events: correct -> incorrect transitions across recorded epochs.

    Never-learned examples get max + 1 (Toneva et al.'s convention: they rank as the most
    forgettable).

    Args:
        correct: Whether the prediction was right at each recorded epoch, shape (E, N), bool.

    Returns:
        Scores, shape (N,); higher = more forgotten.
    """
    c = check_array(correct, "correct", shape=("E", "N"), dtype=bool)
    events = np.sum(c[:-1] & ~c[1:], axis=0).astype(float)
    never = ~c.any(axis=0)
    top = events.max(initial=0.0)
    return np.where(never, top + 1.0, events)


def aum_score(probs, labels) -> np.ndarray:
    """Negated area under the margin: -(mean over epochs of p_y - max_{c != y} p_c).

    Args:
        probs: Softmax outputs per epoch, shape (E, N, C).
        labels: Given labels, shape (N,).

    Returns:
        Scores, shape (N,), in [-1, 1]; higher = harder (low AUM).
    """
    p = check_array(probs, "probs", shape=("E", "N", "C"))
    y = _check_labels(labels, p.shape[1], p.shape[2])
    py = true_class_probs(p, y)
    other = p.copy()
    other[:, np.arange(p.shape[1]), y] = -np.inf
    return -np.mean(py - other.max(axis=-1), axis=0)


def entropy_score(probs) -> np.ndarray:
    """Predictive entropy at one epoch (usually the last).

    Args:
        probs: Softmax outputs, shape (N, C).

    Returns:
        Entropies in nats, shape (N,); higher = more uncertain.
    """
    p = check_array(probs, "probs", shape=("N", "C"))
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    return terms.sum(axis=1)


def topk_select(score, n_keep: int) -> np.ndarray:
    """Keep the n_keep highest scores (ties: lower index first).

    Args:
        score: Scores, shape (N,).
        n_keep: Number kept, 1 <= n_keep <= N.

    Returns:
        Kept indices, shape (n_keep,), sorted.
    """
    s = check_array(score, "score", ndim=1)
    check_scalar(n_keep, "n_keep", numbers.Integral, min_val=1, max_val=s.size)
    return np.sort(np.argsort(-s, kind="stable")[:n_keep])


def random_select(n: int, n_keep: int, *, seed=None) -> np.ndarray:
    """Uniform subset without replacement.

    Args:
        n: Dataset size.
        n_keep: Number kept, 1 <= n_keep <= n.
        seed: Seed or Generator.

    Returns:
        Kept indices, shape (n_keep,), sorted.
    """
    check_scalar(n, "n", numbers.Integral, min_val=1)
    check_scalar(n_keep, "n_keep", numbers.Integral, min_val=1, max_val=n)
    return np.sort(as_generator(seed).choice(n, size=int(n_keep), replace=False))


def _bin_allocate(counts: np.ndarray, budget: int) -> np.ndarray:
    """Split a budget evenly over bins; small bins give all they have, the rest is re-split."""
    alloc = np.zeros_like(counts)
    order = np.argsort(counts, kind="stable")
    left, bins_left = budget, counts.size
    for b in order:
        share = left // bins_left if bins_left else 0
        take = min(int(counts[b]), share)
        alloc[b] = take
        left -= take
        bins_left -= 1
    # integer remainders of the even split go to bins that still have examples
    for b in np.flatnonzero(alloc < counts):
        if left <= 0:
            break
        extra = min(int(counts[b] - alloc[b]), left)
        alloc[b] += extra
        left -= extra
    return alloc


def ccs_select(difficulty, n_keep: int, *, cutoff: float = 0.1, bins: int = 50,
               seed=None) -> np.ndarray:
    """Coverage-centric coreset selection: drop the hardest, then stratified sampling.

    Args:
        difficulty: Difficulty scores, shape (N,); higher = harder (e.g. :func:`aum_score`).
        n_keep: Number kept, 1 <= n_keep <= N.
        cutoff: Fraction of hardest examples dropped first (reduced when fewer than n_keep
            would remain).
        bins: Number of equal-width score bins.
        seed: Seed or Generator.

    Returns:
        Kept indices, shape (n_keep,), sorted.
    """
    s = check_array(difficulty, "difficulty", ndim=1)
    check_scalar(n_keep, "n_keep", numbers.Integral, min_val=1, max_val=s.size)
    check_scalar(cutoff, "cutoff", numbers.Real, min_val=0.0, max_val=1.0,
                 include_boundaries="left")
    check_scalar(bins, "bins", numbers.Integral, min_val=1)
    rng = as_generator(seed)
    n_drop = min(int(round(cutoff * s.size)), s.size - int(n_keep))
    order = np.argsort(-s, kind="stable")
    pool = order[n_drop:]
    vals = s[pool]
    lo, hi = vals.min(), vals.max()
    edges = np.linspace(lo, hi, bins + 1)
    which = np.clip(np.searchsorted(edges, vals, side="right") - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    alloc = _bin_allocate(counts, int(n_keep))
    kept = [rng.choice(pool[which == b], size=int(alloc[b]), replace=False)
            for b in range(bins) if alloc[b] > 0]
    return np.sort(np.concatenate(kept))
