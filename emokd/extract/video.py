"""Video frames in order, each decoded once, as a player shows them.

Two decoders (`ExtractConfig.video_decoder`; figures in docs/benchmarks.md, the decoders' section):

- "pyav" (the default): the container's own decode (FFmpeg through PyAV), one frame at a time,
  converted by one scaler on one thread (`verify.rgb_converter`). It is the reference the other
  is checked against, its memory does not depend on the video's length, and it is no slower.
- "decord": its threaded decoder reads packets ahead whenever its frame queue is empty
  (`VideoReader::NextFrameImpl` pushes another packet after every empty pop) and decodes all of
  them, so while a slow consumer (encoders, the detector on a CPU) works, decoded frames pile up
  and the worker's memory grows with the video. It is also wrong on some files without saying so (MPEG-TS
  with B-frames: it drops the first GOP and repeats the last frame; display matrices: it returns
  garbled buffers). So, when it is asked for:
  - files known to misbehave go to PyAV directly: MPEG-TS with reordered frames, any video with
    a display matrix (rotation or mirroring), and any whose decord frame count differs from the
    container's;
  - on every other file the frames decord returns are compared with PyAV's decode at a few
    positions spread over the video, the first and the last frame included
    (`emokd.extract.verify`). A mismatch switches the video to PyAV; when it is found after rows
    were already handed out, `DecoderMismatch` tells the caller to start the video again;
  - from the first batch decord cannot decode, the rest of the video is decoded with PyAV.

Both decoders give the same pictures: square pixels (the decoder scales to
`Geometry.decode_size`), then the rotation and mirroring of
`emokd.index.geometry.Geometry.to_display`. Batches are sized by pixels (DECODE_BATCH_BYTES), so a
4K video holds a few frames at a time, not 64. `DecodeReport` says which decoder served the video
and, when decord was asked for and PyAV served it, why; the cache records it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from emokd.errors import DataError
from emokd.extract.config import VIDEO_DECODERS
from emokd.extract.verify import ReferenceFrames, rgb_converter
from emokd.index.geometry import Geometry
from emokd.index.probe import VideoInfo

log = logging.getLogger(__name__)

# decoded RGB bytes per batch: decord holds a batch twice (its buffer and the numpy copy)
DECODE_BATCH_BYTES = 48 * 1024 * 1024


class DecoderMismatch(Exception):
    """decord's frames differ from the container's decode after rows were handed out: the caller
    must decode the video again from frame 0 with decoder="pyav"."""


@dataclass
class DecodeReport:
    """Which decoder gave a video's frames, and why (recorded in the cache, said in the summary)."""

    decoder: str = ""            # "decord" or "pyav"
    reason: str = ""             # why PyAV served a video decord was asked for ("" otherwise)
    checked: list[int] = field(default_factory=list)   # frames compared between decord and PyAV
    mismatch: int | None = None  # the first frame where decord's picture was not the container's
    check_seconds: float = 0.0   # time the check took (reference decode + comparisons); not recorded

    def use_pyav(self, reason: str) -> None:
        self.decoder, self.reason = "pyav", reason

    def record(self) -> dict:
        return {"decoder": self.decoder, "reason": self.reason, "checked": list(self.checked),
                "mismatch": self.mismatch}


