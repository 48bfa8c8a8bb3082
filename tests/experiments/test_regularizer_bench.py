"""Tests for rlhf_gbpm.experiments.regularizer_bench."""

import math
import textwrap

import numpy as np
import pytest

from rlhf_gbpm.errors import ConfigError, NotStronglyConvexError
from rlhf_gbpm.experiments import regularizer_bench as rb

TINY = dict(etas=(0.5, 4.0), d=4, K=6, num_instances=8, seeds=2, horizon=40)


def test_tiny_benchmark_table_bounds_and_files(tmp_path):
    cfg = rb.BenchConfig(regularizers=("kl", "chi2_half"), **TINY)
    report = rb.benchmark_regularizers(cfg, out_dir=tmp_path)
    t = report.table
    assert len(t) == 4 and not t.isna().any().any()
    # SNE accuracy certificate
    assert (t["sne_max_dual_gap"] <= 1e-9).all() and (t["sne_converged"] == 1.0).all()
    # bypass factor (spec gbpm.md section 4, appendix test 6): KL <= e^eta, 1/2 chi2 <= 1 + eta
    for _, row in t.iterrows():
        bound = math.exp(row["eta"]) if row["regularizer"] == "kl" else 1.0 + row["eta"]
        assert 1.0 <= row["max_density_ratio"] <= bound
    # strong convexity bracket and regret recorded for both agents
    for _, row in report.beta.iterrows():
        assert row["beta_lower"] <= row["beta"] * (1 + 1e-6)
        assert row["beta"] <= row["beta_upper"] * (1 + 1e-6)
    assert (t["gs_regret"] >= 0).all() and (t["etc_regret"] >= 0).all()
    # more regularization (smaller eta) means smaller regret (the regret scales with eta)
    for reg in ("kl", "chi2_half"):
        sub = t[t["regularizer"] == reg].sort_values("eta")
        assert sub["gs_regret"].iloc[0] < sub["gs_regret"].iloc[1]
    from rlhf_gbpm import regularizers as registry

    assert not any(name.startswith("bench__") for name in registry._REGISTRY)  # no leak
    names = {p.name for p in report.files}
    assert {"bench_regularizers.md", "bench_regularizers.csv", "bench_beta.png",
            "bench_gs_regret.pdf", "bench_max_density_ratio.png"} <= names
    assert "| kl |" in (tmp_path / "bench_regularizers.md").read_text()


def test_user_file_regularizer_and_rejection_before_runs(tmp_path, monkeypatch):
    user = tmp_path / "my_reg.py"
    user.write_text(textwrap.dedent("""
        import torch
        from rlhf_gbpm.custom_regularizers import TorchRegularizer

        def tsallis_third():
            q = 1 / 3
            return TorchRegularizer(fn=lambda p: (torch.sum(p ** q) - 1) / (q - 1),
                                    label="tsallis_third")

        def linear():
            return TorchRegularizer(fn=lambda p: torch.sum(p * torch.arange(6.0)),
                                    label="linear")
    """))
    label, reg = rb.load_regularizer(f"{user}:tsallis_third")
    assert label == "tsallis_third"
    # a non-strongly-convex psi is rejected before any experiment runs
    calls = []
    monkeypatch.setattr(rb, "_regret", lambda *a, **k: calls.append(a))
    with pytest.raises(NotStronglyConvexError, match="'linear'"):
        rb.benchmark_regularizers(rb.BenchConfig(regularizers=(f"{user}:linear",), **TINY))
    assert calls == []
    with pytest.raises(ConfigError, match="does not exist"):
        rb.load_regularizer("nowhere.py:f")
    with pytest.raises(ConfigError, match="cannot load regularizer"):
        rb.load_regularizer("rlhf_gbpm.regularizers:no_such_factory")
    with pytest.raises(ConfigError, match="every eta must be a finite number > 0"):
        rb.BenchConfig(etas=(0.0,))


def test_user_regularizer_density_ratio_matches_builtin_route():
    # the same psi through the torch route and the closed form give the same SNE metrics
    import torch

    from rlhf_gbpm.custom_regularizers import TorchRegularizer

    A = np.stack([rb_instance(s) for s in range(3)])
    builtin = rb._sne_metrics(rb.get_regularizer("tsallis_half"), A, 3.0)
    user = rb._sne_metrics(TorchRegularizer(fn=lambda p: 2 * (1 - torch.sum(torch.sqrt(p)))),
                           A, 3.0)
    assert user["max_density_ratio"] == pytest.approx(builtin["max_density_ratio"], rel=1e-8)


def rb_instance(seed):
    from rlhf_gbpm.instances import random_instance

    return random_instance(d=4, K=6, seed=seed).payoff()


def test_cli_smoke(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "bad.py"
    bad.write_text("import torch\nfrom rlhf_gbpm.custom_regularizers import TorchRegularizer\n"
                   "flat = TorchRegularizer(fn=lambda p: torch.sum(p) * 0.0, label='flat')\n")
    cmd = [sys.executable, "-m", "rlhf_gbpm.experiments.cli", "bench-regularizers"]
    proc = subprocess.run(cmd + [f"{bad}:flat", "--K", "4"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2
    assert "NotStronglyConvexError" in proc.stderr and "'flat'" in proc.stderr
    proc = subprocess.run(cmd + ["--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "bench-regularizers" in proc.stdout
    proc = subprocess.run(cmd + ["kl", "--eta", "1", "--seeds", "2", "--horizon", "30", "--K", "5",
                                 "--d", "3", "--instances", "4", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "| kl | 1 |" in proc.stdout
    assert (tmp_path / "o" / "bench_regularizers.md").is_file()


def test_docs_worked_example_loads_and_matches_the_builtin_tsallis():
    """docs/examples/tsallis_third.py (the docs' worked example) is Tsallis-q at q = 1/3."""
    from pathlib import Path

    import rlhf_gbpm as rg
    from rlhf_gbpm.strong_convexity import check_regularizer

    example = Path(__file__).resolve().parents[2] / "docs" / "examples" / "tsallis_third.py"
    label, reg = rb.load_regularizer(f"{example}:TsallisThird")
    assert label == "tsallis_third"
    A = np.stack([rg.random_instance(d=5, K=8, rank=1, S=5.0, seed=s).payoff()
                  for s in range(2)])
    etas = np.array([0.1, 10.0])[:, None]
    ours = rg.solve_sne(A, reg, etas)
    ref = rg.solve_sne(A, rg.get_regularizer("tsallis", q=1 / 3), etas)
    assert np.all(ours.success)
    assert np.all(np.abs(ours.policy - ref.policy).sum(-1) <= 1e-6)
    # beta = 1/q = 3 (Cauchy-Schwarz, as for the built-in Tsallis-q)
    assert check_regularizer(reg, 8).beta_upper == pytest.approx(3.0, rel=1e-6)
