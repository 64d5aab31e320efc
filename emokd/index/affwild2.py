"""`index_affwild2`: an Aff-Wild2 / ABAW tree -> a Manifest.

Aff-Wild2 (docs/datasets.md): videos at any depth; `<X>_left` / `<X>_right` annotation names share the
video `<X>`; each task's labels and split come from its own files (VA, EXPR, AU; Train_Set /
Validation_Set), so one video can be VA training and EXPR validation data. The MTL files give the
MTL set (its split and listed frames) and fill missing labels of the tasks in the same split
(per-task files win on a disagreement, which is reported). Labels are fitted to the container's frame count: extra lines
are dropped with a problem naming the file, missing lines stay unlabelled. A bad file or line is
a problem in `Manifest.problems`; the index of everything else completes.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path


import numpy as np

from emokd.constants import TASKS, VIDEO_SUFFIXES
from emokd.errors import DataError
from emokd.index.frame_labels import FrameLabels
from emokd.index.abaw import TASK_FOLDERS, fit_to_frames, read_mtl_file, read_task_file, read_test_list, videos_of_test_list
from emokd.index.crop_files import list_crops
from emokd.index.manifest import Manifest, VideoItem, with_splits
from emokd.index.probe import frame_count

log = logging.getLogger(__name__)

TASK_OF_FOLDER = {folder: task for task, folder in TASK_FOLDERS.items()}
# split folder names, lower-cased, as they appear in the releases
SPLIT_OF_FOLDER = {"train_set": "train", "training_set": "train", "validation_set": "validation"}
CROP_ROOT = "cropped_aligned"
PERSON_SUFFIX = re.compile(r"^(?P<video>.+)_(left|right)$")


def walk_files(root: Path) -> list[Path]:
    """Every file under `root` except inside crop folders (millions of JPEGs in Aff-Wild2) and
    hidden folders: one walk of the tree serves all the finders below."""
    out = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(("cropped", ".")))
        out.extend(Path(folder) / f for f in sorted(files))
    return out


def find_videos(files: list[Path]) -> tuple[dict[str, Path], list[str]]:
    """Video file stem -> path at any depth; duplicates are problems."""
    found: dict[str, Path] = {}
    problems = []
    for path in files:
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            continue
        if path.stem in found:
            problems.append(f"{path}: a second video named {path.stem} (first: {found[path.stem]}); ignored")
            continue
        found[path.stem] = path
    return found, problems


def find_task_files(files: list[Path]) -> list[tuple[str, str, Path]]:
    """(task, split, file) of every per-task annotation file: <task folder>/<split folder>/<name>.txt."""
    out = []
    for path in files:
        task = TASK_OF_FOLDER.get(path.parent.parent.name)
        split = SPLIT_OF_FOLDER.get(path.parent.name.lower())
        if task and split and path.suffix.lower() == ".txt":
            out.append((task, split, path))
    return out


def find_list_files(files: list[Path]) -> tuple[list[tuple[str, Path]], list[Path]]:
    """MTL annotation files (split, path) and test lists (any .txt with "test" in its name)."""
    mtl, tests = [], []
    for path in files:
        parts = {p.lower() for p in path.parent.parts}
        if path.suffix.lower() != ".txt" or parts & set(SPLIT_OF_FOLDER):
            continue
        name = path.name.lower()
        if "test" in name:
            tests.append(path)
        elif any("mtl" in p for p in parts):
            if name.startswith("train"):
                mtl.append(("train", path))
            elif name.startswith("valid"):
                mtl.append(("validation", path))
    return mtl, tests


def video_of(name: str, videos: dict[str, Path]) -> Path | None:
    """The file of annotation name `name`; `<X>_left` / `<X>_right` share `<X>`."""
    if name in videos:
        return videos[name]
    match = PERSON_SUFFIX.match(name)
    return videos.get(match.group("video")) if match else None


class _Collected:
    """Everything read for one annotation name before it becomes a VideoItem."""

    def __init__(self):
        self.tasks: list[tuple[str, str, Path]] = []     # (task, split, file)
        self.mtl: list[tuple[str, Path, FrameLabels]] = []


def _one_split(name: str, what: str, splits: set[str], problems: list[str]) -> str:
    """The split of one task of a video; listed in both splits is a problem and counts as validation
    (its labels then never train)."""
    if len(splits) > 1:
        problems.append(f"{name}: its {what} labels are listed as {' and '.join(sorted(splits))}; "
                        "using validation")
        return "validation"
    return splits.pop() if splits else "unlabelled"


def _labels_of(name: str, entry: _Collected, n_frames: int | None,
               problems: list[str]) -> tuple[FrameLabels, dict[str, str], np.ndarray | None]:
    """(labels, per-task splits, frames of the MTL set or None) of one annotation name.

    Each task's labels and split come from its own files. The MTL rows give the MTL set (its split
    and frames) and fill a task's missing labels only where that task is in the same split (or has
    no file of its own): a validation label never becomes training data of another split."""
    arrays = []
    for task, split, path in entry.tasks:
        try:
            values, found = read_task_file(path, task)
        except DataError as exc:
            problems.append(str(exc))
            continue
        problems += found
        arrays.append((task, split, path, values))
    n = n_frames if n_frames is not None else max([len(v) for *_, v in arrays]
                                                   + [m.n for *_, m in entry.mtl] + [0])
    labels = FrameLabels.empty(n)
    splits = {task: _one_split(name, task, {s for t, s, _, _ in arrays if t == task}, problems)
              for task in TASKS}
    for task, split, path, values in arrays:
        if split != splits[task]:
            continue                       # the file of a task listed in two splits that lost
        values, found = fit_to_frames(values, n, path, task)
        problems += found
        {"VA": labels.va, "EXPR": labels.expr, "AU": labels.au}[task][:] = values
    splits["MTL"] = _one_split(name, "MTL", {s for s, _, _ in entry.mtl}, problems)
    mtl_frames = np.zeros(n, bool) if entry.mtl else None
    for split, path, mtl in entry.mtl:
        if split != splits["MTL"]:
            continue
        if mtl.n > n:
            problems.append(f"{path}: rows of {name} beyond its {n} frames ignored")
        rows = mtl.resized(n)
        mtl_frames |= rows.labelled_any()
        for task in TASKS:
            if splits[task] == "unlabelled" and rows.counts()[task]:
                splits[task] = split
            elif splits[task] != split and rows.counts()[task]:
                problems.append(f"{path}: {name} is MTL {split} data but its {task} file is in "
                                f"{splits[task]}: the MTL rows' {task} labels are not used")
                rows.clear(task)
        conflicts = labels.fill_from(rows)
        if conflicts:
            problems.append(f"{path}: {conflicts} frames of {name} disagree with the per-task files; "
                            "per-task labels kept")
    return labels, splits, mtl_frames


def index_affwild2(root: Path, probe: bool = True) -> Manifest:
    root = Path(root)
    files = walk_files(root)
    videos, problems = find_videos(files)
    collected: dict[str, _Collected] = {}
    for task, split, path in find_task_files(files):
        collected.setdefault(path.stem, _Collected()).tasks.append((task, split, path))
    mtl_files, test_files = find_list_files(files)
    for split, path in mtl_files:
        try:
            per_video, found = read_mtl_file(path)
        except DataError as exc:
            problems.append(str(exc))
            continue
        problems += found
        for name, labels in per_video.items():
            collected.setdefault(name, _Collected()).mtl.append((split, path, labels))
    test_lists: dict[str, list[str]] = {}
    test_videos: set[str] = set()
    for path in test_files:
        key = path.relative_to(root).with_suffix("").as_posix()
        test_lists[key] = read_test_list(path)
        test_videos.update(videos_of_test_list(test_lists[key]))

    counts: dict[Path, int | None] = {}

    def n_frames_of(path: Path | None) -> int | None:
        if path is None or not probe:
            return None
        if path not in counts:
            try:
                counts[path] = frame_count(path)
            except DataError as exc:
                problems.append(str(exc))
                counts[path] = None
        return counts[path]

    crop_root = root / CROP_ROOT
    items, orphans = [], []
    claimed: set[Path] = set()
    names = sorted(set(collected) | test_videos)
    for name in names:
        video = video_of(name, videos)
        if video is None:
            orphans.append(name)
            problems.append(f"{name}: annotations or test entries but no video file under {root}")
            continue
        claimed.add(video)
        entry = collected.get(name)
        n = n_frames_of(video)
        labels, splits, mtl = _labels_of(name, entry, n, problems) if entry else (None, {}, None)
        if name in test_videos:            # test-list entries: the tasks no file labels are test
            splits = {**splits, **{t: "test" for t in TASKS if splits.get(t, "unlabelled") == "unlabelled"}}
        items.append(_item(name, video, crop_root, labels, splits, n, problems, mtl))
    for stem, video in sorted(videos.items()):
        if video not in claimed:
            items.append(_item(stem, video, crop_root, None, {}, n_frames_of(video), problems))
    manifest = Manifest(items, test_lists, problems, root, orphans)
    for line in problems:   # the commands print one summary of them (`emokd index --problems`: all)
        log.info("%s", line)
    return manifest


def _item(name: str, video: Path, crop_root: Path, labels, splits: dict[str, str], n: int | None,
          problems: list[str], mtl: np.ndarray | None = None) -> VideoItem:
    crop_dir = crop_root / name
    if crop_dir.is_dir():
        problems += list_crops(crop_dir)[1]
    else:
        crop_dir = None
    item = VideoItem(name, video, crop_dir, labels, "unlabelled", "affwild2", n_frames=n, mtl=mtl)
    return with_splits(item, splits)
