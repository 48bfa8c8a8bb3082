"""Tests for rlhf_gbpm.analysis.spectral_lora (SpecGD/Muon vs GD/Adam on LoRA-style MF)."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from rlhf_gbpm.analysis import load_config
from rlhf_gbpm.analysis import spectral_lora as study
from rlhf_gbpm.errors import ConfigError

TINY_TOML = """
[config]
m = 20
n = 24
target_singular_values = [1.0, 2.0, 4.0]
lora_rank = 3
extra_rank = 5
steps = 400
lr_gd = 0.05
lr_adam = 0.01
equal_rate_steps = [50, 100]
"""


@pytest.fixture(scope="module")
def default_result():
    return study.run(study.Config())


def test_default_claims_hold(default_result):
    found = study.claims(default_result)
    failed = [c for c in found if not c.holds]
    assert not failed, failed
    assert len(found) == 12


def test_ordering_contrasts_fail_for_the_wrong_optimizer(default_result):
    runs = default_result.runs
    y = default_result.targets
    # GD and Adam are not smallest-first; SpecGD and Muon are not largest-first
    for name in ("gd", "adam"):
        assert not study._strictly(runs[name].hit_step[::-1], increasing=True)
    for name in ("specgd", "muon"):
        assert not study._strictly(runs[name].hit_step[::-1], increasing=False)
    # GD does not grow the active modes at equal rate
    spreads = [study._equal_rate_spread(runs["gd"], y, s) for s in (50, 100, 150)]
    assert max(spreads) > 0.02
    # SGD's LoRA spectrum is not flat either
    reg = default_result.regression
    assert reg["muon"].flatness[20] >= 3 * reg["sgd"].flatness[20]


def test_specgd_hits_follow_sqrt_law_and_ends_balanced(default_result):
    cfg = default_result.config
    y = default_result.targets
    run = default_result.runs["specgd_converge"]
    # time to reach 95% of y_i under unit-speed growth of both factors: sqrt(0.95 y_i) / lr
    np.testing.assert_allclose(run.hit_step[:3], np.sqrt(0.95 * y[:3]) / cfg.lr_spectral,
                               rtol=0.02)
    # balanced end state: sigma(A) = sigma(B) = sqrt(y)
    np.testing.assert_allclose(run.sv_a, np.sqrt(y), rtol=5e-3)
    np.testing.assert_allclose(run.sv_b, np.sqrt(y), rtol=5e-3)


def test_l2_minimum_is_soft_threshold_of_svd(default_result):
    # independent reference: SVD soft-thresholding of Y computed here
    cfg = default_result.config
    target, _, _ = study.make_target(cfg)
    s = np.linalg.svd(target.numpy(), compute_uv=False)[: cfg.lora_rank]
    expected = np.maximum(s - cfg.l2_reg, 0)
    got = default_result.runs["specgd_l2"].sv_product[-1]
    np.testing.assert_allclose(got, expected, atol=1e-2)


def test_l2_converges_from_random_order_one_init():
    # P4: the regularized flow reaches the soft-thresholded target from any initialization
    cfg = study.Config(init="gaussian", init_scale=0.3, steps=2000)
    run = study.train_factorization(cfg, "specgd", lr=0.01, beta=1e-4, decay_at=0.5, l2_reg=0.5)
    assert run.sv_product[0, -1] > 3  # starts far from the target spectrum
    np.testing.assert_allclose(run.sv_product[-1], cfg.targets - 0.5, atol=1e-2)


def test_muon_shape_scaling_breaks_balance(default_result):
    # default Muon ends balanced, sigma(A) ~ sigma(B); the reference shape factor
    # sqrt(m/k) = sqrt(12) gives the tall factor A a larger step and unbalances the end state
    plain = default_result.runs["muon"]
    np.testing.assert_allclose(plain.sv_a / plain.sv_b, 1.0, atol=0.25)
    cfg = study.Config(muon_shape_scale=True)
    scaled = study.train_factorization(cfg, "muon", lr=cfg.lr_spectral)
    assert np.all(scaled.sv_a / scaled.sv_b > 2.5)


def test_make_target_spectrum():
    cfg = study.Config(m=7, n=9, target_singular_values=(3.0, 1.0), lora_rank=2, extra_rank=3)
    target, u, v = study.make_target(cfg)
    np.testing.assert_allclose(torch.linalg.svdvals(target)[:3].numpy(), [3, 1, 0], atol=1e-12)
    torch.testing.assert_close(u.T @ u, torch.eye(2, dtype=torch.float64))


@pytest.mark.parametrize(
    ("overrides", "err", "msg"),
    [
        ({"lr_spectral": -0.01}, ValueError, "lr_spectral == -0.01, must be > 0.0."),
        ({"lora_rank": 3}, ValueError, "lora_rank == 3, must be >= 5"),
        ({"target_singular_values": (1.0, 1.0)}, ValueError, "must be distinct"),
        ({"target_singular_values": (1.0, -2.0)}, ValueError, "must be a non-empty tuple"),
        ({"steps": 1.5}, TypeError, "steps must be an instance of Integral"),
        ({"equal_rate_steps": (50, 5000)}, ValueError, "must lie in"),
        ({"equal_rate_steps": ()}, TypeError, "must be a non-empty tuple of ints"),
        ({"equal_rate_steps": (50.5, 100)}, TypeError, "must be a non-empty tuple of ints"),
        ({"equal_rate_steps": (True, 100)}, TypeError, "must be a non-empty tuple of ints"),
        ({"target_singular_values": (True, 2.0)}, ValueError, "must be a non-empty tuple"),
        ({"target_singular_values": (float("nan"), 2.0)}, ValueError, "must be a non-empty"),
        ({"target_singular_values": (float("inf"), 2.0)}, ValueError, "must be finite"),
        ({"lr_gd": float("inf")}, ValueError, "lr_gd == inf, must be finite."),
        ({"init": "zeros"}, ValueError, "init == 'zeros', must be one of"),
        ({"muon_shape_scale": 1}, TypeError, "muon_shape_scale must be an instance of bool"),
    ],
)
def test_config_validation(overrides, err, msg):
    with pytest.raises(err, match=msg):
        study.Config(**overrides)


def test_load_config_names_unknown_key():
    with pytest.raises(ConfigError, match="unknown config key 'depth'"):
        load_config(study.Config, {"depth": 2})


def test_cli_smoke(tmp_path):
    toml = tmp_path / "tiny.toml"
    toml.write_text(TINY_TOML)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "rlhf_gbpm.experiments.cli", "study", "spectral_lora",
         "--config", str(toml), "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (out / "spectral_lora_headline.png").stat().st_size > 0
    table = (out / "spectral_lora_claims.csv").read_text()
    assert "specgd_smallest_first" in table and "False" not in table
