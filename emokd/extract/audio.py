"""Decode a video's audio onto the video's clock (docs/architecture.md).

The video clock has t = 0 at the presentation time of frame 0. Frame times come from
`emokd.index.probe.probe_video`: the container's packet timestamps (PyAV, demux only, no
decoding), in presentation order, which is the order decord returns frames in. AVI carries no
usable presentation times (decord's are garbage there), so AVI, and any container whose
timestamps are missing, duplicated or not increasing, falls back to k / fps;
`VideoInfo.pts_source` says which was used and it is logged.

Audio is decoded with PyAV (decord's AudioReader leaks), mixed to mono, resampled to 22050 Hz
with soxr and shifted by the difference of the two streams' start times, so that sample 0 of
`AudioTrack.signal` is video time 0. No audio track, an undecodable one, or one shorter than the
video gives zeros there, and `has_audio` / `valid_start` / `n_valid` say which samples are real.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import soxr

from emokd.constants import SAMPLE_RATE
from emokd.errors import DataError
from emokd.index.probe import VideoInfo, open_media

log = logging.getLogger(__name__)


@dataclass
class AudioTrack:
    """Mono float32 at `sample_rate`; sample 0 = video time 0; real audio in [valid_start, n_valid)."""

    signal: np.ndarray
    n_valid: int                # exclusive end of the decoded audio on the video clock (0: none)
    has_audio: bool
    valid_start: int = 0        # first sample holding decoded audio (> 0 when audio starts late)
    sample_rate: int = SAMPLE_RATE
    source_rate: int = 0        # the stream's own sample rate
    offset_s: float = 0.0       # video-clock time of the stream's first decoded sample


def _mono_float(frame: av.AudioFrame) -> np.ndarray:
    data = frame.to_ndarray()
    channels = max(len(frame.layout.channels), 1)
    if not frame.format.is_planar:
        data = data.reshape(-1, channels).T
    if np.issubdtype(data.dtype, np.integer):
        info = np.iinfo(data.dtype)
        data = (data.astype(np.float32) - (info.min + info.max + 1) / 2) / ((info.max - info.min + 1) / 2)
    return data.astype(np.float32).mean(axis=0)


def _decode_audio(path: Path) -> tuple[np.ndarray, int, float] | None:
    """(mono samples at the stream rate, rate, container time of sample 0) or None without audio."""
    with open_media(path) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        pieces, cursor, t_first, rate, gaps = [], 0, None, 0, 0
        try:
            for frame in container.decode(stream):
                if frame.samples == 0:
                    continue
                if t_first is None:
                    t_first, rate = (frame.time or 0.0), frame.sample_rate
                samples = _mono_float(frame)
                if frame.sample_rate != rate:
                    samples = soxr.resample(samples, frame.sample_rate, rate)
                if frame.time is not None:
                    pos = int(round((frame.time - t_first) * rate))
                    if pos - cursor > rate // 1000:            # a hole of more than 1 ms: keep the clock
                        pieces.append(np.zeros(pos - cursor, np.float32))
                        cursor, gaps = pos, gaps + 1
                pieces.append(samples)
                cursor += len(samples)
        except av.error.FFmpegError as exc:
            log.warning("%s: audio decoding stopped at %.2f s (%s)", path, cursor / max(rate, 1), exc)
        if gaps:
            log.info("%s: %d gaps in the audio timestamps filled with silence", path, gaps)
    if not pieces:
        return None
    return np.concatenate(pieces), rate, t_first


def load_audio(path: str | Path, info: VideoInfo, sample_rate: int = SAMPLE_RATE) -> AudioTrack:
    """The file's audio, mono at `sample_rate`, sample 0 = video time 0, covering the whole video."""
    path = Path(path)
    total = int(math.ceil(info.duration * sample_rate))
    try:
        decoded = _decode_audio(path)
    except DataError as exc:
        log.warning("%s", exc)
        decoded = None
    if decoded is None:
        log.info("%s: no audio track: audio windows are zeros (audio_ok False)", path)
        return AudioTrack(np.zeros(total, np.float32), 0, False)
    samples, rate, t_first = decoded
    offset_s = t_first - info.start_time
    if rate != sample_rate:
        samples = soxr.resample(samples, rate, sample_rate, quality="HQ").astype(np.float32)
    offset = int(round(offset_s * sample_rate))
    signal = np.zeros(total, np.float32)
    src0 = max(-offset, 0)
    dst0 = max(offset, 0)
    n = max(min(len(samples) - src0, total - dst0), 0)
    signal[dst0:dst0 + n] = samples[src0:src0 + n]
    n_valid = dst0 + n
    if n_valid < total:
        log.info("%s: audio ends %.3f s before the video", path, (total - n_valid) / sample_rate)
    return AudioTrack(signal, n_valid, n > 0, dst0, sample_rate, rate, offset_s)
