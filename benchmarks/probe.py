"""`emokd probe` on a synthetic cache whose labels are known functions of its features, and its time.

The cache (emokd.testing.caches): random face (16-d) and audio (8-d) embeddings per frame;
valence/arousal = tanh(z W), expression = argmax(z W'), AU_k = [z w_k > 0] with z = [face, audio];
half of each task's labels removed; 5 % of frames without a face. A linear probe should find
the maps (the expression and AU maps are linear decision rules; tanh is monotone) and score far
above the chance row; the face or audio part alone carries part of z.

    python benchmarks/probe.py                          # 8 videos x 2000 frames
    python benchmarks/probe.py --videos 40 --frames 5000 --face-dim 512 --audio-dim 1000   # Aff-Wild2-like widths
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from emokd.cli.probe import format_table
from emokd.testing.caches import SyntheticSpec, write_synthetic_cache
from emokd.train.probe import ProbeConfig, run_probe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--face-dim", type=int, default=16)
    parser.add_argument("--audio-dim", type=int, default=8)
    parser.add_argument("--max-train", type=int, default=ProbeConfig.max_train)
    args = parser.parse_args()
    spec = SyntheticSpec(n_videos=args.videos, frames_per_video=args.frames, face_dim=args.face_dim,
                         audio_dim=args.audio_dim)
    with tempfile.TemporaryDirectory() as tmp:
        cache = write_synthetic_cache(str(Path(tmp) / "synthetic.zarr"), spec)
        started = time.perf_counter()
        rows = run_probe(cache, ProbeConfig(max_train=args.max_train))
        print(f"{args.videos} videos x {args.frames} frames, face {args.face_dim}-d, audio {args.audio_dim}-d; "
              f"probe {time.perf_counter() - started:.1f} s wall (load, fits, scoring)")
        print(format_table(rows))


if __name__ == "__main__":
    main()
