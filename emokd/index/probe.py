"""Probe a video's frame times (docs/architecture.md, "time alignment").

The video clock has t = 0 at the presentation time of frame 0. Frame times come from the
container's packet timestamps (read with PyAV, demux only, no decoding), in presentation order,
which is the order decord returns frames in. AVI carries no usable presentation times (decord's
are garbage there), so AVI, and any container whose timestamps are missing, duplicated or not
increasing, falls back to k / fps; `VideoInfo.pts_source` says which was used and it is logged.

Audio is decoded by `emokd.extract.audio` onto the same clock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from emokd.errors import DataError

log = logging.getLogger(__name__)

PTS_CONTAINER = "container"
PTS_INDEX_AVI = "index/fps (AVI: container timestamps unusable)"
PTS_INDEX_BAD = "index/fps (container timestamps missing or not increasing)"


@dataclass
class VideoInfo:
    """Frame timing of one video, on the video clock (t = 0 at frame 0)."""

    n_frames: int
    fps: float
    pts: np.ndarray             # (n,) float64 s, start of each frame's display interval
    frame_end: np.ndarray       # (n,) float64 s, end of each frame's display interval
    pts_source: str             # PTS_CONTAINER or one of the index/fps fallbacks
    start_time: float = 0.0     # container time (s) of frame 0: where video time 0 is
    width: int = 0
    height: int = 0
    codec: str = ""
    path: Path | None = None

    @property
    def duration(self) -> float:
        return float(self.frame_end[-1]) if self.n_frames else 0.0


def open_media(path: Path):
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise DataError(f"{path}: cannot open video ({exc})") from exc


def _rate(stream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return float(rate)
    return 0.0


def probe_video(path: str | Path) -> VideoInfo:
    """Frame count and per-frame display times of the first video stream (demux only)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: video file not found")
    with open_media(path) as container:
        if not container.streams.video:
            raise DataError(f"{path}: no video stream")
        stream = container.streams.video[0]
        tb = stream.time_base
        stamps, durations = [], []
        try:
            for packet in container.demux(stream):
                if packet.size == 0 or packet.is_discard:
                    continue
                stamps.append(packet.pts)
                durations.append(packet.duration or 0)
        except av.error.FFmpegError as exc:
            log.warning("%s: stopped reading packets after %d frames (%s)", path, len(stamps), exc)
        fps = _rate(stream)
        info = dict(width=stream.codec_context.width, height=stream.codec_context.height,
                    codec=stream.codec_context.name, path=path)
        fmt = container.format.name
        stream_start = float(stream.start_time * tb) if stream.start_time is not None else 0.0
    n = len(stamps)
    if n == 0:
        raise DataError(f"{path}: no decodable video frames")
    if fps <= 0:
        raise DataError(f"{path}: video stream has no frame rate")
    order_ok = None not in stamps
    if order_ok:
        raw = np.sort(np.asarray(stamps, dtype=np.int64))
        order_ok = bool(np.all(np.diff(raw) > 0))
    if "avi" in fmt.split(","):
        source = PTS_INDEX_AVI
    elif not order_ok:
        source = PTS_INDEX_BAD
    else:
        source = PTS_CONTAINER
    if source == PTS_CONTAINER:
        start = float(raw[0] * tb)
        pts = (raw - raw[0]).astype(np.float64) * float(tb)
        last_duration = durations[int(np.argmax(stamps))]
        if last_duration > 0:
            last = float(last_duration * tb)
        elif n > 1:
            last = float(np.median(np.diff(pts[-min(n, 9):])))
        else:
            last = 1.0 / fps
        frame_end = np.append(pts[1:], pts[-1] + last)
    else:
        log.info("%s: frame times from %s", path, source)
        start = stream_start
        pts = np.arange(n, dtype=np.float64) / fps
        frame_end = np.arange(1, n + 1, dtype=np.float64) / fps
    return VideoInfo(n, fps, pts, frame_end, source, start, **info)


def frame_count(path: Path) -> int:
    """Frames of the first video stream: the container header, else a demux count (DataError if unreadable)."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(f"{path}: no video stream")
            n = container.streams.video[0].frames
    except av.error.FFmpegError as exc:
        raise DataError(f"{path}: cannot open video ({exc})") from exc
    return int(n) if n and n > 0 else probe_video(path).n_frames
