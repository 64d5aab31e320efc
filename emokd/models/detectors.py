"""The face detectors by name: `build_detector(name, weights, device)`.

Each returns `Detections` (emokd/models/face_detector.py): boxes, scores and landmarks.
Speeds and agreement: docs/encoders.md, docs/benchmarks.md.
"""

from __future__ import annotations

from pathlib import Path

from emokd.errors import WeightsError

DETECTORS = ("mtcnn",)


def build_detector(name: str, weights: str | Path | None = None, device="cpu"):
    """MTCNN: `weights` is a folder with pnet.pt, rnet.pt, onet.pt."""
    if name == "mtcnn":
        from emokd.models.face_detector import build_face_detector

        return build_face_detector(weights, device=device)
    raise WeightsError(f"unknown face detector '{name}'; known: {list(DETECTORS)}")
