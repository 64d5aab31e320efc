"""The network of Vu et al. 2021 over cached frozen embeddings.

The paper fine-tunes a CNN per frame and adds a GRU over a sequence of CNN features. With a
feature cache the CNN is frozen, so the trainable part is: a frame-level stage (dense blocks
over each frame's cached embedding) -> optionally a bidirectional GRU over the window -> two
heads: 7 expression logits and 2 x n_bins valence/arousal bin logits, read out as the softmax
expectation over the bin centres (`VABins`).

Input windows end at the labelled frame (index -1). Positions without a face, or padding before
the start of a short item (a still image is a window of one real frame), are masked: their
features are zeroed and the mask is given to the GRU as one more input channel.

`Vu2021NetConfig` (with the window and stride of the data the net reads) is stored whole in
checkpoints and is all that is needed to rebuild the network.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from emokd.train.recipes.vu2021.bins import VABins


@dataclass(frozen=True)
class Vu2021NetConfig:
    face_dim: int                          # D_face of the cache's image embeddings
    window: int                            # frames in the image-embedding window
    stride: int                            # frames between window positions
    hidden: tuple[int, ...] = (512, 256)   # frame-level dense blocks
    dropout: float = 0.3
    temporal: bool = True                  # bidirectional GRU over the window (the paper's CNN+GRU)
    gru_hidden: int = 128
    n_expr: int = 7
    va_bins: int = 20


class Vu2021Net(nn.Module):
    Config = Vu2021NetConfig

    def __init__(self, config: Vu2021NetConfig):
        super().__init__()
        self.config = config
        self.bins = VABins(config.va_bins)
        layers: list[nn.Module] = []
        width = config.face_dim
        for size in config.hidden:
            layers += [nn.Linear(width, size), nn.LayerNorm(size), nn.ReLU(), nn.Dropout(config.dropout)]
            width = size
        self.frame_stage = nn.Sequential(*layers)
        if config.temporal:
            self.gru = nn.GRU(width + 1, config.gru_hidden, batch_first=True, bidirectional=True)
            width = 2 * config.gru_hidden
        else:
            self.gru = None
        self.feature_dim = width
        self.expr_head = nn.Linear(width, config.n_expr)
        self.va_head = nn.Linear(width, 2 * config.va_bins)

    def features(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, L, D) window ending at the labelled frame, mask (B, L) bool -> (B, feature_dim)."""
        if x.dim() == 2:
            x = x[:, None, :]
        if mask is None:
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        m = mask.to(x.dtype)[..., None]
        h = self.frame_stage(x * m) * m
        if self.gru is None:
            return h[:, -1]
        _, last = self.gru(torch.cat([h, m], dim=-1))   # (2, B, H): final state of each direction
        return torch.cat([last[0], last[1]], dim=-1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        f = self.features(x, mask)
        va_logits = self.va_head(f).view(-1, 2, self.config.va_bins)
        return {"expr": self.expr_head(f), "va_logits": va_logits, "va": self.bins.expectation(va_logits)}
