"""`emokd predict-video`: a trained run on any video or folder of videos -> one CSV per video.

    VIDEO|FOLDER -> items -> the run's extraction settings -> cache (temporary or --cache, reused)
    -> the model on every frame -> optional centred smoothing in time -> per video
    <out>/<video id>.csv: frame, time (container pts, s), face_ok, valence, arousal, one column of
    probability per expression class and per AU (the tasks the run's recipe predicts)
    -> optionally <out>/abaw_mtl_submission.txt (the ABAW MTL format, one row per frame).

Frames without a face take the prediction of the nearest earlier face frame (the first face
frame's before it), as `emokd predict` does; face_ok says which frames those are.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emokd.apply.extraction import extract_config_for, extracted, run_extraction_settings
from emokd.apply.config import PredictVideoConfig
from emokd.apply.inputs import find_videos
from emokd.apply.smooth import smooth_in_time
from emokd.config import made_by, save_config, to_dict
from emokd.constants import AU_NAMES, EXPR_CLASSES, TASKS
from emokd.errors import DataError
from emokd.logs import file_log
from emokd.models.device import resolve_device
from emokd.train.predict import HEADER, decisions, submission_line, video_probabilities
from emokd.train.reading import checkpoint_sets
from emokd.train.recipes.base import build_recipe
from emokd.train.runs import BEST, RunDir, load_trained

__all__ = ["PredictVideoConfig", "VideoPrediction", "predict_cached", "predict_video", "write_abaw",
           "write_frame_csv"]

log = logging.getLogger(__name__)

CONFIG_FILE, LOG_FILE, ABAW_FILE = "predict_video.yaml", "predict_video.log", "abaw_mtl_submission.txt"


@dataclass
class VideoPrediction:
    video_id: str
    pts: np.ndarray                      # (n,) container presentation times, s
    face_ok: np.ndarray                  # (n,) bool
    probabilities: dict[str, np.ndarray]  # va (n, 2), expr (n, k), au (n, 12): the recipe's tasks


def predict_cached(run: str | Path, cache, video_ids: list[str], device: str = "auto", which: str = BEST,
                   smooth_s: float = 0.0, batch_size: int = 2048) -> list[VideoPrediction]:
    """The run's per-frame probabilities for cached videos, smoothed over `smooth_s` seconds."""
    dev = resolve_device(device)
    recipe, model, ckpt = load_trained(run, which, dev)
    probabilities = video_probabilities(model, recipe, cache, video_ids, dev, batch_size,
                                        sets=checkpoint_sets(ckpt))
    out = []
    for vid in video_ids:
        arrays = cache.read_video(vid, ["pts", "face_ok"])
        pts = np.asarray(arrays["pts"], np.float64)
        probs = {k: smooth_in_time(v, pts, smooth_s).astype(np.float32) for k, v in probabilities[vid].items()}
        out.append(VideoPrediction(vid, pts, np.asarray(arrays["face_ok"], bool), probs))
    return out


def csv_columns(prediction: VideoPrediction) -> list[str]:
    columns = ["frame", "time", "face_ok"]
    probs = prediction.probabilities
    if "va" in probs:
        columns += ["valence", "arousal"]
    if "expr" in probs:
        columns += list(EXPR_CLASSES[: probs["expr"].shape[1]])
    if "au" in probs:
        columns += list(AU_NAMES)
    return columns


def write_frame_csv(prediction: VideoPrediction, path: Path) -> Path:
    """One row per frame (see the module docstring); written whole, then renamed into place."""
    probs = prediction.probabilities
    values = [probs[k] for k in ("va", "expr", "au") if k in probs]
    table = np.concatenate(values, axis=1) if values else np.zeros((len(prediction.pts), 0))
    lines = [",".join(csv_columns(prediction))]
    for k, (t, ok, row) in enumerate(zip(prediction.pts, prediction.face_ok, table)):
        lines.append(f"{k},{t:.6f},{int(ok)}," + ",".join(f"{x:.6f}" for x in row))
    return _write_whole(path, "\n".join(lines) + "\n")


def write_abaw(predictions: list[VideoPrediction], path: Path) -> Path:
    """The ABAW MTL submission format, one row `<video>/NNNNN.jpg` per frame (00001.jpg = frame 0)."""
    lines = [HEADER]
    for prediction in predictions:
        decided = decisions(prediction.probabilities)
        for k in range(len(prediction.pts)):
            lines.append(submission_line(f"{prediction.video_id}/{k + 1:05d}.jpg", decided["va"][k],
                                         decided["expr"][k], decided["au"][k]))
    return _write_whole(path, "\n".join(lines) + "\n")


def _write_whole(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


@dataclass
class PredictVideoResult:
    csvs: list[Path]
    failures: dict[str, str]             # video id -> why its extraction failed
    abaw: Path | None = None
    frames: int = 0
    extracted: int = 0                   # videos extracted by this call
    reused: int = 0                      # videos already complete in --cache


def predict_video(cfg: PredictVideoConfig, progress: bool = True,
                  on_video: Callable[[object, VideoPrediction, object], None] | None = None) -> PredictVideoResult:
    """Run `cfg`; `on_video(cache, prediction, item)` is called for each predicted video while its
    cache still exists (the CLI draws the pictures there)."""
    out = Path(cfg.out)
    items = find_videos(cfg.videos)
    checkpoint = RunDir(cfg.run).load_checkpoint(cfg.checkpoint)
    if cfg.abaw:        # refused before any extraction
        build_recipe(checkpoint["recipe"], checkpoint["recipe_options"]).require_tasks(
            TASKS, "an ABAW MTL submission (--abaw)")
    if cfg.smooth < 0:
        raise DataError(f"--smooth {cfg.smooth}: must be >= 0 seconds")
    settings = run_extraction_settings(cfg.run, checkpoint, cfg.storage_options)
    extract_cfg = extract_config_for(settings, {
        "device": cfg.device, "workers": cfg.workers, "batch_size": cfg.batch_size,
        "storage_options": cfg.storage_options,
        "face_source": cfg.face_source, "detector_weights": cfg.detector_weights})
    cfg = dataclasses.replace(cfg, extract=to_dict(extract_cfg))
    out.mkdir(parents=True, exist_ok=True)
    provenance = made_by(dataset=str(Path(cfg.videos).resolve()))
    save_config(cfg, out / CONFIG_FILE, provenance)
    result = PredictVideoResult([], {})
    with file_log(out / LOG_FILE):
        log.info("predict-video: %d video(s) from %s with run %s (%s)", len(items), cfg.videos, cfg.run,
                 cfg.checkpoint)
        with extracted(items, cfg.run, settings, extract_cfg, cfg.cache, progress,
                       provenance=provenance) as (cache, summary):
            result.failures = dict(summary.failures)
            result.extracted, result.reused = summary.done, summary.skipped
            done = [item for item in items if cache.is_complete(item.video_id)]
            predictions = predict_cached(cfg.run, cache, [item.video_id for item in done], cfg.device,
                                         cfg.checkpoint, cfg.smooth) if done else []
            for item, prediction in zip(done, predictions):
                result.csvs.append(write_frame_csv(prediction, out / f"{item.video_id}.csv"))
                result.frames += len(prediction.pts)
                if on_video is not None:
                    on_video(cache, prediction, item)
            if cfg.abaw and predictions:
                result.abaw = write_abaw(predictions, out / ABAW_FILE)
        log.info("wrote %d CSV(s), %d frames; %d failed", len(result.csvs), result.frames, len(result.failures))
    return result
