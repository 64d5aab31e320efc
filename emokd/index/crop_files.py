"""Crop files of a `cropped_aligned/<video>/` folder, and their numbering rule.

Crop files are 1-based by default: `00001.jpg` is decoded frame 0 and label line 1 (the Aff-Wild2
rule, docs/datasets.md). A dataset whose crops number frames from 0 says so with the extraction
setting `crop_numbering: 0-based`; a 1-based folder that holds a crop numbered 0 is refused
(`check_numbering`), never read shifted by one. Names are digits (5 in Aff-Wild2; any width is read)
and one of the image suffixes in CROP_SUFFIXES, in any case. `crop_path`, `list_crops` and
`crop_files` are the only places that convert between names and frame indices.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from pathlib import Path

from emokd.errors import DataError

log = logging.getLogger(__name__)

CROP_SUFFIXES = ("jpg", "jpeg", "png")
CROP_NAME = re.compile(rf"^(\d+)\.({'|'.join(CROP_SUFFIXES)})$", re.IGNORECASE)
NUMBERINGS = ("1-based", "0-based")
RULE = "crop names are 1-based (00001.jpg is decoded frame 0, the Aff-Wild2 rule)"


def _first_number(numbering: str) -> int:
    if numbering not in NUMBERINGS:
        raise DataError(f"crop_numbering: {numbering!r} is not one of {list(NUMBERINGS)}")
    return 1 if numbering == "1-based" else 0


def crop_path(crop_dir: Path, index: int, numbering: str = "1-based") -> Path:
    """The Aff-Wild2 name of 0-based frame `index`'s crop: frame 0 -> 00001.jpg (1-based)."""
    return Path(crop_dir) / f"{index + _first_number(numbering):05d}.jpg"


def list_crops(crop_dir: Path, numbering: str = "1-based") -> tuple[dict[int, Path], list[str]]:
    """0-based frame index -> crop file, and one problem line per file that is not a usable crop
    (not a crop name, a number 0 in a 1-based folder, two files for one frame)."""
    first = _first_number(numbering)
    crops, problems = {}, []
    for path in sorted(Path(crop_dir).iterdir()):
        match = CROP_NAME.match(path.name)
        if match and path.is_file():
            index = int(match.group(1)) - first
            if index < 0:
                problems.append(f"{path}: {RULE}; 0 is not a frame (set crop_numbering: 0-based if this "
                                "folder numbers frames from 0)")
            elif index in crops:
                problems.append(f"{path}: a second crop of frame {index} (besides {crops[index].name}), ignored")
            else:
                crops[index] = path
        elif not path.name.startswith("."):
            problems.append(f"{path}: not a crop image (expected NNNNN.jpg, .jpeg or .png), ignored")
    return crops, problems


@functools.lru_cache(maxsize=64)
def _cached_listing(crop_dir: str, numbering: str, _mtime_ns: int) -> dict[int, Path]:
    check_numbering(Path(crop_dir), numbering)       # a refusal is not cached: raised on every call
    return list_crops(Path(crop_dir), numbering)[0]


def crop_files(crop_dir: Path, numbering: str = "1-based") -> dict[int, Path]:
    """`list_crops` of the folder, listed and its numbering checked once while the folder is
    unchanged (a crop file added or removed changes the folder's mtime)."""
    return _cached_listing(str(crop_dir), numbering, os.stat(crop_dir).st_mtime_ns)


def zero_crop(crop_dir: Path) -> Path | None:
    """A crop file numbered 0 in the folder (00000.jpg, 0000.png, ...), found without listing it."""
    for width in range(1, 9):
        for suffix in CROP_SUFFIXES:
            for name in (f"{0:0{width}d}.{suffix}", f"{0:0{width}d}.{suffix.upper()}"):
                if os.path.isfile(os.path.join(crop_dir, name)):
                    return Path(crop_dir) / name
    return None


def check_numbering(crop_dir: Path, numbering: str = "1-based") -> None:
    """DataError when a 1-based folder holds a crop numbered 0: read 1-based it would shift every
    face by one frame."""
    if _first_number(numbering) == 1:
        zero = zero_crop(crop_dir)
        if zero is not None:
            raise DataError(numbering_refusal([zero]))


def numbering_refusal(zeros: list[Path]) -> str:
    """The one-line refusal of 1-based crop folders that hold a crop numbered 0 (`zeros`: that crop
    of each folder, at least one): the first folder named, two more listed, the rest counted."""
    first, others = zeros[0], zeros[1:]
    more = f" (and {len(others) - 2} more folders)" if len(others) > 2 else ""
    also = f"; so do {', '.join(str(p.parent) for p in others[:2])}{more}" if others else ""
    return (f"crop folder {first.parent} starts at {first.name}, but {RULE}{also}; if this dataset's crops "
            "number frames from 0, set crop_numbering: 0-based (--crop-numbering 0-based)")
