"""Tests for rlhf_gbpm.analysis._losses (log-domain losses, numpy and torch)."""

import numpy as np
import pytest
import torch

from rlhf_gbpm.analysis._losses import (
    check_loss,
    log_neg_dloss,
    loss_value,
    loss_weights,
    neg_dloss,
)

M = np.array([-800.0, -30.0, -1.0, 0.0, 0.5, 30.0, 800.0])


@pytest.mark.parametrize("loss", ["logistic", "exponential"])
def test_derivative_matches_finite_differences(loss):
    m = np.linspace(-5, 5, 11)
    h = 1e-6
    fd = -(loss_value(m + h, loss) - loss_value(m - h, loss)) / (2 * h)
    np.testing.assert_allclose(neg_dloss(m, loss), fd, rtol=1e-7)
    t = torch.tensor(m, requires_grad=True)
    loss_value(t, loss).sum().backward()
    np.testing.assert_allclose(-t.grad.numpy(), neg_dloss(m, loss), rtol=1e-12)


def test_logistic_is_stable_at_extreme_margins():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        val = loss_value(M, "logistic")
        logd = log_neg_dloss(M, "logistic")
    assert np.all(np.isfinite(val)) and np.all(np.isfinite(logd))
    np.testing.assert_allclose(val[0], 800.0)  # log(1 + e^800) = 800 + tiny
    np.testing.assert_allclose(logd[-1], -800.0)  # log sigmoid(-800)
    np.testing.assert_allclose(val[3], np.log(2.0))
    tv = loss_value(torch.tensor(M), "logistic").numpy()
    np.testing.assert_allclose(tv, val, rtol=1e-12)


@pytest.mark.parametrize("loss", ["logistic", "exponential"])
def test_weights_keep_direction_when_derivatives_underflow(loss):
    m = np.array([[1000.0, 1001.0, 1003.0], [1.0, 2.0, 4.0]])
    p = loss_weights(m, loss)
    np.testing.assert_allclose(p.sum(-1), 1.0)
    # far in the tail both losses weigh samples by e^{-m}: ratios exp(-1), exp(-3)
    np.testing.assert_allclose(p[0] / p[0, 0], np.exp([0.0, -1.0, -3.0]), rtol=1e-9)
    np.testing.assert_allclose(loss_weights(torch.tensor(m), loss).numpy(), p, rtol=1e-12)
    small = neg_dloss(m[1], loss)
    np.testing.assert_allclose(p[1], small / small.sum(), rtol=1e-12)
    masked = loss_weights(m, loss, log_mask=np.array([0.0, -np.inf, 0.0]))
    assert np.all(masked[:, 1] == 0) and np.allclose(masked.sum(-1), 1.0)


def test_check_loss():
    assert check_loss("exponential") == "exponential"
    with pytest.raises(ValueError, match=r"loss == 'hinge', must be one of"):
        check_loss("hinge")
    with pytest.raises(TypeError, match="loss must be an instance of str, not int."):
        check_loss(3)
