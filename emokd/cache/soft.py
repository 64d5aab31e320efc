"""Teacher soft labels, one set per teacher run, reused by every student.

soft/<run key>/                  attrs run, created, status ("complete" once `finish_soft_run`) and
                                 what the trainer records (checkpoint, epoch, ...)
shards/<key>/soft/<run key>/     the teacher's arrays over the shard's rows (first dimension R;
                                 NaN on rows of failed items), attrs run, ids, status ("complete"
                                 written last) and the writer's attrs (checkpoint sha256)
A reader sees a shard's soft labels only once their own status is complete.
"""

from __future__ import annotations

import numpy as np
import zarr

from emokd.errors import CacheError
from emokd.cache.keys import decode_key, encode_key
from emokd.cache.location import remove_node
from emokd.cache.writer import STATUS_COMPLETE, STATUS_WRITING, create_frame_array, now_utc

GROUP = "soft"


def run_group(root: zarr.Group, run: str, create: bool) -> zarr.Group | None:
    soft = root.require_group(GROUP) if create else (root[GROUP] if GROUP in root else None)
    if soft is None:
        return None
    key = encode_key(run)
    if key in soft:
        return soft[key]
    if not create:
        return None
    return soft.create_group(key, attributes={"run": run, "created": now_utc(), "status": STATUS_WRITING})


def write_shard_soft(root: zarr.Group, shard: zarr.Group, run: str, ids: list[str], n_rows: int,
                     arrays: dict, attrs: dict | None = None) -> None:
    """Replace one shard's soft labels of one teacher run; every array has the shard's n_rows rows."""
    where = f"soft labels of run {run!r}, shard {shard.basename!r}"
    if not arrays:
        raise CacheError(f"{where}: no arrays given")
    values = {name: np.asarray(v) for name, v in arrays.items()}
    for name, value in values.items():
        if value.ndim not in (1, 2) or len(value) != n_rows:
            raise CacheError(f"{where}: array {name!r} has shape {value.shape}, expected ({n_rows},) or "
                             f"({n_rows}, k)")
    run_group(root, run, create=True)
    parent = shard.require_group(GROUP)
    key = encode_key(run)
    remove_node(parent, key)
    group = parent.create_group(key, attributes={**(attrs or {}), "run": run, "ids": list(ids),
                                                 "status": STATUS_WRITING})
    for name, value in values.items():
        width = value.shape[1] if value.ndim == 2 else None
        create_frame_array(group, name, n_rows, width, value.dtype)[...] = value
    group.update_attributes({"status": STATUS_COMPLETE, "written": now_utc()})


def claim_soft_run(root: zarr.Group, run: str, teacher_run: str) -> None:
    """Reserve the name `run` for `teacher_run` (before it trains); a name another teacher run holds
    is a CacheError, so two teachers never write into one soft-label set."""
    group = run_group(root, run, create=True)
    owner = group.attrs.get("teacher_run")
    if owner is not None and owner != teacher_run:
        raise CacheError(f"soft labels {run!r} belong to teacher run {owner}, not {teacher_run}; "
                         "give this teacher another soft_run name (or leave soft_run unset: the default is unique)")
    group.attrs["teacher_run"] = teacher_run


def finish_soft_run(root: zarr.Group, run: str, attrs: dict | None = None) -> None:
    """Mark a teacher run's soft labels complete (after every shard was written)."""
    group = run_group(root, run, create=False)
    if group is None:
        raise CacheError(f"no soft labels of teacher run {run!r} in the cache")
    group.update_attributes({**(attrs or {}), "status": STATUS_COMPLETE, "completed": now_utc()})


def shard_soft_group(shard: zarr.Group, run: str) -> zarr.Group | None:
    """The complete soft labels of `run` in one shard, or None."""
    key = encode_key(run)
    if GROUP not in shard or key not in shard[GROUP]:
        return None
    group = shard[GROUP][key]
    return group if group.attrs.get("status") == STATUS_COMPLETE else None


def read_shard_soft(shard: zarr.Group, run: str) -> dict[str, np.ndarray] | None:
    group = shard_soft_group(shard, run)
    return None if group is None else {name: array[...] for name, array in group.arrays()}


def soft_run_attrs(root: zarr.Group, run: str) -> dict:
    """Attributes of a teacher run's soft labels (e.g. which checkpoint made them); {} when absent."""
    group = run_group(root, run, create=False)
    return {} if group is None else dict(group.attrs)


def soft_runs(root: zarr.Group, complete_only: bool = False) -> list[str]:
    """Teacher runs with soft labels (all of them, or only those marked by `finish_soft_run`)."""
    if GROUP not in root:
        return []
    runs = []
    for key, group in root[GROUP].groups():
        if complete_only and group.attrs.get("status") != STATUS_COMPLETE:
            continue
        runs.append(group.attrs.get("run", decode_key(key)))
    return sorted(runs)
