"""Gymnasium environments for contextual GBPM dueling (``rlhf_gbpm.envs``)."""
