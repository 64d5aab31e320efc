"""Video frames in order, each decoded once: decord (the fastest decoder measured, see
docs/decisions.md), PyAV as fallback.

decord rejects some frame sizes (a buffer-size check fails on e.g. 48-pixel-wide output) and some
streams; from the first batch it cannot decode, the rest of the video is decoded with PyAV
instead, which follows the same presentation order and edit lists as
`emokd.index.probe.probe_video`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from emokd.errors import DataError

log = logging.getLogger(__name__)


def scaled_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(w, h) with the short side `short_side` and the aspect kept (even sizes, as scalers want)."""
    if width >= height:
        return max(2 * round(width * short_side / height / 2), short_side), short_side
    return short_side, max(2 * round(height * short_side / width / 2), short_side)


def _pyav_batches(path: Path, n_frames: int, batch_size: int, first: int,
                  size: tuple[int, int] | None) -> Iterator[tuple[int, np.ndarray]]:
    scale = {"width": size[0], "height": size[1]} if size else {}
    buffer: list[np.ndarray] = []
    k = 0
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(container.streams.video[0]):
                if k >= n_frames:
                    break
                if k >= first:
                    buffer.append(frame.reformat(format="rgb24", **scale).to_ndarray())
                    if len(buffer) == batch_size:
                        yield k + 1 - batch_size, np.stack(buffer)
                        buffer = []
                k += 1
    except av.error.FFmpegError as exc:
        raise DataError(f"{path}: cannot decode frame {k} ({exc})") from exc
    if buffer:
        yield k - len(buffer), np.stack(buffer)


def decode_batches(path: Path, n_frames: int, batch_size: int,
                   size: tuple[int, int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(first index, uint8 (B, H, W, 3)) batches of frames 0 .. n_frames - 1; `size` (w, h) makes the
    decoder scale the frames (cheaper than decoding at full size and resizing)."""
    import decord

    scale = {"width": size[0], "height": size[1]} if size else {}
    try:
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1, **scale)
    except (decord.DECORDError, RuntimeError) as exc:
        log.warning("%s: decord cannot open the video (%s); decoding with PyAV", path, exc)
        yield from _pyav_batches(path, n_frames, batch_size, 0, size)
        return
    n_reader = len(reader)
    if n_reader != n_frames:
        log.warning("%s: decord counts %d frames, the container's packets %d; using %d",
                    path, n_reader, n_frames, min(n_reader, n_frames))
    n = min(n_reader, n_frames)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        try:
            frames = reader.get_batch(list(range(start, stop))).asnumpy()
        except (decord.DECORDError, RuntimeError) as exc:
            log.warning("%s: decord failed on frames %d-%d (%s); decoding the rest with PyAV",
                        path, start, stop - 1, str(exc).splitlines()[0][:200])
            del reader
            yield from _pyav_batches(path, n, batch_size, start, size)
            return
        yield start, frames
