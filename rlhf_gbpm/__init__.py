"""rlhf_gbpm: online RLHF with general preferences under the Generalized Bilinear Preference Model.

Core mathematics (links, preference model, instances, regularizers, regularized Nash
equilibria, estimation, regret) lives here; Gymnasium environments are in
``rlhf_gbpm.envs``, agents in ``rlhf_gbpm.agents`` and the optimizer studies in
``rlhf_gbpm.analysis``. Public names are imported lazily so that ``import rlhf_gbpm`` stays
cheap (no torch, no cvxpy).

References:
    Lee, Hong, Jun, Yun, Yun. "Regularized Online RLHF with Generalized Bilinear
    Preferences", arXiv:2602.23116, 2026.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> defining module (one concept per module; see DESIGN.md section 3)
_EXPORTS: dict[str, str] = {
    # links
    "Link": "rlhf_gbpm.links",
    "LogisticLink": "rlhf_gbpm.links",
    "LinearLink": "rlhf_gbpm.links",
    "ProbitLink": "rlhf_gbpm.links",
    "get_link": "rlhf_gbpm.links",
    # preference model
    "payoff_matrix": "rlhf_gbpm.preference",
    "preference_probability": "rlhf_gbpm.preference",
    # features and instances
    "ArmTable": "rlhf_gbpm.features",
    "FiniteContexts": "rlhf_gbpm.features",
    "ContinuousContexts": "rlhf_gbpm.features",
    "GBPMInstance": "rlhf_gbpm.instances",
    "random_skew_theta": "rlhf_gbpm.instances",
    "random_instance": "rlhf_gbpm.instances",
    "bradley_terry_instance": "rlhf_gbpm.instances",
    "cyclic_instance": "rlhf_gbpm.instances",
    "custom_instance": "rlhf_gbpm.instances",
    # regularizers
    "Regularizer": "rlhf_gbpm.regularizers",
    "SeparableRegularizer": "rlhf_gbpm.regularizers",
    "get_regularizer": "rlhf_gbpm.regularizers",
    "register_regularizer": "rlhf_gbpm.regularizers",
    "sum_of": "rlhf_gbpm.regularizers",
    # equilibrium
    "SNEResult": "rlhf_gbpm.equilibrium",
    "solve_sne": "rlhf_gbpm.equilibrium",
    "best_response": "rlhf_gbpm.equilibrium",
    "dual_gap": "rlhf_gbpm.equilibrium",
    "j_eta": "rlhf_gbpm.equilibrium",
    # estimation and design
    "MLEResult": "rlhf_gbpm.estimation",
    "fit_mle": "rlhf_gbpm.estimation",
    "mle_cvxpy": "rlhf_gbpm.estimation",
    "OnlineNewtonStep": "rlhf_gbpm.estimation",
    "NuclearMLEResult": "rlhf_gbpm.estimation",
    "fit_nuclear_mle": "rlhf_gbpm.estimation",
    "nuclear_mle_cvxpy": "rlhf_gbpm.estimation",
    "lambda_theory": "rlhf_gbpm.estimation",
    "DesignResult": "rlhf_gbpm.design",
    "e_optimal_design": "rlhf_gbpm.design",
    "c_min": "rlhf_gbpm.design",
    "etc_exploration_length": "rlhf_gbpm.design",
    "etc_exploration_terms": "rlhf_gbpm.design",
    # regret
    "policy_dual_gaps": "rlhf_gbpm.regret",
    "mbr_regret": "rlhf_gbpm.regret",
    "abr_regret": "rlhf_gbpm.regret",
    "average_policy": "rlhf_gbpm.regret",
    "online_to_batch_bound": "rlhf_gbpm.regret",
    "RateFit": "rlhf_gbpm.regret",
    "fit_regret_rates": "rlhf_gbpm.regret",
    "RegretLog": "rlhf_gbpm.regret",
    # user-defined regularizers and the strong-convexity check
    "TorchRegularizer": "rlhf_gbpm.custom_regularizers",
    "CvxpyRegularizer": "rlhf_gbpm.custom_regularizers",
    "GenericRegularizer": "rlhf_gbpm.custom_regularizers",
    "estimate_beta": "rlhf_gbpm.strong_convexity",
    "check_regularizer": "rlhf_gbpm.strong_convexity",
    # results and errors
    "SolverResult": "rlhf_gbpm._results",
    "GBPMError": "rlhf_gbpm.errors",
    "GBPMWarning": "rlhf_gbpm.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rlhf_gbpm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
