"""Rewrite a cache's labels from a new dataset index, never touching the features.

Takes index items duck-typed (the index's VideoItem: video_id, labels with va/expr/au or None,
split, splits (per task; None = `split` for all), mtl, dataset) so that the cache stays free of
index imports. `item_labels` is also what extraction calls: labels reach the cache one way
(`write_item_labels` writes one item's).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from emokd.cache.labels import ItemLabels, fit_labels


@dataclass
class RelabelReport:
    rewritten: list[str] = field(default_factory=list)      # cached videos whose labels were written
    changed: list[str] = field(default_factory=list)        # ... of which the labels or split differ
    not_indexed: list[str] = field(default_factory=list)    # cached videos absent from the index: kept
    not_cached: list[str] = field(default_factory=list)     # indexed videos not (completely) cached

    def line(self) -> str:
        return (f"relabelled {len(self.rewritten)} item(s), {len(self.changed)} changed; "
                f"{len(self.not_indexed)} cached item(s) not in the index kept their labels; "
                f"{len(self.not_cached)} indexed item(s) are not in the cache")


def _same(old: dict | None, new: ItemLabels) -> bool:
    if old is None:
        return False
    return (old.get("splits") == new.splits and old.get("dataset") == new.dataset
            and np.array_equal(old["va"], new.va, equal_nan=True) and np.array_equal(old["mtl"], new.mtl)
            and np.array_equal(old["expr"], new.expr) and np.array_equal(old["au"], new.au))


def item_labels(item, n_frames: int) -> ItemLabels:
    """One index item's labels, per-task splits and MTL frames, fitted to its n_frames."""
    labels = item.labels
    return fit_labels(item.video_id, n_frames, *((labels.va, labels.expr, labels.au) if labels is not None
                                                 else (None, None, None)),
                      split=item.split, dataset=getattr(item, "dataset", "affwild2"),
                      splits=getattr(item, "splits", None), mtl=getattr(item, "mtl", None))


def write_item_labels(cache, item) -> None:
    """Write one index item's labels, per-task splits and MTL frames to its (complete) cached item."""
    attrs = cache.item_attrs(item.video_id)
    cache.write_shard_labels(attrs["shard"], {item.video_id: item_labels(item, attrs["n_frames"])})


def relabel(cache, items) -> RelabelReport:
    """Write the labels of every indexed item that the cache holds complete, one write per shard."""
    report = RelabelReport()
    cached = set(cache.item_ids())
    index = cache.index          # as item_ids read it (writing labels moves no item)
    indexed = set()
    per_shard: dict[str, dict[str, ItemLabels]] = {}
    for item in items:
        vid = item.video_id
        indexed.add(vid)
        if vid not in cached:
            report.not_cached.append(vid)
            continue
        loc = index.location(vid)
        per_shard.setdefault(loc.shard, {})[vid] = item_labels(item, loc.length)
        report.rewritten.append(vid)
    for key, labels in per_shard.items():
        old = cache.read_shard_labels(key)
        for vid, new in labels.items():
            loc = index.location(vid)
            if not _same(None if old is None else old.item(loc.index, loc.first, loc.first + loc.length), new):
                report.changed.append(vid)
        cache.write_shard_labels(key, labels)
    report.not_indexed = sorted(cached - indexed)
    return report
