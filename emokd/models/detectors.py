"""The face detectors by name: `build_detector(name, weights, device)`.

Each returns `Detections` (emokd/models/face_detector.py): boxes, scores and landmarks.
Speeds and agreement: docs/encoders.md, docs/benchmarks.md.
"""

from __future__ import annotations

from pathlib import Path

from emokd.errors import WeightsError

# name -> BlazeFace model (None: MTCNN). "blazeface" is the short-range model (the default: it met
# the speed and agreement goals, docs/benchmarks.md); "blazeface_cascade" adds the full range where
# the short range finds no face.
DETECTORS = {"blazeface": "short", "blazeface_full": "full", "blazeface_cascade": "cascade", "mtcnn": None}
DEFAULT_DETECTOR = "blazeface"


def detector_name(record: dict | None) -> str:
    """The detector name of a cache's `face_detector` record (caches before BlazeFace: mtcnn)."""
    name = (record or {}).get("name", "mtcnn")
    return name if name in DETECTORS else "mtcnn"


def build_detector(name: str, weights: str | Path | None = None, device="cpu"):
    """MTCNN: `weights` is a folder with pnet.pt, rnet.pt, onet.pt; blazeface, blazeface_full: a .tflite
    file; blazeface_cascade: a folder with both .tflite files."""
    if name == "mtcnn":
        from emokd.models.face_detector import build_face_detector

        return build_face_detector(weights, device=device)
    if name in DETECTORS:
        from emokd.models.blazeface import build_blazeface

        return build_blazeface(weights, device=device, model=DETECTORS[name])
    raise WeightsError(f"unknown face detector '{name}'; known: {sorted(DETECTORS)}")
