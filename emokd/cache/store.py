"""FeatureCache: the Zarr v3 feature cache (layout in docs/cache_format.md).

    cache.zarr/          attrs: emokd_cache (format tag), schema_version, feature_sets, set_order,
                         config, created
      shards/<key>/      items end to end, written by exactly one task (shard.py): pts, one array
                         pair per feature set, labels/, soft/<run>/
      soft/<run>/        one teacher run's attributes (soft.py)
      failures/<key>/    the failure log (failures.py)

Readers see only complete items (items.py). Feature sets (sets.py) are registered in the root
attributes; each set's arrays in each shard carry their own status, so a set added later never
touches what is there.
"""

from __future__ import annotations

import dataclasses

import zarr

from emokd.constants import CACHE_SCHEMA_VERSION
from emokd.errors import CacheError
from emokd.cache import location
from emokd.cache import replace
from emokd.cache.replace import FORMAT_TAG, SUBGROUPS
from emokd.cache.beside import BesideFeatures
from emokd.cache.fingerprint import jsonable
from emokd.cache.reading import ItemAccess
from emokd.cache.schema import feature_dims
from emokd.cache.sets import FeatureSet, set_differences, sets_fingerprint, sets_from_records
from emokd.cache.writer import now_utc



def migrate_hint(url) -> str:
    return (f"convert it, keeping its features, with `emokd cache migrate {url} NEW_PATH` "
            f"(or `emokd cache migrate {url}` in place)")


