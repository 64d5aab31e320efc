"""Training data from the cache: loaded into memory once, gathered by index (docs/training.md).

Every video of the requested splits is read once into frame-major arrays (features as float16),
videos laid end to end; a sample is a global frame id. A batch gathers, with one tensor index,
the image-embedding window (`window` frames at `stride`, ending at the frame), the frame's audio
embedding, its labels with masks and, for a student, the teacher's stored outputs. No file is
read after loading, so the data never waits on storage.

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
(`fill_from_earlier`), as ABAW submissions do.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from emokd.constants import N_AU, SPLIT_KEYS, TASKS, uniform_splits
from emokd.errors import CacheError, DataError

log = logging.getLogger(__name__)

TASK_ID = {"VA": 0, "EXPR": 1, "AU": 2}


def forward_fill_index(face_ok: np.ndarray) -> np.ndarray:
    """For each frame, the index of the nearest frame at or before it with a face (-1 if none)."""
    pos = np.where(face_ok, np.arange(len(face_ok)), -1)
    return np.maximum.accumulate(pos) if len(pos) else pos


def fill_from_earlier(values: np.ndarray, face_ok: np.ndarray) -> np.ndarray:
    """Rows of frames without a face take the row of the nearest earlier face frame; rows before
    the first face take the first face frame's row (unchanged when the video has no face at all)."""
    src = forward_fill_index(face_ok)
    if not face_ok.any():
        return values.copy()
    src = np.where(src < 0, int(np.argmax(face_ok)), src)
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

    def __post_init__(self) -> None:
        n = len(self.face_ok)
        self.video_splits = [uniform_splits(s) if isinstance(s, str) else {**uniform_splits("unlabelled"), **s}
                             for s in self.video_splits]
        if self.mtl is None:
            self.mtl = np.zeros(n, bool)
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

    def memory_bytes(self) -> int:
        tensors = [self.face, self.audio, self._va_t, self._va_m, self._expr_t, self._expr_m,
                   self._au_t, self._au_m, self._start_t, self._face_ok_t, *self.soft.values()]
        arrays = [self.face_ok, self.va, self.expr, self.au, self.frame_video, self.mtl]
        return sum(t.element_size() * t.nelement() for t in tensors) + sum(a.nbytes for a in arrays)

    # ---- which frames belong to which split, per task ------------------------------------------
    def in_split(self, split: str, task: str) -> np.ndarray:
        """(N,) bool: frames whose video has `task` (one of SPLIT_KEYS) in `split`."""
        per_video = np.array([s[task] == split for s in self.video_splits], dtype=bool)
        return per_video[self.frame_video] if len(per_video) else np.zeros(0, bool)

    def split_names(self) -> list[str]:
        """Every split some task of some loaded video is in (for messages)."""
        return sorted({s for splits in self.video_splits for s in splits.values()})

    def videos_in(self, split: str) -> np.ndarray:
        """Indices of the videos with any task in `split`."""
        return np.array([v for v, s in enumerate(self.video_splits) if split in s.values()], dtype=np.int64)

    def frames(self, split: str | None = None, videos: np.ndarray | None = None) -> np.ndarray:
        """Every frame id of the videos with some task in `split` (all videos if None), or of the
        video indices `videos`, in video order."""
        if videos is None:
            videos = np.arange(len(self.video_ids)) if split is None else self.videos_in(split)
        parts = [np.arange(self.video_start[v], self.video_start[v] + self.video_len[v]) for v in videos]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

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
            keep = np.array([ds == dataset for ds in self.video_dataset], dtype=bool)
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

    def batch(self, idx: np.ndarray | torch.Tensor, stream: str | None = None,
              dataset: str | None = None) -> dict:
        """Gather a batch (see `recipes/base.py` for its keys) on `self.device`."""
        i = torch.as_tensor(idx, dtype=torch.long, device=self.device)
        win = self.window_index(i)
        inside = i[:, None] - self._offsets >= self._start_t[i][:, None]
        batch = {
            "face": self.face[win].float(),
            "face_mask": self._face_ok_t[win] & inside,
            "audio": self.audio[i].float(),
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
                         self.mtl, self.train_split)


def feature_arrays(cache) -> tuple[str, str]:
    """Names of the cache's face and audio embedding arrays, from its encoder records."""
    names = {}
    for record in cache.encoders:
        names.setdefault(record.get("kind"), record.get("array", record.get("kind")))
    if "face" not in names or "audio" not in names:
        raise CacheError(f"cache {cache.url}: training needs one face and one audio encoder; "
                         f"the cache has {sorted(k for k in names if k)}")
    return names["face"], names["audio"]


