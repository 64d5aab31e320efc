"""The subject's aligned face in each decoded frame, detecting every `every`-th frame only.

`--detect-every K` (ExtractConfig.detect_every, docs/encoders.md "Detecting every K frames"): the
detector runs on the keyframes 0, K, 2K, ... and on the video's last decoded frame. Between two
keyframes whose picked faces are the same face (`same_face`: box centres at most one width of the
narrower box apart), each frame is aligned, by the same code as a detected face, on the picked
face's landmarks and box interpolated linearly in frame index. Where either keyframe has no face,
or the two faces are not the same, the frames between are detected one by one as with K = 1 and
the item's FacePicker sees them in order (it is rolled back to before the keyframe and picks it again
after them), so interpolation neither invents nor loses a face. K = 1 detects every frame: every
frame is a keyframe and nothing is interpolated.

Frames are held from one keyframe to the next (at most K - 1 frames plus one decoded batch); the
keyframes of one decoded batch are detected in one `detect_many` call.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from emokd.extract.faces import FacePicker, align_on, detect_all

MAX_CENTRE_SHIFT = 1.0   # in widths of the narrower box: farther apart, the two are not one face


@dataclass
class PickedFace:
    """The face picked in one detected frame: box x1, y1, x2, y2 and landmarks (K, 2) or None."""

    box: np.ndarray
    landmarks: np.ndarray | None
    template: np.ndarray | None
    detected: bool = True       # False: interpolated between two keyframes

    @classmethod
    def of(cls, det, index: int | None) -> "PickedFace | None":
        if index is None:
            return None
        landmarks = getattr(det, "landmarks", None)
        points = None if landmarks is None or len(landmarks) <= index else np.asarray(landmarks[index], np.float64)
        return cls(np.asarray(det.boxes[index], np.float64), points, getattr(det, "template", None))

    def aligned(self, image: np.ndarray, size: int) -> np.ndarray | None:
        return align_on(image, self.box, self.landmarks, self.template, size)


def same_face(a: PickedFace, b: PickedFace) -> bool:
    """Whether two keyframes' faces may be interpolated: box centres at most MAX_CENTRE_SHIFT widths
    of the narrower box apart, and both with landmarks or both without."""
    centre = lambda box: np.array([box[0] + box[2], box[1] + box[3]]) / 2  # noqa: E731
    width = min(a.box[2] - a.box[0], b.box[2] - b.box[0])
    return (width > 0 and (a.landmarks is None) == (b.landmarks is None)
            and float(np.linalg.norm(centre(a.box) - centre(b.box))) <= MAX_CENTRE_SHIFT * width)


def interpolate(a: PickedFace, b: PickedFace, t: float) -> PickedFace:
    """The face a fraction `t` (0: a, 1: b) of the way from keyframe a to keyframe b."""
    points = None if a.landmarks is None else (1 - t) * a.landmarks + t * b.landmarks
    return PickedFace((1 - t) * a.box + t * b.box, points, b.template, detected=False)


class KeyframeFaces:
    """Feed the decoded frames of one item in order (`feed`), then `finish`: the faces (uint8
    (size, size, 3) or None) of the frames resolved so far, in order, each frame once."""

    def __init__(self, detector, picker: FacePicker, size: int, every: int = 1) -> None:
        if every < 1:
            raise ValueError(f"detect every: must be >= 1, got {every}")
        self.detector, self.picker, self.size, self.every = detector, picker, size, every
        self.held: list[np.ndarray] = []   # frames after the last keyframe, the first is frame `start`
        self.start = 0
        self.last: PickedFace | None = None  # the last keyframe's picked face
        self.detected = 0                  # frames the detector has seen
        self.picked: list | None = None    # set to [] to collect each frame's PickedFace or None, in order

    def feed(self, frames) -> list:
        self.held.extend(frames)
        keys = [p for p in range(len(self.held)) if (self.start + p) % self.every == 0]
        return self._resolve(keys)

    def finish(self) -> list:
        """The faces of the frames after the last keyframe: the last frame is a keyframe."""
        return self._resolve([len(self.held) - 1]) if self.held else []

    def _detect(self, images: list) -> list:
        self.detected += len(images)
        return detect_all(self.detector, images) if images else []

    def _resolve(self, keys: list[int]) -> list:
        out: list = []
        done = 0
        for p, det in zip(keys, self._detect([self.held[p] for p in keys])):
            out += self._segment(self.held[done:p], self.held[p], det)
            done = p + 1
        self.held, self.start = self.held[done:], self.start + done
        return out

    def _segment(self, between: list, key: np.ndarray, det) -> list:
        """Faces of the frames `between` the last keyframe and `key`, then of `key` (detections `det`)."""
        before = copy.deepcopy(self.picker) if between else None
        face = PickedFace.of(det, self.picker.pick(det, key.shape[1]))
        if between and self.last is not None and face is not None and same_face(self.last, face):
            faces = [interpolate(self.last, face, (j + 1) / (len(between) + 1)) for j in range(len(between))]
        else:
            faces = []
            if between:   # detected one by one, the picker seeing them before the keyframe again
                self.picker = before
                faces = [PickedFace.of(found, self.picker.pick(found, image.shape[1]))
                         for image, found in zip(between, self._detect(between))]
                face = PickedFace.of(det, self.picker.pick(det, key.shape[1]))
        out = [None if f is None else f.aligned(image, self.size) for f, image in zip(faces, between)]
        self.last = face
        if self.picked is not None:
            self.picked += faces + [face]
        return out + [None if face is None else face.aligned(key, self.size)]
