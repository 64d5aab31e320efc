"""Teacher soft labels, one set per teacher run, reused by every student.

soft/<run key>/                 attrs run, created, status ("complete" once `finish_soft_run`)
soft/<run key>/<video key>/     the teacher's per-frame arrays (first dimension n_frames),
                                attrs video_id, status ("complete" written last)
A reader sees a video's soft labels only once its own status is complete.
"""

from __future__ import annotations

import numpy as np
import zarr

from emokd.errors import CacheError
from emokd.cache.keys import decode_key, encode_key
from emokd.cache.location import remove_node
from emokd.cache.writer import STATUS_COMPLETE, STATUS_WRITING, create_frame_array, now_utc

GROUP = "soft"


def _run_group(root: zarr.Group, run: str, create: bool) -> zarr.Group | None:
    soft = root.require_group(GROUP) if create else (root[GROUP] if GROUP in root else None)
    if soft is None:
        return None
    key = encode_key(run)
    if key in soft:
        return soft[key]
    if not create:
        return None
    return soft.create_group(key, attributes={"run": run, "created": now_utc(), "status": STATUS_WRITING})


def write_soft(root: zarr.Group, run: str, video_id: str, n_frames: int, arrays: dict,
               attrs: dict | None = None) -> None:
    """Replace the soft labels of one video for one teacher run; every array has n_frames rows."""
    if not arrays:
        raise CacheError(f"soft labels of run {run!r}, video {video_id!r}: no arrays given")
    values = {name: np.asarray(v) for name, v in arrays.items()}
    for name, value in values.items():
        if value.ndim not in (1, 2) or len(value) != n_frames:
            raise CacheError(f"soft labels of run {run!r}, video {video_id!r}: array {name!r} has shape "
                             f"{value.shape}, expected ({n_frames},) or ({n_frames}, k)")
    group_run = _run_group(root, run, create=True)
    key = encode_key(video_id)
    remove_node(group_run, key)
    group = group_run.create_group(key, attributes={**(attrs or {}), "video_id": video_id,
                                                    "n_frames": n_frames, "status": STATUS_WRITING})
    for name, value in values.items():
        width = value.shape[1] if value.ndim == 2 else None
        create_frame_array(group, name, n_frames, width, value.dtype)[...] = value
    group.attrs.update({"status": STATUS_COMPLETE, "written": now_utc()})


def claim_soft_run(root: zarr.Group, run: str, teacher_run: str) -> None:
    """Reserve the name `run` for `teacher_run` (before it trains); a name another teacher run holds
    is a CacheError, so two teachers never write into one soft-label set."""
    group = _run_group(root, run, create=True)
    owner = group.attrs.get("teacher_run")
    if owner is not None and owner != teacher_run:
        raise CacheError(f"soft labels {run!r} belong to teacher run {owner}, not {teacher_run}; "
                         "give this teacher another soft_run name (or leave soft_run unset: the default is unique)")
    group.attrs["teacher_run"] = teacher_run


def finish_soft_run(root: zarr.Group, run: str, attrs: dict | None = None) -> None:
    """Mark a teacher run's soft labels complete (after every video was written)."""
    group = _run_group(root, run, create=False)
    if group is None:
        raise CacheError(f"no soft labels of teacher run {run!r} in the cache")
    group.attrs.update({**(attrs or {}), "status": STATUS_COMPLETE, "completed": now_utc()})


def soft_video_group(root: zarr.Group, run: str, video_id: str) -> zarr.Group | None:
    group = _run_group(root, run, create=False)
    key = encode_key(video_id)
    if group is None or key not in group:
        return None
    video = group[key]
    return video if video.attrs.get("status") == STATUS_COMPLETE else None


def soft_run_attrs(root: zarr.Group, run: str) -> dict:
    """Attributes of a teacher run's soft labels (e.g. which checkpoint made them); {} when absent."""
    group = _run_group(root, run, create=False)
    return {} if group is None else dict(group.attrs)


def soft_video_attrs(root: zarr.Group, run: str, video_id: str) -> dict:
    """Attributes of one video's complete soft labels; {} when it has none."""
    group = soft_video_group(root, run, video_id)
    return {} if group is None else dict(group.attrs)


def read_soft(root: zarr.Group, run: str, video_id: str) -> dict[str, np.ndarray]:
    group = soft_video_group(root, run, video_id)
    if group is None:
        raise CacheError(f"the cache has no complete soft labels of teacher run {run!r} for video {video_id!r}")
    return {name: array[...] for name, array in group.arrays()}


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


def soft_video_ids(root: zarr.Group, run: str) -> list[str]:
    group = _run_group(root, run, create=False)
    if group is None:
        return []
    return sorted(g.attrs.get("video_id", decode_key(k)) for k, g in group.groups()
                  if g.attrs.get("status") == STATUS_COMPLETE)
