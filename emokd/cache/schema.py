"""The arrays of one cached video, defined once: names, dtypes and shapes (docs/cache_format.md).

Every video group holds, with `n_frames` rows each:
  one feature array per encoder record, named after the record's `kind` (or its `array` key),
      float16, shape (n_frames, output_dim);
  face_ok, audio_ok   bool, (n_frames,): a face / an audio window existed for the frame;
  pts                 float64, (n_frames,): the frame's time in seconds from the video's start.
`FeatureCache.begin_video` creates exactly these arrays and `verify` checks caches against them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emokd.errors import CacheError
from emokd.cache.fingerprint import array_name

FEATURE_DTYPE = np.dtype(np.float16)
FRAME_ARRAYS = {"face_ok": np.dtype(bool), "audio_ok": np.dtype(bool), "pts": np.dtype(np.float64)}


@dataclass(frozen=True)
class ArraySpec:
    """One per-frame array of a video: a feature array (filled by `encoder`) or a frame array."""

    name: str
    dtype: np.dtype
    dim: int | None = None        # None: one value per frame, shape (n_frames,)
    encoder: dict | None = None   # feature arrays: the record of the encoder that fills it

    @property
    def is_feature(self) -> bool:
        return self.encoder is not None

    def shape(self, n_frames: int) -> tuple[int, ...]:
        return (int(n_frames),) if self.dim is None else (int(n_frames), self.dim)

    def attributes(self) -> dict | None:
        """The array's Zarr attributes: which encoder (and layer) filled a feature array."""
        if self.encoder is None:
            return None
        return {"encoder": self.encoder["name"], "layer": self.encoder.get("layer")}


def feature_dims(encoders: list[dict]) -> dict[str, int]:
    """Feature array name -> width, e.g. {"face": 256, "audio": 1000}, in encoder order."""
    return {array_name(record): int(record["output_dim"]) for record in encoders}


def video_arrays(encoders: list[dict]) -> dict[str, ArraySpec]:
    """name -> ArraySpec of every array of a video: the feature arrays in encoder order, then
    face_ok, audio_ok, pts. `encoders` are the cache's encoder records (`FeatureCache.encoders`)."""
    arrays = {}
    for record in encoders:
        name = array_name(record)
        if name in FRAME_ARRAYS:
            raise CacheError(f"encoder {record.get('name')!r} would write the cache array {name!r}, which "
                             "holds per-frame data; give its record another 'kind' or 'array' name")
        arrays[name] = ArraySpec(name, FEATURE_DTYPE, int(record["output_dim"]), record)
    arrays.update({name: ArraySpec(name, dtype) for name, dtype in FRAME_ARRAYS.items()})
    return arrays
