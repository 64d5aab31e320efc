"""FeatureCache methods for what is stored beside the features: labels, teacher soft labels and
the failure log (a mixin, so that store.py keeps to the root and the video groups)."""

from __future__ import annotations

import numpy as np

from emokd.errors import CacheError
from emokd.cache import failures as _failures
from emokd.cache import labels as _labels
from emokd.cache import soft as _soft


class BesideFeatures:
    """Needs from the class it is mixed into: root, url, _require_writable, _video_group, n_frames,
    is_complete, delete_video."""

    # ---- labels --------------------------------------------------------------------------------
    def _frames_for_labels(self, video_id: str) -> int:
        group = self._video_group(video_id)
        if group is None:
            raise CacheError(f"{self.url}: cannot write labels of {video_id!r}: the video is not in the cache")
        return int(group.attrs["n_frames"])

    def write_labels(self, video_id: str, va=None, expr=None, au=None, split: str = "unlabelled",
                     dataset: str = "affwild2", splits: dict | None = None, mtl=None) -> None:
        """Per-frame labels, fitted to the video's n_frames (extra rows dropped, absent rows missing);
        `splits` per task (VA, EXPR, AU, MTL), else `split` for every task; `mtl` the frames of
        the dataset's MTL set."""
        self._require_writable(f"write labels of {video_id!r}")
        _labels.write_labels(self.root, video_id, self._frames_for_labels(video_id), va, expr, au, split,
                             dataset, splits, mtl)

    def has_labels(self, video_id: str) -> bool:
        return _labels.label_group(self.root, video_id) is not None

    def read_labels(self, video_id: str) -> dict:
        """dict(va (n, 2) float32 NaN, expr (n,) int8 -1, au (n, 12) int8 -1, mtl (n,) bool, split (the
        summary), splits (per task; None for labels written before per-task splits), dataset)."""
        return _labels.read_labels(self.root, video_id)

    # ---- soft labels ---------------------------------------------------------------------------
    def write_soft(self, run: str, video_id: str, arrays: dict, attrs: dict | None = None) -> None:
        self._require_writable(f"write soft labels of {video_id!r}")
        _soft.write_soft(self.root, run, video_id, self.n_frames(video_id), arrays, attrs)

    def claim_soft_run(self, run: str, teacher_run: str) -> None:
        """Reserve soft-label name `run` for `teacher_run`; CacheError if another run holds it."""
        self._require_writable(f"reserve soft labels {run!r}")
        _soft.claim_soft_run(self.root, run, teacher_run)

    def finish_soft_run(self, run: str, attrs: dict | None = None) -> None:
        self._require_writable(f"finish soft labels of run {run!r}")
        _soft.finish_soft_run(self.root, run, attrs)

    def read_soft(self, run: str, video_id: str) -> dict[str, np.ndarray]:
        return _soft.read_soft(self.root, run, video_id)

    def has_soft(self, run: str, video_id: str) -> bool:
        return _soft.soft_video_group(self.root, run, video_id) is not None

    def soft_run_attrs(self, run: str) -> dict:
        return _soft.soft_run_attrs(self.root, run)

    def soft_video_attrs(self, run: str, video_id: str) -> dict:
        return _soft.soft_video_attrs(self.root, run, video_id)

    def soft_runs(self, complete_only: bool = False) -> list[str]:
        return _soft.soft_runs(self.root, complete_only)

    def soft_video_ids(self, run: str) -> list[str]:
        return _soft.soft_video_ids(self.root, run)

    # ---- failures ------------------------------------------------------------------------------
    def record_failure(self, video_id: str, message: str, source: dict | None = None) -> bool:
        """Log a failed video (with the identity of its source file, so that a changed file is
        retried), and remove its partial group and labels; False, with nothing recorded, when the
        video is complete by now (another attempt finished it)."""
        self._require_writable(f"record a failure of {video_id!r}")
        if self.is_complete(video_id):
            return False
        self.delete_video(video_id)
        _labels.delete_labels(self.root, video_id)
        _failures.record_failure(self.root, video_id, message, source)
        return True

    def clear_failure(self, video_id: str) -> None:
        self._require_writable(f"clear the failure of {video_id!r}")
        _failures.clear_failure(self.root, video_id)

    def failures(self) -> dict[str, str]:
        return {vid: record["message"] for vid, record in self.failure_log().items()}

    def failure_log(self) -> dict[str, dict]:
        """video id -> {"message", "time", "attempts", "source"}."""
        return _failures.failure_log(self.root)
