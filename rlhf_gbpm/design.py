"""Exploration design for Explore-Then-Commit: E-optimal design, C_min and the length T0.

* :func:`e_optimal_design`: rho_E = argmax_{rho in simplex} lambda_min(sum_a rho_a phi_a phi_a^T),
  an SDP solved with cvxpy (Clarabel or SCS), with a dual certificate of optimality.
* :func:`c_min`: lambda_min(Phi^T diag(rho) Phi), the diversity constant of Assumption 1.
* :func:`etc_exploration_length`: the exploration budget T0 of spec gbpm.md section 3.2 and
  section 9 item 9, every constant exposed; :func:`etc_exploration_terms` gives its parts.

Note: with ||phi|| <= 1, trace(sum_a rho_a phi_a phi_a^T) <= 1, so C_min <= 1/d always
(spec section 4).

References:
    Lee, Hong, Jun, Yun, Yun. "Regularized Online RLHF with Generalized Bilinear
    Preferences", arXiv:2602.23116, 2026, Assumption 1 and Appendix C.1.
    Pukelsheim. "Optimal Design of Experiments", SIAM, 2006 (E-optimality, equivalence
    theorem).
"""

from __future__ import annotations

import logging
import math
import numbers
import warnings
from dataclasses import dataclass

import numpy as np

from rlhf_gbpm._results import SolverResult, messages_for
from rlhf_gbpm._validation import check_array, check_eta, check_scalar, check_simplex
from rlhf_gbpm.errors import DependencyNotInstalled, GBPMWarning, missing_dependency

__all__ = [
    "DesignResult",
    "e_optimal_design",
    "c_min",
    "etc_exploration_length",
    "etc_exploration_terms",
    "TUNINGS",
]

logger = logging.getLogger(__name__)

TUNINGS = ("auto", "eta", "free")
_SDP_SOLVERS = ("CLARABEL", "SCS")


@dataclass(frozen=True)
class DesignResult(SolverResult):
    """Outcome of an E-optimal design solve (batched).

    Attributes:
        c_min: lambda_min of the design matrix at the returned policy, shape batch.
        dual: Dual certificate Z (PSD, trace 1), shape (*batch, d, d).
        gap: Certified optimality gap ``sum_c w_c max_a phi_ca^T Z phi_ca - c_min`` >= 0,
            shape batch: no policy reaches more than ``c_min + gap``.
    """

    c_min: np.ndarray = None
    dual: np.ndarray = None
    gap: np.ndarray = None

    @property
    def policy(self) -> np.ndarray:
        """The design rho, shape (*batch, K) (or (*batch, C, K) when pooled); same as ``x``."""
        return self.x


def c_min(features, policy) -> np.ndarray:
    """Diversity constant lambda_min(Phi^T diag(rho) Phi) (Assumption 1), batched.

    Args:
        features: Feature tables Phi, shape (..., K, d).
        policy: Policies rho on the simplex, shape (..., K); batch axes broadcast against
            those of ``features``.

    Returns:
        lambda_min per problem, shape of the broadcast batch axes; <= 1/d for rows of norm
        at most one.
    """
    sizes: dict[str, int] = {}
    features = check_array(features, "features", shape=("...", "K", "d"), sizes=sizes)
    policy = check_simplex(policy, "policy", sizes=sizes)
    mat = np.einsum("...ka,...k,...kb->...ab", features, policy, features)
    return np.linalg.eigvalsh(0.5 * (mat + np.swapaxes(mat, -1, -2)))[..., 0]


def _pick_solver(cp, solver: str | None) -> str:
    installed = set(cp.installed_solvers())
    if solver is not None:
        if solver.upper() not in installed:
            raise ValueError(
                f"solver == {solver!r} is not installed; installed cvxpy solvers: "
                f"{sorted(installed)}."
            )
        return solver.upper()
    for name in _SDP_SOLVERS:
        if name in installed:
            return name
    raise DependencyNotInstalled(
        "e_optimal_design needs an SDP solver for cvxpy (Clarabel or SCS); install one with: "
        "pip install clarabel"
    )


