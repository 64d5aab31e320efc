"""One epoch of task batches: which frames each optimiser step sees (docs/training.md).

Two ways to cut the task streams (frame-id arrays, one per task) into batches:

* `proportional_rounds` (the official loader of Jeong et al.): an epoch has
  ceil(longest stream / batch_size) rounds and each stream's batch is its share of them
  (len_i / rounds frames), so every stream is seen once per epoch and the tasks keep the weight
  their sizes give them. The official code cut int(len_i / rounds)-sized batches and so dropped up
  to `rounds - 1` frames of each stream per epoch; here each shuffled stream is split into nearly
  equal parts, so every frame is seen exactly once.
* `cycled_rounds` (emokd before, kept as an option): fixed `batch_size` batches, the streams
  cycled in order and the short ones reshuffled and repeated (the MTL stream most), so the small
  tasks weigh more than their sizes and an epoch is the longest stream's pass.

`StepPlan` holds an epoch's steps as frame ids (cheap) and gathers each batch only when iterated,
so the loop knows the number of steps (progress bar, ETA) without holding every batch in memory.

Every shuffle goes through `permute(idx, rng)` (default a uniform shuffle): recipes pass
`FrameData.permute`, so that in block mode (features beyond memory, emokd/train/blocks.py) a stream
is shuffled block by block and an epoch reads each block about once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

Round = list[tuple[str, np.ndarray]]       # (stream name, frame ids) of one batch per stream
MIN_BATCH = 2                               # BatchNorm and CCC need two samples


def _shuffle(idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(idx)


def proportional_rounds(streams: dict[str, np.ndarray], batch_size: int,
                        rng: np.random.Generator, permute=_shuffle) -> list[Round]:
    """Every frame of every stream exactly once, in ceil(max len / batch_size) rounds.

    A stream is shuffled and split into k nearly equal batches, k = the number of rounds (or fewer
    when it has under MIN_BATCH frames per round: then its k batches are spread evenly over the
    rounds). A stream of a single frame is left out (no batch of one).
    """
    streams = {k: v for k, v in streams.items() if len(v) >= MIN_BATCH}
    if not streams:
        return []
    n_rounds = max(math.ceil(len(v) / batch_size) for v in streams.values())
    rounds: list[Round] = [[] for _ in range(n_rounds)]
    for name, idx in streams.items():
        k = min(n_rounds, len(idx) // MIN_BATCH)
        parts = np.array_split(permute(idx, rng), k)
        for j, part in enumerate(parts):
            rounds[j * n_rounds // k].append((name, part))
    order = {name: i for i, name in enumerate(streams)}
    return [sorted(r, key=lambda entry: order[entry[0]]) for r in rounds]


def cycled_rounds(streams: dict[str, np.ndarray], batch_size: int, rng: np.random.Generator,
                  length: str | int = "max", permute=_shuffle) -> list[Round]:
    """Fixed-size batches, the streams cycled in order, one batch each per round.

    Each stream is shuffled and cut into batches of `batch_size` (a stream smaller than a batch is
    one batch; the remainder of a shuffle is dropped); a stream that runs out is reshuffled and
    continues. `length` = number of rounds: "max" (the longest stream is seen once), "min", or an
    int. Empty streams are skipped.
    """
    return list(_cycled(streams, batch_size, rng, length, permute))


def _cycled(streams, batch_size, rng, length, permute=_shuffle) -> Iterator[Round]:
    streams = {k: v for k, v in streams.items() if len(v)}
    if not streams:
        return
    n_batches = {k: max(1, len(v) // batch_size) for k, v in streams.items()}
    rounds = {"max": max(n_batches.values()), "min": min(n_batches.values())}.get(length, length)
    queues: dict[str, list[np.ndarray]] = {k: [] for k in streams}
    for _ in range(int(rounds)):
        entry = []
        for name, idx in streams.items():
            if not queues[name]:
                perm = permute(idx, rng)
                size = min(batch_size, len(perm))
                queues[name] = [perm[j:j + size] for j in range(0, len(perm) - size + 1, size)]
            entry.append((name, queues[name].pop(0)))
        yield entry


def stream_batches(streams: dict[str, np.ndarray], batch_size: int, rng: np.random.Generator,
                   length: str | int = "max", permute=None) -> Iterator[tuple[str, np.ndarray]]:
    """The batches of `cycled_rounds`, one after the other."""
    for entry in _cycled(streams, batch_size, rng, length, permute or _shuffle):
        yield from entry


@dataclass
class StepPlan:
    """An epoch's optimiser steps as frame ids: `steps[s]` = the (stream, frame ids, dataset) of the
    batches whose losses step s sums. Iterating gathers the batches from `data`."""

    data: object                                             # FrameData
    steps: list[list[tuple[str, np.ndarray, str | None]]]

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self) -> Iterator[list[dict]]:
        for step in self.steps:
            yield [self.data.batch(idx, stream=name, dataset=dataset) for name, idx, dataset in step]
