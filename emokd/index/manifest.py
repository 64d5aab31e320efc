"""The Manifest: videos (or image sequences) with their crops and per-frame labels, savable as JSON.

Labels are stored compactly (zlib + base64 of the raw arrays) so that a manifest of the whole of
Aff-Wild2 (millions of frames) stays a few megabytes and loads in a second.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from emokd.constants import SPLIT_KEYS, SPLIT_VALUES, split_summary, uniform_splits
from emokd.errors import DataError
from emokd.index.frame_labels import FrameLabels

__all__ = ["FrameLabels", "VideoItem", "Manifest", "MANIFEST_FORMAT", "is_url"]

MANIFEST_FORMAT = "emokd-manifest"
MANIFEST_VERSION = 2          # 2: per-task splits (`splits`) and the MTL set's frames (`mtl`)


@dataclass
class VideoItem:
    video_id: str                            # unique; other datasets namespaced "<dataset>/<item>"
    video_path: Path | str | None            # media file (shared by _left/_right); a URL stays a str
    crop_dir: Path | None                    # cropped_aligned/<video_id>/ when it exists
    labels: FrameLabels | None
    split: str                               # "train" | "validation" | "test" | "unlabelled" | "mixed"
    dataset: str = "affwild2"
    frame_images: list[Path] | None = None   # image-sequence items (AFEW-VA clips, stills): no audio
    face_boxes: np.ndarray | None = None     # (n, 4) x, y, w, h per frame_image, when given
    fps: float | None = None                 # for image sequences
    n_frames: int | None = None              # frames in the container (index-time probe), if known
    splits: dict[str, str] | None = None     # per task (VA, EXPR, AU, MTL) -> split; None: `split` for all
    mtl: np.ndarray | None = None            # (n,) bool: frames listed by the dataset's MTL set

    def task_splits(self) -> dict[str, str]:
        """The split of each task of `SPLIT_KEYS` (`split` for every task when no per-task splits)."""
        return {**uniform_splits(self.split), **(self.splits or {})}


def item_splits(splits: dict[str, str], where: str) -> dict[str, str]:
    """`splits` checked: keys among SPLIT_KEYS, values among SPLIT_VALUES; DataError naming `where`."""
    bad = {k: v for k, v in splits.items() if k not in SPLIT_KEYS or v not in SPLIT_VALUES}
    if bad:
        raise DataError(f"{where}: per-task splits {bad} must map {list(SPLIT_KEYS)} to {list(SPLIT_VALUES)}")
    return dict(splits)


def with_splits(item: VideoItem, splits: dict[str, str]) -> VideoItem:
    """`item` with per-task `splits` and the summary `split` that goes with them."""
    full = {**uniform_splits("unlabelled"), **splits}
    return replace(item, splits=full, split=split_summary(full))


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
           "dataset": item.dataset, "fps": item.fps, "n_frames": item.n_frames, "splits": item.task_splits()}
    if item.labels is not None:
        out["labels"] = {k: _pack(getattr(item.labels, k)) for k in ("va", "expr", "au")}
    if item.frame_images is not None:
        out["frame_images"] = [str(p) for p in item.frame_images]
    if item.face_boxes is not None:
        out["face_boxes"] = _pack(np.asarray(item.face_boxes, np.float32))
    if item.mtl is not None:
        out["mtl"] = _pack(np.asarray(item.mtl, bool))
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
        fps=data.get("fps"), n_frames=data.get("n_frames"),
        splits=item_splits(data["splits"], data["video_id"]) if data.get("splits") else None,
        mtl=_unpack(data["mtl"]) if data.get("mtl") else None)


@dataclass
class Manifest:
    items: list[VideoItem]
    test_lists: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    root: Path | None = None
    orphans: list[str] = field(default_factory=list)    # annotation names with no video file

    def by_id(self) -> dict[str, VideoItem]:
        return {item.video_id: item for item in self.items}

    def rerooted(self, new_root: Path, source: Path | str = "manifest") -> Manifest:
        """The same items with every path under `self.root` moved under `new_root` (a dataset
        copied or mounted elsewhere); paths outside the old root are kept and reported."""
        if self.root is None:
            raise DataError(f"{source}: records no dataset root, so it cannot be re-rooted; index the "
                            "dataset again where it is now")
        old = Path(self.root)
        outside: list[str] = []

        def move(p: Path | str | None, video_id: str) -> Path | str | None:
            if p is None or "://" in str(p):          # an object-store URL does not move with the root
                return p
            try:
                return new_root / Path(p).relative_to(old)
            except ValueError:
                outside.append(video_id)
                return Path(p)

        items = [dataclasses.replace(
            item, video_path=move(item.video_path, item.video_id), crop_dir=move(item.crop_dir, item.video_id),
            frame_images=None if item.frame_images is None else [move(p, item.video_id) for p in item.frame_images])
            for item in self.items]
        problems = list(self.problems)
        if outside:
            names = sorted(set(outside))
            problems.append(f"{source}: {len(names)} item(s) have paths outside the recorded root {old}, "
                            f"kept as they are: {names[:5]}")
        return Manifest(items, self.test_lists, problems, new_root, self.orphans)

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
        if data.get("version", 1) < 2 and any(i.dataset == "affwild2" and i.labels is not None for i in items):
            # version 1 kept one split per video: a video listed by two tasks' files in different
            # splits was saved as all "validation", which cannot be undone from the file
            raise DataError(f"{path}: manifest saved before per-task splits (version 1); write it again "
                            "with `emokd index` from the dataset")
        return cls(items, data.get("test_lists", {}), data.get("problems", []), _path(data.get("root")),
                   data.get("orphans", []))


def is_saved_manifest(data) -> bool:
    return isinstance(data, dict) and data.get("format") == MANIFEST_FORMAT
