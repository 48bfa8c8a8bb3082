"""torch.optim optimizers used by the studies (SAM, Signum, Muon, SpecGD)."""

from rlhf_gbpm.analysis.optimizers.muon import Muon as Muon
from rlhf_gbpm.analysis.optimizers.muon import SpecGD as SpecGD
from rlhf_gbpm.analysis.optimizers.sam import SAM as SAM
from rlhf_gbpm.analysis.optimizers.signum import Signum as Signum

__all__ = [
    "Muon",
    "SpecGD",
    "SAM",
    "Signum",
]
