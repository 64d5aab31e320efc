"""Rewrite a cache's labels from a new dataset index, never touching the features.

Takes index items duck-typed (the index's VideoItem: video_id, labels with va/expr/au or None,
split, splits (per task; None = `split` for all), mtl, dataset) so that the cache stays free of index imports. `write_item_labels`
is also what extraction calls: labels reach the cache one way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class RelabelReport:
    rewritten: list[str] = field(default_factory=list)      # cached videos whose labels were written
    changed: list[str] = field(default_factory=list)        # ... of which the labels or splits differ
    not_indexed: list[str] = field(default_factory=list)    # cached videos absent from the index: kept
    not_cached: list[str] = field(default_factory=list)     # indexed videos not (completely) cached

    def line(self) -> str:
        return (f"relabelled {len(self.rewritten)} video(s), {len(self.changed)} changed; "
                f"{len(self.not_indexed)} cached video(s) not in the index kept their labels; "
                f"{len(self.not_cached)} indexed video(s) are not in the cache")


def _same(old: dict | None, new: dict) -> bool:
    if old is None:
        return False
    return (old["splits"] == new["splits"] and old.get("dataset") == new["dataset"]
            and np.array_equal(old["va"], new["va"], equal_nan=True) and np.array_equal(old["mtl"], new["mtl"])
            and np.array_equal(old["expr"], new["expr"]) and np.array_equal(old["au"], new["au"]))


def write_item_labels(cache, item) -> None:
    """Write one index item's labels, per-task splits and MTL frames to the cache."""
    labels = item.labels
    cache.write_labels(item.video_id, va=None if labels is None else labels.va,
                       expr=None if labels is None else labels.expr,
                       au=None if labels is None else labels.au,
                       split=item.split, dataset=getattr(item, "dataset", "affwild2"),
                       splits=getattr(item, "splits", None), mtl=getattr(item, "mtl", None))


def relabel(cache, items) -> RelabelReport:
    """Write the labels of every indexed video that the cache holds complete."""
    report = RelabelReport()
    cached = set(cache.video_ids())
    indexed = set()
    for item in items:
        vid = item.video_id
        indexed.add(vid)
        if vid not in cached:
            report.not_cached.append(vid)
            continue
        old = cache.read_labels(vid) if cache.has_labels(vid) else None
        write_item_labels(cache, item)
        report.rewritten.append(vid)
        if not _same(old, cache.read_labels(vid)):
            report.changed.append(vid)
    report.not_indexed = sorted(cached - indexed)
    return report
