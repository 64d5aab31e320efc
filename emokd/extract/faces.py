"""The face of every frame of one item, in order, in batches (uint8 RGB crops + face_ok).

`iter_face_batches` takes the item's probe (`emokd.extract.timing.probe_item`, done once per item
by the task) for the frame count and times, so a video is demuxed once, not once per stage.

Faces come, in this order of preference, from
1. crop files (`item.crop_dir`; 1-based names, `00001.jpg` is decoded frame 0, unless the
   setting `crop_numbering` says 0-based: `emokd.index.crop_files`): the video's pixels are then
   never decoded;
2. `item.face_boxes` (image sequences): a square crop around each given box;
3. a face detector (`detector.detect` + `align_face`), on frames decoded once, sequentially (on
   every K-th frame only with `detect_every`, `emokd.extract.keyframes`);
4. the whole frame (centre square, resized), for datasets whose frames are faces already.
A frame without a crop file or a detection has face_ok False and a zero face. Every per-frame
function returns uint8 RGB (size, size, 3) or None when there is no face.

Video frames are what a player shows (square pixels, rotation and mirroring applied, see
`emokd.index.geometry`) before any detection, cropping or whole-frame use; they are decoded by
`emokd.extract.video` (PyAV, or decord checked against PyAV), in batches sized by pixels and
regrouped here into face batches of `batch_size`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from emokd.constants import CROP_SIZE
from emokd.errors import DataError
from emokd.extract.timing import ItemProbe
from emokd.extract.video import DecodeReport, decode_batches, scaled_size
from emokd.index.crop_files import crop_files
from emokd.index.manifest import VideoItem

log = logging.getLogger(__name__)


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


def load_crop(crop_dir: Path, index: int, size: int, numbering: str = "1-based") -> np.ndarray | None:
    """The crop of 0-based frame `index` at `size`, or None (no crop file, or an unreadable one)."""
    path = crop_files(crop_dir, numbering).get(index)
    image = None if path is None else load_image(path)
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
        from emokd.models.face_align import align_face
    except ImportError:
        return None
    return align_face


class FacePicker:
    """Which detected face is the item's subject, frame after frame.

    One person (any video id): the largest face. `<video>_left` / `<video>_right` (Aff-Wild2's
    two-person videos): of the two largest faces, the one on the left / on the right (box centres).
    A frame with one face gives it to the side whose last known face centre is nearer (the side of
    the frame's half until both sides were seen), so the two items of one video never take the same
    face in the same frame. Both items see the same detections in the same order, so they agree.
    """

    def __init__(self, video_id: str = "") -> None:
        self.side = next((s for s in ("left", "right") if video_id.endswith("_" + s)), None)
        self.last = {"left": None, "right": None}  # x of the last face centre given to each side

    def pick(self, det, width: int) -> int | None:
        boxes = np.asarray(det.boxes)
        if boxes.size == 0:
            return None
        if self.side is None:
            return det.largest() if hasattr(det, "largest") else int(np.argmax(np.asarray(det.scores)))
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        two = np.argsort(-areas, kind="stable")[:2]
        centres = (boxes[two, 0] + boxes[two, 2]) / 2
        if len(two) == 2:
            order = two[np.argsort(centres, kind="stable")]
            self.last = {"left": float(centres.min()), "right": float(centres.max())}
            return int(order[0] if self.side == "left" else order[1])
        x = float(centres[0])
        known = {side: at for side, at in self.last.items() if at is not None}
        if len(known) == 2:
            owner = min(known, key=lambda side: abs(known[side] - x))
        else:
            owner = "left" if x < width / 2 else "right"
        self.last[owner] = x
        return int(two[0]) if owner == self.side else None


def align_detection(image: np.ndarray, det, index: int, size: int) -> np.ndarray | None:
    """Detection `index` of `image` aligned on its landmarks (a box crop when no aligner exists)."""
    landmarks = getattr(det, "landmarks", None)
    points = np.asarray(landmarks[index]) if landmarks is not None and len(landmarks) > index else None
    return align_on(image, np.asarray(det.boxes)[index], points, getattr(det, "template", None), size)


def align_on(image: np.ndarray, box, landmarks: np.ndarray | None, template, size: int) -> np.ndarray | None:
    """`image` aligned on a face's `landmarks` (a margin crop of its box x1, y1, x2, y2 when there
    are none or no aligner exists)."""
    align = _aligner()
    if align is not None and landmarks is not None:
        return np.asarray(align(image, landmarks, size=size, template=template), np.uint8)
    x1, y1, x2, y2 = box
    return box_crop(image, (x1, y1, x2 - x1, y2 - y1), size, margin=0.2)


def detect_all(detector, images: list[np.ndarray]) -> list:
    """The detections of each image; detectors with `detect_many` (BlazeFace) run them as one batch."""
    return detector.detect_many(images) if hasattr(detector, "detect_many") else \
        [detector.detect(image) for image in images]


def detect_faces(detector, images: list[np.ndarray], size: int, picker: FacePicker | None = None) -> list:
    """The subject's aligned face in each image (None where there is none)."""
    picker = picker or FacePicker()
    found = detect_all(detector, images)
    out = []
    for image, det in zip(images, found):
        index = picker.pick(det, image.shape[1])
        out.append(None if index is None else align_detection(image, det, index, size))
    return out


def detect_face(detector, image: np.ndarray, size: int) -> np.ndarray | None:
    """The largest detection (the subject of a one-person frame), aligned on its landmarks."""
    return detect_faces(detector, [image], size)[0]


