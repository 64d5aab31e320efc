"""The training loop shared by every recipe: read top to bottom.

    config -> seed -> cache opened, its feature sets chosen -> soft-label name claimed (teacher) ->
    run dir (config.yaml) -> cache in memory (+ teacher soft labels) -> recipe checks the data -> model, Adam
    for each epoch: the recipe's steps (one optimiser step each), validation over the whole set,
                    recipe.end_epoch (patience, gammas), metrics.csv row, best.pt / last.pt,
                    one console line, curves.png redrawn
    teacher: its predictions for every cached frame go to the cache's soft/ area, once.

Determinism and --resume: the batch order of epoch e comes from numpy seeded by (seed, e), and
last.pt (written after each epoch) holds the torch RNG state, the optimiser and the epoch state,
so a resumed run continues exactly where an uninterrupted one would be. A student's seed defaults
to its teacher's + 1: a fresh network, not the teacher's initial weights, batch order and dropout.
"""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict
from dataclasses import replace

import numpy as np
import torch

from emokd.cache.store import FeatureCache
from emokd.config import made_by, to_dict
from emokd.errors import ConfigError, DataError
from emokd.logs import file_log
from emokd.models.device import resolve_device
from emokd.train.config import TrainConfig
from emokd.train.data import load_frame_data
from emokd.train.cache_check import cache_identity, check_same_cache
from emokd.train.evaluate import evaluate, evaluated_videos
from emokd.train.progress import Progress, epoch_line
from emokd.train.reading import extraction_of
from emokd.train.recipes.base import EpochState, build_recipe
from emokd.train.runs import BEST, LAST, LOG, RunDir, net_config_of
from emokd.train.soft_labels import claim_soft_name, ensure_soft_labels, export_soft_labels, soft_run_name

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_seed(cfg: TrainConfig) -> TrainConfig:
    """`cfg` with its seed set: 0 for a teacher, the teacher's seed + 1 for a student."""
    if cfg.seed is not None:
        return cfg
    if cfg.role == "student":
        teacher_seed = RunDir(cfg.teacher).config().seed
        return replace(cfg, seed=(teacher_seed or 0) + 1)
    return replace(cfg, seed=0)


def train(cfg: TrainConfig, resume: bool = False) -> dict:
    """Train one run; returns the summary (best epoch, best validation metrics, soft-label run)."""
    cfg.check()
    cfg = cfg.with_absolute_paths()
    recipe = build_recipe(cfg.recipe, cfg.recipe_options)      # unknown options fail before any write
    device = resolve_device(cfg.device)
    cfg = resolve_seed(cfg)
    cache = FeatureCache.open(cfg.cache, storage_options=cfg.storage_options)  # a missing cache fails here
    # the feature sets it reads (chosen as load_frame_data chooses them): a wrong name fails before any
    # write, and config.yaml names the sets read
    cfg = replace(cfg, face_features=cache.choose_set("face", cfg.face_features).name,
                  audio_features=cache.choose_set("audio", cfg.audio_features).name)
    made = cache.made_by
    other_cache = []
    if cfg.role == "student":  # the teacher's view of frames means something only on its own features
        other_cache = check_same_cache(RunDir(cfg.teacher).load_checkpoint(BEST), cache, f"teacher {cfg.teacher}",
                                       cfg.allow_other_cache)
    run = RunDir(cfg.run)
    if cfg.role == "teacher" and cfg.export_soft:              # a taken name fails before any epoch
        claim_soft_name(                    # opens the cache for writing: a read-only cache fails here, too
            cfg.cache, run.path, soft_run_name(run.path, cfg.soft_run), cfg.storage_options)
    run.prepare(cfg, resume, made_by(dataset=made[-1].get("dataset") if made else None))
    with file_log(run.file(LOG)):
        return _train(cfg, recipe, device, run, resume, cache, other_cache)


