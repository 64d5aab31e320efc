"""Vu, Beurton-Aimar (ABAW 2021): multitask, multi-database teacher/student (docs/vu2021.md).

Training sets (config, not code): EXPR (frames with an expression label), VA (frames with a
valence/arousal label) and EXPR_VA (frames with both: the "combination task"), each drawn from
the datasets listed for it (empty = every dataset in the cache); validation scores the datasets of
`eval_datasets` only (default Aff-Wild2, as the paper reports). A name that matches no dataset of
the cache is an error before training. One batch from each set per
optimiser step; an epoch ends with the shortest set. A frame carrying both labels trains both
heads, whichever set drew it: this is how frames of Aff-Wild2 videos present in both the EXPR
and VA challenge sets (their labels are merged per frame at indexing) help both tasks.

Teacher: ground truth only. Student: per head, 0.6 ground truth + 0.4 distillation where the
label exists, distillation alone where it does not, from the teacher's stored outputs (the
expression logits and the 2 x 20 bin logits), so a dataset with only some labels gets the rest
from the teacher. `combination = False` is the ablation: no EXPR_VA set, and each set's batch uses
only its own task's labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from emokd.errors import ConfigError
from emokd.train.recipes.vu2021.bins import VABins
from emokd.train.recipes.vu2021.net import Vu2021Net, Vu2021NetConfig
from emokd.train.recipes.vu2021 import sampling as sampling
from emokd.train.data import FrameData
from emokd.train.metrics import ccc, expr_f1
from emokd.train.recipes.base import Batch, EpochState, Recipe, require_datasets, softmax
from emokd.train.recipes.vu2021.losses import Vu2021LossConfig, expr_loss, va_loss
from emokd.train.streams import StepPlan

SETS = ("EXPR", "VA", "EXPR_VA")


@dataclass
class Vu2021Config:
    hidden: tuple[int, ...] = (512, 256)     # frame-level stage
    dropout: float = 0.3
    temporal: bool = True                    # bidirectional GRU over the image window
    gru_hidden: int = 128
    va_bins: int = 20
    temperature: float = 1.5
    gt_weight: float = 0.6
    kd_weight: float = 0.4
    ccc_weight: float = 1.0
    expr_datasets: tuple[str, ...] = ()      # datasets feeding the EXPR set; empty = all
    va_datasets: tuple[str, ...] = ()
    expr_va_datasets: tuple[str, ...] = ()
    eval_datasets: tuple[str, ...] = ("affwild2",)   # scored by validation and evaluate (empty = all)
    combination: bool = True                 # the EXPR_VA set, and both labels used in every set
    balanced: bool = False                   # 1 / class count (EXPR), 1 / VA-cell count (VA)
    rounds: str = "min"                      # steps per epoch: "min" | "max" set length, or a number
    require_face: bool = True


class Vu2021(Recipe):
    name = "vu2021"
    Config = Vu2021Config
    Net = Vu2021Net
    tasks = ("VA", "EXPR")              # no AU head
    metric_keys = ("ccc_v", "ccc_a", "ccc_va", "f1_expr", "acc_expr", "expr_score", "score")
    score_key = "score"
    task_metric_keys = {"VA": ("ccc_v", "ccc_a", "ccc_va"), "EXPR": ("f1_expr", "acc_expr", "expr_score")}

    def __init__(self, config: Vu2021Config | None = None):
        super().__init__(config)
        c = self.config
        if not (0 <= c.gt_weight <= 1 and 0 <= c.kd_weight <= 1) or c.temperature <= 0:
            raise ConfigError(f"recipe_options: gt_weight {c.gt_weight}, kd_weight {c.kd_weight} must lie "
                              f"in [0, 1] and temperature {c.temperature} be > 0")
        if str(c.rounds) not in ("min", "max") and not str(c.rounds).isdigit():
            raise ConfigError(f"recipe_options.rounds: {c.rounds!r}; use 'min', 'max' or a number of steps")
        self.bins = VABins(c.va_bins)
        self.loss_config = Vu2021LossConfig(c.temperature, c.gt_weight, c.kd_weight, c.ccc_weight)

    def net_config(self, dims: dict[str, int]) -> Vu2021NetConfig:
        c = self.config
        return Vu2021NetConfig(face_dim=dims["face"], window=dims["window"], stride=dims["stride"],
                               hidden=tuple(c.hidden), dropout=c.dropout, temporal=c.temporal,
                               gru_hidden=c.gru_hidden, n_expr=sampling.N_CLASSES, va_bins=c.va_bins)

    def forward(self, model: torch.nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        return model(batch["face"], batch["face_mask"])

    def evaluation_datasets(self) -> tuple[str, ...]:
        return tuple(self.config.eval_datasets)

    def check_data(self, data: FrameData) -> None:
        """Every dataset a training-set option names must be in the cache."""
        for option in ("expr_datasets", "va_datasets", "expr_va_datasets"):
            require_datasets(option, getattr(self.config, option), data)

    def datasets_of(self, task_group: str) -> tuple[str, ...]:
        c = self.config
        return tuple({"EXPR": c.expr_datasets, "VA": c.va_datasets, "EXPR_VA": c.expr_va_datasets}[task_group])

    def streams(self, data: FrameData, split: str) -> dict[str, np.ndarray]:
        groups = SETS if self.config.combination else ("EXPR", "VA")
        return {g: sampling.set_frames(data, split, g, self.datasets_of(g), self.config.require_face)
                for g in groups}

    def train_steps(self, data: FrameData, split: str, batch_size: int, rng: np.random.Generator) -> StepPlan:
        streams = self.streams(data, split)
        weights = None
        if self.config.balanced:
            weights = {g: sampling.balance_weights(data, idx, g, self.bins) for g, idx in streams.items() if len(idx)}
        rounds = self.config.rounds if str(self.config.rounds) in ("max", "min") else int(self.config.rounds)
        return StepPlan(data, [[(name, idx, None) for name, idx in step]
                               for step in sampling.steps(streams, batch_size, rng, rounds, weights,
                                                             permute=data.permute)])

    def _targets(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """EXPR target (-1 missing) and VA target (NaN missing) that this batch may supervise."""
        expr_ok, va_ok = batch["expr_mask"], batch["va_mask"]
        if not self.config.combination:
            expr_ok = expr_ok & (batch["stream"] == "EXPR")
            va_ok = va_ok & (batch["stream"] == "VA")
        expr = torch.where(expr_ok, batch["expr"], torch.full_like(batch["expr"], -1))
        va = torch.where(va_ok[:, None], batch["va"], torch.full_like(batch["va"], float("nan")))
        return expr, va

    def loss(self, outputs: dict[str, torch.Tensor], batch: Batch,
             state: EpochState) -> tuple[torch.Tensor, dict[str, float]]:
        expr_target, va_target = self._targets(batch)
        teacher_expr = teacher_va = None
        if state.role == "student":
            soft = batch["soft"]
            if "expr" not in soft or "va_logits" not in soft:
                raise ConfigError("vu2021 student: the teacher run stored no 'expr'/'va_logits' outputs; "
                                  "train the teacher with recipe vu2021 and export its soft labels")
            teacher_expr = soft["expr"]
            teacher_va = soft["va_logits"].view(-1, 2, self.config.va_bins)
        l_expr = expr_loss(outputs["expr"], expr_target, teacher_expr, self.loss_config)
        l_va = va_loss(outputs["va_logits"], va_target, teacher_va, self.loss_config, self.bins)
        total = l_expr + l_va
        stream = batch["stream"]
        parts = {f"expr_{stream}": l_expr.item(), f"va_{stream}": l_va.item(), f"loss_{stream}": total.item()}
        return total, parts

    def soft_outputs(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"expr": outputs["expr"], "va_logits": outputs["va_logits"].flatten(1), "va": outputs["va"]}

    def probabilities(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"va": np.asarray(raw["va"], np.float32), "expr": softmax(raw["expr"])}

    def decode(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"va": np.asarray(raw["va"], np.float32),
                "expr": np.asarray(raw["expr"]).argmax(1).astype(np.int64)}

    def metrics(self, raw: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> dict[str, float]:
        """CCC of V and A; EXPR macro F1 over the 7 classes, accuracy and the paper's
        0.67 F1 + 0.33 accuracy; score = mean CCC + that EXPR score."""
        return vu2021_metrics(self.decode(raw), labels)


def vu2021_metrics(decoded: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> dict[str, float]:
    va_true, expr_true = np.asarray(labels["va"]), np.asarray(labels["expr"])
    m = ~np.isnan(va_true).any(1)
    ccc_v = ccc(decoded["va"][m, 0], va_true[m, 0])
    ccc_a = ccc(decoded["va"][m, 1], va_true[m, 1])
    m = (expr_true >= 0) & (expr_true < sampling.N_CLASSES)
    pred, true = decoded["expr"][m], expr_true[m].astype(np.int64)
    f1 = expr_f1(pred, true, n_classes=sampling.N_CLASSES)
    acc = float((pred == true).mean()) if m.any() else float("nan")
    expr_score = 0.67 * f1 + 0.33 * acc
    return {"ccc_v": ccc_v, "ccc_a": ccc_a, "ccc_va": (ccc_v + ccc_a) / 2, "f1_expr": f1, "acc_expr": acc,
            "expr_score": expr_score, "score": (ccc_v + ccc_a) / 2 + expr_score}
