"""Does the student reach the teacher's P_MTL when labels are incomplete (Jeong et al. 2022)?

On a synthetic cache whose labels are a known function of the embeddings, each task's labels are
removed at random (`--missing`). For each seed a teacher trains on the labels, writes its soft
labels to the cache once, then a fresh student trains with them (eq. 13). Prints the validation
P_MTL (best epoch) of both, per seed and on average, and the per-task metrics.

    .venv/bin/python benchmarks/distillation.py [--missing 0.7 --seeds 0 1 --epochs 8]
"""

from __future__ import annotations

import argparse
import logging
import tempfile

import numpy as np
import torch

from emokd.train.data import load_frame_data
from emokd.train.loop import train
from emokd.train.metrics import chance_metrics
from emokd.train.recipes.jeong2022.recipe import Jeong2022
from emokd.train.runs import RunDir
from emokd.testing.caches import SyntheticSpec, write_synthetic_cache
from emokd.train.config import TrainConfig

SMALL = {"lstm_hidden": 32, "extractor": [64, 32], "heads": [32], "discriminator": [16], "dropout": 0.1}
KEYS = Jeong2022.metric_keys


def best(run: str) -> dict:
    rows = RunDir(run).read_metrics()
    row = max(rows, key=lambda r: float(r[Jeong2022.score_key]))
    return {k: float(row[k]) for k in KEYS}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--missing", type=float, default=0.7)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--videos", type=int, default=8)
    p.add_argument("--frames", type=int, default=500)
    args = p.parse_args()
    torch.set_num_threads(1)
    logging.disable(logging.INFO)
    results = {"teacher": [], "student": []}
    for seed in args.seeds:
        tmp = tempfile.mkdtemp()
        url = f"{tmp}/cache.zarr"
        spec = SyntheticSpec(n_videos=args.videos, frames_per_video=args.frames, seed=seed,
                             missing={t: args.missing for t in ("VA", "EXPR", "AU")})
        cache = write_synthetic_cache(url, spec)
        common = dict(cache=url, epochs=args.epochs, batch_size=64, lr=3e-3, window=3, stride=2, seed=seed,
                      device="cpu", recipe_options=dict(SMALL))
        train(TrainConfig(run=f"{tmp}/teacher", **common))
        train(TrainConfig(run=f"{tmp}/student", role="student", teacher=f"{tmp}/teacher", **common))
        data = load_frame_data(cache, ["validation"])
        chance = chance_metrics(data.va, data.expr, data.au)["p_mtl"]
        t, s = best(f"{tmp}/teacher"), best(f"{tmp}/student")
        results["teacher"].append(t)
        results["student"].append(s)
        print(f"seed {seed}: labels missing {args.missing:.0%} per task; chance P_MTL {chance:.3f}")
        for name, m in (("teacher", t), ("student", s)):
            print(f"  {name:8s} " + "  ".join(f"{k} {m[k]:.3f}" for k in KEYS))
    mean = {name: {k: float(np.mean([r[k] for r in rs])) for k in KEYS} for name, rs in results.items()}
    print(f"mean over seeds {args.seeds}:")
    for name in ("teacher", "student"):
        print(f"  {name:8s} " + "  ".join(f"{k} {mean[name][k]:.3f}" for k in KEYS))
    print(f"student - teacher P_MTL: {mean['student']['p_mtl'] - mean['teacher']['p_mtl']:+.3f}")


if __name__ == "__main__":
    main()
