"""A teacher's predictions for every cached frame, written once per shard under soft/<name>/ and
reused.

The name is the teacher's `soft_run` setting, by default `<run folder>-<8 hex of its absolute
path>`, so two teachers called `teacher` in different folders never collide. A teacher claims its
name in the cache before it trains (`claim_soft_name`): a name another teacher run holds is refused
then, not after training. `export_soft_labels` runs the teacher's best checkpoint, on the feature
sets it was trained on, over the shards that lack them (raw outputs, not filled: a student reads
the teacher's view of each frame) and marks the set complete; `emokd export-soft` calls it for a
trained teacher, under any name. `ensure_soft_labels` is what a student calls: it reuses a complete
set this teacher's checkpoint made, whatever its name, computing nothing, and only fills shards
added to the cache since. Each shard's soft labels record the sha256 of the checkpoint that made
them, so a teacher retrained at the same path is never silently mixed with, or replaced by, its
predecessor's predictions.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from emokd.cache.store import FeatureCache
from emokd.models.weights import sha256_file
from emokd.models.device import resolve_device
from emokd.train.data import load_frame_data
from emokd.train.evaluate import predict_frames
from emokd.train.reading import checkpoint_sets
from emokd.train.runs import BEST, RunDir, load_trained

log = logging.getLogger(__name__)
FRAMES_PER_CHUNK = 262_144   # shards are predicted in chunks of about this many frames


def default_soft_name(run: str | Path) -> str:
    """`<folder name>-<first 8 hex of sha256(absolute path)>`: unique per run directory."""
    path = Path(run).resolve()
    return f"{path.name}-{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"


def soft_run_name(run: str | Path, soft_run: str | None = None) -> str:
    """The soft-label name of a teacher run: `soft_run` if given, else its config's, else the default."""
    if soft_run:
        return soft_run
    cfg = RunDir(run).config() if RunDir(run).file("config.yaml").is_file() else None
    return (cfg.soft_run if cfg is not None and cfg.soft_run else None) or default_soft_name(run)


def claim_soft_name(cache_url: str, run: str | Path, name: str, storage_options: dict | None = None) -> None:
    """Reserve `name` for teacher `run` before it trains (CacheError if another run holds it)."""
    FeatureCache.open(cache_url, mode="r+", storage_options=storage_options).claim_soft_run(name, str(Path(run).resolve()))


def checkpoint_sha256(run: str | Path) -> str:
    return sha256_file(RunDir(run).file(BEST))


def _shards_to_write(cache: FeatureCache, name: str, checkpoint: str) -> list[str]:
    """Shards without soft labels of this checkpoint (missing, or made by an earlier teacher)."""
    return [key for key in cache.shard_keys()
            if cache.soft_shard_attrs(name, key).get("checkpoint_sha256") != checkpoint]


def _chunks(cache: FeatureCache, keys: list[str]) -> list[list[str]]:
    chunks, rows = [[]], 0
    for key in keys:
        n = cache.shard_state(key).table.n_rows
        if chunks[-1] and rows + n > FRAMES_PER_CHUNK:
            chunks.append([])
            rows = 0
        chunks[-1].append(key)
        rows += n
    return [c for c in chunks if c]


def export_soft_labels(cache_url: str, run: str | Path, device: str = "auto", batch_size: int = 2048,
                       only_missing: bool = True, name: str | None = None,
                       storage_options: dict | None = None) -> tuple[str, int]:
    """Write the teacher run's soft labels under `name` (default `soft_run_name`); returns (name,
    number of items written)."""
    name = soft_run_name(run, name)
    dev = resolve_device(device)
    cache = FeatureCache.open(cache_url, mode="r+", storage_options=storage_options)
    cache.claim_soft_run(name, str(Path(run).resolve()))
    checkpoint = checkpoint_sha256(run)
    todo = _shards_to_write(cache, name, checkpoint) if only_missing else cache.shard_keys()
    if not todo:
        return name, 0
    recipe, model, ckpt = load_trained(run, BEST, dev)
    sets = checkpoint_sets(ckpt)
    written = 0
    for keys in _chunks(cache, todo):
        ids = [i for key in keys for i in cache.index.items_of(key)]
        data = load_frame_data(cache, None, model.config.window, model.config.stride, device=dev,
                               video_ids=ids, **sets)
        raw = predict_frames(model, recipe, data, np.arange(data.n_frames), batch_size)
        shards = {key: {k: np.full((cache.shard_state(key).table.n_rows,) + a.shape[1:], np.nan, np.float32)
                        for k, a in raw.items()} for key in keys}
        for vid, s, n in zip(data.video_ids, data.video_start, data.video_len):
            loc = cache.index.location(vid)
            for k, a in raw.items():
                shards[loc.shard][k][loc.first:loc.first + loc.length] = a[s:s + n]
        for key, arrays in shards.items():
            cache.write_shard_soft(name, key, arrays, {"checkpoint_sha256": checkpoint})
        written += len(data.video_ids)
    cache.finish_soft_run(name, {"teacher_run": str(Path(run).resolve()), "epoch": int(ckpt["epoch"]),
                                 "recipe": ckpt["recipe"], "checkpoint_sha256": checkpoint,
                                 "feature_sets": ckpt.get("feature_sets")})
    log.info("soft labels %r: wrote %d items in %d shards", name, written, len(todo))
    return name, written


def _complete_sets_of(cache: FeatureCache, run: str | Path, checkpoint: str) -> list[str]:
    """Names of the complete soft-label sets this teacher run's current checkpoint made."""
    owner = str(Path(run).resolve())
    return [name for name in cache.soft_runs(complete_only=True)
            if cache.soft_run_attrs(name).get("teacher_run") == owner
            and cache.soft_run_attrs(name).get("checkpoint_sha256") == checkpoint]


def ensure_soft_labels(cache_url: str, teacher_run: str | Path, device: str = "auto",
                       storage_options: dict | None = None) -> str:
    """The soft-label name of `teacher_run`, computing only what the cache does not hold yet."""
    cache = FeatureCache.open(cache_url, storage_options=storage_options)
    checkpoint = checkpoint_sha256(teacher_run)
    default = soft_run_name(teacher_run)
    names = _complete_sets_of(cache, teacher_run, checkpoint)
    name = default if default in names or not names else names[0]
    missing = _shards_to_write(cache, name, checkpoint)
    if not missing and name in cache.soft_runs(complete_only=True):
        log.info("reusing soft labels %r of teacher %s (%d items)", name, teacher_run, len(cache.item_ids()))
        return name
    log.info("soft labels %r: %d shards missing or from another checkpoint; computing them from %s",
             name, len(missing), teacher_run)
    export_soft_labels(cache_url, teacher_run, device, name=name, storage_options=storage_options)
    return name
