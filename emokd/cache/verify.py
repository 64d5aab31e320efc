"""`emokd cache verify`: every defect of a cache, one line each.

Checked: incomplete videos; per video, every array of schema.py (shape and dtype, from the cache's
encoder records), NaN/inf in features, pts finite and non-decreasing, the rows of any extra array;
labels (shapes, dtypes, value ranges, split, orphans); soft labels (complete, n_frames rows, finite).
`video_defects` is the cheap part that extraction runs before skipping a complete video;
`stale_sources` (`verify --sources`) lists videos whose source file changed since extraction.
"""

from __future__ import annotations

import numpy as np
import zarr

from emokd.cache.keys import decode_key
from emokd.cache.labels import GROUP as LABELS, SPLITS, check_label_values
from emokd.cache.schema import ArraySpec, video_arrays
from emokd.cache.soft import GROUP as SOFT
from emokd.cache.source_identity import source_change
from emokd.cache.writer import STATUS_COMPLETE


def _non_finite(array: zarr.Array) -> tuple[int, int | None]:
    """(count of non-finite values, first frame with one), reading one chunk of rows at a time."""
    count, first = 0, None
    rows = array.chunks[0]
    for lo in range(0, array.shape[0], rows):
        block = array[lo:lo + rows]
        bad = ~np.isfinite(block.reshape(len(block), -1)).all(axis=1)
        if bad.any():
            count += int((~np.isfinite(block)).sum())
            first = lo + int(np.flatnonzero(bad)[0]) if first is None else first
    return count, first


def _check_array(where: str, present: dict[str, zarr.Array], name: str, shape: tuple, dtype: np.dtype) -> list[str]:
    """`present`: the group's arrays by name (`dict(group.arrays())`: one listing, not one call per array)."""
    if name not in present:
        return [f"{where}: array {name!r} is missing"]
    array = present[name]
    problems = []
    if tuple(array.shape) != shape:
        problems.append(f"{where}: array {name!r} has shape {tuple(array.shape)}, expected {shape}")
    if array.dtype != dtype:
        problems.append(f"{where}: array {name!r} has dtype {array.dtype}, expected {dtype}")
    return problems


def video_defects(vid: str, group: zarr.Group, arrays: dict[str, ArraySpec]) -> list[str]:
    """The cheap check of a complete video (metadata and chunk listings, no values read): every
    array of schema.py exists with its shape and dtype, and float arrays (whose fill value NaN no
    written row can hold) have every chunk stored. What a complete video that lost files shows."""
    where = f"video {vid!r}"
    n = int(group.attrs.get("n_frames", -1))
    present = dict(group.arrays())
    problems = []
    for name, spec in arrays.items():
        found = _check_array(where, present, name, spec.shape(n), spec.dtype)
        problems += found
        if not found and spec.dtype.kind == "f":
            array = present[name]
            if array.nchunks_initialized < array.nchunks:
                problems.append(f"{where}: array {name!r} lost {array.nchunks - array.nchunks_initialized} "
                                f"of its {array.nchunks} chunk files")
    return problems


def _check_video(vid: str, group: zarr.Group, arrays: dict[str, ArraySpec]) -> list[str]:
    where = f"video {vid!r}"
    n = int(group.attrs.get("n_frames", -1))
    problems = video_defects(vid, group, arrays)
    damaged = {name for name in arrays if any(f"array {name!r}" in p for p in problems)}
    for name, spec in arrays.items():
        if spec.is_feature and name not in damaged and group[name].dtype.kind == "f":
            count, first = _non_finite(group[name])
            if count:
                problems.append(f"{where}: array {name!r} has {count} NaN/inf value(s), first at frame {first}")
    if "pts" in group and group["pts"].shape == (n,):
        pts = group["pts"][...]
        if not np.isfinite(pts).all():
            problems.append(f"{where}: pts has NaN/inf at frame {int(np.flatnonzero(~np.isfinite(pts))[0])}")
        elif n > 1 and (np.diff(pts) < 0).any():
            problems.append(f"{where}: pts decreases at frame {int(np.flatnonzero(np.diff(pts) < 0)[0]) + 1}")
    for name, array in group.arrays():
        if name not in arrays and array.shape[:1] != (n,):
            problems.append(f"{where}: array {name!r} has {array.shape[0]} rows, the video has {n} frames")
    return problems


