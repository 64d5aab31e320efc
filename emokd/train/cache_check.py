"""A run is tied to the features it was trained on: the fingerprint of the feature sets it read is
stored in every checkpoint, and whatever later uses the run (evaluate, predict, a student, a resumed
run) compares it with the same sets of the cache it is given (docs/safety.md). Other sets the cache
gained since do not matter; a cache migrated from the run's version 1 cache holds the same features.

A model trained on 112-pixel crops scored on a cache made from 96-pixel crops runs without an error
and reports numbers that mean nothing; so a mismatch is refused, naming every differing setting,
unless the user passes `--allow-other-cache`, which the output then records with the differences.
"""

from __future__ import annotations

import logging
from pathlib import Path

from emokd.cache.fingerprint import differences
from emokd.cache.sets import sets_fingerprint
from emokd.errors import CacheError

log = logging.getLogger(__name__)


def cache_identity(cache, sets: dict | None = None) -> dict:
    """What a checkpoint stores of the cache it was trained on: the feature sets it read (`sets`:
    {"face": name, "audio": name}; default the first of each kind)."""
    chosen = [cache.choose_set(kind, (sets or {}).get(kind)) for kind in ("face", "audio")]
    return {"url": cache.url, "fingerprint": sets_fingerprint(chosen), "schema_version": cache.schema_version,
            "settings": {fs.name: fs.settings for fs in chosen}, "encoders": {fs.name: fs.encoder for fs in chosen},
            "sets": {fs.name: fs.fingerprint for fs in chosen}}


def _document(identity: dict) -> dict:
    return {key: identity.get(key) for key in ("schema_version", "settings", "encoders")}


def check_same_cache(ckpt: dict, cache, where: str | Path, allow_other: bool = False) -> list[str]:
    """[] when `cache` is the one the checkpoint was trained on (same fingerprint). Otherwise the
    differing settings: CacheError, or with `allow_other` a warning and the list (to record)."""
    trained = ckpt.get("cache")
    if not trained or not trained.get("fingerprint"):
        log.warning("%s: the run records no cache fingerprint (written by an older emokd); cannot check that "
                    "%s holds the features it was trained on", where, cache.url)
        return []
    now = cache_identity(cache, ckpt.get("feature_sets"))
    if trained["fingerprint"] in (now["fingerprint"], cache.migrated_from):
        return []
    lines = [line.replace("cache has", "the run's cache had").replace("requested", "this cache has")
             for line in differences(_document(trained), _document(now))]
    lines = lines or ["(same settings, different fingerprint)"]
    if not allow_other:
        raise CacheError(f"{cache.url}: not the features {where} was trained on ({trained.get('url')}): "
                         + "; ".join(lines) + "; use the run's cache, or --allow-other-cache to use this one anyway")
    log.warning("%s: used on another cache (--allow-other-cache): %s", where, "; ".join(lines))
    return lines
