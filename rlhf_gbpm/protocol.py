"""The agent-environment protocol shared by envs, agents and the runner.

An agent answers each observation with a :class:`DuelAction`: the action pair and the two
policies it sampled them from. Plain Gymnasium envs accept ``DuelAction.pair`` (or the
``DuelAction`` itself, through ``RegretMonitor``, which records regret from the declared
policies and forwards only the pair). Observations are dicts:

* ``"features"``: the context's feature table, shape (K, d) (vector envs: (B, K, d));
* ``"context"``: the context index for finite contexts (0 when there are none), shape () or
  (B,); absent for continuous contexts.

Randomness: envs and agents draw from counter-based streams (``rlhf_gbpm._random``) keyed per
run, so a batched run equals the single run with the same seed.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["DuelAction", "STREAM_CONTEXT", "STREAM_NOISE", "STREAM_MAX", "STREAM_MIN"]

# stream ids for counter_uniform(key, t, stream)
STREAM_CONTEXT = 0
STREAM_NOISE = 1
STREAM_MAX = 2
STREAM_MIN = 3


class DuelAction(NamedTuple):
    """An action pair with the policies it was sampled from.

    Attributes:
        pair: Actions (a1, a2), int array of shape (2,) or (B, 2).
        max_policy: The max-player's policy (the one MBR regret scores), shape (K,) or (B, K).
        min_policy: The min-player's policy, shape (K,) or (B, K).
    """

    pair: np.ndarray
    max_policy: np.ndarray
    min_policy: np.ndarray
