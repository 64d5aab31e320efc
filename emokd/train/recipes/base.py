"""The Recipe interface: what a training method supplies to the shared loop.

A recipe is a configuration plus its losses, not a copy of the training loop. The shared code
(`data.py` loads the cache into memory and gathers batches, `loop.py` runs epochs and optimiser
steps, `runs.py` writes the run directory and checkpoints, `soft_labels.py` stores a teacher's
outputs, `evaluate.py`/`predict.py` score and export, `emokd inspect` draws predictions) calls a
recipe only through the declarations and methods below, and never names a task or a metric itself.

What a recipe declares it produces (class attributes):
    tasks        the ABAW tasks its network predicts, a subset of ("VA", "EXPR", "AU");
                 `probabilities` and `decode` return exactly those, keyed "va" / "expr" / "au"
    metric_keys  what `metrics` returns, in the order to show them (`emokd evaluate`, curves.png)
    score_key    the one of `metric_keys` that selects best.pt and stops early
    mtl_score_key  the metric computed on the dataset's MTL set instead of the per-task sets when
                 the evaluated split has one (jeong2022: p_mtl); None: always per-task sets
    task_metric_keys  task -> the `metric_keys` that score it ("VA": ccc_v, ...), reported per
                 task with the videos and frames scored (eval_<split>.json)
    loss_keys    prefixes of the training loss parts drawn in curves.png and the epoch line
                 (unweighted ones: a re-weighted total can grow while the model improves)
    curve_keys   per-epoch training values (loss parts that are not losses) drawn apart from them
    Net          its network class: built from one frozen config dataclass (`Net.Config`, holding
                 the cache dims, window and stride too), kept as `model.config` and stored whole in
                 checkpoints, so a run is rebuilt from its checkpoint alone

The loop, per epoch (`train_steps` returns a sized StepPlan, so the bar knows its total):

    for step in recipe.train_steps(data, "train", batch_size, rng):   # step = list[Batch]
        total = sum(recipe.loss(recipe.forward(model, b), b, state)[0] for b in step)
        optimiser.zero_grad(); total.backward(); optimiser.step()
    raw = predict every frame of the validation videos with recipe.forward + recipe.soft_outputs
    metrics = recipe.metrics(raw, labels)   # exactly recipe.metric_keys; each task's labels only
                                            # where its own split is the validation split
    recipe.end_epoch(state, metrics)                    # patience counters, state.stop

A `Batch` (built by `FrameData.batch`) is a dict on the training device:
    face  (B, T, D_face) float32   image-embedding window ending at the frame (T = window)
    face_mask (B, T) bool          window positions that are frames of the video with a face
    audio (B, D_audio)   float32   the frame's audio embedding
    (the masks are True only for labels in the training split of their task)
    va (B, 2) float32, va_mask (B,) bool          missing VA is 0 with mask False
    expr (B,) int64, expr_mask (B,) bool          missing EXPR is 0 with mask False
    au (B, 12) float32, au_mask (B,) bool         an AU row counts only if all 12 are labelled
    index (B,) int64                              global frame ids into FrameData
    soft: dict name -> (B, k) float32             the teacher's stored outputs (empty without one)
    stream: str                                   which stream of `train_steps` it came from
    dataset: str | None                           the cache's dataset name when a stream is per dataset

To add a recipe:
  1. write `emokd/train/recipes/<name>/recipe.py` with a dataclass of its hyper-parameters and a
     `Recipe` subclass setting the declarations above and implementing the abstract methods (its
     network in `<name>/net.py`, its extra loss terms in `<name>/losses.py`);
  2. register it: add `"<name>": "emokd.train.recipes.<name>.recipe:<ClassName>"` to `RECIPES`;
  3. users pick it with `recipe: <name>` in the config file (or `--recipe`), its options under
     `recipe_options:`; `--role student --teacher RUN` gives its `loss` the teacher outputs in
     `batch["soft"]`, whatever `soft_outputs` the teacher's recipe stored.
"""

from __future__ import annotations

import abc
import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import nn

from emokd.config import from_dict
from emokd.errors import ConfigError, EmokdError

if TYPE_CHECKING:  # pragma: no cover
    from emokd.train.data import FrameData
    from emokd.train.streams import StepPlan

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


class MissingTasksError(EmokdError):
    """A recipe is asked for a task its network does not predict (e.g. AUs for an MTL submission)."""


