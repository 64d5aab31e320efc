"""Training data from the cache: loaded into memory once, gathered by index (docs/training.md).

Every video of the requested splits is read once into frame-major arrays (features as float16),
videos laid end to end; a sample is a global frame id. A batch gathers, with one tensor index,
the image-embedding window (`window` frames at `stride`, ending at the frame), the frame's audio
embedding, its labels with masks and, for a student, the teacher's stored outputs. No file is
read after loading, so the data never waits on storage.

Frames without a face (`face_ok` False): their image embedding is replaced, at load time, by the
one of the nearest earlier frame with a face (zeros before a video's first face), so windows stay
inside the real face track. Window positions before a video's first frame repeat frame 0.
Training uses only labelled frames that have a face themselves (`require_face`); evaluation and
prediction score every frame and fill no-face frames from the nearest earlier prediction
(`fill_from_earlier`), as ABAW submissions do.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from emokd.constants import N_AU
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
    video_split: list[str]
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

    def __post_init__(self) -> None:
        n = len(self.face_ok)
        self.frame_video = np.repeat(np.arange(len(self.video_ids)), self.video_len)
        self._start_t = torch.as_tensor(self.video_start[self.frame_video] if n else np.zeros(0, np.int64),
                                        device=self.device)
        self._offsets = torch.as_tensor(self.stride * np.arange(self.window - 1, -1, -1), device=self.device)
        self._va_t = torch.as_tensor(np.nan_to_num(self.va, nan=0.0), device=self.device)
        self._va_m = torch.as_tensor(~np.isnan(self.va).any(1), device=self.device)
        self._expr_t = torch.as_tensor(np.maximum(self.expr, 0).astype(np.int64), device=self.device)
        self._expr_m = torch.as_tensor(self.expr >= 0, device=self.device)
        self._au_t = torch.as_tensor(np.maximum(self.au, 0).astype(np.float32), device=self.device)
        self._au_m = torch.as_tensor((self.au >= 0).all(1), device=self.device)

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
                   self._au_t, self._au_m, self._start_t, *self.soft.values()]
        arrays = [self.face_ok, self.va, self.expr, self.au, self.frame_video]
        return sum(t.element_size() * t.nelement() for t in tensors) + sum(a.nbytes for a in arrays)

    def frames(self, split: str | None = None) -> np.ndarray:
        """Every frame id of the videos of `split` (all videos if None), in video order."""
        parts = [np.arange(s, s + n) for s, n, sp in zip(self.video_start, self.video_len, self.video_split)
                 if split is None or sp == split]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def task_mask(self, task: str) -> np.ndarray:
        va = ~np.isnan(self.va).any(1)
        expr = self.expr >= 0
        au = (self.au >= 0).all(1)
        masks = {"VA": va, "EXPR": expr, "AU": au, "MTL": va & expr & au}
        if task not in masks:
            raise DataError(f"unknown task {task!r}; known: {sorted(masks)}")
        return masks[task]

    def labelled(self, split: str, task: str, dataset: str | None = None,
                 require_face: bool = True) -> np.ndarray:
        """Frame ids of `split` labelled for `task` (MTL = all three labelled), optionally one dataset."""
        keep = np.array([sp == split and (dataset is None or ds == dataset)
                         for sp, ds in zip(self.video_split, self.video_dataset)], dtype=bool)
        mask = self.task_mask(task) & keep[self.frame_video]
        if require_face:
            mask &= self.face_ok
        return np.flatnonzero(mask)

    def labels_of(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        return {"va": self.va[idx], "expr": self.expr[idx], "au": self.au[idx]}

    def window_index(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, window) global frame ids of each sample's image window, clamped to its video."""
        return torch.maximum(idx[:, None] - self._offsets, self._start_t[idx][:, None])

    def batch(self, idx: np.ndarray | torch.Tensor, stream: str | None = None,
              dataset: str | None = None) -> dict:
        """Gather a batch (see `recipes/base.py` for its keys) on `self.device`."""
        i = torch.as_tensor(idx, dtype=torch.long, device=self.device)
        batch = {
            "face": self.face[self.window_index(i)].float(),
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
        return FrameData(self.video_ids, self.video_start, self.video_len, self.video_split,
                         self.video_dataset, self.face.to(device), self.audio.to(device), self.face_ok,
                         self.va, self.expr, self.au, self.window, self.stride,
                         {k: v.to(device) for k, v in self.soft.items()}, device)


def stream_batches(streams: dict[str, np.ndarray], batch_size: int, rng: np.random.Generator,
                   length: str | int = "max") -> Iterator[tuple[str, np.ndarray]]:
    """Cycle the streams in order, one batch each per round (Algorithm 1).

    Each stream is shuffled and cut into batches of `batch_size` (a stream smaller than a batch is
    one batch; the remainder of a shuffle is dropped); a stream that runs out is reshuffled and
    continues. `length` = number of rounds: "max" (the longest stream is seen once), "min", or an int.
    Empty streams are skipped.
    """
    streams = {k: v for k, v in streams.items() if len(v)}
    if not streams:
        return
    n_batches = {k: max(1, len(v) // batch_size) for k, v in streams.items()}
    rounds = {"max": max(n_batches.values()), "min": min(n_batches.values())}.get(length, length)
    queues: dict[str, list[np.ndarray]] = {k: [] for k in streams}
    for _ in range(int(rounds)):
        for name, idx in streams.items():
            if not queues[name]:
                perm = rng.permutation(idx)
                size = min(batch_size, len(perm))
                queues[name] = [perm[j:j + size] for j in range(0, len(perm) - size + 1, size)]
            yield name, queues[name].pop(0)


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
    lab = cache.read_labels(video_id) if cache.has_labels(video_id) else None
    if lab is None:
        return {"va": np.full((n, 2), np.nan, np.float32), "expr": np.full(n, -1, np.int8),
                "au": np.full((n, N_AU), -1, np.int8), "split": "unlabelled", "dataset": "unknown"}
    return lab


def load_frame_data(cache, splits: Sequence[str] | None = None, window: int = 6, stride: int = 10,
                    soft_run: str | None = None, device: str | torch.device = "cpu",
                    video_ids: Sequence[str] | None = None) -> FrameData:
    """Read the complete videos of `splits` (all if None) from an open FeatureCache into memory.

    With `soft_run`, the teacher outputs stored under soft/<soft_run>/ are loaded too; a video
    without them is a CacheError (run the teacher's soft-label export first).
    """
    if window < 1 or stride < 1:
        raise DataError(f"window={window}, stride={stride}: both must be >= 1")
    ids, lens, labels = [], [], []
    face_name, audio_name = feature_arrays(cache)
    for vid in (cache.video_ids() if video_ids is None else video_ids):
        n = cache.n_frames(vid)
        lab = _read_labels(cache, vid, n)
        if splits is not None and lab["split"] not in splits:
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
        if soft_run is not None:
            if not cache.has_soft(soft_run, vid):
                raise CacheError(f"cache {cache.url}: no soft labels of teacher run "
                                 f"{soft_run!r} for video {vid!r}; export the teacher's predictions first")
            for name, values in cache.read_soft(soft_run, vid).items():
                values = np.asarray(values, np.float32).reshape(n, -1)
                if name not in soft:
                    soft[name] = np.zeros((total, values.shape[1]), np.float32)
                soft[name][s:s + n] = values
    data = FrameData(ids, starts, lens_a, [lab["split"] for lab in labels],
                     [lab.get("dataset", "affwild2") for lab in labels],
                     torch.from_numpy(face), torch.from_numpy(audio), face_ok, va, expr, au,
                     window, stride, {k: torch.from_numpy(v) for k, v in soft.items()})
    log.info("loaded %d videos, %d frames, %.1f MB", len(ids), total, data.memory_bytes() / 1e6)
    return data.to(device) if torch.device(device).type != "cpu" else data
