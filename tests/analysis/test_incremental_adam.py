"""Tests for the incremental_adam study: exactness of the rescaled updates, the fixed point,
and the spec's calibrated predictions on cheap configs."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from rlhf_gbpm.analysis import incremental_adam as ia
from rlhf_gbpm.analysis import load_config
from rlhf_gbpm.analysis._maxmargin import cosine, max_margin
from rlhf_gbpm.errors import ConfigError

GAUSS = ia.Config(datasets=("gaussian",), steps=4000, batch_sizes=(1, 5))
GR = ia.Config(datasets=("gr",), batch_sizes=(1, 5))


@pytest.fixture(scope="module")
def gauss():
    return ia.run(GAUSS)


@pytest.fixture(scope="module")
def gr():
    return ia.run(GR)


def _claims(result):
    return {c.name: c for c in ia.claims(result)}


def test_rescaled_updates_equal_plain_float64_updates():
    """Dividing gradients by a per-run scale (and rescaling the buffers) changes nothing."""
    Z = ia.gaussian_dataset(6, 4, seed=3)
    cfg = ia.Config(datasets=("gaussian",), n=6, d=4, steps=150, record_every=150,
                    lr0_gaussian=0.05, batch_sizes=(1,))
    specs = [ia.RunSpec("adam", "cyclic", 1), ia.RunSpec("signum", "cyclic", 1),
             ia.RunSpec("proxy", "full", 6)]
    _, W = ia._simulate(Z, specs, cfg, 0.05, np.random.default_rng(0))
    Zt = torch.tensor(Z)
    wa = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    ws = torch.zeros(4, dtype=torch.float64)
    adam = torch.optim.Adam([wa], lr=0.05, betas=(0.9, 0.999), eps=0.0)
    mom = torch.zeros(4, dtype=torch.float64)
    wp = torch.zeros(4, dtype=torch.float64)
    for t in range(150):
        lr = 0.05 * (t + 2) ** -0.5
        i = t % 6
        adam.zero_grad()
        torch.nn.functional.softplus(-(Zt[i] @ wa)).backward()
        adam.param_groups[0]["lr"] = lr
        adam.step()
        with torch.no_grad():
            g = -torch.sigmoid(-(Zt[i] @ ws)) * Zt[i]
            mom = 0.99 * mom + 0.01 * g
            ws -= lr * torch.sign(mom)
            per_sample = -torch.sigmoid(-(Zt @ wp))[:, None] * Zt  # (n, d)
            # AdamProxy with the summed loss: grad L / sqrt(sum_i grad L_i^2)
            wp -= lr * per_sample.sum(0) / torch.sqrt((per_sample**2).sum(0))
    np.testing.assert_allclose(W[-1, 0], wa.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(W[-1, 1], ws.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(W[-1, 2], wp.numpy(), rtol=1e-10, atol=1e-12)


def test_batch_masks():
    specs = [ia.RunSpec("adam", "cyclic", 1), ia.RunSpec("adam", "shuffle", 2),
             ia.RunSpec("adam", "replace", 1), ia.RunSpec("adam", "full", 4)]
    m = ia._batch_masks(specs, 4, 8, np.random.default_rng(0))
    np.testing.assert_array_equal(m[:, 0].argmax(1), [0, 1, 2, 3, 0, 1, 2, 3])
    assert np.all(m[:, 1].sum(1) == 2) and np.all(m[:, 2].sum(1) == 1) and m[:, 3].all()
    for epoch in range(4):  # reshuffled b=2: each epoch of two steps covers every sample once
        np.testing.assert_array_equal(m[2 * epoch:2 * epoch + 2, 1].sum(0), 1)


def test_fixed_point_is_self_consistent():
    Z = ia.gaussian_dataset(10, 50, seed=1)
    fp = ia.adam_proxy_fixed_point(Z)
    assert fp.converged and np.all(fp.c >= 0) and fp.c.sum() == pytest.approx(1.0)
    metric = np.sqrt((fp.c[:, None] ** 2 * Z**2).sum(0))
    res = max_margin(Z, "mahalanobis", metric=metric)
    np.testing.assert_allclose(res.dual / res.dual.sum(), fp.c, atol=1e-8)
    assert cosine(fp.w, max_margin(Z).w) < 0.99  # a third direction, neither l2 ...
    assert cosine(fp.w, max_margin(Z, "linf").w) < 0.95  # ... nor l-infinity
    # GR data: equal-magnitude coordinates make M(c) a multiple of I, so the fixed point is l2
    gr = ia.gr_dataset()
    assert cosine(ia.adam_proxy_fixed_point(gr).w, max_margin(gr).w) > 1 - 1e-12


def test_gaussian_claims_hold(gauss):
    claims = _claims(gauss)
    assert set(claims) == {"fixed_point_distinct", "inc_adam_to_fixed_point",
                           "adam_proxy_to_fixed_point", "det_adam_more_linf",
                           "signum_linf_per_sample", "batch_size_monotone"}
    failed = [c for c in claims.values() if not c.holds]
    assert not failed, failed


def test_gaussian_contrasts(gauss):
    g = gauss.datasets["gaussian"]
    det, inc = g.index("adam/full/b10"), g.index("adam/cyclic/b1")
    # full-batch Adam fails the per-sample prediction, per-sample Adam fails the l-inf one
    assert g.cos_fp[-1, det] < 0.9
    assert g.linf_ratio[-1, inc] < 0.7 < g.linf_ratio[-1, det]
    # Signum stays l-inf-biased in the full batch too, unlike Adam per sample
    assert g.linf_ratio[-1, g.index("signum/full/b10")] > 0.93


def test_gr_claims_hold(gr):
    claims = _claims(gr)
    assert set(claims) == {"gr_fixed_point_is_l2", "gr_inc_adam_to_l2",
                           "gr_det_adam_to_linf", "gr_signum_linf"}
    failed = [c for c in claims.values() if not c.holds]
    assert not failed, failed
    r = gr.datasets["gr"]
    # contrast: on the same data the per-sample runs are far from l-inf, Det-Adam is not l2
    assert r.linf_ratio[-1, r.index("adam/cyclic/b1")] < 0.85
    assert r.cos_l2[-1, r.index("adam/full/b8")] < 0.95


@pytest.mark.parametrize(
    ("kwargs", "err", "msg"),
    [
        ({"steps": 0}, ValueError, "steps == 0, must be >= 1."),
        ({"lr0_gaussian": -0.1}, ValueError, "lr0_gaussian == -0.1, must be > 0.0."),
        ({"beta1": 0.99, "beta2": 0.9}, ValueError, "beta1 == 0.99, must be <= beta2 == 0.9."),
        ({"beta2": 1.0}, ValueError, "beta2 == 1.0, must be < 1.0."),
        ({"datasets": ("mnist",)}, ValueError, "datasets entry 'mnist' must be one of"),
        ({"batch_sizes": (1, 20)}, ValueError, "batch_sizes entry 20 must be <= n == 10."),
        ({"loss": "hinge"}, ValueError, "loss == 'hinge', must be one of"),
    ],
)
def test_config_validation(kwargs, err, msg):
    with pytest.raises(err, match=msg.replace("(", r"\(").replace(")", r"\)")):
        ia.Config(**kwargs)


def test_load_config_errors():
    with pytest.raises(ConfigError, match="unknown config key 'lr0'"):
        load_config(ia.Config, {"lr0": 0.1})


def test_cli_smoke(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text('datasets = ["gaussian"]\nsteps = 4000\nbatch_sizes = [1, 5]\n')
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "rlhf_gbpm.experiments.cli", "study", "incremental_adam",
         "--config", str(cfg), "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (out / "incremental_adam_headline.png").is_file()
    assert "| inc_adam_to_fixed_point |" in proc.stdout