def e_optimal_design(
    features,
    *,
    pooled: bool = False,
    context_weights=None,
    solver: str | None = None,
) -> DesignResult:
    """E-optimal exploration design: the policy that maximizes lambda_min of the design matrix.

    Solves ``max_{rho in simplex} lambda_min(sum_a rho_a phi_a phi_a^T)`` as an SDP
    (``max t  s.t.  M(rho) - t I PSD``) with cvxpy, compiled once and re-solved for each
    problem of the batch. The dual matrix Z of the PSD constraint certifies optimality: no
    policy exceeds ``max_a phi_a^T Z phi_a``, reported as ``c_min + gap``.

    Args:
        features: Feature tables, shape (..., K, d). Each table is its own problem, so a
            stack of C contexts (C, K, d) gives one design per context (the per-context
            diversity of spec section 9 item 12), unless ``pooled``.
        pooled: If True, the last three axes (C, K, d) are one problem: a policy per context,
            shape (C, K), chosen jointly to maximize lambda_min(sum_c w_c M_c(rho_c)), the
            context-averaged condition of Assumption 1.
        context_weights: Context distribution w (C,) for ``pooled``; default uniform.
        solver: ``"CLARABEL"`` or ``"SCS"`` (default: the first installed of these).

    Returns:
        :class:`DesignResult`; ``policy`` has shape (..., K), or (..., C, K) when pooled.

    Raises:
        ValueError: On bad shapes or weights, or an unknown solver.
        DependencyNotInstalled: If no SDP solver is available to cvxpy.
    """
    try:
        import cvxpy as cp
    except ImportError as err:  # pragma: no cover - cvxpy is a core dependency
        raise missing_dependency("cvxpy", "cvxpy") from err
    name = _pick_solver(cp, solver)
    if pooled:
        feats = check_array(features, "features", shape=("...", "C", "K", "d"))
        C = feats.shape[-3]
        if context_weights is None:
            cw = np.full(C, 1.0 / C)
        else:
            cw = check_simplex(context_weights, "context_weights", shape=(C,))
    else:
        if context_weights is not None:
            raise ValueError("context_weights is only used with pooled=True.")
        feats = check_array(features, "features", shape=("...", "K", "d"))
        C, cw = 1, np.ones(1)
    K, d = feats.shape[-2:]
    batch = feats.shape[:-3] if pooled else feats.shape[:-2]
    stack = feats.reshape((-1, C, K, d))
    nb = stack.shape[0]

    # outer products as a parameter: vec(M) = G^T rho is DPP, so one compile serves the batch
    rho = cp.Variable((C, K), nonneg=True)
    t = cp.Variable()
    gparam = [cp.Parameter((K, d * d)) for _ in range(C)]
    mvec = sum(cw[c] * (gparam[c].T @ rho[c]) for c in range(C))
    mat = cp.reshape(mvec, (d, d), order="C")
    psd = 0.5 * (mat + mat.T) - t * np.eye(d) >> 0
    prob = cp.Problem(cp.Maximize(t), [cp.sum(rho, axis=1) == 1, psd])

    policy = np.zeros((nb, C, K))
    dual = np.zeros((nb, d, d))
    status = np.zeros(nb, dtype=int)
    for b in range(nb):
        for c in range(C):
            gparam[c].value = np.einsum("ka,kb->kab", stack[b, c], stack[b, c]).reshape(K, -1)
        prob.solve(solver=name)
        if rho.value is None or prob.status not in ("optimal", "optimal_inaccurate"):
            status[b] = 5
            policy[b] = 1.0 / K
            dual[b] = np.eye(d) / d
            continue
        p = np.maximum(rho.value, 0.0)
        policy[b] = p / p.sum(axis=1, keepdims=True)
        z = np.asarray(psd.dual_value, dtype=float)
        z = 0.5 * (z + z.T)
        lam, vec = np.linalg.eigh(z)
        z = (vec * np.maximum(lam, 0.0)) @ vec.T
        dual[b] = z / max(np.trace(z), 1e-300)

    design = np.einsum("c,nckp,nck,nckq->npq", cw, stack, policy, stack)
    value = np.linalg.eigvalsh(design)[:, 0]
    bound = np.einsum("c,nc->n", cw,
                      np.einsum("nckp,npq,nckq->nck", stack, dual, stack).max(axis=-1))
    gap = np.maximum(bound - value, 0.0)
    out_policy = policy.reshape(batch + ((C, K) if pooled else (K,)))
    return DesignResult(
        x=out_policy,
        success=(status == 0).reshape(batch),
        status=status.reshape(batch),
        message=messages_for(status),
        nit=np.zeros(batch, dtype=int),
        c_min=value.reshape(batch),
        dual=dual.reshape(batch + (d, d)),
        gap=gap.reshape(batch),
    )


