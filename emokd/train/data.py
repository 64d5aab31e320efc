"""Training data from the cache: loaded into memory once, gathered by index (docs/training.md).

The items (stills, clips, videos: docs/cache_format.md) of the requested splits are read once,
shard by shard (emokd/train/reading.py), into frame-major arrays (features as float16), items laid
end to end; a sample is a global frame id. A batch gathers, with one tensor index, the
image-embedding window (`window` frames at `stride`, ending at the frame), the frame's audio
embedding, its labels with masks and, for a student, the teacher's stored outputs. No file is
read after loading, so the data never waits on storage. When the chosen feature sets do not fit
in `max_memory`, training reads shard-sized blocks in a shuffled block order instead
(emokd/train/blocks.py), and says so.

Splits are per task (a video can be VA training and EXPR validation data): a frame is a training
sample of task t when its video's t split is the training split, and a batch's label masks only
ever let training-split labels through, so no validation label reaches a loss. The MTL stream is
the dataset's MTL set where it has one (ABAW3 MTL files), else every frame with all three labels.

Frames without a face (`face_ok` False): their image embedding is replaced, at load time, by the
one of the nearest earlier frame with a face (zeros before a video's first face), so windows stay
inside the real face track. Window positions before a video's first frame repeat frame 0; the
batch's `face_mask` marks the window positions that are real frames with a face.
Training uses only labelled frames that have a face themselves (`require_face`); evaluation and
prediction score every frame and fill no-face frames from the nearest earlier prediction
(`fill_within_items`), as ABAW submissions do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from emokd.constants import SPLIT_KEYS, TASKS, uniform_splits
from emokd.errors import DataError

log = logging.getLogger(__name__)

TASK_ID = {"VA": 0, "EXPR": 1, "AU": 2}


def fill_within_items(values: np.ndarray, ok: np.ndarray, item_of_row: np.ndarray) -> np.ndarray:
    """Rows with `ok` False take the row of the nearest earlier ok row of the same item; rows before
    an item's first ok row take that row (unchanged for an item with none). Rows of one item are
    consecutive and share their `item_of_row` value (vectorised: 400 k stills at once)."""
    n = len(ok)
    if not n:
        return values.copy()
    rows = np.arange(n)
    change = item_of_row[1:] != item_of_row[:-1]
    start = np.maximum.accumulate(np.where(np.r_[True, change], rows, 0))
    end = np.minimum.accumulate(np.where(np.r_[change, True], rows, n)[::-1])[::-1]
    before = np.maximum.accumulate(np.where(ok, rows, -1))
    after = np.minimum.accumulate(np.where(ok, rows, n)[::-1])[::-1]
    src = np.where(before >= start, before, np.where(after <= end, after, rows))
    return values[src]


@dataclass
class FrameData:
    """All frames of the loaded videos, end to end; see the module docstring."""

    video_ids: list[str]
    video_start: np.ndarray          # (V,) first global frame id of each video
    video_len: np.ndarray            # (V,)
    video_splits: list[dict[str, str]]   # per video: task (VA, EXPR, AU, MTL) -> split (a str: all tasks)
    video_dataset: list[str]
    face: torch.Tensor               # (N, D_face) float16, no-face rows filled from earlier
    audio: torch.Tensor              # (N, D_audio) float16
    face_ok: np.ndarray              # (N,) bool
    va: np.ndarray                   # (N, 2) float32, NaN = missing
    expr: np.ndarray                 # (N,) int8, -1 = missing
    au: np.ndarray                   # (N, 12) int8, -1 = missing
    window: int = 6
    stride: int = 10
    soft: dict[str, torch.Tensor] = field(default_factory=dict)   # teacher outputs (N, k) float32
    device: torch.device = torch.device("cpu")
    batch_device: torch.device | None = None   # where batches go when the arrays stay on the CPU
    mtl: np.ndarray | None = None    # (N,) bool: frames of the dataset's MTL set (None: no MTL set)
    train_split: str = "train"       # the only split whose labels a batch's masks let through
    sets: dict = field(default_factory=dict)   # the feature sets read: face, audio, fingerprints

    def __post_init__(self) -> None:
        n = len(self.face_ok)
        self.video_splits = [uniform_splits(s) if isinstance(s, str) else {**uniform_splits("unlabelled"), **s}
                             for s in self.video_splits]
        if self.mtl is None:
            self.mtl = np.zeros(n, bool)
        self._video_split_of = {key: np.asarray([s[key] for s in self.video_splits], dtype=object)
                                for key in SPLIT_KEYS}
        self.frame_video = np.repeat(np.arange(len(self.video_ids)), self.video_len)
        self._start_t = torch.as_tensor(self.video_start[self.frame_video] if n else np.zeros(0, np.int64),
                                        device=self.device)
        self._offsets = torch.as_tensor(self.stride * np.arange(self.window - 1, -1, -1), device=self.device)
        self._face_ok_t = torch.as_tensor(self.face_ok, device=self.device)
        train = {t: self.task_mask(t) & self.in_split(self.train_split, t) for t in TASKS}
        self._va_t = torch.as_tensor(np.nan_to_num(self.va, nan=0.0), device=self.device)
        self._va_m = torch.as_tensor(train["VA"], device=self.device)
        self._expr_t = torch.as_tensor(np.maximum(self.expr, 0).astype(np.int64), device=self.device)
        self._expr_m = torch.as_tensor(train["EXPR"], device=self.device)
        self._au_t = torch.as_tensor(np.maximum(self.au, 0).astype(np.float32), device=self.device)
        self._au_m = torch.as_tensor(train["AU"], device=self.device)

    @property
    def n_frames(self) -> int:
        return len(self.face_ok)

    @property
    def dims(self) -> dict[str, int]:
        """What a network is built for: embedding widths and the window it reads (`Recipe.net_config`)."""
        return {"face": int(self.face.shape[1]), "audio": int(self.audio.shape[1]), "window": self.window,
                "stride": self.stride}

    @property
    def mode(self) -> str:
        """"memory" (features loaded) or "blocks" (read from the cache block by block)."""
        return "memory"

    def memory_bytes(self) -> int:
        tensors = [t for t in (self.face, self.audio) if t is not None] + [
            self._va_t, self._va_m, self._expr_t, self._expr_m, self._au_t, self._au_m, self._start_t,
            self._face_ok_t, *self.soft.values()]
        arrays = [self.face_ok, self.va, self.expr, self.au, self.frame_video, self.mtl]
        return sum(t.element_size() * t.nelement() for t in tensors) + sum(a.nbytes for a in arrays)

    # ---- which frames belong to which split, per task ------------------------------------------
    def in_split(self, split: str, task: str) -> np.ndarray:
        """(N,) bool: frames whose video has `task` (one of SPLIT_KEYS) in `split`."""
        return (self._video_split_of[task] == split)[self.frame_video]

    def split_names(self) -> list[str]:
        """Every split some task of some loaded video is in (for messages)."""
        return sorted({s for splits in self.video_splits for s in splits.values()})

    def videos_in(self, split: str) -> np.ndarray:
        """Indices of the videos with any task in `split`."""
        return np.flatnonzero(np.logical_or.reduce([s == split for s in self._video_split_of.values()]))

    def frames(self, split: str | None = None, videos: np.ndarray | None = None) -> np.ndarray:
        """Every frame id of the videos with some task in `split` (all videos if None), or of the
        video indices `videos`, in video order."""
        if videos is None and split is None:
            return np.arange(self.n_frames, dtype=np.int64)
        videos = self.videos_in(split) if videos is None else np.asarray(videos, np.int64)
        if len(videos) and np.all(np.diff(videos) > 0):   # increasing, no repeats: one mask
            keep = np.zeros(len(self.video_ids), bool)
            keep[videos] = True
            return np.flatnonzero(keep[self.frame_video]).astype(np.int64)
        parts = [np.arange(self.video_start[v], self.video_start[v] + self.video_len[v]) for v in videos]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    def permute(self, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A random order of frame ids `idx` (block mode: block by block, the blocks shuffled)."""
        return rng.permutation(idx)

    def task_mask(self, task: str) -> np.ndarray:
        """(N,) bool: frames carrying a `task` label (MTL: all three), whatever their split."""
        va = ~np.isnan(self.va).any(1)
        expr = self.expr >= 0
        au = (self.au >= 0).all(1)
        masks = {"VA": va, "EXPR": expr, "AU": au, "MTL": va & expr & au}
        if task not in masks:
            raise DataError(f"unknown task {task!r}; known: {sorted(masks)}")
        return masks[task]

    def has_mtl_set(self, split: str) -> bool:
        """Whether the dataset's MTL set has frames in `split` among the loaded videos."""
        return bool((self.mtl & self.in_split(split, "MTL")).any())

    def split_labelled(self, split: str, task: str) -> np.ndarray:
        """(N,) bool: frames whose `task` label belongs to `split`. MTL: frames of the dataset's MTL
        set in `split` when it has one there, else frames with all three labels; either way each
        of the three labels must belong to `split` itself."""
        if task not in SPLIT_KEYS:
            raise DataError(f"unknown task {task!r}; known: {list(SPLIT_KEYS)}")
        if task != "MTL":
            return self.task_mask(task) & self.in_split(split, task)
        mask = self.task_mask("MTL") & np.logical_and.reduce([self.in_split(split, t) for t in TASKS])
        if self.has_mtl_set(split):
            mask &= self.mtl & self.in_split(split, "MTL")
        return mask

    def labelled(self, split: str, task: str, dataset: str | None = None,
                 require_face: bool = True) -> np.ndarray:
        """Frame ids labelled for `task` in `split` (see `split_labelled`), optionally one dataset."""
        mask = self.split_labelled(split, task)
        if dataset is not None:
            keep = np.asarray(self.video_dataset, dtype=object) == dataset
            mask &= keep[self.frame_video]
        if require_face:
            mask &= self.face_ok
        return np.flatnonzero(mask)

    def labels_of(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """Every stored label of frames `idx`, whatever its split (evaluation masks by split)."""
        return {"va": self.va[idx], "expr": self.expr[idx], "au": self.au[idx]}

    # ---- batches --------------------------------------------------------------------------------
    def window_index(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, window) global frame ids of each sample's image window, clamped to its video."""
        return torch.maximum(idx[:, None] - self._offsets, self._start_t[idx][:, None])

    def features(self, i: torch.Tensor, win: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(face embeddings of the windows `win` (B, window, D_face), audio of frames `i` (B, D_audio))."""
        return self.face[win].float(), self.audio[i].float()

    def batch(self, idx: np.ndarray | torch.Tensor, stream: str | None = None,
              dataset: str | None = None) -> dict:
        """Gather a batch (see `recipes/base.py` for its keys) on `self.device`."""
        i = torch.as_tensor(idx, dtype=torch.long, device=self.device)
        win = self.window_index(i)
        inside = i[:, None] - self._offsets >= self._start_t[i][:, None]
        face, audio = self.features(i, win)
        batch = {
            "face": face,
            "face_mask": self._face_ok_t[win] & inside,
            "audio": audio,
            "va": self._va_t[i], "va_mask": self._va_m[i],
            "expr": self._expr_t[i], "expr_mask": self._expr_m[i],
            "au": self._au_t[i], "au_mask": self._au_m[i],
            "index": i,
            "soft": {name: t[i] for name, t in self.soft.items()},
            "stream": stream, "dataset": dataset,
        }
        if self.batch_device is not None and self.batch_device != self.device:
            move = lambda t: t.to(self.batch_device, non_blocking=True)  # noqa: E731
            batch = {k: (move(v) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
            batch["soft"] = {k: move(v) for k, v in batch["soft"].items()}
        return batch

    def to(self, device: str | torch.device) -> FrameData:
        """Move the gathered tensors (features, labels, soft labels) to `device`."""
        device = torch.device(device)
        return FrameData(self.video_ids, self.video_start, self.video_len, self.video_splits,
                         self.video_dataset, self.face.to(device), self.audio.to(device), self.face_ok,
                         self.va, self.expr, self.au, self.window, self.stride,
                         {k: v.to(device) for k, v in self.soft.items()}, device, self.batch_device,
                         self.mtl, self.train_split, self.sets)


def load_frame_data(cache, splits: Sequence[str] | None = None, window: int = 6, stride: int = 10,
                    soft_run: str | None = None, device: str | torch.device = "cpu",
                    video_ids: Sequence[str] | None = None, train_split: str = "train",
                    face_set: str | None = None, audio_set: str | None = None,
                    max_memory: str | float | None = None) -> FrameData:
    """Read the complete items with some task in `splits` (all if None; or exactly `video_ids`)
    from an open FeatureCache: the feature sets `face_set`/`audio_set` (default the first of each kind).

    Into memory when the features fit in `max_memory` (`reading.parse_memory`; default half the RAM), else
    a block-mode FrameData (emokd/train/blocks.py). With `soft_run`, the teacher outputs stored for
    it are loaded too; a shard without them is a CacheError (export the teacher's soft labels).
    """
    from tqdm.auto import tqdm

    from emokd.train import reading

    if window < 1 or stride < 1:
        raise DataError(f"window={window}, stride={stride}: both must be >= 1")
    started = time.perf_counter()
    sel = reading.select(cache, splits, video_ids, face_set, audio_set)
    dims = {"face": cache.feature_dims[sel.face_set], "audio": cache.feature_dims[sel.audio_set]}
    src = reading.fill_index(sel.face_ok, sel.starts, sel.lens)
    soft = {k: torch.from_numpy(v) for k, v in reading.read_soft(cache, sel, soft_run).items()} if soft_run else {}
    sets = {"face": sel.face_set, "audio": sel.audio_set,
            "fingerprints": {n: cache.feature_set(n).fingerprint for n in (sel.face_set, sel.audio_set)}}
    common = dict(video_ids=sel.ids, video_start=sel.starts, video_len=sel.lens, video_splits=sel.splits,
                  video_dataset=sel.datasets, face_ok=sel.face_ok, va=sel.va, expr=sel.expr, au=sel.au,
                  window=window, stride=stride, soft=soft, mtl=sel.mtl, train_split=train_split, sets=sets)
    for why, n in sel.skipped.items():
        log.warning("cache %s: left out %d items %s", cache.url, n, why)
    feature_bytes = sel.n_frames * (dims["face"] + dims["audio"]) * 2
    budget = reading.parse_memory(max_memory)
    if feature_bytes > budget:
        from emokd.train.blocks import BlockFrameData

        log.warning("the chosen feature sets need %.2f GB for %d frames, more than max_memory %.2f GB: "
                    "training reads shard-sized blocks in a shuffled block order instead (slower than in "
                    "memory; docs/training.md)", feature_bytes / 1e9, sel.n_frames, budget / 1e9)
        return BlockFrameData.build(cache, sel, src, dims, budget, common, device)
    face = np.zeros((sel.n_frames, dims["face"]), np.float16)
    audio = np.zeros((sel.n_frames, dims["audio"]), np.float16)
    with tqdm(total=sel.n_frames, unit="frame", desc="loading", leave=False, disable=None) as bar:
        reading.read_features(cache, sel, face, audio, src, progress=bar.update)
    data = FrameData(face=torch.from_numpy(face), audio=torch.from_numpy(audio), **common)
    log.info("loaded %d items, %d frames, %.1f MB in %.1f s (feature sets %s, %s)", len(sel.ids), sel.n_frames,
             data.memory_bytes() / 1e6, time.perf_counter() - started, sel.face_set, sel.audio_set)
    return data.to(device) if torch.device(device).type != "cpu" else data
