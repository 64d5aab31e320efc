"""Shards: many items (stills, short clips) or one long video in one group, written by one task.

shards/<key>/   attrs: shard, n_rows, items (the item table), sets (written with it), status, writer,
                started, completed
  pts, <set>, <set>.ok    the rows of every item end to end (schema.py)
  labels/                 the items' labels, same rows (labels.py)
  soft/<run>/             teacher soft labels, same rows (soft.py)

The item table has one entry per item: id, first row, length, status (complete | failed), source
identity, dataset, and the extractor's attrs (fps, pts source, face source, ...). A shard is written
by exactly one task and committed once: its `status: "complete"` is the last metadata written; a
set added later to a complete shard is committed by the `status` of its own array. Readers see
only complete items of complete shards, with complete sets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import zarr

from emokd.errors import CacheError
from emokd.cache.fingerprint import jsonable
from emokd.cache.labels import ItemLabels, write_shard_labels
from emokd.cache.schema import PTS
from emokd.cache.sets import FeatureSet
from emokd.cache.writer import (STATUS_COMPLETE, STATUS_FAILED, STATUS_WRITING, RowWriter, describe_rows,
                                now_utc)

SHARDS = "shards"


@dataclass
class ItemTable:
    """The items of one shard, in row order (columns, as stored in the shard's `items` attribute)."""

    ids: list[str]
    length: np.ndarray                               # (n_items,) int64 rows per item
    status: list[str] = field(default_factory=list)  # per item: complete | failed | writing
    source: list = field(default_factory=list)       # per item: the source file identity (or None)
    dataset: list = field(default_factory=list)
    attrs: list = field(default_factory=list)        # per item: what the extractor records

    def __post_init__(self) -> None:
        n = len(self.ids)
        self.length = np.asarray(self.length, np.int64)
        self.status = list(self.status) or [STATUS_WRITING] * n
        self.source = list(self.source) or [None] * n
        self.dataset = list(self.dataset) or [None] * n
        self.attrs = list(self.attrs) or [{}] * n
        if not all(len(col) == n for col in (self.length, self.status, self.source, self.dataset, self.attrs)):
            raise CacheError(f"item table with {n} ids has columns of other lengths")
        self.first = np.concatenate([[0], np.cumsum(self.length)[:-1]]).astype(np.int64) if n else \
            np.zeros(0, np.int64)
        self._row_of: dict[str, int] = {}
        for i, item_id in enumerate(self.ids):
            self._row_of.setdefault(item_id, i)

    @property
    def n_rows(self) -> int:
        return int(self.length.sum())

    def index(self, item_id: str) -> int:
        try:
            return self._row_of[item_id]
        except KeyError:
            raise CacheError(f"item {item_id!r} is not in this shard") from None

    def to_attrs(self) -> dict:
        return {"id": list(self.ids), "first": self.first.tolist(), "length": self.length.tolist(),
                "status": list(self.status), "source": list(self.source), "dataset": list(self.dataset),
                "attrs": list(self.attrs)}

    @classmethod
    def from_attrs(cls, attrs: dict) -> ItemTable:
        table = cls(list(attrs["id"]), np.asarray(attrs["length"], np.int64), attrs.get("status", []),
                    attrs.get("source", []), attrs.get("dataset", []), attrs.get("attrs", []))
        if "first" in attrs and not np.array_equal(np.asarray(attrs["first"], np.int64), table.first):
            raise CacheError("item table: first rows do not follow the item lengths")
        return table


def _reopened_attrs(node) -> dict:
    """The node's attributes as they are in the store now (another writer may have replaced it)."""
    if isinstance(node, zarr.Group):
        return dict(zarr.open_group(store=node.store, path=node.path, mode="r").attrs)
    return dict(zarr.open_array(store=node.store, path=node.path, mode="r").attrs)


class ShardWriter:
    """Fills one shard: a new shard (pts, sets, labels; `frames=True`) or new sets of a complete one.

    Write by item (`item(id).write(name, start, values)`, rows relative to the item) or by shard row.
    Names: "pts", a set name, "<set>.ok", or when the writer fills exactly one set of a kind, that
    kind's short names "face"/"face_ok"/"audio"/"audio_ok". `commit()` checks that every row of
    every item not `fail`ed was written, stores the last chunks, the labels, each set's status and,
    last, the shard's own status. Not thread-safe.
    """

    def __init__(self, group: zarr.Group, table: ItemTable, sets: list[FeatureSet], frames: bool,
                 feature_names: set[str], on_commit=None):
        self.group = group
        self.key = group.basename
        self.table = table
        self.sets = sets
        self.frames = frames
        names = ([PTS] if frames else []) + [n for fs in sets for n in (fs.name, fs.ok_array)]
        self.rows = RowWriter({name: group[name] for name in names}, table.n_rows, feature_names)
        self._aliases = {}
        for kind in ("face", "audio"):
            of_kind = [fs for fs in sets if fs.kind == kind]
            if len(of_kind) == 1:
                self._aliases.update({kind: of_kind[0].name, f"{kind}_ok": of_kind[0].ok_array})
        self._labels: dict[int, ItemLabels] = {}
        self._failed: dict[int, str] = {}
        self._on_commit = on_commit
        self._owner = group if frames else group[sets[0].name]
        self.token = self._owner.attrs.get("writer")
        self.committed = False

    def name_of(self, name: str) -> str:
        name = self._aliases.get(name, name)
        if name not in self.rows.names:
            raise CacheError(f"shard {self.key!r}: no array {name!r} written here (declared: "
                             f"{sorted(self.rows.names + list(self._aliases))})")
        return name

    def item(self, item_id: str) -> ItemWriter:
        return ItemWriter(self, self.table.index(item_id))

    def write(self, name: str, start: int, values, item: int | None = None) -> None:
        """Rows [start, start + len(values)) of the shard (or of item index `item`)."""
        if self.committed:
            raise CacheError(f"shard {self.key!r}: write to {name!r} after commit")
        name = self.name_of(name)
        n = len(values)
        if item is None:
            lo, hi, where = 0, self.table.n_rows, f"shard {self.key!r}"
        else:
            lo = int(self.table.first[item])
            hi, where = lo + int(self.table.length[item]), f"item {self.table.ids[item]!r}"
        if start < 0 or lo + start + n > hi:
            raise CacheError(f"{where}, array {name!r}: rows {start}:{start + n} outside 0:{hi - lo}")
        self.rows.write(name, lo + start, values, where=where, offset=lo)

    def set_labels(self, item: int, labels: ItemLabels) -> None:
        if not self.frames:
            raise CacheError(f"shard {self.key!r}: labels are written with the shard, not with added sets")
        self._labels[item] = labels

    def fail(self, item: int, message: str) -> None:
        """Item `item` failed: its rows are filled (zeros / False) and it is marked failed at commit."""
        lo = int(self.table.first[item])
        self.rows.fill(lo, lo + int(self.table.length[item]))
        self._failed[item] = str(message)
        self._labels.pop(item, None)

    def missing_rows(self, item: int | None = None) -> dict[str, str]:
        """Arrays with rows never written, as "frames first..last (count of n)" (item-relative)."""
        lo, hi = (0, self.table.n_rows) if item is None else (
            int(self.table.first[item]), int(self.table.first[item] + self.table.length[item]))
        return {name: describe_rows(rows - lo, hi - lo) for name, rows in self.rows.missing(lo, hi).items()}

    @property
    def failed_ids(self) -> list[str]:
        return [self.table.ids[i] for i in sorted(self._failed)]

    def still_mine(self) -> bool:
        """Whether the shard in the store is still this writer's, uncommitted: only then may its
        task delete it (a task run twice must not delete the other run's shard)."""
        if self.committed:
            return False
        try:
            return _reopened_attrs(self._owner).get("writer") == self.token
        except Exception:      # gone already: nothing of this writer's to delete
            return False

    def commit(self) -> list[str]:
        """Store everything and mark the shard (or the added sets) complete; returns the ids committed."""
        if self.committed:
            return []
        problems = []
        for i, item_id in enumerate(self.table.ids):
            if i not in self._failed:
                problems += [f"{item_id}: {name}: {rows}" for name, rows in self.missing_rows(i).items()]
        if problems:
            raise CacheError(f"shard {self.key!r}: cannot commit, rows never written: " + "; ".join(problems[:5]))
        self.rows.flush()
        if _reopened_attrs(self._owner).get("writer") != self.token:
            raise CacheError(f"shard {self.key!r}: another writer restarted it while this one was writing "
                             "(a task run twice?); not marking it complete")
        done = [item_id for i, item_id in enumerate(self.table.ids) if i not in self._failed]
        if self.frames:
            write_shard_labels(self.group, self.table, self._labels)
        for fs in self.sets:
            self.group[fs.name].update_attributes({"status": STATUS_COMPLETE, "completed": now_utc(),
                                              "failed": self.failed_ids})
        if self.frames:
            self.table.status = [STATUS_FAILED if i in self._failed else STATUS_COMPLETE
                                 for i in range(len(self.table.ids))]
            self.group.update_attributes({"items": self.table.to_attrs(), "failures": {
                self.table.ids[i]: m for i, m in self._failed.items()}, "sets": [fs.name for fs in self.sets],
                "status": STATUS_COMPLETE, "completed": now_utc()})
        self.committed = True
        if self._on_commit is not None:
            self._on_commit(done)
        return done


class ItemWriter:
    """One item's view of a ShardWriter: rows relative to the item; `commit()` commits the shard."""

    def __init__(self, shard: ShardWriter, index: int):
        self.shard = shard
        self.index = index
        self.item_id = self.video_id = shard.table.ids[index]
        self.n_frames = int(shard.table.length[index])

    @property
    def token(self) -> str | None:
        return self.shard.token

    @property
    def committed(self) -> bool:
        return self.shard.committed

    def write(self, name: str, start: int, values) -> None:
        self.shard.write(name, start, values, item=self.index)

    def write_labels(self, labels: ItemLabels) -> None:
        self.shard.set_labels(self.index, labels)

    def fail(self, message: str) -> None:
        self.shard.fail(self.index, message)

    def set_attrs(self, attrs: dict) -> None:
        """Add what was learnt while writing to the item's attrs in the table (a new shard only: the
        table of a complete shard is never rewritten; ignored when adding sets)."""
        if self.shard.committed:
            raise CacheError(f"item {self.item_id!r}: attributes set after commit")
        if self.shard.frames:
            self.shard.table.attrs[self.index] = {**self.shard.table.attrs[self.index], **jsonable(attrs)}

    def missing_rows(self) -> dict[str, str]:
        return self.shard.missing_rows(self.index)

    def commit(self) -> None:
        self.shard.commit()
