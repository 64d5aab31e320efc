"""Jeong, Oh, Lim (ABAW 2022): multitask teacher/student with a GRL task discriminator.

Streams (Algorithm 1): each round takes one batch of VA-, EXPR-, AU- and MTL-labelled frames (MTL =
frames carrying all three labels), one optimiser step per batch. For the batch of task i:

  teacher (eq. 12): gamma_i * alpha * L_i^S + delta * L^T
  student (eq. 13): gamma_i * (alpha * L_i^S + L_i^D) + delta * L^T + sum_{j != i} beta * gamma_j * L_j^D

L^S supervision (VA 1-CCC, EXPR CE, AU BCE; MTL = their sum), L^D distillation against the stored
teacher outputs of the same frames (for MTL the sum of the three; the j != i sum is then empty,
as all three tasks are already in L_MTL^D), L^T the discriminator's CE on the batch's task (not on
MTL batches: they belong to no single task). gamma_i = exp(gamma_rate * n_i), n_i = epochs without
validation improvement of task i (VA: mean CCC, EXPR: F1, AU: F1, MTL: P_MTL). delta constant or
linear 0 -> 1 over the planned epochs. Our reading of eq. 12: alpha scales the teacher's
supervision too, so that supervision-vs-discriminator balance is the same in both roles.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from emokd.constants import TASKS, TRAIN_TASKS
from emokd.errors import ConfigError
from emokd.train import losses
from emokd.train.data import TASK_ID, FrameData, stream_batches
from emokd.train.metrics import abaw_metrics
from emokd.train.recipes.base import Batch, EpochState, Recipe, sigmoid, softmax
from emokd.train.recipes.jeong2022 import losses as kd_losses
from emokd.train.recipes.jeong2022.net import Jeong2022NetConfig, MultitaskNet

TRACKED = {"VA": "ccc_va", "EXPR": "f1_expr", "AU": "f1_au", "MTL": "p_mtl"}


@dataclass
class Jeong2022Config:
    lstm_hidden: int = 512
    extractor: tuple[int, ...] = (1024, 512)
    heads: tuple[int, ...] = (256, 128)
    discriminator: tuple[int, ...] = (64, 32)
    dropout: float = 0.5
    grl_coefficient: float = 1.0
    alpha: float = 10.0
    beta: float = 0.9
    temperature: float = 2.5
    delta: float = 1.0                 # weight of the discriminator loss (its final value if linear)
    delta_schedule: str = "linear"     # "constant" | "linear" (0 -> delta over the epochs)
    gamma_rate: float = 0.5            # gamma_i = exp(gamma_rate * n_i)
    rounds: str = "max"                # rounds per epoch: "max" | "min" stream length, or a number
    require_face: bool = True          # train only on labelled frames that have a face themselves


class Jeong2022(Recipe):
    name = "jeong2022"
    Config = Jeong2022Config
    Net = MultitaskNet
    tasks = TASKS
    metric_keys = ("ccc_v", "ccc_a", "ccc_va", "f1_expr", "f1_au", "p_mtl")
    score_key = "p_mtl"
    curve_keys = ("disc_acc",)          # training accuracy of the task discriminator

    def __init__(self, config: Jeong2022Config | None = None):
        super().__init__(config)
        if self.config.delta_schedule not in ("constant", "linear"):
            raise ConfigError(f"recipe_options.delta_schedule: {self.config.delta_schedule!r}; "
                              "use 'constant' or 'linear'")

    def net_config(self, dims: dict[str, int]) -> Jeong2022NetConfig:
        c = self.config
        return Jeong2022NetConfig(face_dim=dims["face"], audio_dim=dims["audio"], window=dims["window"],
                                  stride=dims["stride"], lstm_hidden=c.lstm_hidden, extractor=tuple(c.extractor),
                                  heads=tuple(c.heads), discriminator=tuple(c.discriminator), dropout=c.dropout,
                                  grl_coefficient=c.grl_coefficient)

    def train_steps(self, data: FrameData, split: str, batch_size: int,
                    rng: np.random.Generator) -> Iterator[list[Batch]]:
        streams = {t: data.labelled(split, t, require_face=self.config.require_face) for t in TRAIN_TASKS}
        rounds = self.config.rounds if self.config.rounds in ("max", "min") else int(self.config.rounds)
        for task, idx in stream_batches(streams, batch_size, rng, rounds):
            yield [data.batch(idx, stream=task)]

    def delta(self, state: EpochState) -> float:
        if self.config.delta_schedule == "constant" or state.epochs <= 1:
            return self.config.delta
        return self.config.delta * state.epoch / (state.epochs - 1)

    def gammas(self, state: EpochState) -> dict[str, float]:
        return {t: math.exp(self.config.gamma_rate * state.stale.get(t, 0)) for t in TRAIN_TASKS}

    @staticmethod
    def supervision(out: dict, b: Batch) -> dict[str, torch.Tensor]:
        return {"VA": losses.va_ccc_loss(out["va"], b["va"], b["va_mask"]),
                "EXPR": losses.expr_ce_loss(out["expr"], b["expr"], b["expr_mask"]),
                "AU": losses.au_bce_loss(out["au"], b["au"], b["au_mask"])}

    def distillation(self, out: dict, b: Batch) -> dict[str, torch.Tensor]:
        soft, t = b["soft"], self.config.temperature
        missing = {"va", "expr", "au"} - set(soft)
        if missing:
            raise ConfigError(f"student batch has no teacher outputs {sorted(missing)}: "
                              "train with --teacher RUN whose soft labels are in the cache")
        return {"VA": kd_losses.distill_va_loss(out["va"], soft["va"]),
                "EXPR": kd_losses.distill_expr_loss(out["expr"], soft["expr"], t),
                "AU": kd_losses.distill_au_loss(out["au"], soft["au"], t)}

    def loss(self, outputs: dict[str, torch.Tensor], batch: Batch,
             state: EpochState) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c, task = self.config, batch["stream"]
        gamma = self.gammas(state)
        sup = self.supervision(outputs, batch)
        sup_i = sum(sup.values()) if task == "MTL" else sup[task]
        parts: dict[str, torch.Tensor] = {f"sup_{task}": sup_i.detach()}
        if state.role == "student":
            dist = self.distillation(outputs, batch)
            dist_i = sum(dist.values()) if task == "MTL" else dist[task]
            total = gamma[task] * (c.alpha * sup_i + dist_i)
            if task != "MTL":
                total = total + sum(c.beta * gamma[j] * dist[j] for j in TASKS if j != task)
            parts[f"dist_{task}"] = dist_i.detach()
        else:
            total = gamma[task] * c.alpha * sup_i
        if task != "MTL":
            task_loss = kd_losses.task_ce_loss(outputs["task"], TASK_ID[task])
            total = total + self.delta(state) * task_loss
            parts["loss_task"] = task_loss.detach()
            parts["disc_acc"] = (outputs["task"].argmax(1) == TASK_ID[task]).float().mean()
        parts[f"loss_{task}"] = total.detach()
        return total, parts

    def soft_outputs(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"va": outputs["va"], "expr": outputs["expr"], "au": outputs["au"]}

    def probabilities(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"va": np.asarray(raw["va"], np.float32), "expr": softmax(raw["expr"]), "au": sigmoid(raw["au"])}

    def decode(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"va": np.asarray(raw["va"], np.float32),
                "expr": np.asarray(raw["expr"]).argmax(1).astype(np.int64),
                "au": (np.asarray(raw["au"]) > 0).astype(np.int64)}   # sigmoid(logit) > 0.5

    def metrics(self, raw: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> dict[str, float]:
        """The ABAW metrics and P_MTL (`abaw_metrics`), and the mean VA CCC its gamma tracks."""
        d = self.decode(raw)
        m = abaw_metrics(d["va"], d["expr"], d["au"], labels["va"], labels["expr"], labels["au"])
        m["ccc_va"] = (m["ccc_v"] + m["ccc_a"]) / 2
        return m

    def end_epoch(self, state: EpochState, metrics: dict[str, float]) -> dict[str, float]:
        used = {f"gamma_{t}": g for t, g in self.gammas(state).items()}
        used["delta"] = self.delta(state)
        state.track(metrics, TRACKED)
        super().end_epoch(state, metrics)
        return used