def _read_labels(cache, video_id: str, n: int) -> dict:
    if not cache.has_labels(video_id):
        return {"va": np.full((n, 2), np.nan, np.float32), "expr": np.full(n, -1, np.int8),
                "au": np.full((n, N_AU), -1, np.int8), "mtl": np.zeros(n, bool),
                "splits": uniform_splits("unlabelled"), "dataset": "unknown"}
    lab = cache.read_labels(video_id)
    if lab["splits"] is None:
        raise CacheError(f"cache {cache.url}: the labels of {video_id!r} were written before per-task "
                         "splits; run `emokd cache relabel DATASET CACHE` to rewrite them from the dataset")
    return lab


def load_frame_data(cache, splits: Sequence[str] | None = None, window: int = 6, stride: int = 10,
                    soft_run: str | None = None, device: str | torch.device = "cpu",
                    video_ids: Sequence[str] | None = None, train_split: str = "train") -> FrameData:
    """Read the complete videos with some task in `splits` (all if None) from an open FeatureCache.

    With `soft_run`, the teacher outputs stored under soft/<soft_run>/ are loaded too; a video
    without them is a CacheError (run the teacher's soft-label export first). Labels written
    before per-task splits are a CacheError that says how to rewrite them.
    """
    if window < 1 or stride < 1:
        raise DataError(f"window={window}, stride={stride}: both must be >= 1")
    ids, lens, labels = [], [], []
    face_name, audio_name = feature_arrays(cache)
    for vid in (cache.video_ids() if video_ids is None else video_ids):
        n = cache.n_frames(vid)
        lab = _read_labels(cache, vid, n)
        if splits is not None and not set(splits) & set(lab["splits"].values()):
            continue
        ids.append(vid), lens.append(n), labels.append(lab)
    if not ids:
        raise DataError(f"cache {cache.url}: no complete video in splits {list(splits or [])}")
    dims = {"face": cache.feature_dims[face_name], "audio": cache.feature_dims[audio_name]}
    lens_a = np.asarray(lens, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lens_a)[:-1]]).astype(np.int64)
    total = int(lens_a.sum())
    face = np.zeros((total, dims["face"]), np.float16)
    audio = np.zeros((total, dims["audio"]), np.float16)
    face_ok = np.zeros(total, bool)
    mtl = np.zeros(total, bool)
    va = np.full((total, 2), np.nan, np.float32)
    expr = np.full(total, -1, np.int8)
    au = np.full((total, N_AU), -1, np.int8)
    soft: dict[str, np.ndarray] = {}
    for vid, s, n, lab in zip(ids, starts, lens_a, labels):
        arrays = cache.read_video(vid, [face_name, audio_name, "face_ok"])
        ok = np.asarray(arrays["face_ok"], bool)[:n]
        src = forward_fill_index(ok)
        f = np.asarray(arrays[face_name])[:n]
        face[s:s + n] = np.where((src >= 0)[:, None], f[np.maximum(src, 0)], 0)
        audio[s:s + n] = np.asarray(arrays[audio_name])[:n]
        face_ok[s:s + n] = ok
        m = min(n, len(lab["va"]))
        va[s:s + m], expr[s:s + m], au[s:s + m] = lab["va"][:m], lab["expr"][:m], lab["au"][:m]
        mtl[s:s + m] = lab["mtl"][:m]
        if soft_run is not None:
            if not cache.has_soft(soft_run, vid):
                raise CacheError(f"cache {cache.url}: no soft labels of teacher run "
                                 f"{soft_run!r} for video {vid!r}; export the teacher's predictions first")
            for name, values in cache.read_soft(soft_run, vid).items():
                values = np.asarray(values, np.float32).reshape(n, -1)
                if name not in soft:
                    soft[name] = np.zeros((total, values.shape[1]), np.float32)
                soft[name][s:s + n] = values
    data = FrameData(ids, starts, lens_a, [lab["splits"] for lab in labels],
                     [lab.get("dataset", "affwild2") for lab in labels],
                     torch.from_numpy(face), torch.from_numpy(audio), face_ok, va, expr, au,
                     window, stride, {k: torch.from_numpy(v) for k, v in soft.items()},
                     mtl=mtl, train_split=train_split)
    log.info("loaded %d videos, %d frames, %.1f MB", len(ids), total, data.memory_bytes() / 1e6)
    return data.to(device) if torch.device(device).type != "cpu" else data
