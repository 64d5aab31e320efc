"""AFEW-VA reader: one folder per clip, frame images plus `<clip>.json`.

The JSON's `frames` maps frame ids ("00000", ...) to `valence`, `arousal` in [-10, 10] and
`landmarks` (68 x 2 points). Each clip is an image-sequence item `afew_va/<clip>` whose frames are
the JSON's frame ids in numeric order, labels scaled to [-1, 1], and a face box per frame: the
tight bounding box of its landmarks (x, y, w, h). AFEW-VA has no official split and no frame rate
in its files: `split` and `fps` are arguments.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from emokd.index.manifest import FrameLabels, VideoItem
from emokd.index.readers.common import frame_labels_arrays, malformed

DATASET = "afew_va"
SCALE = 10.0
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _frame_image(clip_dir: Path, frame_id: str, json_path: Path) -> Path:
    for suffix in IMAGE_SUFFIXES:
        path = clip_dir / f"{frame_id}{suffix}"
        if path.is_file():
            return path
    raise malformed(json_path, None, f"frame {frame_id}: no image {frame_id}.png/.jpg in {clip_dir}")


def read_afew_va_clip(clip_dir: Path, name: str = DATASET, split: str = "train", fps: float = 25.0) -> VideoItem:
    json_path = clip_dir / f"{clip_dir.name}.json"
    if not json_path.is_file():
        candidates = sorted(clip_dir.glob("*.json"))
        if len(candidates) != 1:
            raise malformed(clip_dir, None, f"expected one annotation JSON, found {len(candidates)}")
        json_path = candidates[0]
    try:
        data = json.loads(json_path.read_text())
    except json.JSONDecodeError as exc:
        raise malformed(json_path, exc.lineno, f"not valid JSON: {exc.msg}") from None
    frames = data.get("frames") if isinstance(data, dict) else None
    if not isinstance(frames, dict) or not frames:
        raise malformed(json_path, None, "no 'frames' object")
    try:
        ids = sorted(frames, key=int)
    except ValueError:
        raise malformed(json_path, None, f"frame ids must be numbers, got {sorted(frames)[:3]}") from None
    va, expr, au = frame_labels_arrays(len(ids))
    boxes = np.full((len(ids), 4), np.nan, np.float32)
    for k, frame_id in enumerate(ids):
        entry = frames[frame_id]
        try:
            valence, arousal = float(entry["valence"]), float(entry["arousal"])
        except (KeyError, TypeError, ValueError) as exc:
            raise malformed(json_path, None, f"frame {frame_id}: bad valence/arousal ({exc!r})") from None
        if not (-SCALE <= valence <= SCALE and -SCALE <= arousal <= SCALE):
            raise malformed(json_path, None, f"frame {frame_id}: valence/arousal ({valence}, {arousal}) "
                                             f"outside [-10, 10]")
        va[k] = (valence / SCALE, arousal / SCALE)
        points = np.asarray(entry.get("landmarks") or [], dtype=np.float32).reshape(-1, 2)
        if len(points):
            low, high = points.min(0), points.max(0)
            boxes[k] = (low[0], low[1], high[0] - low[0], high[1] - low[1])
    images = [_frame_image(clip_dir, frame_id, json_path) for frame_id in ids]
    return VideoItem(video_id=f"{name}/{clip_dir.name}", video_path=None, crop_dir=None,
                     labels=FrameLabels(va=va, expr=expr, au=au), split=split, dataset=name,
                     frame_images=images, face_boxes=None if np.isnan(boxes).all() else boxes, fps=fps)


def read_afew_va(root: str | Path, name: str = DATASET, split: str = "train",
                 fps: float = 25.0) -> tuple[list[VideoItem], list[str]]:
    """Every clip folder `<clip>/<clip>.json` under `root`, at any depth (the archive ships in
    parts); a folder directly under `root` that holds no clip is reported."""
    root = Path(root)
    if not root.is_dir():
        raise malformed(root, None, "AFEW-VA root is not a folder")
    clip_dirs = sorted({p.parent for p in root.rglob("*.json") if p.stem == p.parent.name})
    problems = [f"{d}: no annotation JSON, skipped" for d in sorted(root.iterdir())
                if d.is_dir() and not any(c == d or d in c.parents for c in clip_dirs)]
    items = [read_afew_va_clip(clip_dir, name, split, fps) for clip_dir in clip_dirs]
    if not items:
        raise malformed(root, None, "no AFEW-VA clip folder with a JSON found")
    return items, problems
