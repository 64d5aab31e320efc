"""AffectNet reader: `training.csv` / `validation.csv` -> one-frame items with a face box.

Columns: subDirectory_filePath, face_x, face_y, face_width, face_height, facial_landmarks,
expression, valence, arousal. AffectNet's expression codes (0 Neutral, 1 Happy, 2 Sad,
3 Surprise, 4 Fear, 5 Disgust, 6 Anger) map to emokd's order; 7 Contempt, 8 None,
9 Uncertain are not basic expressions: their EXPR label is dropped (-1) but a valid VA label
keeps the item; 10 No-Face items are dropped. VA is in [-1, 1]; -2 means absent.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from emokd.index.manifest import FrameLabels, VideoItem
from emokd.index.readers.common import STILL_FPS, find_dir, frame_labels_arrays, malformed

DATASET = "affectnet"
COLUMNS = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
           "facial_landmarks", "expression", "valence", "arousal")
# AffectNet code -> emokd EXPR index (Neutral, Anger, Disgust, Fear, Happiness, Sadness, Surprise)
EXPR_MAP = {0: 0, 1: 4, 2: 5, 3: 6, 4: 3, 5: 2, 6: 1}
NON_BASIC = {7: "Contempt", 8: "None", 9: "Uncertain"}
NO_FACE = 10
VA_ABSENT = -2.0
SPLIT_FILES = {"training.csv": "train", "validation.csv": "validation"}


def _row_item(row: list[str], path: Path, line_no: int, images: Path, split: str, name: str) -> VideoItem | None:
    if len(row) != len(COLUMNS):
        raise malformed(path, line_no, f"expected {len(COLUMNS)} fields, found {len(row)}")
    rel = row[0].strip()
    try:
        box = np.array([[float(row[1]), float(row[2]), float(row[3]), float(row[4])]], np.float32)
        code, valence, arousal = int(row[6]), float(row[7]), float(row[8])
    except ValueError as exc:
        raise malformed(path, line_no, f"not a number: {exc}") from None
    if code == NO_FACE:
        return None
    if code not in EXPR_MAP and code not in NON_BASIC:
        raise malformed(path, line_no, f"expression code {code} is not one of 0-10")
    va, expr, au = frame_labels_arrays(1)
    expr[0] = EXPR_MAP.get(code, -1)
    if valence != VA_ABSENT and arousal != VA_ABSENT:
        if not (-1.0 <= valence <= 1.0 and -1.0 <= arousal <= 1.0):
            raise malformed(path, line_no, f"valence/arousal ({valence}, {arousal}) outside [-1, 1]")
        va[0] = (valence, arousal)
    if expr[0] < 0 and np.isnan(va[0]).all():
        return None
    item_id = f"{name}/{rel.rsplit('.', 1)[0]}"
    return VideoItem(video_id=item_id, video_path=None, crop_dir=None, labels=FrameLabels(va=va, expr=expr, au=au),
                     split=split, dataset=name, frame_images=[images / rel], face_boxes=box, fps=STILL_FPS)


def read_affectnet_csv(path: Path, images: Path, split: str, name: str = DATASET) -> tuple[list[VideoItem], int]:
    """Items of one AffectNet CSV and the number of rows dropped (No-Face, or no usable label)."""
    items, dropped = [], 0
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != COLUMNS:
            raise malformed(path, 1, f"header {header} is not the AffectNet header {list(COLUMNS)}")
        for row in reader:
            if not row:
                continue
            item = _row_item(row, path, reader.line_num, images, split, name)
            if item is None:
                dropped += 1
            else:
                items.append(item)
    return items, dropped


def read_affectnet(root: str | Path, name: str = DATASET) -> tuple[list[VideoItem], list[str]]:
    """All AffectNet items under `root`: CSVs in root or root/Manually_Annotated_file_lists,
    images in root/Manually_Annotated_Images (else root). Returns (items, problems)."""
    root = Path(root)
    lists = find_dir(root, ("Manually_Annotated_file_lists",))
    images = find_dir(root, ("Manually_Annotated_Images", "Manually_Annotated/Manually_Annotated_Images"))
    items, problems = [], []
    found = False
    for file_name, split in SPLIT_FILES.items():
        path = lists / file_name
        if not path.is_file():
            continue
        found = True
        part, dropped = read_affectnet_csv(path, images, split, name)
        items += part
        if dropped:
            problems.append(f"{path}: {dropped} rows without a basic expression or VA label (or No-Face) dropped")
    if not found:
        raise malformed(root, None, f"no AffectNet {' or '.join(SPLIT_FILES)} found in {lists}")
    return items, problems