class Recipe(abc.ABC):
    name: ClassVar[str]
    Config: ClassVar[type]          # dataclass of the recipe's hyper-parameters (`recipe_options`)
    Net: ClassVar[type[nn.Module]]  # its network: Net(Net.Config(...)), the config kept as .config
    tasks: ClassVar[tuple[str, ...]]        # ABAW tasks it predicts, e.g. ("VA", "EXPR", "AU")
    metric_keys: ClassVar[tuple[str, ...]]  # validation metrics `metrics` returns, display order
    score_key: ClassVar[str]        # the metric for best.pt and early stopping, e.g. "p_mtl"
    mtl_score_key: ClassVar[str | None] = None   # scored on the dataset's MTL set where it has one
    task_metric_keys: ClassVar[dict[str, tuple[str, ...]]] = {}   # task -> metric_keys scoring it
    loss_keys: ClassVar[tuple[str, ...]] = ("loss_",)   # prefixes of the loss parts drawn
    curve_keys: ClassVar[tuple[str, ...]] = ()   # other training values drawn

    def __init__(self, config: Any = None):
        self.config = config if config is not None else self.Config()

    # ---- the network ------------------------------------------------------------------------
    @abc.abstractmethod
    def net_config(self, dims: dict[str, int]) -> Any:
        """The network's frozen config for `dims` = {"face": D_face, "audio": D_audio, "window": T,
        "stride": frames between window positions} of the data it will see."""

    def build_model(self, dims: dict[str, int]) -> nn.Module:
        """A fresh network for `dims` (see `net_config`)."""
        return self.Net(self.net_config(dims))

    def rebuild_model(self, net_config: dict) -> nn.Module:
        """The network described by a checkpoint's stored `net_config` (a plain dict)."""
        return self.Net(from_dict(self.Net.Config, dict(net_config), where=".net_config"))

    def forward(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        """Model outputs for a batch; override when the network takes other inputs."""
        return model(batch["face"], batch["audio"])

    # ---- training ---------------------------------------------------------------------------
    @abc.abstractmethod
    def train_steps(self, data: FrameData, split: str, batch_size: int,
                    rng: np.random.Generator) -> StepPlan:
        """One epoch of optimiser steps (`emokd.train.streams.StepPlan`: sized; each item is the
        batches whose losses one step sums)."""

    def check_data(self, data: FrameData) -> None:
        """Refuse, before training, data this recipe's options cannot use (ConfigError)."""

    def evaluation_datasets(self) -> tuple[str, ...]:
        """The datasets whose videos validation and `emokd evaluate` score (empty: all)."""
        return ()

    @abc.abstractmethod
    def loss(self, outputs: dict[str, torch.Tensor], batch: Batch,
             state: EpochState) -> tuple[torch.Tensor, dict[str, torch.Tensor | float]]:
        """(total loss to backpropagate, named parts for metrics.csv averaged per epoch: floats or
        detached 0-d tensors, which the loop sums on the device to avoid a sync per step)."""

    @abc.abstractmethod
    def soft_outputs(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-frame raw outputs to keep (B, k) float: stored as soft labels, scored by `metrics`,
        read by `probabilities` and `decode`."""

    # ---- what the raw outputs mean ----------------------------------------------------------
    @abc.abstractmethod
    def probabilities(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Raw outputs -> per task of `tasks` only: va (n, 2) valence/arousal, expr (n, n_classes)
        class probabilities, au (n, 12) activation probabilities."""

    @abc.abstractmethod
    def decode(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Raw outputs -> ABAW decisions, per task of `tasks` only: va (n, 2) float, expr (n,) int
        class id, au (n, 12) 0/1."""

    @abc.abstractmethod
    def metrics(self, raw: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> dict[str, float]:
        """Validation metrics over the whole set: exactly `metric_keys`."""

    def require_tasks(self, needed: tuple[str, ...], purpose: str) -> None:
        """MissingTasksError, naming the recipe and the missing tasks, unless it predicts `needed`."""
        missing = [t for t in needed if t not in self.tasks]
        if missing:
            raise MissingTasksError(f"recipe {self.name} predicts {', '.join(self.tasks)} only: {purpose} "
                                    f"needs {', '.join(needed)} ({', '.join(missing)} missing)")

    def end_epoch(self, state: EpochState, metrics: dict[str, float]) -> dict[str, float]:
        """Update `state` after validation (patience, stop); return extra per-epoch values to log."""
        state.track(metrics, {"score": self.score_key})
        state.stop = state.stale.get("score", 0) >= state.patience
        return {}


def require_datasets(option: str, names, data: FrameData) -> None:
    """ConfigError unless every dataset of `names` (a recipe option) has videos in `data`: a
    misspelt name would silently train or score on nothing."""
    have = sorted(set(data.video_dataset))
    unknown = sorted(set(names) - set(have))
    if unknown:
        raise ConfigError(f"recipe_options.{option}: {unknown} not in the cache; its datasets are {have}")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (n, k) logits in float64 (for `probabilities`)."""
    x = np.asarray(logits, np.float64)
    x = np.exp(x - x.max(1, keepdims=True))
    return x / x.sum(1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Element-wise logistic function in float64 (for `probabilities`)."""
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))


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
