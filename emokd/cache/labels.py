"""Per-frame labels, stored apart from the features so that new annotations never need
re-extraction (`emokd cache relabel` rewrites only these groups).

shards/<key>/labels/   va (R, 2) float32 NaN = missing; expr (R,) int8 -1 = missing;
                       au (R, 12) int8 -1 = missing; mtl (R,) bool: the frames the dataset's MTL
                       set lists (False elsewhere) -- the same rows as the shard's features;
                       attrs items (per item: id, splits ({"VA", "EXPR", "AU", "MTL"} -> train |
                       validation | test | unlabelled), split (their summary: the one split, or
                       "mixed"), dataset, n_label_rows), status ("complete" written last), written.
An item's rows hold its labels fitted to its cached frames: annotation rows beyond them are
dropped, rows it lacks are missing. ABAW publishes one set per task, so one video can be VA
training data and EXPR validation data. Labels without `splits` (written by an older emokd) read
as splits None, and training refuses them (`emokd cache relabel` rewrites them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import zarr

from emokd.constants import (EXPR_MISSING, MIXED, N_AU, N_EXPR, SPLIT_KEYS, SPLIT_VALUES, TASKS, split_summary,
                             uniform_splits)
from emokd.errors import CacheError
from emokd.cache.location import remove_node
from emokd.cache.writer import STATUS_COMPLETE, STATUS_WRITING, create_frame_array, now_utc

GROUP = "labels"
SPLITS = (*SPLIT_VALUES, MIXED)      # values of the summary `split`
LABEL_DIM_NAMES = {"va": "va_component", "au": "action_unit"}
LABEL_ARRAYS = {"va": (2, np.float32, np.nan), "expr": (None, np.int8, EXPR_MISSING), "au": (N_AU, np.int8, -1),
                "mtl": (None, np.dtype(bool), False)}


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


def labelled_splits(split: str, has: dict[str, bool]) -> dict[str, str]:
    """Per-task splits from one item-level split, for labels that had no per-task splits (version 1
    caches): the split for every task that has labels, "unlabelled" for the others; a test item is
    test data for every task."""
    return {**uniform_splits("unlabelled"),
            **{task: split if (split == "test" or has[task]) else "unlabelled" for task in TASKS}}


@dataclass
class ItemLabels:
    """One item's labels fitted to its n frames, with its splits."""

    va: np.ndarray
    expr: np.ndarray
    au: np.ndarray
    mtl: np.ndarray
    split: str                 # the summary of `splits`
    splits: dict[str, str]
    dataset: str
    n_label_rows: dict[str, int]


def fit_labels(item_id: str, n_frames: int, va=None, expr=None, au=None, split: str = "unlabelled",
               dataset: str = "affwild2", splits: dict | None = None, mtl=None) -> ItemLabels:
    """An item's labels fitted to its n_frames (extra rows dropped, absent rows missing), checked;
    `splits` per task (VA, EXPR, AU, MTL), else `split` for every task; `mtl` the frames of the
    dataset's MTL set (None: not in it)."""
    what = f"labels of item {item_id!r}"
    splits = full_splits(what, split, splits)
    va_rows, n_va = fit_rows(None if va is None else np.asarray(va, np.float32), n_frames, 2, np.float32,
                             np.nan, f"{what}, va")
    expr_rows, n_expr = fit_rows(expr, n_frames, None, np.int8, EXPR_MISSING, f"{what}, expr")
    au_rows, n_au = fit_rows(au, n_frames, N_AU, np.int8, -1, f"{what}, au")
    mtl_rows = fit_rows(None if mtl is None else np.asarray(mtl, bool), n_frames, None, bool, False,
                        f"{what}, mtl")[0]
    problems = check_label_values(va_rows, expr_rows, au_rows)
    if problems:
        raise CacheError(f"{what}: " + "; ".join(problems))
    return ItemLabels(va_rows, expr_rows, au_rows, mtl_rows, split_summary(splits), splits, dataset,
                      {"va": n_va, "expr": n_expr, "au": n_au})


def missing_labels(item_id: str, n_frames: int, dataset: str | None = None) -> ItemLabels:
    return fit_labels(item_id, n_frames, dataset=dataset or "unknown")


def write_shard_labels(shard: zarr.Group, table, labels: dict[int, ItemLabels]) -> None:
    """Replace the labels group of a shard: item i gets `labels[i]`, the others all missing."""
    n = table.n_rows
    arrays = {name: np.full((n,) if width is None else (n, width), missing, dtype)
              for name, (width, dtype, missing) in LABEL_ARRAYS.items()}
    columns = {"id": list(table.ids), "split": [], "splits": [], "dataset": [], "n_label_rows": []}
    for i, item_id in enumerate(table.ids):
        lab = labels.get(i) or missing_labels(item_id, int(table.length[i]), table.dataset[i])
        lo, hi = int(table.first[i]), int(table.first[i] + table.length[i])
        if len(lab.expr) != hi - lo:
            raise CacheError(f"labels of item {item_id!r}: {len(lab.expr)} rows, the item has {hi - lo}")
        for name in arrays:
            arrays[name][lo:hi] = getattr(lab, name)
        columns["split"].append(lab.split)
        columns["splits"].append(lab.splits)
        columns["dataset"].append(lab.dataset)
        columns["n_label_rows"].append(lab.n_label_rows)
    remove_node(shard, GROUP)
    group = shard.create_group(GROUP, attributes={"items": columns, "status": STATUS_WRITING})
    for name, values in arrays.items():
        width = values.shape[1] if values.ndim == 2 else None
        create_frame_array(group, name, n, width, values.dtype, LABEL_DIM_NAMES.get(name))[...] = values
    group.update_attributes({"status": STATUS_COMPLETE, "written": now_utc()})


@dataclass
class ShardLabels:
    """The labels of every row of one shard, and the per-item columns."""

    va: np.ndarray
    expr: np.ndarray
    au: np.ndarray
    mtl: np.ndarray
    columns: dict

    def splits(self, i: int) -> dict[str, str] | None:
        """Item i's per-task splits; None for labels written before per-task splits."""
        column = self.columns.get("splits")
        return None if column is None or column[i] is None else {**uniform_splits("unlabelled"), **column[i]}

    def item(self, i: int, lo: int, hi: int) -> dict:
        return {"va": self.va[lo:hi], "expr": self.expr[lo:hi], "au": self.au[lo:hi], "mtl": self.mtl[lo:hi],
                "split": self.columns["split"][i], "splits": self.splits(i),
                "dataset": self.columns["dataset"][i]}

    def item_labels(self, i: int, lo: int, hi: int) -> ItemLabels:
        c = self.columns
        return ItemLabels(self.va[lo:hi].copy(), self.expr[lo:hi].copy(), self.au[lo:hi].copy(),
                          self.mtl[lo:hi].copy(), c["split"][i], self.splits(i) or uniform_splits(c["split"][i]),
                          c["dataset"][i], dict(c["n_label_rows"][i]))


def label_group(shard: zarr.Group) -> zarr.Group | None:
    """The complete labels group of a shard, or None."""
    if GROUP not in shard:
        return None
    group = shard[GROUP]
    return group if group.attrs.get("status") == STATUS_COMPLETE else None


def read_shard_labels(shard: zarr.Group) -> ShardLabels | None:
    group = label_group(shard)
    if group is None:
        return None
    n = group["expr"].shape[0]
    mtl = group["mtl"][...] if "mtl" in group else np.zeros(n, bool)
    return ShardLabels(group["va"][...], group["expr"][...], group["au"][...], mtl, dict(group.attrs["items"]))
