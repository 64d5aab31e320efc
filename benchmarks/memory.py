"""Peak memory of extraction, driver and worker, against video length and frame size.

    .venv/bin/python benchmarks/memory.py [--minutes 1 2] [--paths whole-frame detector]
        [--decoders pyav [decord]] [--k4-seconds 2] [--no-previous]

Default: 1- and 2-minute videos, PyAV only (about 4 minutes). Documented run (docs/benchmarks.md,
20 minutes): `--minutes 1 10 --decoders pyav decord`.

1. Generated videos: 320x240 at 30 fps, a textured picture with a face, speech-like AAC audio at
   44.1 kHz, a keyframe every 2 s, for each length in `--minutes`; and a 3840x2160 clip of
   `--k4-seconds`.
2. Each case runs in a fresh driver process with its own one-worker Dask LocalCluster, as
   `emokd extract-features` does: peak RSS (sampled every 20 ms) of the driver and of the worker
   process (encoders loaded, one video extracted). Paths: whole-frame faces (the decoder scales to the
   crop) and the face detector (full frames decoded); decoders: PyAV (the default) and decord (the
   default before: its threaded decoder reads ahead while the encoders work). The goal: the longest
   video's worker peak within 1.2x the 1-minute one's.
3. The previous approaches side by side, each in a fresh process: the audio of the longest video
   decoded whole, then resampled in one go (the old `load_audio`) against the streamed decode
   (peak RSS growth); the 4K clip decoded at full size in batches of 64 frames (the old fixed
   batch) against batches sized by pixels, with each decoder.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from emokd.testing.processes import PeakRSS  # noqa: E402


def start_worker_peak(dask_worker) -> None:
    dask_worker.emokd_peak = PeakRSS()


def stop_worker_peak(dask_worker) -> float:
    return dask_worker.emokd_peak.stop()


def make_videos(root: Path, minutes: list[float], k4_seconds: float) -> dict[str, Path]:
    from emokd.testing.videos import make_video

    videos = {}
    for m in minutes:
        path = root / f"talk_{m:g}min.mp4"
        t = time.perf_counter()
        make_video(path, int(round(m * 60 * 30)), 30, (320, 240), audio="speechlike", audio_rate=44100,
                   face=True, texture=True, gop=60)
        videos[f"{m:g} min"] = path
        print(f"generated {path.name} in {time.perf_counter() - t:.0f} s", flush=True)
    if k4_seconds > 0:
        path = root / "clip_4k.mp4"
        make_video(path, int(round(k4_seconds * 30)), 30, (3840, 2160), audio="speechlike", face=True, gop=30)
        videos["4K"] = path
    return videos


def child_extract(path: str, face_source: str, decoder: str, cache: str) -> dict:
    """One extraction as the CLI runs it (driver + one worker); peaks of both."""
    from emokd.extract.config import ExtractConfig
    from emokd.extract.driver import dask_client, run_extraction
    from emokd.index.dataset import index_dataset

    manifest = Path(cache).with_suffix(".csv")
    manifest.write_text(f"video\n{path}\n")
    items = index_dataset(manifest).items
    cfg = ExtractConfig(face_source=face_source, workers=1, video_decoder=decoder).resolved()
    driver = PeakRSS()
    t = time.perf_counter()
    with dask_client(1) as client:
        client.run(start_worker_peak)
        summary = run_extraction(items, cache, cfg, progress=False, client=client)
        worker = max(client.run(stop_worker_peak).values())
    assert summary.failed == 0, summary.failures
    return {"frames": summary.frames, "seconds": time.perf_counter() - t, "driver": driver.stop(), "worker": worker,
            "pyav": len(summary.pyav)}


def previous_load_audio(path: Path, info) -> int:
    """The audio as it was decoded before: every frame kept, concatenated, resampled in one go."""
    import av
    import numpy as np
    import soxr

    pieces, rate = [], 0
    with av.open(str(path)) as container:
        for frame in container.decode(container.streams.audio[0]):
            rate = frame.sample_rate
            data = frame.to_ndarray()
            pieces.append(data.astype(np.float32).mean(axis=0) if data.ndim > 1 else data.astype(np.float32))
    samples = np.concatenate(pieces)
    return len(soxr.resample(samples, rate, 22050, quality="HQ").astype(np.float32))


def child_audio(path: str, how: str) -> dict:
    from emokd.extract.audio import load_audio
    from emokd.index.probe import probe_video

    info = probe_video(path)
    peak = PeakRSS()
    t = time.perf_counter()
    n = previous_load_audio(Path(path), info) if how == "whole" else len(load_audio(path, info).signal)
    return {"growth": peak.stop() - peak.start, "seconds": time.perf_counter() - t, "samples": n}


def child_batches(path: str, how: str, decoder: str) -> dict:
    """Full-size 4K frames (what the detector path decodes) in batches of 64 frames or by pixels."""
    from emokd.extract import video
    from emokd.index.probe import probe_video

    info = probe_video(path)
    if how == "64 frames":
        video.DECODE_BATCH_BYTES = 1 << 60
    peak = PeakRSS()
    t = time.perf_counter()
    sizes = [len(frames) for _, frames in video.decode_batches(path, info, info.n_frames, 64, decoder=decoder)]
    return {"growth": peak.stop() - peak.start, "seconds": time.perf_counter() - t, "batch": max(sizes)}


def run_child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 2])
    parser.add_argument("--paths", nargs="+", default=["whole-frame", "detector"])
    parser.add_argument("--decoders", nargs="+", default=["pyav"], choices=["pyav", "decord"])
    parser.add_argument("--k4-seconds", type=float, default=2.0, help="length of the 4K clip (0: none)")
    parser.add_argument("--no-previous", action="store_true", help="skip the previous approaches (part 3)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        result = {"extract": child_extract, "audio": child_audio, "batches": child_batches}[kind](*rest)
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory(prefix="emokd-bench-memory-") as folder:   # removed at the end
        tmp = Path(folder)
        videos = make_videos(tmp, sorted(args.minutes), args.k4_seconds)
        print(f"{'case':<32} {'frames':>7} {'driver MiB':>11} {'worker MiB':>11} {'worker / first':>15} {'wall s':>8}")
        for decoder in args.decoders:
            for face_source in args.paths:
                first = None
                for name, path in videos.items():
                    cache = str(tmp / f"{decoder}_{face_source}_{name}.zarr".replace(" ", ""))
                    r = run_child("extract", str(path), face_source, decoder, cache)
                    first = first or r["worker"]
                    case = f"{decoder}, {face_source}, {name}"
                    print(f"{case:<32} {r['frames']:>7} {r['driver']:>11.0f} {r['worker']:>11.0f} "
                          f"{r['worker'] / first:>15.2f} {r['seconds']:>8.0f}", flush=True)
        if args.no_previous:
            return
        longest = videos[f"{max(args.minutes):g} min"]
        whole, streamed = run_child("audio", str(longest), "whole"), run_child("audio", str(longest), "streamed")
        print(f"audio of {longest.name}: decoded whole + one resample {whole['growth']:.0f} MiB peak growth "
              f"({whole['seconds']:.1f} s); streamed {streamed['growth']:.0f} MiB ({streamed['seconds']:.1f} s); "
              f"ratio {whole['growth'] / max(streamed['growth'], 1):.1f}x")
        for decoder in args.decoders if "4K" in videos else ():
            fixed, sized = (run_child("batches", str(videos["4K"]), how, decoder) for how in ("64 frames", "by pixels"))
            print(f"4K decode with {decoder}, full frames: batches of {fixed['batch']} frames {fixed['growth']:.0f} MiB "
                  f"peak growth ({fixed['seconds']:.1f} s); batches of {sized['batch']} frames (by pixels) "
                  f"{sized['growth']:.0f} MiB ({sized['seconds']:.1f} s); ratio "
                  f"{fixed['growth'] / max(sized['growth'], 1):.1f}x", flush=True)


if __name__ == "__main__":
    main()
