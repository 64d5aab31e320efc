"""ABAW submission files from a trained run: `image,valence,arousal,expression,aus`.

A test list is a header line then one image path per line, `<video_id>/NNNNN.jpg` (1-based: frame
index = NNNNN - 1). Every frame of the listed videos is predicted from the cache; frames without a
usable face, and listed frames past the end of the cached video, take the nearest earlier
prediction (as ABAW submissions do).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emokd.cache.store import FeatureCache
from emokd.constants import N_AU
from emokd.errors import DataError
from emokd.train.data import load_frame_data
from emokd.train.evaluate import predict_split
from emokd.train.runs import BEST, load_trained
from emokd.train.config import resolve_device

HEADER = "image,valence,arousal,expression,aus"


def read_test_list(path: str | Path) -> list[tuple[str, str, int]]:
    """(image path as listed, video id, 0-based frame index) per line after the header."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: test list not found")
    out = []
    for number, line in enumerate(path.read_text().splitlines()[1:], start=2):
        image = line.strip().split(",")[0]
        if not image:
            continue
        video, _, name = image.rpartition("/")
        stem = Path(name).stem
        if not video or not stem.isdigit() or int(stem) < 1:
            raise DataError(f"{path}:{number}: {image!r} is not <video>/<NNNNN>.jpg with NNNNN >= 1")
        out.append((image, video, int(stem) - 1))
    if not out:
        raise DataError(f"{path}: the test list has no image lines after its header")
    return out


def write_submission(run: str | Path, cache_url: str, test_list: str | Path, out: str | Path,
                     device: str = "auto", batch_size: int = 2048, which: str = BEST) -> int:
    """Write the submission file `out`; returns the number of rows written."""
    entries = read_test_list(test_list)
    dev = resolve_device(device)
    recipe, model, ckpt = load_trained(run, which, dev)
    cache = FeatureCache.open(cache_url)
    videos = list(dict.fromkeys(video for _, video, _ in entries))
    known = set(cache.video_ids())
    absent = [v for v in videos if v not in known]
    if absent:
        raise DataError(f"{test_list}: {len(absent)} listed video(s) not complete in cache {cache_url}: "
                        f"{absent[:5]}")
    data = load_frame_data(cache, None, ckpt["dims"]["window"], ckpt["stride"], device=dev, video_ids=videos)
    idx, raw = predict_split(model, recipe, data, None, batch_size)
    decided = recipe.decode(raw)
    row_of = {vid: (int(s), int(n)) for vid, s, n in zip(data.video_ids, data.video_start, data.video_len)}
    lines = [HEADER]
    for image, video, frame in entries:
        s, n = row_of[video]
        r = s + min(frame, n - 1)           # idx == arange(N) here: all videos, in order
        va, expr, au = decided["va"][r], int(decided["expr"][r]), decided["au"][r]
        aus = ",".join(str(int(x)) for x in np.asarray(au).reshape(-1)[:N_AU])
        lines.append(f"{image},{va[0]:.6f},{va[1]:.6f},{expr},{aus}")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("\n".join(lines) + "\n")
    return len(lines) - 1
