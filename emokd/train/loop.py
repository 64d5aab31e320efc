"""The training loop shared by every recipe: read top to bottom.

    config -> run dir -> cache in memory (+ teacher soft labels) -> model, Adam
    for each epoch: the recipe's steps (one optimiser step each), validation over the whole set,
                    recipe.end_epoch (patience, gammas), metrics.csv row, best.pt / last.pt
    teacher: its predictions for every cached frame go to the cache's soft/ area, once.

Determinism and --resume: the batch order of epoch e comes from numpy seeded by (seed, e), and
last.pt (written after each epoch) holds the torch RNG state, the optimiser and the epoch state,
so a resumed run continues exactly where an uninterrupted one would be.
"""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict

import numpy as np
import torch
from tqdm.auto import tqdm

from emokd.cache.store import FeatureCache
from emokd.config import to_dict
from emokd.errors import ConfigError, DataError
from emokd.logs import file_log
from emokd.train.data import load_frame_data
from emokd.train.evaluate import evaluate_split
from emokd.train.recipes.base import EpochState, build_recipe
from emokd.train.runs import BEST, LAST, LOG, RunDir, net_config_of
from emokd.train.soft_labels import ensure_soft_labels, export_soft_labels
from emokd.models.device import resolve_device
from emokd.train.config import TrainConfig

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(cfg: TrainConfig, resume: bool = False) -> dict:
    """Train one run; returns the summary (best epoch, best validation metrics, soft-label run)."""
    cfg.check()
    recipe = build_recipe(cfg.recipe, cfg.recipe_options)      # unknown options fail before any write
    device = resolve_device(cfg.device)
    run = RunDir(cfg.run)
    run.prepare(cfg, resume)
    with file_log(run.file(LOG)):
        return _train(cfg, recipe, device, run, resume)


def _train(cfg: TrainConfig, recipe, device: torch.device, run: RunDir, resume: bool) -> dict:
    log.info("run %s: role %s, recipe %s, device %s", run.path, cfg.role, cfg.recipe, device)
    seed_everything(cfg.seed)

    # data: the train and validation videos in memory, plus the teacher's outputs for a student
    soft_run = ensure_soft_labels(cfg.cache, cfg.teacher, cfg.device) if cfg.role == "student" else None
    cache = FeatureCache.open(cfg.cache)
    data = load_frame_data(cache, [cfg.train_split, cfg.val_split], cfg.window, cfg.stride, soft_run,
                           device if cfg.data_on_device else "cpu")
    data.batch_device = device
    for split in (cfg.train_split, cfg.val_split):
        if not len(data.frames(split)):
            raise DataError(f"cache {cfg.cache}: no complete video with labels in split {split!r} "
                            f"(found only: {sorted(set(data.video_split))}; set train_split / val_split)")

    # model and optimiser
    model = recipe.build_model(data.dims).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    state = EpochState(role=cfg.role, epochs=cfg.epochs, patience=cfg.patience)
    start = 0
    if resume:
        ckpt = run.load_checkpoint(LAST, device)
        saved_net = net_config_of(ckpt, run.file(LAST))
        if saved_net != to_dict(model.config):
            raise ConfigError(f"{run.file(LAST)}: its network {saved_net} differs from the one this config "
                              f"and cache build ({to_dict(model.config)}); resume with the run's own config.yaml "
                              "and cache")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        state = EpochState.from_dict(ckpt["state"])
        torch.set_rng_state(ckpt["torch_rng"].cpu())
        if device.type == "cuda" and ckpt.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(ckpt["cuda_rng"].cpu(), device)
        start = state.epoch + 1
        log.info("resuming after epoch %d", state.epoch)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("%d frames in memory (%.1f MB), model %d parameters", data.n_frames,
             data.memory_bytes() / 1e6, n_params)

    def checkpoint(epoch: int) -> dict:
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": state.to_dict(),
                "epoch": epoch, "recipe": cfg.recipe, "recipe_options": to_dict(recipe.config),
                "net_config": to_dict(model.config), "config": to_dict(cfg), "soft_run": soft_run,
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}

    for epoch in range(start, cfg.epochs):
        if state.stop:
            break
        state.epoch = epoch
        t0 = time.time()
        rng = np.random.default_rng([cfg.seed, epoch])
        model.train()
        sums: dict = defaultdict(float)
        counts, n_samples = defaultdict(int), 0
        steps = recipe.train_steps(data, cfg.train_split, cfg.batch_size, rng)
        for step in tqdm(steps, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="step", leave=False,
                         disable=None):    # None: a bar on a terminal, silent in logs and CI
            total = 0.0
            for batch in step:
                loss, parts = recipe.loss(recipe.forward(model, batch), batch, state)
                total = total + loss
                n_samples += len(batch["index"])
                for key, value in parts.items():
                    sums[key] += value
                    counts[key] += 1
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
        train_s = time.time() - t0

        metrics = evaluate_split(model, recipe, data, cfg.val_split, cfg.eval_batch_size)
        extra = recipe.end_epoch(state, metrics)
        improved = state.stale.get("score") == 0
        if improved:
            state.best_epoch = epoch
        row = {"epoch": epoch, **{k: float(sums[k]) / counts[k] for k in sorted(sums)}, **metrics, **extra,
               "samples_per_s": n_samples / max(train_s, 1e-9), "epoch_s": time.time() - t0}
        run.append_metrics(row)
        log.info("epoch %d: %s=%.4f (best %.4f at epoch %d) %.1fs", epoch, recipe.score_key,
                 metrics[recipe.score_key], state.best.get("score", float("nan")), state.best_epoch,
                 row["epoch_s"])
        if improved:
            run.save_checkpoint(BEST, checkpoint(epoch))
        run.save_checkpoint(LAST, checkpoint(epoch))
        if state.stop:
            log.info("early stop: %d epochs without improvement of %s", state.patience, recipe.score_key)

    run.plot((*recipe.metric_keys, *recipe.curve_keys))
    summary = {"run": str(run.path), "best_epoch": state.best_epoch, "best_score": state.best.get("score"),
               "score_key": recipe.score_key, "soft_run": soft_run, "epochs_run": state.epoch + 1}
    if cfg.role == "teacher" and cfg.export_soft and run.file(BEST).is_file():
        summary["soft_run"], summary["soft_videos_written"] = export_soft_labels(
            cfg.cache, run.path, cfg.device, cfg.eval_batch_size)
    log.info("done: %s", summary)
    return summary
