"""Losses of the vu2021 recipe (Vu et al. 2021; docs/vu2021.md).

- Expressions: cross entropy over 7 classes.
- Valence/arousal, per dimension: cross entropy over 20 bins + (1 - CCC) of the softmax
  expectation over the bin centres; the mean over the two dimensions.
- Distillation: KL(softmax(teacher / T) || softmax(student / T)) * T^2, T = 1.5, on the
  expression logits and on each dimension's bin logits.
- Mixing per sample: where the ground-truth label exists, gt_weight * GT + kd_weight * KD
  (0.6 / 0.4); where it is missing, KD alone. Without a teacher (the teacher's own training),
  only labelled samples contribute. CCC is a statistic of the whole batch, so its term is
  computed over the labelled samples and weighted by gt_weight times their share of the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from emokd.train.recipes.vu2021.bins import VABins
from emokd.train.losses import ccc_torch


@dataclass
class Vu2021LossConfig:
    temperature: float = 1.5
    gt_weight: float = 0.6     # where a label exists (student only)
    kd_weight: float = 0.4
    ccc_weight: float = 1.0    # weight of (1 - CCC) against the bin cross entropy


def kd_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-sample KL(softmax(teacher/T) || softmax(student/T)) * T^2 over the last axis."""
    log_p_teacher = F.log_softmax(teacher_logits / temperature, dim=-1)
    log_p_student = F.log_softmax(student_logits / temperature, dim=-1)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=-1)
    return kl * temperature**2


def _mix(gt: torch.Tensor, kd: torch.Tensor | None, labelled: torch.Tensor, cfg: Vu2021LossConfig) -> torch.Tensor:
    """Per-sample mixing of ground truth and distillation, averaged over contributing samples."""
    if kd is None:
        n = labelled.sum()
        return (gt * labelled).sum() / n if n > 0 else gt.sum() * 0.0
    per_sample = torch.where(labelled, cfg.gt_weight * gt + cfg.kd_weight * kd, kd)
    return per_sample.mean()


def expr_loss(logits: torch.Tensor, target: torch.Tensor, teacher_logits: torch.Tensor | None,
              cfg: Vu2021LossConfig) -> torch.Tensor:
    """logits (B, C); target (B,) long, -1 (or any value outside 0..C-1) = missing."""
    labelled = (target >= 0) & (target < logits.shape[-1])
    gt = F.cross_entropy(logits, torch.where(labelled, target, 0), reduction="none")
    kd = None if teacher_logits is None else kd_kl(logits, teacher_logits, cfg.temperature)
    return _mix(gt, kd, labelled, cfg)


def va_loss(va_logits: torch.Tensor, target: torch.Tensor, teacher_va_logits: torch.Tensor | None,
            cfg: Vu2021LossConfig, bins: VABins) -> torch.Tensor:
    """va_logits (B, 2, n_bins); target (B, 2) float, NaN = missing. Mean over the 2 dimensions."""
    total = va_logits.new_zeros(())
    expectation = bins.expectation(va_logits)
    for d in range(2):
        labelled = ~torch.isnan(target[:, d])
        target_bin = bins.bin_of_tensor(target[:, d]).clamp(min=0)
        gt = F.cross_entropy(va_logits[:, d], target_bin, reduction="none")
        kd = None if teacher_va_logits is None else kd_kl(va_logits[:, d], teacher_va_logits[:, d], cfg.temperature)
        total = total + _mix(gt, kd, labelled, cfg)
        n = int(labelled.sum())
        if n >= 2:
            share = 1.0 if teacher_va_logits is None else cfg.gt_weight * n / len(labelled)
            va_ccc = ccc_torch(expectation[labelled, d, None], target[labelled, d, None])[0]
            total = total + cfg.ccc_weight * share * (1 - va_ccc)
    return total / 2
