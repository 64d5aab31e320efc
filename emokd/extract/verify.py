"""The container's own decode (PyAV) of a few frames, to check decord's frames against.

Positions: the first frame, the last frame, and up to three keyframes spread over the video.
A keyframe's reference costs a seek and one decoded frame; the last frame's costs the decode of
its GOP (skipped when that GOP is longer than MAX_REFERENCE_DECODE frames, and then not in
`positions`). Frames are compared as 32 x 32 grey thumbnails (box filter): decord and PyAV give
the same picture to within 0.35 grey levels on average (measured on 8- and 10-bit, limited- and
full-range, scaled and unscaled decodes), while neighbouring frames of a moving picture differ by
far more; a mean difference above MATCH_LEVELS is a mismatch. A still picture cannot reveal a
shift, and a shift cannot harm it much either.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

import av
import numpy as np
from av.video.reformatter import VideoReformatter
from PIL import Image

from emokd.index.probe import VideoInfo

log = logging.getLogger(__name__)

MATCH_LEVELS = 1.0           # mean absolute grey-level difference of two thumbnails
THUMB_SIZE = 32
MIDDLE_CHECKS = 3
MAX_REFERENCE_DECODE = 600   # frames decoded from a keyframe to reach the last frame


def rgb_converter(size: tuple[int, int] | None) -> Callable[[av.VideoFrame], np.ndarray]:
    """PyAV frame -> uint8 RGB (h, w, 3), scaled to `size` (w, h) or at its own size (None).

    One scaler on one thread for all the frames of a video: `frame.reformat` asks swscale for a
    thread per CPU, set up anew for every frame, which took 3x the CPU time of the decode itself
    at 320x240 for the same pixels (docs/benchmarks.md, the decoders' section).
    """
    reformatter = VideoReformatter()
    scale = {"width": size[0], "height": size[1]} if size else {}

    def convert(frame: av.VideoFrame) -> np.ndarray:
        return reformatter.reformat(frame, format="rgb24", threads=1, **scale).to_ndarray()

    return convert


def thumbnail(frame: np.ndarray) -> np.ndarray:
    """float32 (32, 32) grey thumbnail of an RGB(A) uint8 frame."""
    grey = np.asarray(frame[..., :3], np.float32).mean(axis=2)
    return np.asarray(Image.fromarray(grey, mode="F").resize((THUMB_SIZE, THUMB_SIZE), Image.BOX))


def check_positions(info: VideoInfo, n_frames: int) -> tuple[list[int], dict[int, int], int | None]:
    """(frames to check, {frame: keyframe pts to seek to}, pts of the keyframe opening the last GOP)."""
    keys = [(k, pts) for k, pts in info.keyframes if 0 < k < n_frames]
    seek: dict[int, int] = {}
    for q in range(1, MIDDLE_CHECKS + 1):
        if keys:
            k, pts = min(keys, key=lambda kp: abs(kp[0] - q * n_frames / (MIDDLE_CHECKS + 1)))
            seek[k] = pts
    last_key = max(((k, pts) for k, pts in info.keyframes if k < n_frames), default=None)
    last_gop = None
    if n_frames > 1 and last_key is not None and n_frames - 1 - last_key[0] <= MAX_REFERENCE_DECODE:
        last_gop = last_key[1]
    positions = sorted({0, *seek, *([n_frames - 1] if last_gop is not None else [])})
    return positions, seek, last_gop


class ReferenceFrames:
    """Thumbnails of the container's own decode at `positions`, computed on first use."""

    def __init__(self, path: Path, info: VideoInfo, n_frames: int, size: tuple[int, int] | None) -> None:
        self.path, self.n_frames = path, n_frames
        self.positions, self._seek, self._last_gop = check_positions(info, n_frames)
        self._rgb = rgb_converter(size)
        self._thumbs: dict[int, np.ndarray] | None = None
        self.seconds = 0.0       # spent on the check: the reference decode and the comparisons

    def _thumb(self, frame: av.VideoFrame) -> np.ndarray:
        return thumbnail(self._rgb(frame))

    def _compute(self) -> dict[int, np.ndarray]:
        thumbs: dict[int, np.ndarray] = {}
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                first = next(container.decode(stream), None)
                if first is not None:
                    thumbs[0] = self._thumb(first)
                for k, pts in sorted(self._seek.items()):
                    found = self._at(container, stream, pts)
                    if found is not None:
                        thumbs[k] = self._thumb(found)
                if self._last_gop is not None:
                    last = self._last(container, stream)
                    if last is not None:
                        thumbs[self.n_frames - 1] = self._thumb(last)
        except (av.error.FFmpegError, StopIteration) as exc:
            log.info("%s: reference decode for the decord check stopped (%s)", self.path, exc)
        self.positions[:] = sorted(thumbs)
        return thumbs

    @staticmethod
    def _at(container, stream, pts: int):
        """The decoded frame whose pts is `pts` (seeking to the keyframe), or None."""
        container.seek(pts, stream=stream, backward=True, any_frame=False)
        for n, frame in enumerate(container.decode(stream)):
            if frame.pts == pts:
                return frame
            if frame.pts is None or frame.pts > pts or n > MAX_REFERENCE_DECODE:
                return None
        return None

    def _last(self, container, stream):
        """The last frame in presentation order: decode the last GOP to the end."""
        container.seek(self._last_gop, stream=stream, backward=True, any_frame=False)
        last = None
        for frame in container.decode(stream):
            if frame.pts is not None and frame.pts >= self._last_gop and (last is None or frame.pts > last.pts):
                last = frame
        return last

    def first_mismatch(self, start: int, frames: np.ndarray) -> int | None:
        """The first checked frame in [start, start + len(frames)) whose picture is not the
        container's, or None."""
        wanted = [k for k in self.positions if start <= k < start + len(frames)]
        if not wanted:
            return None
        began = time.perf_counter()
        try:
            if self._thumbs is None:
                self._thumbs = self._compute()
            for k in wanted:
                if k not in self._thumbs:
                    continue
                difference = float(np.abs(thumbnail(frames[k - start]) - self._thumbs[k]).mean())
                if difference > MATCH_LEVELS:
                    log.info("%s: frame %d: decord and PyAV differ by %.1f grey levels", self.path, k, difference)
                    return k
            return None
        finally:
            self.seconds += time.perf_counter() - began
