"""ExpW (Expression in-the-Wild) reader: `label.lst` -> one one-frame item per labelled face.

Each line: `image_name face_id top left right bottom confidence expression`, expression
0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral. One image can hold several
faces (several lines with the same image name): each face becomes its own item
`expw/<image stem>/<face_id>` sharing the image file, with its own (x, y, w, h) box.
ExpW has no official split: every item gets `split` (default "train").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emokd.index.manifest import FrameLabels, VideoItem
from emokd.index.readers.common import STILL_FPS, find_dir, find_file, frame_labels_arrays, malformed

DATASET = "expw"
# ExpW code -> emokd EXPR index (Neutral, Anger, Disgust, Fear, Happiness, Sadness, Surprise)
EXPR_MAP = {0: 1, 1: 2, 2: 3, 3: 4, 4: 5, 5: 6, 6: 0}


def _parse_line(text: str, path: Path, line_no: int) -> tuple[str, int, np.ndarray, float, int]:
    fields = text.split()
    if len(fields) != 8:
        raise malformed(path, line_no, f"expected 8 fields (image face_id top left right bottom confidence "
                                        f"expression), found {len(fields)}")
    try:
        face_id = int(fields[1])
        top, left, right, bottom = (float(v) for v in fields[2:6])
        confidence, code = float(fields[6]), int(fields[7])
    except ValueError as exc:
        raise malformed(path, line_no, f"not a number: {exc}") from None
    if code not in EXPR_MAP:
        raise malformed(path, line_no, f"expression {code} is not one of 0-6")
    if right <= left or bottom <= top:
        raise malformed(path, line_no, f"empty face box top={top} left={left} right={right} bottom={bottom}")
    box = np.array([[left, top, right - left, bottom - top]], np.float32)
    return fields[0], face_id, box, confidence, code


def read_expw(root: str | Path, name: str = DATASET, split: str = "train",
              min_confidence: float | None = None) -> tuple[list[VideoItem], list[str]]:
    """Items of ExpW under `root` (label/label.lst or label.lst; images in image/origin, origin or root)."""
    root = Path(root)
    path = find_file(root, ("label/label.lst", "label.lst"), "ExpW label.lst")
    images = find_dir(root, ("image/origin", "origin", "image"))
    items, problems, seen, low = [], [], set(), 0
    with open(path) as handle:
        for line_no, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            image, face_id, box, confidence, code = _parse_line(text, path, line_no)
            if min_confidence is not None and confidence < min_confidence:
                low += 1
                continue
            item_id = f"{name}/{image.rsplit('.', 1)[0]}/{face_id}"
            if item_id in seen:
                raise malformed(path, line_no, f"face {face_id} of {image} listed twice")
            seen.add(item_id)
            va, expr, au = frame_labels_arrays(1)
            expr[0] = EXPR_MAP[code]
            items.append(VideoItem(video_id=item_id, video_path=None, crop_dir=None,
                                   labels=FrameLabels(va=va, expr=expr, au=au), split=split, dataset=name,
                                   frame_images=[images / image], face_boxes=box, fps=STILL_FPS))
    if low:
        problems.append(f"{path}: {low} faces under confidence {min_confidence} skipped")
    return items, problems
