"""Tests for rlhf_gbpm.analysis.progressive_sharpening (minimalist-model sharpness dynamics)."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from rlhf_gbpm.analysis import load_config
from rlhf_gbpm.analysis import progressive_sharpening as study
from rlhf_gbpm.analysis._hessian import sharpness
from rlhf_gbpm.errors import ConfigError

TINY_TOML = """
[config]
sizes = [50, 100]
depths = [2, 3]
depth_lr = 0.15
depth_steps = 5000
batch_sizes = [5, 100]
sgd_steps = 5000
lr_sweep = [0.2, 0.4]
lr_sweep_time = 1000.0
conservation_steps = 300
sharpness_points = 30
"""


@pytest.fixture(scope="module")
def default_result():
    return study.run(study.Config())


def test_default_claims_hold(default_result):
    found = study.claims(default_result)
    failed = [c for c in found if not c.holds]
    assert not failed, failed
    assert len(found) == 9


def test_closed_form_hessian_matches_autograd():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 5))
    y = rng.choice([-1.0, 1.0], size=8)
    u = rng.standard_normal((1, 5))
    v = rng.standard_normal((1, 2)) + 1.0
    ours = study.closed_form_hessian(x, y, u, v)[0]
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)

    def loss(theta):
        r = (xt @ theta[:5]) * theta[5] * theta[6] - yt
        return 0.5 * torch.mean(r * r)

    ref = torch.autograd.functional.hessian(loss, torch.as_tensor(np.concatenate([u[0], v[0]])))
    np.testing.assert_allclose(ours, ref.numpy(), atol=1e-12)
    # and the HVP-based sharpness of the analysis module agrees with the closed form
    ut = torch.tensor(u[0], requires_grad=True)
    vt = torch.tensor(v[0], requires_grad=True)
    top = sharpness(lambda: 0.5 * torch.mean(((xt @ ut) * vt.prod() - yt) ** 2), [ut, vt],
                    method="lanczos")
    assert top == pytest.approx(np.linalg.eigvalsh(ours)[-1], rel=1e-8)


def test_simulate_lanczos_matches_exact_sharpness():
    cfg = study.Config(d=30, sizes=(10,), batch_sizes=(2,), lr_sweep_batch=2)
    data = study.make_data(cfg)
    kwargs = dict(n_samples=np.array([10, 10]), depth=np.array([2, 3]), lr=np.array([0.2, 0.1]),
                  steps=np.array([40, 40]), batch_size=np.array([0, 0]),
                  u0=np.full((2, 30), 0.1), v0=np.array([[1.0, 1.0], [0.8, 1.2]]),
                  sharpness_points=4)
    exact = study.simulate(data, **kwargs)
    lanczos = study.simulate(data, sharpness_method="lanczos", **kwargs)
    np.testing.assert_allclose(lanczos["sharpness"], exact["sharpness"], rtol=1e-7)
    # sharpness is the top eigenvalue of the full (not row-space reduced) Hessian
    full = study.closed_form_hessian(data.X, data.y, np.full((1, 30), 0.1),
                                     np.array([[1.0]]))
    assert exact["sharpness"][0, 0] == pytest.approx(np.linalg.eigvalsh(full)[0, -1], rel=1e-10)


def test_difficulty_is_min_norm_solution_norm(default_result):
    cfg = default_result.config
    size = default_result.sweeps["size"]
    data = study.make_data(cfg)  # the N sweep uses nested prefixes of one sample
    for i, n in enumerate(size.n_samples):
        w = np.linalg.lstsq(data.X[:n], data.y[:n], rcond=None)[0]
        assert size.Q[i] == pytest.approx(w @ w, rel=1e-8)


def test_one_gd_step_imbalance_increment():
    # F4: C_{t+1} - C_t = lr^2 (v^2 ||g||^2 - (u_bar^T g)^2) with g = X^T r / N (D = 2)
    cfg = study.Config(d=40, sizes=(20,), batch_sizes=(2,), lr_sweep_batch=2)
    data = study.make_data(cfg)
    rng = np.random.default_rng(3)
    u0 = rng.standard_normal((1, 40)) / np.sqrt(40)
    v0 = np.array([[1.3]])
    lr = 0.3
    out = study.simulate(data, n_samples=np.array([20]), depth=np.array([2]),
                         lr=np.array([lr]), steps=np.array([1]), batch_size=np.array([0]),
                         u0=u0, v0=v0, sharpness_points=1)
    r = data.X @ u0[0] * v0[0, 0] - data.y
    g = data.X.T @ r / 20
    proj = np.linalg.pinv(data.X) @ data.X  # projector on the row space
    u_bar = proj @ u0[0]
    expected = lr**2 * (v0[0, 0] ** 2 * g @ g - (u_bar @ g) ** 2)
    increment = out["imbalance"][0, -1] - out["imbalance"][0, 0]
    assert expected > 0
    assert increment == pytest.approx(expected, rel=1e-8)


def test_unbalanced_init_misses_depth_prediction():
    # contrast: the 1% agreement with sigma_1^2 Q^((D-1)/D)/N needs a balanced start
    cfg = study.Config(sharpness_points=10)
    data = study.make_data(cfg)
    sweep = study._sweep(cfg, data, "D", np.array([3, 4]), n_samples=100,
                         depth=np.array([3, 4]), lr=0.05, steps=8000, batch_size=0)
    rel = sweep.final_sharpness / sweep.predicted_sharpness - 1
    assert np.all(sweep.final_loss < 1e-8)
    assert np.all(rel > 0.01)
    assert sweep.final_sharpness[1] > sweep.final_sharpness[0]  # still monotone in depth


def test_contrasts_on_default_run(default_result):
    size = default_result.sweeps["size"]
    base = int(np.argmax(size.n_samples))
    # a GD run whose prediction is below 2/lr does not sit at the edge of stability
    assert size.final_sharpness[base] < 0.5 * 2 / size.lr[base]
    # GD at lr = 0.2 moves the imbalance more than the near-gradient-flow run allows
    assert abs(size.final_imbalance[base] - size.initial_imbalance[base]) > 1e-2
    # small-batch SGD raises the imbalance C well above its start (F4)
    batch = default_result.sweeps["batch"]
    smallest = int(np.argmin(batch.batch_size))
    assert batch.final_imbalance[smallest] > batch.initial_imbalance[smallest] + 10


@pytest.mark.parametrize(
    ("overrides", "err", "msg"),
    [
        ({"lr": -0.1}, ValueError, "lr == -0.1, must be > 0.0."),
        ({"depths": (1, 2)}, ValueError, "depths == 1, must be >= 2."),
        ({"batch_sizes": (2, 500)}, ValueError, "batch sizes must be <= max"),
        ({"data": "cifar"}, ValueError, "data == 'cifar', must be one of"),
        ({"eos_runs": ((2, 1.0, 3),)}, TypeError, "eos_runs must be a tuple of"),
        ({"sizes": ()}, TypeError, "sizes must be a non-empty tuple"),
    ],
)
def test_config_validation(overrides, err, msg):
    with pytest.raises(err, match=msg):
        study.Config(**overrides)


def test_load_config_rejects_bad_value():
    with pytest.raises(ConfigError, match="sharpness_method == 'svd'"):
        load_config(study.Config, {"sharpness_method": "svd"})


def test_cli_smoke(tmp_path):
    toml = tmp_path / "tiny.toml"
    toml.write_text(TINY_TOML)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "rlhf_gbpm.experiments.cli", "study", "progressive_sharpening",
         "--config", str(toml), "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (out / "progressive_sharpening_headline.png").stat().st_size > 0
    assert (out / "progressive_sharpening_eos.png").stat().st_size > 0
    assert "False" not in (out / "progressive_sharpening_claims.csv").read_text()