def _check_positive(value, name: str) -> np.ndarray:
    arr = check_array(value, name)
    if np.any(arr <= 0):
        bad = float(np.ravel(arr)[np.argmax(np.ravel(arr) <= 0)])
        raise ValueError(f"{name} == {bad!r}, must be > 0.")
    return arr


def etc_exploration_terms(
    T: int,
    *,
    eta,
    beta: float,
    rank: int,
    d: int,
    c_min,
    kappa,
    delta: float | None = None,
    c_eta: float = 1.0,
    c_free: float = 1.0,
    c_lower: float = 1.0,
) -> dict[str, np.ndarray]:
    """The parts of the ETC exploration rule (spec gbpm.md section 3.2), unclipped.

    With L = log(d / delta):

    * ``"eta"``: c_eta kappa^-1 C_min^-2 sqrt(T eta beta r L) (eta-dependent tuning),
    * ``"free"``: c_free (T^2 kappa^-2 C_min^-4 r L)^(1/3) (eta-free tuning),
    * ``"lower"``: c_lower C_min^-4 kappa^-2 d r L (the estimator's sample requirement),
    * ``"upper"``: T - 1.

    Args:
        T: Horizon, >= 2.
        eta: Regularization strength(s) in (0, inf]; arrays broadcast.
        beta: Strong-convexity constant of the regularizer (beta^-1-strongly convex), > 0.
        rank: r, the number of 2x2 blocks of Theta_star, >= 1.
        d: Feature dimension, >= 2.
        c_min: Diversity constant(s) C_min of the exploration policy, > 0.
        kappa: Curvature constant(s) (kappa_star under self-concordance, else kappa), > 0.
        delta: Failure probability in (0, 1); default 1/T.
        c_eta: Constant of the eta-dependent rule, >= 0.
        c_free: Constant of the eta-free rule, >= 0.
        c_lower: Constant of the lower clip, >= 0 (0 disables it).

    Returns:
        Dict of float arrays (broadcast shape of eta, c_min, kappa) with keys "eta", "free",
        "lower" and "upper".
    """
    check_scalar(T, "T", numbers.Integral, min_val=2)
    check_scalar(beta, "beta", numbers.Real, min_val=0.0, include_boundaries="neither")
    check_scalar(rank, "rank", numbers.Integral, min_val=1)
    check_scalar(d, "d", numbers.Integral, min_val=2)
    if delta is None:
        delta = 1.0 / T
    check_scalar(delta, "delta", numbers.Real, min_val=0.0, max_val=1.0,
                 include_boundaries="neither")
    for value, name in ((c_eta, "c_eta"), (c_free, "c_free"), (c_lower, "c_lower")):
        check_scalar(value, name, numbers.Real, min_val=0.0)
    eta = check_eta(eta)
    cm = _check_positive(c_min, "c_min")
    kap = _check_positive(kappa, "kappa")
    eta, cm, kap = np.broadcast_arrays(eta, cm, kap)
    log_term = math.log(d / delta)
    with np.errstate(over="ignore"):
        t_eta = c_eta / (kap * cm**2) * np.sqrt(T * eta * beta * rank * log_term)
    t_free = c_free * np.cbrt(T**2 * rank * log_term / (kap**2 * cm**4))
    lower = c_lower * d * rank * log_term / (cm**4 * kap**2)
    return {"eta": t_eta, "free": t_free, "lower": lower,
            "upper": np.full(t_eta.shape, float(T - 1))}


