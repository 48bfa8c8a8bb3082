"""Tests for the continual_classification study: forgetting against a direct loop, the
references, and the spec's calibrated predictions on cheap configs."""

import subprocess
import sys

import numpy as np
import pytest
from scipy.special import expit

from rlhf_gbpm.analysis import continual_classification as cc
from rlhf_gbpm.analysis import load_config
from rlhf_gbpm.analysis._maxmargin import cosine
from rlhf_gbpm.errors import ConfigError

PAIRS = ("contradicting_2d", "aligned_2d", "split_contradicting", "split_aligned")


@pytest.fixture(scope="module")
def pairs():
    return cc.run(cc.Config(presets=PAIRS, J=1000, smm_cycles=50))


@pytest.fixture(scope="module")
def three():
    return cc.run(cc.Config(presets=("three_task_3d",), J=10_000))


@pytest.fixture(scope="module")
def nonsep():
    return cc.run(cc.Config(presets=("nonseparable",), J=1000, nonsep_horizons=(100, 1000)))


def _claims(result):
    return {c.name: c for c in cc.claims(result)}


def _direct_cf(tasks, eta, K, cycles):
    """Unbatched sequential GD with the forgetting computed from its definition."""
    def task_loss(Z, w):
        return np.logaddexp(0, -(Z @ w)).sum()

    w = np.zeros(tasks[0].shape[1])
    M = len(tasks)
    out = []
    for _ in range(cycles):
        after = []
        for Z in tasks:
            for _ in range(K):
                w = w + eta * expit(-(Z @ w)) @ Z
            after.append(task_loss(Z, w))
        out.append(sum(task_loss(tasks[m], w) - after[m] for m in range(M - 1)) / M)
    return np.array(out), w


def test_forgetting_matches_direct_loop():
    cfg = cc.Config(presets=("split_aligned", "three_task_3d"), J=3, n_log=3, K=4, eta=0.3,
                    random_order=False, smm_cycles=0)
    res = cc.run(cfg)
    for name in ("split_aligned", "three_task_3d"):
        r = res.instances[name]
        cf, w = _direct_cf(cc.preset_tasks(name), 0.3, 4, 3)
        np.testing.assert_array_equal(r.cycles, [1, 2, 3])
        np.testing.assert_allclose(r.cf, cf, rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(r.w[-1], w, rtol=1e-12, atol=1e-15)


def test_before_last_task_reference_vanishes_for_two_tasks():
    # with M = 2 the state before the last task is the state right after task 1
    res = cc.run(cc.Config(presets=("split_aligned",), J=20, cf_reference="before_last_task",
                           smm_cycles=0))
    assert np.all(res.instances["split_aligned"].cf == 0)


def test_references_and_alignment():
    tasks = cc.preset_tasks("contradicting_2d")
    assert cc.alignment(tasks) == (0.0, -6.0)
    assert cc.alignment(cc.preset_tasks("split_aligned")) == (16.0, -8.0)
    # SMM projections end on a feasible point of every task, but off the max-margin direction
    tasks3 = cc.preset_tasks("three_task_3d")
    w = cc.smm(tasks3, 200)
    assert np.all(np.vstack(tasks3) @ w >= 1 - 1e-6)
    res = cc.run(cc.Config(presets=("nonseparable",), J=2, nonsep_horizons=(2,), smm_cycles=0))
    r = res.instances["nonseparable/J=2"]
    Z = np.vstack(r.tasks)
    assert not r.separable
    np.testing.assert_allclose(expit(-(Z @ r.w_star)) @ Z, 0.0, atol=1e-8)  # grad L(w*) = 0


def test_two_task_claims(pairs):
    claims = _claims(pairs)
    assert {"joint_max_margin_direction_2d", "norm_grows_like_log",
            "forgetting_sign_follows_alignment", "forgetting_decays_like_1_over_J2"} <= set(claims)
    failed = [c for c in claims.values() if not c.holds]
    assert not failed, failed


def test_same_joint_data_opposite_forgetting(pairs):
    # both splits hold the same four points (same joint max-margin), forgetting has opposite sign
    a, b = pairs.instances["split_contradicting"], pairs.instances["split_aligned"]
    np.testing.assert_allclose(a.w_hat, b.w_hat)
    assert np.all(a.cf[a.cycles >= 10] > 0) and np.all(b.cf[b.cycles >= 10] < 0)
    # the iterate is not pulled toward a task's own max-margin direction
    c = pairs.instances["contradicting_2d"]
    np.testing.assert_allclose(c.cos_individual[-1], 1 / np.sqrt(5), atol=1e-3)


def test_three_task_direction_and_smm_contrast(three):
    claims = _claims(three)
    for name in ("joint_max_margin_direction_3d", "random_order_direction", "norm_grows_like_log",
                 "joint_loss_rate"):
        assert claims[name].holds, claims[name]
    r = three.instances["three_task_3d"]
    assert r.cos_joint[-1] - three.smm_cos["three_task_3d"] > 0.05
    # GD is not heading for any single task's max-margin direction
    assert np.all(r.cos_individual[-1] < r.cos_joint[-1])
    assert cosine(r.w[-1], r.w_hat) == pytest.approx(r.cos_joint[-1])


def test_nonseparable_claims(nonsep):
    claims = _claims(nonsep)
    assert claims["nonseparable_fixed_step_plateau"].holds, claims
    assert claims["nonseparable_schedule_converges"].holds, claims
    # a fixed step stalls: its error no longer falls between J = 100 and J = 1000
    r = nonsep.instances["nonseparable/eta=0.05"]
    assert r.dist_to_wstar[r.at(1000)] > 0.5 * r.dist_to_wstar[r.at(100)]


@pytest.mark.parametrize(
    ("kwargs", "err", "msg"),
    [
        ({"K": 0}, ValueError, "K == 0, must be >= 1."),
        ({"eta": -0.5}, ValueError, "eta == -0.5, must be > 0.0."),
        ({"presets": ("mnist",)}, ValueError, "presets entry 'mnist' must be one of"),
        ({"cf_reference": "start"}, ValueError, "cf_reference == 'start', must be one of"),
        ({"nonsep_horizons": (1,)}, ValueError, "nonsep_horizons == 1, must be >= 2."),
        ({"random_order": "yes"}, TypeError, "random_order must be an instance of bool"),
    ],
)
def test_config_validation(kwargs, err, msg):
    with pytest.raises(err, match=msg):
        cc.Config(**kwargs)


def test_load_config_errors():
    with pytest.raises(ConfigError, match="unknown config key 'cycles'"):
        load_config(cc.Config, {"cycles": 10})


def test_cli_smoke(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text('presets = ["contradicting_2d", "aligned_2d"]\nJ = 1000\nsmm_cycles = 20\n')
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "rlhf_gbpm.experiments.cli", "study", "continual_classification",
         "--config", str(cfg), "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (out / "continual_classification_headline.png").is_file()
    assert "| forgetting_sign_follows_alignment |" in proc.stdout
