"""A small Aff-Wild2 / ABAW-style dataset written from generated videos (layout: docs/datasets.md).

Layout written under `root`:

    batch1/, batch2/                      videos (.mp4 / .avi / .mov)
    cropped_aligned/<name>/00001.jpg      1-based crops (the frame's centre square, index readable), gaps
    annotations/VA_Estimation_Challenge/{Train_Set,Validation_Set}/<name>.txt
    annotations/EXPR_Classification_Challenge/...   annotations/AU_Detection_Challenge/...
    annotations/MTL_Challenge/{train_set,validation_set}.txt
    annotations/test_set/MTL_test_set.txt  header, then <name>/NNNNN.jpg

Labels are random but reproducible per annotation name; the returned `SyntheticTree` holds
what was written so that tests compare the index against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from emokd.constants import AU_NAMES, EXPR_CLASSES
from emokd.index.abaw import MTL_FILES, MTL_FOLDER, SPLIT_FOLDERS, TASK_FOLDERS, write_task_file
from emokd.testing.videos import SyntheticVideo, draw_frame, make_video, square_crop, stable_seed



@dataclass
class TreeVideo:
    """One video of the synthetic tree; `splits` maps task -> split for the per-task files."""

    name: str
    n_frames: int = 30
    fps: float = 30
    suffix: str = ".mp4"
    codec: str = "h264"
    folder: str = "batch1"
    splits: dict = field(default_factory=lambda: {"VA": "train", "EXPR": "train", "AU": "train"})
    persons: tuple = ()                 # ("left", "right"): two label sets / crop folders, one file
    crop_gaps: tuple = ()               # 0-based frames with no crop file
    label_lines: int | None = None      # data lines per annotation file (default n_frames)
    mtl: str | None = None              # split of this video's MTL rows (every 2nd frame)
    test: bool = False                  # listed in the test list
    audio: str | None = "clicks"
    audio_offset_s: float = 0.0
    size: tuple = (160, 120)


def default_videos() -> list[TreeVideo]:
    return [
        TreeVideo("vid_a", 45, 30, crop_gaps=(3, 17)),
        TreeVideo("vid_b", 40, 25, ".avi", "mpeg4", splits={"VA": "validation", "AU": "validation"},
                  label_lines=43, mtl="validation"),
        TreeVideo("vid_c", 36, 29.97, folder="batch2", splits={"EXPR": "train", "AU": "train"},
                  persons=("left", "right"), label_lines=30, crop_gaps=(0,)),
        TreeVideo("vid_d", 30, 30, ".mov", folder="batch2", splits={}, test=True),
    ]


@dataclass
class SyntheticTree:
    root: Path
    videos: dict[str, SyntheticVideo]                 # video file stem -> what was written
    truth: dict[str, dict[str, np.ndarray]]           # annotation name -> va (n,2) NaN, expr (n,) -1, au (n,12) -1
    written: dict[str, dict[str, str]]                # annotation name -> task -> split of the file written
    mtl_rows: dict[str, dict[int, tuple]]             # annotation name -> 0-based frame -> (va, expr, au)
    crops: dict[str, set[int]]                        # annotation name -> 0-based frames with a crop
    test_list: Path | None


def random_labels(name: str, n: int) -> dict[str, np.ndarray]:
    """Reproducible labels with ~10 % missing rows per task (sentinels as NaN / -1)."""
    rng = np.random.default_rng(stable_seed(name))
    va = np.round(rng.uniform(-1, 1, (n, 2)), 3).astype(np.float32)
    va[rng.random(n) < 0.1] = np.nan
    expr = rng.integers(0, len(EXPR_CLASSES), n).astype(np.int8)
    expr[rng.random(n) < 0.1] = -1
    au = rng.integers(0, 2, (n, len(AU_NAMES))).astype(np.int8)
    au[rng.random(n) < 0.1] = -1
    return {"va": va, "expr": expr, "au": au}


def _va_text(row) -> str:
    return "-5,-5" if np.isnan(row).any() else f"{row[0]:.3f},{row[1]:.3f}"


def write_affwild2_tree(root: str | Path, videos: list[TreeVideo] | None = None,
                        crop_size: int = 112) -> SyntheticTree:
    root = Path(root)
    videos = default_videos() if videos is None else videos
    ann = root / "annotations"
    out = SyntheticTree(root, {}, {}, {}, {}, {}, None)
    mtl_lines = {"train": [], "validation": []}
    test_lines = []
    for spec in videos:
        out.videos[spec.name] = make_video(root / spec.folder / f"{spec.name}{spec.suffix}", spec.n_frames,
                                           spec.fps, spec.size, spec.codec, spec.audio,
                                           audio_offset_s=spec.audio_offset_s)
        names = [f"{spec.name}_{p}" for p in spec.persons] or [spec.name]
        for name in names:
            n_lines = spec.label_lines if spec.label_lines is not None else spec.n_frames
            labels = random_labels(name, n_lines)
            out.truth[name], out.written[name] = labels, {}
            for task, split in spec.splits.items():
                write_task_file(ann / TASK_FOLDERS[task] / SPLIT_FOLDERS[split] / f"{name}.txt", task,
                                labels[task.lower()], va_decimals=3)
                out.written[name][task] = split
            if spec.mtl:
                out.mtl_rows[name] = {}
                for k in range(0, min(n_lines, spec.n_frames), 2):
                    va = labels["va"][k]
                    expr = int(labels["expr"][k]) if k % 4 else -1      # partially labelled rows
                    au = labels["au"][k]
                    out.mtl_rows[name][k] = (va, expr, au)
                    mtl_lines[spec.mtl].append(f"{name}/{k + 1:05d}.jpg,{_va_text(va)},{expr},"
                                               + ",".join(str(int(v)) for v in au))
            crop_dir = root / "cropped_aligned" / name
            crop_dir.mkdir(parents=True, exist_ok=True)
            out.crops[name] = set()
            for k in range(spec.n_frames):
                if k in spec.crop_gaps:
                    continue
                img = Image.fromarray(square_crop(draw_frame(k, spec.size, face=True), crop_size))
                img.save(crop_dir / f"{k + 1:05d}.jpg", quality=95)
                out.crops[name].add(k)
            if spec.test:
                test_lines.extend(f"{name}/{k + 1:05d}.jpg" for k in range(spec.n_frames))
    header = "image,valence,arousal,expression," + ",".join(AU_NAMES)
    for split, lines in mtl_lines.items():
        if lines:
            path = ann / MTL_FOLDER / MTL_FILES[split]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join([header] + lines) + "\n")
    if test_lines:
        out.test_list = ann / "test_set" / "MTL_test_set.txt"
        out.test_list.parent.mkdir(parents=True, exist_ok=True)
        out.test_list.write_text("\n".join(["image"] + test_lines) + "\n")
    return out
