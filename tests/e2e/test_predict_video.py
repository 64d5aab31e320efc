"""The tour a researcher takes, from several working directories: extract a relative-path dataset in
one, train in another, then --resume, evaluate, inspect and predict-video from a third; then a
trained model on a new video (one CSV row per decoded frame, the container's times, probabilities
that sum to 1), a kept cache reused without re-extraction, and --smooth against its hand computation.
"""

import contextlib
import csv
import subprocess
import sys

import av
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from emokd.apply.smooth import smooth_in_time
from emokd.cache import FeatureCache
from emokd.cli import main
from emokd.constants import AU_NAMES, EXPR_CLASSES
from emokd.errors import WeightsError
from emokd.testing.videos import make_video

pytestmark = pytest.mark.slow

OPTIONS = {"lstm_hidden": 8, "extractor": [16, 8], "heads": [8], "discriminator": [4], "dropout": 0.3}
VIDEOS = {"t1": "Train", "t2": "train", "v1": "Val"}     # split names as people type them


@pytest.fixture(scope="module")
def weights():
    from emokd.models import weights as store

    try:
        return store.fetch(["soundnet8", "fer_pyemotion"])
    except WeightsError as exc:
        pytest.skip(f"default weights not available here: {exc}")


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def write_labels(path, n, seed):
    rng = np.random.default_rng(seed)
    header = ["valence", "arousal", "expression", *AU_NAMES]
    rows = [[f"{v:.3f}" for v in rng.uniform(-1, 1, 2)] + [str(rng.integers(0, 8))]
            + [str(x) for x in rng.integers(0, 2, len(AU_NAMES))] for _ in range(n)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(",".join(header) + "\n" + "".join(",".join(r) + "\n" for r in rows))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, weights):
    base = tmp_path_factory.mktemp("tour")
    a, b, c = base / "A", base / "B", base / "C"
    c.mkdir()
    for k, name in enumerate(VIDEOS):
        make_video(a / "data" / "clips" / f"{name}.mp4", 30, 25, (48, 48), audio="speechlike", seed=k)
        write_labels(a / "data" / "labels" / f"{name}.csv", 30, k)
    (a / "data" / "videos.csv").write_text("video,labels,split\n" + "".join(
        f"clips/{name}.mp4,labels/{name}.csv,{split}\n" for name, split in VIDEOS.items()))
    # extraction in A, by a process of its own (a user's shell there), everything named relative to A
    done = subprocess.run([sys.executable, "-m", "emokd", "extract-features", "data/videos.csv",
                           "--cache", "feats.zarr", "--workers", "1", "--no-progress", "--face-source",
                           "whole-frame", "--device", "cpu"], cwd=a, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "\x1b" not in done.stdout + done.stderr
    # training in B, the cache named relative to B
    b.mkdir()
    (b / "small.yaml").write_text(yaml.safe_dump({"recipe_options": OPTIONS, "lr": "1e-3"}))
    with contextlib.chdir(b):
        invoke("train-from-cache", "--cache", "../A/feats.zarr", "--run", "runs/t", "--config", "small.yaml",
               "--epochs", 1, "--batch-size", 16, "--window", 2, "--stride", 1, "--device", "cpu",
               "--patience", 10)
    return {"A": a, "B": b, "C": c, "run": b / "runs" / "t", "cache": a / "feats.zarr"}


def test_the_tour_works_from_other_working_directories(workspace):
    a, run = workspace["A"], workspace["run"]
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["cache"] == str(a / "feats.zarr") and saved["run"] == str(run) and saved["lr"] == 0.001
    assert saved["_made_by"]["dataset"] == str(a / "data" / "videos.csv")
    assert saved["_made_by"]["command"].startswith("emokd train-from-cache --cache ../A/feats.zarr")
    cache = FeatureCache.open(workspace["cache"])
    assert cache.made_by[-1]["cwd"] == str(a) and cache.made_by[-1]["dataset"] == str(a / "data" / "videos.csv")
    assert cache.video_attrs("generic/v1")["source"]["path"] == str(a / "data" / "clips" / "v1.mp4")
    splits = {vid: cache.read_labels(vid)["split"] for vid in cache.video_ids()}
    assert splits == {"generic/t1": "train", "generic/t2": "train", "generic/v1": "validation"}

    with contextlib.chdir(workspace["C"]):
        invoke("train-from-cache", "--run", "../B/runs/t", "--resume", "--epochs", 2)
        assert len(list(csv.DictReader(open(run / "metrics.csv")))) == 2
        result = invoke("evaluate", "--run", "../B/runs/t", "--cache", "../A/feats.zarr", "--device", "cpu")
        assert "saved" in result.output
        result = invoke("inspect", "generic/v1", "--cache", "../A/feats.zarr", "--run", "../B/runs/t",
                        "--out", "v1.png", "--device", "cpu")
        assert (workspace["C"] / "v1.png").is_file() and "predictions of t" in result.output


def test_predict_takes_a_test_list_of_video_names(workspace):
    c = workspace["C"]
    (c / "names.txt").write_text("video\ngeneric/v1\ngeneric/t1.mp4\n")
    with contextlib.chdir(c):
        result = invoke("predict", "--run", "../B/runs/t", "--cache", "../A/feats.zarr", "--test-list", "names.txt",
                        "--out", "names_submission.txt", "--device", "cpu")
    lines = (c / "names_submission.txt").read_text().splitlines()
    assert "wrote names_submission.txt (60 rows)" in result.output and len(lines) == 61
    assert [line.split(",")[0] for line in lines[1:]] == [f"generic/{v}/{k:05d}.jpg" for v in ("v1", "t1")
                                                          for k in range(1, 31)]


def decoded_frames(path):
    """Presentation times of every decoded frame, from PyAV, relative to the first."""
    with av.open(str(path)) as container:
        times = [float(frame.pts * frame.time_base) for frame in container.decode(video=0)]
    return np.asarray(times) - times[0]


def read_csv(path):
    rows = list(csv.DictReader(open(path)))
    return rows, {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


@pytest.fixture(scope="module")
def new_video(workspace):
    return make_video(workspace["C"] / "new" / "talk.mp4", 37, 30, (48, 48), audio="speechlike", seed=9).path


def test_predict_video_one_row_per_decoded_frame(workspace, new_video):
    out = workspace["C"] / "pred"
    with contextlib.chdir(workspace["C"]):
        result = invoke("predict-video", "new/talk.mp4", "--run", "../B/runs/t", "--out", "pred", "--abaw",
                        "--picture", "--device", "cpu", "--no-progress")
    assert "1 video(s), 37 frames predicted" in result.output
    assert (out / "talk.png").is_file() and "wrote pred/talk.png" in result.output
    assert "WARNING" not in result.output          # Dask's housekeeping goes to the log file only
    rows, cols = read_csv(out / "talk.csv")
    expected = ["frame", "time", "face_ok", "valence", "arousal", *EXPR_CLASSES, *AU_NAMES]
    assert list(rows[0]) == expected
    times = decoded_frames(new_video)
    assert len(rows) == len(times) == 37
    np.testing.assert_array_equal(cols["frame"], np.arange(37))
    np.testing.assert_allclose(cols["time"], times, atol=1e-6)
    np.testing.assert_allclose(sum(cols[name] for name in EXPR_CLASSES), 1.0, atol=1e-5)
    assert all(((cols[au] >= 0) & (cols[au] <= 1)).all() for au in AU_NAMES)
    assert ((np.abs(cols["valence"]) <= 1) & (np.abs(cols["arousal"]) <= 1)).all()
    assert set(cols["face_ok"]) == {1.0}                      # whole-frame faces, as the run's extraction
    abaw = (out / "abaw_mtl_submission.txt").read_text().splitlines()
    assert abaw[0] == "image,valence,arousal,expression,aus" and len(abaw) == 38
    first = abaw[1].split(",")
    assert first[0] == "talk/00001.jpg" and int(first[3]) == int(np.argmax([cols[n][0] for n in EXPR_CLASSES]))
    saved = yaml.safe_load((out / "predict_video.yaml").read_text())
    assert saved["run"] == str(workspace["run"]) and saved["extract"]["face_source"] == "whole-frame"
    assert "_made_by" in saved


def test_a_kept_cache_is_reused_and_smoothing_is_a_centred_mean(workspace, new_video):
    c = workspace["C"]
    with contextlib.chdir(c):
        first = invoke("predict-video", "new", "--run", "../B/runs/t", "--out", "kept1", "--cache", "kept.zarr",
                       "--device", "cpu", "--no-progress")
        assert "1 extracted, 0 reused" in first.output
        arrays = FeatureCache.open(c / "kept.zarr").read_video("talk")
        files = {p: p.stat().st_mtime_ns for p in (c / "kept.zarr").rglob("*") if p.is_file()}
        again = invoke("predict-video", "new", "--run", "../B/runs/t", "--out", "kept2", "--cache", "kept.zarr",
                       "--device", "cpu", "--no-progress", "--smooth", "0.2")
    assert "0 extracted, 1 reused" in again.output and "smoothed over 0.2 s" in again.output
    feature_files = {p: t for p, t in files.items() if "shards" in p.parts}
    assert feature_files and all(p.stat().st_mtime_ns == t for p, t in feature_files.items())
    after = FeatureCache.open(c / "kept.zarr").read_video("talk")
    assert all(np.array_equal(after[k], arrays[k]) for k in arrays)
    _, plain = read_csv(c / "kept1" / "talk.csv")
    _, smooth = read_csv(c / "kept2" / "talk.csv")
    probs = np.stack([plain[n] for n in (*EXPR_CLASSES, *AU_NAMES, "valence", "arousal")], 1)
    want = smooth_in_time(probs, plain["time"], 0.2)
    got = np.stack([smooth[n] for n in (*EXPR_CLASSES, *AU_NAMES, "valence", "arousal")], 1)
    np.testing.assert_allclose(got, want, atol=2e-6)
    assert not np.allclose(got, probs, atol=1e-4)               # it did smooth
