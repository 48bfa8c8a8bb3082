"""Agents for the regularized GBPM preference game (``rlhf_gbpm.agents``)."""
