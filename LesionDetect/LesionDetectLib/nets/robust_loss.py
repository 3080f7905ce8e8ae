"""Barron's general and adaptive robust loss (CVPR 2019), the SSD box-regression loss."""

import math

import torch
from torch import Tensor


def robust_loss(error: Tensor, alpha: float = 1.12, beta: float = 0.05) -> Tensor:
    """Elementwise rho(e, alpha, beta) = |alpha-2|/alpha * (((e/beta)^2/|alpha-2| + 1)^(alpha/2) - 1).

    alpha is the shape (2: L2, 1: pseudo-Huber, 0: Cauchy, -2: Geman-McClure, -inf: Welsch), beta the scale
    of the quadratic bowl around e = 0. alpha = 2, 0 and -inf use their limits; elsewhere the power is taken as
    expm1(alpha/2 * log1p(.)), which stays accurate (values and gradients) for alpha close to 0 or 2, at e = 0
    and for large |e|. Defaults: METHODS.md A's alpha = 1.12, beta = 0.05.
    """
    if math.isnan(alpha) or alpha == math.inf:
        raise ValueError(f"alpha must be finite or -inf, got {alpha}")
    squared = (error / beta) ** 2
    if alpha == 2:
        return 0.5 * squared
    if alpha == 0:
        return torch.log1p(0.5 * squared)
    if alpha == -math.inf:
        return -torch.expm1(-0.5 * squared)
    shift = abs(alpha - 2)
    return shift / alpha * torch.expm1(0.5 * alpha * torch.log1p(squared / shift))