def _check_labels(vid: str, group: zarr.Group, n_frames: int | None) -> list[str]:
    where = f"labels of {vid!r}"
    if group.attrs.get("status") != STATUS_COMPLETE:
        return [f"{where}: incomplete (an interrupted relabel); run `emokd cache relabel` again"]
    if n_frames is None:
        return [f"{where}: the video is not in the cache (orphan labels)"]
    problems = []
    present = dict(group.arrays())
    for name, shape, dtype in (("va", (n_frames, 2), np.float32), ("expr", (n_frames,), np.int8),
                               ("au", (n_frames, 12), np.int8)):
        problems += _check_array(where, present, name, shape, np.dtype(dtype))
    if group.attrs.get("split") not in SPLITS:
        problems.append(f"{where}: split {group.attrs.get('split')!r} is not one of {SPLITS}")
    if group.attrs.get("splits") is None:
        problems.append(f"{where}: written before per-task splits; run `emokd cache relabel DATASET CACHE`")
    if "mtl" in group:
        problems += _check_array(where, present, "mtl", (n_frames,), np.dtype(bool))
    if not problems:
        problems += [f"{where}: {p}" for p in check_label_values(group["va"][...], group["expr"][...],
                                                                  group["au"][...])]
    return problems


def _check_soft(root: zarr.Group, frames: dict[str, int]) -> list[str]:
    problems = []
    for run_key, run in root[SOFT].groups():
        for key, group in run.groups():
            vid = group.attrs.get("video_id", decode_key(key))
            where = f"soft labels of run {run.attrs.get('run', decode_key(run_key))!r}, video {vid!r}"
            if group.attrs.get("status") != STATUS_COMPLETE:
                problems.append(f"{where}: incomplete")
                continue
            if vid not in frames:
                problems.append(f"{where}: the video is not in the cache")
                continue
            for name, array in group.arrays():
                if array.shape[0] != frames[vid]:
                    problems.append(f"{where}: array {name!r} has {array.shape[0]} rows, expected {frames[vid]}")
                elif array.dtype.kind == "f" and _non_finite(array)[0]:
                    problems.append(f"{where}: array {name!r} has NaN/inf values")
    return problems


def verify_cache(cache) -> list[str]:
    problems = []
    arrays = video_arrays(cache.encoders)
    frames: dict[str, int] = {}
    unfinished: set[str] = set()
    videos = cache.root["videos"]
    for key, group in videos.groups():
        vid = group.attrs.get("video_id", decode_key(key))
        status = group.attrs.get("status")
        if status != STATUS_COMPLETE:
            problems.append(f"video {vid!r}: incomplete (status {status!r}); re-run extract-features to redo it")
            unfinished.add(vid)
            continue
        frames[vid] = int(group.attrs.get("n_frames", -1))
        problems += _check_video(vid, group, arrays)
    if LABELS in cache.root:
        for key, group in cache.root[LABELS].groups():
            vid = group.attrs.get("video_id", decode_key(key))
            if vid not in unfinished:  # an unfinished video's labels are redone with it
                problems += _check_labels(vid, group, frames.get(vid))
    if SOFT in cache.root:
        problems += _check_soft(cache.root, frames)
    return problems


def stale_sources(cache) -> list[str]:
    """One line per complete video whose recorded source (a file or an object URL) changed or is
    gone since extraction."""
    problems = []
    for vid, attrs in cache.video_records().items():
        source = attrs.get("source") or {}
        where = source.get("path") or source.get("url")
        if attrs.get("status") == STATUS_COMPLETE and where:
            change = source_change(source, where, cache.storage_options)
            if change:
                problems.append(f"video {vid!r}: stale: {change}; re-run extract-features to redo it")
    return problems
