"""A teacher's predictions for every cached frame, written once under soft/<run>/ and reused.

`export_soft_labels` runs the teacher's best checkpoint over the videos that lack them (raw outputs,
not filled: a student reads the teacher's view of each frame) and marks the run complete.
`ensure_soft_labels` is what a student calls: it reuses complete soft labels without computing
anything and only fills videos added to the cache since. Each video's soft labels record the
sha256 of the checkpoint that made them, so a teacher retrained at the same path is never
silently mixed with, or replaced by, its predecessor's predictions: those videos are recomputed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from emokd.cache.store import FeatureCache
from emokd.errors import CacheError
from emokd.models.weights import sha256_file
from emokd.train.data import load_frame_data
from emokd.train.evaluate import predict_frames
from emokd.train.runs import BEST, RunDir, load_trained
from emokd.models.device import resolve_device

log = logging.getLogger(__name__)
VIDEOS_PER_CHUNK = 256


def soft_run_name(run: str | Path) -> str:
    cfg = RunDir(run).config()
    return cfg.soft_run or Path(run).resolve().name


def checkpoint_sha256(run: str | Path) -> str:
    return sha256_file(RunDir(run).file(BEST))


def _videos_to_write(cache: FeatureCache, name: str, checkpoint: str) -> list[str]:
    """Videos without soft labels of this checkpoint (missing, or made by an earlier teacher)."""
    return [v for v in cache.video_ids()
            if cache.soft_video_attrs(name, v).get("checkpoint_sha256") != checkpoint]


def _check_owner(cache: FeatureCache, name: str, run: str | Path) -> None:
    owner = cache.soft_run_attrs(name).get("teacher_run")
    if owner is not None and owner != str(Path(run).resolve()):
        raise CacheError(f"{cache.url}: soft labels {name!r} belong to teacher run {owner}, not "
                         f"{Path(run).resolve()}; set soft_run to another name in the teacher's config")


def export_soft_labels(cache_url: str, run: str | Path, device: str = "auto",
                       batch_size: int = 2048, only_missing: bool = True) -> tuple[str, int]:
    """Write the teacher run's soft labels; returns (soft run name, number of videos written)."""
    name = soft_run_name(run)
    dev = resolve_device(device)
    cache = FeatureCache.open(cache_url, mode="r+")
    _check_owner(cache, name, run)
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


def ensure_soft_labels(cache_url: str, teacher_run: str | Path, device: str = "auto") -> str:
    """The soft-label run name of `teacher_run`, computing only what the cache does not hold yet."""
    name = soft_run_name(teacher_run)
    cache = FeatureCache.open(cache_url)
    _check_owner(cache, name, teacher_run)
    missing = _videos_to_write(cache, name, checkpoint_sha256(teacher_run))
    if not missing and name in cache.soft_runs(complete_only=True):
        log.info("reusing soft labels %r of teacher %s (%d videos)", name, teacher_run,
                 len(cache.video_ids()))
        return name
    log.info("soft labels %r: %d videos missing or from another checkpoint; computing them from %s",
             name, len(missing), teacher_run)
    export_soft_labels(cache_url, teacher_run, device)
    return name
