"""Per-frame labels, stored apart from the features so that new annotations never need
re-extraction (`emokd cache relabel` rewrites only these groups).

labels/<video key>/  va (n, 2) float32 NaN = missing; expr (n,) int8 -1 = missing;
                     au (n, 12) int8 -1 = missing; mtl (n,) bool, only when the video is in the
                     dataset's MTL set: the frames that set lists;
                     attrs video_id, splits ({"VA", "EXPR", "AU", "MTL"} -> train | validation |
                     test | unlabelled), split (their summary: the one split, or "mixed"), dataset,
                     n_label_rows, status ("complete" written last).
n is the video's cached n_frames: annotation rows beyond it are dropped, rows it lacks are missing.
Labels written before per-task splits have no `splits`: `read_labels` returns None for them and
training refuses them (`emokd cache relabel` rewrites them).
"""

from __future__ import annotations

import numpy as np
import zarr

from emokd.constants import EXPR_MISSING, MIXED, N_AU, N_EXPR, SPLIT_KEYS, SPLIT_VALUES, split_summary, uniform_splits
from emokd.errors import CacheError
from emokd.cache.keys import encode_key
from emokd.cache.location import remove_node
from emokd.cache.writer import STATUS_COMPLETE, STATUS_WRITING, create_frame_array, now_utc

GROUP = "labels"
SPLITS = (*SPLIT_VALUES, MIXED)      # values of the summary `split` attribute
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


def full_splits(what: str, split: str = "unlabelled", splits: dict | None = None) -> dict[str, str]:
    """Per-task splits: `splits` (missing keys unlabelled) or, without them, `split` for every task."""
    if splits is None:
        if split not in SPLIT_VALUES:
            raise CacheError(f"{what}: split {split!r} is not one of {SPLIT_VALUES}")
        return uniform_splits(split)
    bad = {k: v for k, v in splits.items() if k not in SPLIT_KEYS or v not in SPLIT_VALUES}
    if bad:
        raise CacheError(f"{what}: splits {bad} must map {list(SPLIT_KEYS)} to {list(SPLIT_VALUES)}")
    return {**uniform_splits("unlabelled"), **splits}


def write_labels(root: zarr.Group, video_id: str, n_frames: int, va=None, expr=None, au=None,
                 split: str = "unlabelled", dataset: str = "affwild2", splits: dict | None = None,
                 mtl=None) -> None:
    """Replace the labels of one video. Any of va/expr/au may be None (all missing); `splits` per
    task (else `split` for every task); `mtl` the frames of the MTL set (None: not in it)."""
    what = f"labels of video {video_id!r}"
    splits = full_splits(what, split, splits)
    va_rows, n_va = fit_rows(None if va is None else np.asarray(va, np.float32), n_frames, 2, np.float32,
                             np.nan, f"{what}, va")
    expr_rows, n_expr = fit_rows(expr, n_frames, None, np.int8, EXPR_MISSING, f"{what}, expr")
    au_rows, n_au = fit_rows(au, n_frames, N_AU, np.int8, -1, f"{what}, au")
    mtl_rows = None if mtl is None else fit_rows(np.asarray(mtl, bool), n_frames, None, bool, False,
                                                  f"{what}, mtl")[0]
    problems = check_label_values(va_rows, expr_rows, au_rows)
    if problems:
        raise CacheError(f"{what}: " + "; ".join(problems))
    labels = root.require_group(GROUP)
    key = encode_key(video_id)
    remove_node(labels, key)
    group = labels.create_group(key, attributes={
        "video_id": video_id, "splits": splits, "split": split_summary(splits), "dataset": dataset,
        "n_frames": n_frames, "n_label_rows": {"va": n_va, "expr": n_expr, "au": n_au},
        "status": STATUS_WRITING})
    arrays = [("va", va_rows), ("expr", expr_rows), ("au", au_rows)]
    if mtl_rows is not None:
        arrays.append(("mtl", mtl_rows))
    for name, values in arrays:
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
    splits = attrs.get("splits")
    n = group["expr"].shape[0]
    return {"va": group["va"][...], "expr": group["expr"][...], "au": group["au"][...],
            "mtl": group["mtl"][...] if "mtl" in group else np.zeros(n, bool),
            "split": attrs["split"], "splits": None if splits is None else {**uniform_splits("unlabelled"), **splits},
            "dataset": attrs.get("dataset", "affwild2")}
