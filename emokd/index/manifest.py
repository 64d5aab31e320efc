"""The Manifest: videos (or image sequences) with their crops and per-frame labels, savable as JSON.

Labels are stored compactly (zlib + base64 of the raw arrays) so that a manifest of the whole of
Aff-Wild2 (millions of frames) stays a few megabytes and loads in a second.
"""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emokd.errors import DataError
from emokd.index.abaw import FrameLabels

__all__ = ["FrameLabels", "VideoItem", "Manifest", "MANIFEST_FORMAT", "is_url"]

MANIFEST_FORMAT = "emokd-manifest"
MANIFEST_VERSION = 1


@dataclass
class VideoItem:
    video_id: str                            # unique; other datasets namespaced "<dataset>/<item>"
    video_path: Path | str | None            # media file (shared by _left/_right); a URL stays a str
    crop_dir: Path | None                    # cropped_aligned/<video_id>/ when it exists
    labels: FrameLabels | None
    split: str                               # "train" | "validation" | "test" | "unlabelled"
    dataset: str = "affwild2"
    frame_images: list[Path] | None = None   # image-sequence items (AFEW-VA clips, stills): no audio
    face_boxes: np.ndarray | None = None     # (n, 4) x, y, w, h per frame_image, when given
    fps: float | None = None                 # for image sequences
    n_frames: int | None = None              # frames in the container (index-time probe), if known


def _pack(array: np.ndarray) -> dict:
    array = np.ascontiguousarray(array)
    return {"dtype": array.dtype.str, "shape": list(array.shape),
            "data": base64.b64encode(zlib.compress(array.tobytes(), 6)).decode("ascii")}


def _unpack(blob: dict) -> np.ndarray:
    raw = zlib.decompress(base64.b64decode(blob["data"]))
    return np.frombuffer(raw, dtype=np.dtype(blob["dtype"])).reshape(blob["shape"]).copy()


def is_url(value) -> bool:
    """An fsspec URL (s3://bucket/clip.mp4, gs://...): a source that workers download themselves."""
    return isinstance(value, str) and "://" in value and not value.startswith("file://")


def _path(value) -> Path | str | None:
    if value is None or is_url(value):
        return value
    return Path(value[len("file://"):] if str(value).startswith("file://") else value)


def item_to_dict(item: VideoItem) -> dict:
    out = {"video_id": item.video_id, "video_path": None if item.video_path is None else str(item.video_path),
           "crop_dir": None if item.crop_dir is None else str(item.crop_dir), "split": item.split,
           "dataset": item.dataset, "fps": item.fps, "n_frames": item.n_frames}
    if item.labels is not None:
        out["labels"] = {k: _pack(getattr(item.labels, k)) for k in ("va", "expr", "au")}
    if item.frame_images is not None:
        out["frame_images"] = [str(p) for p in item.frame_images]
    if item.face_boxes is not None:
        out["face_boxes"] = _pack(np.asarray(item.face_boxes, np.float32))
    return out


def item_from_dict(data: dict) -> VideoItem:
    labels = None
    if data.get("labels"):
        labels = FrameLabels(**{k: _unpack(data["labels"][k]) for k in ("va", "expr", "au")})
    frames = data.get("frame_images")
    return VideoItem(
        video_id=data["video_id"], video_path=_path(data.get("video_path")), crop_dir=_path(data.get("crop_dir")),
        labels=labels, split=data.get("split", "unlabelled"), dataset=data.get("dataset", "affwild2"),
        frame_images=None if frames is None else [Path(p) for p in frames],
        face_boxes=_unpack(data["face_boxes"]) if data.get("face_boxes") else None,
        fps=data.get("fps"), n_frames=data.get("n_frames"))


@dataclass
class Manifest:
    items: list[VideoItem]
    test_lists: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    root: Path | None = None
    orphans: list[str] = field(default_factory=list)    # annotation names with no video file

    def by_id(self) -> dict[str, VideoItem]:
        return {item.video_id: item for item in self.items}

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION,
                "root": None if self.root is None else str(self.root),
                "items": [item_to_dict(i) for i in self.items], "test_lists": self.test_lists,
                "problems": self.problems, "orphans": self.orphans}
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"{path}: cannot read manifest ({exc})") from exc
        if not is_saved_manifest(data):
            raise DataError(f"{path}: not a saved emokd manifest (no \"format\": \"{MANIFEST_FORMAT}\")")
        if data.get("version", 0) > MANIFEST_VERSION:
            raise DataError(f"{path}: manifest version {data['version']} is newer than this emokd "
                            f"({MANIFEST_VERSION})")
        try:
            items = [item_from_dict(d) for d in data["items"]]
        except (KeyError, ValueError, TypeError, zlib.error) as exc:
            raise DataError(f"{path}: damaged manifest item ({exc})") from exc
        return cls(items, data.get("test_lists", {}), data.get("problems", []), _path(data.get("root")),
                   data.get("orphans", []))


def is_saved_manifest(data) -> bool:
    return isinstance(data, dict) and data.get("format") == MANIFEST_FORMAT
