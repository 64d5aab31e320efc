"""MTCNN face detection with 5 landmarks, in plain torch (no torchvision; docs/encoders.md).

Three cascaded nets (emokd/models/mtcnn_nets.py) with facenet-pytorch 2.6.0's weights:
P-Net over an image pyramid proposes 12x12-cell boxes, R-Net (24x24 crops) and O-Net (48x48
crops) refine them; O-Net also gives the landmarks (left eye, right eye, nose, left and right
mouth corner, from the viewer). Pixels are normalised as (x - 127.5) / 128, crops outside the
image are filled with black, as in the original code. Coordinates are continuous pixel
coordinates, 0-based: pixel (0, 0) covers [0, 1) x [0, 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from emokd.errors import WeightsError
from emokd.models.mtcnn_nets import ONet, PNet, RNet
from emokd.models.state import load_checked, torch_load_safely
from emokd.models.weights import MTCNN_ASSETS, asset_path, sha256_file


@dataclass
class Detections:
    boxes: np.ndarray      # (N, 4) float32 x1, y1, x2, y2
    scores: np.ndarray     # (N,) float32 face probability
    landmarks: np.ndarray  # (N, K, 2) float32 x, y (MTCNN: K = 5; BlazeFace: K = 6)
    template: np.ndarray | None = None  # (K, 2) each landmark's place in the 112x112 crop (NaN: not
    # used for alignment); None: the 5-point template (emokd.models.face_align.TEMPLATE_112)

    def __len__(self) -> int:
        return len(self.scores)

    def largest(self) -> int | None:
        """Index of the largest face (the subject in a single-person video), None when empty."""
        if not len(self):
            return None
        areas = (self.boxes[:, 2] - self.boxes[:, 0]) * (self.boxes[:, 3] - self.boxes[:, 1])
        return int(np.argmax(areas))


def nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float, mode: str = "union") -> torch.Tensor:
    """Greedy non-maximum suppression; indices kept, best first. mode 'min': overlap / smaller area."""
    order = torch.argsort(scores, descending=True)
    areas = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    keep = []
    while order.numel():
        best = order[0]
        keep.append(best)
        rest = order[1:]
        xy1 = torch.maximum(boxes[rest, :2], boxes[best, :2])
        xy2 = torch.minimum(boxes[rest, 2:], boxes[best, 2:])
        inter = (xy2 - xy1).clamp(min=0).prod(dim=1)
        denom = torch.minimum(areas[rest], areas[best]) if mode == "min" else areas[rest] + areas[best] - inter
        order = rest[inter / denom.clamp(min=1e-9) <= threshold]
    return torch.stack(keep) if keep else torch.zeros(0, dtype=torch.long)


def regress(boxes: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Apply the nets' box offsets (fractions of the box width/height)."""
    size = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
    return boxes + offsets * size


