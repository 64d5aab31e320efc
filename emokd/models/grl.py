"""Gradient reversal layer (Ganin & Lempitsky 2015): identity forward, gradient times -lambda backward.

Used between the shared feature and the task discriminator, so that the extractor is pushed to
make features from which the task of a batch cannot be told apart.
"""

from __future__ import annotations

import torch
from torch import nn


class _ReverseGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, coefficient: float) -> torch.Tensor:
        ctx.coefficient = coefficient
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return -ctx.coefficient * grad_output, None


def reverse_gradient(x: torch.Tensor, coefficient: float = 1.0) -> torch.Tensor:
    """Identity on `x`; the gradient flowing back through it is multiplied by -coefficient."""
    return _ReverseGrad.apply(x, float(coefficient))


class GradientReversal(nn.Module):
    def __init__(self, coefficient: float = 1.0):
        super().__init__()
        self.coefficient = float(coefficient)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return reverse_gradient(x, self.coefficient)

    def extra_repr(self) -> str:
        return f"coefficient={self.coefficient}"
