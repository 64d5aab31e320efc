"""`emokd cache migrate OLD [NEW]`: a version 1 cache (one group per video) to version 2, keeping
every feature bit for bit (docs/cache_format.md#migrating-a-version-1-cache).

Version 1: root attrs `settings` (the extraction settings, with both encoder records), `encoders`
{array name: record}, `encoder_order`, `config`; `videos/<key>/` face, audio, face_ok, audio_ok,
pts; `labels/<key>/` va, expr, au (mtl) with one `split` (and `splits` when written by the per-task
split code); `soft/<run>/<key>/`; `failures/<key>/` (the same in version 2).

Version 1 also kept its run log and config inside the store (`extract.log`,
`extract_config.yaml`); they move beside the version 2 store (`<cache>.emokd/extract-version1.log`
and `.yaml`, cache/sidecar.py), copied when OLD is only read.

The target's root attributes say version 2 with a `migration` record whose status is "writing"
until every shard is written; a cache in that state is refused by every reader (so a killed
migration is never read as a cache with fewer items) and `migrate` resumes it: complete shards are
kept. The record says "complete" in one write after every shard (version 1's attributes go in the
same write); in place, the version 1 groups are deleted only after it. A migration killed after that
write is a version 2 cache with version 1's leftovers: a rerun finishes their clean-up and says so.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field

import numpy as np
import zarr

from emokd.constants import CACHE_SCHEMA_VERSION, TASKS
from emokd.errors import CacheError
from emokd.cache import location
from emokd.cache.keys import decode_key
from emokd.cache.labels import fit_labels, labelled_splits
from emokd.cache.location import remove_node
from emokd.cache.packing import PACK_FRAMES, SHARD_FRAMES, PackEntry, pack
from emokd.cache.reading import ItemSpec
from emokd.cache.sets import FeatureSet, make_set
from emokd.cache.sidecar import run_files, sidecar_dir
from emokd.cache.soft import run_group
from emokd.cache.writer import STATUS_COMPLETE, now_utc

log = logging.getLogger(__name__)

RENAMED_ENCODERS = {"fer_default": "fer_pyemotion"}     # old record name -> the encoder's one name
KIND_SETTINGS = {"face": ("face_source", "face_detector", "crop_size", "crop_numbering"),
                 "audio": ("sample_rate", "window_s", "audio_mode", "audio_track")}
# what version 1 did where its settings record nothing (settings added since): crop files numbered
# from 1 (Aff-Wild2's rule, the only one it read), the first audio track
VERSION1_DEFAULTS = {"crop_numbering": "1-based", "audio_track": None}
VERSION1_FILES = {"extract.log": "extract-version1.log", "extract_config.yaml": "extract-version1.yaml"}
VERSION1_ATTRS = ("fingerprint", "settings", "encoders", "encoder_order")   # kept in the migration record
LIMITATION = ("version 1 stored one split per video: each task that has labels now has that split "
              "(test items: test for every task); run `emokd cache relabel DATASET {cache}` to read the "
              "true per-task splits from the dataset")


@dataclass
class MigrationReport:
    items: int = 0
    shards: int = 0
    kept_shards: int = 0         # complete already (a resumed migration)
    soft_runs: list[str] = field(default_factory=list)
    renamed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)     # incomplete version 1 videos, not carried over
    single_split: int = 0        # labelled items whose version 1 labels had one split, no per-task splits
    moved: list[str] = field(default_factory=list)       # version 1 files from inside the store, now beside it
    cleanup_only: bool = False   # a migration killed after its commit: only its clean-up was left

    def lines(self, target: str) -> list[str]:
        if self.cleanup_only:
            return [(f"{target}: finished the clean-up of an interrupted migration (version 1's groups and "
                     f"files removed; it was schema version {CACHE_SCHEMA_VERSION} already)")]
        out = [f"migrated {self.items} item(s) into {self.shards} shard(s) of {target} (schema version "
               f"{CACHE_SCHEMA_VERSION}); {self.kept_shards} shard(s) were complete already"]
        out += [f"renamed the encoder {old} -> {new}" for old, new in (r.split("->") for r in self.renamed)]
        if self.soft_runs:
            out.append(f"teacher soft labels carried over: {', '.join(self.soft_runs)}")
        if self.skipped:
            out.append(f"{len(self.skipped)} incomplete video(s) not carried over (extract them again): "
                       + ", ".join(self.skipped[:10]))
        if self.moved:
            out.append("version 1's log and config, from inside the store: " + ", ".join(self.moved))
        if self.single_split:
            out.append(f"limitation ({self.single_split} item(s)): " + LIMITATION.format(cache=target))
        else:
            out.append("per-task splits carried over as they were")
        return out


def _renamed(value, report: MigrationReport):
    """`value` with every encoder name of RENAMED_ENCODERS replaced (records, settings, config)."""
    if isinstance(value, dict):
        return {k: _renamed(v, report) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, report) for v in value]
    if isinstance(value, str) and value in RENAMED_ENCODERS:
        note = f"{value}->{RENAMED_ENCODERS[value]}"
        if note not in report.renamed:
            report.renamed.append(note)
        return RENAMED_ENCODERS[value]
    return value


def version1_sets(attrs: dict, report: MigrationReport) -> tuple[list[FeatureSet], dict[str, str]]:
    """(the two feature sets of a version 1 cache, set name -> its version 1 array name)."""
    settings = _renamed(attrs.get("settings") or {}, report)
    config = _renamed(attrs.get("config") or {}, report)
    records = _renamed(attrs.get("encoders") or {}, report)
    order = attrs.get("encoder_order") or list(records)
    known = any(k in settings for keys in KIND_SETTINGS.values() for k in keys)
    sets, arrays = [], {}
    for array in order:
        record = records[array]
        if known:   # the extraction's own settings: each set keeps those of its kind
            kind_settings = {k: settings.get(k, VERSION1_DEFAULTS.get(k))
                             for k in KIND_SETTINGS.get(record.get("kind"), ())}
        else:       # other writers (synthetic caches): every setting for every set
            kind_settings = {k: v for k, v in settings.items() if k not in ("face_encoder", "audio_encoder")}
        fs = make_set({k: v for k, v in record.items() if k != "array"}, kind_settings, config=config,
                      added=attrs.get("created"))
        sets.append(fs)
        arrays[fs.name] = array
    return sets, arrays


def _v1_videos(root: zarr.Group) -> tuple[list[tuple[str, zarr.Group]], list[str]]:
    """(complete version 1 videos as (id, group), ids of incomplete ones)."""
    if "videos" not in root:
        return [], []
    complete, incomplete = [], []
    for key, group in root["videos"].groups():
        vid = group.attrs.get("video_id", decode_key(key))
        (complete if group.attrs.get("status") == STATUS_COMPLETE else incomplete).append((vid, group))
    return sorted(complete, key=lambda kv: kv[0]), sorted(v for v, _ in incomplete)


def _v1_labels(root: zarr.Group, key: str, vid: str, n: int, report: MigrationReport):
    """The labels of one version 1 video as ItemLabels (per-task splits from its `split` when it
    has none), or None."""
    if "labels" not in root or key not in root["labels"]:
        return None
    group = root["labels"][key]
    if group.attrs.get("status") != STATUS_COMPLETE:
        return None
    attrs = dict(group.attrs)
    va, expr, au = group["va"][...], group["expr"][...], group["au"][...]
    mtl = group["mtl"][...] if "mtl" in group else None
    splits = attrs.get("splits")
    if splits is None:
        has = {"VA": bool((~np.isnan(va)).all(axis=1).any()), "EXPR": bool((expr >= 0).any()),
               "AU": bool((au >= 0).all(axis=1).any())}
        splits = labelled_splits(attrs.get("split", "unlabelled"), has)
        report.single_split += 1
    return fit_labels(vid, n, va, expr, au, dataset=attrs.get("dataset", "affwild2"), splits=splits, mtl=mtl)


_ITEM_KEYS = ("video_id", "n_frames", "status", "started", "completed", "writer", "source", "dataset")


def _write_shard(cache, root: zarr.Group, key: str, members: list[tuple[str, zarr.Group]],
                 arrays: dict[str, str], report: MigrationReport) -> None:
    specs = []
    for vid, group in members:
        attrs = dict(group.attrs)
        specs.append(ItemSpec(vid, int(attrs["n_frames"]), attrs.get("source"), attrs.get("dataset"),
                              {k: v for k, v in attrs.items() if k not in _ITEM_KEYS}))
    writer = cache.begin_shard(key, specs)
    for (vid, group), spec in zip(members, specs):
        part = writer.item(vid)
        part.write("pts", 0, group["pts"][...])
        for fs in cache.feature_sets:
            old = arrays[fs.name]
            part.write(fs.name, 0, group[old][...])
            part.write(fs.ok_array, 0, group[f"{fs.kind}_ok"][...])
        labels = _v1_labels(root, group.basename, vid, spec.n_frames, report)
        if labels is not None:
            part.write_labels(labels)
    writer.commit()


def _carry_soft(cache, root: zarr.Group, shards: list[tuple[str, list[tuple[str, zarr.Group]]]],
                report: MigrationReport) -> None:
    """Each teacher run's per-video soft labels as per-shard arrays, for the shards whose every item
    has them from one checkpoint (a student's `ensure_soft_labels` computes the others)."""
    if "soft" not in root:
        return
    for run_key, run in root["soft"].groups():
        name = run.attrs.get("run", decode_key(run_key))
        report.soft_runs.append(name)
        for key, members in shards:
            parts, checkpoints = {}, set()
            for vid, group in members:
                soft = run[group.basename] if group.basename in run else None
                if soft is None or soft.attrs.get("status") != STATUS_COMPLETE:
                    continue
                checkpoints.add(soft.attrs.get("checkpoint_sha256"))
                parts[vid] = {n: a[...] for n, a in soft.arrays()}
            if len(parts) < len(members) or len(checkpoints) != 1:
                continue       # not every item has them: students recompute this shard's
            state = cache.shard_state(key)
            arrays = {}
            for i, vid in enumerate(state.table.ids):
                for n, values in parts.get(vid, {}).items():
                    if n not in arrays:
                        arrays[n] = np.full((state.table.n_rows,) + values.shape[1:], np.nan, np.float32)
                    lo = int(state.table.first[i])
                    arrays[n][lo:lo + len(values)] = values
            cache.write_shard_soft(name, key, arrays, {"checkpoint_sha256": checkpoints.pop()})
        run_group(cache.root, name, create=True).update_attributes(dict(run.attrs))


def migrate(old_url: str, new_url: str | None = None, storage_options: dict | None = None,
            shard_frames: int = SHARD_FRAMES, pack_frames: int = PACK_FRAMES,
            made_by: dict | None = None) -> MigrationReport:
    """Convert the version 1 cache at `old_url` into `new_url` (None: in place); see the module
    docstring. `made_by` (emokd.config.made_by) joins the cache's record of who wrote it."""
    from emokd.cache.store import FeatureCache, FORMAT_TAG

    report = MigrationReport()
    in_place = new_url is None or str(new_url) == str(old_url)
    target = str(old_url) if in_place else str(new_url)
    if not location.has_zarr_root(old_url, storage_options):
        raise CacheError(f"{old_url}: no feature cache there (no zarr.json)")
    old = location.open_root(old_url, "r+" if in_place else "r", storage_options)
    attrs = dict(old.attrs)
    if attrs.get("emokd_cache") != FORMAT_TAG:
        raise CacheError(f"{old_url}: a Zarr store, but not an emokd feature cache")
    version = attrs.get("schema_version")
    migration = attrs.get("migration") or {}
    resuming = version == CACHE_SCHEMA_VERSION and migration.get("status") not in (None, STATUS_COMPLETE)
    if version == CACHE_SCHEMA_VERSION and not resuming:
        if in_place and migration:     # a migration killed after its commit: finish the clean-up
            dropped = _drop_version1(old)
            _move_version1_files(old_url, old_url, True, storage_options, report)
            if dropped or report.moved:
                report.cleanup_only = True
                return report
        raise CacheError(f"{old_url}: already schema version {CACHE_SCHEMA_VERSION}; nothing to migrate")
    if version not in (1, CACHE_SCHEMA_VERSION):
        raise CacheError(f"{old_url}: schema version {version}; this emokd migrates version 1 only")
    v1 = migration.get("from_attrs", attrs) if resuming else attrs
    sets, arrays = version1_sets(v1, report)
    record = {"from": 1, "status": "writing", "started": now_utc(), "from_attrs": v1}
    if in_place:
        if not resuming:
            old.update_attributes({"schema_version": CACHE_SCHEMA_VERSION, "migration": record,   # one write
                                   "feature_sets": {fs.name: fs.to_attrs() for fs in sets},
                                   "set_order": [fs.name for fs in sets]})
        cache = FeatureCache.open(old_url, "r+", storage_options, migrating=True)
    elif location.has_zarr_root(new_url, storage_options):
        cache = FeatureCache.open(new_url, "r+", storage_options, migrating=True)
        if (cache._attrs.get("migration") or {}).get("status") != "writing":
            raise CacheError(f"{new_url}: already a cache; choose a new path for the migrated cache")
    else:
        cache = FeatureCache.create_sets(new_url, sets, v1.get("config"), storage_options=storage_options,
                                         extra_attrs={"migration": record, "made_by": v1.get("made_by", [])})
    videos, report.skipped = _v1_videos(old)
    entries = [PackEntry(vid, g.attrs.get("dataset"), int(g.attrs["n_frames"])) for vid, g in videos]
    shards = [(key, [videos[i] for i in group]) for key, group in pack(entries, shard_frames, pack_frames)]
    done = set(cache.shard_keys())
    for key, members in shards:
        if key in done and cache.shard_state(key).table.ids == [vid for vid, _ in members]:
            report.kept_shards += 1
        else:
            _write_shard(cache, old, key, members, arrays, report)
        report.items += len(members)
    report.shards = len(shards)
    _carry_soft(cache, old, shards, report)
    if not in_place and "failures" in old:
        from emokd.cache import failures as _failures
        for vid, entry in _failures.failure_log(old).items():
            _failures.record_failure(cache.root, vid, entry["message"], entry.get("source"))
    done_record = {**record, "status": STATUS_COMPLETE, "completed": now_utc()}
    if report.single_split:
        done_record["limitation"] = LIMITATION.format(cache=target)
    # the commit, after every shard: one write of the root attributes that says "complete", records
    # who migrated, and drops version 1's attributes (the migration record keeps them)
    final = {k: v for k, v in dict(cache.root.attrs).items() if k not in VERSION1_ATTRS}
    final["migration"] = done_record
    if made_by is not None:
        final["made_by"] = cache.made_by_with(made_by)
    cache.root.attrs.put(final)
    if in_place:
        _drop_version1(old)
    _move_version1_files(old_url, target, in_place, storage_options, report)
    return report


def _move_version1_files(old_url, target, in_place: bool, storage_options, report: MigrationReport) -> None:
    """Version 1's extract.log and extract_config.yaml from inside the store to beside `target`
    (moved in place, copied from a store that is only read); on an object store, to the working
    directory (where runs on an object store log)."""
    local = sidecar_dir(target)
    for name, kept in VERSION1_FILES.items():
        if location.is_local(old_url):
            source = location.local_path(old_url) / name
            if not source.is_file():
                continue
            local.mkdir(parents=True, exist_ok=True)
            (shutil.move if in_place else shutil.copy2)(str(source), str(local / kept))
            report.moved.append(str(local / kept))
            continue
        fs, path = location.filesystem(old_url, storage_options)
        source = f"{path.rstrip('/')}/{name}"
        if not fs.exists(source):
            continue
        destination = local / kept if local is not None else run_files(target, "extract-version1")[name.endswith(".yaml")]
        if local is not None:
            local.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(fs.cat_file(source))
        if in_place:
            fs.rm_file(source)
        report.moved.append(str(destination))


def _drop_version1(root: zarr.Group) -> bool:
    """Delete what only version 1 had: videos/, labels/ (with the leftovers of a delete killed
    half-way), the per-video soft-label groups, and its root attributes (kept in the `migration`
    record; the commit drops them, a cache migrated by an older emokd may still have them).
    True when there was any."""
    from zarr.core.sync import sync

    root = zarr.open_group(store=root.store, mode="r+")   # the attributes as they are now
    attrs = dict(root.attrs)
    found = any(name in attrs for name in VERSION1_ATTRS)
    if found:
        root.attrs.put({k: v for k, v in attrs.items() if k not in VERSION1_ATTRS})   # one write
    for name in ("videos", "labels"):
        if not sync(root.store.is_empty(name)):
            found = True
            remove_node(root, name)
    if "soft" in root:
        for _key, run in root["soft"].groups():
            for child, _ in list(run.groups()):
                found = True
                remove_node(run, child)
    return found
