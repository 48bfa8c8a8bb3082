"""Tests for rlhf_gbpm.analysis._hessian (sharpness by dense, Lanczos and power methods)."""

import numpy as np
import pytest
import torch

from rlhf_gbpm.analysis._hessian import (
    dense_hessian,
    hessian_vector_product,
    sharpness,
    top_hessian_eigenvalues,
)

F64 = torch.float64


def _tiny_mlp(seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(20, 3, generator=gen, dtype=F64)
    y = torch.randn(20, 1, generator=gen, dtype=F64)
    w1 = (0.8 * torch.randn(4, 3, generator=gen, dtype=F64)).requires_grad_()
    w2 = (0.8 * torch.randn(1, 4, generator=gen, dtype=F64)).requires_grad_()

    def loss_of(a, b):
        return 0.5 * ((torch.tanh(x @ a.T) @ b.T - y) ** 2).mean()

    return (w1, w2), loss_of


def _autograd_hessian(params, loss_of):
    shapes = [p.shape for p in params]
    sizes = [p.numel() for p in params]
    flat = torch.cat([p.detach().reshape(-1) for p in params])

    def f(v):
        parts = torch.split(v, sizes)
        return loss_of(*[t.reshape(s) for t, s in zip(parts, shapes)])

    return torch.autograd.functional.hessian(f, flat)


def test_dense_hessian_matches_autograd_functional_hessian():
    params, loss_of = _tiny_mlp()
    ref = _autograd_hessian(params, loss_of)
    ours = dense_hessian(lambda: loss_of(*params), params)
    torch.testing.assert_close(ours, ref, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("method", ["exact", "lanczos", "power"])
def test_sharpness_methods_match_dense_reference(method):
    params, loss_of = _tiny_mlp(seed=1)
    ref = np.linalg.eigvalsh(_autograd_hessian(params, loss_of).numpy())
    got = sharpness(lambda: loss_of(*params), params, method=method)
    # power iteration finds the largest |eigenvalue|; at this point it is the top one
    assert ref[-1] > abs(ref[0])
    assert got == pytest.approx(ref[-1], rel=1e-6)


def test_top_k_lanczos_matches_dense():
    params, loss_of = _tiny_mlp(seed=2)
    ref = np.linalg.eigvalsh(_autograd_hessian(params, loss_of).numpy())[::-1][:3]
    got = top_hessian_eigenvalues(lambda: loss_of(*params), params, 3, method="lanczos")
    np.testing.assert_allclose(got, ref, rtol=1e-8)


def test_hvp_of_quadratic_is_matrix_product():
    gen = torch.Generator().manual_seed(3)
    a = torch.randn(6, 6, generator=gen, dtype=F64)
    h = a @ a.T
    w = torch.randn(6, generator=gen, dtype=F64, requires_grad=True)
    hvp = hessian_vector_product(lambda: 0.5 * w @ h @ w, [w])
    v = torch.randn(6, generator=gen, dtype=F64)
    torch.testing.assert_close(hvp(v), h @ v)
    assert sharpness(lambda: 0.5 * w @ h @ w, [w], method="exact") == pytest.approx(
        float(torch.linalg.eigvalsh(h)[-1]), rel=1e-12)


def test_bad_arguments():
    params, loss_of = _tiny_mlp()
    with pytest.raises(ValueError, match="method == 'qr', must be one of"):
        sharpness(lambda: loss_of(*params), params, method="qr")
    with pytest.raises(ValueError, match="k == 0, must be >= 1."):
        top_hessian_eigenvalues(lambda: loss_of(*params), params, 0)
    with pytest.raises(ValueError, match="k == 2, must be 1 for method 'power'."):
        top_hessian_eigenvalues(lambda: loss_of(*params), params, 2, method="power")
