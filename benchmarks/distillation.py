"""Does the student beat its teacher when labels are incomplete (Jeong et al. 2022)?

On a synthetic cache whose labels are a known function of the embeddings, each task's labels are
removed at random (`--missing`, 70 % by default). Per seed: a teacher trains on the labels (eq. 12)
and writes its soft labels once; a fresh student trains with them (eq. 13) for as many epochs; and,
so that the student's extra epochs are not mistaken for distillation, a second teacher trains for
the teacher's and the student's epochs together (`--no-long-teacher` skips it). Prints the
validation P_MTL of the best epoch of each, per seed, then mean +- std over the seeds and the
paired student - teacher differences. Sized to run in a few minutes on two shared cores:

    .venv/bin/python benchmarks/distillation.py [--seeds 0 1 2 3 4 --missing 0.7 --epochs 8]
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

from emokd.testing.caches import SyntheticSpec, write_synthetic_cache
from emokd.train.config import TrainConfig
from emokd.train.data import load_frame_data
from emokd.train.loop import train
from emokd.train.metrics import chance_metrics
from emokd.train.recipes.jeong2022.recipe import Jeong2022
from emokd.train.runs import RunDir

SMALL = {"lstm_hidden": 32, "extractor": [64, 32], "heads": [32], "discriminator": [16], "dropout": 0.1}
KEYS = Jeong2022.metric_keys


def best(run: str) -> dict:
    rows = RunDir(run).read_metrics()
    row = max(rows, key=lambda r: float(r[Jeong2022.score_key]))
    return {k: float(row[k]) for k in KEYS}


def mean_std(values) -> str:
    values = np.asarray(values, np.float64)
    return f"{values.mean():.3f} +- {values.std(ddof=1) if len(values) > 1 else 0.0:.3f}"


def run_seed(seed: int, args, options: dict) -> dict[str, dict]:
    """Teacher, student and (optionally) the teacher trained twice as long, on one seed's cache."""
    with tempfile.TemporaryDirectory(prefix="emokd-bench-distill-") as tmp:
        url = f"{tmp}/cache.zarr"
        spec = SyntheticSpec(n_videos=args.videos, frames_per_video=args.frames, seed=seed,
                             missing={t: args.missing for t in ("VA", "EXPR", "AU")})
        cache = write_synthetic_cache(url, spec)
        common = dict(cache=url, epochs=args.epochs, batch_size=args.batch_size, lr=3e-3, window=3, stride=2,
                      seed=seed, device="cpu", recipe_options={**SMALL, **options}, progress_every_s=1e9)
        out = {}
        train(TrainConfig(run=f"{tmp}/teacher", **common))
        out["teacher"] = best(f"{tmp}/teacher")
        train(TrainConfig(run=f"{tmp}/student", role="student", teacher=f"{tmp}/teacher",
                          **{**common, "seed": None}))                 # the default: the teacher's seed + 1
        out["student"] = best(f"{tmp}/student")
        if args.long_teacher:
            train(TrainConfig(run=f"{tmp}/teacher2x", **{**common, "epochs": 2 * args.epochs}, export_soft=False))
            out["teacher 2x epochs"] = best(f"{tmp}/teacher2x")
        data = load_frame_data(cache, ["validation"])
        out["chance"] = chance_metrics(data.va, data.expr, data.au)
        return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--missing", type=float, default=0.7)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--videos", type=int, default=8)
    p.add_argument("--frames", type=int, default=500)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--no-long-teacher", dest="long_teacher", action="store_false")
    p.add_argument("--batching", default="proportional", choices=["proportional", "cycle"],
                   help="jeong2022 batching: each stream once per epoch, or fixed-size batches cycled")
    args = p.parse_args()
    torch.set_num_threads(1)
    logging.disable(logging.INFO)
    t0 = time.time()
    results: dict[str, list[dict]] = {}
    for seed in args.seeds:
        with contextlib.redirect_stderr(io.StringIO()):       # the runs' epoch lines: this prints a table
            found = run_seed(seed, args, {"batching": args.batching})
        print(f"seed {seed}: labels missing {args.missing:.0%} per task; chance P_MTL {found['chance']['p_mtl']:.3f}",
              flush=True)
        for name, m in found.items():
            results.setdefault(name, []).append(m)
            if name != "chance":
                print(f"  {name:18s} " + "  ".join(f"{k} {m[k]:.3f}" for k in KEYS), flush=True)
    print(f"\nmean +- std over seeds {args.seeds} ({len(args.seeds)} seeds, {args.epochs} epochs, {args.batching} batching, "
          f"{args.videos} videos x {args.frames} frames, {args.missing:.0%} of each task's labels missing):")
    for name, rows in results.items():
        keys = ("p_mtl",) if name == "chance" else KEYS
        print(f"  {name:18s} " + "  ".join(f"{k} {mean_std([r[k] for r in rows])}" for k in keys))
    teacher = np.array([r["p_mtl"] for r in results["teacher"]])
    for name in ("student", "teacher 2x epochs"):
        if name in results:
            diff = np.array([r["p_mtl"] for r in results[name]]) - teacher
            print(f"{name} - teacher P_MTL: {mean_std(diff)} (higher in {int((diff > 0).sum())} of {len(diff)} seeds)")
    if "teacher 2x epochs" in results:
        diff = np.array([r["p_mtl"] for r in results["student"]]) - np.array(
            [r["p_mtl"] for r in results["teacher 2x epochs"]])
        print(f"student - teacher 2x epochs P_MTL: {mean_std(diff)} (higher in {int((diff > 0).sum())} of "
              f"{len(diff)} seeds)")
    print(f"total {time.time() - t0:.0f} s (shared machine: times are noisy)")


if __name__ == "__main__":
    main()
