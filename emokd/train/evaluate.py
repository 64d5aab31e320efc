"""Whole-set predictions and metrics, shared by the loop (validation), `emokd evaluate` and soft labels.

Metrics are computed once over every labelled frame of the split, never per batch. Frames without a
face get the prediction of the nearest earlier frame with a face, as ABAW submissions do.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from emokd.cache.store import FeatureCache
from emokd.train.data import FrameData, fill_from_earlier, load_frame_data
from emokd.errors import ConfigError
from emokd.train.recipes.base import Recipe
from emokd.train.runs import BEST, RunDir, load_trained
from emokd.models.device import resolve_device


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


def predict_split(model, recipe: Recipe, data: FrameData, split: str,
                  batch_size: int = 2048) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(frame ids, filled raw outputs) for every frame of the split's videos."""
    idx = data.frames(split)
    raw = predict_frames(model, recipe, data, idx, batch_size)
    ok = data.face_ok[idx]
    # fill within each video: a no-face frame's source is the nearest earlier face frame of its video
    video = data.frame_video[idx]
    out = {k: np.empty_like(a) for k, a in raw.items()}
    for v in np.unique(video):
        rows = np.flatnonzero(video == v)
        for k, a in raw.items():
            out[k][rows] = fill_from_earlier(a[rows], ok[rows])
    return idx, out


def evaluate_split(model, recipe: Recipe, data: FrameData, split: str,
                   batch_size: int = 2048) -> dict[str, float]:
    """The recipe's validation metrics (exactly its `metric_keys`) over every frame of the split."""
    idx, raw = predict_split(model, recipe, data, split, batch_size)
    metrics = recipe.metrics(raw, data.labels_of(idx))
    if set(metrics) != set(recipe.metric_keys):
        raise ConfigError(f"recipe {recipe.name}: metrics returned {sorted(metrics)}, its metric_keys "
                          f"declare {sorted(recipe.metric_keys)}")
    return metrics


def evaluate_run(run: str | Path, cache_url: str, split: str = "validation", device: str = "auto",
                 which: str = BEST, batch_size: int = 2048) -> dict[str, float]:
    """Metrics of a run's checkpoint on a split of a cache; saved as eval_<split>.json in the run.
    The recipe's `metric_keys` say which keys of the result are metrics."""
    dev = resolve_device(device)
    recipe, model, ckpt = load_trained(run, which, dev)
    cache = FeatureCache.open(cache_url)
    data = load_frame_data(cache, [split], model.config.window, model.config.stride, device=dev)
    metrics = evaluate_split(model, recipe, data, split, batch_size)
    result = {"run": str(run), "checkpoint": which, "epoch": ckpt["epoch"], "recipe": recipe.name,
              "cache": cache_url, "split": split, "n_frames": int(data.n_frames), **metrics}
    (RunDir(run).file(f"eval_{split}.json")).write_text(json.dumps(result, indent=2))
    return result
