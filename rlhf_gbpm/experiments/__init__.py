"""Experiment machinery: configs, sweeps, runner, results store, plots and the CLI.

Public names are imported lazily, so ``rlhf-gbpm study`` and ``rlhf-gbpm list`` do not pay for
pandas or seaborn. See ``docs/experiments.md``.
"""

from __future__ import annotations

import importlib

# public name -> defining module
_EXPORTS: dict[str, str] = {
    "ExperimentConfig": "rlhf_gbpm.experiments.config",
    "builtin_configs": "rlhf_gbpm.experiments.config",
    "load_config": "rlhf_gbpm.experiments.config",
    "plan_sweep": "rlhf_gbpm.experiments.runner",
    "run_sweep": "rlhf_gbpm.experiments.runner",
    "validate_sweep": "rlhf_gbpm.experiments.runner",
    "ResultsStore": "rlhf_gbpm.experiments.store",
    "load_results": "rlhf_gbpm.experiments.store",
    "get_backend": "rlhf_gbpm.experiments.backends",
    "fit_rates": "rlhf_gbpm.experiments.summary",
    "summarize": "rlhf_gbpm.experiments.summary",
    "make_figures": "rlhf_gbpm.experiments.plots",
    "save_figures": "rlhf_gbpm.experiments.plots",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rlhf_gbpm.experiments' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
