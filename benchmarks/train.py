"""Is the data ever the bottleneck of training? And what does the in-memory cache cost?

Prints, side by side in one run:
  * train steps/s through the real path (cache in memory -> recipe.train_steps -> batch gather ->
    forward/backward/Adam) against the same network and loss on random tensors of the same shape
    already on the device (the network's own rate): ratio goal >= 0.8;
  * batch gather alone from memory against the naive approach (each sample's window read from the
    Zarr store), in samples/s;
  * memory per million cached frames for the cache's dims.

    .venv/bin/python benchmarks/train.py [--videos 6 --frames 1000 --face-dim 512 --audio-dim 1000
                                          --batch-size 256 --steps 12 --device auto]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from emokd.cache.store import FeatureCache
from emokd.train.data import load_frame_data
from emokd.train.recipes.base import EpochState, build_recipe
from emokd.testing.caches import SyntheticSpec, write_synthetic_cache
from emokd.train.config import resolve_device


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_steps(model, recipe, optimizer, batches, state, device):
    sync(device)
    t0 = time.perf_counter()
    n = 0
    for batch in batches():
        loss, _ = recipe.loss(recipe.forward(model, batch), batch, state)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        n += len(batch["index"])
    sync(device)
    return n / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=6)
    p.add_argument("--frames", type=int, default=1000)
    p.add_argument("--face-dim", type=int, default=512)
    p.add_argument("--audio-dim", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--naive-batches", type=int, default=3)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory(prefix="emokd-bench-train-") as tmp:   # removed at the end
        url = f"{tmp}/bench.zarr"
        spec = SyntheticSpec(n_videos=args.videos, frames_per_video=args.frames, face_dim=args.face_dim,
                             audio_dim=args.audio_dim, validation_fraction=0.1)
        write_synthetic_cache(url, spec)
        cache = FeatureCache.open(url)
        t0 = time.perf_counter()
        data = load_frame_data(cache, ["train"], window=6, stride=10, device=device)
        load_s = time.perf_counter() - t0
        cpu_data = load_frame_data(cache, ["train"], window=6, stride=10) if device.type != "cpu" else data

        recipe = build_recipe("jeong2022", {})               # the paper's widths: LSTM 512, [1024, 512] ...
        model = recipe.build_model(data.dims).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        state = EpochState(role="teacher", epochs=20)
        rng = np.random.default_rng(0)
        bs = args.batch_size

        def real_batches():
            for i, step in enumerate(recipe.train_steps(data, "train", bs, rng)):
                if i >= args.steps:
                    return
                yield step[0]

        template = data.batch(data.labelled("train", "MTL")[:bs], stream="EXPR")

        def random_batches():
            tasks = ("VA", "EXPR", "AU", "MTL")
            for i in range(args.steps):
                b = dict(template)
                b["face"] = torch.randn_like(template["face"])
                b["audio"] = torch.randn_like(template["audio"])
                b["stream"] = tasks[i % 4]
                yield b

        run_steps(model, recipe, optimizer, random_batches, state, device)          # warm-up
        real = run_steps(model, recipe, optimizer, real_batches, state, device)
        plain = run_steps(model, recipe, optimizer, random_batches, state, device)

        idx_all = data.labelled("train", "VA")
        t0 = time.perf_counter()
        n = 0
        for i in range(200):
            idx = rng.choice(idx_all, bs, replace=False)
            b = data.batch(idx)
            n += bs
        sync(device)
        gather = n / (time.perf_counter() - t0)

        # naive: each sample's window and audio read from the store
        face_name, audio_name = cpu_data.sets["face"], cpu_data.sets["audio"]
        offsets = 10 * np.arange(5, -1, -1)
        t0 = time.perf_counter()
        n = 0
        for _ in range(args.naive_batches):
            for g in rng.choice(idx_all, bs, replace=False):
                v = int(cpu_data.frame_video[g])
                vid, k = cpu_data.video_ids[v], int(g - cpu_data.video_start[v])
                loc = cache.index.location(vid)
                rows = np.maximum(k - offsets, 0) + loc.first
                arrays = cache.shard_group(loc.shard)
                _ = arrays[face_name].get_orthogonal_selection((rows, slice(None)))
                _ = arrays[audio_name][loc.first + k]
                n += 1
        naive = n / (time.perf_counter() - t0)

        frames = data.n_frames
        print(f"device {device}; {frames} train frames in memory, face {args.face_dim}-d, audio {args.audio_dim}-d, "
              f"window 6 x stride 10, batch {bs}, jeong2022 network ({sum(p.numel() for p in model.parameters()):,} params)")
        print(f"load into memory: {load_s:.2f} s ({frames / load_s:,.0f} frames/s)")
        print(f"training from the cache : {real:10,.0f} samples/s")
        print(f"same net, random tensors: {plain:10,.0f} samples/s   ratio {real / plain:.2f} (goal >= 0.8)")
        print(f"batch gather from memory: {gather:10,.0f} samples/s")
        print(f"naive per-sample Zarr   : {naive:10,.0f} samples/s   ratio {gather / naive:,.0f}x")
        print(f"memory per million cached frames: {data.memory_bytes() / frames * 1e6 / 2**30:.2f} GiB "
              f"({data.memory_bytes() / frames:,.0f} bytes/frame)")


if __name__ == "__main__":
    main()
