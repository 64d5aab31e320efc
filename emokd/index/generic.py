"""Generic datasets (not Aff-Wild2): a CSV or JSON manifest of videos (docs/datasets.md).

CSV: a header with `video` and optionally `crops`, `labels`, `id`, `split`, `dataset`, and
`va_split` / `expr_split` / `au_split` (one task's split when it differs from `split`); one row per
video. JSON: a list of such objects (or {"items": [...]}). Relative paths are relative to the
manifest file; a `video` that is an fsspec URL (s3://bucket/clip.mp4) is kept as it is, neither
checked nor probed here: the worker that extracts it downloads it. `labels` is a per-frame label
file (see `annotations.read_label_file`). Item ids are `<dataset>/<id>` (dataset defaults to
"generic", id to the video's file stem). A JSON file written by `Manifest.save` is loaded as it is.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path, PurePosixPath

from emokd.constants import uniform_splits
from emokd.errors import DataError
from emokd.index.abaw import read_label_file
from emokd.index.frame_labels import FrameLabels
from emokd.index.crop_files import list_crops
from emokd.index.manifest import Manifest, VideoItem, is_saved_manifest, is_url, with_splits

TASK_SPLIT_KEYS = {"va_split": "VA", "expr_split": "EXPR", "au_split": "AU"}
KEYS = ("video", "crops", "labels", "id", "split", "dataset", *TASK_SPLIT_KEYS)
SPLITS = ("train", "validation", "test", "unlabelled")
SPLIT_NAMES = {**{s: s for s in SPLITS}, "val": "validation", "valid": "validation"}  # any case


def split_of(value: str | None, where: str, key: str = "split") -> str:
    """A manifest row's split, matched case-insensitively (val / valid = validation); an empty
    field is unlabelled; anything else is a DataError naming the row."""
    name = str(value or "").strip().lower() or "unlabelled"
    if name not in SPLIT_NAMES:
        raise DataError(f"{where}: {key} {value!r} is not one of train, validation (or val, valid), test, "
                        "unlabelled (any case); fix the row")
    return SPLIT_NAMES[name]


def _rows(path: Path) -> list[dict]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise DataError(f"{path}: cannot read manifest ({exc})") from exc
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or "video" not in [f.strip() for f in reader.fieldnames]:
            raise DataError(f"{path}:1: a generic CSV manifest needs a 'video' column")
        return [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from exc
    if is_saved_manifest(data):
        return data
    rows = data.get("items", data.get("videos")) if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected a list of items (or {{\"items\": [...]}})")
    return rows


def _resolve(base: Path, value) -> Path | None:
    if value in (None, ""):
        return None
    if str(value).startswith("file://"):
        value = str(value)[len("file://"):]
    p = Path(str(value)).expanduser()
    return p if p.is_absolute() else base / p


def index_generic(path: str | Path, probe: bool = True) -> Manifest:
    from emokd.index.probe import frame_count

    path = Path(path)
    rows = _rows(path)
    if isinstance(rows, dict):
        return Manifest.load(path)
    items, problems, seen = [], [], set()
    for number, row in enumerate(rows, start=2 if path.suffix.lower() == ".csv" else 1):
        where = f"{path}:{number}" if path.suffix.lower() == ".csv" else f"{path}: item {number}"
        if not isinstance(row, dict) or not row.get("video"):
            problems.append(f"{where}: no 'video' given; skipped")
            continue
        unknown = sorted(set(row) - set(KEYS))
        if unknown:
            problems.append(f"{where}: unknown field(s) {unknown} ignored")
        url = is_url(str(row["video"]))
        video = str(row["video"]) if url else _resolve(path.parent, row["video"])
        dataset = row.get("dataset") or "generic"
        video_id = f"{dataset}/{row.get('id') or PurePosixPath(str(video)).stem}"
        if video_id in seen:
            problems.append(f"{where}: duplicate id {video_id}; skipped")
            continue
        splits = _splits(row, where)
        if not url and not video.is_file():
            problems.append(f"{where}: video {video} not found; skipped")
            continue
        n = None
        if probe and not url:  # an object-store video is opened by the worker that extracts it
            try:
                n = frame_count(video)
            except DataError as exc:
                problems.append(f"{where}: {exc}")
        crop_dir = _resolve(path.parent, row.get("crops"))
        if crop_dir is not None and not crop_dir.is_dir():
            problems.append(f"{where}: crop folder {crop_dir} not found; faces from the frames")
            crop_dir = None
        elif crop_dir is not None:
            problems += list_crops(crop_dir)[1]
        labels = _labels(_resolve(path.parent, row.get("labels")), n, where, problems)
        seen.add(video_id)
        items.append(with_splits(VideoItem(video_id, video, crop_dir, labels, "unlabelled", dataset, n_frames=n),
                                 splits))
    return Manifest(items, {}, problems, path.parent)


def _splits(row: dict, where: str) -> dict[str, str]:
    """Per-task splits of a row: `split` for every task, `<task>_split` where given."""
    def checked(key: str) -> str:
        return split_of(row.get(key), where, key)

    splits = uniform_splits(checked("split"))
    splits.update({task: checked(key) for key, task in TASK_SPLIT_KEYS.items() if row.get(key)})
    return splits


def _labels(label_file: Path | None, n: int | None, where: str, problems: list[str]) -> FrameLabels | None:
    if label_file is None:
        return None
    try:
        labels, found = read_label_file(label_file)
    except DataError as exc:
        problems.append(f"{where}: {exc}")
        return None
    problems += found
    if n is not None and labels.n != n:
        if labels.n > n:
            problems.append(f"{label_file}: {labels.n} label rows for {n} frames; the last {labels.n - n} ignored")
        labels = labels.resized(n)
    return labels
