"""The cache at dataset scale: packed stills, long videos, loading for training, block mode.

    .venv/bin/python benchmarks/scale.py                      # quick: 20 k stills, 20 videos / 100 k frames
    .venv/bin/python benchmarks/scale.py --stills 400000 --videos 564 --video-frames 2800000   # real sizes
    git worktree add /tmp/emokd-v1 ecd4371      # the last schema version 1 emokd, for --v1-checkout
    .venv/bin/python benchmarks/scale.py --v1-checkout /tmp/emokd-v1                # + the real old path

Synthetic caches written through the public cache API (`begin_shard` / `ItemWriter.write` per item,
as an extraction task writes; the encoders are excluded: features are pre-drawn random float16,
512-d face + 1000-d audio by default). Printed:
  stills    write time per item, files and bytes on disk per item (against the array bytes), for
            packed shards and, in the same run, for one group per still (today's layout before
            packing: each still a one-item shard with its labels group, through the same API)
            at --today-stills items, as a ratio; with --v1-checkout PATH (an emokd checkout at
            schema version 1) also the version 1 code itself (`begin_video` + `write_labels`,
            a group per still plus a labels group), written and loaded in a subprocess running
            that checkout: the old path as users ran it, in the same run;
  load      `load_frame_data` of every still / every video frame for training, in a fresh
            process: seconds and peak resident memory (and per frame);
  epoch     one epoch of jeong2022-style task batches gathered in memory (no model): samples/s;
  blocks    the same epoch in block mode (max_memory = --block-fraction of the features: shard-sized
            blocks read in a shuffled block order): samples/s and the ratio to in memory;
  vu2021    the vu2021 recipe trained end to end (teacher, 1 epoch: every still once) on a synthetic multi-database
            cache of --vu2021-stills stills (ExpW-like and AffectNet-like, packed) plus clips and
            validation videos: the load time and the epoch time from its train.log.
Numbers from a shared 2-core machine: other jobs run at the same time, so they are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from emokd.cache import FeatureCache, ItemSpec, fit_labels
from emokd.cache.packing import PACK_FRAMES, PackEntry, pack

ROW_ARRAYS = {"pts": 8, "ok": 2, "labels": 2 * 4 + 1 + 12 + 1}   # bytes a frame besides the features


def encoders(face_dim: int, audio_dim: int) -> list[dict]:
    return [{"name": "bench_face", "kind": "face", "output_dim": face_dim, "layer": "x", "input_spec": {},
             "weights_sha256": "0" * 64},
            {"name": "bench_audio", "kind": "audio", "output_dim": audio_dim, "layer": "x", "input_spec": {},
             "weights_sha256": "1" * 64}]


def item_values(rng, n: int, face_dim: int, audio_dim: int) -> dict:
    return {"face": rng.standard_normal((n, face_dim)).astype(np.float16),
            "audio": rng.standard_normal((n, audio_dim)).astype(np.float16),
            "face_ok": np.ones(n, bool), "audio_ok": np.zeros(n, bool), "pts": np.arange(n) / 30.0}


def item_labels(rng, item_id: str, n: int, split: str):
    return fit_labels(item_id, n, va=np.clip(rng.standard_normal((n, 2)), -1, 1), expr=rng.integers(0, 8, n),
                      split=split, dataset=item_id.split("/")[0])


def write_items(cache, items: list[tuple[str, int]], face_dim, audio_dim, seed: int, packed: bool) -> float:
    """Write `items` (id, frames) packed as extraction packs them (or each alone); seconds of writing
    only (the random values are drawn before the clock starts, per shard)."""
    rng = np.random.default_rng(seed)
    entries = [PackEntry(i, i.split("/")[0], n) for i, n in items]
    shards = pack(entries, pack_frames=PACK_FRAMES if packed else 0)
    seconds = 0.0
    for key, group in shards:
        members = [items[i] for i in group]
        values = {i: item_values(rng, n, face_dim, audio_dim) for i, n in members}
        labels = {i: item_labels(rng, i, n, "validation" if k % 10 == 0 else "train")
                  for (i, n), k in zip(members, group)}
        start = time.perf_counter()
        writer = cache.begin_shard(key, [ItemSpec(i, n, {"path": f"/data/{i}.jpg"}, i.split("/")[0], {"fps": 30.0})
                                         for i, n in members])
        for item_id, _ in members:
            part = writer.item(item_id)
            for name, array in values[item_id].items():
                part.write(name, 0, array)
            part.write_labels(labels[item_id])
        writer.commit()
        seconds += time.perf_counter() - start
    return seconds


def disk(path: Path) -> tuple[int, int, int]:
    """(files, their bytes, the bytes the file system allocates for them: whole blocks, as `du` counts)."""
    stats = [p.stat() for p in path.rglob("*") if p.is_file()]
    return len(stats), sum(s.st_size for s in stats), sum(s.st_blocks * 512 for s in stats)


def load_in_fresh_process(url: str, max_memory: str | None = None, epoch: bool = False) -> dict:
    args = [sys.executable, __file__, "--_load", url] + (["--_max-memory", max_memory] if max_memory else []) \
        + (["--_epoch"] if epoch else [])
    out = subprocess.run(args, capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def _load_child(url: str, max_memory: str | None, epoch: bool) -> None:
    import torch

    from emokd.testing.processes import PeakRSS
    from emokd.train.data import load_frame_data
    from emokd.train.streams import proportional_rounds

    torch.set_num_threads(1)
    peak = PeakRSS()   # not ru_maxrss: that carries the parent's high-water mark into this child
    cache = FeatureCache.open(url)
    start = time.perf_counter()
    data = load_frame_data(cache, ["train"], window=6, stride=10, max_memory=max_memory)
    load_s = time.perf_counter() - start
    out = {"load_s": load_s, "frames": data.n_frames, "items": len(data.video_ids), "mode": data.mode,
           "memory_bytes": data.memory_bytes()}
    if epoch:
        rng = np.random.default_rng(0)
        streams = {t: data.labelled("train", t, require_face=True) for t in ("VA", "EXPR")}
        rounds = proportional_rounds(streams, 256, rng, permute=data.permute)
        start, n = time.perf_counter(), 0
        for r in rounds:
            for _, idx in r:
                batch = data.batch(idx)
                n += len(batch["index"])
        out.update(epoch_s=time.perf_counter() - start, epoch_samples=n,
                   block_reads=getattr(data, "block_reads", 0))
    out["peak_rss"] = peak.stop() * 2**20
    print(json.dumps(out))


V1_CHILD = r"""
import json, sys, time
from pathlib import Path
import numpy as np
import emokd
from emokd.cache import FeatureCache
assert Path(emokd.__file__).resolve().is_relative_to(Path.cwd()), f"not the version 1 checkout: {emokd.__file__}"
url, n, face_dim, audio_dim, load = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "load"
if load:
    import threading, psutil, torch
    from emokd.train.data import load_frame_data
    torch.set_num_threads(1)
    me, peak = psutil.Process(), [0]   # sampled, as emokd.testing.processes.PeakRSS (not in this checkout)
    def sample():
        while True:
            peak[0] = max(peak[0], me.memory_info().rss)
            time.sleep(0.02)
    threading.Thread(target=sample, daemon=True).start()
    start = time.perf_counter()
    data = load_frame_data(FeatureCache.open(url), ["train"], window=6, stride=10)
    print(json.dumps({"load_s": time.perf_counter() - start, "items": len(data.video_ids), "frames": data.n_frames,
                      "peak_rss": max(peak[0], me.memory_info().rss)}))
    sys.exit()
