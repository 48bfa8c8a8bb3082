"""Tests for rlhf_gbpm.analysis.deep_matrix_factorization (coupling, rank, plasticity)."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import torch

from rlhf_gbpm.analysis import deep_matrix_factorization as study
from rlhf_gbpm.analysis import load_config
from rlhf_gbpm.errors import ConfigError

TINY_TOML = """
[config]
coupling_steps = 1000
rank_seeds = 4
"""


@pytest.fixture(scope="module")
def default_result():
    return study.run(study.Config())


def test_default_claims_hold(default_result):
    found = study.claims(default_result)
    failed = [c for c in found if not c.holds]
    assert not failed, failed
    assert len(found) == 11


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_factor_gradients_match_autograd(depth):
    rng = np.random.default_rng(depth)
    factors = study.init_factors(2, 4, 3, depth, 0.5, "gauss", rng)
    target = rng.standard_normal((4, 4))
    mask = rng.random((2, 4, 4)) < 0.5
    prefix = study.end_to_end(factors)
    grads = study.factor_gradients(factors, prefix, mask * (prefix[-1] - target))
    tensors = [torch.tensor(f, requires_grad=True) for f in factors]
    w = tensors[0]
    for f in tensors[1:]:
        w = f @ w
    loss = 0.5 * (torch.as_tensor(mask) * (w - torch.as_tensor(target)) ** 2).sum()
    loss.backward()
    for g, t in zip(grads, tensors):
        np.testing.assert_allclose(g, t.grad.numpy(), atol=1e-12)


@pytest.mark.parametrize("init", ["gauss", "orthogonal", "diag"])
def test_init_end_to_end_scale(init):
    rng = np.random.default_rng(0)
    factors = study.init_factors(200, 6, 6, 3, 1e-2, init, rng)
    w = study.end_to_end(factors)[-1]
    assert w.shape == (200, 6, 6)
    if init == "orthogonal":
        # product of scaled orthogonal factors: every singular value equals the e2e scale
        np.testing.assert_allclose(np.linalg.svd(w, compute_uv=False), 1e-2, rtol=1e-10)
    elif init == "diag":
        np.testing.assert_allclose(w, np.broadcast_to(np.eye(6) * 1e-2, w.shape), rtol=1e-12)
    else:
        # ||W||_F of order e2e * sqrt(n): mean of ||W||_F^2 / n is e2e^2 (Gaussian moments)
        ratio = np.mean(np.sum(w**2, axis=(1, 2))) / 6 / 1e-4
        assert 0.7 < ratio < 1.3


def test_depth_contrasts(default_result):
    coupling = {c.depth: c for c in default_result.coupling}
    rank = {r.depth: r for r in default_result.rank}
    # depth 3 is coupled (the depth-2 claim fails there) and depth 2 is not rank-1
    assert coupling[3].coupling_gauss > 1e-3
    assert np.median(rank[2].sigma_ratio) > 0.05
    # converged 2x2 solutions lie in the zero-loss set [[1, a], [b, 1]]; rank-1 ones have ab = 1
    for depth in (3, 4):
        assert np.median(np.abs(rank[depth].product - 1)) < 1e-3
    assert np.median(np.abs(rank[2].product - 1)) > 0.05


def test_halving_lr_keeps_2x2_outcomes():
    cfg = dataclasses.replace(study.Config(), depths=(2, 3), rank_lrs=(0.1, 0.1),
                              coupling_lr=0.025, coupling_steps=1500, plasticity_depths=(2,),
                              resume_steps=(1,), pretrain_steps=0,
                              extra_pretrain_steps=())
    result = study.run(cfg)
    names = {c.name: c.holds for c in study.claims(result)}
    for key in ("depth2_decoupled", "diag_init_decoupled", "depth2_not_rank1", "depth3_rank1",
                "diag_init_full_rank"):
        assert names[key], key


def test_plasticity_observation_sets():
    cfg = study.Config()
    truth, omega1, omega2 = study._plasticity_problem(cfg, np.random.default_rng(0))
    blocks = cfg.block_of
    in_block = blocks[:, None] == blocks[None, :]
    assert not np.any(omega1 & ~in_block)  # pre-training sees only the diagonal blocks
    np.testing.assert_array_equal((omega2 & ~in_block).sum(axis=(1, 2)), cfg.n_off)
    assert np.all(omega2 >= omega1)
    np.testing.assert_allclose(np.sqrt(np.mean(truth**2, axis=(1, 2))), 1.0)
    np.testing.assert_allclose(np.linalg.matrix_rank(truth), 1)


@pytest.mark.parametrize(
    ("overrides", "err", "msg"),
    [
        ({"coupling_lr": -0.05}, ValueError, "coupling_lr == -0.05, must be > 0.0."),
        ({"depths": (1, 2), "rank_lrs": (0.1, 0.1)}, ValueError, "depths == 1, must be >= 2."),
        ({"rank_lrs": (0.1,)}, ValueError, "rank_lrs == (0.1,), must be a tuple with one"),
        ({"init": "diag"}, ValueError, "init == 'diag', must be one of"),
        ({"n_off": 1000}, ValueError, "n_off == 1000, must be <="),
        ({"p_obs": 0.0}, ValueError, "p_obs == 0.0, must be > 0.0."),
        ({"extra_pretrain_steps": (500, 5000)}, ValueError,
         "extra_pretrain_steps == 5000, must be < pretrain_steps == 5000."),
    ],
)
def test_config_validation(overrides, err, msg):
    with pytest.raises(err, match=msg.replace("(", r"\(").replace(")", r"\)")):
        study.Config(**overrides)


def test_load_config_unknown_key():
    with pytest.raises(ConfigError, match="unknown config key 'width_h'"):
        load_config(study.Config, {"width_h": 3})


def test_cli_smoke(tmp_path):
    toml = tmp_path / "tiny.toml"
    toml.write_text(TINY_TOML)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "rlhf_gbpm.experiments.cli", "study",
         "deep_matrix_factorization", "--config", str(toml), "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (out / "deep_matrix_factorization_headline.png").stat().st_size > 0
    assert "False" not in (out / "deep_matrix_factorization_claims.csv").read_text()
