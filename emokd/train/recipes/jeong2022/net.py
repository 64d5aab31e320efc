"""The trainable multitask network of Jeong et al. 2022 (docs/training.md).

image-embedding window (B, T, D_face) -> LSTM -> last hidden state, concatenated with the frame's
audio embedding (B, D_audio) -> extractor dense blocks -> shared feature, read by
  * task heads: VA (2, tanh), EXPR (8 logits), AU (12 logits; sigmoid lives in the loss),
  * GRL -> task discriminator -> 3 logits (which task a batch came from: VA, EXPR, AU).
Every width is a field of `Jeong2022NetConfig`, so tests build tiny nets and the dims come from the
cache; the config (with the window and stride of the data the net reads) is stored whole in
checkpoints and is all that is needed to rebuild the network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from emokd.constants import N_AU, N_EXPR, TASKS
from emokd.models.layers import GradientReversal, dense_stack


@dataclass(frozen=True)
class Jeong2022NetConfig:
    face_dim: int                      # D_face of the cache's image embeddings
    audio_dim: int                     # D_audio of its audio embeddings
    window: int                        # frames in the image-embedding window
    stride: int                        # frames between window positions
    lstm_hidden: int = 512
    extractor: tuple[int, ...] = (1024, 512)
    heads: tuple[int, ...] = (256, 128)
    discriminator: tuple[int, ...] = (64, 32)
    dropout: float = 0.5               # extractor and discriminator blocks
    head_dropout: float = 0.0          # task heads (the official code has none)
    grl_coefficient: float = 1.0
    n_expr: int = N_EXPR
    n_au: int = N_AU
    n_tasks: int = len(TASKS)          # classes of the task discriminator


class MultitaskNet(nn.Module):
    Config = Jeong2022NetConfig

    def __init__(self, config: Jeong2022NetConfig):
        super().__init__()
        self.config = c = config
        self.lstm = nn.LSTM(c.face_dim, c.lstm_hidden, batch_first=True)
        self.extractor, feature_dim = dense_stack(c.lstm_hidden + c.audio_dim, c.extractor, c.dropout)
        self.feature_dim = feature_dim
        self.va_head = self._head(feature_dim, c.heads, c.head_dropout, 2)
        self.expr_head = self._head(feature_dim, c.heads, c.head_dropout, c.n_expr)
        self.au_head = self._head(feature_dim, c.heads, c.head_dropout, c.n_au)
        self.grl = GradientReversal(c.grl_coefficient)
        self.discriminator = self._head(feature_dim, c.discriminator, c.dropout, c.n_tasks)

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
