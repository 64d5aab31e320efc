"""A trained run's per-frame predictions for one cached video, as `emokd inspect` draws them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emokd.models.device import resolve_device
from emokd.train.data import load_frame_data
from emokd.train.evaluate import predict_split
from emokd.train.runs import load_trained


def run_predictions(run: str | Path, cache, video_id: str, device: str = "cpu") -> dict[str, np.ndarray]:
    """Predictions of the run's best checkpoint for the tasks its recipe predicts: va (n, 2), expr
    (n,) class index, au (n, 12) probabilities; no-face frames filled from the nearest earlier face
    frame, as in `emokd predict`."""
    dev = resolve_device(device)
    recipe, model, _ = load_trained(run, device=dev)
    data = load_frame_data(cache, None, model.config.window, model.config.stride, device=dev,
                           video_ids=[video_id])
    _, raw = predict_split(model, recipe, data, None)
    probabilities, decided = recipe.probabilities(raw), recipe.decode(raw)
    out = {}
    if "VA" in recipe.tasks:
        out["va"] = np.asarray(probabilities["va"])
    if "EXPR" in recipe.tasks:
        out["expr"] = np.asarray(decided["expr"])
    if "AU" in recipe.tasks:
        out["au"] = np.asarray(probabilities["au"])
    return out
