"""Loss terms of jeong2022 beyond supervision (docs/training.md).

Distillation against a fixed teacher: VA 1 - CCC(student, teacher); EXPR and AU on
temperature-softened outputs with the *teacher* as the target and the *student* as the prediction
(the reference code passed them the other way round, which trains the target instead of the
prediction and gives a different value). Task classification: cross entropy of the discriminator.
Supervision terms are in `emokd.train.losses`.

A term with no usable sample returns a zero that keeps the graph (so `backward` still works).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from emokd.train.losses import va_ccc_loss

EPS = 1e-8


def _zero(like: torch.Tensor) -> torch.Tensor:
    return like.sum() * 0.0


def distill_va_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """1 - CCC(student, teacher): the teacher's VA predictions are the target."""
    return va_ccc_loss(student, teacher.detach())


def distill_expr_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      temperature: float) -> torch.Tensor:
    """Cross entropy H(p_teacher, p_student), p = softmax(logits / T): -sum_c p_t,c log p_s,c."""
    if student_logits.shape[0] == 0:
        return _zero(student_logits)
    target = F.softmax(teacher_logits.detach() / temperature, dim=1)
    log_pred = F.log_softmax(student_logits / temperature, dim=1)
    return -(target * log_pred).sum(1).mean()


def distill_au_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                    temperature: float) -> torch.Tensor:
    """BCE with sigmoid(teacher / T) as target and sigmoid(student / T) as prediction, mean over units."""
    if student_logits.shape[0] == 0:
        return _zero(student_logits)
    target = torch.sigmoid(teacher_logits.detach() / temperature)
    return F.binary_cross_entropy_with_logits(student_logits / temperature, target)


def task_ce_loss(task_logits: torch.Tensor, task_id: int) -> torch.Tensor:
    """Cross entropy of the discriminator; every sample of the batch comes from task `task_id`."""
    target = torch.full((task_logits.shape[0],), task_id, dtype=torch.long, device=task_logits.device)
    return F.cross_entropy(task_logits, target)
