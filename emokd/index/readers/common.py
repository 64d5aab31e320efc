"""Helpers shared by the database readers: label arrays and error messages that name file:line."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emokd.constants import N_AU
from emokd.errors import DataError


# A still is a one-frame image sequence shown at t = 0; extraction needs a clock for its pts.
STILL_FPS = 1.0


def frame_labels_arrays(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empty per-frame label arrays (all missing): va (n, 2) NaN, expr (n,) -1, au (n, 12) -1."""
    return (np.full((n, 2), np.nan, np.float32), np.full(n, -1, np.int8), np.full((n, N_AU), -1, np.int8))


def malformed(path: Path, line_no: int | None, what: str) -> DataError:
    where = f"{path}:{line_no}" if line_no is not None else str(path)
    return DataError(f"{where}: {what}")


def find_file(root: Path, candidates: tuple[str, ...], what: str) -> Path:
    """First of `candidates` (relative to root) that exists, else DataError listing where we looked."""
    for name in candidates:
        if (root / name).is_file():
            return root / name
    raise DataError(f"{root}: no {what} found (looked for {', '.join(candidates)})")


def find_dir(root: Path, candidates: tuple[str, ...]) -> Path:
    """First of `candidates` that is a folder, else root itself."""
    for name in candidates:
        if (root / name).is_dir():
            return root / name
    return root