encoders = [{"name": "bench_face", "kind": "face", "output_dim": face_dim, "layer": "x", "input_spec": {},
             "weights_sha256": "0" * 64},
            {"name": "bench_audio", "kind": "audio", "output_dim": audio_dim, "layer": "x", "input_spec": {},
             "weights_sha256": "1" * 64}]
cache = FeatureCache.create(url, {}, {}, encoders, overwrite=True)
rng = np.random.default_rng(1)
seconds = 0.0
for i in range(n):
    vid = f"affectnet/{i:07d}"
    values = {"face": rng.standard_normal((1, face_dim)).astype(np.float16),
              "audio": rng.standard_normal((1, audio_dim)).astype(np.float16),
              "face_ok": np.ones(1, bool), "audio_ok": np.zeros(1, bool), "pts": np.zeros(1)}
    va, expr = np.clip(rng.standard_normal((1, 2)), -1, 1), rng.integers(0, 8, 1)
    start = time.perf_counter()
    writer = cache.begin_video(vid, 1, {"fps": 30.0, "dataset": "affectnet"})
    for name, array in values.items():
        writer.write(name, 0, array)
    writer.commit()
    cache.write_labels(vid, va=va, expr=expr, split="validation" if i % 10 == 0 else "train", dataset="affectnet")
    seconds += time.perf_counter() - start
print(json.dumps({"seconds": seconds}))
"""


def v1_stills(folder: Path, args, array_bytes: int) -> dict:
    """The version 1 code's own write and load of --today-stills stills (subprocesses on --v1-checkout)."""
    url = (folder / "stills_v1.zarr").resolve()
    env = {**os.environ, "PYTHONPATH": str(Path(args.v1_checkout).resolve()), "OMP_NUM_THREADS": "1"}
    common = [str(url), str(args.today_stills), str(args.face_dim), str(args.audio_dim)]
    run = lambda what: json.loads(subprocess.run([sys.executable, "-c", V1_CHILD, *common, what], env=env, check=True,
                                                 cwd=env["PYTHONPATH"], capture_output=True,   # `-c`: cwd first
                                                 text=True).stdout.strip().splitlines()[-1])
    seconds = run("write")["seconds"]
    n = args.today_stills
    files, size, allocated = disk(url)
    return {"ms_per_item": 1000 * seconds / n, "files_per_item": files / n, "bytes_ratio": size / (n * array_bytes),
            "du_per_item": allocated / n, "n": n, "load": run("load")}


