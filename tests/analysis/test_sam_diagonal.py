"""Tests for the sam_diagonal study: the spec's calibrated predictions on cheap configs."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from rlhf_gbpm.analysis import load_config
from rlhf_gbpm.analysis import sam_diagonal as sd
from rlhf_gbpm.errors import ConfigError

CHEAP = sd.Config(
    sweep_ratios=(0.30, 0.36, 0.38, 0.40, 0.45, 0.6),
    usam_alphas=(0.018, 0.1),
    linf_alphas=(0.03, 0.08),
    n_random_inits=6,
    depth1_steps=1500,
    depth1_lr=0.02,
)


@pytest.fixture(scope="module")
def result():
    return sd.run(CHEAP)


@pytest.fixture(scope="module")
def claim_map(result):
    return {c.name: c for c in sd.claims(result)}


def _sweep_run(result, algo, ratio):
    (i,) = [i for i in result.select(algo, "sweep")
            if np.isclose(result.runs[i].alpha, ratio * result.config.rho)]
    return i


def test_all_claims_hold_on_cheap_config(claim_map):
    expected = {
        "depth1_l2_max_margin", "gd_l1_max_margin", "linf_sam_uniform_init",
        "linf_sam_reaches_minor_basis_vector", "linf_sam_limit_map",
        "l2_sam_sequential_amplification", "gd_no_sequential_amplification",
        "l2_sam_init_dependence", "usam_no_init_dependence", "gd_no_init_dependence",
    }
    assert set(claim_map) == expected
    failed = [c for c in claim_map.values() if not c.holds]
    assert not failed, failed


def test_l2_sam_sequence_and_gd_contrast(result):
    seq = [c for c, _ in result.sequence(_sweep_run(result, "l2sam", 0.38))]
    assert seq[0] <= 2 and seq[-1] == 5 and np.all(np.diff(seq) > 0)
    # GD and USAM from the same init: the major coordinate leads from the start
    assert [c for c, _ in result.sequence(_sweep_run(result, "gd", 0.38))] == [5]
    assert result.first_dominant(_sweep_run(result, "usam", 0.38)) == 5
    # the first dominant coordinate of l2-SAM moves up with alpha / rho; 0.30 collapses
    firsts = [result.first_dominant(_sweep_run(result, "l2sam", r))
              for r in (0.36, 0.38, 0.40, 0.45)]
    assert firsts == sorted(firsts) and firsts[0] < firsts[-1] == 5
    assert result.collapsed[_sweep_run(result, "l2sam", 0.30)]
    assert result.limit[_sweep_run(result, "l2sam", 0.6)] == 5


def test_sequential_claim_fails_for_the_wrong_setting(result):
    # at alpha / rho = 0.6 (GD-like regime) the sequential-amplification claim must fail
    moved = dataclasses.replace(result, config=dataclasses.replace(CHEAP, headline_ratio=0.6))
    claim = {c.name: c for c in sd.claims(moved)}["l2_sam_sequential_amplification"]
    assert not claim.holds and claim.observed.startswith("5@")


def test_linf_sam_init_rule(result):
    i03, i08 = result.select("linfsam", "linf_uniform")
    assert result.norm[-1, i03] < 1e-4 and result.loss[-1, i03] > 0.69
    assert result.share[-1, i08, 4] > 0.99
    (custom,) = result.select("linfsam", "linf_custom")
    assert result.share[-1, custom, 2] > 0.99  # e_3 from a(0) = (0.03, 0.07, 0.06, 0.04, 0.02)
    (gd_custom,) = result.select("gd", "linf_custom")
    assert result.limit[gd_custom] == 5
    for i in result.select("linfsam", "linf_random"):
        a0 = result.runs[i].init
        alive = np.flatnonzero(a0 > CHEAP.rho)
        assert result.limit[i] == (alive.max() + 1 if alive.size else 0)


def test_gd_reaches_l1_max_margin(result):
    for i in result.select("gd", "extra"):
        assert result.share[-1, i, 4] > 0.99


def test_depth1_single_example_gives_x_direction():
    x = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]])
    _, beta, _ = sd._simulate(x, np.zeros((3, 5)), ["gd", "l2sam", "linfsam"], depth=1,
                              rho=0.05, lr=1e-2, steps=100, loss="logistic", rescale=True,
                              log_every=50)
    cos = beta[-1] @ x[0] / (np.linalg.norm(beta[-1], axis=1) * np.linalg.norm(x))
    assert np.all(cos > 0.999)


@pytest.mark.parametrize(
    ("kwargs", "err", "msg"),
    [
        ({"depth": 0}, ValueError, "depth == 0, must be >= 1."),
        ({"lr": -1.0}, ValueError, "lr == -1.0, must be > 0.0."),
        ({"rho": 0.0}, ValueError, "rho == 0.0, must be > 0.0."),
        ({"x": (1.0, -2.0)}, ValueError, "x == -2.0, must be > 0.0."),
        ({"linf_init": (0.1, 0.2)}, ValueError, "linf_init must have len(x) == 5 entries"),
        ({"loss": "hinge"}, ValueError, "loss == 'hinge', must be one of"),
        ({"rescale": 1}, TypeError, "rescale must be an instance of bool, not int."),
        ({"steps": 1.5}, TypeError, "steps must be an instance of Integral, not float."),
    ],
)
def test_config_validation(kwargs, err, msg):
    with pytest.raises(err, match=msg.replace("(", r"\(").replace(")", r"\)")):
        sd.Config(**kwargs)


def test_load_config_names_the_bad_key():
    with pytest.raises(ConfigError, match="unknown config key 'depht'"):
        load_config(sd.Config, {"depht": 2})
    with pytest.raises(ConfigError, match="depth == 0, must be >= 1."):
        load_config(sd.Config, {"depth": 0})


def test_cli_smoke(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(
        "lr = 4e-3\nsteps = 3000\nsweep_ratios = [0.6]\n"
        "gd_alphas = [0.1]\nusam_alphas = []\nlinf_alphas = [0.08]\nlinf_init = []\n"
        "n_random_inits = 0\ndepth1_steps = 1000\ndepth1_lr = 0.1\n"
    )
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "rlhf_gbpm.experiments.cli", "study", "sam_diagonal",
         "--config", str(cfg), "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (out / "sam_diagonal_headline.png").is_file()
    assert "| gd_l1_max_margin |" in (out / "sam_diagonal_claims.md").read_text()
