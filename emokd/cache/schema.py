"""The arrays of one shard, defined once: names, dtypes and shapes (docs/cache_format.md).

A shard holds the rows of its items end to end (R rows in all):
  pts                 float64, (R,): each frame's time in seconds from its item's start;
  <set>               float16, (R, dim): one array per feature set (emokd/cache/sets.py);
  <set>.ok            bool, (R,): a face / an audio window existed for the frame, for that set.
Labels and teacher soft labels live in the shard's `labels` and `soft/<run>` subgroups
(labels.py, soft.py). `FeatureCache.begin_shard` creates exactly these arrays and `verify` checks
caches against them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emokd.cache.sets import FeatureSet

FEATURE_DTYPE = np.dtype(np.float16)
PTS = "pts"
PTS_DTYPE = np.dtype(np.float64)


@dataclass(frozen=True)
class ArraySpec:
    """One per-frame array of a shard: a set's features or mask (`feature_set` given), or pts."""

    name: str
    dtype: np.dtype
    dim: int | None = None               # None: one value per frame, shape (R,)
    feature_set: FeatureSet | None = None

    @property
    def is_feature(self) -> bool:
        """The embedding array of a set (non-finite values are refused)."""
        return self.feature_set is not None and self.dim is not None

    def shape(self, n_rows: int) -> tuple[int, ...]:
        return (int(n_rows),) if self.dim is None else (int(n_rows), self.dim)

    @property
    def dim_name(self) -> str | None:
        """Zarr dimension name of the second axis: per set, since two sets may differ in width."""
        return None if self.dim is None else f"{self.name}_dim"

    def attributes(self) -> dict | None:
        """The array's Zarr attributes: which set (and encoder, layer) fills a feature array."""
        fs = self.feature_set
        if fs is None:
            return None
        base = {"set": fs.name, "kind": fs.kind}
        if not self.is_feature:
            return base
        return {**base, "encoder": fs.encoder.get("name"), "layer": fs.encoder.get("layer"),
                "fingerprint": fs.fingerprint}


def set_arrays(fs: FeatureSet) -> dict[str, ArraySpec]:
    """The two arrays of one feature set: its embeddings and its per-frame mask."""
    return {fs.name: ArraySpec(fs.name, FEATURE_DTYPE, fs.dim, fs),
            fs.ok_array: ArraySpec(fs.ok_array, np.dtype(bool), None, fs)}


def shard_arrays(sets: list[FeatureSet], frames: bool = True) -> dict[str, ArraySpec]:
    """name -> ArraySpec of every array a shard writer creates: pts (when `frames`), then each set's."""
    arrays = {PTS: ArraySpec(PTS, PTS_DTYPE)} if frames else {}
    for fs in sets:
        arrays.update(set_arrays(fs))
    return arrays


def feature_dims(sets: list[FeatureSet]) -> dict[str, int]:
    """Set name -> width, e.g. {"fer_pyemotion-embedding": 256, "soundnet8-conv8": 1000}."""
    return {fs.name: fs.dim for fs in sets}