def stills_section(folder: Path, args) -> dict:
    print(f"== stills: {args.stills} packed, {args.today_stills} one group each; {args.face_dim} + {args.audio_dim}-d "
          "float16 features, labels; encoders excluded")
    array_bytes = 2 * (args.face_dim + args.audio_dim) + sum(ROW_ARRAYS.values())
    out = {}
    for name, n, packed in (("packed", args.stills, True), ("today", args.today_stills, False)):
        url = folder / f"stills_{name}.zarr"
        cache = FeatureCache.create(url, {}, {}, encoders(args.face_dim, args.audio_dim), overwrite=True)
        items = [(f"affectnet/{i:07d}", 1) for i in range(n)]
        seconds = write_items(cache, items, args.face_dim, args.audio_dim, 1, packed)
        files, size, allocated = disk(url / "shards")
        out[name] = {"ms_per_item": 1000 * seconds / n, "files_per_item": files / n, "bytes_ratio": size / (n * array_bytes),
                     "du_per_item": allocated / n, "url": str(url), "n": n}
        print(f"{name:7s} write {1000 * seconds / n:7.3f} ms/item ({n / seconds:8,.0f} items/s), "
              f"{files / n:.4f} files/item, {size / n:8,.0f} bytes/item = {size / (n * array_bytes):.3f} x the "
              f"{array_bytes:,} array bytes; {allocated / n:8,.0f} bytes/item allocated (du)")
    if args.v1_checkout:
        out["v1"] = v1_stills(folder, args, array_bytes)
        v1 = out["v1"]
        print(f"v1      write {v1['ms_per_item']:7.3f} ms/item ({1000 / v1['ms_per_item']:8,.0f} items/s), "
              f"{v1['files_per_item']:.4f} files/item, {v1['bytes_ratio'] * array_bytes:8,.0f} bytes/item = "
              f"{v1['bytes_ratio']:.3f} x the {array_bytes:,} array bytes; {v1['du_per_item']:8,.0f} bytes/item allocated (du) "
              f"(schema version 1 code, {args.v1_checkout})")
    for old in ("today", "v1") if args.v1_checkout else ("today",):
        ratio = out[old]["ms_per_item"] / out["packed"]["ms_per_item"]
        print(f"packed vs {old}: writes {ratio:.1f}x faster, "
              f"{out[old]['files_per_item'] / out['packed']['files_per_item']:.0f}x fewer files, "
              f"{out[old]['bytes_ratio'] / out['packed']['bytes_ratio']:.1f}x fewer bytes")
    for name in ("packed", "today", "v1"):
        if name not in out:
            continue
        got = out[name]["load"] if name == "v1" else load_in_fresh_process(out[name]["url"])
        out[name]["load"] = got
        print(f"{name:7s} load {got['items']:,} train items: {got['load_s']:.2f} s "
              f"({1e6 * got['load_s'] / got['items']:.1f} us/item), peak RSS {got['peak_rss'] / 2**30:.2f} GiB "
              f"({got['peak_rss'] / got['frames']:,.0f} B/frame)")
    if args.stills != 400_000:
        per = out["packed"]["load"]["load_s"] / out["packed"]["load"]["items"]
        print(f"        extrapolated to 400,000 stills: write {400_000 * out['packed']['ms_per_item'] / 1000:,.0f} s, "
              f"load {400_000 * per:.1f} s (linear in items)")
    return out


