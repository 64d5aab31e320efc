"""Per-frame audio windows on the video clock (DESIGN §3).

The audio window of frame k is the `window_samples` samples ending (exclusive) at the end of
frame k's display interval, rounded to the nearest sample; samples before t = 0 or beyond the
decoded audio are zeros. Frames in the first window length are kept, zero-padded.
"""

from __future__ import annotations

import numpy as np

from emokd.constants import AUDIO_WINDOW_S, SAMPLE_RATE
from emokd.extract.audio import AudioTrack
from emokd.index.probe import VideoInfo

# A frame's audio counts as present (audio_ok) when its window end lies inside the decoded audio,
# give or take this much: one AAC frame at 44.1 kHz is 23 ms, and tracks routinely end that early.
AUDIO_OK_TOLERANCE_S = 0.025


def window_samples(window_s: float = AUDIO_WINDOW_S, sample_rate: int = SAMPLE_RATE) -> int:
    return int(round(window_s * sample_rate))


def window_end_samples(info: VideoInfo, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """int64 (n,): exclusive end sample of each frame's audio window (= its display end)."""
    return np.rint(np.asarray(info.frame_end, dtype=np.float64) * sample_rate).astype(np.int64)


def audio_present(track: AudioTrack, ends: np.ndarray) -> np.ndarray:
    """bool (B,): the window end is at least the tolerance into the decoded audio and at most the
    tolerance past its end (AUDIO_OK_TOLERANCE_S)."""
    ends = np.asarray(ends, dtype=np.int64)
    if not track.has_audio:
        return np.zeros(len(ends), bool)
    tol = int(round(AUDIO_OK_TOLERANCE_S * track.sample_rate))
    return (ends >= track.valid_start + tol) & (ends <= track.n_valid + tol)


def audio_windows(track: AudioTrack, ends: np.ndarray, window_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """(windows float32 (B, window_samples), audio_ok bool (B,)) for window ends `ends`."""
    ends = np.asarray(ends, dtype=np.int64)
    signal = track.signal
    out = np.zeros((len(ends), window_samples), np.float32)
    for row, end in enumerate(ends):
        start = end - window_samples
        lo, hi = max(start, 0), min(end, len(signal))
        if hi > lo:
            out[row, lo - start:hi - start] = signal[lo:hi]
    return out, audio_present(track, ends)


def audio_ok_of(track: AudioTrack | None, ends: np.ndarray, window_samples: int | None = None) -> np.ndarray:
    """audio_ok without building the windows (same rule as `audio_windows`)."""
    if track is None:
        return np.zeros(len(np.asarray(ends)), bool)
    return audio_present(track, ends)
