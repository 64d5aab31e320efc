"""What the data-safety checks of a rerun cost: planning with the skip checks against trusting
`status: complete` alone, and `--overwrite`'s staged swap against deleting in place.

    .venv/bin/python benchmarks/safety.py [--videos 200] [--frames 300] [--source-mib 3]

A cache of --videos complete videos (default encoder widths, --frames frames each) whose sources are
--source-mib MiB files is planned three ways, in one run:
  naive      : the complete ids only (what reruns did before: `status: complete` trusted)
  checked    : emokd's plan (extract/plan.py): per video the cheap array check (metadata and chunk
               counts) and the source's size and mtime
  touched    : the same after every source's mtime moved (a copy without -p): the 2 MiB head/tail
               hash of each file is read too
Then --overwrite of that cache: the staged swap (new store beside, one rename, old deleted) against
zarr's delete-in-place followed by the same creation. Figures in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from emokd.cache import FeatureCache
from emokd.cache import location
from emokd.cache.source_identity import source_identity
from emokd.extract.plan import plan_work
from emokd.index.manifest import VideoItem

ENCODERS = [{"name": "fer_pyemotion", "kind": "face", "output_dim": 256, "layer": "fc", "input_spec": {},
             "weights_sha256": "0" * 64},
            {"name": "soundnet8", "kind": "audio", "output_dim": 1000, "layer": "conv8", "input_spec": {},
             "weights_sha256": "1" * 64}]
SETTINGS = {"bench": True}


def build(folder: Path, n_videos: int, n_frames: int, source_mib: int) -> tuple[str, list]:
    url = str(folder / "cache.zarr")
    cache = FeatureCache.create(url, SETTINGS, {}, ENCODERS)
    rng = np.random.default_rng(0)
    values = {"face": rng.standard_normal((n_frames, 256)).astype(np.float16),
              "audio": rng.standard_normal((n_frames, 1000)).astype(np.float16),
              "face_ok": np.ones(n_frames, bool), "audio_ok": np.ones(n_frames, bool),
              "pts": np.arange(n_frames) / 30.0}
    items = []
    for v in range(n_videos):
        source = folder / "videos" / f"v{v:04d}.mp4"
        source.parent.mkdir(exist_ok=True)
        source.write_bytes(os.urandom(source_mib << 20))
        writer = cache.begin_video(f"v{v:04d}", n_frames, {"fps": 30.0, "source": source_identity(source)})
        for name, array in values.items():
            writer.write(name, 0, array)
        writer.commit()
        items.append(VideoItem(f"v{v:04d}", source, None, None, "train"))
    return url, items


def timed(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=200)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--source-mib", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="emokd-bench-safety-"))
    try:
        url, items = build(folder, args.videos, args.frames, args.source_mib)
        cache = FeatureCache.open(url)
        def naive_plan():
            complete = set(cache.video_ids())
            return [i for i in items if i.video_id not in complete]

        naive = timed(naive_plan)
        checked = timed(lambda: plan_work(cache, items, SETTINGS, ENCODERS))
        for item in items:
            stat = item.video_path.stat()
            os.utime(item.video_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        touched = timed(lambda: plan_work(cache, items, SETTINGS, ENCODERS), repeats=1)
        assert len(plan_work(cache, items, SETTINGS, ENCODERS).complete) == args.videos
        n = args.videos
        print(f"planning a rerun of {n} complete videos ({args.frames} frames, {args.source_mib} MiB sources):")
        print(f"  naive (status only)        {naive * 1e3:8.1f} ms  ({naive / n * 1e3:.2f} ms/video)")
        print(f"  checked (arrays + sources) {checked * 1e3:8.1f} ms  ({checked / n * 1e3:.2f} ms/video)"
              f"  = {checked / naive:.0f}x naive")
        print(f"  touched (+ 2 MiB hash)     {touched * 1e3:8.1f} ms  ({touched / n * 1e3:.2f} ms/video)")

        copy = folder / "copy.zarr"
        shutil.copytree(url, copy)
        size = location.size_on_disk(url)
        start = time.perf_counter()
        FeatureCache.create(str(copy), {"bench": 2}, {}, ENCODERS, overwrite=True)
        staged = time.perf_counter() - start
        shutil.copytree(url, folder / "inplace.zarr")
        start = time.perf_counter()
        location.open_root(str(folder / "inplace.zarr"), "w")  # zarr's delete-in-place, then create
        FeatureCache.create(str(folder / "inplace.zarr"), {"bench": 2}, {}, ENCODERS)
        in_place = time.perf_counter() - start
        print(f"--overwrite of a {size / 2**20:.0f} MiB cache: staged swap {staged:.2f} s, delete in place "
              f"{in_place:.2f} s ({staged / in_place:.2f}x)")
        print("(a shared, noisy machine: compare the ratios, not the seconds)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
