"""Face crops for one frame: from `cropped_aligned` files, a given box, a detector, or the whole frame.

Crop files are 1-based (`00001.jpg` is decoded frame 0, DESIGN §2); `crop_path` is the only place
that converts. Every function returns uint8 RGB (size, size, 3) or None when there is no face.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

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


def to_size(image: np.ndarray, size: int) -> np.ndarray:
    if image.shape[0] == size and image.shape[1] == size:
        return np.ascontiguousarray(image[..., :3])
    pil = Image.fromarray(np.ascontiguousarray(image[..., :3]))
    return np.asarray(pil.resize((size, size), Image.BILINEAR, reducing_gap=2.0))


def load_image(path: Path) -> np.ndarray | None:
    """RGB uint8 of an image file, or None (logged with the file name) when it cannot be read."""
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except FileNotFoundError:
        return None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        log.warning("%s: unreadable image, frame has no face (%s)", path, exc)
        return None


def load_crop(crop_dir: Path, index: int, size: int) -> np.ndarray | None:
    image = load_image(crop_path(crop_dir, index))
    return None if image is None else to_size(image, size)


def whole_frame(image: np.ndarray, size: int) -> np.ndarray:
    """The centre square of the frame, resized: for datasets whose frames are faces already."""
    h, w = image.shape[:2]
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    return to_size(image[y0:y0 + side, x0:x0 + side], size)


def box_crop(image: np.ndarray, box_xywh, size: int, margin: float = 0.0) -> np.ndarray | None:
    """Square crop centred on box (x, y, w, h), grown by `margin`, zero-padded outside the image."""
    x, y, w, h = (float(v) for v in box_xywh)
    if not (np.isfinite([x, y, w, h]).all() and w > 0 and h > 0):
        return None
    side = max(w, h) * (1 + margin)
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = max(int(round(side)), 1)
    out = np.zeros((s, s, 3), np.uint8)
    ih, iw = image.shape[:2]
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + s, iw), min(y0 + s, ih)
    if sx1 <= sx0 or sy1 <= sy0:
        return None
    out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1, :3]
    return to_size(out, size)


def _aligner():
    try:
        from ..models.face_align import align_face
    except ImportError:
        return None
    return align_face


def detect_face(detector, image: np.ndarray, size: int) -> np.ndarray | None:
    """The largest detection (the subject; the best-scoring if the detector cannot say), aligned on
    its 5 landmarks (a box crop when no aligner exists)."""
    det = detector.detect(image)
    boxes = np.asarray(det.boxes)
    if boxes.size == 0:
        return None
    best = det.largest() if hasattr(det, "largest") else int(np.argmax(np.asarray(det.scores)))
    align = _aligner()
    landmarks = getattr(det, "landmarks", None)
    if align is not None and landmarks is not None and len(landmarks) > best:
        return np.asarray(align(image, np.asarray(landmarks[best]), size=size), np.uint8)
    x1, y1, x2, y2 = boxes[best]
    return box_crop(image, (x1, y1, x2 - x1, y2 - y1), size, margin=0.2)
