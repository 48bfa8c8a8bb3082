"""The fast paths give the straightforward reference's numbers.

* Greedy Sampling (ONS, refresh 2, KL) batched on the vector env with the regret monitor
  plays the same pairs and has the same regret curves as ``benchmarks/_reference.py``: one run
  at a time, one scipy ``hybr`` NE solve per refresh, a per-run numpy ONS.
* The chord re-solve of Greedy Sampling's SNE (``_ChordSNE``) returns solve_sne's policies
  along a sequence of perturbed games, including jumps that force its fallback.
* The engine's one-context payoff view equals the gathered payoff.
"""

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest

from rlhf_gbpm.agents import GreedySampling
from rlhf_gbpm.agents.greedy_sampling import _ChordSNE, _matvec, _payoff
from rlhf_gbpm.envs import GBPMDuelVectorEnv, VectorRegretMonitor
from rlhf_gbpm.equilibrium import dual_gap, solve_sne
from rlhf_gbpm.instances import random_instance
from rlhf_gbpm.links import get_link
from rlhf_gbpm.preference import payoff_matrix
from rlhf_gbpm.regularizers import get_regularizer
from rlhf_gbpm.skew import skew_to_vec, vec_to_skew

_REF_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "_reference.py"


def _reference_module():
    spec = importlib.util.spec_from_file_location("_bench_reference", _REF_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _batched_gs(d, K, S, T, etas, seeds):
    env = GBPMDuelVectorEnv(num_envs=len(seeds), d=d, K=K, rank=1, S=S, horizon=T,
                            max_episode_steps=T)
    venv = VectorRegretMonitor(env, "kl", eta=etas)
    agent = GreedySampling(regularizer="kl", eta=etas, estimator="ons", refresh=2, S=S)
    agent.reset(seed=seeds)
    obs, _ = venv.reset(seed=seeds)
    pairs = []
    for _ in range(T):
        action = agent.act(obs)
        pairs.append(action.pair.copy())
        obs_next, reward, _, _, _ = venv.step(action)
        agent.update(obs, action, reward)
        obs = obs_next
    return np.stack(pairs, axis=1), venv.mbr_curve.copy(), agent.theta_vec_.copy()


@pytest.mark.parametrize("d, K, S", [(4, 8, 4.0), (5, 12, 8.0)])
def test_greedy_sampling_matches_one_run_reference(d, K, S):
    ref = _reference_module()
    T = 60
    etas = np.array([0.05, 0.05, 5.0, 5.0, 1000.0, 1000.0])
    seeds = [0, 1, 0, 1, 0, 1]
    pairs, curves, theta = _batched_gs(d, K, S, T, etas, seeds)
    for b, (eta, seed) in enumerate(zip(etas, seeds)):
        out = ref.run_reference(seed, float(eta), d=d, K=K, S=S, T=T, estimator="ons")
        np.testing.assert_array_equal(pairs[b], out["pairs"])
        np.testing.assert_allclose(curves[b], np.cumsum(out["mbr"]), rtol=1e-7, atol=1e-13)
        np.testing.assert_allclose(theta[b], out["theta"], rtol=0, atol=1e-10)


def _games(K, n, seed):
    """A drifting sequence of estimated games: Theta_hat moves like an online estimate."""
    inst = random_instance(d=5, K=K, rank=1, S=5.0, seed=seed)
    rng = np.random.default_rng(seed)
    theta = skew_to_vec(inst.theta)
    feats = inst.feature_map.features(0)
    out = []
    for k in range(n):
        step = 0.5 if k in (3, 7) else 0.02  # two large jumps
        theta = theta + step * rng.standard_normal(theta.shape)
        out.append(theta.copy())
    return feats, np.stack(out)


def _batch_games(K, n, runs):
    """``_games`` of seeds 0..runs-1 as a batch: features (B, K, d), estimates (n, B, D)."""
    games = [_games(K, n, seed) for seed in range(runs)]
    return np.stack([f for f, _ in games]), np.stack([t for _, t in games], axis=1)


_ETAS = np.array([0.01, 1.0, 30.0, 1000.0])


def _drifting_chord(name, K, n):
    """A chord solver for one run per eta of ``_ETAS`` and n drifting estimates.

    Returns (regularizer, features (B, K, d), estimates (n, B, D), link, solver).
    """
    reg = get_regularizer(name)
    feats, thetas = _batch_games(K, n, _ETAS.size)
    return reg, feats, thetas, get_link("logistic"), _ChordSNE(reg, _ETAS, K)


@pytest.mark.parametrize("name, max_it", [("kl", 12), ("l2", 12), ("tsallis_half", 12),
                                          ("kl", 1)])
def test_chord_resolve_equals_solve_sne(name, max_it, monkeypatch):
    monkeypatch.setattr(_ChordSNE, "_MAX_IT", max_it)  # 1: most re-solves use the fallback
    K, etas = 15, _ETAS
    reg, feats, thetas, link, chord = _drifting_chord(name, K, 10)
    for version, theta in enumerate(thetas, start=1):
        p = chord.policy(feats, theta, version, link)
        a = payoff_matrix(feats, vec_to_skew(theta, 5), link)
        expected = solve_sne(a, reg, etas)
        assert np.all(expected.success)
        np.testing.assert_allclose(p, expected.policy, rtol=0, atol=1e-9)
        assert np.all(dual_gap(p, a, reg, etas) <= 1e-10)
    assert chord.stats["solves"] == thetas.shape[0] - 1  # the first solve is solve_sne's
    assert chord.stats["iterations"] > 0
    if max_it == 1:
        assert chord.stats["fallback"] > 2 * etas.size


@pytest.mark.parametrize("name", ["kl", "l2"])
def test_chord_refinements_keep_the_stopping_rule(name):
    """Along drifting games with jumps the re-solve takes Newton-Schulz refinements and
    fresh inverses of G; every returned policy meets solve_sne's rule in the game of
    payoff_matrix (checked with the regularizer's own best response): ||BR(eta A p) - p||_inf
    <= 1e-12, or the score residual ||s - eta A p||_inf at rounding level (large eta)."""
    K, etas = 15, _ETAS
    reg, feats, thetas, link, chord = _drifting_chord(name, K, 10)
    rho = np.full((etas.size, K), 1.0 / K)
    for version, theta in enumerate(thetas, start=1):
        p = chord.policy(feats, theta, version, link)
        a = payoff_matrix(feats, vec_to_skew(theta, 5), link)
        y = etas[:, None] * np.einsum("bij,bj->bi", a, p)
        q, _, _ = reg.br1(y, rho)
        pres = np.max(np.abs(q - p), axis=-1)
        fn = np.max(np.abs(chord.s - y), axis=-1)
        noise = 64 * np.finfo(float).eps * (np.max(np.abs(chord.s), axis=-1)
                                            + etas * np.max(np.abs(a)) * np.sqrt(K) + 1.0)
        assert np.all((pres <= 1.5e-12) | (fn <= 1e3 * noise))  # tol + the payoff's rounding
    assert chord.stats["refined"] > 0 and chord.stats["rebuilt"] > 0


def test_chord_dual_gap_is_the_public_dual_gap():
    """_ChordSNE.dual_gap (cached payoff, no validation) equals dual_gap on payoff_matrix, at
    the solved policies (gaps ~0) and at arbitrary policies put in their place."""
    K, etas = 12, _ETAS
    reg, feats, thetas, link, chord = _drifting_chord("kl", K, 3)
    rng = np.random.default_rng(3)
    for version, theta in enumerate(thetas, start=1):
        p = chord.policy(feats, theta, version, link)
        a = payoff_matrix(feats, vec_to_skew(theta, 5), link)
        np.testing.assert_allclose(chord.dual_gap(), dual_gap(p, a, reg, etas), rtol=0,
                                   atol=1e-14)
        q = rng.dirichlet(np.ones(K), size=etas.size)
        chord.p = q
        np.testing.assert_allclose(chord.dual_gap(), dual_gap(q, a, reg, etas), rtol=1e-10)
        chord.p = p


def test_payoff_equals_payoff_matrix():
    """The exp form of the logistic payoff equals payoff_matrix and is skew to rounding."""
    feats, thetas = _games(30, 4, 7)
    link = get_link("logistic")
    theta = vec_to_skew(thetas * 3.0, 5)  # (4, 5, 5): payoffs up to saturation
    f = np.broadcast_to(feats, (4,) + feats.shape)
    a = _payoff(f, theta, link)
    want = payoff_matrix(f, theta, link)
    np.testing.assert_allclose(a, want, rtol=0, atol=1e-15)  # a few ulps of 0.5
    assert np.max(np.abs(a + np.swapaxes(a, -1, -2))) <= 1e-15
    assert np.max(np.abs(a)) > 0.4


def test_payoff_saturates_like_payoff_matrix():
    """Where e^z overflows (z > 709) or underflows, the exp form gives exactly +-1/2, as
    payoff_matrix does, without warnings; elsewhere they agree to the rounding of z (the
    diagonal's z is the rounding of Phi Theta Phi^T, ~1e-12 here, where payoff_matrix's
    skew projection gives 0)."""
    feats, thetas = _games(12, 2, 3)
    link = get_link("logistic")
    theta = vec_to_skew(thetas * 1e4, 5)  # |z| up to ~1e4: e^z is inf or 0
    f = np.broadcast_to(feats, (2,) + feats.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = _payoff(f, theta, link)
    want = payoff_matrix(f, theta, link)
    assert np.all(np.isfinite(a))
    sat = np.abs(want) == 0.5
    assert np.count_nonzero(sat) > 0.5 * a.size
    np.testing.assert_array_equal(a[sat], want[sat])
    z = np.matmul(np.matmul(f, theta), np.swapaxes(f, -1, -2))
    np.testing.assert_allclose(a, want, rtol=0,
                               atol=1e-15 + np.finfo(float).eps * np.max(np.abs(z)))


def test_engine_one_context_payoff_view():
    env = GBPMDuelVectorEnv(num_envs=3, d=4, K=6, rank=1, S=3.0)
    env.reset(seed=[5, 6, 7])
    stack, ctx = env.engine.stack, env.engine.context
    view = stack.payoff(ctx)
    gathered = stack.payoff(ctx, rows=np.arange(3))
    np.testing.assert_array_equal(view, gathered)
    expected = np.stack([inst.payoff() for inst in stack.instances])
    np.testing.assert_allclose(view, expected, rtol=0, atol=1e-15)
    assert not view.flags.writeable


def test_chord_resolve_does_not_depend_on_batch_mates(monkeypatch):
    """Each run's policies are bit-identical whether solved in a batch or alone."""
    monkeypatch.setattr(_ChordSNE, "_MAX_IT", 3)  # make some runs take the fallback
    reg = get_regularizer("kl")
    etas = np.array([0.01, 1.0, 30.0, 1000.0])
    K = 10
    feats, thetas = _batch_games(K, 8, etas.size)
    link = get_link("logistic")
    batch = _ChordSNE(reg, etas, K)
    alone = [_ChordSNE(reg, etas[i:i + 1], K) for i in range(etas.size)]
    for version, theta in enumerate(thetas, start=1):
        p = batch.policy(feats, theta, version, link)
        for i, chord in enumerate(alone):
            q = chord.policy(feats[i:i + 1], theta[i:i + 1], version, link)
            np.testing.assert_array_equal(p[i], q[0])
    assert batch.stats["fallback"] > etas.size


def _skew_games(n, K, seed):
    """Random skew payoffs (n, K, K) with entries in (-1/2, 1/2) and etas over 1e-2..1e3."""
    rng = np.random.default_rng(seed)
    a = 0.5 * np.tanh(rng.standard_normal((n, K, K)))
    a = 0.5 * (a - np.swapaxes(a, -1, -2))
    return rng, a, np.logspace(-2, 3, n)


def test_chord_stopping_rule_equals_the_direct_formula():
    """_ChordSNE._converged (rounding-level tests skipped when no row is near them) takes
    the decisions of the direct formula: pres <= tol, or ||F|| <= noise, or stalled
    (||F|| > 0.1 ||F_prev|| and ||F|| <= 1e3 noise), noise = 64 eps (||s|| + scale)."""
    K, n = 12, 400
    rng, a, etas = _skew_games(n, K, 11)
    chord = _ChordSNE(get_regularizer("kl"), etas, K)
    p = rng.dirichlet(np.full(K, 0.3), size=n)
    y = etas[:, None] * _matvec(a, p)
    scale = etas * np.max(np.abs(a), axis=(-1, -2)) * np.sqrt(K) + 1.0
    eps = np.finfo(float).eps
    noise_y = 64 * eps * (np.max(np.abs(y), axis=-1) + scale)
    # residuals from far above the rounding level down to below it
    f = rng.standard_normal((n, K)) * (noise_y * 10.0 ** rng.uniform(-2, 6, n))[:, None]
    s = y + f
    fn = np.max(np.abs(s - y), axis=-1)
    fn_prev = fn * 10.0 ** rng.uniform(-1, 3, n)
    fn_prev[::7] = np.inf
    pres = 10.0 ** rng.uniform(-14, -10, n)
    live = rng.uniform(size=n) < 0.8
    noise = 64 * eps * (np.max(np.abs(s), axis=-1) + scale)
    stalled = ~(fn <= 0.1 * fn_prev) & (fn <= 1e3 * noise)
    want = (pres <= 1e-12) | (fn <= noise) | stalled
    assert ((fn <= noise) & (pres > 1e-12)).any() and (stalled & (fn > noise)).any()
    assert (~want & (fn <= 1e4 * noise)).any()  # rows just above the rounding level
    got = chord._converged(s, fn, fn_prev, pres, scale, live)
    np.testing.assert_array_equal(got, want & live)
    for i in range(n):  # alone, each row takes or skips the rounding-level tests itself
        one = slice(i, i + 1)
        assert chord._converged(s[one], fn[one], fn_prev[one], pres[one], scale[one],
                                np.ones(1, dtype=bool)) == want[i]


@pytest.mark.parametrize("name", ["kl", "l2"])
def test_chord_newton_matrix_is_the_dense_formula(name):
    """_ChordSNE._newton_matrix equals I - eta A (diag(d) - d d^T / sum(d)) in float64, to
    float32 resolution, with d the best response's Jacobian diagonal."""
    K, n = 10, 6
    rng, a, etas = _skew_games(n, K, 5)
    reg = get_regularizer(name)
    s = rng.standard_normal((n, K)) * 3.0
    _, d, _ = reg.br1(s, np.full((n, K), 1.0 / K))
    jac = np.stack([np.diag(x) - np.outer(x, x) / x.sum() for x in d])
    want = np.eye(K) - etas[:, None, None] * np.matmul(a, jac)
    got = _ChordSNE._newton_matrix(a, etas, d.copy())
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-7 * (1 + np.max(np.abs(want))))


@pytest.mark.parametrize("max_it", [12, 2])
def test_chord_reuses_policies_only_when_they_are_the_best_responses(max_it, monkeypatch):
    """A re-solve starts from the previous policies instead of BR_1(s) only when they are
    BR_1(s) bit for bit (no run of the last solve went to solve_sne); its policies are those
    of re-solves that always recompute BR_1(s), bit for bit."""
    monkeypatch.setattr(_ChordSNE, "_MAX_IT", max_it)  # 2: some re-solves use the fallback
    etas = np.array([0.01, 1.0, 30.0, 1000.0])
    K = 12
    feats, thetas = _batch_games(K, 8, etas.size)
    link = get_link("logistic")
    chord = _ChordSNE(get_regularizer("kl"), etas, K)
    slow = _ChordSNE(get_regularizer("kl"), etas, K)
    flags = []
    for version, theta in enumerate(thetas, start=1):
        fallback = chord.stats["fallback"]
        chord.policy(feats, theta, version, link)
        slow._p_is_br = False
        np.testing.assert_array_equal(chord.p, slow.policy(feats, theta, version, link))
        assert chord._p_is_br == (chord.stats["fallback"] == fallback)  # first: solve_sne
        flags.append(chord._p_is_br)
        if chord._p_is_br:
            np.testing.assert_array_equal(chord.p, chord._br(chord.s, chord._ref))
    assert any(flags) if max_it == 12 else not all(flags[1:])
