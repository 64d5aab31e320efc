"""Valence/arousal as classes: 20 equal bins per dimension over [-1, 1] (Vu et al. 2021).

The released code of the paper used 21 bin edges but 20 expectation points that did not sit
inside their bins, so the expectation of a one-hot bin fell into a neighbouring bin. Here one
object owns both: the expectation points are the bin centres, so `bin_of(centres) == arange`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class VABins:
    """Equal-width bins on [low, high]; values outside are clipped into the end bins."""

    n_bins: int = 20
    low: float = -1.0
    high: float = 1.0

    @property
    def width(self) -> float:
        return (self.high - self.low) / self.n_bins

    @property
    def edges(self) -> np.ndarray:
        """(n_bins + 1,) edges; bin b is [edges[b], edges[b+1]) (the last one closed)."""
        return np.linspace(self.low, self.high, self.n_bins + 1)

    @property
    def centres(self) -> np.ndarray:
        """(n_bins,) expectation points: the midpoint of each bin."""
        edges = self.edges
        return (edges[:-1] + edges[1:]) / 2.0

    def bin_of(self, values: np.ndarray) -> np.ndarray:
        """Bin index (int64) of each value; NaN (missing) gives -1."""
        values = np.asarray(values, dtype=np.float64)
        index = np.floor((values - self.low) / self.width)
        index = np.clip(index, 0, self.n_bins - 1)
        return np.where(np.isnan(values), -1, index).astype(np.int64)

    def bin_of_tensor(self, values: torch.Tensor) -> torch.Tensor:
        """Torch twin of `bin_of`: long tensor, -1 where the value is NaN."""
        index = torch.floor((values - self.low) / self.width).clamp(0, self.n_bins - 1)
        index = torch.nan_to_num(index, nan=-1.0)
        return index.long()

    def expectation(self, logits: torch.Tensor) -> torch.Tensor:
        """Softmax expectation over the bin centres along the last axis: (..., n_bins) -> (...)."""
        centres = torch.as_tensor(self.centres, dtype=logits.dtype, device=logits.device)
        return torch.softmax(logits, dim=-1) @ centres

    def cell_of(self, va: np.ndarray) -> np.ndarray:
        """Index of the (valence bin, arousal bin) cell in the n_bins x n_bins grid; -1 if missing."""
        v, a = self.bin_of(va[..., 0]), self.bin_of(va[..., 1])
        return np.where((v < 0) | (a < 0), -1, v * self.n_bins + a)
