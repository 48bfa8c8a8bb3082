"""Tests for the SAM and Signum optimizers against hand-written update rules."""

import copy

import pytest
import torch

from rlhf_gbpm.analysis.optimizers import SAM, Signum


def _t(values):
    return torch.tensor(values, dtype=torch.float64)


A = _t([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 3.0]])
B = _t([1.0, -2.0, 0.5])


def _grad(w):
    """Gradient of the quadratic 0.5 w^T A w - b^T w (batched over leading axes)."""
    return w @ A - B


def _closure(opt, *params):
    def closure():
        opt.zero_grad()
        w = torch.stack(params) if len(params) > 1 else params[0]
        loss = (0.5 * (w @ A * w).sum(-1) - (w * B).sum(-1)).sum()
        loss.backward()
        return loss

    return closure


@pytest.mark.parametrize("norm", ["l2", "linf", "none"])
def test_sam_sgd_matches_manual_rule(norm):
    rho, lr = 0.3, 0.1
    w = torch.nn.Parameter(_t([0.5, 1.5, -1.0]))
    ref = w.detach().clone()
    opt = SAM([w], torch.optim.SGD, rho=rho, norm=norm, lr=lr)
    for _ in range(5):
        g = _grad(ref)
        e = {"l2": rho * g / g.norm(), "linf": rho * torch.sign(g), "none": rho * g}[norm]
        ref = ref - lr * _grad(ref + e)
        opt.step(_closure(opt, w))
    torch.testing.assert_close(w.detach(), ref, rtol=1e-12, atol=1e-12)


def test_sam_with_adam_base_equals_adam_on_perturbed_gradient():
    w = torch.nn.Parameter(_t([0.5, 1.5, -1.0]))
    v = torch.nn.Parameter(w.detach().clone())
    sam = SAM([w], torch.optim.Adam, rho=0.2, lr=0.05, betas=(0.8, 0.9))
    adam = torch.optim.Adam([v], lr=0.05, betas=(0.8, 0.9))
    for _ in range(4):
        with torch.no_grad():
            g = _grad(v)
            v.grad = _grad(v + 0.2 * g / g.norm())
        adam.step()
        sam.step(_closure(sam, w))
    torch.testing.assert_close(w.detach(), v.detach(), rtol=1e-12, atol=1e-12)
    assert sam.state[w]["step"] == 4  # the base optimizer's state lives in the shared dict
    # a reloaded SAM continues exactly like the original
    u = torch.nn.Parameter(w.detach().clone())
    again = SAM([u], torch.optim.Adam, rho=0.2, lr=0.05, betas=(0.8, 0.9))
    again.load_state_dict(copy.deepcopy(sam.state_dict()))
    sam.step(_closure(sam, w))
    again.step(_closure(again, u))
    torch.testing.assert_close(w.detach(), u.detach(), rtol=1e-12, atol=1e-12)


def test_sam_batch_dims_equals_separate_runs():
    starts = _t([[0.5, 1.5, -1.0], [3.0, -2.0, 0.1]])
    w = torch.nn.Parameter(starts.clone())
    opt = SAM([w], torch.optim.SGD, rho=0.4, batch_dims=1, lr=0.1)
    for _ in range(3):
        opt.step(_closure(opt, w))
    for row in range(2):
        u = torch.nn.Parameter(starts[row].clone())
        single = SAM([u], torch.optim.SGD, rho=0.4, lr=0.1)
        for _ in range(3):
            single.step(_closure(single, u))
        torch.testing.assert_close(w.detach()[row], u.detach(), rtol=1e-12, atol=1e-12)


def test_sam_per_group_settings_and_zero_gradient():
    w = torch.nn.Parameter(_t([0.5, 1.5, -1.0]))
    u = torch.nn.Parameter(_t([0.5, 1.5, -1.0]))
    opt = SAM([{"params": [w], "rho": 0.0}, {"params": [u], "norm": "linf"}],
              torch.optim.SGD, rho=0.3, lr=0.1)
    opt.step(_closure(opt, w, u))
    start = _t([0.5, 1.5, -1.0])
    g = _grad(start)
    torch.testing.assert_close(w.detach(), start - 0.1 * g)  # rho = 0: plain SGD
    torch.testing.assert_close(u.detach(), start - 0.1 * _grad(start + 0.3 * torch.sign(g)))
    # a zero gradient gives a zero l2 perturbation, not nan
    z = torch.nn.Parameter(torch.linalg.solve(A, B))
    opt2 = SAM([z], torch.optim.SGD, rho=0.3, lr=0.1)
    opt2.step(_closure(opt2, z))
    assert torch.isfinite(z).all()


def test_sam_validation():
    w = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"rho == -0.1, must be >= 0.0."):
        SAM([w], torch.optim.SGD, rho=-0.1, lr=0.1)
    with pytest.raises(ValueError, match=r"norm == 'l1', must be one of"):
        SAM([w], torch.optim.SGD, norm="l1", lr=0.1)
    with pytest.raises(ValueError, match=r"rho == inf, must be < inf."):
        SAM([w], torch.optim.SGD, rho=float("inf"), lr=0.1)
    with pytest.raises(TypeError, match="base_optimizer must be a torch.optim.Optimizer"):
        SAM([w], "sgd", lr=0.1)
    with pytest.raises(ValueError, match="needs a closure"):
        SAM([w], torch.optim.SGD, lr=0.1).step()


def test_signum_matches_manual_rule():
    w = torch.nn.Parameter(_t([0.5, 1.5, -1.0]))
    opt = Signum([w], lr=0.01, momentum=0.9, weight_decay=0.1)
    ref, m = w.detach().clone(), torch.zeros(3, dtype=torch.float64)
    for _ in range(6):
        g = _grad(ref)
        m = 0.9 * m + 0.1 * g
        ref = ref * (1 - 0.01 * 0.1) - 0.01 * torch.sign(m)
        loss = opt.step(_closure(opt, w))
        assert torch.isfinite(loss)
    torch.testing.assert_close(w.detach(), ref, rtol=1e-12, atol=1e-12)


def test_signsgd_is_momentum_zero():
    w = torch.nn.Parameter(_t([0.5, 1.5, -1.0]))
    opt = Signum([w], lr=0.1, momentum=0.0)
    start = w.detach().clone()
    opt.step(_closure(opt, w))
    torch.testing.assert_close(w.detach(), start - 0.1 * torch.sign(_grad(start)))
    assert len(opt.state) == 0  # no buffer kept for signSGD


def test_signum_validation():
    w = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"lr == -1.0, must be > 0.0."):
        Signum([w], lr=-1.0)
    with pytest.raises(ValueError, match=r"momentum == 1.0, must be < 1.0."):
        Signum([w], lr=0.1, momentum=1.0)
    with pytest.raises(TypeError, match="momentum must be an instance of Real, not str."):
        Signum([w], lr=0.1, momentum="0.9")
    with pytest.raises(ValueError, match=r"lr == inf, must be < inf."):
        Signum([w], lr=float("inf"))
    with pytest.raises(ValueError, match=r"weight_decay == inf, must be < inf."):
        Signum([w], lr=0.1, weight_decay=float("inf"))
