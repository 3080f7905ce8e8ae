"""The general robust loss (Barron 2019): closed forms, limits near alpha = 0 and 2, stability, gradients."""

import math

import pytest
import torch

from LesionDetectLib.nets.robust_loss import robust_loss

BETA = 0.05
ERRORS = torch.linspace(-0.5, 0.5, 101, dtype=torch.float64)


def scaled_square(error):
    return (error / BETA) ** 2


CLOSED_FORMS = {
    2.0: lambda q: 0.5 * q,
    0.0: lambda q: torch.log(0.5 * q + 1),
    -math.inf: lambda q: 1 - torch.exp(-0.5 * q),
    1.0: lambda q: torch.sqrt(q + 1) - 1,
    -2.0: lambda q: 2 * q / (q + 4),
}


@pytest.mark.parametrize("alpha", list(CLOSED_FORMS))
def test_equals_closed_form(alpha):
    expected = CLOSED_FORMS[alpha](scaled_square(ERRORS))
    torch.testing.assert_close(robust_loss(ERRORS, alpha, BETA), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("alpha", "limit"), [(1e-6, 0.0), (-1e-6, 0.0), (2 - 1e-6, 2.0), (2 + 1e-6, 2.0)])
def test_approaches_limit(alpha, limit):
    expected = CLOSED_FORMS[limit](scaled_square(ERRORS))
    torch.testing.assert_close(robust_loss(ERRORS, alpha, BETA), expected, rtol=1e-4, atol=1e-8)


def test_paper_setting_is_default_and_between_l1_and_l2():
    error = torch.tensor([0.0, 0.01, 1.0])
    loss = robust_loss(error)
    assert loss[0] == 0
    assert loss[1].item() == pytest.approx(0.5 * (0.01 / BETA) ** 2, rel=0.02)  # quadratic bowl
    assert 20 < loss[2] < 0.5 * (1 / BETA) ** 2  # grows slower than L2 for |e| >> beta


@pytest.mark.parametrize("alpha", [1.12, 2.0, 0.0, -2.0, -math.inf, 1e-7, 2 - 1e-7])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_values_and_gradients(alpha, dtype):
    error = torch.tensor([0.0, 1e-8, -1e-8, 1e4, -1e4], dtype=dtype, requires_grad=True)
    loss = robust_loss(error, alpha, BETA)
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(error.grad).all()
    assert loss[0] == 0 and error.grad[0] == 0


@pytest.mark.parametrize("alpha", [1.12, 2.0, 0.0, -2.0, -math.inf, 1e-7, 2 - 1e-7])
def test_gradcheck(alpha):
    error = torch.tensor([0.0, 1e-3, -0.02, 0.05, 0.3, -2.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda e: robust_loss(e, alpha, BETA), (error,))


def test_rejects_nan_and_plus_infinity():
    for alpha in (math.nan, math.inf):
        with pytest.raises(ValueError):
            robust_loss(ERRORS, alpha)
