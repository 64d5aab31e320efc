"""Recipe vu2021 on a synthetic multi-database cache with known ground truth.

Three training databases each label a different subset of tasks (expr_db: EXPR only, va_db: VA
only, both_db: both = the combination task); validation = clean-labelled videos (`target`). All
runs go through the shared loop (`emokd.train.loop.train`), as `emokd train-from-cache` does.

Compared, side by side on the same cache (PLAN below):
  teacher          ground truth only, frame-level network (the paper's CNN)
  student          same network, 0.6 GT + 0.4 KD(T=1.5) where labelled, KD alone elsewhere
  teacher+GRU      ground truth only, with the bidirectional GRU over the window (control)
  student+GRU      the GRU network distilled from the frame-level teacher (the paper's CNN+GRU student)
  no-comb teacher/student   combination = False: no EXPR_VA set (both_db unused), each set's
                   batch supervises only its own task
  no-comb split    combination = False but both_db's frames fed to the EXPR and the VA sets
                   separately (its labels used, never both on one sample)

    .venv/bin/python benchmarks/vu2021.py [--seeds 0 1] [--runs teacher student ...] [--cache PATH]
"""

from __future__ import annotations

import argparse
import csv
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from emokd.cache.store import FeatureCache
from emokd.train.data import load_frame_data
from emokd.train.loop import train
from emokd.train.config import TrainConfig
from emokd.train.recipes.vu2021.recipe import Vu2021
from emokd.testing.multidb_cache import MultiDbSpec, write_multidb_cache

SETS = {"expr_datasets": ["expr_db"], "va_datasets": ["va_db"], "expr_va_datasets": ["both_db"],
        "eval_datasets": ["target"]}
NET = {"hidden": [64, 32], "dropout": 0.2, "gru_hidden": 32}
KEYS = Vu2021.metric_keys


def run(cache: str, out: Path, name: str, args, seed: int, teacher: str | None = None, **options) -> dict:
    cfg = TrainConfig(cache=cache, run=str(out / f"{name}_s{seed}"), role="student" if teacher else "teacher",
                      teacher=teacher, recipe="vu2021",
                      recipe_options={**SETS, **NET, "rounds": args.rounds, **options},
                      epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=args.patience,
                      seed=seed, device="cpu", window=6, stride=2, data_on_device=False,
                      soft_run=f"{out.name}_{name}_s{seed}", eval_batch_size=4096)
    t0 = time.time()
    summary = train(cfg)
    rows = list(csv.DictReader(open(Path(cfg.run) / "metrics.csv")))
    best = next(r for r in rows if int(r["epoch"]) == summary["best_epoch"])
    result = {k: float(best[k]) for k in KEYS}
    result["epoch"], result["seconds"], result["run"] = summary["best_epoch"], time.time() - t0, cfg.run
    return result


SPLIT = {"expr_datasets": ["expr_db", "both_db"], "va_datasets": ["va_db", "both_db"]}
# name -> (its teacher's name or None, recipe options); a student's teacher runs first
PLAN = {
    "teacher": (None, {"temporal": False}),
    "student": ("teacher", {"temporal": False}),
    "teacher+GRU": (None, {"temporal": True}),
    "student+GRU": ("teacher", {"temporal": True}),           # the paper's CNN teacher -> CNN+GRU student
    "no-comb teacher": (None, {"temporal": False, "combination": False}),
    "no-comb student": ("no-comb teacher", {"temporal": False, "combination": False}),
    "no-comb split": (None, {"temporal": False, "combination": False, **SPLIT}),
}
RATIOS = (("student", "teacher"), ("student+GRU", "teacher+GRU"), ("student+GRU", "teacher"),
          ("teacher", "no-comb teacher"), ("student", "no-comb student"), ("teacher", "no-comb split"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--runs", nargs="+", default=list(PLAN), help=f"subset of {list(PLAN)}")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--rounds", default="10",
                        help="steps per epoch; a number gives every run the same step budget (the recipe's "
                             "default 'min' ends an epoch with the shortest set, which differs between runs)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--patience", type=int, default=15)
    parser.add_argument("--cache", help="reuse (or write) the synthetic cache here instead of a temporary one")
    parser.add_argument("--expr-stills", type=int, default=400)
    parser.add_argument("--both-stills", type=int, default=120)
    parser.add_argument("--va-clips", type=int, default=6)
    parser.add_argument("--expr-flip", type=float, default=0.2)
    parser.add_argument("--va-jitter", type=float, default=0.15)
    args = parser.parse_args()
    unknown = sorted(set(args.runs) - set(PLAN))
    if unknown:
        parser.error(f"unknown runs {unknown}; known: {list(PLAN)}")
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="vu2021_bench_"))
    spec = MultiDbSpec(expr_stills=args.expr_stills, both_stills=args.both_stills, va_clips=args.va_clips,
                       clip_frames=40, val_videos=3, val_frames=300, expr_flip=args.expr_flip,
                       va_jitter=args.va_jitter)
    t0 = time.time()
    cache = args.cache or str(tmp / "multidb.zarr")
    reused = bool(args.cache and Path(args.cache).exists())
    if not reused:
        write_multidb_cache(cache, spec)
    data = load_frame_data(FeatureCache.open(cache), ["train"], 1, 1)
    n_expr = int(((data.expr >= 0) & (data.expr < 7)).sum())
    n_va = int((~np.isnan(data.va).any(1)).sum())
    print(f"cache: {len(data.video_ids)} training items, {data.n_frames} frames; labelled frames: "
          f"EXPR {n_expr}, VA {n_va}; {'reused ' + cache if reused else spec}; ready in {time.time() - t0:.0f}s")

    wanted = list(args.runs)
    for name in args.runs:
        teacher = PLAN[name][0]
        if teacher and teacher not in wanted:
            wanted.insert(0, teacher)
    order = [n for n in PLAN if n in wanted and PLAN[n][0] is None] + [n for n in PLAN if n in wanted and PLAN[n][0]]
    results: dict[str, list[dict]] = {}
    for seed in args.seeds:
        done: dict[str, dict] = {}
        for name in order:
            teacher, options = PLAN[name]
            slug = name.replace(" ", "_").replace("+", "_").replace("-", "")
            done[name] = run(cache, tmp, slug, args, seed, teacher=done[teacher]["run"] if teacher else None,
                             **options)
            results.setdefault(name, []).append(done[name])

    print(f"\nvalidation (target videos, clean labels), best epoch, mean of seeds {args.seeds}:")
    print(f"{'run':16s} " + " ".join(f"{k:>10s}" for k in KEYS) + f" {'s':>6s}")
    mean = {}
    for name in order:
        rs = results[name]
        mean[name] = {k: float(np.mean([r[k] for r in rs])) for k in (*KEYS, "seconds")}
        print(f"{name:16s} " + " ".join(f"{mean[name][k]:10.3f}" for k in KEYS) + f" {mean[name]['seconds']:6.0f}")

    print("\nratios (> 1: the first is better):")
    print(f"{'':34s} " + " ".join(f"{k:>10s}" for k in ("ccc_v", "ccc_a", "ccc_va", "expr_score", "score")))
    for a, b in RATIOS:
        if a in mean and b in mean:
            cells = [mean[a][k] / mean[b][k] if mean[b][k] else float("nan")
                     for k in ("ccc_v", "ccc_a", "ccc_va", "expr_score", "score")]
            print(f"{a + ' / ' + b:34s} " + " ".join(f"{c:10.3f}" for c in cells))
    print(f"\ntotal {time.time() - t0:.0f}s; runs in {tmp}")


if __name__ == "__main__":
    main()