def videos_section(folder: Path, args) -> dict:
    per_video = args.video_frames // args.videos
    print(f"== videos: {args.videos} long videos, {per_video} frames each ({per_video * args.videos:,} frames)")
    url = folder / "videos.zarr"
    cache = FeatureCache.create(url, {}, {}, encoders(args.face_dim, args.audio_dim), overwrite=True)
    items = [(f"affwild2/{v:04d}", per_video) for v in range(args.videos)]
    seconds = write_items(cache, items, args.face_dim, args.audio_dim, 2, packed=True)
    frames = per_video * args.videos
    files, size, _ = disk(url / "shards")
    array_bytes = 2 * (args.face_dim + args.audio_dim) + sum(ROW_ARRAYS.values())
    print(f"write {frames / seconds:,.0f} frames/s; {files / frames:.5f} files/frame, {size / frames:,.0f} bytes/frame "
          f"= {size / (frames * array_bytes):.3f} x the {array_bytes:,} array bytes")
    got = load_in_fresh_process(str(url), epoch=True)
    print(f"load {got['frames']:,} train frames: {got['load_s']:.2f} s ({got['frames'] / got['load_s']:,.0f} frames/s), "
          f"peak RSS {got['peak_rss'] / 2**30:.2f} GiB ({got['peak_rss'] / got['frames']:,.0f} B/frame)")
    print(f"epoch (VA + EXPR proportional batches of 256, gathered, no model): {got['epoch_samples'] / got['epoch_s']:,.0f} "
          "samples/s in memory")
    budget = str(max(1, int(got["memory_bytes"] * args.block_fraction)))
    blocks = load_in_fresh_process(str(url), max_memory=budget, epoch=True)
    print(f"block mode (max_memory {int(budget) / 2**20:,.0f} MiB, {args.block_fraction:.0%} of the features): "
          f"{blocks['epoch_samples'] / blocks['epoch_s']:,.0f} samples/s, {blocks['block_reads']} block reads, "
          f"peak RSS {blocks['peak_rss'] / 2**30:.2f} GiB; ratio to in memory "
          f"{(blocks['epoch_samples'] / blocks['epoch_s']) / (got['epoch_samples'] / got['epoch_s']):.2f}")
    return {"load": got, "blocks": blocks}


def vu2021_section(folder: Path, args) -> dict:
    import re

    from emokd.testing.multidb_cache import MultiDbSpec, write_multidb_cache
    from emokd.train.config import TrainConfig
    from emokd.train.loop import train

    both = args.vu2021_stills // 5
    spec = MultiDbSpec(expr_stills=args.vu2021_stills - both, both_stills=both, va_clips=50, clip_frames=60,
                       val_videos=4, val_frames=1500, face_dim=args.face_dim)
    print(f"== vu2021 end to end: {args.vu2021_stills:,} stills ({spec.expr_stills:,} EXPR-only, {both:,} EXPR+VA), "
          f"{spec.va_clips} VA clips of {spec.clip_frames}, {spec.val_videos} validation videos of {spec.val_frames}; "
          f"{args.face_dim}-d faces")
    url = str(folder / "multidb.zarr")
    start = time.perf_counter()
    write_multidb_cache(url, spec)
    print(f"cache written in {time.perf_counter() - start:.1f} s")
    options = {"hidden": [64], "gru_hidden": 16, "expr_datasets": ["expr_db"], "va_datasets": ["va_db"],
               "expr_va_datasets": ["both_db"], "eval_datasets": ["target"], "temporal": False,
               "rounds": "max"}   # an epoch: the largest set (every EXPR-only still) once
    start = time.perf_counter()
    summary = train(TrainConfig(cache=url, run=str(folder / "vu2021_run"), recipe="vu2021", recipe_options=options,
                                epochs=1, batch_size=256, window=1, stride=1, device="cpu", export_soft=False))
    total = time.perf_counter() - start
    text = (folder / "vu2021_run" / "train.log").read_text()
    loaded = re.search(r"loaded (\d+) items, (\d+) frames, ([\d.]+) MB in ([\d.]+) s", text)
    print(f"trained 1 epoch in {total:.1f} s (best {summary['score_key']} {summary['best_score']:.3f}); load: "
          f"{int(loaded.group(1)):,} items, {int(loaded.group(2)):,} frames in {float(loaded.group(4)):.2f} s")
    return {"load_s": float(loaded.group(4)), "total_s": total}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stills", type=int, default=20_000)
    parser.add_argument("--today-stills", type=int, default=5_000)
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--video-frames", type=int, default=100_000)
    parser.add_argument("--face-dim", type=int, default=512)
    parser.add_argument("--audio-dim", type=int, default=1000)
    parser.add_argument("--block-fraction", type=float, default=0.25, help="max_memory of block mode, of the features")
    parser.add_argument("--work", help="folder for the caches (default: a temporary one, removed)")
    parser.add_argument("--vu2021-stills", type=int, default=50_000)
    parser.add_argument("--v1-checkout", help="an emokd checkout at schema version 1: its own write/load path too")
    parser.add_argument("--skip", choices=["stills", "videos", "vu2021"], action="append", default=[])
    parser.add_argument("--_load", help=argparse.SUPPRESS)             # the load child's own flags
    parser.add_argument("--_epoch", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--_max-memory", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._load:
        return _load_child(args._load, args._max_memory, args._epoch)
    folder = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="emokd-bench-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        if "stills" not in args.skip:
            stills_section(folder, args)
        if "videos" not in args.skip:
            videos_section(folder, args)
        if "vu2021" not in args.skip:
            vu2021_section(folder, args)
    finally:
        if not args.work:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
