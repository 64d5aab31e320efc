"""A teacher's predictions for every cached frame, written once under soft/<name>/ and reused.

The name is the teacher's `soft_run` setting, by default `<run folder>-<8 hex of its absolute
path>`, so two teachers called `teacher` in different folders never collide. A teacher claims its
name in the cache before it trains (`claim_soft_name`): a name another teacher run holds is refused
then, not after training. `export_soft_labels` runs the teacher's best checkpoint over the videos
that lack them (raw outputs, not filled: a student reads the teacher's view of each frame) and
marks the set complete; `emokd export-soft` calls it for a trained teacher, under any name.
`ensure_soft_labels` is what a student calls: it reuses a complete set this teacher's checkpoint
made, whatever its name, computing nothing, and only fills videos added to the cache since. Each
video's soft labels record the sha256 of the checkpoint that made them, so a teacher retrained at
the same path is never silently mixed with, or replaced by, its predecessor's predictions.
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
from emokd.train.runs import BEST, RunDir, load_trained

log = logging.getLogger(__name__)
VIDEOS_PER_CHUNK = 256


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


def _videos_to_write(cache: FeatureCache, name: str, checkpoint: str) -> list[str]:
    """Videos without soft labels of this checkpoint (missing, or made by an earlier teacher)."""
    return [v for v in cache.video_ids()
            if cache.soft_video_attrs(name, v).get("checkpoint_sha256") != checkpoint]


def export_soft_labels(cache_url: str, run: str | Path, device: str = "auto", batch_size: int = 2048,
                       only_missing: bool = True, name: str | None = None,
                       storage_options: dict | None = None) -> tuple[str, int]:
    """Write the teacher run's soft labels under `name` (default `soft_run_name`); returns (name,
    number of videos written)."""
    name = soft_run_name(run, name)
    dev = resolve_device(device)
    cache = FeatureCache.open(cache_url, mode="r+", storage_options=storage_options)
    cache.claim_soft_run(name, str(Path(run).resolve()))
    checkpoint = checkpoint_sha256(run)
    todo = _videos_to_write(cache, name, checkpoint) if only_missing else cache.video_ids()
    if not todo:
        return name, 0
    recipe, model, ckpt = load_trained(run, BEST, dev)
    for start in range(0, len(todo), VIDEOS_PER_CHUNK):
        data = load_frame_data(cache, None, model.config.window, model.config.stride, device=dev,
                               video_ids=todo[start:start + VIDEOS_PER_CHUNK])
        for v, vid in enumerate(data.video_ids):
            s, n = int(data.video_start[v]), int(data.video_len[v])
            raw = predict_frames(model, recipe, data, np.arange(s, s + n), batch_size)
            cache.write_soft(name, vid, {k: a.astype(np.float32) for k, a in raw.items()},
                             {"checkpoint_sha256": checkpoint})
    cache.finish_soft_run(name, {"teacher_run": str(Path(run).resolve()), "epoch": int(ckpt["epoch"]),
                                 "recipe": ckpt["recipe"], "checkpoint_sha256": checkpoint})
    log.info("soft labels %r: wrote %d videos", name, len(todo))
    return name, len(todo)


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
    missing = _videos_to_write(cache, name, checkpoint)
    if not missing and name in cache.soft_runs(complete_only=True):
        log.info("reusing soft labels %r of teacher %s (%d videos)", name, teacher_run, len(cache.video_ids()))
        return name
    log.info("soft labels %r: %d videos missing or from another checkpoint; computing them from %s",
             name, len(missing), teacher_run)
    export_soft_labels(cache_url, teacher_run, device, name=name, storage_options=storage_options)
    return name
