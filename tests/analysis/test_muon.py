"""Tests for rlhf_gbpm.analysis.optimizers.muon (SpecGD, Muon, polar, Newton-Schulz)."""

import numpy as np
import pytest
import scipy.linalg
import torch

from rlhf_gbpm.analysis.optimizers import Muon, SpecGD
from rlhf_gbpm.analysis.optimizers.muon import newton_schulz, polar

F64 = torch.float64


def _randn(*shape, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=F64)


def test_polar_matches_scipy_polar_batched():
    g = _randn(3, 5, 4)
    out = polar(g)
    for i in range(3):
        ref, _ = scipy.linalg.polar(g[i].numpy())
        np.testing.assert_allclose(out[i].numpy(), ref, atol=1e-12)


def test_polar_rank_deficient_and_zero():
    u = _randn(6, 1, seed=1)
    v = _randn(1, 4, seed=2)
    g = u @ v  # rank one
    out = polar(g)
    expected = (u / u.norm()) @ (v / v.norm())
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=0)
    assert torch.all(polar(torch.zeros(3, 2, dtype=F64)) == 0)


def test_polar_smoothed_singular_values():
    g = _randn(5, 5, seed=3)
    beta = 0.3
    s = torch.linalg.svdvals(g)
    s_out = torch.linalg.svdvals(polar(g, beta=beta))
    torch.testing.assert_close(s_out, s / torch.sqrt(s**2 + beta), atol=1e-12, rtol=0)
    # beta -> 0 recovers the exact polar factor
    torch.testing.assert_close(polar(g, beta=1e-14), polar(g), atol=1e-6, rtol=0)


@pytest.mark.parametrize("shape", [(4, 7), (7, 4)])
def test_newton_schulz_keeps_singular_vectors(shape):
    g = _randn(*shape, seed=4)
    u, s, vh = torch.linalg.svd(g, full_matrices=False)
    out = newton_schulz(g)
    core = u.T @ out @ vh.T  # diagonal iff the singular vectors are kept
    off = core - torch.diag(torch.diagonal(core))
    assert off.abs().max() < 1e-10
    diag = torch.diagonal(core)
    # well-conditioned input: every singular value lands in Muon's band around 1
    assert s.max() / s.min() < 20
    assert torch.all(diag > 0.5) and torch.all(diag < 1.5)


def test_specgd_step_equals_polar_step():
    w0 = _randn(4, 3, seed=5)
    grad = _randn(4, 3, seed=6)
    w = torch.nn.Parameter(w0.clone())
    opt = SpecGD([w], lr=0.05)
    w.grad = grad.clone()
    opt.step()
    ref, _ = scipy.linalg.polar(grad.numpy())
    np.testing.assert_allclose(w.detach().numpy(), w0.numpy() - 0.05 * ref, atol=1e-12)


def test_muon_exact_without_momentum_equals_specgd():
    w0 = _randn(3, 5, seed=7)
    grads = [_randn(3, 5, seed=s) for s in (8, 9, 10)]
    a = torch.nn.Parameter(w0.clone())
    b = torch.nn.Parameter(w0.clone())
    opt_a = Muon([a], lr=0.1, momentum=0.0, exact=True)
    opt_b = SpecGD([b], lr=0.1)
    for g in grads:
        a.grad, b.grad = g.clone(), g.clone()
        opt_a.step()
        opt_b.step()
    torch.testing.assert_close(a.detach(), b.detach(), atol=1e-12, rtol=0)


def test_muon_nesterov_momentum_formula():
    beta, lr = 0.9, 0.01
    w0 = _randn(2, 3, seed=11)
    g1, g2 = _randn(2, 3, seed=12), _randn(2, 3, seed=13)
    w = torch.nn.Parameter(w0.clone())
    opt = Muon([w], lr=lr, momentum=beta, exact=True)
    w.grad = g1.clone()
    opt.step()
    w.grad = g2.clone()
    opt.step()
    m1 = (1 - beta) * g1
    m2 = beta * m1 + (1 - beta) * g2
    u1 = (1 - beta) * g1 + beta * m1
    u2 = (1 - beta) * g2 + beta * m2
    expected = w0 - lr * polar(u1) - lr * polar(u2)
    torch.testing.assert_close(w.detach(), expected, atol=1e-12, rtol=0)


def test_muon_shape_scale_and_weight_decay():
    g = _randn(8, 2, seed=14)
    w = torch.nn.Parameter(torch.ones(8, 2, dtype=F64))
    opt = Muon([w], lr=0.1, momentum=0.0, exact=True, shape_scale=True, weight_decay=0.5)
    w.grad = g.clone()
    opt.step()
    expected = 0.95 * torch.ones(8, 2, dtype=F64) - 0.1 * 2.0 * polar(g)
    torch.testing.assert_close(w.detach(), expected, atol=1e-12, rtol=0)


def test_specgd_solves_matrix_quadratic_on_a_model():
    # 0.5 ||W - M||^2 + bias: SpecGD moves every singular direction at speed lr
    target = _randn(5, 3, seed=15)
    model = torch.nn.Linear(3, 5, dtype=F64)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    opt = SpecGD(model.parameters(), lr=0.01, beta=1e-8)
    for _ in range(400):
        opt.zero_grad()
        loss = 0.5 * ((model.weight - target) ** 2).sum() + 0.5 * ((model.bias - 1.0) ** 2).sum()
        loss.backward()
        opt.step()
    # polar steps of spectral size lr end in an O(lr) neighbourhood
    assert torch.linalg.matrix_norm(model.weight - target, ord=2) < 0.02
    assert torch.linalg.vector_norm(model.bias - 1.0) < 0.02


@pytest.mark.parametrize(
    ("cls", "kwargs", "err", "msg"),
    [
        (SpecGD, {"lr": -1.0}, ValueError, "lr == -1.0, must be > 0.0."),
        (SpecGD, {"lr": 0.1, "beta": -0.1}, ValueError, "beta == -0.1, must be >= 0.0."),
        (Muon, {"lr": 0.1, "momentum": 1.0}, ValueError, "momentum == 1.0, must be < 1.0."),
        (Muon, {"lr": 0.1, "ns_steps": 0}, ValueError, "ns_steps == 0, must be >= 1."),
        (Muon, {"lr": 0.1, "nesterov": 1}, TypeError, "nesterov must be an instance of bool"),
        (Muon, {"lr": float("inf")}, ValueError, "lr == inf, must be < inf."),
        (SpecGD, {"lr": float("inf")}, ValueError, "lr == inf, must be < inf."),
        (SpecGD, {"lr": 0.1, "weight_decay": float("inf")}, ValueError,
         "weight_decay == inf, must be < inf."),
    ],
)
def test_hyperparameter_validation(cls, kwargs, err, msg):
    w = torch.nn.Parameter(torch.zeros(2, 2))
    with pytest.raises(err, match=msg.replace(".", r"\.")):
        cls([w], **kwargs)
