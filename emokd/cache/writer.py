"""Writing one video's arrays: sized up front, chunked along frames, committed last.

One task writes one video group, so no chunk is ever shared between writers. The
writer buffers rows per chunk and sends a chunk to the store once every row of it has been
written, so that batches smaller than a chunk never cost a read-modify-write of the chunk. The
group's `status` is "writing" until `commit()`, which first checks that every row of every array
was written, then sets `status: "complete"`; readers ignore any other status.
"""

from __future__ import annotations

import datetime as _dt
import json

import numpy as np
import zarr

from emokd.errors import CacheError

CHUNK_TARGET_BYTES = 4 * 1024 * 1024
MIN_CHUNK_ROWS = 64
STATUS_WRITING = "writing"
STATUS_COMPLETE = "complete"
RESERVED_ATTRS = ("video_id", "n_frames", "status", "started", "completed", "writer")


def now_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def chunk_rows(n_frames: int, row_bytes: int) -> int:
    """Frames per chunk: about CHUNK_TARGET_BYTES per chunk, never more than the video."""
    rows = max(MIN_CHUNK_ROWS, CHUNK_TARGET_BYTES // max(1, row_bytes))
    return max(1, min(n_frames, rows))


def fill_value_for(dtype: np.dtype):
    """NaN for floats (a lost chunk then shows up in `verify`), False for bool, -1 for ints."""
    if dtype.kind == "f":
        return np.nan
    if dtype.kind == "b":
        return False
    if dtype.kind in "iu":
        return -1 if dtype.kind == "i" else 0
    raise CacheError(f"unsupported cache array dtype {dtype}")


def create_frame_array(group: zarr.Group, name: str, n_frames: int, dim: int | None, dtype,
                       dim_name: str | None = None, attributes: dict | None = None) -> zarr.Array:
    """An uncompressed (n_frames,) or (n_frames, dim) array with named dimensions (for xarray)."""
    dtype = np.dtype(dtype)
    shape = (n_frames,) if dim is None else (n_frames, int(dim))
    row_bytes = dtype.itemsize * (1 if dim is None else int(dim))
    chunks = (chunk_rows(n_frames, row_bytes),) + shape[1:]
    dims = ("frame",) if dim is None else ("frame", dim_name or f"{name}_dim")
    return group.create_array(name, shape=shape, chunks=chunks, dtype=dtype, compressors=None,
                              fill_value=fill_value_for(dtype), dimension_names=dims,
                              attributes=attributes)


class VideoWriter:
    """Fills the arrays of one video group; `commit()` marks it complete. Not thread-safe."""

    def __init__(self, group: zarr.Group, video_id: str, n_frames: int, names: list[str],
                 feature_names: set[str], on_commit=None):
        self.group = group
        self.video_id = video_id
        self.n_frames = n_frames
        self._feature_names = feature_names
        self._arrays = {name: group[name] for name in names}
        self._written = {name: np.zeros(n_frames, dtype=bool) for name in names}
        self._buffers: dict[tuple[str, int], np.ndarray] = {}
        self._flushed: dict[str, set[int]] = {name: set() for name in names}
        self._on_commit = on_commit
        self.token = group.attrs.get("writer")
        self.committed = False

    def write(self, name: str, start: int, values) -> None:
        """Rows [start, start + len(values)) of array `name`."""
        if self.committed:
            raise CacheError(f"video {self.video_id!r}: write to {name!r} after commit")
        if name not in self._arrays:
            raise CacheError(f"video {self.video_id!r}: no array {name!r} (declared: {sorted(self._arrays)})")
        array = self._arrays[name]
        values = np.asarray(values)
        if values.shape[1:] != array.shape[1:]:
            raise CacheError(f"video {self.video_id!r}, array {name!r}: rows of shape {values.shape[1:]}, "
                             f"expected {array.shape[1:]}")
        stop = start + len(values)
        if start < 0 or stop > self.n_frames:
            raise CacheError(f"video {self.video_id!r}, array {name!r}: rows {start}:{stop} outside "
                             f"0:{self.n_frames}")
        if array.dtype.kind == "b" and values.dtype.kind != "b":
            raise CacheError(f"video {self.video_id!r}, array {name!r}: expected booleans, got {values.dtype}")
        with np.errstate(over="ignore", invalid="ignore"):  # overflow becomes inf, refused below
            values = values.astype(array.dtype, copy=False)
        if name in self._feature_names and not np.isfinite(values).all():
            bad = start + int(np.flatnonzero(~np.isfinite(values).reshape(len(values), -1).all(axis=1))[0])
            raise CacheError(f"video {self.video_id!r}, array {name!r}: non-finite value (NaN/inf, or beyond "
                             f"the float16 range) at frame {bad}")
        self._written[name][start:stop] = True
        self._buffer_rows(name, start, values)

    def _buffer_rows(self, name: str, start: int, values: np.ndarray) -> None:
        array = self._arrays[name]
        rows = array.chunks[0]
        stop = start + len(values)
        for chunk in range(start // rows, (stop - 1) // rows + 1):
            lo, hi = chunk * rows, min((chunk + 1) * rows, self.n_frames)
            part = values[max(lo, start) - start:min(hi, stop) - start]
            if chunk in self._flushed[name]:  # rewriting rows already sent: write them through
                array[max(lo, start):min(hi, stop)] = part
                continue
            buffer = self._buffers.get((name, chunk))
            if buffer is None:
                buffer = self._buffers[(name, chunk)] = np.empty((hi - lo,) + array.shape[1:], array.dtype)
            buffer[max(lo, start) - lo:min(hi, stop) - lo] = part
            if self._written[name][lo:hi].all():
                self._flush(name, chunk)

    def _flush(self, name: str, chunk: int) -> None:
        array = self._arrays[name]
        rows = array.chunks[0]
        buffer = self._buffers.pop((name, chunk))
        lo = chunk * rows
        array[lo:lo + len(buffer)] = buffer
        self._flushed[name].add(chunk)

    def set_attrs(self, attrs: dict) -> None:
        """Add to the video's attributes what was learnt while writing (reserved names are kept)."""
        if self.committed:
            raise CacheError(f"video {self.video_id!r}: attributes set after commit")
        values = json.loads(json.dumps(attrs, default=str))
        self.group.attrs.update({k: v for k, v in values.items() if k not in RESERVED_ATTRS})

    def missing_rows(self) -> dict[str, str]:
        """Arrays with rows never written, as "first..last (count)" text."""
        out = {}
        for name, written in self._written.items():
            if not written.all():
                missing = np.flatnonzero(~written)
                out[name] = f"frames {missing[0]}..{missing[-1]} ({len(missing)} of {self.n_frames})"
        return out

    def commit(self) -> None:
        """Check that every row was written, store the last chunks, then mark the video complete."""
        if self.committed:
            return
        missing = self.missing_rows()
        if missing:
            text = "; ".join(f"{name}: {rows}" for name, rows in missing.items())
            raise CacheError(f"video {self.video_id!r}: cannot commit, rows never written: {text}")
        for name, chunk in list(self._buffers):
            self._flush(name, chunk)
        current = zarr.open_group(store=self.group.store, path=self.group.path, mode="r",
                                  zarr_format=3).attrs.get("writer")
        if current != self.token:
            raise CacheError(f"video {self.video_id!r}: another writer restarted this video while this one "
                             "was writing (a task run twice?); not marking it complete")
        self.group.attrs.update({"status": STATUS_COMPLETE, "completed": now_utc()})
        self.committed = True
        if self._on_commit is not None:
            self._on_commit(self.video_id)
