"""Whole-set predictions and metrics, shared by the loop (validation), `emokd evaluate` and soft labels.

Metrics are computed once over every labelled frame of the split, never per batch, and each task on
its own set: task t is scored on the frames of the videos whose t split is the evaluated split (a
video can be VA training and EXPR validation data). A recipe's `mtl_score_key` (jeong2022: P_MTL)
is computed on the dataset's MTL set of that split when it has one (ABAW3 MTL validation set),
otherwise from the per-task sets; the result says which. Frames without a face get the prediction
of the nearest earlier frame with a face, as ABAW submissions do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from emokd.cache.store import FeatureCache
from emokd.constants import TASKS
from emokd.errors import ConfigError, DataError
from emokd.models.device import resolve_device
from emokd.train.data import FrameData, fill_within_items, load_frame_data
from emokd.train.cache_check import check_same_cache
from emokd.train.reading import checkpoint_sets
from emokd.train.recipes.base import Recipe, require_datasets
from emokd.train.runs import BEST, RunDir, load_trained

MTL_SET, PER_TASK_SETS = "MTL set", "per-task sets"


@dataclass
class Evaluation:
    """What one evaluation found: the recipe's metrics, and per task the videos and frames scored."""

    split: str
    metrics: dict[str, float]
    tasks: dict[str, dict] = field(default_factory=dict)   # task -> n_videos, n_frames, its metrics
    mtl_on: str | None = None          # where `mtl_score_key` was computed: MTL_SET | PER_TASK_SETS

    def mtl_description(self) -> str | None:
        if self.mtl_on is None:
            return None
        return (f"the MTL {self.split} set" if self.mtl_on == MTL_SET
                else f"the per-task {self.split} sets (the dataset has no MTL {self.split} set)")

    def to_dict(self) -> dict:
        return {**self.metrics, "tasks": self.tasks, "mtl_on": self.mtl_description()}


@torch.no_grad()
def predict_frames(model: torch.nn.Module, recipe: Recipe, data: FrameData, idx: np.ndarray,
                   batch_size: int = 2048) -> dict[str, np.ndarray]:
    """Raw outputs (`recipe.soft_outputs`) for frame ids `idx`, model in eval mode."""
    was_training = model.training
    model.eval()
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(idx), batch_size):
        out = recipe.soft_outputs(recipe.forward(model, data.batch(idx[start:start + batch_size])))
        for name, value in out.items():
            parts.setdefault(name, []).append(value.float().cpu().numpy())
    model.train(was_training)
    return {name: np.concatenate(values) for name, values in parts.items()}


def predict_videos(model, recipe: Recipe, data: FrameData, videos: np.ndarray,
                   batch_size: int = 2048) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(frame ids, filled raw outputs) for every frame of the video indices `videos`."""
    idx = data.frames(videos=videos)
    raw = predict_frames(model, recipe, data, idx, batch_size)
    ok = data.face_ok[idx]
    # fill within each item: a no-face frame's source is the nearest earlier face frame of its item
    video = data.frame_video[idx]
    return idx, {k: fill_within_items(a, ok, video) for k, a in raw.items()}


def predict_split(model, recipe: Recipe, data: FrameData, split: str | None,
                  batch_size: int = 2048) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """`predict_videos` of the videos with some task in `split` (every loaded video if None)."""
    videos = np.arange(len(data.video_ids)) if split is None else data.videos_in(split)
    return predict_videos(model, recipe, data, videos, batch_size)


def evaluated_videos(recipe: Recipe, data: FrameData, split: str) -> np.ndarray:
    """Indices of the videos with some task in `split`, of the recipe's evaluation datasets (a name
    that matches no dataset of `data` is a ConfigError)."""
    keep = set(recipe.evaluation_datasets())
    require_datasets("eval_datasets", keep, data)
    return np.array([v for v in data.videos_in(split) if not keep or data.video_dataset[v] in keep], np.int64)


def split_labels(data: FrameData, idx: np.ndarray, split: str) -> dict[str, np.ndarray]:
    """Labels of frames `idx`, each task's kept only where it belongs to `split` (else missing)."""
    labels = {k: v.copy() for k, v in data.labels_of(idx).items()}
    for task, key, missing in (("VA", "va", np.nan), ("EXPR", "expr", -1), ("AU", "au", -1)):
        labels[key][~data.in_split(split, task)[idx]] = missing
    return labels


