"""Throughput of every frozen encoder (items/s) at a few batch sizes, fp32 vs channels-last / bf16.

All runs use torch.inference_mode on already-prepared tensors (prepare() is timed apart as
"prep"). fer_drer has no public weights: it is timed with a randomly initialised state dict
saved to a temporary file (the timing does not depend on the values). The face detector is
timed per image on the real 512x512 photo (scikit-image's astronaut, one face) and on a
640x360 frame made from it.

    .venv/bin/python benchmarks/encoders.py              # CPU, 1 thread; and CUDA when available
    .venv/bin/python benchmarks/encoders.py --threads 2 --quick
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from emokd.constants import SAMPLE_RATE
from emokd.models.encoder import build_encoder
from emokd.models.face_detector import build_face_detector
from emokd.models.fer_drer import DrerEncoder
from emokd.models.weights import fetch


def rate(fn, items: int, min_time: float) -> str:
    """'wall items/s (cpu items/s)': the CPU-time rate is the one to read on a shared, loaded machine."""
    fn()                                             # warm-up (allocations, cudnn autotune)
    sync()
    runs, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while True:
        fn()
        runs += 1
        sync()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time or runs >= 50:
            cpu = time.process_time() - cpu_start
            return f"{runs * items / elapsed:9.1f} ({runs * items / cpu:9.1f} cpu)"


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def variants(encoder, device: str, image: bool):
    yield "fp32", encoder, lambda x: x, contextlib.nullcontext
    if image:
        yield "fp32 channels-last", encoder.to(memory_format=torch.channels_last), \
            lambda x: x.contiguous(memory_format=torch.channels_last), contextlib.nullcontext
        encoder.to(memory_format=torch.contiguous_format)
    kind = "cuda" if device.startswith("cuda") else "cpu"
    yield "bf16 autocast", encoder, lambda x: x, lambda: torch.autocast(kind, dtype=torch.bfloat16)


def bench_encoder(name: str, encoder, batches: list[int], device: str, min_time: float) -> None:
    rng = np.random.default_rng(0)
    image = encoder.kind == "face"
    for batch in batches:
        if image:
            raw = rng.integers(0, 256, (batch, 112, 112, 3), dtype=np.uint8)
        else:
            raw = rng.uniform(-0.5, 0.5, (batch, int(10 * SAMPLE_RATE))).astype(np.float32)
        prep = rate(lambda: encoder.prepare(raw), batch, min_time / 4)
        reference = encoder.encode(encoder.prepare(raw))
        for label, enc, convert, ctx in variants(encoder, device, image):
            x = convert(encoder.prepare(raw))

            def run(enc=enc, x=x, ctx=ctx):
                with ctx():
                    return enc.encode(x)
            diff = (torch.linalg.norm(run() - reference) / torch.linalg.norm(reference)).item()
            print(f"{name:12s} {device:5s} batch {batch:4d}  {label:20s} {rate(run, batch, min_time)} items/s"
                  f"   rel. L2 vs fp32 {diff:.1e}   prep {prep} items/s", flush=True)


def bench_detector(device: str, min_time: float) -> None:
    detector = build_face_detector(device=device)
    photo = np.asarray(Image.open(fetch("photo_astronaut")["photo_astronaut"]).convert("RGB"))
    frame = np.zeros((360, 640, 3), np.uint8)
    frame[:, 64:576] = np.asarray(Image.fromarray(photo).resize((512, 360)))
    for label, image in (("512x512 photo", photo), ("640x360 frame", frame)):
        found = len(detector.detect(image))
        print(f"{'mtcnn':12s} {device:5s} 1 image   {label:20s} {rate(lambda: detector.detect(image), 1, min_time)} "
              f"images/s ({found} face)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds per measurement")
    parser.add_argument("--quick", action="store_true", help="fewer batch sizes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    print(f"torch {torch.__version__}, {args.threads} CPU thread(s), devices {devices}, load average {load}; "
          f"rates: wall items/s (items per CPU-second)")
    with tempfile.TemporaryDirectory() as tmp:
        drer_file = Path(tmp) / "drer_random_init.pt"
        torch.save(DrerEncoder().net.state_dict(), drer_file)
        for device in devices:
            big = device == "cuda"
            sizes = {"soundnet8": [1, 4, 16] + ([64] if big else []),
                     "fer_pyemotion": [1, 32, 256] + ([1024] if big else []),
                     "fer_drer": [1, 32, 128] + ([512] if big else [])}
            for name, weights in (("soundnet8", None), ("fer_pyemotion", None), ("fer_drer", drer_file)):
                batches = sizes[name][1:] if args.quick else sizes[name]
                bench_encoder(name, build_encoder(name, weights=weights, device=device), batches, device,
                              args.min_time)
            bench_detector(device, args.min_time)


if __name__ == "__main__":
    main()
