"""Training beyond memory: features read in shard-sized blocks, in a shuffled block order.

`load_frame_data` builds a BlockFrameData when the chosen feature sets exceed `max_memory`. Labels,
masks and soft labels stay in memory (about 25 bytes a frame); the features stay in the cache and
are read one block at a time: a packed shard is one block, a long video's shard is cut into blocks
of about BLOCK_BYTES. `permute` orders a stream block by block (blocks shuffled, frames shuffled
within each block), so an epoch reads each block about once per stream; the blocks in use are
kept, least recently used first out, within the memory budget. A batch holds exactly what the
in-memory FrameData would give for the same frame ids (same fill of no-face rows, same windows).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from emokd.train.data import FrameData

log = logging.getLogger(__name__)

BLOCK_BYTES = 32 * 2**20
MIN_RESIDENT_BLOCKS = 4


@dataclass(frozen=True)
class Block:
    key: str            # shard
    rows: np.ndarray    # rows of the shard, consecutive global ids [lo, lo + len(rows))
    lo: int


class BlockFrameData(FrameData):
    """FrameData whose `face`/`audio` are None: `batch` reads the blocks it needs."""

    @classmethod
    def build(cls, cache, sel, src: np.ndarray, dims: dict, budget: int, common: dict, device) -> BlockFrameData:
        row_bytes = 2 * (dims["face"] + dims["audio"])
        per_block = max(1, BLOCK_BYTES // row_bytes)
        blocks = []
        for part in sel.shards:
            for lo in range(0, len(part.rows), per_block):
                blocks.append(Block(part.key, part.rows[lo:lo + per_block], part.start + lo))
        data = cls(face=None, audio=None, **common)
        data._cache = cache
        data._src = src
        data._dims = dims
        data._blocks = blocks
        data._block_lo = np.asarray([b.lo for b in blocks], np.int64)
        data._resident = OrderedDict()
        fixed = FrameData.memory_bytes(data) + src.nbytes
        data._capacity = max(MIN_RESIDENT_BLOCKS, int((budget - fixed) // max(1, per_block * row_bytes)))
        data.block_reads = 0
        data.to(device)
        log.info("block mode: %d blocks of up to %d frames, up to %d in memory", len(blocks), per_block,
                 data._capacity)
        return data

    @property
    def mode(self) -> str:
        return "blocks"

    @property
    def dims(self) -> dict[str, int]:
        return {**self._dims, "window": self.window, "stride": self.stride}

    def memory_bytes(self) -> int:
        fixed = super().memory_bytes()
        resident = sum(f.element_size() * f.nelement() + a.element_size() * a.nelement()
                       for f, a in self._resident.values())
        return fixed + resident + self._src.nbytes

    def block_of(self, rows: np.ndarray) -> np.ndarray:
        return np.searchsorted(self._block_lo, rows, side="right") - 1

    def permute(self, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Blocks in a random order, frames in a random order within each block."""
        idx = np.asarray(idx)
        rank = rng.permutation(len(self._blocks))
        keys = rank[self.block_of(idx)] + rng.random(len(idx))
        return idx[np.argsort(keys, kind="stable")]

    def _load(self, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        if b in self._resident:
            self._resident.move_to_end(b)
            return self._resident[b]
        block = self._blocks[b]
        group = self._cache.shard_group(block.key)
        lo, hi = int(block.rows[0]), int(block.rows[-1]) + 1
        take = block.rows - lo
        face = group[self.sets["face"]][lo:hi][take]
        audio = group[self.sets["audio"]][lo:hi][take]
        self.block_reads += 1
        self._resident[b] = (torch.from_numpy(np.ascontiguousarray(face)),
                             torch.from_numpy(np.ascontiguousarray(audio)))
        while len(self._resident) > self._capacity:
            self._resident.popitem(last=False)
        return self._resident[b]

    def _gather(self, which: int, rows: np.ndarray) -> torch.Tensor:
        """Feature rows (`which` 0 = face, 1 = audio) of global ids `rows` (any shape; -1 = zeros)."""
        flat = rows.reshape(-1)
        out = torch.zeros((len(flat), self._dims["face" if which == 0 else "audio"]), dtype=torch.float16)
        valid = flat >= 0
        blocks = self.block_of(flat[valid])
        where = np.flatnonzero(valid)
        for b in np.unique(blocks):
            pick = blocks == b
            block = self._load(int(b))[which]
            local = torch.as_tensor(flat[where[pick]] - self._blocks[b].lo)
            out[torch.as_tensor(where[pick])] = block[local]
        return out.reshape(*rows.shape, out.shape[-1])

    def features(self, i: torch.Tensor, win: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self._src[win.cpu().numpy()]
        return self._gather(0, rows).float(), self._gather(1, i.cpu().numpy()).float()

    def to(self, device) -> BlockFrameData:
        """Features stay in the cache; batches go to `device`."""
        self.batch_device = None if torch.device(device).type == "cpu" else torch.device(device)
        return self
