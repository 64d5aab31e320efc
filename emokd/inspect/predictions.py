"""A trained run's per-frame predictions for one cached video, as `emokd inspect` draws them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emokd.models.device import resolve_device
from emokd.train.predict import decisions, video_probabilities
from emokd.train.reading import checkpoint_sets
from emokd.train.runs import load_trained


def run_predictions(run: str | Path, cache, video_id: str, device: str = "cpu") -> dict[str, np.ndarray]:
    """Predictions of the run's best checkpoint for the tasks its recipe predicts: va (n, 2), expr
    (n,) class index, au (n, 12) probabilities; no-face frames filled from the nearest earlier face
    frame, as in `emokd predict`."""
    dev = resolve_device(device)
    recipe, model, ckpt = load_trained(run, device=dev)
    return picture_predictions(video_probabilities(model, recipe, cache, [video_id], dev,
                                                   sets=checkpoint_sets(ckpt))[video_id])


def picture_predictions(probabilities: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What the picture draws from a video's probabilities: va, the decided expression, AU probabilities."""
    out = {k: np.asarray(v) for k, v in probabilities.items() if k in ("va", "au")}
    if "expr" in probabilities:
        out["expr"] = decisions(probabilities)["expr"]
    return out
