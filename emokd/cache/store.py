"""FeatureCache: the Zarr v3 feature cache (layout in docs/cache_format.md).

    cache.zarr/        attrs: emokd_cache (format tag), schema_version, fingerprint, settings,
                       encoders, config, created
      videos/<key>/    one group per video, written by exactly one task; status "complete" last
      labels/<key>/    per-frame labels (labels.py)
      soft/<run>/<key>/ teacher soft labels (soft.py)
      failures/<key>/  the failure log (failures.py)

<key> is the escaped video id (keys.py); the arrays of a video are those of schema.py. Readers see
only complete videos.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from emokd.constants import CACHE_SCHEMA_VERSION
from emokd.errors import CacheError
from emokd.cache import failures as _failures
from emokd.cache import labels as _labels
from emokd.cache import location
from emokd.cache import replace
from emokd.cache.replace import FORMAT_TAG, SUBGROUPS, VIDEOS
from emokd.cache import soft as _soft
from emokd.cache.beside import BesideFeatures
from emokd.cache.fingerprint import array_name, compute_fingerprint, differences, fingerprint_inputs
from emokd.cache.keys import decode_key, encode_key
from emokd.cache.schema import feature_dims, video_arrays
from emokd.cache.writer import RESERVED_ATTRS, STATUS_COMPLETE, STATUS_WRITING, VideoWriter, create_frame_array, now_utc



def _is_empty_skeleton(root: zarr.Group) -> bool:
    """Only our (empty) top-level groups: what `create` writes before the root attributes."""
    members = dict(root.members())
    return set(members) <= set(SUBGROUPS) and not any(list(group.keys()) for group in members.values())


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


class FeatureCache(BesideFeatures):
    """A feature cache on a local path or fsspec URL. Build with `create` or `open`."""

    def __init__(self, url: str | Path, root: zarr.Group, writable: bool,
                 storage_options: dict | None = None):
        self.url = str(url)
        self.root = root
        self.writable = writable
        self.storage_options = storage_options
        attrs = dict(root.attrs)
        self._attrs = attrs
        if attrs.get("emokd_cache") != FORMAT_TAG or "fingerprint" not in attrs:
            raise CacheError(f"{self.url}: a Zarr store, but not an emokd feature cache "
                             "(no emokd_cache/fingerprint attributes)")
        if attrs.get("schema_version") != CACHE_SCHEMA_VERSION:
            raise CacheError(f"{self.url}: cache schema version {attrs.get('schema_version')}, this emokd "
                             f"reads version {CACHE_SCHEMA_VERSION}; re-extract into a new path or with --overwrite")
        if writable:
            for name in SUBGROUPS:
                if name not in root:
                    root.create_group(name)

    # ---- create / open -------------------------------------------------------------------------
    @classmethod
    def create(cls, url: str | Path, settings: dict, config: dict, encoders: list[dict],
               overwrite: bool = False, storage_options: dict | None = None) -> FeatureCache:
        """A new cache, or the existing one at `url` when its fingerprint matches.

        A different fingerprint raises CacheError naming each differing setting; `overwrite=True`
        replaces an emokd cache at `url` (replace.py: the path holds the old cache or the new one at
        every moment). Anything at `url` that is not an emokd cache is refused and left untouched.
        """
        inputs = fingerprint_inputs(settings, encoders)
        fingerprint = compute_fingerprint(inputs)
        video_arrays(encoders)  # refuse records whose arrays could never be written, before writing
        attrs = {"emokd_cache": FORMAT_TAG, "schema_version": inputs["schema_version"],
                 "fingerprint": fingerprint, "settings": inputs["settings"], "encoders": inputs["encoders"],
                 "encoder_order": [array_name(r) for r in encoders],
                 "config": _jsonable(config or {}), "created": now_utc()}

        def build(target: str) -> None:
            root = location.open_root(target, "w", storage_options)
            for name in SUBGROUPS:
                root.create_group(name)
            root.attrs.update(attrs)  # last: a store without these attrs is not (yet) a cache

        try:
            replace.recover(url)
            state = replace.what_is_at(url, storage_options)
            if state == "cache" and not overwrite:
                existing = cls._existing(url, fingerprint, inputs, storage_options)
                if existing is not None:
                    return existing
            if state == "cache":
                location.check_writable(url, SUBGROUPS)
                replace.replace(url, build, storage_options)
            else:
                build(str(url))
        except OSError as exc:  # a full disk, a read-only or missing folder: nothing was replaced
            raise CacheError(f"{getattr(exc, 'filename', None) or url}: cannot create the cache: "
                             f"{exc.strerror or exc}") from exc
        return cls.open(url, mode="r+", storage_options=storage_options)

    @classmethod
    def matching(cls, url: str | Path, settings: dict, encoders: list[dict], overwrite: bool = False,
                 storage_options: dict | None = None) -> FeatureCache | None:
        """The cache that `create(url, settings, ..., encoders, overwrite)` would continue, opened
        read-only without writing anything (a dry run): None when there is nothing at `url` yet or
        `overwrite` would start again; the CacheError `create` would raise when it would refuse."""
        if replace.what_is_at(url, storage_options) != "cache" or overwrite:
            return None
        inputs = fingerprint_inputs(settings, encoders)
        return cls._existing(url, compute_fingerprint(inputs), inputs, storage_options, mode="r")

    @classmethod
    def complete_under(cls, url: str | Path, settings: dict, encoders: list[dict], overwrite: bool = False,
                       storage_options: dict | None = None) -> set[str]:
        """The videos that `create(url, settings, ..., encoders, overwrite)` would find complete."""
        existing = cls.matching(url, settings, encoders, overwrite, storage_options)
        return set() if existing is None else set(existing.video_ids())

    @classmethod
    def _existing(cls, url, fingerprint: str, inputs: dict, storage_options,
                  mode: str = "r+") -> FeatureCache | None:
        """The emokd store at `url` (opened with `mode`) if its fingerprint matches; None if it may be
        created afresh (an interrupted creation or replacement); else CacheError."""
        root = location.open_root(url, "r", storage_options)
        stored = dict(root.attrs)
        if not stored and _is_empty_skeleton(root):
            return None  # a creation interrupted before its attributes were written
        if replace.is_being_replaced(stored):
            return None  # an interrupted --overwrite of an object store: emptied, not yet rewritten
        if stored.get("fingerprint") != fingerprint:
            old = {key: stored.get(key) for key in ("schema_version", "settings", "encoders")}
            lines = differences(old, inputs) or ["(same settings, different fingerprint algorithm)"]
            raise CacheError(f"{url}: the existing cache was made with different settings:\n  "
                             + "\n  ".join(lines)
                             + "\nUse --overwrite to replace it, or choose a new cache path.")
        return cls.open(url, mode=mode, storage_options=storage_options)

    @classmethod
    def open(cls, url: str | Path, mode: str = "r", storage_options: dict | None = None) -> FeatureCache:
        """mode "r" (read only) or "r+" (workers that write videos, labels, soft labels)."""
        if mode not in ("r", "r+", "a"):
            raise CacheError(f"cache open mode must be 'r' or 'r+', got {mode!r}")
        if not location.has_zarr_root(url, storage_options):
            raise CacheError(f"{url}: no feature cache there (no zarr.json); create one with "
                             "`emokd extract-features`")
        if mode != "r":
            location.check_writable(url, SUBGROUPS)
        root = location.open_root(url, "r" if mode == "r" else "r+", storage_options)
        return cls(url, root, writable=mode != "r", storage_options=storage_options)

    def _require_writable(self, what: str) -> None:
        if not self.writable:
            raise CacheError(f"{self.url}: opened read-only; cannot {what} (open with mode='r+')")

    # ---- root attributes -----------------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        return self._attrs["fingerprint"]

    @property
    def schema_version(self) -> int:
        return self._attrs["schema_version"]

    @property
    def settings(self) -> dict:
        return self._attrs.get("settings", {})

    @property
    def config(self) -> dict:
        return self._attrs.get("config", {})

    @property
    def made_by(self) -> list[dict]:
        """Who wrote into this cache, oldest first (the last 20 extraction runs): emokd version,
        command line, working directory, dataset, time (`emokd.config.made_by`)."""
        return list(self._attrs.get("made_by", []))

    def note_made_by(self, record: dict, keep: int = 20) -> None:
        self._require_writable("record the command that wrote it")
        runs = (self.made_by + [_jsonable(record)])[-keep:]
        self.root.attrs["made_by"] = runs
        self._attrs["made_by"] = runs

    @property
    def encoders(self) -> list[dict]:
        """Encoder records in the order given at creation; each also has its "array" name."""
        records = self._attrs.get("encoders", {})
        order = self._attrs.get("encoder_order", list(records))
        return [{**records[name], "array": name} for name in order]

    @property
    def feature_dims(self) -> dict[str, int]:
        """Feature array name -> width, e.g. {"face": 256, "audio": 1000}."""
        return feature_dims(self.encoders)

    # ---- videos --------------------------------------------------------------------------------
    @property
    def _videos(self) -> zarr.Group:
        return self.root[VIDEOS]

    def _video_group(self, video_id: str) -> zarr.Group | None:
        key = encode_key(video_id)
        return self._videos[key] if key in self._videos else None

    def video_records(self) -> dict[str, dict]:
        """Every video group, complete or not: id -> its attrs (status, n_frames, fps, ...)."""
        out = {}
        for key, group in self._videos.groups():
            attrs = dict(group.attrs)
            out[attrs.get("video_id", decode_key(key))] = attrs
        return dict(sorted(out.items()))

    def video_statuses(self) -> dict[str, str]:
        """Every video group, complete or not: id -> status ("complete" or "writing")."""
        return {vid: attrs.get("status", STATUS_WRITING) for vid, attrs in self.video_records().items()}

    def video_ids(self, include_incomplete: bool = False) -> list[str]:
        return [vid for vid, status in self.video_statuses().items()
                if include_incomplete or status == STATUS_COMPLETE]

    def is_complete(self, video_id: str) -> bool:
        group = self._video_group(video_id)
        return group is not None and group.attrs.get("status") == STATUS_COMPLETE

    def complete_video_checks(self, only: set[str] | None = None) -> dict[str, tuple[dict, list[str]]]:
        """Every complete video (of `only`, when given): (its attrs, its defects by the cheap check of
        `video_defects`), in one pass over the video groups."""
        from emokd.cache.verify import video_defects

        arrays = video_arrays(self.encoders)
        out = {}
        for key, group in self._videos.groups():
            attrs = dict(group.attrs)
            vid = attrs.get("video_id", decode_key(key))
            if attrs.get("status") == STATUS_COMPLETE and (only is None or vid in only):
                out[vid] = (attrs, video_defects(vid, group, arrays))
        return out

    def video_defects(self, video_id: str) -> list[str]:
        """What is wrong with a complete video's arrays, found cheaply (verify.py `video_defects`:
        arrays present with their shapes, no chunk file lost); [] for an intact one."""
        from emokd.cache.verify import video_defects

        return video_defects(video_id, self._complete_group(video_id), video_arrays(self.encoders))

    def _complete_group(self, video_id: str) -> zarr.Group:
        group = self._video_group(video_id)
        if group is None:
            raise CacheError(f"{self.url}: no video {video_id!r} in the cache")
        if group.attrs.get("status") != STATUS_COMPLETE:
            raise CacheError(f"{self.url}: video {video_id!r} is incomplete (its extraction was interrupted); "
                             "re-run extract-features to redo it")
        return group

    def video_attrs(self, video_id: str) -> dict:
        return dict(self._complete_group(video_id).attrs)

    def n_frames(self, video_id: str) -> int:
        return int(self._complete_group(video_id).attrs["n_frames"])

    def read_video(self, video_id: str, names: list[str] | None = None) -> dict[str, np.ndarray]:
        """Arrays of one complete video (all, or `names`): face, audio, face_ok, audio_ok, pts, ..."""
        group = self._complete_group(video_id)
        if names is None:
            return {name: array[...] for name, array in group.arrays()}
        missing = [n for n in names if n not in group]
        if missing:
            raise CacheError(f"{self.url}: video {video_id!r} has no array(s) {missing}")
        return {name: group[name][...] for name in names}

    def begin_video(self, video_id: str, n_frames: int, attrs: dict | None = None, *,
                    replace: bool = False) -> VideoWriter:
        """Create the video's group with its arrays (schema.py) sized up front; returns its VideoWriter.

        A stale incomplete group is removed first; a complete one is kept unless `replace=True`.
        """
        self._require_writable(f"write video {video_id!r}")
        n_frames = int(n_frames)
        if n_frames < 1:
            raise CacheError(f"video {video_id!r}: n_frames must be at least 1, got {n_frames}")
        arrays = video_arrays(self.encoders)
        key = encode_key(video_id)
        if self.is_complete(video_id) and not replace:
            raise CacheError(f"{self.url}: video {video_id!r} is already complete (pass replace=True to redo it)")
        location.remove_node(self._videos, key)  # a stale group, or a killed writer's leftovers
        user_attrs = {k: v for k, v in _jsonable(attrs or {}).items() if k not in RESERVED_ATTRS}
        group = self._videos.create_group(key, attributes={
            **user_attrs, "video_id": video_id, "n_frames": n_frames, "status": STATUS_WRITING,
            "started": now_utc(), "writer": uuid.uuid4().hex})
        for spec in arrays.values():
            create_frame_array(group, spec.name, n_frames, spec.dim, spec.dtype, attributes=spec.attributes())
        return VideoWriter(group, video_id, n_frames, list(arrays),
                           {spec.name for spec in arrays.values() if spec.is_feature},
                           on_commit=lambda vid: _failures.clear_failure(self.root, vid))

    def delete_video(self, video_id: str) -> None:
        self._require_writable(f"delete video {video_id!r}")
        location.remove_node(self._videos, encode_key(video_id))

    # ---- summaries -----------------------------------------------------------------------------
    def info(self) -> dict:
        from emokd.cache.report import cache_info
        return cache_info(self)

    def verify(self) -> list[str]:
        """Defects, one line each; an empty list means none found."""
        from emokd.cache.verify import verify_cache
        return verify_cache(self)

    def __repr__(self) -> str:
        return f"FeatureCache({self.url!r}, fingerprint={self.fingerprint[:12]})"
