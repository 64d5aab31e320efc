"""Valence/arousal as classes: 20 equal bins per dimension over [-1, 1] (Vu et al. 2021).

The released code of the paper used 21 bin edges but 20 expectation points that did not sit
inside their bins, so the expectation of a one-hot bin fell into a neighbouring bin. Here one
object owns both: the expectation points are the bin centres, so `bin_of(centres) == arange`.

A value v is in bin b when edges[b] <= v < edges[b + 1] (the last bin closed at `high`), and the
numpy and torch paths compute it the same way, in float64, with a tolerance of EDGE_TOL bin widths:
labels are decimals (every AFEW-VA label is an integer / 10) stored as float32, so 0.3 arrives as
0.30000001 or 0.29999998, and floor((v + 1) / 0.1) alone put 3 of the 21 values k/10 (7 in float32)
in the bin below their edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


EDGE_TOL = 1e-4     # in bin widths: a value this close below an edge belongs to the upper bin


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
        return self.low + self.width * np.arange(self.n_bins + 1)

    @property
    def centres(self) -> np.ndarray:
        """(n_bins,) expectation points: the midpoint of each bin."""
        edges = self.edges
        return (edges[:-1] + edges[1:]) / 2.0

    def bin_of(self, values: np.ndarray) -> np.ndarray:
        """Bin index (int64) of each value; NaN (missing) gives -1."""
        values = np.asarray(values, dtype=np.float64)
        index = np.clip(np.floor((values - self.low) / self.width + EDGE_TOL), 0, self.n_bins - 1)
        return np.where(np.isnan(values), -1, index).astype(np.int64)

    def bin_of_tensor(self, values: torch.Tensor) -> torch.Tensor:
        """Torch twin of `bin_of` (the same float64 arithmetic): long tensor, -1 where NaN."""
        values = values.double()
        index = torch.floor((values - self.low) / self.width + EDGE_TOL).clamp(0, self.n_bins - 1)
        return torch.where(torch.isnan(values), torch.full_like(index, -1.0), index).long()

    def expectation(self, logits: torch.Tensor) -> torch.Tensor:
        """Softmax expectation over the bin centres along the last axis: (..., n_bins) -> (...)."""
        centres = torch.as_tensor(self.centres, dtype=logits.dtype, device=logits.device)
        return torch.softmax(logits, dim=-1) @ centres

    def cell_of(self, va: np.ndarray) -> np.ndarray:
        """Index of the (valence bin, arousal bin) cell in the n_bins x n_bins grid; -1 if missing."""
        v, a = self.bin_of(va[..., 0]), self.bin_of(va[..., 1])
        return np.where((v < 0) | (a < 0), -1, v * self.n_bins + a)
