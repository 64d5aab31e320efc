"""Training's load from a cache behind a store with a round-trip latency, as an object store in a
cloud region has: emokd's loader (the index's metadata fetched concurrently by zarr, up to
READ_THREADS shards read at once) against the previous one (the index read shard by shard, every
shard read one after the other), alternated in one run, best of `--repeat`.

    .venv/bin/python benchmarks/load_latency.py [--videos 32] [--frames 300] [--latency-ms 10 30]
                                                [--repeat 2]

The cache is a generated one (512-d face, 1000-d audio features, one shard per video) on local disk,
opened through zarr's LatencyStore, which delays every read by the latency without using the CPU
(a request in flight, not a busy server): the ratio isolates what concurrency saves on latency.
A loopback moto server cannot show it, since its cost is CPU on the same cores
(benchmarks/object_store.py). Real stores differ in latency (5-100 ms) and in how many requests
they serve at once; the machine is shared.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import zarr
from zarr.testing.store import LatencyStore

from emokd.cache import FeatureCache, items, location
from emokd.train import reading
from emokd.train.data import load_frame_data
from emokd.testing.caches import SyntheticSpec, write_synthetic_cache


def previous_index_read(root: zarr.Group) -> items.ItemIndex:
    """The index read before: each shard's group and then each of its arrays, one after the other."""
    if items.SHARDS not in root:
        return items.ItemIndex({})
    shards = {}
    for key, group in root[items.SHARDS].groups():
        attrs = dict(group.attrs)
        table = items.ItemTable.from_attrs(attrs["items"]) if "items" in attrs else None
        sets = {name: dict(array.attrs) for name, array in group.arrays()
                if "set" in array.attrs and "fingerprint" in array.attrs}
        shards[key] = items.ShardState(key, attrs, table, sets)
    return items.ItemIndex(shards)


def timed_load(url: str, previous: bool) -> tuple[float, int]:
    current_read, threads = items.ItemIndex.read, reading.READ_THREADS
    if previous:
        items.ItemIndex.read, reading.READ_THREADS = classmethod(lambda cls, root: previous_index_read(root)), 1
    try:
        start = time.perf_counter()
        data = load_frame_data(FeatureCache.open(url), ["train", "validation"])
        return time.perf_counter() - start, data.n_frames
    finally:
        items.ItemIndex.read, reading.READ_THREADS = current_read, threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=32)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[10.0, 30.0])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="emokd-bench-latency-") as work:
        url = str(Path(work) / "c.zarr")
        spec = SyntheticSpec(n_videos=args.videos, frames_per_video=args.frames, face_dim=512, audio_dim=1000)
        write_synthetic_cache(url, spec)
        local_store = location.make_store
        print(f"{args.videos} videos x {args.frames} frames, one shard each; READ_THREADS {reading.READ_THREADS}; "
              f"best of {args.repeat}, alternated")
        print("| latency per read | previous loader (s) | emokd (s) | emokd faster |")
        print("|---|---|---|---|")
        for latency in args.latency_ms:
            location.make_store = lambda *a, **k: LatencyStore(local_store(*a, **k), get_latency=latency / 1000)
            try:
                best = {True: float("inf"), False: float("inf")}
                for _ in range(args.repeat):
                    for previous in (True, False):
                        seconds, frames = timed_load(url, previous)
                        best[previous] = min(best[previous], seconds)
            finally:
                location.make_store = local_store
            print(f"| {latency:g} ms | {best[True]:.2f} | {best[False]:.2f} | {best[True] / best[False]:.2f}x |")
        print(f"({frames} frames loaded)")


if __name__ == "__main__":
    main()
