"""Decoding alone: PyAV against decord, and PyAV's scaler on one thread against its default.

    .venv/bin/python benchmarks/decoders.py [--seconds 10] [--repeat 3]

Generated clips (`make_video`: textured picture with a face, 30 fps, a keyframe every 2 s) at
320x240 and 1280x720, decoded to RGB at full size (the detector path) and scaled to a 112-pixel
short side (whole-frame faces), every frame in order, in one process:
- pyav:          `emokd.extract.video.decode_batches(decoder="pyav")`, the default: one swscale
                 context on one thread for the whole video (`verify.rgb_converter`);
- pyav, default threads: the same decode, each frame converted by `frame.reformat` (swscale asked
                 for a thread per CPU, set up for every frame: how emokd converted before);
- decord:        `decode_batches(decoder="decord")`, its check against PyAV included.
Wall and CPU seconds (all threads) per frame, the best of `--repeat` interleaved rounds, and the
ratio to decord's. The machine is shared: CPU time is the steadier figure.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import av  # noqa: E402
import numpy as np  # noqa: E402

from emokd.extract.video import decode_batches  # noqa: E402
from emokd.index.probe import probe_video  # noqa: E402
from emokd.testing.videos import make_video  # noqa: E402

SIZES = {"320x240": (320, 240), "1280x720": (1280, 720)}
SCALED = (150, 112)   # what whole-frame faces ask of a 4:3 picture


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def frame_reformat(path: Path, size) -> int:
    """PyAV decode with `frame.reformat` per frame (swscale's default threads)."""
    scale = {"width": size[0], "height": size[1]} if size else {}
    n = 0
    with av.open(str(path)) as container:
        for frame in container.decode(container.streams.video[0]):
            frame.reformat(format="rgb24", **scale).to_ndarray()
            n += 1
    return n


def emokd_decode(path: Path, size, decoder: str) -> int:
    info = probe_video(path)
    return sum(len(frames) for _, frames in decode_batches(path, info, info.n_frames, 64, size, decoder=decoder))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    kinds = {"pyav": lambda p, s: emokd_decode(p, s, "pyav"),
             "pyav, default threads": frame_reformat,
             "decord": lambda p, s: emokd_decode(p, s, "decord")}
    with tempfile.TemporaryDirectory(prefix="emokd-bench-decoders-") as tmp:
        print(f"{'clip':<10} {'output':<8} {'decoder':<22} {'wall ms/frame':>14} {'CPU ms/frame':>13} "
              f"{'CPU / decord':>13}")
        for name, size in SIZES.items():
            path = make_video(Path(tmp) / f"{name}.mp4", int(round(args.seconds * 30)), 30, size, audio=None,
                              face=True, texture=True, gop=60).path
            for scaled in (None, SCALED):
                best = {k: [np.inf, np.inf] for k in kinds}
                for _ in range(args.repeat):
                    for kind, run in kinds.items():
                        t, c = time.perf_counter(), cpu_seconds()
                        n = run(path, scaled)
                        wall, cpu = (time.perf_counter() - t) / n, (cpu_seconds() - c) / n
                        best[kind] = [min(best[kind][0], wall), min(best[kind][1], cpu)]
                for kind, (wall, cpu) in best.items():
                    output = "full" if scaled is None else f"{scaled[0]}x{scaled[1]}"
                    print(f"{name:<10} {output:<8} {kind:<22} {1000 * wall:>14.2f} {1000 * cpu:>13.2f} "
                          f"{cpu / best['decord'][1]:>13.2f}", flush=True)


if __name__ == "__main__":
    main()