def _counts(data: FrameData, idx: np.ndarray, scored: np.ndarray) -> dict[str, int]:
    return {"n_videos": int(len(np.unique(data.frame_video[idx[scored]]))), "n_frames": int(scored.sum())}


def evaluate(model, recipe: Recipe, data: FrameData, split: str, batch_size: int = 2048) -> Evaluation:
    """The recipe's metrics (exactly its `metric_keys`) over `split`, each task on its own set."""
    videos = evaluated_videos(recipe, data, split)
    if not len(videos):
        raise DataError(f"no video of the evaluated datasets {list(recipe.evaluation_datasets()) or 'all'} "
                        f"has a task in split {split!r}")
    idx, raw = predict_videos(model, recipe, data, videos, batch_size)
    metrics = recipe.metrics(raw, split_labels(data, idx, split))
    if set(metrics) != set(recipe.metric_keys):
        raise ConfigError(f"recipe {recipe.name}: metrics returned {sorted(metrics)}, its metric_keys "
                          f"declare {sorted(recipe.metric_keys)}")
    result = Evaluation(split, metrics)
    for task in (t for t in TASKS if t in recipe.tasks):
        scored = data.split_labelled(split, task)[idx]
        result.tasks[task] = {**_counts(data, idx, scored),
                              **{k: metrics[k] for k in recipe.task_metric_keys.get(task, ())}}
    key = recipe.mtl_score_key
    if key is not None:
        result.mtl_on = PER_TASK_SETS
        if data.has_mtl_set(split):
            rows = (data.mtl & data.in_split(split, "MTL"))[idx]
            on_set = recipe.metrics({k: v[rows] for k, v in raw.items()}, data.labels_of(idx[rows]))
            metrics[key] = on_set[key]
            result.mtl_on = MTL_SET
            result.tasks["MTL"] = {**_counts(data, idx, rows), **on_set}
    return result


def evaluate_run(run: str | Path, cache_url: str, split: str = "validation", device: str = "auto",
                 which: str = BEST, batch_size: int = 2048, storage_options: dict | None = None,
                 allow_other_cache: bool = False) -> dict:
    """Metrics of a run's checkpoint on a split of a cache; saved as eval_<split>.json in the run.
    The recipe's `metric_keys` say which top-level keys are metrics; `tasks` holds per task the
    videos and frames scored and their metrics, `mtl_on` where the MTL score was computed. A cache
    whose fingerprint differs from the run's training cache is refused (cache_check.py) unless
    `allow_other_cache`, which the result then records with the differences."""
    dev = resolve_device(device)
    recipe, model, ckpt = load_trained(run, which, dev)
    cache = FeatureCache.open(cache_url, storage_options=storage_options)
    other = check_same_cache(ckpt, cache, run, allow_other_cache)
    data = load_frame_data(cache, [split], model.config.window, model.config.stride, device=dev,
                           **checkpoint_sets(ckpt))
    found = evaluate(model, recipe, data, split, batch_size)
    result = {"run": str(run), "checkpoint": which, "epoch": ckpt["epoch"], "recipe": recipe.name,
              "cache": cache_url, "cache_fingerprint": cache.fingerprint, "split": split,
              "n_frames": int(len(data.frames(videos=evaluated_videos(recipe, data, split)))),
              **found.to_dict(), **({"allowed_other_cache": other} if other else {})}
    (RunDir(run).file(f"eval_{split}.json")).write_text(json.dumps(result, indent=2))
    return result
