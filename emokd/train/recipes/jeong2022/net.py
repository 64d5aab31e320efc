"""The trainable multitask network of DESIGN §6 (Jeong et al. 2022).

image-embedding window (B, T, D_face) -> LSTM -> last hidden state, concatenated with the frame's
audio embedding (B, D_audio) -> extractor dense blocks -> shared feature, read by
  * task heads: VA (2, tanh), EXPR (8 logits), AU (12 logits; sigmoid lives in the loss),
  * GRL -> task discriminator -> 3 logits (which task a batch came from: VA, EXPR, AU).
Every width is a constructor argument, so tests build tiny nets and the dims come from the cache.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from emokd.models.layers import GradientReversal, dense_stack


class MultitaskNet(nn.Module):
    def __init__(self, face_dim: int, audio_dim: int, *, n_expr: int = 8, n_au: int = 12,
                 n_tasks: int = 3, lstm_hidden: int = 512, extractor: Sequence[int] = (1024, 512),
                 heads: Sequence[int] = (256, 128), discriminator: Sequence[int] = (64, 32),
                 dropout: float = 0.5, grl_coefficient: float = 1.0):
        super().__init__()
        self.lstm = nn.LSTM(face_dim, lstm_hidden, batch_first=True)
        self.extractor, feature_dim = dense_stack(lstm_hidden + audio_dim, extractor, dropout)
        self.feature_dim = feature_dim
        self.va_head = self._head(feature_dim, heads, dropout, 2)
        self.expr_head = self._head(feature_dim, heads, dropout, n_expr)
        self.au_head = self._head(feature_dim, heads, dropout, n_au)
        self.grl = GradientReversal(grl_coefficient)
        self.discriminator = self._head(feature_dim, discriminator, dropout, n_tasks)

    @staticmethod
    def _head(n_in: int, widths: Sequence[int], dropout: float, n_out: int) -> nn.Sequential:
        stack, width = dense_stack(n_in, widths, dropout)
        return nn.Sequential(*stack, nn.Linear(width, n_out))

    def features(self, face: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(face)
        return self.extractor(torch.cat([hidden[-1], audio], dim=1))

    def forward(self, face: torch.Tensor, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        feature = self.features(face, audio)
        return {
            "va": torch.tanh(self.va_head(feature)),
            "expr": self.expr_head(feature),
            "au": self.au_head(feature),
            "task": self.discriminator(self.grl(feature)),
            "feature": feature,
        }
