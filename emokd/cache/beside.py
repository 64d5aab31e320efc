"""FeatureCache methods for what is stored beside the features: labels, teacher soft labels and
the failure log (a mixin, so that store.py keeps to the root and the feature sets).

Labels and soft labels are stored per shard, over the shard's rows; the per-item methods here
read or rewrite the item's rows of its shard's group (whole-shard methods do it in one write).
"""

from __future__ import annotations

import numpy as np

from emokd.errors import CacheError
from emokd.cache import failures as _failures
from emokd.cache import labels as _labels
from emokd.cache import soft as _soft
from emokd.cache.keys import encode_key
from emokd.cache.labels import ItemLabels, ShardLabels, fit_labels
from emokd.cache.writer import STATUS_COMPLETE


class BesideFeatures:
    """Needs from the class it is mixed into: root, url, index, _location, _locate, shard_group,
    shard_state, _require_writable, delete_shard."""

    # ---- labels --------------------------------------------------------------------------------
    def write_labels(self, item_id: str, va=None, expr=None, au=None, split: str = "unlabelled",
                     dataset: str = "affwild2", splits: dict | None = None, mtl=None) -> None:
        """Per-frame labels of one complete item, fitted to its n_frames (extra rows dropped, absent
        rows missing); `splits` per task (VA, EXPR, AU, MTL), else `split` for every task; `mtl` the
        frames of the dataset's MTL set."""
        loc, _ = self._locate(item_id)
        self.write_shard_labels(loc.shard, {item_id: fit_labels(item_id, loc.length, va, expr, au, split,
                                                                dataset, splits, mtl)})

    def write_shard_labels(self, key: str, labels: dict[str, ItemLabels]) -> None:
        """Rewrite the labels group of shard `key`: the items in `labels` get theirs, the others keep
        what they had (all missing if nothing)."""
        self._require_writable(f"write labels of shard {key!r}")
        state = self.shard_state(key)
        if not state.complete:
            raise CacheError(f"{self.url}: cannot write labels of shard {key!r}: it is incomplete")
        table = state.table
        old = _labels.read_shard_labels(self.shard_group(key))   # as stored now, not a kept copy
        rows = {}
        for i, item_id in enumerate(table.ids):
            if item_id in labels:
                rows[i] = labels[item_id]
            elif old is not None:
                rows[i] = old.item_labels(i, int(table.first[i]), int(table.first[i] + table.length[i]))
        unknown = sorted(set(labels) - set(table.ids))
        if unknown:
            raise CacheError(f"{self.url}: shard {key!r} does not hold item(s) {unknown[:5]}")
        self._kept_labels = None
        _labels.write_shard_labels(self.shard_group(key), table, rows)

    def read_shard_labels(self, key: str) -> ShardLabels | None:
        """The labels of every row of shard `key` (the last shard's kept: items read one by one
        cost one read per shard)."""
        kept = getattr(self, "_kept_labels", None)
        if kept is None or kept[0] != key:
            kept = self._kept_labels = (key, _labels.read_shard_labels(self.shard_group(key)))
        return kept[1]

    def has_labels(self, item_id: str) -> bool:
        loc = self._location(item_id)
        return loc is not None and _labels.label_group(self.shard_group(loc.shard)) is not None

    def read_labels(self, item_id: str) -> dict:
        """dict(va (n, 2) float32 NaN, expr (n,) int8 -1, au (n, 12) int8 -1, mtl (n,) bool, split (the
        summary), splits (per task; None for labels written before per-task splits), dataset)."""
        loc, _ = self._locate(item_id)
        labels = self.read_shard_labels(loc.shard)
        if labels is None:
            raise CacheError(f"the cache has no labels for item {item_id!r} "
                             "(run `emokd cache relabel` or re-extract it)")
        return labels.item(loc.index, loc.first, loc.first + loc.length)

    # ---- soft labels ---------------------------------------------------------------------------
    def write_shard_soft(self, run: str, key: str, arrays: dict, attrs: dict | None = None) -> None:
        """One teacher run's outputs for every row of shard `key` (NaN on rows of failed items)."""
        self._require_writable(f"write soft labels of shard {key!r}")
        state = self.shard_state(key)
        _soft.write_shard_soft(self.root, self.shard_group(key), run, state.table.ids, state.table.n_rows,
                               arrays, attrs)

    def write_soft(self, run: str, item_id: str, arrays: dict, attrs: dict | None = None) -> None:
        """One item's rows of its shard's soft labels (the shard's other rows are kept)."""
        loc, state = self._locate(item_id)
        old = self.read_shard_soft(run, loc.shard) or {}
        n = state.table.n_rows
        full = {}
        for name, value in arrays.items():
            value = np.asarray(value)
            if len(value) != loc.length:
                raise CacheError(f"soft labels of run {run!r}, item {item_id!r}: array {name!r} has "
                                 f"{len(value)} rows, expected {loc.length}")
            base = old.get(name)
            if base is None or base.shape[1:] != value.shape[1:] or base.dtype != value.dtype:
                base = np.full((n,) + value.shape[1:], np.nan, value.dtype)
            base[loc.first:loc.first + loc.length] = value
            full[name] = base
        self.write_shard_soft(run, loc.shard, full, {**self.soft_shard_attrs(run, loc.shard), **(attrs or {})})

    def claim_soft_run(self, run: str, teacher_run: str) -> None:
        """Reserve soft-label name `run` for `teacher_run`; CacheError if another run holds it."""
        self._require_writable(f"reserve soft labels {run!r}")
        _soft.claim_soft_run(self.root, run, teacher_run)

    def finish_soft_run(self, run: str, attrs: dict | None = None) -> None:
        self._require_writable(f"finish soft labels of run {run!r}")
        _soft.finish_soft_run(self.root, run, attrs)

    def read_shard_soft(self, run: str, key: str) -> dict[str, np.ndarray] | None:
        return _soft.read_shard_soft(self.shard_group(key), run)

    def soft_shard_attrs(self, run: str, key: str) -> dict:
        group = _soft.shard_soft_group(self.shard_group(key), run)
        return {} if group is None else {k: v for k, v in group.attrs.items()
                                         if k not in ("ids", "status", "written", "run")}

    def read_soft(self, run: str, item_id: str) -> dict[str, np.ndarray]:
        loc, _ = self._locate(item_id)
        arrays = self.read_shard_soft(run, loc.shard)
        if arrays is None:
            raise CacheError(f"the cache has no complete soft labels of teacher run {run!r} for item {item_id!r}")
        return {name: a[loc.first:loc.first + loc.length] for name, a in arrays.items()}

    def has_soft(self, run: str, item_id: str) -> bool:
        loc = self._location(item_id)
        return loc is not None and _soft.shard_soft_group(self.shard_group(loc.shard), run) is not None

    def soft_run_attrs(self, run: str) -> dict:
        return _soft.soft_run_attrs(self.root, run)

    def soft_video_attrs(self, run: str, item_id: str) -> dict:
        """Attributes of the soft labels of the item's shard (checkpoint sha256, ...); {} when none."""
        loc = self._location(item_id)
        return {} if loc is None else self.soft_shard_attrs(run, loc.shard)

    def soft_runs(self, complete_only: bool = False) -> list[str]:
        return _soft.soft_runs(self.root, complete_only)

    def soft_shards(self, run: str, index=None) -> list[str]:
        """Complete shards whose soft labels of `run` are complete; of `index` when the caller has
        just read it, else of the index read afresh."""
        keys = self.shard_keys() if index is None else [k for k, s in index.shards.items() if s.complete]
        return [key for key in keys if _soft.shard_soft_group(self.shard_group(key), run) is not None]

    def soft_video_ids(self, run: str) -> list[str]:
        shards = set(self.soft_shards(run))
        return [i for i in self.item_ids() if self.index.location(i).shard in shards]

    # ---- failures ------------------------------------------------------------------------------
    def record_failure(self, item_id: str, message: str, source: dict | None = None) -> bool:
        """Log a failed item (with the identity of its source file, so that a changed file is
        retried); an incomplete one-item shard of it (a killed or failed video) goes. False, with
        nothing recorded, when the item is complete by now (another attempt finished it)."""
        self._require_writable(f"record a failure of {item_id!r}")
        if self.is_complete(item_id):
            return False
        key = encode_key(item_id)
        state = self.index.shards.get(key)
        if state is not None and state.status != STATUS_COMPLETE:
            self.delete_shard(key)
        _failures.record_failure(self.root, item_id, message, source)
        return True

    def clear_failure(self, item_id: str) -> None:
        self._require_writable(f"clear the failure of {item_id!r}")
        _failures.clear_failures(self.root, [item_id])

    def failures(self) -> dict[str, str]:
        return {vid: record["message"] for vid, record in self.failure_log().items()}

    def failure_log(self) -> dict[str, dict]:
        """item id -> {"message", "time", "attempts", "source"}."""
        return _failures.failure_log(self.root)
