"""FeatureCache methods for items and shards: list, read, and begin writing them (a mixin, so that
store.py keeps to the root and the feature sets).

Names a reader may ask for: "pts"; a set's name or "<set>.ok"; or the short names "face",
"face_ok", "audio", "audio_ok", meaning the chosen set of that kind (the first, unless `face=` /
`audio=` name another).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import numpy as np
import zarr

from emokd.errors import CacheError
from emokd.cache import failures as _failures
from emokd.cache.fingerprint import jsonable
from emokd.cache.items import ItemIndex, ItemLocation, ShardState
from emokd.cache.keys import check_node_name, encode_key
from emokd.cache.location import remove_node
from emokd.cache.schema import PTS, shard_arrays
from emokd.cache.shard import SHARDS, ItemTable, ItemWriter, ShardWriter
from emokd.cache.writer import STATUS_COMPLETE, STATUS_WRITING, create_frame_array, now_utc

SHORT_NAMES = ("face", "face_ok", "audio", "audio_ok")


@dataclass
class ItemSpec:
    """What a writer declares about an item before writing it."""

    item_id: str
    n_frames: int
    source: dict | None = None
    dataset: str | None = None
    attrs: dict = field(default_factory=dict)

    @classmethod
    def from_attrs(cls, item_id: str, n_frames: int, attrs: dict | None) -> ItemSpec:
        rest = dict(jsonable(attrs or {}))
        for key in ("video_id", "item_id", "n_frames", "status", "shard", "first"):
            rest.pop(key, None)
        return cls(item_id, int(n_frames), rest.pop("source", None), rest.pop("dataset", None), rest)


class ItemAccess:
    """Needs from the class it is mixed into: root, url, _index, _require_writable, feature_sets,
    feature_set, choose_set."""

    # ---- the index -----------------------------------------------------------------------------
    @property
    def index(self) -> ItemIndex:
        """Where every item lies; read once, again after this object's own writes or `refresh()`.
        The listings (`item_ids`, `item_records`, `shard_keys`) read it afresh, and a lookup of an
        item it lacks reads it again once, so a reader sees what other processes wrote since."""
        index = self._index              # one read of the attribute: threads may reset it meanwhile
        if index is None:
            index = self._index = ItemIndex.read(self.root)
        return index

    def _fresh_index(self) -> ItemIndex:
        self._index = self._kept = self._kept_labels = None
        return self.index

    def _location(self, item_id: str):
        just_read = self._index is None
        loc = self.index.location(item_id)
        return self._fresh_index().location(item_id) if loc is None and not just_read else loc

    def shard_keys(self, include_incomplete: bool = False) -> list[str]:
        return [k for k, s in self._fresh_index().shards.items() if include_incomplete or s.complete]

    def shard_state(self, key: str) -> ShardState:
        state = self.find_shard(key)
        if state is None:
            raise CacheError(f"{self.url}: no shard {key!r}")
        return state

    def find_shard(self, key: str) -> ShardState | None:
        """Shard `key`'s state from the index read so far, else from its own metadata alone (None
        if there is no such shard): a task asking for its shard must not read every shard's."""
        index = self._index
        state = index.shards.get(key) if index is not None else None
        if state is None and SHARDS in self.root:
            state = ShardState.read(self.root[SHARDS], key)
        return state

    def shard_group(self, key: str) -> zarr.Group:
        return self.root[SHARDS][key]

    # ---- items ---------------------------------------------------------------------------------
    def item_ids(self, include_incomplete: bool = False, sets: list[str] | None = None) -> list[str]:
        """Complete items (with every set in `sets` complete), sorted; or every item of any shard."""
        if include_incomplete:
            return sorted(self.item_records())
        index = self._fresh_index()
        if not sets:
            return index.ids()
        return [i for i in index.ids() if all(index.state(i).has_set(name, i) for name in sets)]

    video_ids = item_ids

    def item_records(self, index: ItemIndex | None = None) -> dict[str, dict]:
        """Every item in any shard: id -> status (complete | failed | writing), n_frames, shard,
        dataset, source, sets (the names complete for it); from `index` when the caller has just
        read it, else from the index read afresh."""
        out: dict[str, dict] = {}
        order = [fs.name for fs in self.feature_sets]
        for key, state in (index or self._fresh_index()).shards.items():
            if state.table is None:
                continue
            table = state.table
            for i, item_id in enumerate(table.ids):
                status = table.status[i] if state.complete else STATUS_WRITING
                if item_id in out and out[item_id]["status"] == STATUS_COMPLETE:
                    continue
                out[item_id] = {**table.attrs[i], "item_id": item_id, "video_id": item_id, "status": status,
                                "n_frames": int(table.length[i]), "shard": key, "first": int(table.first[i]),
                                "dataset": table.dataset[i], "source": table.source[i],
                                "sets": [n for n in order if state.has_set(n, item_id)]}
        return dict(sorted(out.items()))

    def video_statuses(self) -> dict[str, str]:
        return {i: r["status"] for i, r in self.item_records().items()}

    def is_complete(self, item_id: str, sets: list[str] | None = None) -> bool:
        if self._location(item_id) is None:
            return False
        state = self.index.state(item_id)
        return all(state.has_set(name, item_id) for name in (sets or ()))

    def _locate(self, item_id: str) -> tuple[ItemLocation, ShardState]:
        loc = self._location(item_id)
        if loc is None:
            record = self.item_records().get(item_id)
            if record is None:
                raise CacheError(f"{self.url}: no item {item_id!r} in the cache")
            state = "failed" if record["status"] == "failed" else "incomplete (its extraction was interrupted)"
            raise CacheError(f"{self.url}: item {item_id!r} is {state}; re-run extract-features to redo it")
        return loc, self.index.shards[loc.shard]

    def n_frames(self, item_id: str) -> int:
        return self._locate(item_id)[0].length

    def item_attrs(self, item_id: str) -> dict:
        """What the item table holds for a complete item: source, dataset, fps, pts/face source, ..."""
        loc, state = self._locate(item_id)
        table = state.table
        return {**table.attrs[loc.index], "item_id": item_id, "video_id": item_id, "n_frames": loc.length,
                "status": STATUS_COMPLETE, "shard": loc.shard, "first": loc.first,
                "dataset": table.dataset[loc.index], "source": table.source[loc.index]}

    video_attrs = item_attrs

    def resolve_name(self, name: str, face: str | None = None, audio: str | None = None) -> str:
        """The stored array a reader's name means ("face" -> the chosen face set's name, ...)."""
        if name in SHORT_NAMES:
            kind, ok = name.split("_")[0], name.endswith("_ok")
            fs = self.choose_set(kind, face if kind == "face" else audio)
            return fs.ok_array if ok else fs.name
        return name

    def _check_readable(self, state: ShardState, stored: str, item_id: str | None) -> None:
        if stored == PTS:
            return
        set_name = stored[:-3] if stored.endswith(".ok") else stored
        self.feature_set(set_name)   # names an unknown set clearly
        ok = state.has_set(set_name, item_id) if item_id else state.set_complete(set_name)
        if not ok:
            what = f"item {item_id!r}" if item_id else f"shard {state.key!r}"
            raise CacheError(f"{self.url}: {what} has no complete feature set {set_name!r} (not extracted yet, "
                             "or its extraction failed); run extract-features with that set")

    def read_item(self, item_id: str, names: list[str] | None = None, face: str | None = None,
                  audio: str | None = None) -> dict[str, np.ndarray]:
        """Arrays of one complete item, keyed by the names asked (default: pts and the short names of
        the kinds the cache has)."""
        loc, state = self._locate(item_id)
        if names is None:
            kinds = {fs.kind for fs in self.feature_sets}
            names = [n for n in SHORT_NAMES if n.split("_")[0] in kinds] + [PTS]
        group = self.shard_group(loc.shard)
        out = {}
        for name in names:
            stored = self.resolve_name(name, face, audio)
            self._check_readable(state, stored, item_id)
            if stored not in group:
                raise CacheError(f"{self.url}: item {item_id!r} has no array {name!r}")
            out[name] = self._shard_array(group, loc.shard, stored)[loc.first:loc.first + loc.length].copy()
        return out

    def _shard_array(self, group: zarr.Group, key: str, name: str) -> np.ndarray:
        """A whole array of a complete shard, the last shard's kept: reading the items of a packed
        shard one by one costs one read per array, not one (whole-chunk) read per item."""
        kept = getattr(self, "_kept", None)
        if kept is None or kept[0] != key:
            kept = self._kept = (key, {})
        if name not in kept[1]:
            kept[1][name] = group[name][...]
        return kept[1][name]

    read_video = read_item

    def read_shard(self, key: str, names: list[str], face: str | None = None,
                   audio: str | None = None) -> dict[str, np.ndarray]:
        """Arrays over every row of a complete shard (rows of failed items included: see its table)."""
        state = self.shard_state(key)
        if not state.complete:
            raise CacheError(f"{self.url}: shard {key!r} is incomplete")
        group = self.shard_group(key)
        out = {}
        for name in names:
            stored = self.resolve_name(name, face, audio)
            self._check_readable(state, stored, None)
            out[name] = group[stored][...]
        return out

    # ---- writing -------------------------------------------------------------------------------
    def begin_shard(self, key: str, items: list[ItemSpec], sets: list[str] | None = None, *,
                    replace: bool = False) -> ShardWriter:
        """Create shard `key` for `items` (rows end to end) with pts and the arrays of `sets` (default:
        every set of the cache), sized up front; returns its ShardWriter. A stale incomplete shard of
        that key is removed first; a complete one is kept unless `replace=True`."""
        self._require_writable(f"write shard {key!r}")
        check_node_name(key, "shard key")
        if not items:
            raise CacheError(f"shard {key!r}: no items")
        ids = [spec.item_id for spec in items]
        if len(set(ids)) != len(ids):
            raise CacheError(f"shard {key!r}: an item appears twice")
        for spec in items:
            encode_key(spec.item_id)   # refuses empty / non-string ids
            if int(spec.n_frames) < 1:
                raise CacheError(f"item {spec.item_id!r}: n_frames must be at least 1, got {spec.n_frames}")
        chosen = [self.feature_set(n) for n in sets] if sets is not None else self.feature_sets
        shards = self.root.require_group(SHARDS)
        if key in shards and shards[key].attrs.get("status") == STATUS_COMPLETE and not replace:
            raise CacheError(f"{self.url}: shard {key!r} is already complete (pass replace=True to redo it)")
        remove_node(shards, key)  # a stale shard, or a killed writer's leftovers
        self._kept = None
        table = ItemTable(ids, [int(s.n_frames) for s in items], source=[s.source for s in items],
                          dataset=[s.dataset for s in items], attrs=[s.attrs for s in items])
        token = uuid.uuid4().hex
        group = shards.create_group(key, attributes={
            "shard": key, "n_rows": table.n_rows, "items": table.to_attrs(), "status": STATUS_WRITING,
            "started": now_utc(), "writer": token})
        self._create_arrays(group, chosen, table.n_rows, token, frames=True)
        self._index = None
        return self._writer(group, table, chosen, frames=True)

    def begin_sets(self, key: str, sets: list[str], *, replace: bool = False) -> ShardWriter:
        """Add the arrays of `sets` to complete shard `key` (its items, pts and labels untouched)."""
        self._require_writable(f"add feature sets to shard {key!r}")
        state = self.shard_state(key)
        if not state.complete:
            raise CacheError(f"{self.url}: shard {key!r} is incomplete; it is redone whole, not extended")
        chosen = [self.feature_set(n) for n in sets]
        group = self.shard_group(key)
        for fs in chosen:
            if state.set_complete(fs.name) and not replace:
                raise CacheError(f"{self.url}: shard {key!r} already holds feature set {fs.name!r}")
            remove_node(group, fs.name)
            remove_node(group, fs.ok_array)
        token = uuid.uuid4().hex
        self._create_arrays(group, chosen, state.table.n_rows, token, frames=False)
        self._index = None
        return self._writer(group, state.table, chosen, frames=False)

    def _create_arrays(self, group: zarr.Group, sets, n_rows: int, token: str, frames: bool) -> None:
        for spec in shard_arrays(sets, frames).values():
            attrs = spec.attributes()
            if spec.is_feature:
                attrs = {**attrs, "status": STATUS_WRITING, "writer": token, "started": now_utc()}
            create_frame_array(group, spec.name, n_rows, spec.dim, spec.dtype, spec.dim_name, attrs)

    def _writer(self, group, table, sets, frames: bool) -> ShardWriter:
        names = {fs.name for fs in sets}

        def committed(ids: list[str]) -> None:
            _failures.clear_failures(self.root, ids)
            self._index = None
        return ShardWriter(group, table, sets, frames, names, on_commit=committed)

    def begin_video(self, video_id: str, n_frames: int, attrs: dict | None = None, *,
                    replace: bool = False) -> ItemWriter:
        """A shard holding one item (a long video), keyed by the item's escaped id; its ItemWriter."""
        spec = ItemSpec.from_attrs(video_id, n_frames, attrs)
        return self.begin_shard(encode_key(video_id), [spec], replace=replace).item(video_id)

    def shard_defects(self, key: str) -> list[str]:
        """What is wrong with a complete shard's arrays, found cheaply (verify.py `shard_defects`)."""
        from emokd.cache.verify import shard_defects

        return shard_defects(self, self.shard_state(key), self.shard_group(key))

    def video_defects(self, item_id: str) -> list[str]:
        """The defects of the shard holding a complete item; [] for an intact one."""
        return self.shard_defects(self._locate(item_id)[0].shard)

    def retire_items(self, key: str, reasons: dict[str, str]) -> None:
        """Mark items of complete shard `key` as replaced (their source changed: they are extracted
        again into another shard); readers no longer see them. A shard left with no live item goes."""
        self._require_writable(f"retire items of shard {key!r}")
        state = self.shard_state(key)
        table = state.table
        status = ["replaced" if i in reasons else s for i, s in zip(table.ids, table.status)]
        if all(s != STATUS_COMPLETE for s in status):
            self.delete_shard(key)
            return
        table.status = status
        group = self.shard_group(key)
        group.update_attributes({"items": table.to_attrs(), "replaced": {**group.attrs.get("replaced", {}), **reasons}})
        self._index = None

    def delete_shard(self, key: str) -> None:
        self._require_writable(f"delete shard {key!r}")
        remove_node(self.root[SHARDS], key)
        self._kept = None
        self._index = None

    def delete_video(self, item_id: str) -> None:
        """Delete the shard holding `item_id` when it holds nothing else (a one-item shard)."""
        key = encode_key(item_id)
        state = self.index.shards.get(key)
        if state is not None and state.table is not None and state.table.ids != [item_id]:
            raise CacheError(f"{self.url}: shard {key!r} holds other items too; delete the shard instead")
        self.delete_shard(key)