def scaled_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(w, h) with the short side `short_side` and the aspect kept (even sizes, as scalers want)."""
    if width >= height:
        return max(2 * round(width * short_side / height / 2), short_side), short_side
    return short_side, max(2 * round(height * short_side / width / 2), short_side)


def frames_per_batch(size: tuple[int, int], most: int) -> int:
    """Frames of (w, h) RGB that fit DECODE_BATCH_BYTES, between 1 and `most`."""
    return int(max(1, min(most, DECODE_BATCH_BYTES // max(1, size[0] * size[1] * 3))))


def known_bad_for_decord(info: VideoInfo) -> str | None:
    """Why decord must not decode this video (None: decord, verified)."""
    geometry = info.display_geometry
    if geometry.reorients:
        return f"display matrix (rotation {geometry.rotation}, mirrored {geometry.mirrored}): decord garbles it"
    if "mpegts" in info.container_format.split(",") and info.reordered:
        return "MPEG-TS with reordered frames (B-frames): decord drops the first GOP"
    return None


def _pyav_batches(path: Path, n_frames: int, batch_size: int, first: int, size: tuple[int, int] | None,
                  geometry: Geometry) -> Iterator[tuple[int, np.ndarray]]:
    rgb = rgb_converter(size)
    buffer: list[np.ndarray] = []
    k = 0
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(container.streams.video[0]):
                if k >= n_frames:
                    break
                if k >= first:
                    buffer.append(rgb(frame))
                    if len(buffer) == batch_size:
                        yield k + 1 - batch_size, geometry.to_display(np.stack(buffer))
                        buffer = []
                k += 1
    except av.error.FFmpegError as exc:
        raise DataError(f"{path}: cannot decode frame {k} ({exc})") from exc
    if buffer:
        yield k - len(buffer), geometry.to_display(np.stack(buffer))


def decode_batches(path: Path, info: VideoInfo, n_frames: int, batch_size: int,
                   size: tuple[int, int] | None = None, decoder: str = "pyav",
                   report: DecodeReport | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(first index, uint8 (B, H, W, 3)) batches of frames 0 .. n_frames - 1 as a player shows them.

    `size` (w, h) is the displayed size wanted (default: the full display size): the decoder
    scales to it, which is cheaper than decoding at full size and resizing. B is at most
    `batch_size` and at most what fits DECODE_BATCH_BYTES. `decoder`: "pyav", or "decord"
    (verified, PyAV where decord is known or found to be wrong; see the module docstring).
    `report` is filled in as decoding goes.
    """
    if decoder not in VIDEO_DECODERS:
        raise ValueError(f"decoder {decoder!r} is not one of {list(VIDEO_DECODERS)}")
    report = report if report is not None else DecodeReport()
    geometry = info.display_geometry
    dsize = geometry.decode_size(size)
    batch = frames_per_batch(dsize or geometry.stored, batch_size)
    reason = None if decoder == "pyav" else known_bad_for_decord(info)
    if decoder == "pyav" or reason is not None:
        report.decoder = "pyav"
        if reason is not None:
            report.use_pyav(reason)
            log.info("%s: decoding with PyAV: %s", path, reason)
        yield from _pyav_batches(path, n_frames, batch, 0, dsize, geometry)
        return
    yield from _decord_batches(path, info, n_frames, batch, dsize, geometry, report)


def _decord_batches(path: Path, info: VideoInfo, n_frames: int, batch: int, dsize, geometry: Geometry,
                    report: DecodeReport) -> Iterator[tuple[int, np.ndarray]]:
    import decord

    scale = {"width": dsize[0], "height": dsize[1]} if dsize else {}
    try:
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1, **scale)
    except (decord.DECORDError, RuntimeError) as exc:
        report.use_pyav(f"decord cannot open the video ({str(exc).splitlines()[0][:200]})")
        log.warning("%s: %s; decoding with PyAV", path, report.reason)
        yield from _pyav_batches(path, n_frames, batch, 0, dsize, geometry)
        return
    n_reader = len(reader)
    if n_reader != n_frames:
        del reader
        report.use_pyav(f"decord counts {n_reader} frames, the container {n_frames}")
        log.warning("%s: %s; decoding with PyAV", path, report.reason)
        yield from _pyav_batches(path, n_frames, batch, 0, dsize, geometry)
        return
    report.decoder = "decord"
    references = ReferenceFrames(path, info, n_frames, dsize)
    report.checked = references.positions
    handed_out = False
    for start in range(0, n_frames, batch):
        stop = min(start + batch, n_frames)
        try:
            frames = reader.get_batch(list(range(start, stop))).asnumpy()
        except (decord.DECORDError, RuntimeError) as exc:
            report.use_pyav(f"decord failed on frames {start}-{stop - 1} ({str(exc).splitlines()[0][:200]})")
            log.warning("%s: %s; decoding the rest with PyAV", path, report.reason)
            del reader
            yield from _pyav_batches(path, n_frames, batch, start, dsize, geometry)
            return
        wrong = references.first_mismatch(start, frames)
        report.check_seconds = references.seconds
        if wrong is not None:
            report.mismatch = wrong
            report.use_pyav(f"decord's frame {wrong} is not the container's frame {wrong}")
            del reader
            if handed_out:
                log.warning("%s: %s; the video is decoded again with PyAV", path, report.reason)
                raise DecoderMismatch(f"{path}: {report.reason}")
            log.warning("%s: %s; decoding with PyAV", path, report.reason)
            yield from _pyav_batches(path, n_frames, batch, 0, dsize, geometry)
            return
        handed_out = True
        yield start, geometry.to_display(frames)
