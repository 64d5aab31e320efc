"""Settings of one training run (`emokd train-from-cache`); saved as config.yaml in the run dir."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from emokd.config import check_device_name, without_secrets
from emokd.errors import ConfigError


@dataclass
class TrainConfig:
    RENAMED: ClassVar[dict[str, str]] = {"out": "run"}   # old key -> new key, read for one version

    cache: str = ""                      # feature cache path or URL (from extract-features)
    run: str = ""                        # run directory to create (or continue with resume), e.g. runs/teacher
    role: str = "teacher"                # teacher or student
    teacher: str | None = None           # teacher run directory (students): its soft labels are reused
    recipe: str = "jeong2022"            # jeong2022 or vu2021 (emokd/train/recipes/base.py RECIPES)
    recipe_options: dict = field(default_factory=dict)   # the recipe's own keys (`emokd config show train --recipe R`)
    epochs: int = 20                     # maximum epochs (early stop after patience)
    batch_size: int = 256                # samples per task batch
    lr: float = 1e-4                     # Adam learning rate
    patience: int = 5                    # early stop after this many epochs without improvement
    seed: int | None = None              # random seed (batch order, initial weights); none: 0 for a
                                         # teacher, its teacher's seed + 1 for a student (a fresh net)
    device: str = "auto"                 # auto (cuda when available), cpu, cuda or cuda:N
    window: int = 6                      # image-embedding window length (frames)
    stride: int = 10                     # frames between window positions
    train_split: str = "train"           # split to train on
    val_split: str = "validation"        # split for early stopping and the best checkpoint
    eval_batch_size: int = 2048          # frames per batch when predicting whole splits
    data_on_device: bool = True          # keep the in-memory cache on the GPU (gathers stay there)
    face_features: str | None = None     # feature set names in the cache (default: the first of each
    audio_features: str | None = None    # kind); the run stores the ones it used, evaluation reads them
    max_memory: str | None = None        # features beyond this ("0.5" = half the RAM, "12G") train in
                                         # shard-sized blocks read from the cache (default: half the RAM)
    export_soft: bool = True             # teacher: write predictions of every cached frame to soft/
    soft_run: str | None = None          # name under soft/ (default: <run folder>-<8 hex of its path>)
    progress_every_s: float = 60.0       # not on a terminal: a progress line at most this often per epoch
    storage_options: dict = field(default_factory=dict, metadata={"redact": without_secrets, "help": (
        "fsspec options of a cache on an object store (s3: endpoint_url, anon, ...); credentials are "
        "never saved")})
    allow_other_cache: bool = False      # use a cache whose fingerprint differs from the teacher's (or, resuming,
                                         # the run's) training cache; recorded in config.yaml and the summary

    def check(self) -> None:
        if not self.cache:
            raise ConfigError("cache: no feature cache given (--cache PATH)")
        if not self.run:
            raise ConfigError("run: no run directory given (--run runs/NAME)")
        if self.role not in ("teacher", "student"):
            raise ConfigError(f"role: {self.role!r}; use 'teacher' or 'student'")
        if self.role == "student" and not self.teacher:
            raise ConfigError("role student needs --teacher RUN (a finished teacher run directory)")
        for name in ("epochs", "batch_size", "window", "stride", "eval_batch_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"lr: must be > 0, got {self.lr}")
        check_device_name(self.device)   # whether it exists here: models.device.resolve_device

    def with_absolute_paths(self) -> TrainConfig:
        """The cache (when local), the run and the teacher as absolute paths: a saved config.yaml
        then works from any directory (--resume, evaluate, students of this teacher)."""
        from emokd.cache.location import absolute_url

        def folder(path: str | None) -> str | None:
            return str(Path(path).expanduser().resolve()) if path else path

        return dataclasses.replace(self, cache=absolute_url(self.cache) if self.cache else self.cache,
                                   run=folder(self.run), teacher=folder(self.teacher))


def __getattr__(name: str):
    """`from emokd.train.config import resolve_device` (its old home) still works, without making
    this module import torch: the CLI imports TrainConfig to build its flags."""
    if name == "resolve_device":
        from emokd.models.device import resolve_device

        return resolve_device
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
