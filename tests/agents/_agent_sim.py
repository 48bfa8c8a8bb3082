"""A minimal, independent simulator of the dueling protocol for agent tests.

It draws contexts and preference bits from counter-based streams exactly as the protocol
describes (rlhf_gbpm.protocol), from GBPM instances built in the test, and scores the
declared max-player policies with the core's dual gap on the TRUE payoff. It is written
here (not taken from envs/) so that agent tests do not depend on the environment code.
"""

from __future__ import annotations

import numpy as np

from rlhf_gbpm._random import counter_uniform
from rlhf_gbpm.protocol import STREAM_CONTEXT, STREAM_NOISE, DuelAction


class Sim:
    """B independent runs, one GBPM instance each."""

    def __init__(self, instances, noise_keys):
        self.instances = list(instances)
        self.keys = np.asarray(noise_keys, dtype=np.uint64)
        fm = self.instances[0].feature_map
        self.continuous = fm.num_contexts is None
        self.B = len(self.instances)

    def observe(self, t):
        """Observation dict (batched) at round t, plus the contexts."""
        obs_feats, ctxs = [], []
        for b, inst in enumerate(self.instances):
            fm = inst.feature_map
            u = counter_uniform(self.keys[b], t * 8 + np.arange(fm.uniforms_per_context),
                                STREAM_CONTEXT)
            c = fm.contexts_from_uniform(u)
            ctxs.append(c)
            obs_feats.append(fm.features(c))
        obs = {"features": np.stack(obs_feats)}
        if self.continuous:
            obs["x"] = np.stack(ctxs)
        else:
            obs["context"] = np.asarray(ctxs, dtype=np.int64)
        return obs

    def payoff(self, obs):
        """True payoffs at the observed contexts, shape (B, K, K) (cached for finite ones)."""
        from rlhf_gbpm.preference import payoff_matrix

        key = None if self.continuous else tuple(np.asarray(obs["context"]).tolist())
        cache = self.__dict__.setdefault("_payoffs", {})
        if key is None or key not in cache:
            value = np.stack([payoff_matrix(obs["features"][b], inst.theta, inst.link)
                              for b, inst in enumerate(self.instances)])
            if key is None:
                return value
            cache[key] = value
        return cache[key]

    def reward(self, obs, pair, t):
        """Preference bits 1[u < mu(phi1^T Theta phi2)], shape (B,)."""
        rows = np.arange(self.B)
        f = obs["features"]
        phi1, phi2 = f[rows, pair[:, 0]], f[rows, pair[:, 1]]
        p = np.array([inst.link.mu(phi1[b] @ inst.theta @ phi2[b])
                      for b, inst in enumerate(self.instances)])
        u = counter_uniform(self.keys, t, STREAM_NOISE)
        return (u < p).astype(float)


def run(agent, sim, T, *, batched=True, seeds=None, regularizer=None, eta=None,
        record=False):
    """Run ``agent`` for T rounds on ``sim``.

    With ``batched=False`` every run is played by a fresh single-run agent (same class and
    config) reset with its own seed, in a plain loop, which is how a gym loop drives it.

    Returns:
        dict with "pairs" (B, T, 2), "max" and "min" policies (B, T, K) and, when
        ``regularizer`` is given, per-round MBR "mbr" (B, T) on the true payoff.
    """
    from rlhf_gbpm.equilibrium import dual_gap

    B = sim.B
    seeds = list(range(B)) if seeds is None else list(seeds)
    if batched:
        agents = [agent.reset(seed=seeds)]
        groups = [np.arange(B)]
    else:
        cfg = agent.get_config()
        cfg.pop("agent")
        eta_cfg = np.asarray(cfg.get("eta", 1.0), dtype=float)
        agents, groups = [], []
        for b in range(B):
            kw = dict(cfg)
            if eta_cfg.ndim == 1:
                kw["eta"] = float(eta_cfg[b])
            kw["regularizer"] = agent.regularizer
            single = type(agent)(**kw)
            single.reset(seed=seeds[b])
            agents.append(single)
            groups.append(np.array([b]))
    pairs = np.zeros((B, T, 2), dtype=np.int64)
    K = sim.instances[0].K
    pmax = np.zeros((B, T, K)) if record else None
    pmin = np.zeros((B, T, K)) if record else None
    mbr = np.zeros((B, T)) if regularizer is not None else None
    prev = None
    for t in range(T):
        obs = sim.observe(t)
        pair = np.zeros((B, 2), dtype=np.int64)
        p1 = np.zeros((B, K))
        p2 = np.zeros((B, K))
        actions = []
        for ag, g in zip(agents, groups):
            if batched:
                sub = {k: v[g] for k, v in obs.items()}
                act = ag.act(sub)
            else:
                sub = {k: v[g[0]] for k, v in obs.items()}
                act = ag.act(sub)
                assert isinstance(act, DuelAction) and act.pair.shape == (2,)
            actions.append((sub, act))
            pair[g] = np.reshape(act.pair, (-1, 2))
            p1[g] = np.reshape(act.max_policy, (-1, K))
            p2[g] = np.reshape(act.min_policy, (-1, K))
        r = sim.reward(obs, pair, t)
        for (sub, act), ag, g in zip(actions, agents, groups):
            ag.update(sub, act, r[g] if batched else float(r[g[0]]))
        pairs[:, t] = pair
        if record:
            pmax[:, t], pmin[:, t] = p1, p2
        if regularizer is not None:
            a_true = sim.payoff(obs)
            same = (t > 0 and prev is not None and np.array_equal(p1, prev[0])
                    and a_true is prev[1])
            mbr[:, t] = mbr[:, t - 1] if same else dual_gap(p1, a_true, regularizer, eta)
            prev = (p1, a_true)
    return {"pairs": pairs, "max": pmax, "min": pmin, "mbr": mbr, "agents": agents}
