"""What one `extract-features` run writes, and why the rest is skipped (docs/safety.md).

Every item of the index is one of:
- complete and intact, with every feature set of this run: skipped. "Intact" is the cache's cheap
  check of its shard (`FeatureCache.shard_defects`: arrays present with their shapes, no chunk file
  lost) and its source file unchanged (`emokd.cache.source_identity.source_change`: size, mtime,
  hash of its first and last MiB; an object's size and ETag);
- complete in a defective shard: the shard is removed and its items extracted again; complete from
  a source that changed since: retired from its shard (`FeatureCache.retire_items`) and extracted
  again (`clear_for_redo` does both, on emokd's own data);
- complete but without one of this run's feature sets: its shard gets a task that adds only them;
- recorded as failed by an earlier run, from the same source file: skipped unless `retry_failed`;
- anything else (new, or left in an interrupted shard): extracted.
The items to extract are packed by the cache's one rule (emokd/cache/packing.py: stills and short
clips many to a shard, by dataset, in index order; long videos alone; the same items give the same
key, so a rerun redoes an interrupted shard in place).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from emokd.cache import packing
from emokd.cache.packing import PackEntry
from emokd.cache.source_identity import source_change

log = logging.getLogger(__name__)


@dataclass
class ShardTask:
    key: str
    items: list          # VideoItems in row order (None where a stored item is not in the index)
    ids: list[str]       # the items' ids (in the shard's table for a task that adds sets)
    sets: list[str]      # feature set names this task writes
    new: bool            # True: write the whole shard; False: add `sets` to a complete shard

    @property
    def frames(self) -> dict[str, int]:
        """Item id -> frames as the index knows them (0 when unknown), for progress."""
        return {i: known_frames(item) or 0 for i, item in zip(self.ids, self.items) if item is not None}


@dataclass
class Plan:
    tasks: list[ShardTask]           # shards to write, or to complete with this run's sets
    complete: list[str]              # complete, intact, every set: skipped
    settings: dict                   # fingerprint settings (what workers must agree on)
    sets: list                       # the FeatureSets this run fills
    defective: dict[str, str] = field(default_factory=dict)      # id -> its shard's first defect; redone
    changed: dict[str, str] = field(default_factory=dict)        # id -> how its source changed; redone
    failed_earlier: dict[str, str] = field(default_factory=dict)  # id -> its recorded error; skipped
    redo_shards: dict[str, str] = field(default_factory=dict)    # defective shard -> its first defect (removed, redone)
    retire: dict[str, dict[str, str]] = field(default_factory=dict)   # shard -> {id: change}
    removed: list[str] = field(default_factory=list)   # interrupted shards no task redoes

    @property
    def todo(self) -> list:
        """The items this run computes something for (each once)."""
        seen, out = set(), []
        for task in self.tasks:
            for item in task.items:
                if item is not None and item.video_id not in seen:
                    seen.add(item.video_id)
                    out.append(item)
        return out

    @property
    def encoders(self) -> list[dict]:
        return [fs.record() for fs in self.sets]

    @property
    def set_settings(self) -> dict:
        """Set name -> the settings hashed into its fingerprint (what --dry-run shows)."""
        return {fs.name: {"encoder": fs.encoder, **fs.settings} for fs in self.sets}


def known_frames(item) -> int | None:
    """Frames of an item as the index knows them (image count, or the index-time probe)."""
    if item.frame_images:
        return len(item.frame_images)
    return int(item.n_frames) if item.n_frames else None


def source_path(item):
    """The file a source identity describes: the video, or a still's / a sequence's first image."""
    return item.video_path or (item.frame_images[0] if item.frame_images else None)


def pack(items: list, sets: list[str], shard_frames: int, pack_frames: int) -> list[ShardTask]:
    """New-shard tasks for `items`: long items alone, short ones packed per dataset."""
    entries = [PackEntry(item.video_id, item.dataset, known_frames(item)) for item in items]
    return [ShardTask(key, [items[i] for i in group], [items[i].video_id for i in group], list(sets), True)
            for key, group in packing.pack(entries, shard_frames, pack_frames)]


def plan_work(cache, items: list, sets: list, settings: dict, shard_frames: int, pack_frames: int,
              retry_failed: bool = False, storage_options: dict | None = None) -> Plan:
    """The plan for `items` against `cache` (None: nothing extracted yet). Reads only."""
    names = [fs.name for fs in sets]
    plan = Plan([], [], settings, list(sets))
    if cache is None:
        plan.tasks = pack(items, names, shard_frames, pack_frames)
        return plan
    by_id = {item.video_id: item for item in items}
    keys = cache.shard_keys()             # reads the index afresh; `cache.index` below is that reading
    index = cache.index
    settled: set[str] = set()             # items that stay where they are
    for key in keys:
        state = index.shards[key]
        live = index.items_of(key)
        if not live:
            continue
        defects = cache.shard_defects(key)
        if defects:
            plan.redo_shards[key] = defects[0]
            plan.defective.update({i: defects[0] for i in live if i in by_id})
            continue
        for item_id in live:
            item = by_id.get(item_id)
            if item is None:
                settled.add(item_id)
                continue
            change = source_change(state.table.source[index.location(item_id).index], source_path(item),
                                   storage_options)
            if change:
                plan.changed[item_id] = change
                plan.retire.setdefault(key, {})[item_id] = change
            else:
                settled.add(item_id)
        missing = [n for n in names if not state.set_complete(n)]
        if missing and any(i in settled for i in live):
            plan.tasks.append(ShardTask(key, [by_id.get(i) if i in settled else None for i in state.table.ids],
                                        list(state.table.ids), missing, False))
        elif not missing:
            plan.complete += [i for i in live if i in settled and i in by_id and all(state.has_set(n, i) for n in names)]
    failures = cache.failure_log()
    pending = []
    for item in items:
        vid = item.video_id
        if vid in settled:
            continue
        if vid in failures and not retry_failed and vid not in plan.changed and vid not in plan.defective:
            record = failures[vid]
            change = source_change(record.get("source"), source_path(item), storage_options)
            if change is None:
                plan.failed_earlier[vid] = record.get("message") or "failed"
                continue
            plan.changed[vid] = change
        pending.append(item)
    plan.tasks = pack(pending, names, shard_frames, pack_frames) + plan.tasks
    planned = {task.key for task in plan.tasks}
    plan.removed = [key for key in index.incomplete_shards() if key not in planned]
    plan.complete.sort()
    return plan


def clear_for_redo(cache, plan: Plan) -> None:
    """Remove the defective shards, retire the items whose source changed, and remove interrupted
    shards no task redoes, so that the tasks redo what is to be redone (emokd's own data only)."""
    for key, defect in plan.redo_shards.items():
        log.warning("shard %s: complete but defective (%s); extracting its items again", key, defect)
        cache.delete_shard(key)
    for key, changes in plan.retire.items():
        for item_id, change in changes.items():
            log.warning("%s: its source changed since it was extracted (%s); extracting it again", item_id, change)
        cache.retire_items(key, changes)
    for key in plan.removed:
        log.info("removed the interrupted shard %s (its items are planned in other shards)", key)
        cache.delete_shard(key)
