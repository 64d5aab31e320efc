"""`emokd cache verify`: every defect of a cache, one line each.

Checked: incomplete shards and unreadable item tables; per complete shard, pts and every feature
set's arrays (shape and dtype from the set's record, the fingerprint they were written with, NaN/inf
in the features of complete items), pts finite and non-decreasing within each item; feature sets
not yet extracted in a shard; labels (complete, same items, shapes, dtypes, value ranges, splits);
soft labels (complete, the shard's rows, finite on complete items); items complete in two shards.
`shard_defects` is the cheap part that extraction runs before skipping a complete shard;
`stale_sources` (`verify --sources`) lists items whose source file changed since extraction.
"""

from __future__ import annotations

import numpy as np
import zarr

from emokd.constants import SPLIT_KEYS, SPLIT_VALUES
from emokd.cache.labels import GROUP as LABELS, LABEL_ARRAYS, SPLITS, check_label_values
from emokd.cache.schema import PTS, PTS_DTYPE, set_arrays
from emokd.cache.soft import GROUP as SOFT
from emokd.cache.source_identity import source_change
from emokd.cache.writer import STATUS_COMPLETE, STATUS_FAILED


def _bad_rows(array: zarr.Array, rows: np.ndarray) -> tuple[int, int | None]:
    """(count of non-finite values on `rows`, first such row), reading one chunk at a time."""
    count, first = 0, None
    step = array.chunks[0]
    for lo in range(0, array.shape[0], step):
        keep = rows[lo:lo + step]
        if not keep.any():
            continue
        block = array[lo:lo + step]
        bad = ~np.isfinite(block.reshape(len(block), -1)).all(axis=1) & keep
        if bad.any():
            count += int((~np.isfinite(block[bad])).sum())
            first = lo + int(np.flatnonzero(bad)[0]) if first is None else first
    return count, first


def _item_at(table, row: int) -> str:
    i = int(np.searchsorted(table.first, row, side="right") - 1)
    return f"item {table.ids[i]!r} frame {row - int(table.first[i])}"


def _check_array(where: str, group: zarr.Group, name: str, shape: tuple, dtype) -> list[str]:
    if name not in group:
        return [f"{where}: array {name!r} is missing"]
    array = group[name]
    problems = []
    if tuple(array.shape) != shape:
        problems.append(f"{where}: array {name!r} has shape {tuple(array.shape)}, expected {shape}")
    if array.dtype != np.dtype(dtype):
        problems.append(f"{where}: array {name!r} has dtype {array.dtype}, expected {np.dtype(dtype)}")
    return problems


def shard_defects(cache, state, group: zarr.Group) -> list[str]:
    """The cheap check of a complete shard (metadata and chunk listings, no values read): pts and the
    arrays of every set it was committed with or completed since exist with their shapes and
    dtypes, and float arrays (whose fill value NaN no written row can hold) have every chunk stored.
    What a shard that lost files shows."""
    where = f"shard {state.key!r}"
    n = state.table.n_rows
    specs = [(PTS, (n,), PTS_DTYPE)]
    written = set(state.attrs.get("sets") or ())      # the sets the shard was committed with
    for fs in cache.feature_sets:
        if state.set_complete(fs.name) or fs.name in written:
            specs += [(s.name, s.shape(n), s.dtype) for s in set_arrays(fs).values()]
    problems = []
    for name, shape, dtype in specs:
        found = _check_array(where, group, name, shape, dtype)
        problems += found
        if not found and np.dtype(dtype).kind == "f":
            array = group[name]
            if array.nchunks_initialized < array.nchunks:
                problems.append(f"{where}: array {name!r} lost {array.nchunks - array.nchunks_initialized} "
                                f"of its {array.nchunks} chunk files")
    return problems


def stale_sources(cache, index=None) -> list[str]:
    """One line per complete item whose recorded source (a file or an object URL) changed or is
    gone since extraction (of `index` when the caller has just read it)."""
    problems = []
    for item_id, record in cache.item_records(index).items():
        source = record.get("source") or {}
        where = source.get("path") or source.get("url")
        if record["status"] == STATUS_COMPLETE and where:
            change = source_change(source, where, cache.storage_options)
            if change:
                problems.append(f"item {item_id!r}: stale: {change}; re-run extract-features to redo it")
    return problems