class FeatureCache(ItemAccess, BesideFeatures):
    """A feature cache on a local path or fsspec URL. Build with `create` or `open`."""

    def __init__(self, url, root: zarr.Group, writable: bool, storage_options: dict | None = None,
                 migrating: bool = False):
        self.url = str(url)
        self.root = root
        self.writable = writable
        self.storage_options = storage_options
        self._index = None
        attrs = dict(root.attrs)
        self._attrs = attrs
        if attrs.get("emokd_cache") != FORMAT_TAG:
            raise CacheError(f"{self.url}: a Zarr store, but not an emokd feature cache (no emokd_cache attribute)")
        version = attrs.get("schema_version")
        if version != CACHE_SCHEMA_VERSION:
            hint = migrate_hint(self.url) if version == 1 else "re-extract into a new path or with --overwrite"
            raise CacheError(f"{self.url}: cache schema version {version}, this emokd reads version "
                             f"{CACHE_SCHEMA_VERSION}; {hint}")
        if (attrs.get("migration") or {}).get("status") == "writing" and not migrating:
            raise CacheError(f"{self.url}: a migration from schema version 1 was interrupted; run "
                             "`emokd cache migrate` with the same arguments again to finish it")
        if writable:
            for name in SUBGROUPS:
                if name not in root:
                    root.create_group(name)

    # ---- create / open -------------------------------------------------------------------------
    @classmethod
    def create(cls, url, settings: dict, config: dict, encoders: list[dict], overwrite: bool = False,
               storage_options: dict | None = None, set_names: dict[str, str] | None = None) -> FeatureCache:
        """`create_sets` with one feature set per encoder record, each hashed with `settings`."""
        sets = sets_from_records(settings, encoders, set_names, config)
        return cls.create_sets(url, sets, config, overwrite, storage_options)

    @classmethod
    def create_sets(cls, url, sets: list[FeatureSet], config: dict | None = None, overwrite: bool = False,
                    storage_options: dict | None = None, extra_attrs: dict | None = None) -> FeatureCache:
        """A new cache with `sets`, or the existing one at `url` with the sets it lacks registered.

        A set whose name exists with another fingerprint raises CacheError naming each difference;
        `overwrite=True` deletes whatever is at `url` and starts empty.
        """
        sets = [dataclasses.replace(fs, added=fs.added or now_utc()) for fs in sets]
        attrs = {"emokd_cache": FORMAT_TAG, "schema_version": CACHE_SCHEMA_VERSION,
                 "feature_sets": {fs.name: fs.to_attrs() for fs in sets}, "set_order": [fs.name for fs in sets],
                 "config": jsonable(config or {}), "created": now_utc(), **jsonable(extra_attrs or {})}

        def build(target: str) -> None:
            root = location.open_root(target, "w", storage_options)
            for name in SUBGROUPS:
                root.create_group(name)
            root.update_attributes(attrs)  # last: a store without these attrs is not (yet) a cache

        try:
            replace.recover(url)
            state = replace.what_is_at(url, storage_options)
            if state == "cache" and not overwrite:
                existing = cls._existing(url, sets, storage_options)
                if existing is not None:
                    existing.add_sets(sets)
                    return existing
            if state == "cache":
                location.check_writable(url, SUBGROUPS)
                replace.replace(url, build, storage_options)
            else:
                build(str(url))
        except OSError as exc:  # a full disk, a read-only or missing folder: nothing was replaced
            raise CacheError(f"{getattr(exc, 'filename', None) or url}: cannot create the cache: "
                             f"{exc.strerror or exc}") from exc
        return cls.open(url, mode="r+", storage_options=storage_options, migrating="migration" in attrs)

    @classmethod
    def existing(cls, url, sets: list[FeatureSet], overwrite: bool = False,
                 storage_options: dict | None = None) -> FeatureCache | None:
        """The cache that `create_sets(url, sets, ..., overwrite)` would continue, opened read-only
        after checking `sets` against it, without writing anything (a dry run): None when there is
        nothing at `url` yet or `overwrite` would start again; the CacheError `create_sets` would raise."""
        if replace.what_is_at(url, storage_options) != "cache" or overwrite:
            return None
        return cls._existing(url, sets, storage_options, mode="r")

    @classmethod
    def _existing(cls, url, sets: list[FeatureSet], storage_options, mode: str = "r+") -> FeatureCache | None:
        """The emokd store at `url` if `sets` agree with its sets of the same names; None if it may
        be created afresh (an interrupted creation or replacement); else CacheError."""
        root = location.open_root(url, "r", storage_options)
        stored = dict(root.attrs)
        if not stored and replace.is_empty_skeleton(root):
            return None  # a creation interrupted before its attributes were written
        if replace.is_being_replaced(stored):
            return None  # an interrupted --overwrite of an object store: emptied, not yet rewritten
        cache = cls.open(url, mode=mode, storage_options=storage_options)
        cache.check_sets(sets)
        return cache

    @classmethod
    def open(cls, url, mode: str = "r", storage_options: dict | None = None,
             migrating: bool = False) -> FeatureCache:
        """mode "r" (read only) or "r+" (workers that write shards, labels, soft labels);
        `migrating`: `emokd cache migrate` opens a cache its interrupted migration left."""
        if mode not in ("r", "r+", "a"):
            raise CacheError(f"cache open mode must be 'r' or 'r+', got {mode!r}")
        if not location.has_zarr_root(url, storage_options):
            raise CacheError(f"{url}: no feature cache there (no zarr.json); create one with "
                             "`emokd extract-features`")
        if mode != "r":
            location.check_writable(url, SUBGROUPS)
        root = location.open_root(url, "r" if mode == "r" else "r+", storage_options)
        return cls(url, root, writable=mode != "r", storage_options=storage_options, migrating=migrating)

    def refresh(self) -> None:
        """Read the root attributes and the item index again (after writes by other processes)."""
        self.root = zarr.open_group(store=self.root.store, mode="r+" if self.writable else "r")
        self._attrs = dict(self.root.attrs)
        self._index = self._kept = self._kept_labels = None
        self._sets = (None,)

    def _require_writable(self, what: str) -> None:
        if not self.writable:
            raise CacheError(f"{self.url}: opened read-only; cannot {what} (open with mode='r+')")

    # ---- feature sets --------------------------------------------------------------------------
    def check_sets(self, sets: list[FeatureSet]) -> None:
        """CacheError when a set of the same name has another fingerprint (naming each difference),
        or when a new name would hold exactly the values of an existing set."""
        known = {fs.name: fs for fs in self.feature_sets}
        by_print = {fs.fingerprint: fs.name for fs in self.feature_sets}
        lines = []
        for fs in sets:
            if fs.name in known and known[fs.name].fingerprint != fs.fingerprint:
                lines += set_differences(known[fs.name], fs) or [f"{fs.name}: (same inputs, other fingerprint)"]
            elif fs.name not in known and fs.fingerprint in by_print:
                raise CacheError(f"{self.url}: feature set {fs.name!r} would repeat the existing set "
                                 f"{by_print[fs.fingerprint]!r} (same encoder and settings); use that name")
        if lines:
            raise CacheError(f"{self.url}: the existing cache has these feature sets with other settings:\n  "
                             + "\n  ".join(lines) + "\nGive the new set another name (--face-set/--audio-set), "
                             "use --overwrite to replace the cache, or choose a new cache path.")

    def add_sets(self, sets: list[FeatureSet]) -> list[FeatureSet]:
        """Register the sets this cache lacks (after `check_sets`); returns those added."""
        self.check_sets(sets)
        known = {fs.name for fs in self.feature_sets}
        new = [fs for fs in sets if fs.name not in known]
        if new:
            self._require_writable("add feature sets")
            registry = {**self._attrs.get("feature_sets", {}), **{fs.name: fs.to_attrs() for fs in new}}
            order = list(self._attrs.get("set_order", [])) + [fs.name for fs in new]
            self.root.update_attributes({"feature_sets": registry, "set_order": order})
            self._attrs.update({"feature_sets": registry, "set_order": order})
        return new

    @property
    def feature_sets(self) -> list[FeatureSet]:
        """Every registered set, in the order they were added."""
        registry = self._attrs.get("feature_sets", {})
        order = tuple(self._attrs.get("set_order", registry))
        if getattr(self, "_sets", (None,))[0] != order:
            self._sets = (order, [FeatureSet.from_attrs(name, registry[name]) for name in order])
        return list(self._sets[1])

    def feature_set(self, name: str) -> FeatureSet:
        for fs in self.feature_sets:
            if fs.name == name:
                return fs
        raise CacheError(f"{self.url}: no feature set {name!r}; it has "
                         f"{', '.join(f'{fs.name} ({fs.kind})' for fs in self.feature_sets) or 'none'}")

    def sets_of_kind(self, kind: str) -> list[FeatureSet]:
        return [fs for fs in self.feature_sets if fs.kind == kind]

    def choose_set(self, kind: str, name: str | None = None) -> FeatureSet:
        """The set `name` (which must be of `kind`), or the first set of `kind`."""
        if name:
            fs = self.feature_set(name)
            if fs.kind != kind:
                raise CacheError(f"{self.url}: feature set {name!r} holds {fs.kind} features, not {kind}")
            return fs
        of_kind = self.sets_of_kind(kind)
        if not of_kind:
            raise CacheError(f"{self.url}: no {kind} feature set in the cache")
        return of_kind[0]

    @property
    def schema_version(self) -> int:
        return self._attrs["schema_version"]

    @property
    def fingerprint(self) -> str:
        """sha256 over every set's name and fingerprint: changes when a set is added (a run records
        that of the sets it read: `emokd.train.cache_check.cache_identity`)."""
        return sets_fingerprint(self.feature_sets)

    @property
    def migrated_from(self) -> str | None:
        """The fingerprint of the version 1 cache this one was migrated from (same features)."""
        return ((self._attrs.get("migration") or {}).get("from_attrs") or {}).get("fingerprint")

    @property
    def settings(self) -> dict:
        """The extraction settings of the default face and audio sets, merged."""
        out = {}
        for kind in ("audio", "face"):
            of_kind = self.sets_of_kind(kind)
            if of_kind:
                out.update(of_kind[0].settings)
        return out

    @property
    def config(self) -> dict:
        return self._attrs.get("config", {})

    @property
    def made_by(self) -> list[dict]:
        """Who wrote into this cache, oldest first (the last 20 extraction runs): emokd version,
        command line, working directory, dataset, time (`emokd.config.made_by`)."""
        return list(self._attrs.get("made_by", []))

    def made_by_with(self, record: dict, keep: int = 20) -> list[dict]:
        """`made_by` with `record` added (the last `keep`), for a write of several attributes at once."""
        return (self.made_by + [jsonable(record)])[-keep:]

    def note_made_by(self, record: dict, keep: int = 20) -> None:
        self._require_writable("record the command that wrote it")
        runs = self.made_by_with(record, keep)
        self.root.attrs["made_by"] = runs
        self._attrs["made_by"] = runs

    @property
    def encoders(self) -> list[dict]:
        """Encoder records of the sets, in order; each has its set's name as "array" and "set"."""
        return [fs.record() for fs in self.feature_sets]

    @property
    def feature_dims(self) -> dict[str, int]:
        """Set name -> width."""
        return feature_dims(self.feature_sets)

    # ---- summaries -----------------------------------------------------------------------------
    def info(self) -> dict:
        from emokd.cache.report import cache_info
        return cache_info(self)

    def verify(self) -> list[str]:
        """Defects, one line each; an empty list means none found."""
        from emokd.cache.verify import verify_cache
        return verify_cache(self)

    def __repr__(self) -> str:
        return f"FeatureCache({self.url!r}, sets={[fs.name for fs in self.feature_sets]})"
