"""Auxiliary optimizer studies (``rlhf_gbpm.analysis``).

Each study is a seeded testbed with a config dataclass, ``run``, ``plot`` and ``claims``
(see ``_framework``). Run one with ``rlhf-gbpm study NAME`` or :func:`run_study`.
"""

from rlhf_gbpm.analysis._framework import STUDIES as STUDIES
from rlhf_gbpm.analysis._framework import Claim as Claim
from rlhf_gbpm.analysis._framework import StudyOutput as StudyOutput
from rlhf_gbpm.analysis._framework import check_finite_fields as check_finite_fields
from rlhf_gbpm.analysis._framework import check_tuple as check_tuple
from rlhf_gbpm.analysis._framework import claims_table as claims_table
from rlhf_gbpm.analysis._framework import fit_loglog_slope as fit_loglog_slope
from rlhf_gbpm.analysis._framework import geometric_steps as geometric_steps
from rlhf_gbpm.analysis._framework import get_study as get_study
from rlhf_gbpm.analysis._framework import list_studies as list_studies
from rlhf_gbpm.analysis._framework import load_config as load_config
from rlhf_gbpm.analysis._framework import run_study as run_study
from rlhf_gbpm.analysis._framework import study_config as study_config
from rlhf_gbpm.analysis._framework import torch_threads as torch_threads

__all__ = [
    "STUDIES",
    "Claim",
    "StudyOutput",
    "check_finite_fields",
    "check_tuple",
    "claims_table",
    "fit_loglog_slope",
    "geometric_steps",
    "get_study",
    "list_studies",
    "load_config",
    "run_study",
    "study_config",
    "torch_threads",
]
