"""What the task discriminator of Jeong et al. 2022 can see, and what delta changes.

1. BatchNorm and single-task batches. Algorithm 1 gives the discriminator one task per batch; the
   extractor's BatchNorm normalises each batch with its own statistics, so a difference between
   the tasks' data that is a shift of the features is removed before the discriminator sees it.
   On a cache where each video carries one task and each task's face embeddings are shifted
   (`SyntheticSpec(one_task_per_video=True, task_shift=...)`, like ABAW's per-task source videos),
   emokd's own MultitaskNet (LSTM -> extractor -> discriminator, no gradient reversal: the
   extractor helps it) is trained to classify the task, once with single-task batches and once
   with mixed batches (a third of each task per batch). Per-task accuracy is measured in training
   mode on single-task batches (what the GRL sees under Algorithm 1) and in eval mode (running
   statistics) on the validation frames.
2. delta = 0 against delta = 1 (linear ramp, the default): the validation P_MTL of jeong2022 teachers
   on that cache and on the missing-at-random cache of benchmarks/distillation.py.

    .venv/bin/python benchmarks/discriminator.py [--seeds 0 1 2 --steps 300 --shift 1.0]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from emokd.constants import TASKS
from emokd.testing.caches import SyntheticSpec, write_synthetic_cache
from emokd.train.config import TrainConfig
from emokd.train.data import TASK_ID, load_frame_data
from emokd.train.loop import train
from emokd.train.recipes.base import build_recipe
from emokd.train.runs import RunDir

SMALL = {"lstm_hidden": 32, "extractor": [64, 32], "heads": [32], "discriminator": [16], "dropout": 0.1}


def task_cache(url: str, seed: int, shift: float, frames: int):
    return write_synthetic_cache(url, SyntheticSpec(n_videos=12, frames_per_video=frames, seed=seed,
                                                    missing={"VA": 0.0, "EXPR": 0.0, "AU": 0.0},
                                                    one_task_per_video=True, task_shift=shift))


def discriminator_logits(model, batch):
    """The discriminator on the extractor's feature, without the gradient reversal."""
    return model.discriminator(model.features(batch["face"], batch["audio"]))


def per_task_accuracy(model, data, streams, batch_size, train_mode: bool, rng) -> list[float]:
    model.train(train_mode)
    out = []
    with torch.no_grad():
        for task in TASKS:
            idx = streams[task]
            hits = n = 0
            for start in range(0, len(idx), batch_size):
                part = idx[start:start + batch_size]
                if train_mode and len(part) < 2:
                    continue
                pred = discriminator_logits(model, data.batch(part)).argmax(1)
                hits, n = hits + int((pred == TASK_ID[task]).sum()), n + len(part)
            out.append(hits / max(n, 1))
    model.train()
    return out


def batchnorm_effect(seed: int, args) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory(prefix="emokd-bench-disc-") as tmp:
        cache = task_cache(f"{tmp}/c.zarr", seed, args.shift, args.frames)
        data = load_frame_data(cache, ["train", "validation"], window=3, stride=2)
        train_streams = {t: data.labelled("train", t) for t in TASKS}
        val_streams = {t: data.labelled("validation", t) for t in TASKS}
        rng = np.random.default_rng(seed)
        found = {}
        for batching in ("single", "mixed"):
            torch.manual_seed(seed)
            model = build_recipe("jeong2022", SMALL).build_model(data.dims)
            optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
            for step in range(args.steps):
                if batching == "single":
                    tasks = [TASKS[step % 3]]
                    idx = [rng.choice(train_streams[tasks[0]], args.batch_size, replace=False)]
                else:
                    tasks = list(TASKS)
                    idx = [rng.choice(train_streams[t], args.batch_size // 3, replace=False) for t in TASKS]
                batch = data.batch(np.concatenate(idx))
                target = torch.cat([torch.full((len(i),), TASK_ID[t]) for t, i in zip(tasks, idx)])
                loss = F.cross_entropy(discriminator_logits(model, batch), target)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            found[f"{batching}-task training, read on single-task batches (train mode)"] = per_task_accuracy(
                model, data, val_streams, args.batch_size, True, rng)
            found[f"{batching}-task training, read frame by frame (eval mode)"] = per_task_accuracy(
                model, data, val_streams, args.batch_size, False, rng)
        return found


def teacher_p_mtl(url: str, run: str, seed: int, delta: float, args) -> float:
    cfg = TrainConfig(cache=url, run=run, epochs=args.epochs, batch_size=64, lr=3e-3, window=3, stride=2,
                      seed=seed, device="cpu", export_soft=False, progress_every_s=1e9,
                      recipe_options={**SMALL, "delta": delta})
    with contextlib.redirect_stderr(io.StringIO()):
        summary = train(cfg)
    rows = RunDir(run).read_metrics()
    return float(rows[summary["best_epoch"]]["p_mtl"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=300, help="discriminator training steps (part 1)")
    p.add_argument("--batch-size", type=int, default=96)
    p.add_argument("--shift", type=float, default=1.0, help="length of each task's feature offset")
    p.add_argument("--frames", type=int, default=300, help="frames per video")
    p.add_argument("--epochs", type=int, default=8, help="teacher epochs (part 2)")
    p.add_argument("--missing", type=float, default=0.7, help="labels missing per task, part 2's second cache")
    args = p.parse_args()
    torch.set_num_threads(1)
    logging.disable(logging.INFO)
    t0 = time.time()

    print(f"1. task discriminator of MultitaskNet, {args.steps} steps, shift {args.shift}: per-task accuracy "
          "VA / EXPR / AU on validation frames, mean over seeds " + str(args.seeds))
    runs = [batchnorm_effect(seed, args) for seed in args.seeds]
    for key in runs[0]:
        acc = np.mean([r[key] for r in runs], axis=0)
        print(f"  {key:62s} " + " / ".join(f"{a:.2f}" for a in acc))

    print(f"\n2. teacher validation P_MTL (best epoch of {args.epochs}), delta 0 vs 1 (linear ramp), "
          f"seeds {args.seeds}")
    for name in ("one task per video, shifted", f"{args.missing:.0%} missing at random"):
        p_mtl = {0.0: [], 1.0: []}
        for seed in args.seeds:
            with tempfile.TemporaryDirectory(prefix="emokd-bench-disc-") as tmp:
                url = f"{tmp}/c.zarr"
                if name.startswith("one"):
                    task_cache(url, seed, args.shift, args.frames)
                else:
                    write_synthetic_cache(url, SyntheticSpec(n_videos=8, frames_per_video=500, seed=seed,
                                                             missing=dict.fromkeys(TASKS, args.missing)))
                for delta in p_mtl:
                    p_mtl[delta].append(teacher_p_mtl(url, f"{tmp}/d{delta}", seed, delta, args))
        d0, d1 = np.array(p_mtl[0.0]), np.array(p_mtl[1.0])
        sd = lambda x: x.std(ddof=1) if len(x) > 1 else 0.0  # noqa: E731
        print(f"  {name:30s} delta 0: {d0.mean():.3f} +- {sd(d0):.3f}   delta 1: {d1.mean():.3f} +- {sd(d1):.3f}"
              f"   paired difference {np.mean(d1 - d0):+.3f} +- {sd(d1 - d0):.3f} "
              f"(delta 1 higher in {int((d1 > d0).sum())} of {len(d0)})")
    print(f"total {time.time() - t0:.0f} s (shared machine: times are noisy)")


if __name__ == "__main__":
    main()
