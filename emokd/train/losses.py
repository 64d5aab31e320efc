"""Supervision loss terms shared by the recipes (docs/training.md), each masked to the samples
that carry the label: VA 1 - CCC (mean over valence and arousal), EXPR cross entropy, AU binary
cross entropy (on logits).

A term with no usable sample returns a zero that keeps the graph (so `backward` still works).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-8


def _zero(like: torch.Tensor) -> torch.Tensor:
    return like.sum() * 0.0


def ccc_torch(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CCC per column of (B, K) tensors, population statistics -> (K,)."""
    mp, mt = pred.mean(0), target.mean(0)
    cov = ((pred - mp) * (target - mt)).mean(0)
    denom = pred.var(0, unbiased=False) + target.var(0, unbiased=False) + (mp - mt) ** 2
    return 2 * cov / (denom + EPS)


def va_ccc_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """1 - mean(CCC_valence, CCC_arousal) over the masked rows (needs 2 rows at least)."""
    if mask is not None:
        pred, target = pred[mask], target[mask]
    if pred.shape[0] < 2:
        return _zero(pred)
    return 1.0 - ccc_torch(pred, target).mean()


def expr_ce_loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    if mask is not None:
        logits, target = logits[mask], target[mask]
    if logits.shape[0] == 0:
        return _zero(logits)
    return F.cross_entropy(logits, target.long())


def au_bce_loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    if mask is not None:
        logits, target = logits[mask], target[mask]
    if logits.shape[0] == 0:
        return _zero(logits)
    return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype))


