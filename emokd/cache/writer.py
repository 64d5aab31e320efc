"""Writing the per-frame arrays of one shard: sized up front, chunked along rows, buffered per chunk.

One task writes one shard's arrays, so no chunk is ever shared between writers. `RowWriter` buffers
rows per chunk and sends a chunk to the store once every row of it has been written, so that
batches smaller than a chunk never cost a read-modify-write of the chunk (and a shard of stills,
written one item at a time, reaches the store as one write per chunk). The commit marker itself is
written by `emokd.cache.shard.ShardWriter`, last.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np
import zarr

from emokd.errors import CacheError

CHUNK_TARGET_BYTES = 4 * 1024 * 1024
MIN_CHUNK_ROWS = 64
STATUS_WRITING = "writing"
STATUS_COMPLETE = "complete"
STATUS_FAILED = "failed"


def now_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def chunk_rows(n_rows: int, row_bytes: int) -> int:
    """Rows per chunk: at most about CHUNK_TARGET_BYTES per chunk, never more than the array, and
    the rows spread evenly over that many chunks: Zarr stores the last chunk whole, so a 5,000-frame
    video in chunks of 4,096 rows would take 8,192 rows on disk (2,500 rows each: 5,000)."""
    rows = max(MIN_CHUNK_ROWS, CHUNK_TARGET_BYTES // max(1, row_bytes))
    if n_rows <= rows:
        return max(1, n_rows)
    chunks = -(-n_rows // rows)
    return -(-n_rows // chunks)


def fill_value_for(dtype: np.dtype):
    """NaN for floats (a lost chunk then shows up in `verify`), False for bool, -1 for ints."""
    if dtype.kind == "f":
        return np.nan
    if dtype.kind == "b":
        return False
    if dtype.kind in "iu":
        return -1 if dtype.kind == "i" else 0
    raise CacheError(f"unsupported cache array dtype {dtype}")


def create_frame_array(group: zarr.Group, name: str, n_rows: int, dim: int | None, dtype,
                       dim_name: str | None = None, attributes: dict | None = None) -> zarr.Array:
    """An uncompressed (n_rows,) or (n_rows, dim) array with named dimensions (for xarray)."""
    dtype = np.dtype(dtype)
    shape = (n_rows,) if dim is None else (n_rows, int(dim))
    row_bytes = dtype.itemsize * (1 if dim is None else int(dim))
    chunks = (chunk_rows(n_rows, row_bytes),) + shape[1:]
    dims = ("frame",) if dim is None else ("frame", dim_name or f"{name}_dim")
    return group.create_array(name, shape=shape, chunks=chunks, dtype=dtype, compressors=None,
                              fill_value=fill_value_for(dtype), dimension_names=dims,
                              attributes=attributes)


class RowWriter:
    """Fills rows [0, n_rows) of some arrays of one group; `flush()` sends what is buffered.

    `feature_names` are refused non-finite values (NaN/inf, or beyond the float16 range). Error
    messages say `where` and rows relative to `offset` (an item's first row), so they name the item.
    Not thread-safe.
    """

    def __init__(self, arrays: dict[str, zarr.Array], n_rows: int, feature_names: set[str]):
        self.n_rows = n_rows
        self._arrays = arrays
        self._feature_names = feature_names
        self._written = {name: np.zeros(n_rows, dtype=bool) for name in arrays}
        self._buffers: dict[tuple[str, int], np.ndarray] = {}
        self._flushed: dict[str, set[int]] = {name: set() for name in arrays}

    @property
    def names(self) -> list[str]:
        return list(self._arrays)

    def array(self, name: str) -> zarr.Array:
        return self._arrays[name]

    def write(self, name: str, start: int, values, where: str = "", offset: int = 0) -> None:
        """Rows [start, start + len(values)) of array `name` (rows of the whole group)."""
        array = self._arrays[name]
        values = np.asarray(values)
        if values.shape[1:] != array.shape[1:]:
            raise CacheError(f"{where}, array {name!r}: rows of shape {values.shape[1:]}, expected "
                             f"{array.shape[1:]}")
        if array.dtype.kind == "b" and values.dtype.kind != "b":
            raise CacheError(f"{where}, array {name!r}: expected booleans, got {values.dtype}")
        with np.errstate(over="ignore", invalid="ignore"):  # overflow becomes inf, refused below
            values = values.astype(array.dtype, copy=False)
        if name in self._feature_names and not np.isfinite(values).all():
            bad = start + int(np.flatnonzero(~np.isfinite(values).reshape(len(values), -1).all(axis=1))[0])
            raise CacheError(f"{where}, array {name!r}: non-finite value (NaN/inf, or beyond the float16 "
                             f"range) at frame {bad - offset}")
        if not len(values):
            return
        self._written[name][start:start + len(values)] = True
        self._buffer_rows(name, start, values)

    def fill(self, lo: int, hi: int) -> None:
        """Rows [lo, hi) of every array not yet written get zeros / False (a failed item's rows)."""
        for name, array in self._arrays.items():
            missing = np.flatnonzero(~self._written[name][lo:hi]) + lo
            for row in _runs(missing):
                self.write(name, row[0], np.zeros((row[1] - row[0],) + array.shape[1:], array.dtype))

    def _buffer_rows(self, name: str, start: int, values: np.ndarray) -> None:
        array = self._arrays[name]
        rows = array.chunks[0]
        stop = start + len(values)
        for chunk in range(start // rows, (stop - 1) // rows + 1):
            lo, hi = chunk * rows, min((chunk + 1) * rows, self.n_rows)
            part = values[max(lo, start) - start:min(hi, stop) - start]
            if chunk in self._flushed[name]:  # rewriting rows already sent: write them through
                array[max(lo, start):min(hi, stop)] = part
                continue
            buffer = self._buffers.get((name, chunk))
            if buffer is None:
                buffer = self._buffers[(name, chunk)] = np.empty((hi - lo,) + array.shape[1:], array.dtype)
            buffer[max(lo, start) - lo:min(hi, stop) - lo] = part
            if self._written[name][lo:hi].all():
                self._flush_chunk(name, chunk)

    def _flush_chunk(self, name: str, chunk: int) -> None:
        array = self._arrays[name]
        buffer = self._buffers.pop((name, chunk))
        lo = chunk * array.chunks[0]
        array[lo:lo + len(buffer)] = buffer
        self._flushed[name].add(chunk)

    def missing(self, lo: int = 0, hi: int | None = None) -> dict[str, np.ndarray]:
        """Array name -> rows in [lo, hi) never written (only arrays with some)."""
        hi = self.n_rows if hi is None else hi
        out = {}
        for name, written in self._written.items():
            rows = np.flatnonzero(~written[lo:hi])
            if len(rows):
                out[name] = rows + lo
        return out

    def flush(self) -> None:
        for name, chunk in list(self._buffers):
            self._flush_chunk(name, chunk)


def _runs(rows: np.ndarray) -> list[tuple[int, int]]:
    """Sorted row numbers -> [(start, stop), ...] of consecutive runs."""
    if not len(rows):
        return []
    breaks = np.flatnonzero(np.diff(rows) != 1)
    starts = np.concatenate([[rows[0]], rows[breaks + 1]])
    stops = np.concatenate([rows[breaks] + 1, [rows[-1] + 1]])
    return list(zip(starts.tolist(), stops.tolist()))


def describe_rows(rows: np.ndarray, total: int) -> str:
    """"frames 6..9 (4 of 10)"."""
    return f"frames {rows[0]}..{rows[-1]} ({len(rows)} of {total})"
