"""`index_affwild2`: an Aff-Wild2 / ABAW tree -> a Manifest.

Aff-Wild2 (docs/datasets.md): videos at any depth; `<X>_left` / `<X>_right` annotation names share the
video `<X>`; per-task files (VA, EXPR, AU; Train_Set / Validation_Set) and the MTL files are
merged per frame (a frame keeps every label any file gives it; per-task files win over MTL on a
disagreement, which is reported). Labels are fitted to the container's frame count: extra lines
are dropped with a problem naming the file, missing lines stay unlabelled. A bad file or line is
a problem in `Manifest.problems`; the index of everything else completes.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path


from emokd.errors import DataError
from emokd.index.abaw import TASK_FOLDERS, FrameLabels, fit_to_frames, read_mtl_file, read_task_file, read_test_list, videos_of_test_list
from emokd.index.crop_files import list_crops
from emokd.index.manifest import Manifest, VideoItem
from emokd.index.probe import frame_count

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv", ".flv")
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


def _labels_of(name: str, entry: _Collected, n_frames: int | None, problems: list[str]) -> FrameLabels:
    arrays = []
    for task, _split, path in entry.tasks:
        try:
            values, found = read_task_file(path, task)
        except DataError as exc:
            problems.append(str(exc))
            continue
        problems += found
        arrays.append((task, path, values))
    n = n_frames if n_frames is not None else max([len(v) for *_, v in arrays]
                                                   + [m.n for *_, m in entry.mtl] + [0])
    labels = FrameLabels.empty(n)
    for task, path, values in arrays:
        values, found = fit_to_frames(values, n, path, task)
        problems += found
        target = {"VA": labels.va, "EXPR": labels.expr, "AU": labels.au}[task]
        target[:] = values
    for _split, path, mtl in entry.mtl:
        if mtl.n > n:
            problems.append(f"{path}: rows of {name} beyond its {n} frames ignored")
        conflicts = labels.fill_from(mtl.resized(n))
        if conflicts:
            problems.append(f"{path}: {conflicts} frames of {name} disagree with the per-task files; "
                            "per-task labels kept")
    return labels


def _split_of(name: str, entry: _Collected, problems: list[str]) -> str:
    splits = {s for _, s, _ in entry.tasks} | {s for s, _, _ in entry.mtl}
    if len(splits) > 1:
        problems.append(f"{name}: listed as {' and '.join(sorted(splits))} by different files; "
                        "using validation")
        return "validation"
    return splits.pop() if splits else "unlabelled"


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
        labels = _labels_of(name, entry, n, problems) if entry else None
        split = _split_of(name, entry, problems) if entry else "test"
        if split == "unlabelled" and name in test_videos:
            split = "test"
        items.append(_item(name, video, crop_root, labels, split, n, problems))
    for stem, video in sorted(videos.items()):
        if video not in claimed:
            items.append(_item(stem, video, crop_root, None, "unlabelled", n_frames_of(video), problems))
    manifest = Manifest(items, test_lists, problems, root, orphans)
    for line in problems:
        log.info("%s", line)
    if problems:
        log.warning("%s: %d problem(s) while indexing; first: %s", root, len(problems), problems[0])
    return manifest


def _item(name: str, video: Path, crop_root: Path, labels, split: str, n: int | None,
          problems: list[str]) -> VideoItem:
    crop_dir = crop_root / name
    if crop_dir.is_dir():
        problems += list_crops(crop_dir)[1]
    else:
        crop_dir = None
    return VideoItem(name, video, crop_dir, labels, split, "affwild2", n_frames=n)
