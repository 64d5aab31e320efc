"""A centred temporal filter for per-frame predictions (`emokd predict-video --smooth SECONDS`).

ABAW entries report that smoothing frame-wise predictions over a short window is a cheap gain
(affect changes slowly compared with the frame rate). The filter is a centred box in time: frame
i's value becomes the mean over the frames whose presentation time lies within SECONDS / 2 of
t_i, so it follows the container's clock (variable frame rates included) and keeps each row of
probabilities summing to 1.
"""

from __future__ import annotations

import numpy as np


def smooth_in_time(values: np.ndarray, times: np.ndarray, seconds: float) -> np.ndarray:
    """(n, k) values averaged over the frames within +- seconds/2 of each frame's time; times
    must be non-decreasing (presentation order). seconds <= 0 returns the values unchanged."""
    values = np.asarray(values, np.float64)
    if seconds <= 0 or len(values) == 0:
        return values.copy()
    times = np.asarray(times, np.float64)
    if np.any(np.diff(times) < 0):
        raise ValueError("frame times must be non-decreasing")
    half = seconds / 2 + 1e-9                      # a frame exactly seconds/2 away is inside
    lo = np.searchsorted(times, times - half, side="left")
    hi = np.searchsorted(times, times + half, side="right")
    flat = values.reshape(len(values), -1)
    sums = np.vstack([np.zeros((1, flat.shape[1])), np.cumsum(flat, axis=0)])
    out = (sums[hi] - sums[lo]) / (hi - lo)[:, None]
    return out.reshape(values.shape)