def etc_exploration_length(
    T: int,
    *,
    eta,
    beta: float,
    rank: int,
    d: int,
    c_min,
    kappa,
    delta: float | None = None,
    tuning: str = "auto",
    c_eta: float = 1.0,
    c_free: float = 1.0,
    c_lower: float = 1.0,
):
    """Exploration length T0 of Explore-Then-Commit from the theory (spec section 9 item 9).

    ``T0 = clip(ceil(T0_rule), lower, T - 1)`` with T0_rule = min(T0_eta, T0_free) for
    ``tuning="auto"``, T0_eta for ``"eta"`` and T0_free for ``"free"`` (see
    :func:`etc_exploration_terms` for the formulas; eta = inf makes T0_eta infinite). The
    lower clip is the estimator's requirement; since C_min <= 1/d it is at least
    d^5 r log(d/delta) / kappa^2 at ``c_lower = 1``, which often exceeds T - 1: then T0 = T - 1
    and a :class:`~rlhf_gbpm.errors.GBPMWarning` says so (pass ``c_lower=0`` to drop it).

    Args:
        T: Horizon, >= 2.
        eta: Regularization strength(s) in (0, inf]; arrays broadcast.
        beta: Strong-convexity constant of the regularizer, > 0.
        rank: r (Theta_star has rank 2r), >= 1.
        d: Feature dimension, >= 2.
        c_min: C_min of the exploration policy (see :func:`c_min`), > 0.
        kappa: Curvature constant kappa (or kappa_star), > 0.
        delta: Failure probability in (0, 1); default 1/T.
        tuning: ``"auto"``, ``"eta"`` or ``"free"``.
        c_eta: Constant of the eta-dependent rule, >= 0.
        c_free: Constant of the eta-free rule, >= 0.
        c_lower: Constant of the lower clip, >= 0.

    Returns:
        T0 in [1, T - 1]: an int for scalar inputs, else an int array of the broadcast shape.

    Raises:
        ValueError: On out-of-range arguments or an unknown ``tuning``.
    """
    if tuning not in TUNINGS:
        raise ValueError(f"tuning == {tuning!r}, must be one of {TUNINGS}.")
    terms = etc_exploration_terms(T, eta=eta, beta=beta, rank=rank, d=d, c_min=c_min,
                                  kappa=kappa, delta=delta, c_eta=c_eta, c_free=c_free,
                                  c_lower=c_lower)
    if tuning == "eta":
        rule = terms["eta"]
    elif tuning == "free":
        rule = terms["free"]
    else:
        rule = np.minimum(terms["eta"], terms["free"])
    with np.errstate(invalid="ignore"):
        t0 = np.maximum(np.ceil(rule), np.ceil(terms["lower"]))
    t0 = np.clip(np.nan_to_num(t0, nan=T - 1.0, posinf=T - 1.0), 1.0, T - 1.0)
    if np.any(terms["lower"] > T - 1):
        warnings.warn(
            f"etc_exploration_length: the estimator's sample requirement "
            f"({float(np.max(terms['lower'])):.3g} rounds) exceeds T - 1 == {T - 1}; "
            f"exploring for T - 1 rounds (set c_lower to change the requirement).",
            GBPMWarning,
            stacklevel=2,
        )
    out = t0.astype(np.int64)
    return int(out) if out.ndim == 0 else out