def square(boxes: torch.Tensor) -> torch.Tensor:
    """Grow each box to a square around its centre (side = the longer side)."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).max(dim=1, keepdim=True).values / 2
    return torch.cat([centre - half, centre + half], dim=1)


def crop_resize(image: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """(N, 3, size, size) crops of normalised image (3, H, W); outside the image = black."""
    _, height, width = image.shape
    black = (0.0 - 127.5) / 128.0
    out = torch.empty(len(boxes), 3, size, size, dtype=image.dtype, device=image.device)
    for i, (x1, y1, x2, y2) in enumerate(boxes.round().long().tolist()):
        x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)
        patch = torch.full((3, y2 - y1, x2 - x1), black, dtype=image.dtype, device=image.device)
        ax, ay, bx, by = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
        if bx > ax and by > ay:
            patch[:, ay - y1:by - y1, ax - x1:bx - x1] = image[:, ay:by, ax:bx]
        out[i] = F.interpolate(patch[None], size=(size, size), mode="area")[0]
    return out


class FaceDetector(torch.nn.Module):
    def __init__(self, min_face: int = 20, scale_factor: float = 0.709,
                 thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)) -> None:
        super().__init__()
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()
        self.min_face, self.scale_factor, self.thresholds = min_face, scale_factor, thresholds
        self.weights_sha256: dict[str, str] = {}

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def record(self) -> dict:
        return {"name": "mtcnn", "min_face": self.min_face, "thresholds": list(self.thresholds),
                "weights_sha256": dict(self.weights_sha256)}

    def scales(self, height: int, width: int) -> list[float]:
        scale = 12.0 / self.min_face
        side = min(height, width) * scale
        out = []
        while side >= 12:
            out.append(scale)
            scale *= self.scale_factor
            side *= self.scale_factor
        return out

    def _propose(self, image: torch.Tensor) -> torch.Tensor:
        """Stage 1: (N, 5) boxes + score from P-Net over the pyramid."""
        _, height, width = image.shape
        found = []
        for scale in self.scales(height, width):
            size = (int(height * scale + 1), int(width * scale + 1))
            scaled = F.interpolate(image[None], size=size, mode="area")
            prob, offsets = self.pnet(scaled.contiguous(memory_format=torch.channels_last))
            ys, xs = torch.nonzero(prob[0] >= self.thresholds[0], as_tuple=True)
            if not len(ys):
                continue
            cells = torch.stack([xs, ys], dim=1).to(image.dtype)
            boxes = torch.cat([2 * cells / scale, (2 * cells + 12) / scale], dim=1)
            boxes = regress(boxes, offsets[0, :, ys, xs].T)
            scores = prob[0, ys, xs]
            keep = nms(boxes, scores, 0.5)
            found.append(torch.cat([boxes[keep], scores[keep, None]], dim=1))
        if not found:
            return torch.zeros(0, 5, device=image.device)
        boxes = torch.cat(found)
        return boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]

    def detect_many(self, images: list[np.ndarray]) -> list[Detections]:
        """One `detect` per image (MTCNN's pyramid differs per image size: no batching)."""
        return [self.detect(image) for image in images]

    @torch.inference_mode()
    def detect(self, image: np.ndarray) -> Detections:
        """image: uint8 RGB (H, W, 3) -> faces, best first."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"face detector: expected a uint8 RGB image (H, W, 3), got {image.dtype} {image.shape}")
        img = (torch.from_numpy(np.array(image, copy=True)).to(self.device).permute(2, 0, 1).float() - 127.5) / 128.0
        empty = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))
        boxes = self._propose(img)
        if not len(boxes):
            return empty
        boxes = square(boxes[:, :4])
        prob, offsets = self.rnet(crop_resize(img, boxes, 24))
        keep = prob >= self.thresholds[1]
        boxes, prob, offsets = boxes[keep], prob[keep], offsets[keep]
        if not len(boxes):
            return empty
        keep = nms(boxes, prob, 0.7)
        boxes = square(regress(boxes[keep], offsets[keep]))
        prob, offsets, points = self.onet(crop_resize(img, boxes, 48))
        keep = prob >= self.thresholds[2]
        boxes, prob, offsets, points = boxes[keep], prob[keep], offsets[keep], points[keep]
        if not len(boxes):
            return empty
        size = boxes[:, 2:] - boxes[:, :2]
        landmarks = torch.stack([boxes[:, 0:1] + points[:, :5] * size[:, 0:1],
                                 boxes[:, 1:2] + points[:, 5:] * size[:, 1:2]], dim=2)
        boxes = regress(boxes, offsets)
        keep = nms(boxes, prob, 0.7, mode="min")
        return Detections(boxes[keep].cpu().numpy().astype(np.float32), prob[keep].cpu().numpy().astype(np.float32),
                          landmarks[keep].cpu().numpy().astype(np.float32))


def build_face_detector(weights_dir: str | Path | None = None, device: str | torch.device = "cpu",
                        **options) -> FaceDetector:
    """MTCNN from the weights store (default) or a folder holding pnet.pt, rnet.pt, onet.pt."""
    detector = FaceDetector(**options)
    for asset, net in zip(MTCNN_ASSETS, (detector.pnet, detector.rnet, detector.onet)):
        filename = asset.split("_", 1)[1] + ".pt"
        if weights_dir is None:
            path = asset_path(asset)
        else:
            path = Path(weights_dir) / filename
            if not path.is_file():
                raise WeightsError(f"{path}: MTCNN weights file not found (the folder needs pnet.pt, rnet.pt, onet.pt)")
        load_checked(net, torch_load_safely(path), path)
        detector.weights_sha256[filename] = sha256_file(path)
    detector.eval()
    for param in detector.parameters():
        param.requires_grad_(False)
    return detector.to(device)
