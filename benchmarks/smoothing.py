"""Does `emokd predict-video --smooth SECONDS` help, and when does it hurt?

Two synthetic caches: one whose labels drift smoothly in time (a latent filtered over
`--temporal-s`, seen through noisy per-frame embeddings: affect as it is), one whose labels are
independent per frame (a control where smoothing can only blur). A small jeong2022 teacher trains
on each; its validation predictions are then smoothed with the centred filter of predict-video
(`emokd.apply.smooth.smooth_in_time`) over each window and scored with the ABAW metrics. Prints,
side by side, CCC-V, CCC-A, F1-EXPR, F1-AU and P_MTL per window, and P_MTL as a ratio to no
smoothing. CPU, one thread; the machine is shared, but these figures are metrics, not timings.

    .venv/bin/python benchmarks/smoothing.py [--videos 8 --frames 900 --epochs 6 --windows 0 0.25 0.5 1 2]
"""

from __future__ import annotations

import argparse
import logging
import tempfile

import numpy as np
import torch

from emokd.apply.smooth import smooth_in_time
from emokd.cache.store import FeatureCache
from emokd.testing.caches import SyntheticSpec, write_synthetic_cache
from emokd.train.config import TrainConfig
from emokd.train.loop import train
from emokd.train.metrics import abaw_metrics
from emokd.train.predict import decisions, video_probabilities
from emokd.train.runs import load_trained

SMALL = {"lstm_hidden": 32, "extractor": [64, 32], "heads": [32], "discriminator": [16], "dropout": 0.1}
KEYS = ("ccc_v", "ccc_a", "f1_expr", "f1_au", "p_mtl")


def scores(run: str, url: str, windows: list[float]) -> dict[float, dict[str, float]]:
    """Validation metrics of the run's best checkpoint with its predictions smoothed over each window."""
    recipe, model, _ = load_trained(run)
    cache = FeatureCache.open(url)
    ids = [v for v in cache.video_ids() if cache.read_labels(v)["split"] == "validation"]
    probs = video_probabilities(model, recipe, cache, ids)
    labels = {v: cache.read_labels(v) for v in ids}
    times = {v: np.asarray(cache.read_video(v, ["pts"])["pts"]) for v in ids}
    out = {}
    for window in windows:
        decided = [decisions({k: smooth_in_time(p, times[v], window) for k, p in probs[v].items()}) for v in ids]
        out[window] = abaw_metrics(*(np.concatenate([d[k] for d in decided]) for k in ("va", "expr", "au")),
                                   *(np.concatenate([labels[v][k] for v in ids]) for k in ("va", "expr", "au")))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=8)
    p.add_argument("--frames", type=int, default=900, help="frames per video (30 fps)")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--temporal-s", type=float, default=1.0, help="how slowly the smooth labels drift (s)")
    p.add_argument("--noise", type=float, default=1.5, help="per-frame noise on the embeddings")
    p.add_argument("--windows", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0, 2.0])
    args = p.parse_args()
    logging.basicConfig(level=logging.ERROR)
    torch.set_num_threads(1)
    print(f"{args.videos} videos x {args.frames} frames, {args.epochs} epochs, noise {args.noise}; "
          "validation metrics of the best epoch, predictions smoothed over a centred window")
    with tempfile.TemporaryDirectory() as tmp:
        for name, temporal_s in (("smooth labels", args.temporal_s), ("independent labels", 0.0)):
            spec = SyntheticSpec(n_videos=args.videos, frames_per_video=args.frames, temporal_s=temporal_s,
                                 feature_noise=args.noise, missing={"VA": 0.3, "EXPR": 0.3, "AU": 0.3})
            url = f"{tmp}/{temporal_s}.zarr"
            write_synthetic_cache(url, spec)
            run = f"{tmp}/run_{temporal_s}"
            train(TrainConfig(cache=url, run=run, epochs=args.epochs, batch_size=128, lr=2e-3, window=3,
                              stride=2, device="cpu", patience=args.epochs, export_soft=False,
                              recipe_options=SMALL))
            table = scores(run, url, args.windows)
            base = table[args.windows[0]]["p_mtl"]
            label = f"temporal_s {temporal_s:g} s" if temporal_s else "independent per frame"
            print(f"\n{name} ({label})")
            print(f"{'window s':>9} " + " ".join(f"{k:>8}" for k in KEYS) + f" {'P_MTL / none':>13}")
            for window, m in table.items():
                print(f"{window:9.2f} " + " ".join(f"{m[k]:8.4f}" for k in KEYS) + f" {m['p_mtl'] / base:13.3f}")


if __name__ == "__main__":
    main()
