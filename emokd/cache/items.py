"""The item index: where every item of a cache lies (shard, first row, length) and which of its
feature sets are complete, read from the shards' metadata only (no array data).

An item is readable when its shard is complete, its own status is complete, and (for a set) the
set's array in that shard is complete and does not list the item as failed. Should an item be
complete in two shards (two drivers without the writer lock), the first shard in key order wins and
`verify` reports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import zarr

from emokd.cache.shard import SHARDS, ItemTable
from emokd.cache.writer import STATUS_COMPLETE, STATUS_WRITING


@dataclass
class ShardState:
    key: str
    attrs: dict                          # the shard group's attributes
    table: ItemTable | None              # None when the attributes hold no readable table
    sets: dict[str, dict] = field(default_factory=dict)   # set name -> attrs of its array here
    _failed: dict[str, frozenset] = field(default_factory=dict, repr=False, compare=False)   # set_failed's

    @property
    def status(self) -> str:
        return self.attrs.get("status", STATUS_WRITING)

    @property
    def complete(self) -> bool:
        return self.status == STATUS_COMPLETE and self.table is not None

    def set_complete(self, name: str) -> bool:
        return self.sets.get(name, {}).get("status") == STATUS_COMPLETE

    def set_failed(self, name: str) -> frozenset[str]:
        """The items listed as failed in set `name`'s array here (built once per set: `has_set` asks per item)."""
        if name not in self._failed:
            self._failed[name] = frozenset(self.sets.get(name, {}).get("failed") or ())
        return self._failed[name]

    def has_set(self, name: str, item_id: str) -> bool:
        return self.set_complete(name) and item_id not in self.set_failed(name)

    @classmethod
    def build(cls, key: str, attrs: dict, arrays: dict[str, dict]) -> ShardState:
        """From the shard group's attributes and its arrays' (name -> attrs); only the arrays of
        feature sets count."""
        try:
            table = ItemTable.from_attrs(attrs["items"]) if "items" in attrs else None
        except Exception:  # a damaged table: the shard is listed as unreadable, never served
            table = None
        sets = {name: a for name, a in arrays.items() if "set" in a and "fingerprint" in a}
        return cls(key, attrs, table, sets)

    @classmethod
    def read(cls, shards: zarr.Group, key: str) -> ShardState | None:
        """One shard's state from its own metadata (None when there is no such group): what a
        task needs of its shard, without reading every shard's."""
        try:
            group = shards[key]
        except KeyError:
            return None
        if not isinstance(group, zarr.Group):
            return None
        arrays = {name: dict(node.attrs) for name, node in group.members() if isinstance(node, zarr.Array)}
        return cls.build(key, dict(group.attrs), arrays)


@dataclass(frozen=True)
class ItemLocation:
    shard: str
    index: int          # position in the shard's item table
    first: int          # first row in the shard
    length: int


class ItemIndex:
    def __init__(self, shards: dict[str, ShardState]):
        self.shards = dict(sorted(shards.items()))
        self.locations: dict[str, ItemLocation] = {}
        self.duplicates: list[tuple[str, str]] = []   # (item id, shard that also holds it)
        for key, state in self.shards.items():
            if not state.complete:
                continue
            table = state.table
            for i, item_id in enumerate(table.ids):
                if table.status[i] != STATUS_COMPLETE:
                    continue
                if item_id in self.locations:
                    self.duplicates.append((item_id, key))
                    continue
                self.locations[item_id] = ItemLocation(key, i, int(table.first[i]), int(table.length[i]))

    @classmethod
    def read(cls, root: zarr.Group) -> ItemIndex:
        """Every shard's attributes and its arrays' in one listing of depth 2: zarr fetches the
        metadata documents concurrently (on an object store, one round trip per document one
        after the other made this the slowest part of opening a large cache)."""
        if SHARDS not in root:
            return cls({})
        groups: dict[str, dict] = {}
        arrays: dict[str, dict[str, dict]] = {}
        for path, node in root[SHARDS].members(max_depth=1):
            key, _, name = path.partition("/")
            if not name and isinstance(node, zarr.Group):
                groups[key] = dict(node.attrs)
            elif name and "/" not in name and isinstance(node, zarr.Array):
                arrays.setdefault(key, {})[name] = dict(node.attrs)
        return cls({key: ShardState.build(key, groups[key], arrays.get(key, {})) for key in sorted(groups)})

    def ids(self) -> list[str]:
        return sorted(self.locations)

    def location(self, item_id: str) -> ItemLocation | None:
        return self.locations.get(item_id)

    def state(self, item_id: str) -> ShardState | None:
        loc = self.locations.get(item_id)
        return None if loc is None else self.shards[loc.shard]

    def incomplete_shards(self) -> list[str]:
        return [key for key, state in self.shards.items() if not state.complete]

    def items_of(self, key: str) -> list[str]:
        """The complete items of shard `key`, in row order."""
        if not hasattr(self, "_by_shard"):
            self._by_shard: dict[str, list[str]] = {}
            for item_id, loc in sorted(self.locations.items(), key=lambda kv: (kv[1].shard, kv[1].first)):
                self._by_shard.setdefault(loc.shard, []).append(item_id)
        return list(self._by_shard.get(key, []))
