"""What a player shows of a video's pictures: sample aspect ratio, rotation, mirroring.

A camera may store pictures that a player must stretch (non-square pixels: the sample aspect
ratio, SAR) and turn or mirror (the display matrix phones write instead of rotating pixels).
emokd's frames are what a player shows, so faces are found and cut on the picture people see:
pixels are first resampled to square (the narrower dimension is stretched, nothing is shrunk),
then rotated and mirrored. `Geometry` is that transform for one video; `emokd.index.probe` reads
it, `emokd.extract.video` applies it, and the cache records it (docs/datasets.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np


def _even(value: float) -> int:
    return max(2, 2 * int(round(value / 2)))


def parse_display_matrix(raw: bytes) -> tuple[int, bool]:
    """(counter-clockwise rotation in degrees, mirrored) of a 3x3 int32 display matrix.

    The rotation follows `av_display_rotation_get` (and PyAV's `VideoFrame.rotation`): the angle
    by which the player turns the picture counter-clockwise (a phone held upright usually says
    -90: turn clockwise). A negative determinant means the picture is also mirrored left-right
    after the rotation (`av_display_matrix_flip`). Angles are snapped to multiples of 90 degrees.
    """
    m = np.frombuffer(bytes(raw)[:36], dtype="<i4").astype(np.float64) / 65536.0
    a, b, c, d = m[0], m[1], m[3], m[4]
    mirrored = a * d - b * c < 0
    if mirrored:
        a, c = -a, -c
    degrees = -math.degrees(math.atan2(b, a))
    return int(round(degrees / 90.0)) * 90 % 360, bool(mirrored)


@dataclass(frozen=True)
class Geometry:
    """Stored picture -> displayed picture: square pixels, then rotation, then mirroring."""

    stored: tuple[int, int]            # (w, h) of the coded picture
    sar: Fraction = Fraction(1)        # width of a pixel / its height
    rotation: int = 0                  # counter-clockwise degrees: 0, 90, 180 or 270
    mirrored: bool = False             # left-right, after the rotation

    @property
    def square(self) -> tuple[int, int]:
        """(w, h) in the stored orientation with square pixels (the narrower side stretched)."""
        w, h = self.stored
        if self.sar > 1:
            return _even(w * self.sar), h
        if self.sar < 1:
            return w, _even(h / self.sar)
        return w, h

    @property
    def turned(self) -> bool:
        return self.rotation in (90, 270)

    @property
    def display(self) -> tuple[int, int]:
        """(w, h) of the picture a player shows."""
        w, h = self.square
        return (h, w) if self.turned else (w, h)

    @property
    def reorients(self) -> bool:
        return self.rotation != 0 or self.mirrored

    @property
    def is_identity(self) -> bool:
        return self.sar == 1 and not self.reorients

    def decode_size(self, display_size: tuple[int, int] | None = None) -> tuple[int, int] | None:
        """The size (w, h) to ask a decoder for, in the stored orientation, so that `to_display`
        gives `display_size` (default: the full display size); None when no scaling is needed."""
        if display_size is None:
            return None if self.sar == 1 else self.square
        w, h = display_size
        return (h, w) if self.turned else (w, h)

    def to_display(self, frames: np.ndarray) -> np.ndarray:
        """(B, H, W, C) decoded frames (square pixels, stored orientation) as a player shows them."""
        if not self.reorients:
            return frames
        out = np.rot90(frames, k=self.rotation // 90, axes=(1, 2))
        if self.mirrored:
            out = out[:, :, ::-1]
        return np.ascontiguousarray(out)

    def record(self) -> dict:
        """What the cache stores about the transform of this video."""
        return {"stored_size": list(self.stored), "sar": f"{self.sar.numerator}:{self.sar.denominator}",
                "rotation": self.rotation, "mirrored": self.mirrored, "display_size": list(self.display)}
