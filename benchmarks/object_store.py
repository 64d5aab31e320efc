"""The cache on S3 (moto's server on loopback) against local disk, in one run: extraction frames/s,
training load time, and the requests and bytes per item.

    .venv/bin/python benchmarks/object_store.py [--videos 4] [--seconds 5] [--workers 2] [--repeat 2]
                                                [--pack-frames N]

1. Generates labelled clips (96x96 at 30 fps, speech-like audio, a drawn face; `--seconds` each),
   uploads them to a bucket of a moto S3 server started on 127.0.0.1 (a separate process).
2. Extraction with warm workers (a LocalCluster whose workers already built their encoders): the
   local manifest into a cache on local disk, and the URL manifest (videos streamed from the bucket
   to the workers' scratch) into a cache in the bucket; alternated `--repeat` times, best of each.
3. Training's load (`load_frame_data`, every video of train and validation into memory) from each
   cache, best of `--repeat`; from S3 also with one shard read after another (the loader before
   it read several at once: `emokd.train.reading.READ_THREADS`), alternated with the default.
4. The requests the server logged per item while extracting into S3 (by method and by object:
   cache, source video, lease) and while loading, and the bytes stored per item. Clips of at most
   `--pack-frames` frames share a shard (the extraction default); `--pack-frames 0` gives each its
   own, as schema version 1 stored every video.

moto is a Python server on loopback: per request it is slower than S3 itself and has no network
latency, so the ratios bound the cost of the object-store code path, not that of a real region.
The machine is shared; run it twice and compare.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

REQUEST = re.compile(r'"(GET|PUT|HEAD|POST|DELETE) (\S+) HTTP/[\d.]+" (\d{3})')


def requests_since(log: Path, offset: int) -> tuple[collections.Counter, int]:
    """(method, kind) -> count of the requests moto logged after `offset`, and the new offset."""
    text = log.read_bytes()[offset:].decode(errors="replace")
    counts: collections.Counter = collections.Counter()
    for method, path, _status in REQUEST.findall(text):
        kind = "lease" if ".lease" in path else "source" if path.split("?")[0].endswith(".mp4") else "cache"
        counts[("LIST" if method == "GET" and "list-type=" in path else method, kind)] += 1
    return counts, offset + len(text.encode())


def best_extraction(items, url, cfg, client, repeat: int, overwrite_url) -> float:
    from emokd.extract.driver import run_extraction

    best = 0.0
    for _ in range(repeat):
        overwrite_url(url)
        summary = run_extraction(items, url, cfg, progress=False, client=client)
        assert summary.failed == 0, summary.failures
        best = max(best, summary.frames_per_second)
    return best


def load_seconds(url: str, storage_options: dict | None, repeat: int, threads: int | None = None) -> float:
    """Best of `repeat` loads; `threads`: shards read at once (None: emokd's READ_THREADS)."""
    from emokd.cache import FeatureCache
    from emokd.train import reading
    from emokd.train.data import load_frame_data

    default = reading.READ_THREADS
    reading.READ_THREADS = default if threads is None else threads
    best = float("inf")
    try:
        for _ in range(repeat):
            start = time.perf_counter()
            cache = FeatureCache.open(url, storage_options=storage_options)
            load_frame_data(cache, ["train", "validation"], 6, 10, device="cpu", train_split="train")
            best = min(best, time.perf_counter() - start)
    finally:
        reading.READ_THREADS = default
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--pack-frames", type=int, default=None, help="default: extraction's")
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    from emokd.cache import FeatureCache, location
    from emokd.extract.config import ExtractConfig
    from emokd.index.dataset import index_dataset
    from emokd.testing.s3_server import s3_server
    from emokd.testing.url_dataset import write_url_dataset

    work = Path(tempfile.mkdtemp(prefix="emokd-bench-s3-"))
    try:
        with s3_server(work / "moto") as s3:
            os.environ.update(s3.env)  # the driver and the workers reach the server the standard way
            fs = s3.filesystem()
            s3.make_bucket("bench")
            clips = write_url_dataset(work / "clips", fs, "s3://bench/videos", n_videos=args.videos,
                                      n_frames=int(round(args.seconds * 30)))
            local_items = index_dataset(clips.local_manifest).items
            url_items = index_dataset(clips.url_manifest).items
            frames = sum(clips.n_frames.values())
            cfg = ExtractConfig(face_source="whole-frame", workers=args.workers)
            if args.pack_frames is not None:
                cfg = dataclasses.replace(cfg, pack_frames=args.pack_frames)
            local_url, s3_url = str(work / "local.zarr"), "s3://bench/caches/clips.zarr"

            def fresh(url: str) -> None:  # every repeat extracts into an empty store
                if location.is_local(url):
                    shutil.rmtree(url, ignore_errors=True)
                elif fs.exists(url[5:]):
                    fs.rm(url[5:], recursive=True)

            cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                   dashboard_address=":0", env={"OMP_NUM_THREADS": "1", **s3.env})
            with Client(cluster) as client:
                best_extraction(local_items[:1], str(work / "warm.zarr"), cfg, client, 1, fresh)  # encoders
                local_fps = s3_fps = 0.0
                for _ in range(args.repeat):  # alternated, so that load on the machine hits both
                    local_fps = max(local_fps, best_extraction(local_items, local_url, cfg, client, 1, fresh))
                    fresh(s3_url)
                    _, offset = requests_since(s3.log, 0)
                    s3_fps = max(s3_fps, best_extraction(url_items, s3_url, cfg, client, 1, lambda url: None))
                    extract_requests, offset = requests_since(s3.log, offset)
            cluster.close()
            local_load = load_seconds(local_url, None, args.repeat)
            _, offset = requests_since(s3.log, offset)
            s3_load = load_seconds(s3_url, None, 1)
            load_requests, offset = requests_since(s3.log, offset)
            serial_loads = []                        # the previous loader: one shard after another
            for _ in range(args.repeat):             # alternated with the threaded one
                serial_loads.append(load_seconds(s3_url, None, 1, threads=1))
                s3_load = min(s3_load, load_seconds(s3_url, None, 1))
            s3_serial = min(serial_loads)
            stored = location.size_on_disk(s3_url)
            s3_cache = FeatureCache.open(s3_url)
            n, shards = len(s3_cache.video_ids()), len(s3_cache.shard_keys())
            assert n == args.videos

        print(f"{args.videos} videos, {frames} frames ({args.seconds:g} s each, 96x96), {args.workers} workers, "
              f"best of {args.repeat}; moto {s3.endpoint} (loopback); pack_frames {cfg.pack_frames}: {shards} shard(s)")
        print(f"| measure | local disk | S3 (moto, loopback) | S3 / local |")
        print(f"|---|---|---|---|")
        print(f"| extraction, warm workers (frames/s) | {local_fps:.1f} | {s3_fps:.1f} | {s3_fps / local_fps:.2f} |")
        print(f"| training load, {frames} frames (s) | {local_load:.3f} | {s3_load:.3f} | {s3_load / local_load:.2f} |")
        print(f"| training load, one shard after another (s) | | {s3_serial:.3f} | "
              f"threaded {s3_serial / s3_load:.2f}x faster |")
        print()
        print(f"requests per item (one S3 extraction of {n} videos in {shards} shard(s); one load):")
        print("| phase | object | method | requests per item |")
        print("|---|---|---|---|")
        for phase, counts in (("extraction", extract_requests), ("training load", load_requests)):
            for (method, kind), count in sorted(counts.items(), key=lambda kv: (kv[0][1], kv[0][0])):
                print(f"| {phase} | {kind} | {method} | {count / n:.1f} |")
        print(f"\nbytes stored per item: {stored / n:,.0f} ({stored / frames:,.0f} per frame)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
