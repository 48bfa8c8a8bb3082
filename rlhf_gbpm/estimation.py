"""Estimators of the GBPM parameter Theta in skew coordinates.

* :func:`fit_mle`: the constrained skew-symmetric MLE of Greedy Sampling (Frobenius ball),
  by a batched, warm-started, ball-constrained Newton method, exact to rounding also on
  rank-deficient data (fewer comparisons than coordinates: the optimum on the sphere, or
  the minimum-norm one inside); :func:`mle_cvxpy` is the cvxpy reference.
* :class:`OnlineNewtonStep`: the one-pass ONS estimator of the authors' rebuttal code,
  restricted to Skew(d).
* :func:`fit_nuclear_mle`: the nuclear-norm-penalized MLE of Explore-Then-Commit by
  accelerated proximal gradient with singular-value soft-thresholding;
  :func:`nuclear_mle_cvxpy` is the cvxpy reference and :func:`lambda_theory` the
  theory's penalty weight.

All work on theta = skew_to_vec(Theta) (:mod:`rlhf_gbpm.skew`), where
||theta||_2 = ||Theta||_F and phi1^T Theta phi2 = theta . pair_features(phi1, phi2).

References:
    Lee, Hong, Jun, Yun, Yun. "Regularized Online RLHF with Generalized Bilinear
    Preferences", arXiv:2602.23116, 2026, Algorithms 1 and 2.
"""

from __future__ import annotations

from rlhf_gbpm._mle import MLEResult, fit_mle, mle_cvxpy
from rlhf_gbpm._nuclear import (
    NuclearMLEResult,
    fit_nuclear_mle,
    lambda_theory,
    nuclear_mle_cvxpy,
)
from rlhf_gbpm._ons import OnlineNewtonStep

__all__ = [
    "MLEResult",
    "fit_mle",
    "mle_cvxpy",
    "OnlineNewtonStep",
    "NuclearMLEResult",
    "fit_nuclear_mle",
    "nuclear_mle_cvxpy",
    "lambda_theory",
]