def _train(cfg: TrainConfig, recipe, device: torch.device, run: RunDir, resume: bool, cache: FeatureCache,
           other_cache: list[str]) -> dict:
    """`cache`: open, read only; `other_cache`: the settings in which a student's cache differs from
    its teacher's (accepted)."""
    log.info("run %s: role %s, recipe %s, device %s, seed %d", run.path, cfg.role, cfg.recipe, device, cfg.seed)
    if cfg.role == "student" and cfg.seed == RunDir(cfg.teacher).config().seed:
        log.warning("student seed %d is its teacher's: it starts from the teacher's initial weights", cfg.seed)
    seed_everything(cfg.seed)
    progress = Progress(every_s=cfg.progress_every_s)

    # data: the train and validation videos in memory, plus the teacher's outputs for a student
    soft_run = (ensure_soft_labels(cfg.cache, cfg.teacher, cfg.device, cfg.storage_options)
                if cfg.role == "student" else None)
    data = load_frame_data(cache, [cfg.train_split, cfg.val_split], cfg.window, cfg.stride, soft_run,
                           device if cfg.data_on_device else "cpu", train_split=cfg.train_split,
                           face_set=cfg.face_features, audio_set=cfg.audio_features, max_memory=cfg.max_memory)
    data.batch_device = device
    for split in (cfg.train_split, cfg.val_split):
        if not len(data.videos_in(split)):
            raise DataError(f"cache {cfg.cache}: no complete video with a task in split {split!r} "
                            f"(found only: {data.split_names()}; set train_split / val_split)")
    recipe.check_data(data)
    evaluated_videos(recipe, data, cfg.val_split)              # its evaluation datasets exist

    # model and optimiser
    model = recipe.build_model(data.dims).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    state = EpochState(role=cfg.role, epochs=cfg.epochs, patience=cfg.patience)
    start = 0
    if resume:
        ckpt = run.load_checkpoint(LAST, device)
        other_cache += check_same_cache(ckpt, cache, run.path, cfg.allow_other_cache)
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
    log.info("%d frames (%s mode, %.1f MB in memory), feature sets %s + %s, model %d parameters",
             data.n_frames, data.mode, data.memory_bytes() / 1e6, data.sets["face"], data.sets["audio"], n_params)

    extraction = extraction_of(cache, data.sets)

    def checkpoint(epoch: int) -> dict:
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": state.to_dict(),
                "epoch": epoch, "recipe": cfg.recipe, "recipe_options": to_dict(recipe.config),
                "net_config": to_dict(model.config), "config": to_dict(cfg), "soft_run": soft_run,
                "extraction": extraction,          # what made the features: `emokd predict-video` redoes it
                "cache": cache_identity(cache, data.sets), "other_cache": other_cache,
                "feature_sets": data.sets,
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}

    mtl_on = None
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
        for step in progress.steps(steps, f"epoch {epoch + 1}/{cfg.epochs}"):
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

        found = evaluate(model, recipe, data, cfg.val_split, cfg.eval_batch_size)
        metrics, mtl_on = found.metrics, found.mtl_description()
        extra = recipe.end_epoch(state, metrics)
        improved = state.stale.get("score") == 0
        if improved:
            state.best_epoch = epoch
        row = {"epoch": epoch, **{k: float(sums[k]) / counts[k] for k in sorted(sums)}, **metrics, **extra,
               "steps": len(steps), "samples_per_s": n_samples / max(train_s, 1e-9), "epoch_s": time.time() - t0}
        run.append_metrics(row)
        run.plot(recipe)                                       # a killed run still has its picture
        if improved:
            run.save_checkpoint(BEST, checkpoint(epoch))
        run.save_checkpoint(LAST, checkpoint(epoch))
        progress.line(epoch_line(epoch, cfg.epochs, row, recipe.loss_keys, recipe.metric_keys, recipe.score_key,
                                 state.best.get("score", float("nan")), state.best_epoch, row["epoch_s"]))
        if state.stop:
            progress.line(f"early stop: {state.patience} epochs without improvement of {recipe.score_key}")

    summary = {"run": str(run.path), "best_epoch": state.best_epoch, "best_score": state.best.get("score"),
               "score_key": recipe.score_key, "mtl_score_on": mtl_on, "seed": cfg.seed, "soft_run": soft_run,
               "epochs_run": state.epoch + 1, **({"allowed_other_cache": other_cache} if other_cache else {})}
    if cfg.role == "teacher" and cfg.export_soft and run.file(BEST).is_file():
        summary["soft_run"], summary["soft_videos_written"] = export_soft_labels(
            cfg.cache, run.path, cfg.device, cfg.eval_batch_size, name=cfg.soft_run,
            storage_options=cfg.storage_options)
    log.info("done: %s", summary)
    return summary
