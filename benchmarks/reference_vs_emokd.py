"""The reference implementation's data path against emokd's, on the same generated clips, in one run.

(a) reference, as published (2022_ABAW_imlab `extract_audio.py` + `dataloader.py`): the whole
    audio track written as a wav file; for every frame a 10 s wav chunk written to disk, read back
    and passed alone through SoundNet; one .npy per frame for audio and for each face crop; a
    merged image-window .npy per frame; at training time every sample np.load()s its two files.
    Two departures, both in the reference's favour or neutral: the same torch encoders as emokd
    (fer_pyemotion, soundnet8; the reference ran Keras models), and frames in the first 10 s are kept
    with zero padding (the reference dropped them) so both sides do the same number of frames.
(b) emokd: `emokd extract-features` (1 worker, then 2) into the Zarr cache; training loads the
    cache into memory once and gathers batches by index.

Both sides train the same network (emokd.train.recipes.jeong2022.net.MultitaskNet) with the same
MTL loss for one epoch over the same labelled frames in the same batch order; only the data path
differs.

    .venv/bin/python benchmarks/reference_vs_emokd.py [--clips 3] [--seconds 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from emokd.constants import N_AU, N_EXPR, SAMPLE_RATE  # noqa: E402
from emokd.demo import data as demo_data  # noqa: E402
from emokd.testing.videos import make_video  # noqa: E402

WINDOW_S = 10.0
IMG_WINDOW, IMG_STRIDE = 6, 10
CROP = 112


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


# ---------------------------------------------------------------- the shared generated dataset
def make_dataset(root: Path, n_clips: int, seconds: float, fps: int = 30) -> dict[str, int]:
    """Clips with a face and speech-like sound, Aff-Wild2 layout with crops and random labels."""
    import decord

    rng = np.random.default_rng(0)
    frames = {}
    for c in range(n_clips):
        vid = f"clip{c}"
        video = make_video(root / "videos" / f"{vid}.mp4", int(seconds * fps), fps=fps, size=(320, 240),
                           audio="speechlike", face=True, texture=True, seed=c)
        reader = decord.VideoReader(str(video.path))
        crop_dir = root / "cropped_aligned" / vid
        crop_dir.mkdir(parents=True, exist_ok=True)
        for k in range(len(reader)):  # 1-based crop names: 00001.jpg is decoded frame 0
            image = reader[k].asnumpy()
            h, w = image.shape[:2]
            y, x = (h - CROP) // 2, (w - CROP) // 2
            Image.fromarray(image[y:y + CROP, x:x + CROP]).save(crop_dir / f"{k + 1:05d}.jpg", quality=95)
        n = len(reader)
        frames[vid] = n
        labels = {"va": rng.uniform(-1, 1, (n, 2)).astype(np.float32),
                  "expr": rng.integers(0, N_EXPR, n).astype(np.int8),
                  "au": rng.integers(0, 2, (n, N_AU)).astype(np.int8)}
        demo_data.write_annotation_files(root, vid, "train", labels)
    return frames


def read_labels(root: Path, vid: str) -> dict[str, np.ndarray]:
    def rows(task):
        path = root / demo_data.TASK_FOLDERS[task] / "Train_Set" / f"{vid}.txt"
        return [line.split(",") for line in path.read_text().splitlines()[1:]]
    va = np.array(rows("VA"), np.float32)
    return {"va": np.where(va == -5, np.nan, va), "expr": np.array(rows("EXPR"), np.int64)[:, 0],
            "au": np.array(rows("AU"), np.float32)}


# ---------------------------------------------------------------- (a) the reference data path
def write_wav(path: Path, signal: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    pcm = (np.clip(signal, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(rate)
        out.writeframes(pcm.tobytes())


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as src:
        return np.frombuffer(src.readframes(src.getnframes()), "<i2").astype(np.float32) / 32767


def decode_audio_22k(path: Path) -> np.ndarray:
    import av
    import soxr

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        parts = [f.to_ndarray().reshape(-1, f.samples).mean(0) if f.format.is_planar else
                 f.to_ndarray().reshape(f.samples, -1).mean(1) for f in container.decode(stream)]
        rate = stream.rate
    return soxr.resample(np.concatenate(parts).astype(np.float32), rate, SAMPLE_RATE)


def reference_extract(root: Path, work: Path, frames: dict[str, int], face_enc, audio_enc) -> dict:
    """Every step the reference scripts run, file by file; returns timings and sizes."""
    t0 = time.perf_counter()
    window = int(WINDOW_S * SAMPLE_RATE)
    for vid, n in frames.items():
        whole = work / "audio" / f"{vid}.wav"                        # video_to_audio
        whole.parent.mkdir(parents=True, exist_ok=True)
        write_wav(whole, decode_audio_22k(root / "videos" / f"{vid}.mp4"))
        data = read_wav(whole)                                       # audio_crop
        per_frame = len(data) // n
        chunks = work / "cropped_audio" / vid
        chunks.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            end = per_frame * i
            chunk = np.zeros(window, np.float32)
            piece = data[max(0, end - window):end]
            chunk[window - len(piece):] = piece
            write_wav(chunks / f"{i}.wav", chunk)
        feats = work / "features" / "audio" / vid                    # extract_audio_feature
        feats.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            x = read_wav(chunks / f"{i}.wav")[None]
            np.save(feats / f"{i}.npy", audio_enc.encode_numpy(x)[0])
        single = work / "features" / "single_image_feature" / vid    # extract_image_feature
        single.mkdir(parents=True, exist_ok=True)
        for k in range(n):
            image = np.asarray(Image.open(root / "cropped_aligned" / vid / f"{k + 1:05d}.jpg").convert("RGB"))
            np.save(single / f"{k:05d}.npy", face_enc.encode_numpy(image[None])[0])
        merged = work / "features" / "image_window" / vid            # merge_image_feature
        merged.mkdir(parents=True, exist_ok=True)
        for k in range(n):
            ids = [max(0, k - IMG_STRIDE * j) for j in range(IMG_WINDOW - 1, -1, -1)]
            np.save(merged / f"{k}.npy", np.stack([np.load(single / f"{i:05d}.npy") for i in ids]))
    seconds = time.perf_counter() - t0
    features = du(work / "features")
    wavs = du(work / "cropped_audio") + du(work / "audio")
    return {"seconds": seconds, "feature_bytes": features, "wav_bytes": wavs}


class ReferenceBatches:
    """The reference dataloader: one np.load per sample per modality."""

    def __init__(self, work: Path, labels: dict[str, dict]):
        self.work, self.labels = work, labels

    def batch(self, samples: list[tuple[str, int]]) -> dict:
        face = np.array([np.load(self.work / "features" / "image_window" / v / f"{i}.npy") for v, i in samples])
        audio = np.array([np.load(self.work / "features" / "audio" / v / f"{i}.npy") for v, i in samples])
        lab = {k: np.stack([self.labels[v][k][i] for v, i in samples]) for k in ("va", "expr", "au")}
        return {"face": torch.from_numpy(face).float(), "audio": torch.from_numpy(audio).float(),
                "va": torch.from_numpy(lab["va"]), "expr": torch.from_numpy(lab["expr"]),
                "au": torch.from_numpy(lab["au"])}


# ---------------------------------------------------------------- (b) emokd
def emokd_extract(root: Path, cache: Path, workers: int) -> dict:
    """The real command; then the same command again, which skips every complete video: its time
    is the fixed start-up (interpreter, index, Dask cluster, encoder loading), not per-frame work."""
    shutil.rmtree(cache, ignore_errors=True)
    command = [sys.executable, "-m", "emokd", "extract-features", str(root), "--cache", str(cache),
               "--workers", str(workers), "--no-progress"]
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if done.returncode != 0:
            raise SystemExit(f"emokd extract-features failed:\n{done.stdout}\n{done.stderr}")
    return {"seconds": times[0], "startup": times[1], "feature_bytes": du(cache)}


# ---------------------------------------------------------------- one training epoch, both sides
def mtl_loss(out: dict, b: dict) -> torch.Tensor:
    from emokd.train.losses import au_bce_loss, expr_ce_loss, va_ccc_loss

    return va_ccc_loss(out["va"], b["va"]) + expr_ce_loss(out["expr"], b["expr"]) + au_bce_loss(out["au"], b["au"])


def train_epoch(get_batch, order: list, batch_size: int, dims: dict) -> tuple[float, float]:
    """(epoch seconds, seconds spent getting batches) for one pass over `order`."""
    from emokd.train.recipes.jeong2022.net import Jeong2022NetConfig, MultitaskNet

    torch.manual_seed(0)
    net = MultitaskNet(Jeong2022NetConfig(dims["face"], dims["audio"], window=IMG_WINDOW, stride=IMG_STRIDE))
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    data_s = 0.0
    t0 = time.perf_counter()
    for start in range(0, len(order) - batch_size + 1, batch_size):
        t = time.perf_counter()
        b = get_batch(order[start:start + batch_size])
        data_s += time.perf_counter() - t
        loss = mtl_loss(net(b["face"], b["audio"]), b)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t0, data_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--keep", type=Path, help="work folder to keep (default: a temporary one)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="emokd-refbench-"))
    root, work = tmp / "dataset", tmp / "reference"
    shutil.rmtree(work, ignore_errors=True)
    frames = make_dataset(root, args.clips, args.seconds)
    n = sum(frames.values())
    print(f"{args.clips} generated clips, {n} frames, crops on disk; work folder {tmp}")

    from emokd.cache import FeatureCache
    from emokd.models.encoder import build_encoder
    from emokd.train.data import load_frame_data

    t0 = time.perf_counter()
    face_enc, audio_enc = build_encoder("fer_pyemotion"), build_encoder("soundnet8")
    load_s = time.perf_counter() - t0
    ref = reference_extract(root, work, frames, face_enc, audio_enc)
    ref["seconds"] += load_s
    ours = {w: emokd_extract(root, tmp / f"cache_w{w}.zarr", w) for w in (1, 2)}

    # the same labelled frames, the same shuffled order, the same network and loss
    labels = {vid: read_labels(root, vid) for vid in frames}
    cache = FeatureCache.open(tmp / "cache_w1.zarr")
    t0 = time.perf_counter()
    data = load_frame_data(cache, window=IMG_WINDOW, stride=IMG_STRIDE)
    cache_load_s = time.perf_counter() - t0
    samples = [(vid, i) for vid in data.video_ids for i in range(frames[vid])]
    order = [samples[j] for j in np.random.default_rng(0).permutation(len(samples))]
    gid = {vid: int(s) for vid, s in zip(data.video_ids, data.video_start)}

    def ours_batch(part):
        b = data.batch(np.array([gid[v] + i for v, i in part]))
        return {"face": b["face"], "audio": b["audio"], "va": b["va"], "expr": b["expr"], "au": b["au"]}

    ref_loader = ReferenceBatches(work, labels)
    dims = {"face": int(data.face.shape[1]), "audio": int(data.audio.shape[1])}
    ref_epoch, ref_data = train_epoch(ref_loader.batch, order, args.batch_size, dims)
    our_epoch, our_data = train_epoch(ours_batch, order, args.batch_size, dims)

    per = lambda b: b / n  # noqa: E731
    rows = [
        ("extraction wall time (s)", ref["seconds"], ours[1]["seconds"], ours[2]["seconds"]),
        ("extraction frames/s", n / ref["seconds"], n / ours[1]["seconds"], n / ours[2]["seconds"]),
        ("  start-up (rerun, all videos skipped) (s)", load_s, ours[1]["startup"], ours[2]["startup"]),
        ("  frames/s without start-up", n / (ref["seconds"] - load_s), n / (ours[1]["seconds"] - ours[1]["startup"]),
         n / (ours[2]["seconds"] - ours[2]["startup"])),
        ("features on disk, bytes/frame", per(ref["feature_bytes"]), per(ours[1]["feature_bytes"]),
         per(ours[2]["feature_bytes"])),
        ("  with the wav files the reference keeps", per(ref["feature_bytes"] + ref["wav_bytes"]),
         per(ours[1]["feature_bytes"]), per(ours[2]["feature_bytes"])),
        ("one training epoch (s)", ref_epoch, our_epoch, None),
        ("  of which getting batches (s)", ref_data, our_data, None),
    ]
    print(f"\n{'':44s}{'reference':>12s}{'emokd 1w':>12s}{'emokd 2w':>12s}{'emokd 1w gain':>15s}")
    for name, a, b, c in rows:
        fmt = lambda v: f"{v:12.1f}" if v is not None else f"{'':12s}"  # noqa: E731
        gain = (b / a if "frames/s" in name else a / b) if b else None  # > 1: emokd better
        print(f"{name:44s}{fmt(a)}{fmt(b)}{fmt(c)}" + (f"{gain:14.2f}x" if gain else ""))
    print("(gain = how many times faster / smaller emokd with 1 worker is; reference start-up = "
          "loading its two encoders)")
    print(f"(emokd loads the cache into memory once before training: {cache_load_s:.2f} s, "
          f"{data.memory_bytes() / 1e6:.1f} MB; batch size {args.batch_size}, "
          f"{len(order) // args.batch_size} steps, torch threads 1)")
    if args.keep is None:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
