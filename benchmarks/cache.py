"""Cache write/read/list speed: emokd's chunk-buffered VideoWriter against naive per-batch writes.

    .venv/bin/python benchmarks/cache.py [--frames 8000] [--batch 64] [--videos 300]

One video with the default encoders' widths (face 256, audio 1000, float16) plus face_ok,
audio_ok, pts is written in batches of --batch frames, as an extraction task does:
  naive   : `array[start:stop] = batch` into the chunked arrays (each batch smaller than a chunk
            costs a read-modify-write of the whole chunk)
  emokd   : VideoWriter.write (rows buffered per chunk, each chunk stored once)
Then: whole-video read speed, bytes per frame on disk, and listing --videos complete videos.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from emokd.cache import FeatureCache
from emokd.cache.location import size_on_disk

ENCODERS = [{"name": "fer_pyemotion", "kind": "face", "output_dim": 256, "layer": "fc", "input_spec": {},
             "weights_sha256": "0" * 64},
            {"name": "soundnet8", "kind": "audio", "output_dim": 1000, "layer": "conv8", "input_spec": {},
             "weights_sha256": "1" * 64}]


def make_values(n: int) -> dict:
    rng = np.random.default_rng(0)
    return {"face": rng.standard_normal((n, 256)).astype(np.float16),
            "audio": rng.standard_normal((n, 1000)).astype(np.float16),
            "face_ok": rng.random(n) < 0.9, "audio_ok": np.ones(n, bool), "pts": np.arange(n) / 30.0}


def write(cache: FeatureCache, vid: str, values: dict, batch: int, naive: bool) -> float:
    n = len(values["pts"])
    start_time = time.perf_counter()
    writer = cache.begin_video(vid, n, {"fps": 30.0})
    for start in range(0, n, batch):
        for name, array in values.items():
            if naive:
                rows, stored = writer.shard.rows, writer.shard.name_of(name)
                rows.array(stored)[start:start + batch] = array[start:start + batch]
                rows._written[stored][start:start + batch] = True
            else:
                writer.write(name, start, array[start:start + batch])
    writer.commit()
    return time.perf_counter() - start_time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=8000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--videos", type=int, default=300)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="emokd-bench-cache-"))
    try:
        cache = FeatureCache.create(folder / "c.zarr", {"bench": 1}, {}, ENCODERS)
        values = make_values(args.frames)
        t_naive = write(cache, "naive", values, args.batch, naive=True)
        t_emokd = write(cache, "buffered", values, args.batch, naive=False)
        for vid in ("naive", "buffered"):
            got = cache.read_video(vid)
            assert all(np.array_equal(got[k], values[k]) for k in values), vid
        n = args.frames
        print(f"write {n} frames in batches of {args.batch}: naive {n / t_naive:,.0f} frames/s, "
              f"emokd {n / t_emokd:,.0f} frames/s, ratio {t_naive / t_emokd:.1f}x")
        t0 = time.perf_counter()
        reps = 5
        for _ in range(reps):
            cache.read_video("buffered")
        t_read = (time.perf_counter() - t0) / reps
        mib = sum(a.nbytes for a in values.values()) / 2**20
        print(f"read one whole video: {n / t_read:,.0f} frames/s ({mib / t_read:,.0f} MiB/s)")
        cache.delete_video("naive")
        per_frame = size_on_disk(cache.url) / n
        print(f"bytes per frame on disk: {per_frame:,.0f} (arrays alone: {2 * (256 + 1000) + 1 + 1 + 8})")
        small = make_values(30)
        for i in range(args.videos):
            write(cache, f"ds/{i:04d}", small, 30, naive=False)
        t0 = time.perf_counter()
        ids = FeatureCache.open(cache.url).video_ids()
        t_list = time.perf_counter() - t0
        print(f"list {len(ids)} complete videos: {t_list * 1000:,.0f} ms")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
