"""The Recipe interface: what a training method supplies to the shared loop.

A recipe is a configuration plus its losses, not a copy of the training loop. The shared code
(`data.py` loads the cache into memory and gathers batches, `loop.py` runs epochs and optimiser
steps, `runs.py` writes the run directory and checkpoints, `soft_labels.py` stores a teacher's
outputs, `evaluate.py`/`predict.py` score and export) calls a recipe only through the methods below.

The loop, per epoch:

    for step in recipe.train_steps(data, "train", batch_size, rng):   # step = list[Batch]
        total = sum(recipe.loss(recipe.forward(model, b), b, state)[0] for b in step)
        optimiser.zero_grad(); total.backward(); optimiser.step()
    raw = predict every frame of the validation videos with recipe.forward + recipe.soft_outputs
    metrics = recipe.metrics(raw, labels)               # must hold recipe.score_key
    recipe.end_epoch(state, metrics)                    # patience counters, state.stop

A `Batch` (built by `FrameData.batch`) is a dict on the training device:
    face  (B, T, D_face) float32   image-embedding window ending at the frame (T = window)
    audio (B, D_audio)   float32   the frame's audio embedding
    va (B, 2) float32, va_mask (B,) bool          missing VA is 0 with mask False
    expr (B,) int64, expr_mask (B,) bool          missing EXPR is 0 with mask False
    au (B, 12) float32, au_mask (B,) bool         an AU row counts only if all 12 are labelled
    index (B,) int64                              global frame ids into FrameData
    soft: dict name -> (B, k) float32             the teacher's stored outputs (empty without one)
    stream: str                                   which stream of `train_steps` it came from
    dataset: str | None                           the cache's dataset name when a stream is per dataset

To add a recipe:
  1. write `emokd/train/recipes/<name>.py` with a dataclass of its hyper-parameters and a `Recipe`
     subclass setting `name`, `Config`, `score_key` and implementing the abstract methods (its network
     goes in `emokd/models`, its extra loss terms in its own module);
  2. register it: add `"<name>": "emokd.train.recipes.<name>.recipe:<ClassName>"` to `RECIPES`;
  3. users pick it with `recipe: <name>` in the config file (or `--recipe`), its options under
     `recipe_options:`; `--role student --teacher RUN` gives its `loss` the teacher outputs in
     `batch["soft"]`, whatever `soft_outputs` the teacher's recipe stored.
"""

from __future__ import annotations

import abc
import dataclasses
import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import nn

from emokd.config import from_dict
from emokd.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from emokd.train.data import FrameData

Batch = dict[str, Any]


@dataclass
class EpochState:
    """What the loss may depend on beyond the batch; saved in checkpoints so --resume is exact."""

    role: str                       # "teacher" | "student"
    epoch: int = 0                  # 0-based epoch being trained
    epochs: int = 1                 # planned number of epochs
    patience: int = 5               # early stop after this many epochs without improvement of score_key
    best: dict[str, float] = field(default_factory=dict)   # best validation value per tracked key
    stale: dict[str, int] = field(default_factory=dict)    # epochs without improvement per tracked key
    best_epoch: int = -1
    stop: bool = False

    def track(self, metrics: dict[str, float], keys: dict[str, str]) -> None:
        """Update best/stale for `keys` = {tracked name: metric key}; higher is better, NaN never improves."""
        for name, key in keys.items():
            value = metrics.get(key, float("nan"))
            if value == value and value > self.best.get(name, float("-inf")):
                self.best[name] = float(value)
                self.stale[name] = 0
            else:
                self.stale[name] = self.stale.get(name, 0) + 1

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> EpochState:
        return cls(**data)


class Recipe(abc.ABC):
    name: ClassVar[str]
    Config: ClassVar[type]          # dataclass of the recipe's hyper-parameters (`recipe_options`)
    score_key: ClassVar[str]        # validation metric for best.pt and early stopping, e.g. "p_mtl"

    def __init__(self, config: Any = None):
        self.config = config if config is not None else self.Config()

    @abc.abstractmethod
    def build_model(self, dims: dict[str, int]) -> nn.Module:
        """A fresh network; `dims` = {"face": D_face, "audio": D_audio, "window": T} from the cache."""

    def forward(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        """Model outputs for a batch; override when the network takes other inputs."""
        return model(batch["face"], batch["audio"])

    @abc.abstractmethod
    def train_steps(self, data: FrameData, split: str, batch_size: int,
                    rng: np.random.Generator) -> Iterator[list[Batch]]:
        """One epoch of optimiser steps; each item is the batches whose losses one step sums."""

    @abc.abstractmethod
    def loss(self, outputs: dict[str, torch.Tensor], batch: Batch,
             state: EpochState) -> tuple[torch.Tensor, dict[str, torch.Tensor | float]]:
        """(total loss to backpropagate, named parts for metrics.csv averaged per epoch: floats or
        detached 0-d tensors, which the loop sums on the device to avoid a sync per step)."""

    @abc.abstractmethod
    def soft_outputs(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-frame raw outputs to keep (B, k) float: stored as soft labels and scored by `metrics`."""

    @abc.abstractmethod
    def decode(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Raw outputs -> ABAW decisions: va (n, 2) float, expr (n,) int class id, au (n, 12) 0/1."""

    def metrics(self, raw: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> dict[str, float]:
        """Validation metrics over the whole set; must contain `score_key`."""
        from emokd.train.metrics import abaw_metrics

        d = self.decode(raw)
        return abaw_metrics(d["va"], d["expr"], d["au"], labels["va"], labels["expr"], labels["au"])

    def end_epoch(self, state: EpochState, metrics: dict[str, float]) -> dict[str, float]:
        """Update `state` after validation (patience, stop); return extra per-epoch values to log."""
        state.track(metrics, {"score": self.score_key})
        state.stop = state.stale.get("score", 0) >= state.patience
        return {}


RECIPES: dict[str, str] = {
    "jeong2022": "emokd.train.recipes.jeong2022.recipe:Jeong2022",
    "vu2021": "emokd.train.recipes.vu2021.recipe:Vu2021",
}
DEFAULT_RECIPE = "jeong2022"


def recipe_class(name: str) -> type[Recipe]:
    if name not in RECIPES:
        raise ConfigError(f"recipe: unknown recipe {name!r}; known: {sorted(RECIPES)}")
    module, _, attr = RECIPES[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def build_recipe(name: str, options: dict | None = None) -> Recipe:
    """The recipe `name` with its Config built from `options` (unknown keys are a ConfigError)."""
    cls = recipe_class(name)
    return cls(from_dict(cls.Config, dict(options or {}), where=".recipe_options"))
