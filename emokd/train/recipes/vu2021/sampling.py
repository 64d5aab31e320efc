"""Training streams of the vu2021 recipe: one batch from each training set per step.

A set is the labelled frames of some datasets for one task group: EXPR, VA, or EXPR_VA (frames
that carry both labels, the "combination task"). An epoch ends with the shortest set (`rounds`
"min"), as in the paper's code. With `balanced`, a set is sampled with replacement with weights
1 / (count of the frame's class) - the expression class for EXPR and EXPR_VA, the cell of the
20 x 20 valence-arousal grid for VA - so every class is drawn about equally often.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from emokd.train.recipes.vu2021.bins import VABins
from emokd.train.data import FrameData
from emokd.train.streams import stream_batches

N_CLASSES = 7   # the recipe's expressions: emokd's classes 0-6, "Other" (7) is not one of them


def set_frames(data: FrameData, split: str, task_group: str, datasets: tuple[str, ...],
               require_face: bool = True) -> np.ndarray:
    """Frame ids in `datasets` (all when empty) labelled for `task_group` with labels of `split`
    (EXPR_VA: both labels, each in `split` for its own task)."""
    expr_ok = (data.expr >= 0) & (data.expr < N_CLASSES)
    va_ok = ~np.isnan(data.va).any(1)
    mask = {"EXPR": expr_ok, "VA": va_ok, "EXPR_VA": expr_ok & va_ok}[task_group]
    keep = np.array([not datasets or ds in datasets for ds in data.video_dataset], dtype=bool)
    in_split = {"EXPR": data.in_split(split, "EXPR"), "VA": data.in_split(split, "VA")}
    in_split["EXPR_VA"] = in_split["EXPR"] & in_split["VA"]
    mask = mask & keep[data.frame_video] & in_split[task_group]
    if require_face:
        mask &= data.face_ok
    return np.flatnonzero(mask)


def balance_weights(data: FrameData, idx: np.ndarray, task_group: str, bins: VABins) -> np.ndarray:
    """Sampling probabilities over `idx`: 1 / count of each frame's class, normalised."""
    if task_group == "VA":
        classes = bins.cell_of(data.va[idx])
    else:
        classes = data.expr[idx].astype(np.int64)
    _, inverse, counts = np.unique(classes, return_inverse=True, return_counts=True)
    weights = 1.0 / counts[inverse]
    return weights / weights.sum()


def weighted_stream_batches(streams: dict[str, np.ndarray], weights: dict[str, np.ndarray],
                            batch_size: int, rng: np.random.Generator,
                            length: str | int = "min") -> Iterator[tuple[str, np.ndarray]]:
    """Like `data.stream_batches`, but each batch is drawn with replacement with `weights`."""
    streams = {k: v for k, v in streams.items() if len(v)}
    if not streams:
        return
    n_batches = {k: max(1, len(v) // batch_size) for k, v in streams.items()}
    rounds = {"max": max(n_batches.values()), "min": min(n_batches.values())}.get(length, length)
    for _ in range(int(rounds)):
        for name, idx in streams.items():
            yield name, rng.choice(idx, size=min(batch_size, len(idx)), replace=True, p=weights[name])


def steps(streams: dict[str, np.ndarray], batch_size: int, rng: np.random.Generator, length: str | int,
          weights: dict[str, np.ndarray] | None = None, permute=None) -> Iterator[list[tuple[str, np.ndarray]]]:
    """Group the stream cycle into steps of one batch per non-empty set (`permute`: see
    `data.stream_batches`)."""
    per_step = sum(1 for v in streams.values() if len(v))
    source = (stream_batches(streams, batch_size, rng, length, permute) if weights is None
              else weighted_stream_batches(streams, weights, batch_size, rng, length))
    step: list[tuple[str, np.ndarray]] = []
    for name, idx in source:
        step.append((name, idx))
        if len(step) == per_step:
            yield step
            step = []
