"""Settings of one training run (`emokd train-from-cache`); saved as config.yaml in the run dir."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from emokd.errors import ConfigError


@dataclass
class TrainConfig:
    cache: str = ""                      # feature cache path or URL
    out: str = ""                        # run directory
    role: str = "teacher"                # "teacher" | "student"
    teacher: str | None = None           # teacher run directory (students)
    recipe: str = "jeong2022"            # see emokd/train/recipes/base.py RECIPES
    recipe_options: dict = field(default_factory=dict)   # the recipe's Config fields
    epochs: int = 20
    batch_size: int = 256
    lr: float = 1e-4
    patience: int = 5                    # early stop after this many epochs without improvement
    seed: int = 0
    device: str = "auto"                 # "auto" (cuda when available) | "cpu" | "cuda" | "cuda:N"
    window: int = 6                      # image-embedding window length (frames)
    stride: int = 10                     # frames between window positions
    train_split: str = "train"
    val_split: str = "validation"
    eval_batch_size: int = 2048
    data_on_device: bool = True          # keep the in-memory cache on the GPU (gathers stay there)
    export_soft: bool = True             # teacher: write predictions of every cached frame to soft/
    soft_run: str | None = None          # name under soft/ (default: the run directory's name)

    def check(self) -> None:
        if not self.cache:
            raise ConfigError("cache: no feature cache given (--cache PATH)")
        if not self.out:
            raise ConfigError("out: no run directory given (--out runs/NAME)")
        if self.role not in ("teacher", "student"):
            raise ConfigError(f"role: {self.role!r}; use 'teacher' or 'student'")
        if self.role == "student" and not self.teacher:
            raise ConfigError("role student needs --teacher RUN (a finished teacher run directory)")
        for name in ("epochs", "batch_size", "window", "stride", "eval_batch_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name}: must be >= 1, got {getattr(self, name)}")
        resolve_device(self.device)


def resolve_device(name: str) -> torch.device:
    """"auto" -> cuda when available, else cpu; an unavailable cuda is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"device: {name!r} is not a device ({exc})") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} requested but CUDA is not available here (use auto or cpu)")
    return device
