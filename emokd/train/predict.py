"""ABAW MTL submission files from a trained run: `image,valence,arousal,expression,aus`.

A test list (parsed by `emokd.index.abaw.read_test_frames`) is a header line then one image path
per line, `<video_id>/NNNNN.jpg` (1-based: frame index = NNNNN - 1), or one video name per line
(every frame of that video gets a row `<video>/NNNNN.jpg`, 00001.jpg = frame 0). Every frame of the listed
videos is predicted from the cache; frames without a usable face, and listed frames past the end of
the cached video, take the nearest earlier prediction (as ABAW submissions do). The file needs all
three tasks: a recipe that does not predict VA, EXPR and AU cannot write one (MissingTasksError).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from emokd.cache.store import FeatureCache
from emokd.constants import TASKS
from emokd.errors import DataError
from emokd.index.abaw import read_test_frames
from emokd.models.device import resolve_device
from emokd.train.data import load_frame_data
from emokd.train.cache_check import check_same_cache
from emokd.train.reading import checkpoint_sets
from emokd.train.evaluate import predict_split
from emokd.train.runs import BEST, load_trained

HEADER = "image,valence,arousal,expression,aus"


def video_probabilities(model, recipe, cache, video_ids: list[str], device="cpu",
                        batch_size: int = 2048, sets: dict | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Per video id: the recipe's probabilities (`Recipe.probabilities`: va (n, 2), expr (n, k),
    au (n, 12), for the tasks it predicts) of every frame of that cached video, no-face frames
    filled from the nearest earlier face frame; `sets` the feature sets (`checkpoint_sets`)."""
    data = load_frame_data(cache, None, model.config.window, model.config.stride, device=device,
                           video_ids=list(video_ids), **(sets or {}))
    idx, raw = predict_split(model, recipe, data, None, batch_size)     # idx == arange(N), in order
    probabilities = recipe.probabilities(raw)
    return {vid: {task: np.asarray(values[int(s):int(s) + int(n)]) for task, values in probabilities.items()}
            for vid, s, n in zip(data.video_ids, data.video_start, data.video_len)}


def decisions(probabilities: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """ABAW decisions from probabilities: va as is, expr the most probable class, au 1 where p > 0.5
    (the recipes' `decode` on raw outputs gives the same)."""
    out = {}
    if "va" in probabilities:
        out["va"] = np.asarray(probabilities["va"], np.float32)
    if "expr" in probabilities:
        out["expr"] = np.asarray(probabilities["expr"]).argmax(1).astype(np.int64)
    if "au" in probabilities:
        out["au"] = (np.asarray(probabilities["au"]) > 0.5).astype(np.int64)
    return out


def submission_line(image: str, va, expr: int, au) -> str:
    """One row of an ABAW MTL submission file (`HEADER`)."""
    aus = ",".join(str(int(x)) for x in np.asarray(au).reshape(-1))
    return f"{image},{float(va[0]):.6f},{float(va[1]):.6f},{int(expr)},{aus}"


def expand_videos(entries: list[tuple[str, str, int | None]], row_of: dict[str, tuple[int, int]]):
    """Test-list entries with each video name (frame None) replaced by all of its frames."""
    for image, video, frame in entries:
        if frame is None:
            yield from ((f"{video}/{k + 1:05d}.jpg", video, k) for k in range(row_of[video][1]))
        else:
            yield image, video, frame


def write_submission(run: str | Path, cache_url: str, test_list: str | Path, out: str | Path,
                     device: str = "auto", batch_size: int = 2048, which: str = BEST,
                     storage_options: dict | None = None, allow_other_cache: bool = False) -> int:
    """Write the submission file `out` and, beside it, `<out>.json` (run, checkpoint, cache and its
    fingerprint, and the differences accepted by `allow_other_cache`); returns the rows written."""
    entries = read_test_frames(test_list)
    dev = resolve_device(device)
    recipe, model, ckpt = load_trained(run, which, dev)
    recipe.require_tasks(TASKS, "an ABAW MTL submission")
    cache = FeatureCache.open(cache_url, storage_options=storage_options)
    other = check_same_cache(ckpt, cache, run, allow_other_cache)
    videos = list(dict.fromkeys(video for _, video, _ in entries))
    known = set(cache.video_ids())
    absent = [v for v in videos if v not in known]
    if absent:
        raise DataError(f"{test_list}: {len(absent)} listed video(s) not complete in cache {cache_url}: "
                        f"{absent[:5]}")
    data = load_frame_data(cache, None, model.config.window, model.config.stride, device=dev, video_ids=videos,
                           **checkpoint_sets(ckpt))
    idx, raw = predict_split(model, recipe, data, None, batch_size)
    decided = recipe.decode(raw)
    row_of = {vid: (int(s), int(n)) for vid, s, n in zip(data.video_ids, data.video_start, data.video_len)}
    lines = [HEADER]
    for image, video, frame in expand_videos(entries, row_of):
        s, n = row_of[video]
        r = s + min(frame, n - 1)           # idx == arange(N) here: all videos, in order
        lines.append(submission_line(image, decided["va"][r], decided["expr"][r], decided["au"][r]))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("\n".join(lines) + "\n")
    Path(f"{out}.json").write_text(json.dumps({
        "run": str(run), "checkpoint": which, "epoch": ckpt.get("epoch"), "cache": str(cache_url),
        "cache_fingerprint": cache.fingerprint, "test_list": str(test_list), "rows": len(lines) - 1,
        **({"allowed_other_cache": other} if other else {})}, indent=2))
    return len(lines) - 1
