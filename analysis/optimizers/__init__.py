"""torch.optim optimizers used by the studies (SAM, Signum, Muon, SpecGD)."""

from rlhf_gbpm.analysis.optimizers.muon import Muon as Muon
from rlhf_gbpm.analysis.optimizers.muon import SpecGD as SpecGD

__all__ = [
    "Muon",
    "SpecGD",
]
