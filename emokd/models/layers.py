"""Layers shared by the recipes' networks.

Dense block: Linear -> BatchNorm -> swish -> Dropout, the unit of extractors, heads and
discriminators. Gradient reversal (Ganin & Lempitsky 2015): identity forward, gradient times
-lambda backward; used between the shared feature and the task discriminator, so that the extractor is pushed to
make features from which the task of a batch cannot be told apart.
"""

from __future__ import annotations

from collections.abc import Sequence

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


def dense_block(n_in: int, n_out: int, dropout: float) -> nn.Sequential:
    """Linear -> BatchNorm -> swish -> Dropout."""
    return nn.Sequential(nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out), nn.SiLU(), nn.Dropout(dropout))


def dense_stack(n_in: int, widths: Sequence[int], dropout: float) -> tuple[nn.Sequential, int]:
    """Dense blocks of the given widths, one after another; returns (stack, output width)."""
    layers = []
    for width in widths:
        layers.append(dense_block(n_in, width, dropout))
        n_in = width
    return nn.Sequential(*layers), n_in
