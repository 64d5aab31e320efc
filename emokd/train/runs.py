"""The run directory: config.yaml, metrics.csv, best.pt / last.pt, curves.png, train.log.

Checkpoints hold everything needed to rebuild the model without the cache (recipe name and options,
the network's whole config `net_config`: dims, window, stride, widths) and to continue exactly
(optimiser, epoch state, torch RNG). They are written to a
temporary file and renamed, so a kill never leaves a half-written last.pt.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import torch

from emokd.config import from_dict, save_config, read_config_file
from emokd.errors import ConfigError, DataError
from emokd.train.recipes.base import Recipe, build_recipe
from emokd.train.config import TrainConfig

CONFIG, METRICS, BEST, LAST, PLOT, LOG = "config.yaml", "metrics.csv", "best.pt", "last.pt", "curves.png", "train.log"


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def file(self, name: str) -> Path:
        return self.path / name

    def prepare(self, config: TrainConfig, resume: bool, provenance: dict | None = None) -> None:
        """Create the directory; refuse to overwrite a previous run unless resuming it. config.yaml
        gets `provenance` (emokd version, command line, dataset: `emokd.config.made_by`)."""
        if resume:
            if not self.file(LAST).is_file():
                raise ConfigError(f"{self.file(LAST)}: nothing to resume (no last.pt)")
        elif self.file(LAST).exists() or self.file(METRICS).exists():
            raise ConfigError(f"{self.path}: already holds a run; use --resume or a new --run")
        self.path.mkdir(parents=True, exist_ok=True)
        save_config(config, self.file(CONFIG), provenance)

    def config(self) -> TrainConfig:
        if not self.file(CONFIG).is_file():
            raise DataError(f"{self.path}: not a run directory (no {CONFIG})")
        return from_dict(TrainConfig, read_config_file(self.file(CONFIG)))

    # ---- metrics.csv -----------------------------------------------------------------------
    def read_metrics(self) -> list[dict]:
        if not self.file(METRICS).is_file():
            return []
        with open(self.file(METRICS), newline="") as f:
            return list(csv.DictReader(f))

    def append_metrics(self, row: dict) -> None:
        rows = [r for r in self.read_metrics() if int(r["epoch"]) < int(row["epoch"])]
        rows.append({k: _fmt(v) for k, v in row.items()})
        columns: list[str] = []
        for r in rows:
            columns += [k for k in r if k not in columns]
        tmp = self.file(METRICS + ".tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.file(METRICS))

    def plot(self, recipe: Recipe) -> Path | None:
        """curves.png from metrics.csv: the recipe's training losses, training curves and validation
        metrics, best epoch marked (`emokd.train.plots`)."""
        from emokd.train.plots import plot_curves
        rows = self.read_metrics()
        return plot_curves(rows, self.file(PLOT), recipe.loss_keys, recipe.curve_keys, recipe.metric_keys,
                           recipe.score_key) if rows else None

    # ---- checkpoints -----------------------------------------------------------------------
    def save_checkpoint(self, name: str, payload: dict) -> None:
        tmp = self.file(name + ".tmp")
        torch.save(payload, tmp)
        os.replace(tmp, self.file(name))

    def load_checkpoint(self, name: str = BEST, device: str | torch.device = "cpu") -> dict:
        path = self.file(name)
        if not path.is_file():
            raise DataError(f"{path}: no checkpoint (did the run finish an epoch?)")
        return torch.load(path, map_location=device, weights_only=False)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def net_config_of(ckpt: dict, path: str | Path) -> dict:
    """The network config stored in a checkpoint; DataError for a checkpoint without one."""
    if "net_config" not in ckpt:
        raise DataError(f"{path}: checkpoint holds no network config (written by an older emokd); "
                        "train the run again")
    return ckpt["net_config"]


def load_trained(run: str | Path, which: str = BEST,
                 device: str | torch.device = "cpu") -> tuple[Recipe, torch.nn.Module, dict]:
    """(recipe, model in eval mode on `device`, checkpoint) of a run, from its checkpoint alone;
    the model's window and stride are `model.config.window` / `.stride`."""
    ckpt = RunDir(run).load_checkpoint(which, device)
    recipe = build_recipe(ckpt["recipe"], ckpt["recipe_options"])
    model = recipe.rebuild_model(net_config_of(ckpt, RunDir(run).file(which)))
    model.load_state_dict(ckpt["model"])
    return recipe, model.to(device).eval(), ckpt