@dataclass
class FaceBatch:
    index: np.ndarray           # int64 (B,) 0-based frame indices, contiguous
    pts: np.ndarray             # float64 (B,) s on the video clock: the probe's frame times
    faces: np.ndarray           # uint8 (B, crop, crop, 3) RGB; zeros where face_ok is False
    face_ok: np.ndarray         # bool (B,)


def _faces_from(frames: list[np.ndarray | None], size: int) -> tuple[np.ndarray, np.ndarray]:
    faces = np.zeros((len(frames), size, size, 3), np.uint8)
    ok = np.zeros(len(frames), bool)
    for i, face in enumerate(frames):
        if face is not None:
            faces[i], ok[i] = face, True
    return faces, ok


def _frame_faces(images: list[np.ndarray], size: int, detector, picker: FacePicker) -> list:
    if detector is None:
        return [whole_frame(image, size) for image in images]
    return detect_faces(detector, list(images), size, picker)


def _video_batches(item: VideoItem, probe: ItemProbe, batch_size: int, crop_size: int,
                   detector, decoder: str = "pyav", report: DecodeReport | None = None,
                   crop_numbering: str = "1-based", detect_every: int = 1) -> Iterator[FaceBatch]:
    info = probe.info
    crop_dir = item.crop_dir if item.crop_dir is not None and Path(item.crop_dir).is_dir() else None
    if item.crop_dir is not None and crop_dir is None:
        log.warning("%s: crop folder %s not found; using %s", item.video_id, item.crop_dir,
                    "the detector" if detector is not None else "the whole frame")

    def batch(start: int, faces_list: list) -> FaceBatch:
        idx = np.arange(start, start + len(faces_list), dtype=np.int64)
        faces, ok = _faces_from(faces_list, crop_size)
        return FaceBatch(idx, probe.pts[idx].copy(), faces, ok)

    if crop_dir is not None:
        for start in range(0, probe.n_frames, batch_size):
            stop = min(start + batch_size, probe.n_frames)
            yield batch(start, [load_crop(crop_dir, k, crop_size, crop_numbering) for k in range(start, stop)])
        return
    # whole-frame faces only need the centre square at crop size: let the decoder scale
    display = info.display_geometry.display
    size = scaled_size(*display, crop_size) if detector is None and min(display) > 0 else None
    from emokd.extract.keyframes import KeyframeFaces  # here: it imports this module

    keyframes = None if detector is None else KeyframeFaces(detector, FacePicker(item.video_id), crop_size,
                                                            detect_every)
    pending: list = []
    first = 0
    for _start, frames in decode_batches(item.video_path, info, probe.n_frames, batch_size, size, decoder, report):
        pending += [whole_frame(f, crop_size) for f in frames] if keyframes is None else keyframes.feed(list(frames))
        while len(pending) >= batch_size:
            yield batch(first, pending[:batch_size])
            first, pending = first + batch_size, pending[batch_size:]
    pending += [] if keyframes is None else keyframes.finish()
    for at in range(0, len(pending), batch_size):
        yield batch(first + at, pending[at:at + batch_size])


def _image_batches(item: VideoItem, probe: ItemProbe, batch_size: int, crop_size: int,
                   detector) -> Iterator[FaceBatch]:
    paths = list(item.frame_images)
    boxes = None if item.face_boxes is None else np.asarray(item.face_boxes, np.float64)
    if boxes is not None and len(boxes) != len(paths):
        raise DataError(f"{item.video_id}: {len(boxes)} face boxes for {len(paths)} frame images")
    picker = FacePicker(item.video_id)
    for start in range(0, len(paths), batch_size):
        faces_list = []
        for k in range(start, min(start + batch_size, len(paths))):
            image = load_image(Path(paths[k]))
            if image is None:
                if not Path(paths[k]).is_file():
                    log.warning("%s: frame image %s not found; frame has no face", item.video_id, paths[k])
                faces_list.append(None)
            elif boxes is not None:
                faces_list.append(box_crop(image, boxes[k], crop_size))
            else:
                faces_list.append(_frame_faces([image], crop_size, detector, picker)[0])
        idx = np.arange(start, start + len(faces_list), dtype=np.int64)
        faces, ok = _faces_from(faces_list, crop_size)
        yield FaceBatch(idx, probe.pts[idx].copy(), faces, ok)


def iter_face_batches(item: VideoItem, probe: ItemProbe, batch_size: int, crop_size: int = CROP_SIZE,
                      detector=None, decoder: str = "pyav", report: DecodeReport | None = None,
                      crop_numbering: str = "1-based", detect_every: int = 1) -> Iterator[FaceBatch]:
    """The face of every frame of `item` once, in order, `batch_size` at a time (see the module
    docstring); `probe` is `probe_item(item)`. `decoder` and `report`: see
    `emokd.extract.video.decode_batches` (which raises `DecoderMismatch` through here when the
    video must be decoded again with decoder="pyav"). `detect_every`: run a detector on every
    K-th frame of a video only (emokd.extract.keyframes)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if item.frame_images is not None:
        yield from _image_batches(item, probe, batch_size, crop_size, detector)
    elif item.video_path is not None:
        yield from _video_batches(item, probe, batch_size, crop_size, detector, decoder, report, crop_numbering,
                                  detect_every)
    else:
        raise DataError(f"{item.video_id}: item has neither a video file nor frame images")
