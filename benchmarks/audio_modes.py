"""SoundNet over a video's audio track: exact per-window mode vs shared-trunk mode, side by side.

Per frame k (fps frames a second) the 10 s window ends at the end of frame k. The exact mode
(`encode_track(..., "per-window")`) encodes every window on its own; the shared mode
(`encode_track(..., "shared-trunk")`) computes conv1..pool2 once over the track
(emokd/models/soundnet_track.py). Printed: frames/s of both and their ratio, and how far the
1000-d conv8 vectors differ (cosine, relative L2, max relative difference, top-1 agreement).

The audio is speech-like (no speech recording ships with the project): espeak-ng when it is
installed, else a synthetic voice (voiced harmonics with a moving pitch through three moving
formant resonators, syllable-rate envelope, fricative noise bursts, pauses, room noise).

    .venv/bin/python benchmarks/audio_modes.py --seconds 60 --fps 30 --exact-every 6
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.signal import lfilter

from emokd.constants import AUDIO_WINDOW_S, SAMPLE_RATE
from emokd.models.encoder import build_encoder

TEXT = ("The quick brown fox jumps over the lazy dog. How are you feeling today? I am quite happy, "
        "thank you, although the weather has been rather grey and cold this week. ")


def resonator(signal: np.ndarray, freq: float, bandwidth: float, sr: int) -> np.ndarray:
    r = np.exp(-np.pi * bandwidth / sr)
    a = [1, -2 * r * np.cos(2 * np.pi * freq / sr), r * r]
    return lfilter([1 - r], a, signal)


def synthetic_speech(seconds: float, sr: int = SAMPLE_RATE, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * sr))
    pos = 0
    while pos < len(out):
        phrase = rng.uniform(1.5, 4.0)                       # a phrase of syllables, then a pause
        for _ in range(int(phrase * rng.uniform(3.5, 5.5))):
            n = int(rng.uniform(0.12, 0.28) * sr)
            t = np.arange(n) / sr
            f0 = rng.uniform(100, 200) * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
            phase = 2 * np.pi * np.cumsum(f0) / sr
            voiced = sum(np.sin(h * phase) / h for h in range(1, 30))
            syllable = 0
            for f_lo, f_hi, bw in ((300, 900, 80), (900, 2300, 120), (2300, 3200, 160)):
                syllable = syllable + resonator(voiced, rng.uniform(f_lo, f_hi), bw, sr)
            envelope = np.sin(np.pi * t / t[-1]) ** 2
            chunk = syllable * envelope
            if rng.random() < 0.4:                           # fricative: high-passed noise burst
                m = int(0.06 * sr)
                noise = np.diff(rng.standard_normal(m + 1)) * np.hanning(m)
                chunk[:m] += 0.5 * noise * np.abs(chunk).max()
            end = min(pos + n, len(out))
            out[pos:end] += chunk[:end - pos]
            pos = end
        pos += int(rng.uniform(0.2, 0.9) * sr)
    out /= np.abs(out).max() / 0.6
    out += 0.003 * rng.standard_normal(len(out))
    return out.astype(np.float32)


def espeak_speech(seconds: float, sr: int = SAMPLE_RATE) -> np.ndarray | None:
    if shutil.which("espeak-ng") is None:
        return None
    import soxr
    from scipy.io import wavfile

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-w", str(wav), TEXT * 8], check=True, capture_output=True)
        rate, data = wavfile.read(wav)
    data = data.astype(np.float32) / 32768.0
    data = soxr.resample(data, rate, sr)
    reps = int(np.ceil(seconds * sr / len(data)))
    return np.tile(data, reps)[: int(seconds * sr)] * 0.9


def compare(exact: np.ndarray, shared: np.ndarray) -> dict:
    cosine = (exact * shared).sum(1) / np.linalg.norm(exact, axis=1) / np.linalg.norm(shared, axis=1)
    ce, cs = exact - exact.mean(1, keepdims=True), shared - shared.mean(1, keepdims=True)
    pearson = (ce * cs).sum(1) / np.linalg.norm(ce, axis=1) / np.linalg.norm(cs, axis=1)
    rel_l2 = np.linalg.norm(exact - shared, axis=1) / np.linalg.norm(exact, axis=1)
    max_rel = np.abs(exact - shared).max(1) / np.abs(exact).max(1)
    return {"cosine_min": cosine.min(), "cosine_median": np.median(cosine), "pearson_min": pearson.min(),
            "pearson_median": np.median(pearson), "rel_l2_max": rel_l2.max(),
            "rel_l2_median": np.median(rel_l2), "max_rel_diff": max_rel.max(),
            "top1_agreement": float((exact.argmax(1) == shared.argmax(1)).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--source", choices=("auto", "espeak", "synthetic"), default="auto")
    parser.add_argument("--exact-every", type=int, default=6,
                        help="run the exact mode on every Nth frame only (its frames/s is per frame run)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    signal = espeak_speech(args.seconds) if args.source in ("auto", "espeak") else None
    source = "espeak-ng" if signal is not None else "synthetic"
    if signal is None:
        signal = synthetic_speech(args.seconds)
    n_frames = int(args.seconds * args.fps)
    ends = np.round(np.arange(1, n_frames + 1) / args.fps * SAMPLE_RATE).astype(np.int64)
    window = int(AUDIO_WINDOW_S * SAMPLE_RATE)
    encoder = build_encoder("soundnet8", device=args.device)
    encoder.encode_track(signal[: 2 * window], ends[:4], window, "shared-trunk")  # warm-up
    subset = np.arange(0, n_frames, args.exact_every)
    rates, outputs = {}, {}
    for mode, track_mode, frames in (("shared", "shared-trunk", np.arange(n_frames)),
                                     ("exact", "per-window", subset)):
        start, cpu_start = time.perf_counter(), time.process_time()
        outputs[mode] = encoder.encode_track(signal, ends[frames], window, track_mode)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        rates[mode] = (time.perf_counter() - start, len(frames), time.process_time() - cpu_start)
    print(f"SoundNet-8 conv8, {args.seconds:g} s of {source} speech-like audio, {n_frames} frames at "
          f"{args.fps:g} fps, 10 s windows, device {args.device}, {args.threads} thread(s); exact mode on "
          f"every {args.exact_every} frame(s)")
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    print(f"  (load average {load}; frames per CPU-second is the figure to read on a shared machine)")
    for mode in ("exact", "shared"):
        seconds, frames, cpu = rates[mode]
        print(f"  {mode:6s} {frames:5d} frames {seconds:8.2f} s  {frames / seconds:9.1f} frames/s  "
              f"{frames / cpu:9.1f} frames/CPU-s")
    wall = {m: rates[m][1] / rates[m][0] for m in rates}
    cpu = {m: rates[m][1] / rates[m][2] for m in rates}
    print(f"  speed-up shared / exact: {wall['shared'] / wall['exact']:.1f}x wall, "
          f"{cpu['shared'] / cpu['exact']:.1f}x CPU time")
    # the shared mode moves each window start onto the 256-sample grid; the exact mode run on those
    # moved windows separates what the move itself changes from what the shared edges change
    rounded = (np.floor((ends[subset] - window) / 256 + 0.5).astype(np.int64) * 256 + window)
    moved = encoder.encode_track(signal, rounded, window, "per-window")
    rows = {"shared vs exact": compare(outputs["exact"], outputs["shared"][subset]),
            "shared vs exact on the rounded windows (edges only)": compare(moved, outputs["shared"][subset]),
            "exact vs exact moved <= 128 samples (rounding only)": compare(outputs["exact"], moved)}
    keys = list(next(iter(rows.values())))
    print(f"  {'':52s}" + " ".join(f"{k:>14s}" for k in keys))
    for label, values in rows.items():
        print(f"  {label:52s}" + " ".join(f"{values[k]:14.6f}" for k in keys))


if __name__ == "__main__":
    main()
