"""Per-frame labels, stored apart from the features so that new annotations never need
re-extraction (`emokd cache relabel` rewrites only these groups).

labels/<video key>/  va (n, 2) float32 NaN = missing; expr (n,) int8 -1 = missing;
                     au (n, 12) int8 -1 = missing; attrs video_id, split, dataset, n_label_rows,
                     status ("complete" written last).
n is the video's cached n_frames: annotation rows beyond it are dropped, rows it lacks are missing.
"""

from __future__ import annotations

import numpy as np
import zarr

from emokd.constants import EXPR_MISSING, N_AU, N_EXPR
from emokd.errors import CacheError
from emokd.cache.keys import encode_key
from emokd.cache.location import remove_node
from emokd.cache.writer import STATUS_COMPLETE, STATUS_WRITING, create_frame_array, now_utc

GROUP = "labels"
SPLITS = ("train", "validation", "test", "unlabelled")
LABEL_DIM_NAMES = {"va": "va_component", "au": "action_unit"}


def fit_rows(values, n_frames: int, width: int | None, dtype, missing, what: str) -> tuple[np.ndarray, int]:
    """(n_frames[, width]) array from `values` (any number of rows; None = all missing), and the
    number of label rows given."""
    shape = (n_frames,) if width is None else (n_frames, width)
    out = np.full(shape, missing, dtype=dtype)
    if values is None:
        return out, 0
    values = np.asarray(values)
    if values.shape[1:] != shape[1:]:
        raise CacheError(f"{what}: label rows of shape {values.shape[1:]}, expected {shape[1:]}")
    rows = min(len(values), n_frames)
    out[:rows] = values[:rows]
    return out, len(values)


def check_label_values(va: np.ndarray, expr: np.ndarray, au: np.ndarray) -> list[str]:
    """Problems with label values, one line each (empty = valid)."""
    problems = []
    bad = (~(np.isnan(va) | (np.abs(va) <= 1))).any(axis=1)
    if bad.any():
        frame = int(np.flatnonzero(bad)[0])
        problems.append(f"va outside [-1, 1] (NaN = missing) at frame {frame}: {va[frame].tolist()}")
    bad = (expr != EXPR_MISSING) & ((expr < 0) | (expr >= N_EXPR))
    if bad.any():
        frame = int(np.flatnonzero(bad)[0])
        problems.append(f"expr outside -1..{N_EXPR - 1} at frame {frame}: {int(expr[frame])}")
    bad = ~np.isin(au, (-1, 0, 1)).all(axis=1)
    if bad.any():
        frame = int(np.flatnonzero(bad)[0])
        problems.append(f"au values outside {{-1, 0, 1}} at frame {frame}: {au[frame].tolist()}")
    return problems


def write_labels(root: zarr.Group, video_id: str, n_frames: int, va=None, expr=None, au=None,
                 split: str = "unlabelled", dataset: str = "affwild2") -> None:
    """Replace the labels of one video. Any of va/expr/au may be None (all missing)."""
    what = f"labels of video {video_id!r}"
    if split not in SPLITS:
        raise CacheError(f"{what}: split {split!r} is not one of {SPLITS}")
    va_rows, n_va = fit_rows(None if va is None else np.asarray(va, np.float32), n_frames, 2, np.float32,
                             np.nan, f"{what}, va")
    expr_rows, n_expr = fit_rows(expr, n_frames, None, np.int8, EXPR_MISSING, f"{what}, expr")
    au_rows, n_au = fit_rows(au, n_frames, N_AU, np.int8, -1, f"{what}, au")
    problems = check_label_values(va_rows, expr_rows, au_rows)
    if problems:
        raise CacheError(f"{what}: " + "; ".join(problems))
    labels = root.require_group(GROUP)
    key = encode_key(video_id)
    remove_node(labels, key)
    group = labels.create_group(key, attributes={
        "video_id": video_id, "split": split, "dataset": dataset, "n_frames": n_frames,
        "n_label_rows": {"va": n_va, "expr": n_expr, "au": n_au}, "status": STATUS_WRITING})
    for name, values in (("va", va_rows), ("expr", expr_rows), ("au", au_rows)):
        width = values.shape[1] if values.ndim == 2 else None
        create_frame_array(group, name, n_frames, width, values.dtype, LABEL_DIM_NAMES.get(name))[...] = values
    group.attrs.update({"status": STATUS_COMPLETE, "written": now_utc()})


def delete_labels(root: zarr.Group, video_id: str) -> None:
    if GROUP in root:
        remove_node(root[GROUP], encode_key(video_id))


def label_group(root: zarr.Group, video_id: str) -> zarr.Group | None:
    """The complete labels group of a video, or None."""
    if GROUP not in root:
        return None
    key = encode_key(video_id)
    labels = root[GROUP]
    if key not in labels:
        return None
    group = labels[key]
    return group if group.attrs.get("status") == STATUS_COMPLETE else None


def read_labels(root: zarr.Group, video_id: str) -> dict:
    group = label_group(root, video_id)
    if group is None:
        raise CacheError(f"the cache has no labels for video {video_id!r} "
                         "(run `emokd cache relabel` or re-extract it)")
    attrs = group.attrs
    return {"va": group["va"][...], "expr": group["expr"][...], "au": group["au"][...],
            "split": attrs["split"], "dataset": attrs.get("dataset", "affwild2")}