def _check_shard(cache, state, group: zarr.Group) -> list[str]:
    where = f"shard {state.key!r}"
    table = state.table
    n = table.n_rows
    live = np.repeat([s == STATUS_COMPLETE for s in table.status], table.length)
    problems = shard_defects(cache, state, group)       # shapes, dtypes, lost chunk files
    damaged = {name for name in group.array_keys() if any(f"array {name!r}" in p for p in problems)}
    if PTS not in damaged and PTS in group:
        pts = group[PTS][...]
        for i, item_id in enumerate(table.ids):
            p = pts[table.first[i]:table.first[i] + table.length[i]]
            if table.status[i] != STATUS_COMPLETE:
                continue
            if not np.isfinite(p).all():
                problems.append(f"item {item_id!r}: pts has NaN/inf at frame {int(np.flatnonzero(~np.isfinite(p))[0])}")
            elif len(p) > 1 and (np.diff(p) < 0).any():
                problems.append(f"item {item_id!r}: pts decreases at frame {int(np.flatnonzero(np.diff(p) < 0)[0]) + 1}")
    written = set(state.attrs.get("sets") or ())
    for fs in cache.feature_sets:
        attrs = state.sets.get(fs.name)
        if attrs is None:
            if fs.name not in written:       # else shard_defects said its array is missing
                problems.append(f"{where}: feature set {fs.name!r} not extracted here yet (run extract-features "
                                "with it)")
            continue
        if attrs.get("status") != STATUS_COMPLETE:
            problems.append(f"{where}: feature set {fs.name!r} incomplete (an interrupted extraction); "
                            "re-run extract-features to redo it")
            continue
        if attrs.get("fingerprint") != fs.fingerprint:
            problems.append(f"{where}: feature set {fs.name!r} was written with fingerprint "
                            f"{str(attrs.get('fingerprint'))[:12]}, the cache's set has {fs.fingerprint[:12]}")
        if fs.name in damaged:
            continue
        failed = state.set_failed(fs.name)
        rows = live & ~np.repeat([i in failed for i in table.ids], table.length)
        count, first = _bad_rows(group[fs.name], rows)
        if count:
            problems.append(f"{where}: array {fs.name!r} has {count} NaN/inf value(s), first at "
                            f"{_item_at(table, first)}")
    return problems


def _check_labels(state, group: zarr.Group) -> list[str]:
    where = f"labels of shard {state.key!r}"
    if LABELS not in group:
        return [f"{where}: missing (run `emokd cache relabel`)"]
    labels = group[LABELS]
    if labels.attrs.get("status") != STATUS_COMPLETE:
        return [f"{where}: incomplete (an interrupted relabel); run `emokd cache relabel` again"]
    n = state.table.n_rows
    problems = []
    for name, (width, dtype, _) in LABEL_ARRAYS.items():
        problems += _check_array(where, labels, name, (n,) if width is None else (n, width), dtype)
    columns = labels.attrs.get("items", {})
    if columns.get("id") != state.table.ids:
        problems.append(f"{where}: its items differ from the shard's item table")
        return problems
    if columns.get("splits") is None:
        return problems + [f"{where}: written before per-task splits; run `emokd cache relabel DATASET CACHE`"]
    for item_id, split, splits in zip(columns["id"], columns.get("split", []), columns["splits"]):
        splits = splits or {}
        if split not in SPLITS or set(splits) != set(SPLIT_KEYS) or any(v not in SPLIT_VALUES for v in splits.values()):
            problems.append(f"{where}: item {item_id!r} has split {split!r} / splits {splits!r}; each must "
                            f"be one of {SPLIT_VALUES} for {list(SPLIT_KEYS)}")
    if not problems:
        problems += [f"{where}: {p}" for p in check_label_values(labels["va"][...], labels["expr"][...],
                                                                  labels["au"][...])]
    return problems


def _check_soft(state, group: zarr.Group) -> list[str]:
    if SOFT not in group:
        return []
    problems = []
    table = state.table
    live = np.repeat([s == STATUS_COMPLETE for s in table.status], table.length)
    for _key, run in group[SOFT].groups():
        where = f"soft labels of run {run.attrs.get('run')!r}, shard {state.key!r}"
        if run.attrs.get("status") != STATUS_COMPLETE:
            problems.append(f"{where}: incomplete")
            continue
        for name, array in run.arrays():
            if array.shape[0] != table.n_rows:
                problems.append(f"{where}: array {name!r} has {array.shape[0]} rows, expected {table.n_rows}")
            elif array.dtype.kind == "f" and _bad_rows(array, live)[0]:
                problems.append(f"{where}: array {name!r} has NaN/inf values")
    return problems


def verify_cache(cache) -> list[str]:
    cache.refresh()
    index = cache.index
    problems = []
    logged = set(cache.failures())
    for key, state in index.shards.items():
        if not state.complete:
            what = "no readable item table" if state.table is None and "items" in state.attrs else \
                f"status {state.status!r}"
            problems.append(f"shard {key!r}: incomplete ({what}); re-run extract-features to redo it")
            continue
        group = cache.shard_group(key)
        problems += _check_shard(cache, state, group)
        problems += _check_labels(state, group)
        problems += _check_soft(state, group)
        failed = [i for i, s in zip(state.table.ids, state.table.status) if s == STATUS_FAILED]
        if failed and not all(i in logged or i in index.locations for i in failed):
            problems.append(f"shard {key!r}: failed item(s) {failed[:3]} are not in the failure log")
    for item_id, key in index.duplicates:
        problems.append(f"item {item_id!r}: complete in shard {index.locations[item_id].shard!r} and again in "
                        f"{key!r} (two writers without the lock?); the first is read")
    return problems
