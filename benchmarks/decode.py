"""Frames/s of per-frame input production against plain decoding, on generated 360p and 720p clips.

    .venv/bin/python benchmarks/decode.py [--seconds 8] [--sizes 360p,720p] [--processes 1,2]

Measured per clip, one process and N processes each working on its own copy of the clip:
- decode:        decord, every frame in order, batches of 32 (the baseline)
- inputs/frame:  probe_item + iter_face_batches without crops: decode (the default decoder, PyAV,
                 scaling to the crop's short side) + centre-square face (112 x 112), and a 10 s audio window per frame
                 (load_audio: PyAV audio decode, soxr; audio_windows), as the extraction task cuts them
- inputs/crops:  the same with a cropped_aligned folder: crop JPEGs + audio windows
                 (the video's pixels are not decoded at all: that is the Aff-Wild2 case)
The goal: producing inputs costs at most 1.3x plain decoding (ratio <= 1.3).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from emokd.extract.audio import load_audio  # noqa: E402
from emokd.extract.faces import iter_face_batches  # noqa: E402
from emokd.extract.timing import probe_item, window_end_samples, window_samples  # noqa: E402
from emokd.index.manifest import VideoItem  # noqa: E402
from emokd.models.audio_windows import audio_windows  # noqa: E402
from emokd.testing.videos import draw_frame, make_video, square_crop  # noqa: E402

SIZES = {"360p": (640, 360), "720p": (1280, 720)}
BATCH = 32


def run_decode(path: str) -> int:
    import decord

    reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
    n = len(reader)
    for start in range(0, n, BATCH):
        reader.get_batch(list(range(start, min(start + BATCH, n)))).asnumpy()
    return n


def run_inputs(path: str, crop_dir: str | None) -> int:
    item = VideoItem("bench", Path(path), None if crop_dir is None else Path(crop_dir), None, "unlabelled")
    probe = probe_item(item)
    track = load_audio(item.video_path, probe.info)
    ends, window = window_end_samples(probe.info), window_samples()
    n = 0
    for batch in iter_face_batches(item, probe, BATCH):
        audio = audio_windows(track.signal, ends[batch.index], window)
        assert audio.shape == (len(batch.index), window) and batch.faces.shape[1] == 112
        n += len(batch.index)
    return n


def job(args: tuple) -> tuple[int, float]:
    kind, path, crop_dir = args
    start = time.perf_counter()
    n = run_decode(path) if kind == "decode" else run_inputs(path, crop_dir)
    return n, time.perf_counter() - start


def measure(copies: list[tuple[str, str]], processes: int, repeats: int) -> dict[str, list[float]]:
    """Aggregate frames/s of `processes` workers, each on its own copy, per kind and repeat.

    The kinds run interleaved within each repeat, so a change of machine load (this machine is
    shared) hits all of them alike; ratios are taken per repeat.
    """
    kinds = ("decode", "inputs/frame", "inputs/crops")
    out: dict[str, list[float]] = {k: [] for k in kinds}
    with ProcessPoolExecutor(processes) as pool:
        for kind in kinds:                                          # warm-up: imports, page cache
            list(pool.map(job, [(kind, p, c) for p, c in copies[:processes]]))
        for _ in range(repeats):
            for kind in kinds:
                tasks = [(kind, p, c if kind == "inputs/crops" else None) for p, c in copies[:processes]]
                start = time.perf_counter()
                frames = sum(n for n, _ in pool.map(job, tasks))
                out[kind].append(frames / (time.perf_counter() - start))
    return out


def make_clip(folder: Path, label: str, size: tuple[int, int], seconds: float, copies: int):
    n = int(seconds * 30)
    first = make_video(folder / f"{label}_0.mp4", n, 30, size, audio="speechlike", texture=True, face=True)
    crops = folder / f"{label}_crops"
    crops.mkdir()
    for k in range(n):
        Image.fromarray(square_crop(draw_frame(k, size, face=True), 112)).save(crops / f"{k + 1:05d}.jpg",
                                                                               quality=90)
    out = [(str(first.path), str(crops))]
    for i in range(1, copies):
        dst = folder / f"{label}_{i}.mp4"
        shutil.copy(first.path, dst)
        out.append((str(dst), str(crops)))
    return n, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--sizes", default="360p,720p")
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    procs = [int(p) for p in args.processes.split(",")]
    print(f"cpu cores: {os.cpu_count()}; load average {os.getloadavg()[0]:.1f} at start; "
          f"clip {args.seconds:g} s at 30 fps, h264 + AAC, batch {BATCH}")
    print(f"{'clip':6} {'procs':>5} {'decode fps':>11} {'inputs/frame fps':>17} {'ratio':>6} "
          f"{'inputs/crops fps':>17} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for label in args.sizes.split(","):
            n, copies = make_clip(Path(tmp), label, SIZES[label], args.seconds, max(procs))
            for p in procs:
                fps = measure(copies, p, args.repeats)
                d = np.array(fps["decode"])
                ratios = {k: float(np.median(d / np.array(fps[k]))) for k in ("inputs/frame", "inputs/crops")}
                print(f"{label:6} {p:>5} {np.median(d):>11.0f} {np.median(fps['inputs/frame']):>17.0f} "
                      f"{ratios['inputs/frame']:>6.2f} {np.median(fps['inputs/crops']):>17.0f} "
                      f"{ratios['inputs/crops']:>6.2f}", flush=True)
    print("fps: median over repeats; ratio: median over repeats of (input-production time / decode time) "
          "per frame (goal <= 1.3)")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
