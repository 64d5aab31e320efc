"""Probe a video: frame times, display geometry, audio tracks (docs/architecture.md, "time alignment").

The video clock has t = 0 at the presentation time of frame 0. Frame times come from the
container's packet timestamps (read with PyAV, demuxing only; the first frame alone is decoded,
for the display matrix), in presentation order, which is the order the decoders return frames in.
A duplicated or missing stamp is repaired where it occurs (`emokd.index.frame_times`) and counted
in `VideoInfo.repaired`; k / fps is used only for AVI (which carries no usable presentation times)
and for a stream whose stamps are unusable as a whole. `VideoInfo.pts_source` says which, and it
is logged.

Audio is decoded by `emokd.extract.audio` onto the same clock, from the track
`emokd.index.tracks.choose_track` picks; frames are decoded by `emokd.extract.video` and shown
through `VideoInfo.geometry` (`emokd.index.geometry`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from emokd.errors import DataError
from emokd.index.frame_times import repair_stamps
from emokd.index.geometry import Geometry, parse_display_matrix
from emokd.index.tracks import AudioTrackInfo, audio_tracks

log = logging.getLogger(__name__)

PTS_CONTAINER = "container"
PTS_INDEX_AVI = "index/fps (AVI: container timestamps unusable)"
PTS_INDEX_BAD = "index/fps (fewer than half of the frames carry a timestamp of their own)"


@dataclass
class VideoInfo:
    """Frame timing of one video, on the video clock (t = 0 at frame 0), and what the file holds."""

    n_frames: int
    fps: float
    pts: np.ndarray             # (n,) float64 s, start of each frame's display interval
    frame_end: np.ndarray       # (n,) float64 s, end of each frame's display interval
    pts_source: str             # PTS_CONTAINER or one of the index/fps fallbacks
    start_time: float = 0.0     # container time (s) of frame 0: where video time 0 is
    width: int = 0              # the stored (coded) picture; `geometry.display` is what players show
    height: int = 0
    codec: str = ""
    path: Path | None = None
    geometry: Geometry | None = None
    repaired: list[int] = field(default_factory=list)   # frames whose container stamp was repaired
    container_format: str = ""
    reordered: bool = False     # the stream's frames are coded out of presentation order (B-frames)
    keyframes: list[tuple[int, int]] = field(default_factory=list)  # (frame index, raw pts) of keyframes
    audio_tracks: list[AudioTrackInfo] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return float(self.frame_end[-1]) if self.n_frames else 0.0

    @property
    def display_geometry(self) -> Geometry:
        return self.geometry or Geometry((self.width, self.height))


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


def _geometry(stream, frame) -> Geometry:
    """The display transform, from the first decoded frame (its display matrix) and the stream."""
    ctx = stream.codec_context
    width, height = (frame.width, frame.height) if frame is not None else (ctx.width, ctx.height)
    sar = stream.sample_aspect_ratio or ctx.sample_aspect_ratio
    sar = Fraction(sar) if sar and sar > 0 else Fraction(1)
    rotation, mirrored = 0, False
    if frame is not None:
        matrix = next((sd for sd in frame.side_data if sd.type == av.sidedata.sidedata.Type.DISPLAYMATRIX), None)
        if matrix is not None:
            rotation, mirrored = parse_display_matrix(bytes(matrix))
    return Geometry((int(width), int(height)), sar, rotation, mirrored)


@dataclass
class _Packets:
    pts: list = field(default_factory=list)
    dts: list = field(default_factory=list)
    durations: list = field(default_factory=list)
    keys: list = field(default_factory=list)
    first: object = None        # the first decoded frame, None when it could not be decoded


def _demux(path: Path, container, stream) -> _Packets:
    """The stream's packets' times and keyframe flags, and its first decoded frame."""
    found = _Packets()
    pts, first = found.pts, None
    decoding = True
    try:
        for packet in container.demux(stream):
            if packet.size == 0 or packet.is_discard:
                continue
            pts.append(packet.pts)
            found.dts.append(packet.dts)
            found.durations.append(packet.duration or 0)
            found.keys.append(bool(packet.is_keyframe))
            if decoding:
                try:
                    frames = stream.decode(packet)
                except av.error.FFmpegError:
                    frames = []
                if frames:
                    first, decoding = frames[0], False
                elif len(pts) > 64:
                    decoding = False
    except av.error.FFmpegError as exc:
        log.warning("%s: stopped reading packets after %d frames (%s)", path, len(pts), exc)
    if first is None:
        try:
            first = next(iter(stream.decode(None)), None)
        except av.error.FFmpegError:
            first = None
    found.first = first
    return found


def probe_video(path: str | Path) -> VideoInfo:
    """Frame count and per-frame display times of the first video stream, its display geometry
    and the file's audio tracks."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: video file not found")
    with open_media(path) as container:
        if not container.streams.video:
            raise DataError(f"{path}: no video stream")
        stream = container.streams.video[0]
        tb = stream.time_base
        packets = _demux(path, container, stream)
        fps = _rate(stream)
        geometry = _geometry(stream, packets.first)
        info = dict(width=geometry.stored[0], height=geometry.stored[1], codec=stream.codec_context.name,
                    path=path, geometry=geometry, container_format=container.format.name,
                    audio_tracks=audio_tracks(container))
        has_b_frames = bool(stream.codec_context.has_b_frames)
        stream_start = float(stream.start_time * tb) if stream.start_time is not None else 0.0
    pts = packets.pts
    n = len(pts)
    if n == 0:
        raise DataError(f"{path}: no decodable video frames")
    if fps <= 0:
        raise DataError(f"{path}: video stream has no frame rate")
    known = [p for p in pts if p is not None]
    info["reordered"] = has_b_frames or any(b < a for a, b in zip(known, known[1:]))
    info["keyframes"] = _keyframes(packets) if len(known) == n else []
    stamps = repair_stamps(pts, packets.dts)
    if "avi" in info["container_format"].split(","):
        source = PTS_INDEX_AVI
    elif stamps.values is None:
        source = PTS_INDEX_BAD
    else:
        source = PTS_CONTAINER
    if source == PTS_CONTAINER:
        values = stamps.values
        start = float(values[0] * tb)
        frame_pts = (values - values[0]) * float(tb)
        if stamps.repaired:
            shown = ", ".join(str(k) for k in stamps.repaired[:10]) + (" ..." if len(stamps.repaired) > 10 else "")
            log.warning("%s: %d duplicated or missing frame timestamps repaired from their neighbours "
                        "(frames %s)", path, len(stamps.repaired), shown)
        info["repaired"] = list(stamps.repaired)
        frame_end = np.append(frame_pts[1:], frame_pts[-1] + _last_duration(packets, tb, frame_pts, fps))
    else:
        log.info("%s: frame times from %s", path, source)
        start = stream_start
        frame_pts = np.arange(n, dtype=np.float64) / fps
        frame_end = np.arange(1, n + 1, dtype=np.float64) / fps
    return VideoInfo(n, fps, frame_pts, frame_end, source, start, **info)


def _keyframes(packets: _Packets) -> list[tuple[int, int]]:
    """(frame index, pts) of the keyframes whose stamp no other frame shares (for seeking)."""
    values, counts = np.unique(np.asarray(packets.pts, np.int64), return_counts=True)
    position = np.cumsum(counts) - 1          # presentation index of each distinct stamp's last frame
    rank = {int(v): int(k) for v, k, c in zip(values, position, counts) if c == 1}
    return sorted((rank[p], p) for p, key in zip(packets.pts, packets.keys) if key and p in rank)


def _last_duration(packets: _Packets, tb, frame_pts: np.ndarray, fps: float) -> float:
    """Display duration of the last frame: its packet's duration, else the recent frame spacing."""
    stamped = [(p, d) for p, d in zip(packets.pts, packets.durations) if p is not None]
    last = max(stamped)[1] if stamped else 0
    if last > 0:
        return float(last * tb)
    n = len(frame_pts)
    if n > 1:
        return float(np.median(np.diff(frame_pts[-min(n, 9):])))
    return 1.0 / fps


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
