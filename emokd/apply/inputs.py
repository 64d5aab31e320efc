"""VIDEO|FOLDER -> the items `emokd predict-video` extracts: one per media file, ids that stay unique."""

from __future__ import annotations

import os
from pathlib import Path

from emokd.constants import VIDEO_SUFFIXES
from emokd.errors import DataError
from emokd.index.manifest import VideoItem

DATASET = "video"   # the dataset name new videos are cached under


def find_videos(path: str | Path) -> list[VideoItem]:
    """A video file -> one item (id: its stem); a folder -> every video file below it, ids their
    paths relative to the folder without the suffix (`sub/clip`), sorted. DataError when none."""
    path = Path(os.path.abspath(Path(path).expanduser()))
    if path.is_file():
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise DataError(f"{path}: not a video file (expected one of {', '.join(VIDEO_SUFFIXES)})")
        files = {path.stem: path}
    elif path.is_dir():
        files = {p.relative_to(path).with_suffix("").as_posix(): p for p in sorted(path.rglob("*"))
                 if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES}
        if not files:
            raise DataError(f"{path}: no video file in this folder ({', '.join(VIDEO_SUFFIXES)})")
    else:
        raise DataError(f"{path}: no such video file or folder")
    return [VideoItem(video_id, file, None, None, "test", DATASET) for video_id, file in files.items()]
