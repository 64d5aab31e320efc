"""What `emokd index` prints: videos (per summary split: "mixed" when its tasks are in different
splits), frames, labelled frames per task and that task's split, missing crops,
videos without annotations and annotations without video, test lists and problems."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from emokd.constants import TASKS
from emokd.index.crop_files import list_crops
from emokd.index.manifest import Manifest

SPLIT_ORDER = ("train", "validation", "test", "unlabelled", "mixed")


def summarize(manifest: Manifest, count_crops: bool = True) -> dict:
    """Counts as a JSON-able dict (crop folders are listed when `count_crops`)."""
    labelled = defaultdict(lambda: dict.fromkeys(TASKS, 0))
    items_per_split = defaultdict(int)
    files, frames, unknown_frames = set(), 0, 0
    missing_crops, no_crop_dir, without_labels = 0, [], []
    for item in manifest.items:
        items_per_split[item.split] += 1
        if item.video_path is not None:
            files.add(Path(item.video_path))
        n = item.n_frames if item.n_frames is not None else (len(item.frame_images) if item.frame_images else None)
        if n is None:
            unknown_frames += 1
        else:
            frames += n
        if item.labels is None:
            if item.split != "test":
                without_labels.append(item.video_id)
        else:
            splits = item.task_splits()
            for task, count in item.labels.counts().items():
                labelled[splits[task]][task] += count
        if item.frame_images is None:
            if item.crop_dir is None:
                no_crop_dir.append(item.video_id)
            elif count_crops and n is not None:
                crops, _ = list_crops(Path(item.crop_dir))
                missing_crops += sum(1 for k in range(n) if k not in crops)
    return {
        "items": len(manifest.items), "video_files": len(files), "frames": frames,
        "items_with_unknown_frame_count": unknown_frames,
        "items_per_split": dict(items_per_split),
        "labelled_frames": {s: labelled[s] for s in SPLIT_ORDER if s in labelled},
        "missing_crops": missing_crops if count_crops else None, "items_without_crop_folder": no_crop_dir,
        "videos_without_annotations": without_labels, "annotations_without_video": list(manifest.orphans),
        "test_lists": {k: len(v) for k, v in manifest.test_lists.items()},
        "problems": len(manifest.problems),
    }


def _names(names: list[str], limit: int = 8) -> str:
    if not names:
        return ""
    more = f", ... (+{len(names) - limit})" if len(names) > limit else ""
    return " (" + ", ".join(names[:limit]) + more + ")"


def format_summary(s: dict) -> str:
    splits = ", ".join(f"{k} {v}" for k, v in sorted(s["items_per_split"].items()))
    lines = [f"items: {s['items']} ({splits}) from {s['video_files']} video files",
             f"frames: {s['frames']}" + (f" (+{s['items_with_unknown_frame_count']} items of unknown length)"
                                         if s["items_with_unknown_frame_count"] else ""),
             "labelled frames:" + "".join(f"{t:>10}" for t in TASKS)]
    for split, counts in s["labelled_frames"].items():
        lines.append(f"  {split:<14}" + "".join(f"{counts[t]:>10}" for t in TASKS))
    if s["missing_crops"] is not None:
        lines.append(f"missing crops: {s['missing_crops']} frames; items without crop folder: "
                     f"{len(s['items_without_crop_folder'])}{_names(s['items_without_crop_folder'])}")
    lines.append(f"videos without annotations: {len(s['videos_without_annotations'])}"
                 f"{_names(s['videos_without_annotations'])}")
    lines.append(f"annotations without video: {len(s['annotations_without_video'])}"
                 f"{_names(s['annotations_without_video'])}")
    for name, n in s["test_lists"].items():
        lines.append(f"test list {name}: {n} entries")
    lines.append(f"problems: {s['problems']}")
    return "\n".join(lines)
