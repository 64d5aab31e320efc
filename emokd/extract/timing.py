"""Frame times of an item, and its audio per frame on the video clock (docs/architecture.md).

`probe_item` is the one probe of an item (a video file is demuxed once, here): every later stage
takes its frame count and times. The audio window of frame k is the `window_samples` samples
ending (exclusive) at the end of frame k's display interval, rounded to the nearest sample,
zero-padded before t = 0 and after the decoded audio; windows are cut by
`emokd.models.audio_windows.audio_windows`, the cutter the SoundNet per-window mode uses too.
`audio_features` is what the extraction task runs on every chunk of frames, in both audio modes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emokd.constants import AUDIO_WINDOW_S, SAMPLE_RATE
from emokd.errors import ConfigError, DataError
from emokd.extract.audio import AudioTrack
from emokd.index.probe import VideoInfo, probe_video
from emokd.models.audio_windows import audio_windows

# A frame's audio counts as present (audio_ok) when its window end lies inside the decoded audio,
# give or take this much: one AAC frame at 44.1 kHz is 23 ms, and tracks routinely end that early.
AUDIO_OK_TOLERANCE_S = 0.025


@dataclass
class ItemProbe:
    n_frames: int
    fps: float
    pts: np.ndarray             # float64 (n,) s, start of each frame's display interval
    pts_source: str
    info: VideoInfo | None      # the video's probe when the item is a media file


def probe_item(item) -> ItemProbe:
    """Frame count, rate and times of a video file (one demux) or an image sequence."""
    if item.video_path is not None:
        info = probe_video(item.video_path)
        return ItemProbe(int(info.n_frames), float(info.fps), np.asarray(info.pts, np.float64),
                         str(getattr(info, "pts_source", "")), info)
    if item.frame_images:
        n = len(item.frame_images)
        if not item.fps and n > 1:
            raise DataError(f"{item.video_id}: an image sequence of {n} frames needs fps")
        fps = float(item.fps or 1.0)        # a still image: one frame at t = 0, any rate will do
        return ItemProbe(n, fps, np.arange(n, dtype=np.float64) / fps, "fps" if item.fps else "still", None)
    raise DataError(f"{item.video_id}: neither a video file nor frame images")


def window_samples(window_s: float = AUDIO_WINDOW_S, sample_rate: int = SAMPLE_RATE) -> int:
    return int(round(window_s * sample_rate))


def window_end_samples(info: VideoInfo, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """int64 (n,): exclusive end sample of each frame's audio window (= its display end)."""
    return np.rint(np.asarray(info.frame_end, dtype=np.float64) * sample_rate).astype(np.int64)


def audio_ok(track: AudioTrack | None, ends: np.ndarray) -> np.ndarray:
    """bool (B,): the window end is at least the tolerance into the decoded audio and at most the
    tolerance past its end (AUDIO_OK_TOLERANCE_S); all False without a track or without audio."""
    ends = np.asarray(ends, dtype=np.int64)
    if track is None or not track.has_audio:
        return np.zeros(len(ends), bool)
    tol = int(round(AUDIO_OK_TOLERANCE_S * track.sample_rate))
    return (ends >= track.valid_start + tol) & (ends <= track.n_valid + tol)


def audio_features(encoder, track: AudioTrack, ends: np.ndarray, window_samples: int, mode: str,
                   batch_size: int) -> np.ndarray:
    """float32 (B, output_dim): the audio encoder on the windows ending at `ends`, in `mode`
    ("per-window" or "shared-trunk"). An encoder with `encode_track` does both modes itself;
    one without it can only encode the windows cut here (per-window)."""
    if hasattr(encoder, "encode_track"):
        return encoder.encode_track(track.signal, ends, window_samples, mode, batch_size=batch_size)
    if mode != "per-window":
        raise ConfigError(f"audio_mode {mode}: encoder {encoder.name!r} has no encode_track; "
                          "use --audio-mode per-window")
    return encoder.encode_numpy(audio_windows(track.signal, ends, window_samples))
