"""Crop files of a `cropped_aligned/<video>/` folder.

Crop files are 1-based: `00001.jpg` is decoded frame 0 and label line 1 (the Aff-Wild2 rule,
docs/datasets.md); `crop_path` and `list_crops` are the only places that convert.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path


log = logging.getLogger(__name__)

CROP_NAME = re.compile(r"^(\d{5,})\.(jpg|jpeg|png)$", re.IGNORECASE)


def crop_path(crop_dir: Path, index: int) -> Path:
    """Crop file of 0-based frame `index`: frame 0 -> 00001.jpg."""
    return Path(crop_dir) / f"{index + 1:05d}.jpg"


def list_crops(crop_dir: Path) -> tuple[dict[int, Path], list[str]]:
    """0-based frame index -> crop file, and one problem line per file that is not a crop image."""
    crops, problems = {}, []
    for path in sorted(Path(crop_dir).iterdir()):
        match = CROP_NAME.match(path.name)
        if match and path.is_file():
            number = int(match.group(1))
            if number == 0:
                problems.append(f"{path}: crop names are 1-based, 0 is not a frame")
            else:
                crops[number - 1] = path
        elif not path.name.startswith("."):
            problems.append(f"{path}: not a crop image (expected NNNNN.jpg), ignored")
    return crops, problems


