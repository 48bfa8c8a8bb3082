"""torch.optim optimizers used by the studies (SAM, Signum, Muon, SpecGD)."""
