"""Jeong, Oh, Lim (ABAW 2022): multitask teacher/student with a GRL task discriminator.

Streams (Algorithm 1): VA-, EXPR-, AU- and MTL-labelled training frames (MTL: the dataset's MTL set
when it has one, else frames carrying all three labels). By default each stream's batch is its
share of the epoch (`batching: proportional`, as the official loader), so an epoch sees every
stream once; one optimiser step per batch (`steps: per_batch`). For the batch of task i:

  teacher (eq. 12):   L_i^S + delta * L^T
  student (eq. 13):   gamma_i * (alpha * L_i^S + L_i^D) + delta * L^T + sum_{j != i} beta * gamma_j * L_j^D
  MTL batch, both:    L_MTL^S                       (Algorithm 1: "if i is MTL then loss = L_MTL^S")

L^S supervision (VA 1-CCC, EXPR CE, AU BCE; MTL = their sum), L^D distillation against the stored
teacher outputs of the same frames, L^T the discriminator's CE on the batch's task.
gamma_i = exp(gamma_rate * n_i), n_i = epochs without validation improvement of task i (VA: mean
CCC, EXPR: F1, AU: F1). delta constant, or (e + 1) / E * delta in epoch e of E (`linear`).
Where emokd still differs from the paper or the official code: the table in docs/training.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from emokd.constants import TASKS, TRAIN_TASKS
from emokd.errors import ConfigError
from emokd.train import losses
from emokd.train.data import TASK_ID, FrameData
from emokd.train.metrics import abaw_metrics
from emokd.train.recipes.base import Batch, EpochState, Recipe, sigmoid, softmax
from emokd.train.recipes.jeong2022 import losses as kd_losses
from emokd.train.recipes.jeong2022.net import Jeong2022NetConfig, MultitaskNet
from emokd.train.streams import StepPlan, cycled_rounds, proportional_rounds

TRACKED = {"VA": "ccc_va", "EXPR": "f1_expr", "AU": "f1_au"}     # gamma_i's validation metric
BATCHING = ("proportional", "cycle")
STEPS = ("per_batch", "per_round")


@dataclass
class Jeong2022Config:
    lstm_hidden: int = 512
    extractor: tuple[int, ...] = (1024, 512)
    heads: tuple[int, ...] = (256, 128)
    discriminator: tuple[int, ...] = (64, 32)
    dropout: float = 0.5               # extractor and discriminator blocks
    head_dropout: float = 0.0          # task heads: none in the official code
    grl_coefficient: float = 1.0
    alpha: float = 10.0                # student only (eq. 13)
    beta: float = 0.9
    temperature: float = 2.5
    delta: float = 1.0                 # weight of the discriminator loss (its final value if linear)
    delta_schedule: str = "linear"     # "constant" | "linear": (e + 1) / E * delta
    gamma_rate: float = 0.5            # gamma_i = exp(gamma_rate * n_i), student only
    batching: str = "proportional"     # "proportional" (each stream once per epoch) | "cycle" (fixed size)
    rounds: str = "max"                # batching "cycle": rounds per epoch, "max" | "min" or a number
    steps: str = "per_batch"           # one optimiser step per batch (Algorithm 1) | "per_round" (4 summed)
    require_face: bool = True          # train only on labelled frames that have a face themselves


class Jeong2022(Recipe):
    name = "jeong2022"
    Config = Jeong2022Config
    Net = MultitaskNet
    tasks = TASKS
    metric_keys = ("ccc_v", "ccc_a", "ccc_va", "f1_expr", "f1_au", "p_mtl")
    score_key = "p_mtl"
    mtl_score_key = "p_mtl"
    task_metric_keys = {"VA": ("ccc_v", "ccc_a", "ccc_va"), "EXPR": ("f1_expr",), "AU": ("f1_au",)}
    curve_keys = ("disc_acc",)          # training accuracy of the task discriminator
    loss_keys = ("sup_", "dist_", "loss_task")

    def __init__(self, config: Jeong2022Config | None = None):
        super().__init__(config)
        c = self.config
        for name, value, allowed in (("delta_schedule", c.delta_schedule, ("constant", "linear")),
                                     ("batching", c.batching, BATCHING), ("steps", c.steps, STEPS)):
            if value not in allowed:
                raise ConfigError(f"recipe_options.{name}: {value!r}; use one of {list(allowed)}")

    def net_config(self, dims: dict[str, int]) -> Jeong2022NetConfig:
        c = self.config
        return Jeong2022NetConfig(face_dim=dims["face"], audio_dim=dims["audio"], window=dims["window"],
                                  stride=dims["stride"], lstm_hidden=c.lstm_hidden, extractor=tuple(c.extractor),
                                  heads=tuple(c.heads), discriminator=tuple(c.discriminator), dropout=c.dropout,
                                  head_dropout=c.head_dropout, grl_coefficient=c.grl_coefficient)

    def train_steps(self, data: FrameData, split: str, batch_size: int, rng: np.random.Generator) -> StepPlan:
        c = self.config
        streams = {t: data.labelled(split, t, require_face=c.require_face) for t in TRAIN_TASKS}
        if c.batching == "proportional":
            rounds = proportional_rounds(streams, batch_size, rng, permute=data.permute)
        else:
            rounds = cycled_rounds(streams, batch_size, rng, c.rounds if c.rounds in ("max", "min") else int(c.rounds),
                                   permute=data.permute)
        if c.steps == "per_round":
            return StepPlan(data, [[(task, idx, None) for task, idx in r] for r in rounds])
        return StepPlan(data, [[(task, idx, None)] for r in rounds for task, idx in r])

    def delta(self, state: EpochState) -> float:
        if self.config.delta_schedule == "constant":
            return self.config.delta
        return self.config.delta * (state.epoch + 1) / max(state.epochs, 1)

    def gammas(self, state: EpochState) -> dict[str, float]:
        return {t: math.exp(self.config.gamma_rate * state.stale.get(t, 0)) for t in TASKS}

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
        """Eq. 12 (teacher), eq. 13 (student), L_MTL^S alone on MTL batches (module docstring).
        Parts: the unweighted supervision `sup_<stream>` and distillation `dist_<stream>`, the
        discriminator's `loss_task` and accuracy `disc_acc`, and the weighted total `loss_<stream>`."""
        c, task = self.config, batch["stream"]
        sup = self.supervision(outputs, batch)
        if task == "MTL":
            total = sum(sup.values())
            return total, {"sup_MTL": total.detach(), "loss_MTL": total.detach()}
        parts: dict[str, torch.Tensor] = {f"sup_{task}": sup[task].detach()}
        task_loss = kd_losses.task_ce_loss(outputs["task"], TASK_ID[task])
        if state.role == "student":
            gamma, dist = self.gammas(state), self.distillation(outputs, batch)
            total = (gamma[task] * (c.alpha * sup[task] + dist[task]) + self.delta(state) * task_loss
                     + sum(c.beta * gamma[j] * dist[j] for j in TASKS if j != task))
            parts[f"dist_{task}"] = dist[task].detach()
        else:
            total = sup[task] + self.delta(state) * task_loss
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
