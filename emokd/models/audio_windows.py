"""The one cutter of per-frame audio windows from a mono track (numpy only).

The window of a frame is the `window_samples` samples ending (exclusive) at its window end;
samples before t = 0 or beyond the track are zeros, so frames in the first window length are
kept, zero-padded. Extraction (`emokd.extract.timing`, `emokd.extract.task`) and the per-window
mode of `SoundNet8Encoder.encode_track` both cut windows here.
"""

from __future__ import annotations

import numpy as np


def audio_windows(signal: np.ndarray, ends: np.ndarray, window_samples: int) -> np.ndarray:
    """float32 (len(ends), window_samples): the windows [end - window_samples, end) of `signal`."""
    ends = np.asarray(ends, dtype=np.int64)
    out = np.zeros((len(ends), window_samples), np.float32)
    for row, end in enumerate(ends):
        start = end - window_samples
        lo, hi = max(start, 0), min(end, len(signal))
        if hi > lo:
            out[row, lo - start:hi - start] = signal[lo:hi]
    return out
